"""The content store: the cheat sheet as files in a git repository.

Every write is one commit, written straight into the object store (blobs,
trees, commit) and published by a compare-and-swap of the branch ref, so a
crash leaves either the old or the new commit, never a half-written file. The
repository is bare, so the team can `git clone` it for backups and `git push`
edits into it; it stays an ordinary repository that the git CLI reads.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dulwich.diff_tree import tree_changes
from dulwich.file import FileLocked
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from kb.errors import KbError
from kb.text import single_line

log = logging.getLogger("kb")
BRANCH = b"refs/heads/main"
REPLAY_SECONDS = 5.0  # how long a save keeps replaying on a busy or just-crashed remote
ENTRY_SUFFIX = ".md"
SHEET_DIR = "_sheet"
_DIR_MODE = 0o040000


class StoreError(KbError):
    """A problem with the content repository that the user can act on."""


class ConflictError(StoreError):
    """A save was based on a version that is no longer the current one."""

    def __init__(self, path: str, based_on: str | None, current: str | None):
        self.path = path
        self.based_on = based_on
        self.current = current
        super().__init__(
            f"{path} was changed by someone else since you opened it "
            f"(you started from {short(based_on)}, it is now {short(current)})."
        )


class Superseded(StoreError):
    """The shared repository moved on before our commit was published; the branch
    now points at its new head, and the write is replayed on top of it."""


class RemoteUnavailable(StoreError):
    """The shared repository cannot be reached, so nothing was saved."""


class Shared(Protocol):
    """The shared repository behind this clone (kb/remote.py), if there is one."""

    def sync_locked(self, store: ContentStore, after_commit) -> None: ...

    def publish(self, store: ContentStore, old: str | None, new: str, after_commit) -> None: ...


def short(version: str | None) -> str:
    return version[:7] if version else "nothing"


def _ident_part(text: str) -> str:
    return single_line((text or "").replace("<", "").replace(">", ""))


@dataclass(frozen=True)
class Person:
    name: str
    email: str

    def ident(self) -> bytes:
        """`Name <email>` as git writes it: no angle brackets, and no line breaks or
        other control characters (a display name holding CR/LF would otherwise make a
        commit that `git fsck` and a checking remote refuse)."""
        name = _ident_part(self.name) or "unknown"
        email = _ident_part(self.email).replace(" ", "")
        return f"{name} <{email}>".encode()

    @classmethod
    def parse(cls, ident: bytes) -> Person:
        text = ident.decode("utf-8", "replace")
        name, _, rest = text.partition("<")
        return cls(name.strip(), rest.rstrip(">").strip())


SYSTEM = Person("kb", "kb@localhost")


@dataclass(frozen=True)
class FileVersion:
    path: str
    text: str
    version: str  # the blob id: changes exactly when the text changes
    commit: str


@dataclass(frozen=True)
class Revision:
    commit: str
    author: Person
    committer: Person
    time: int  # seconds since the epoch, committer time
    message: str
    version: str | None  # the file's blob id in that commit, None if deleted


class ContentStore:
    """Reads and writes the content repository. Knows nothing of Flask."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        try:
            self.repo = Repo(str(self.path))
        except Exception as exc:  # dulwich raises NotGitRepository and friends
            raise StoreError(
                f"{self.path} is not a git repository. Point KB_DATA_DIR at the content "
                "repository, or at an empty folder to start a new sheet."
            ) from exc
        # Fast zlib for new loose objects: a 10,000-entry tree is 700 KB, and the
        # default level spends ~18 ms of every save on it (level 1: ~7 ms).
        # `git gc` packs and delta-compresses them later as usual.
        self.repo.object_store.loose_compression_level = 1
        self._lock_path = Path(self.repo.controldir()) / "kb-write.lock"
        self._thread_lock = threading.Lock()
        self._tree_cache: dict[bytes, dict[str, bytes]] = {}
        self.branch = self._pick_branch()
        # With a shared remote, writes are published there first (kb/remote.py).
        self.shared: Shared | None = None

    def close(self) -> None:
        """Close the repository's open pack files (fetches from a remote write packs)."""
        self.repo.close()

    # -- creating ---------------------------------------------------------------

    @classmethod
    def create(
        cls, path: str | os.PathLike[str], files: Mapping[str, str], message: str,
        author: Person = SYSTEM,
    ) -> ContentStore:
        """Make a new bare repository holding `files` in one first commit."""
        path = Path(path)
        if not path.exists():
            path.mkdir(parents=True)
            path.chmod(0o700)  # the customers' words: not for every local account
        if any(path.iterdir()):
            raise StoreError(f"{path} is not empty and not a git repository; refusing to touch it.")
        Repo.init_bare(str(path))
        repo = Repo(str(path))
        repo.refs.set_symbolic_ref(b"HEAD", BRANCH)
        store = cls(path)
        store.write(dict(files), message=message, author=author)
        return store

    @classmethod
    def open_or_create(
        cls, path: str | os.PathLike[str], seed_dir: str | os.PathLike[str]
    ) -> ContentStore:
        path = Path(path)
        if path.exists() and any(path.iterdir()):
            return cls(path)
        files = read_seed_dir(Path(seed_dir))
        return cls.create(path, files, "Start the cheat sheet from the starter entries")

    def _pick_branch(self) -> bytes:
        try:
            target = self.repo.refs.get_symrefs().get(b"HEAD")
        except Exception:
            target = None
        return target or BRANCH

    # -- reading ----------------------------------------------------------------

    def head(self) -> str | None:
        try:
            sha = self.repo.refs[self.branch]
        except KeyError:
            return None
        return sha.decode()

    def _files(self, commit: str | None = None) -> dict[str, bytes]:
        """path -> blob id for every file in the commit (cached per commit)."""
        commit = commit or self.head()
        if commit is None:
            return {}
        key = commit.encode()
        cached = self._tree_cache.get(key)
        if cached is not None:
            return cached
        try:
            commit_obj = self.repo[key]
        except KeyError as exc:
            raise StoreError(f"No version {commit} in the content repository.") from exc
        if not isinstance(commit_obj, Commit):
            raise StoreError(f"{commit} is not a commit.")
        files: dict[str, bytes] = {}
        self._walk_tree(commit_obj.tree, "", files)
        self._remember_tree(commit, files)
        return files

    def _remember_tree(self, commit: str, files: dict[str, bytes]) -> None:
        if len(self._tree_cache) >= 8:
            self._tree_cache.pop(next(iter(self._tree_cache)))
        self._tree_cache[commit.encode()] = files

    def _walk_tree(self, tree_id: bytes, prefix: str, out: dict[str, bytes]) -> None:
        tree = self.repo[tree_id]
        for item in tree.iteritems():
            name = prefix + item.path.decode("utf-8", "replace")
            if item.mode & 0o170000 == _DIR_MODE:
                self._walk_tree(item.sha, name + "/", out)
            else:
                out[name] = item.sha

    def paths(self, commit: str | None = None) -> list[str]:
        return sorted(self._files(commit))

    def entry_paths(self, commit: str | None = None) -> list[str]:
        return [p for p in self.paths(commit) if is_entry_path(p)]

    def version_of(self, path: str, commit: str | None = None) -> str | None:
        sha = self._files(commit).get(path)
        return sha.decode() if sha else None

    def read(self, path: str, commit: str | None = None) -> FileVersion | None:
        commit = commit or self.head()
        if commit is None:
            return None
        sha = self._files(commit).get(path)
        if sha is None:
            return None
        return FileVersion(path, self.read_blob(sha.decode()), sha.decode(), commit)

    def read_blob(self, version: str) -> str:
        return self.read_bytes(version).decode("utf-8", "replace")

    def read_bytes(self, version: str) -> bytes:
        """A file's bytes by blob id. StoreError when the tree points at something
        that is not a file here (a submodule link, an object never pushed)."""
        try:
            blob = self.repo[version.encode()]
        except KeyError:
            raise StoreError(f"its content ({short(version)}) is not in the repository: "
                             "it is a submodule link or was never pushed; "
                             "replace it with an ordinary file") from None
        if not isinstance(blob, Blob):
            raise StoreError("it is not an ordinary file (a submodule link?); "
                             "replace it with an ordinary file")
        return blob.as_raw_string()

    def changes_between(self, old: str | None, new: str | None) -> list[str]:
        """Paths added, changed or deleted going from commit `old` to `new`."""
        if (old is None or old.encode() in self._tree_cache) and (
                new is None or new.encode() in self._tree_cache):
            # both trees known (the usual case right after a write): compare the maps
            a = self._tree_cache[old.encode()] if old else {}
            b = self._tree_cache[new.encode()] if new else {}
            return sorted(p for p in a.keys() | b.keys() if a.get(p) != b.get(p))
        old_tree = self.repo[old.encode()].tree if old else None
        new_tree = self.repo[new.encode()].tree if new else None
        changed: set[str] = set()
        for change in tree_changes(self.repo.object_store, old_tree, new_tree):
            for side in (change.old, change.new):
                if side is not None and side.path is not None:
                    changed.add(side.path.decode("utf-8", "replace"))
        return sorted(changed)

    def is_ancestor(self, older: str, newer: str) -> bool:
        try:
            walker = self.repo.get_walker(include=[newer.encode()])
            return any(e.commit.id == older.encode() for e in walker)
        except KeyError:
            return False

    def commit_info(self, commit: str) -> Revision:
        obj = self.repo[commit.encode()]
        return revision_of(obj, None)

    def history(self, path: str | None = None, limit: int = 200) -> list[Revision]:
        """Newest first. With a path, only the commits that changed that file."""
        head = self.head()
        if head is None:
            return []
        paths = [path.encode()] if path else None
        out = []
        for entry in self.repo.get_walker(include=[head.encode()], paths=paths, max_entries=limit):
            version = None
            if path:
                version = self.version_of(path, entry.commit.id.decode())
            out.append(revision_of(entry.commit, version))
        return out

    # -- writing ----------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise writers across threads and processes."""
        with self._thread_lock:
            with open(self._lock_path, "a+") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def write(
        self,
        changes: Mapping[str, str | None],
        *,
        message: str,
        author: Person,
        committer: Person | None = None,
        expected: Mapping[str, str | None] | None = None,
        after_commit=None,
    ) -> str | None:
        """Commit `changes` (path -> new text, None deletes) as one commit.

        `expected` maps paths to the version the editor started from (None for
        "must not exist yet"); a mismatch raises ConflictError and writes nothing.
        `after_commit(old_head, new_head)` runs inside the lock, so derived data
        (the search index) is updated before the next writer starts.
        Returns the new commit id, or None when nothing changed.
        """
        for path in changes:
            check_path(path)
        if not message.strip():
            raise StoreError("Every change needs a reason: say why in a few words.")
        with self.locked():
            if self.shared is None:
                return self._write_locked(changes, message, author, committer, expected,
                                          after_commit)
            self.shared.sync_locked(self, after_commit)
            base = self._files(self.head())
            # Replays are quick; a ref lock left by a node killed mid-push is cleared once
            # it is older than any push (kb.remote), so keep trying a few seconds for that.
            deadline = time.monotonic() + REPLAY_SECONDS
            attempt = 0
            while attempt < 20 or time.monotonic() < deadline:
                attempt += 1
                try:
                    return self._write_locked(changes, message, author, committer, expected,
                                              after_commit)
                except Superseded:
                    # Another node published first. Replay on its head unless it changed
                    # one of our files: then the usual conflict, as if it had saved here.
                    sha = {p: base.get(p) for p in changes}
                    implicit = {p: v.decode() if v else None for p, v in sha.items()}
                    expected = {**implicit, **(expected or {})}
            raise StoreError("Too many saves at once on other nodes; please save again.")

    def _write_locked(self, changes, message, author, committer, expected, after_commit):
        old_head = self.head()
        current = self._files(old_head)
        for path, based_on in (expected or {}).items():
            now = current.get(path)
            now_hex = now.decode() if now else None
            if now_hex != based_on:
                raise ConflictError(path, based_on, now_hex)
        new_files = dict(current)
        blobs = []
        for path, text in changes.items():
            if text is None:
                new_files.pop(path, None)
            else:
                # text, or the bytes of a file that goes with an answer (kb.attachments)
                blob = Blob.from_string(text if isinstance(text, bytes) else
                                        text.encode("utf-8"))
                blobs.append(blob)
                new_files[path] = blob.id
        if new_files == current and old_head is not None:
            return None
        for blob in blobs:
            if blob.id not in self.repo.object_store:
                self._add_object(blob)
        tree_id = self._build_tree(new_files)
        new_head = self._commit(tree_id, old_head, message, author, committer or author,
                                after_commit)
        self._remember_tree(new_head, new_files)
        if after_commit is not None:
            try:
                after_commit(old_head, new_head)
            except Exception:  # derived data only: the commit itself is safe in git
                log.exception("after a commit to %s", self.path)
        return new_head

    def _build_tree(self, files: dict[str, bytes]) -> bytes:
        """Write the trees for `files` (path -> blob id); unchanged ones already exist."""
        root: dict = {}
        for path, sha in files.items():
            node = root
            *dirs, name = path.split("/")
            for d in dirs:
                node = node.setdefault(d, {})
            node[name] = sha
        return self._write_tree(root)

    def _write_tree(self, node: dict) -> bytes:
        # git's tree format by hand, in one piece: dulwich's item-by-item helpers
        # cost most of a save on a 10,000-entry sheet. Entries are sorted by name,
        # a folder's name as if it ended in "/".
        items = []
        for name, child in node.items():
            key = name.encode()
            if isinstance(child, dict):
                items.append((key + b"/", b"40000 " + key, self._write_tree(child)))
            else:
                items.append((key, b"100644 " + key, child))
        items.sort()
        raw = b"".join(b"%s\0%s" % (head, bytes.fromhex(sha.decode("ascii")))
                       for _, head, sha in items)
        tree = Tree.from_raw_string(Tree.type_num, raw)
        if tree.id not in self.repo.object_store:
            self._add_object(tree)
        return tree.id

    def _add_object(self, obj) -> None:
        """Write one loose object. Call with the write lock held.

        dulwich writes `objects/xx/yyyy.lock` and renames it into place; a writer
        killed in between leaves the lock behind, and every later write of the
        same object would fail on it. Loose objects are written only under our
        write lock (git itself writes temporary files, never .lock files), so
        any such lock here belongs to a writer that is gone: clear it, write again."""
        try:
            self.repo.object_store.add_object(obj)
        except FileLocked as exc:
            Path(os.fsdecode(exc.lockfilename)).unlink(missing_ok=True)
            self.repo.object_store.add_object(obj)

    def _move_branch(self, old: bytes | None, new: bytes) -> bool:
        if old is None:
            return self.repo.refs.add_if_new(self.branch, new)
        return self.repo.refs.set_if_equals(self.branch, old, new)

    def move_branch_locked(self, old: str | None, new: str) -> bool:
        """Point the branch at `new` if it is still at `old` (write lock held)."""
        before = old.encode() if old else None
        try:
            return self._move_branch(before, new.encode())
        except FileLocked:
            self._clear_stale_ref_lock()
            return self._move_branch(before, new.encode())

    def _clear_stale_ref_lock(self, min_age: float = 2.0) -> None:
        lock = Path(self.repo.controldir()) / (self.branch.decode() + ".lock")
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return
        if age < min_age:  # maybe a `git push` from outside at this very moment
            time.sleep(min_age - age)
            if not lock.exists():
                return
        lock.unlink(missing_ok=True)

    def _commit(
        self, tree_id: bytes, parent: str | None, message: str, author: Person,
        committer: Person, after_commit=None,
    ) -> str:
        commit = Commit()
        commit.tree = tree_id
        commit.parents = [parent.encode()] if parent else []
        commit.author = author.ident()
        commit.committer = committer.ident()
        now = int(time.time())
        offset = -time.timezone if not time.localtime().tm_isdst else -time.altzone
        commit.author_time = commit.commit_time = now
        commit.author_timezone = commit.commit_timezone = offset
        commit.encoding = b"UTF-8"
        text = message.strip() + "\n"
        commit.message = text.encode("utf-8")
        self._add_object(commit)
        if self.shared is not None:
            # The push is the compare-and-swap that counts: nothing is saved
            # here that the shared repository did not take first.
            self.shared.publish(self, parent, commit.id.decode(), after_commit)
        old = parent.encode() if parent else None
        try:
            ok = self._move_branch(old, commit.id)
        except FileLocked:
            # A writer killed mid-update leaves the ref's .lock file behind. We hold
            # the write lock, so no writer of ours is using it: clear it and go on.
            self._clear_stale_ref_lock()
            ok = self._move_branch(old, commit.id)
        if not ok:
            # Someone wrote without our lock (a `git push`, say): nothing is lost,
            # the caller can retry on top of the new version.
            raise StoreError("The content repository moved on while saving; please save again.")
        return commit.id.decode()


def revision_of(commit: Commit, version: str | None) -> Revision:
    return Revision(
        commit=commit.id.decode(),
        author=Person.parse(commit.author),
        committer=Person.parse(commit.committer),
        time=commit.commit_time,
        message=commit.message.decode("utf-8", "replace").strip(),
        version=version,
    )


def is_entry_path(path: str) -> bool:
    return "/" not in path and path.endswith(ENTRY_SUFFIX) and not path.startswith(".")


def entry_path(slug: str) -> str:
    return slug + ENTRY_SUFFIX


def slug_of(path: str) -> str:
    return path[: -len(ENTRY_SUFFIX)]


def check_path(path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..", ".git") for p in parts):
        raise StoreError(f"{path!r} is not a valid file name in the sheet.")


def read_seed_dir(seed_dir: Path) -> dict[str, str]:
    """The starter files: every .md at the top, plus everything in _sheet/."""
    if not seed_dir.is_dir():
        raise StoreError(f"Starter entries folder {seed_dir} is missing.")
    files = {}
    for path in sorted(seed_dir.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".py":
            rel = path.relative_to(seed_dir).as_posix()
            files[rel] = path.read_text(encoding="utf-8")
    return files
