"""A non-editable install must carry the templates, static files and starter entries."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_templates_static_and_starter_entries(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    # its own name on the package index ("kb" there is an unrelated project); the
    # import package and the command stay kb
    wheel = next(tmp_path.glob("kb_cheatsheet-*.whl"))
    archive = zipfile.ZipFile(wheel)
    names = set(archive.namelist())
    metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "\nName: kb-cheatsheet\n" in metadata
    scripts = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "kb = kb.cli:main" in scripts
    for needed in ("kb/views/pages.py", "kb/templates/base.html", "kb/static/app.js",
                   "kb/entries/_sheet/greeting.md", "kb/entries/_sheet/synonyms.txt",
                   "kb/entries/_sheet/shorthand.txt", "kb/search/index.py",
                   "kb/static/extension/manifest.json", "kb/static/extension/content.js"):
        assert needed in names, needed
    starter = {p.name for p in (ROOT / "entries").glob("*.md")}
    shipped = {n.rsplit("/", 1)[1] for n in names if n.startswith("kb/entries/") and
               n.endswith(".md") and "/_sheet/" not in n}
    assert starter and shipped == starter
    assert any(n.endswith("entry_points.txt") for n in names)
