"""One process of a node following the remote, run by test_remote_races.py."""

from __future__ import annotations

from kb.remote import Remote
from kb.store import ContentStore, RemoteUnavailable


def fetch_rounds(clone: str, remote: str, rounds: int, barrier, results) -> None:
    """Each round: wait for the parent's push, then fetch at the same moment as the
    other worker; report what went wrong."""
    store = ContentStore(clone)
    follower = Remote(remote)
    store.shared = follower
    errors = []
    for _ in range(rounds):
        barrier.wait()  # the parent has pushed a new commit
        try:
            follower.fetch(store)
        except RemoteUnavailable:
            errors.append(follower.error)
        barrier.wait()  # both done: the parent may push again
    store.close()
    results.put(errors)
