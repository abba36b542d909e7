"""The content store: real git repositories, one commit per write."""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest

from kb.store import ConflictError, ContentStore, Person, StoreError
from tests.conftest import ALICE, SMALL_SHEET, TARA, entry_text

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git CLI not installed")


def git(repo, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout


def test_round_trip_and_one_commit_per_write(store):
    assert store.read("refund-status.md").text == SMALL_SHEET["refund-status.md"]
    before = len(store.history())
    commit = store.write({"new.md": entry_text("New"), "refund-status.md": None},
                         message="Add new, drop refund", author=ALICE, committer=TARA)
    history = store.history()
    assert len(history) == before + 1 and history[0].commit == commit
    assert (history[0].author, history[0].committer) == (ALICE, TARA)
    assert history[0].message == "Add new, drop refund"
    assert store.read("refund-status.md") is None
    assert store.read("new.md").text == entry_text("New")


def test_unchanged_write_makes_no_commit(store):
    head = store.head()
    assert store.write({"refund-status.md": SMALL_SHEET["refund-status.md"]},
                       message="same", author=ALICE) is None
    assert store.head() == head


def test_stale_version_is_a_conflict_and_writes_nothing(store):
    old = store.version_of("refund-status.md")
    store.write({"refund-status.md": entry_text("Refund status", "v2")}, message="v2",
                author=TARA, expected={"refund-status.md": old})
    head = store.head()
    with pytest.raises(ConflictError) as info:
        store.write({"refund-status.md": entry_text("Refund status", "v3")}, message="v3",
                    author=ALICE, expected={"refund-status.md": old})
    assert info.value.based_on == old and info.value.current == store.version_of(
        "refund-status.md")
    assert store.head() == head
    with pytest.raises(ConflictError):  # "must not exist yet"
        store.write({"refund-status.md": "x"}, message="new", author=ALICE,
                    expected={"refund-status.md": None})


def test_history_of_one_file_newest_first(store):
    store.write({"other.md": entry_text("Other")}, message="other", author=ALICE)
    store.write({"refund-status.md": entry_text("Refund status", "v2")}, message="edit",
                author=TARA)
    history = store.history("refund-status.md")
    assert [r.message for r in history] == ["edit", "Start"]
    assert history[0].version == store.version_of("refund-status.md")
    assert store.read_blob(history[1].version) == SMALL_SHEET["refund-status.md"]


def test_changes_between_commits(store):
    first = store.head()
    store.write({"a.md": entry_text("A"), "refund-status.md": None}, message="x", author=ALICE)
    assert store.changes_between(first, store.head()) == ["a.md", "refund-status.md"]
    fresh = ContentStore(store.path)  # nothing cached: the tree diff path
    assert fresh.changes_between(first, fresh.head()) == ["a.md", "refund-status.md"]


@pytest.mark.parametrize("path", ["../x.md", "", ".git/config", "a//b.md", "/abs.md"])
def test_invalid_paths_are_refused(store, path):
    with pytest.raises(StoreError):
        store.write({path: "x"}, message="bad", author=ALICE)


def test_a_reason_is_required(store):
    with pytest.raises(StoreError, match="reason"):
        store.write({"a.md": "x"}, message="  ", author=ALICE)


def test_opening_a_folder_that_is_not_a_repository(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(StoreError, match="not a git repository"):
        ContentStore(tmp_path)
    with pytest.raises(StoreError, match="not a git repository"):
        ContentStore.open_or_create(tmp_path, tmp_path)  # a full folder is never seeded
    with pytest.raises(StoreError, match="not empty"):
        ContentStore.create(tmp_path, {"a.md": "x"}, "start")


def test_open_or_create_seeds_an_empty_folder(tmp_path):
    seed = tmp_path / "seed"
    (seed / "_sheet").mkdir(parents=True)
    (seed / "one.md").write_text(entry_text("One"))
    (seed / "_sheet" / "greeting.md").write_text("Hi,\n")
    store = ContentStore.open_or_create(tmp_path / "content", seed)
    assert store.paths() == ["_sheet/greeting.md", "one.md"]
    assert ContentStore.open_or_create(tmp_path / "content", seed).head() == store.head()


def test_after_commit_runs_inside_the_write(store):
    seen = []
    old = store.head()
    new = store.write({"a.md": "x"}, message="x", author=ALICE,
                      after_commit=lambda a, b: seen.append((a, b, store.head())))
    assert seen == [(old, new, new)]


def test_threads_writing_at_once_lose_nothing(store):
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        barrier.wait()
        for i in range(10):
            store.write({f"t{n}-{i}.md": f"{n} {i}"}, message=f"t{n}-{i}",
                        author=Person(f"w{n}", "w@example.com"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = store.history(limit=1000)
    assert len(history) == 81
    for newer, older in zip(history, history[1:], strict=False):
        assert store.repo[newer.commit.encode()].parents == [older.commit.encode()]
    assert len([p for p in store.paths() if p.startswith("t")]) == 80


@needs_git
def test_the_git_cli_reads_the_repository(store):
    store.write({"refund-status.md": entry_text("Refund status", "Zoë's new text")},
                message="Clearer wording", author=ALICE, committer=TARA)
    log = git(store.path, "log", "--format=%an|%ae|%cn|%s")
    assert log.splitlines()[0] == "Alice Agent|alice@example.com|Tara Trainer|Clearer wording"
    assert "Zoë's new text" in git(store.path, "show", "HEAD:refund-status.md")
    assert "refund-status.md" in git(store.path, "diff", "HEAD~1", "HEAD", "--stat")
    subprocess.run(["git", "-C", str(store.path), "fsck", "--strict"], check=True,
                   capture_output=True)


@needs_git
def test_clone_edit_and_push_back(store, tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(store.path), str(clone)], check=True)
    assert (clone / "refund-status.md").read_text() == SMALL_SHEET["refund-status.md"]
    (clone / "pushed.md").write_text(entry_text("Pushed"))
    git(clone, "add", "pushed.md")
    git(clone, "-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-qm",
        "from a clone")
    git(clone, "push", "-q", "origin", "HEAD:main")
    assert store.read("pushed.md").text == entry_text("Pushed")
    assert store.history()[0].message == "from a clone"


@needs_git
def test_a_stale_object_lock_left_by_a_killed_save_never_blocks_a_save(store):
    """A `kill -9` between dulwich creating objects/xx/yyyy.lock and renaming it."""
    from dulwich.objects import Blob

    text = "---\ntitle: Locked out\n---\nThe same save again.\n"
    blob_id = Blob.from_string(text.encode()).id.decode()
    objects = store.path / "objects"
    (objects / blob_id[:2]).mkdir(exist_ok=True)
    lock = objects / blob_id[:2] / (blob_id[2:] + ".lock")
    lock.write_bytes(b"")  # empty, as the crash leaves it
    for attempt in range(2):  # the identical save, twice: neither fails
        store.write({"locked.md": text if attempt == 0 else text + "More.\n"},
                    message="Save", author=ALICE)
    assert not lock.exists()
    assert store.read("locked.md").text.startswith("---\ntitle: Locked out")
    subprocess.run(["git", "-C", str(store.path), "fsck", "--strict"], check=True,
                   capture_output=True)


def test_an_identity_with_line_breaks_makes_a_commit_git_accepts(tmp_path):
    """A display name holding CR/LF (an agent's, written as the author on approval)
    is written on one line: `git fsck --strict` passes and the author reads back."""
    store = ContentStore.create(tmp_path / "content", {"a.md": entry_text("A")}, "Start",
                                author=Person("Tara", "tara@example.com"))
    evil = Person("Eve\r\nBcc: x@evil.example\x00", "eve@example.com\r\nX: y")
    store.write({"a.md": entry_text("A", "Changed.")}, message="Edit", author=evil)
    fsck = subprocess.run(["git", "--git-dir", str(tmp_path / "content"), "fsck", "--strict"],
                          capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr
    [last, *_] = store.history("a.md")
    assert last.author.name == "Eve Bcc: x@evil.example"
    assert "\n" not in last.author.email and "\r" not in last.author.email
