"""Nothing lost: concurrent writers in several processes, and a writer killed mid-save."""

from __future__ import annotations

import multiprocessing
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kb.meaning import Meaning
from kb.search import SearchIndex
from kb.sheet import Sheet
from kb.store import ContentStore
from tests.conftest import ROOT, SMALL_SHEET, TARA
from tests.durability_worker import COUNTER, counter_text, save_many

WORKERS = 4
SAVES = 60  # per worker: 240 saves in all


@pytest.fixture
def repo(tmp_path) -> tuple[Path, Path]:
    files = dict(SMALL_SHEET, **{COUNTER: counter_text(0)})
    ContentStore.create(tmp_path / "content", files, "Start", author=TARA)
    ix = SearchIndex(tmp_path / "index", Sheet(ContentStore(tmp_path / "content")))
    ix.open()
    ix.close()
    return tmp_path / "content", tmp_path / "index"


def test_concurrent_processes_lose_nothing(repo):
    content, index_dir = repo
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [ctx.Process(target=save_many,
                         args=(w, str(content), str(index_dir), SAVES, barrier, results))
             for w in range(WORKERS)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    store = ContentStore(content)
    history = store.history(limit=10_000)
    commits = [c for _, accepted, _ in outcomes for _, c in accepted]
    assert len(commits) == WORKERS * SAVES
    assert set(commits) <= {r.commit for r in history}
    # one linear history: every commit's parent is the one before it
    for newer, older in zip(history, history[1:], strict=False):
        assert store.repo[newer.commit.encode()].parents == [older.commit.encode()]
    assert len(history) == WORKERS * SAVES + 1
    # the counter saw every accepted increment: no edit overwrote another
    increments = sum(1 for _, accepted, _ in outcomes for kind, _ in accepted if kind == "count")
    assert store.read(COUNTER).text == counter_text(increments)
    # the index followed every write (its word matches exactly: the meaning layer
    # would add the look-alike entries of the other workers as weaker results)
    ix = SearchIndex(index_dir, Sheet(store), Meaning(enabled=False))
    assert ix.open() == "current"
    for worker in range(WORKERS):
        assert [h.slug for h in ix.search(f"zq{worker}x{SAVES - 1}").hits] == [
            f"w{worker}-{SAVES - 1}"]
    ix.close()


@pytest.mark.parametrize("saves_before_kill", [3, 11, 24])
def test_writer_killed_mid_save_leaves_a_sound_repository(repo, saves_before_kill):
    content, index_dir = repo
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "durability_worker.py"), str(content),
         str(index_dir)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    for _ in range(saves_before_kill):
        assert proc.stdout.readline(), "the writer died on its own"
    proc.send_signal(signal.SIGKILL)  # it is writing its next save right now
    proc.wait()
    proc.stdout.close()

    if shutil.which("git"):
        fsck = subprocess.run(["git", "-C", str(content), "fsck", "--strict"],
                              capture_output=True, text=True)
        assert fsck.returncode == 0, fsck.stderr
    store = ContentStore(content)
    head_files = set(store.entry_paths())
    assert {f"other-{n}.md" for n in range(saves_before_kill)} <= head_files
    # the next writer is not blocked by anything the killed one left behind
    sheet = Sheet(store)
    ix = SearchIndex(index_dir, sheet)
    assert ix.open() in ("current", "caught up", "rebuilt")
    sheet.after_commit = ix.catch_up
    sheet.write({"after.md": "---\ntitle: After\n---\nRecovered zafter.\n"},
                message="after the crash", author=TARA)
    # and the index matches the content exactly
    indexed = {row["slug"] for row in ix.browse()}
    readable = {e.slug for e in sheet.entries()[0] if e.published}
    assert indexed == readable
    # (first: the meaning layer may add a look-alike entry after it)
    assert [h.slug for h in ix.search("zafter").hits][:1] == ["after"]
    ix.close()
