"""A node's fetches racing other nodes' pushes and its own other processes' fetches."""

from __future__ import annotations

import multiprocessing
import subprocess
from pathlib import Path

import pytest

from kb.remote import Remote, open_clone
from tests.conftest import entry_text, write_seed
from tests.fetch_worker import fetch_rounds

ROUNDS = 40


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@x", *args],
                          cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def shared(tmp_path):
    """A bare remote holding the sheet, a node's clone of it, and an outside clone to
    push from as another node would."""
    bare = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(bare))
    store = open_clone(str(tmp_path / "clone"), str(write_seed(tmp_path / "seed")),
                       Remote(str(bare)))
    outside = tmp_path / "outside"
    git("clone", "-q", str(bare), str(outside))
    yield bare, store, outside
    store.close()


def push(outside: Path, words: str) -> str:
    (outside / "refund-status.md").write_text(entry_text("Refund status", words))
    git("commit", "-qam", words, cwd=outside)
    git("push", "-q", "origin", "main", cwd=outside)
    return git("rev-parse", "HEAD", cwd=outside).strip()


def test_a_push_landing_during_a_fetch_is_fetched_next_time_not_named_now(shared, monkeypatch):
    """From a path remote dulwich copies the objects of the head it was asked for, then
    reads the refs again: a push landing in between named a head whose commit the
    clone did not have, and walking it failed with MissingCommitError."""
    bare, store, outside = shared
    first = push(outside, "First walrus.")
    objects = store.repo.object_store
    store_pack = objects.add_pack_data
    second: list[str] = []

    def then_another_node_pushes(*args, **kwargs):
        result = store_pack(*args, **kwargs)
        if not second:
            second.append(push(outside, "Second walrus."))
        return result

    monkeypatch.setattr(objects, "add_pack_data", then_another_node_pushes)
    remote = store.shared

    assert remote.fetch(store) == first
    assert first.encode() in objects
    with store.locked():
        remote.sync_locked(store, None)  # walks the history: every commit named is here
    assert store.head() == second[0]


def test_processes_of_one_node_fetching_at_once_never_find_the_remote_unreachable(shared):
    """Every process of a node follows the remote; two storing the same new pack at
    once found its index locked, and the node refused saves as if the remote were down."""
    bare, store, outside = shared
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    workers = [ctx.Process(target=fetch_rounds,
                           args=(str(store.repo.path), str(bare), ROUNDS, barrier, results))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    for n in range(ROUNDS):
        push(outside, f"Refund number {n}.")
        barrier.wait(timeout=120)  # go
        barrier.wait(timeout=120)  # both fetched
    errors = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert errors == [[], []]
    tip = git("--git-dir", str(bare), "rev-parse", "main").strip()
    assert tip.encode() in store.repo.object_store  # the workers fetched it here
