"""Two `kb serve` processes, one bare remote, one PostgreSQL: a node killed mid-save."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from kb.db import Database
from kb.users import create_token, create_user
from tests.conftest import PASSWORD, entry_text, write_seed
from tests.node_procs import NodeProcess


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def cluster(tmp_path, pg_cluster):
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(remote))
    url = pg_cluster.fresh_database()
    db = Database(url)
    create_user(db, "tara", PASSWORD, role="trainer", display_name="Tara")
    token = create_token(db, "tara", "nodes test")
    db.dispose()
    seed = write_seed(tmp_path / "seed")
    nodes = [NodeProcess(n, tmp_path, str(remote), url, seed) for n in ("a", "b")]
    yield remote, token, nodes
    for node in nodes:
        node.kill()
    pg_cluster.drop_database(url)


def save(node: NodeProcess, token: str, slug: str, answer: str, base):
    return node.request("PUT", f"/api/entries/{slug}", token, {
        "markdown": entry_text(slug.replace("-", " ").capitalize(), answer),
        "base_version": base, "reason": "nodes test"})


def test_a_node_killed_mid_save_loses_nothing_and_catches_up(cluster):
    remote, token, (a, b) = cluster
    a.start()
    b.start()
    saved: list[str] = []  # commits whose save returned success
    stop = threading.Event()

    def keep_saving() -> None:
        base = a.request("GET", "/api/entries/refund-status", token)[1]["version"]
        n = 0
        while not stop.is_set():
            n += 1
            try:
                status, body = save(a, token, "refund-status", f"Save number {n}.", base)
            except OSError:
                return  # the node is gone
            if status == 200:
                saved.append(body["commit"])
                base = body["version"]

    saver = threading.Thread(target=keep_saving)
    saver.start()
    while len(saved) < 5 and saver.is_alive():
        time.sleep(0.01)
    a.kill()  # SIGKILL while saves are in flight
    stop.set()
    saver.join(timeout=60)
    assert len(saved) >= 5

    # B keeps serving, the remote is sound and holds every save that returned success
    assert "refund-status" in b.search(token, "refund")
    git("--git-dir", str(remote), "fsck", "--strict")
    in_remote = set(git("--git-dir", str(remote), "rev-list", "main").split())
    assert set(saved) <= in_remote

    # B saves while A is down; A, restarted, has it before it answers anything
    base = b.request("GET", "/api/entries/wrong-colour", token)[1]["version"]
    status, body = save(b, token, "wrong-colour", "The platypus shade.", base)
    assert status == 200, body
    a.start()
    assert "wrong-colour" in a.search(token, "platypus")
    status, ready = a.request("GET", "/readyz")
    assert status == 200 and ready["index"] == body["commit"]
