"""Several kb nodes sharing one git remote (KB_REMOTE).

Each node keeps its own clone (KB_DATA_DIR) and its own index. A save builds
its commit on the clone's head and pushes it before the clone's branch moves:
the remote's ref update is the compare-and-swap that decides who saved first.
When the remote moved on, the node fetches; the store then replays the save on
the new head, or reports the usual conflict if the same file changed. A
background thread fetches every second (and at once on the push webhook); the
index catches up with what arrives, as after an outside `git push`.

dulwich's client does the fetching and pushing, so no git binary is needed.
"""

from __future__ import annotations

import fcntl
import hmac
import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dulwich.client import get_transport_and_path
from dulwich.file import FileLocked
from dulwich.repo import Repo

from kb.store import (
    BRANCH,
    SYSTEM,
    ConflictError,
    ContentStore,
    RemoteUnavailable,
    StoreError,
    Superseded,
    read_seed_dir,
)

log = logging.getLogger("kb.remote")

UNREACHABLE = (
    "The shared content repository cannot be reached, so this change was NOT saved "
    "(not on this server either). Your text is still here: try again in a minute, "
    "and tell whoever runs kb if it persists. Searching works as usual."
)


class Remote:
    """The shared repository: fetch, push, and what we last knew of it."""

    def __init__(self, url: str):
        self.url = url
        # ssh:// runs the `ssh` command; git's own variables choose another command or
        # its options (a key, a known-hosts file), as they do for `git push`.
        ssh = os.environ.get("GIT_SSH_COMMAND") or os.environ.get("GIT_SSH") or None
        self.client, self.path = get_transport_and_path(url, ssh_command=ssh)
        self.head: str | None = None  # the remote branch's head when last seen
        self.error: str | None = None  # why the last attempt to reach it failed
        self.down_since: float | None = None
        self.checked_at: float = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- talking to the remote -----------------------------------------------------------

    def _reached(self, head: str | None) -> None:
        if self.error is not None:
            log.warning("content remote reachable again: %s", self.url)
        self.head, self.error, self.down_since = head, None, None
        self.checked_at = time.time()

    def _failed(self, exc: BaseException) -> RemoteUnavailable:
        if self.error is None:
            log.warning("content remote unreachable (%s): %s", self.url, exc)
            self.down_since = time.time()
        self.error = f"{type(exc).__name__}: {exc}"
        self.checked_at = time.time()
        return RemoteUnavailable(UNREACHABLE)

    def fetch(self, store: ContentStore) -> str | None:
        """Bring the remote branch's objects into the clone; return its head (None if empty)."""
        wanted: list[bytes | None] = []

        def wants(refs, depth=None):
            sha = refs.get(store.branch)
            wanted.append(sha)
            return [sha] if sha and sha not in store.repo.object_store else []

        try:
            with _fetching(store):
                result = self.client.fetch(self.path, store.repo, determine_wants=wants)
        except Exception as exc:  # network, protocol, missing repository: all "unreachable"
            raise self._failed(exc) from exc
        # The head whose objects were fetched, not the refs in the answer: from a path
        # remote dulwich reads those again after copying the objects, so a push landing
        # in between named a commit this clone does not have (MissingCommitError).
        head = wanted[-1] if wanted else result.refs.get(store.branch)
        self._reached(head.decode() if head else None)
        return self.head

    def advance_locked(self, store: ContentStore, head: str | None, after_commit) -> bool:
        """Move the clone's branch to `head` (write lock held); the index follows."""
        local = store.head()
        if head is None or head == local:
            return False
        if local is not None and not _within(store, local, head) and _within(store, head, local):
            return False  # fetched before a save of ours landed on top: already past it
        if not store.move_branch_locked(local, head):
            return False
        if after_commit is not None:
            try:
                after_commit(local, head)
            except Exception:  # derived data only: the index rebuilds itself
                log.exception("catching up with the content remote")
        return True

    # -- the store's hooks (kb.store.Shared), called with the write lock held ---------------

    def sync_locked(self, store: ContentStore, after_commit) -> None:
        self.advance_locked(store, self.fetch(store), after_commit)

    def publish(self, store: ContentStore, old: str | None, new: str, after_commit) -> None:
        expected = old.encode() if old else None
        moved = False

        def update_refs(refs):
            nonlocal moved
            if refs.get(store.branch) != expected:
                moved = True
                return {}  # push nothing: someone else published first
            return {store.branch: new.encode()}

        try:
            result = self.client.send_pack(self.path, update_refs,
                                           generate_pack_data=store.repo.generate_pack_data)
            refused = (result.ref_status or {}).get(store.branch)
        except FileLocked:
            # A remote on a path: another node is updating the branch this instant.
            self._clear_stale_lock(store.branch)
            time.sleep(random.uniform(0.005, 0.03))
            refused = "locked"
        except Exception as exc:
            raise self._failed(exc) from exc
        if not moved and refused is None:
            self._reached(new)
            return
        # Another node won the race: take its head, then the store replays our save.
        self.sync_locked(store, after_commit)
        raise Superseded("The shared repository moved on; saving again on its new head.")

    def _clear_stale_lock(self, branch: bytes, max_age: float = 3.0) -> None:
        """A pusher killed mid-update leaves the ref's .lock behind on a path remote;
        git would ask for it to be removed by hand. One older than any update (a ref update
        takes milliseconds; 3 s is far beyond it) is stale."""
        lock = Path(self.path) / (branch.decode() + ".lock")
        try:
            if time.time() - lock.stat().st_mtime > max_age:
                log.warning("removing a stale lock on the content remote: %s", lock)
                lock.unlink(missing_ok=True)
        except OSError:
            pass

    # -- following the remote ------------------------------------------------------------

    def catch_up(self, services: Any) -> bool:
        """Fetch, then move the clone and index to the remote head. True if it moved."""
        store = services.store
        head = self.fetch(store)  # outside the lock: saves do not wait on the network
        moved = False
        if head is not None and head != store.head():
            with store.locked():
                moved = self.advance_locked(store, head, services.sheet.after_commit)
        services.index.ensure_fresh()  # another process on this node may have moved it
        return moved

    def follow(self, services: Any, interval: float = 1.0) -> None:
        """Fetch every `interval` seconds (sooner when woken) in a daemon thread."""
        def run() -> None:
            due = time.monotonic()
            while not self._stop.is_set():
                try:
                    self.catch_up(services)
                except RemoteUnavailable:
                    pass  # recorded in self.error; saves are refused until it is back
                except Exception:
                    log.exception("following the content remote failed")
                # a fixed rate: the time a fetch takes does not stretch the period
                due = max(due + interval, time.monotonic())
                if self._wake.wait(due - time.monotonic()):
                    self._wake.clear()
                    due = time.monotonic()

        self._thread = threading.Thread(target=run, name="kb-remote-follower", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def status(self) -> dict:
        return {"url": redact(self.url), "head": self.head, "reachable": self.error is None,
                "error": self.error, "down_since": self.down_since}


@contextmanager
def _fetching(store: ContentStore) -> Iterator[None]:
    """One fetch into a clone at a time. A node's processes each follow the remote and
    would store the same new pack at once; the second then finds the pack's index
    locked (FileLocked) and took the remote for unreachable, refusing a save. A lock
    of its own, not the write lock: followers fetch without waiting for saves."""
    with open(Path(store.repo.controldir()) / "kb-fetch.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _within(store: ContentStore, older: str, newer: str, depth: int = 200) -> bool:
    """True if `older` is among the last `depth` commits of `newer` (a bounded walk:
    cheap for the usual few commits between fetches)."""
    walker = store.repo.get_walker(include=[newer.encode()], max_entries=depth)
    return any(entry.commit.id == older.encode() for entry in walker)


def redact(url: str) -> str:
    """The URL without a password, for pages and logs (an ssh:// user name alone is
    no secret, and is kept as it is)."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        creds, _, host = rest.partition("@")
        if ":" in creds:
            return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def check_hook_secret(secret: str, body: bytes, headers) -> bool:
    """The push webhook's shared secret: a plain token header (GitLab's, or kb's own)
    or GitHub/Gitea's HMAC signature of the body."""
    if not secret:
        return False
    for name in ("X-KB-Hook-Secret", "X-Gitlab-Token"):
        given = headers.get(name)
        if given and hmac.compare_digest(given.encode(), secret.encode()):
            return True
    signature = headers.get("X-Hub-Signature-256", "")
    if signature.startswith("sha256="):
        mine = hmac.new(secret.encode(), body, "sha256").hexdigest()
        return hmac.compare_digest(signature[7:], mine)
    return False


def open_clone(data_dir: str, seed_dir: str, remote: Remote) -> ContentStore:
    """This node's clone of the remote, caught up before the node answers anything.

    A new node clones; the first node on an empty remote seeds it with the starter
    sheet. A node that cannot reach the remote at start serves what its clone has."""
    path = Path(data_dir)
    if path.exists() and any(path.iterdir()):
        store = ContentStore(path)
        store.shared = remote
        try:
            with store.locked():
                remote.sync_locked(store, None)
        except RemoteUnavailable:
            log.warning("starting from this node's own copy: the content remote %s "
                        "cannot be reached", redact(remote.url))
        return store
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)  # the customers' words: as private as a single machine's content
    Repo.init_bare(str(path))
    Repo(str(path)).refs.set_symbolic_ref(b"HEAD", BRANCH)
    store = ContentStore(path)
    store.shared = remote
    try:
        head = remote.fetch(store)
    except RemoteUnavailable:
        raise StoreError(f"Cannot make this node's copy of {redact(remote.url)}: it cannot "
                         f"be reached ({remote.error}). Check KB_REMOTE and try again.") from None
    if head is None:
        try:
            store.write(read_seed_dir(Path(seed_dir)), author=SYSTEM,
                        message="Start the cheat sheet from the starter entries")
        except ConflictError:  # another node seeded it first: take theirs
            pass
    with store.locked():
        remote.sync_locked(store, None)
    return store
