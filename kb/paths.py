"""Where the templates, static files and starter entries are.

From a source checkout they are the top-level folders; in an installed wheel
they ship inside the package as kb/templates, kb/static and kb/entries.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    inside = _PACKAGE / name
    if inside.is_dir():
        return inside
    beside = _PACKAGE.parent / name
    if beside.is_dir():
        return beside
    try:
        from importlib.resources import files

        found = Path(str(files(f"kb.{name}")))
        if found.is_dir():
            return found
    except (ModuleNotFoundError, TypeError):
        pass
    return beside
