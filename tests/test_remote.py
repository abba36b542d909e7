"""Several nodes sharing one git remote: each with its own clone and index, one database."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import threading
import time
from pathlib import Path

import pytest

from kb import create_app
from kb.store import ContentStore
from kb.users import create_user
from tests.conftest import PASSWORD, PEOPLE, entry_text, login, write_seed

SECRET = "hook-secret-for-tests"


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def remote(tmp_path) -> Path:
    path = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(path))
    return path


@pytest.fixture
def shared_db(database_url, tmp_path) -> str:
    return database_url or f"sqlite:///{tmp_path / 'shared.sqlite'}"


class Nodes:
    """Apps started on one remote and one database, stopped at the end."""

    def __init__(self, base: Path, remote: Path, db_url: str):
        self.base, self.remote, self.db_url = base, remote, db_url
        self.seed = write_seed(base / "seed")
        self.apps: list = []

    def start(self, name: str, **config):
        app = create_app({
            "INSTANCE_DIR": str(self.base / name), "SEED_DIR": str(self.seed),
            "REMOTE": str(self.remote), "DATABASE_URL": self.db_url, "TESTING": True,
            "SECRET_KEY": "one-key-for-every-node", "HOOK_SECRET": SECRET, **config})
        if not self.apps:
            for user, role in PEOPLE.items():
                create_user(app.extensions["kb_db"], user, PASSWORD, role=role,
                            display_name=user.title())
        self.apps.append(app)
        return app

    def stop(self, app) -> None:
        app.extensions["kb"].remote.stop()
        app.extensions["kb"].index.close()
        app.extensions["kb"].store.close()
        app.extensions["kb_db"].dispose()
        self.apps.remove(app)


@pytest.fixture
def nodes(tmp_path, remote, shared_db):
    group = Nodes(tmp_path, remote, shared_db)
    yield group
    for app in list(group.apps):
        group.stop(app)


def signed_in(app, user: str = "tara"):
    client = app.test_client()
    assert login(client, user).status_code == 302
    return client


def put(client, slug: str, answer: str, base_version):
    text = entry_text(slug.replace("-", " ").capitalize(), answer)
    return client.put(f"/api/entries/{slug}", json={
        "markdown": text, "base_version": base_version, "reason": "test edit"})


def version(client, slug: str):
    return client.get(f"/api/entries/{slug}").get_json()["version"]


def found(client, words: str) -> list[str]:
    return [r["slug"] for r in client.get("/api/search", query_string={"q": words})
            .get_json()["results"]]


def wait_for(check, seconds: float = 2.0) -> bool:
    """Poll until check() is true or the time is up (the bound, not a timing assertion)."""
    end = time.monotonic() + seconds
    while True:
        if check():
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.02)


def remote_text(remote: Path, path: str) -> str:
    return git("--git-dir", str(remote), "show", f"main:{path}")


# -- one remote, two nodes -----------------------------------------------------------------


def test_the_first_node_seeds_the_remote_and_the_second_clones_it(nodes, remote):
    a = nodes.start("a")
    b = nodes.start("b")
    head = git("--git-dir", str(remote), "rev-parse", "main").strip()
    assert a.extensions["kb"].store.head() == head == b.extensions["kb"].store.head()
    assert "refund-status" in found(signed_in(b, "alice"), "refund")
    git("--git-dir", str(remote), "fsck", "--strict")
    # each node's clone is as private as a single machine's content
    for node in (a, b):
        mode = Path(node.extensions["kb"].store.path).stat().st_mode & 0o777
        assert mode == 0o700, oct(mode)


def test_a_save_on_one_node_is_findable_on_the_other(nodes, remote):
    a, b = nodes.start("a"), nodes.start("b")
    tara, alice_b = signed_in(a), signed_in(b, "alice")
    response = put(tara, "refund-status", "The zanzibar refund left today.",
                   version(tara, "refund-status"))
    assert response.status_code == 200, response.get_json()
    assert "zanzibar" in remote_text(remote, "refund-status.md")  # pushed before it returned
    assert wait_for(lambda: "refund-status" in found(alice_b, "zanzibar"))


def test_concurrent_saves_to_different_entries_both_land(nodes, remote):
    a, b = nodes.start("a"), nodes.start("b")
    clients = {"a": signed_in(a), "b": signed_in(b)}
    bases = {"a": version(clients["a"], "refund-status"),
             "b": version(clients["b"], "wrong-colour")}
    barrier, results = threading.Barrier(2), {}

    def save(node: str, slug: str, word: str) -> None:
        barrier.wait()
        results[node] = put(clients[node], slug, f"Now with {word}.", bases[node])

    threads = [threading.Thread(target=save, args=("a", "refund-status", "quokka")),
               threading.Thread(target=save, args=("b", "wrong-colour", "axolotl"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["a"].status_code == 200 and results["b"].status_code == 200
    assert "quokka" in remote_text(remote, "refund-status.md")
    assert "axolotl" in remote_text(remote, "wrong-colour.md")
    for client in clients.values():
        assert wait_for(lambda c=client: found(c, "quokka") and found(c, "axolotl"))


def test_concurrent_saves_to_the_same_entry_one_lands_one_conflicts(nodes, remote):
    a, b = nodes.start("a"), nodes.start("b")
    clients = {"a": signed_in(a), "b": signed_in(b)}
    base = version(clients["a"], "refund-status")
    barrier, results = threading.Barrier(2), {}

    def save(node: str, word: str) -> None:
        barrier.wait()
        results[node] = (word, put(clients[node], "refund-status", f"Now {word}.", base))

    threads = [threading.Thread(target=save, args=(n, w))
               for n, w in (("a", "pelican"), ("b", "flamingo"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for _, r in results.values())
    assert codes == [200, 409]
    (won, _), = [v for v in results.values() if v[1].status_code == 200]
    (lost, conflict), = [v for v in results.values() if v[1].status_code == 409]
    assert f"Now {won}." in remote_text(remote, "refund-status.md")
    body = conflict.get_json()
    assert f"Now {lost}." in body["yours"]["markdown"]  # the loser's text comes back
    assert f"Now {won}." in body["current"]["markdown"]  # next to what won
    git("--git-dir", str(remote), "fsck", "--strict")


def test_a_save_replays_on_a_head_this_node_has_not_fetched_yet(nodes, remote):
    a = nodes.start("a", FETCH_INTERVAL=3600.0)  # only saves and the webhook fetch
    b = nodes.start("b", FETCH_INTERVAL=3600.0)
    tara_a, tara_b = signed_in(a), signed_in(b)
    base_b = version(tara_b, "wrong-colour")
    assert put(tara_a, "refund-status", "Sent by heron.", version(tara_a, "refund-status")) \
        .status_code == 200
    assert b.extensions["kb"].store.head() != a.extensions["kb"].store.head()
    assert put(tara_b, "wrong-colour", "Shade by ibis.", base_b).status_code == 200
    log = git("--git-dir", str(remote), "log", "--format=%s", "main")
    assert log.count("test edit") == 2
    assert "heron" in remote_text(remote, "refund-status.md")


def test_the_push_webhook_fetches_at_once_with_the_right_secret(nodes, remote):
    a = nodes.start("a", FETCH_INTERVAL=3600.0)
    b = nodes.start("b", FETCH_INTERVAL=3600.0)
    tara = signed_in(a)
    put(tara, "refund-status", "The okapi refund.", version(tara, "refund-status"))
    hook = b.test_client()
    assert hook.post("/api/hooks/push", json={}).status_code == 403
    assert hook.post("/api/hooks/push", json={},
                     headers={"X-KB-Hook-Secret": "wrong"}).status_code == 403
    # not fetched yet (a search could still list the entry by likeness, so ask git)
    assert b.extensions["kb"].store.head() != a.extensions["kb"].store.head()
    body = b'{"ref": "refs/heads/main"}'
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = hook.post("/api/hooks/push", data=body, content_type="application/json",
                         headers={"X-Hub-Signature-256": signature})
    assert response.status_code == 200
    assert response.get_json()["index"] == a.extensions["kb"].store.head()
    assert found(signed_in(b, "alice"), "okapi")[:1] == ["refund-status"]


def test_an_outside_push_to_the_remote_reaches_every_node(nodes, remote, tmp_path):
    a, b = nodes.start("a"), nodes.start("b")
    work = tmp_path / "work"
    git("clone", "-q", str(remote), str(work))
    (work / "refund-status.md").write_text(entry_text("Refund status", "A narwhal refund."))
    git("-c", "user.name=T", "-c", "user.email=t@x", "commit", "-qam", "outside", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    for client in (signed_in(a, "alice"), signed_in(b, "alice")):
        assert wait_for(lambda c=client: found(c, "narwhal"))


# -- health and a failing remote -------------------------------------------------------------


def test_healthz_and_readyz(nodes):
    a = nodes.start("a")
    client = a.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["ready"] and body["database"] and body["remote"]["reachable"]
    assert body["index"] == body["remote"]["head"]


def test_readyz_is_not_ready_while_the_index_is_behind_the_remote(nodes):
    a = nodes.start("a", FETCH_INTERVAL=3600.0)
    b = nodes.start("b", FETCH_INTERVAL=3600.0)
    tara = signed_in(a)
    put(tara, "refund-status", "Behind.", version(tara, "refund-status"))
    svc = b.extensions["kb"]
    svc.remote.fetch(svc.store)  # b now knows the remote moved, its index has not
    response = b.test_client().get("/readyz")
    assert response.status_code == 503 and not response.get_json()["ready"]
    svc.remote.catch_up(svc)
    assert b.test_client().get("/readyz").status_code == 200


def test_remote_unreachable_refuses_saves_serves_searches_and_recovers(nodes, remote, tmp_path):
    a = nodes.start("a")
    tara, alice = signed_in(a), signed_in(a, "alice")
    base = version(tara, "refund-status")
    head = a.extensions["kb"].store.head()
    hidden = tmp_path / "away.git"
    remote.rename(hidden)
    try:
        response = put(tara, "refund-status", "Saved while away.", base)
        assert response.status_code == 503
        assert "cannot be reached" in response.get_json()["message"]
        assert "NOT saved" in response.get_json()["message"]
        assert a.extensions["kb"].store.head() == head  # no local-only save either
        assert "refund-status" in found(alice, "refund")  # searches still served
        assert wait_for(lambda: a.extensions["kb"].remote.error is not None)
        page = tara.get("/").get_data(as_text=True)
        assert "cannot reach the shared content repository" in page
        assert "cannot reach" not in alice.get("/").get_data(as_text=True)  # trainers only
        assert a.test_client().get("/healthz").status_code == 200
    finally:
        hidden.rename(remote)
    assert wait_for(lambda: a.extensions["kb"].remote.error is None, 5)
    assert "cannot reach" not in tara.get("/").get_data(as_text=True)
    assert put(tara, "refund-status", "Saved once back.", base).status_code == 200
    assert "Saved once back." in remote_text(remote, "refund-status.md")


def test_a_new_node_cannot_start_without_its_remote(tmp_path, shared_db):
    from kb.store import StoreError

    group = Nodes(tmp_path, tmp_path / "missing.git", shared_db)
    with pytest.raises(StoreError, match="cannot be reached"):
        group.start("a")


def test_a_restarted_node_catches_up_before_it_answers(nodes, remote):
    a = nodes.start("a")
    b = nodes.start("b")
    nodes.stop(b)
    tara = signed_in(a)
    put(tara, "refund-status", "The wombat refund.", version(tara, "refund-status"))
    b = nodes.start("b", FETCH_INTERVAL=3600.0)  # so only the start-up catch-up counts
    assert b.extensions["kb"].index.commit == a.extensions["kb"].store.head()
    assert "refund-status" in found(signed_in(b, "alice"), "wombat")
    assert ContentStore(remote).head() == a.extensions["kb"].store.head()


def test_a_fetch_older_than_a_save_never_moves_the_clone_back(nodes):
    a = nodes.start("a", FETCH_INTERVAL=3600.0)
    svc = a.extensions["kb"]
    fetched = svc.remote.fetch(svc.store)  # the follower read the remote head...
    tara = signed_in(a)
    put(tara, "refund-status", "Newer.", version(tara, "refund-status"))  # ...then a save
    saved = svc.store.head()
    with svc.store.locked():
        assert not svc.remote.advance_locked(svc.store, fetched, svc.sheet.after_commit)
    assert svc.store.head() == saved and svc.index.commit == saved
