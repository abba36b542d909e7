"""Two real `kb serve` nodes behind a real HAProxy running scripts/haproxy.cfg, with its
health check on /readyz: no sticky sessions, and a node that is behind or stopped is
taken out while requests keep succeeding on the other."""

from __future__ import annotations

import csv
import fcntl
import http.cookiejar
import io
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from kb.db import Database
from kb.users import create_token, create_user
from tests.conftest import PASSWORD, ROOT, entry_text, write_seed
from tests.node_procs import NodeProcess
from tests.pgcluster import free_port

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def wait_until(what, timeout: float = 60.0, said=lambda: ""):
    """Poll until `what()` is truthy; a wait, not a measure: the limit is generous."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = what()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"still not so after {timeout} s: {said()}")


class Balancer:
    """HAProxy with the repository's configuration, its addresses from the environment."""

    def __init__(self, base: Path, nodes: dict[str, NodeProcess]):
        self.port, self.stats_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "KB_LB_BIND": f"127.0.0.1:{self.port}",
               "KB_LB_STATS": f"127.0.0.1:{self.stats_port}"}
        env.update({f"KB_NODE_{n.upper()}": f"127.0.0.1:{p.port}" for n, p in nodes.items()})
        self.log = base / "haproxy.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [HAPROXY, "-f", str(ROOT / "scripts" / "haproxy.cfg"), "-db"], env=env,
                stdout=log, stderr=log)

    def servers(self) -> dict[str, dict]:
        """HAProxy's own view of each node: status (UP/DOWN), last check and its code."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.stats_port}/;csv",
                                    timeout=10) as response:
            rows = csv.DictReader(io.StringIO(response.read().decode().lstrip("# ")))
            return {r["svname"]: r for r in rows if r["pxname"] == "kb_nodes"
                    and r["svname"] not in ("FRONTEND", "BACKEND")}

    def status(self) -> dict[str, str]:
        if self.proc.poll() is not None:
            raise RuntimeError(f"haproxy exited: {self.log.read_text()}")
        try:
            return {name: row["status"] for name, row in self.servers().items()}
        except OSError:
            return {}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 302 is an answer here, not a step


class Browser:
    """A person's browser: one cookie jar, every request through the balancer."""

    def __init__(self, base_url: str):
        self.base = base_url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect())

    def request(self, path: str, form: dict | None = None, token: str | None = None
                ) -> tuple[int, str, str]:
        """(status, the node that answered, body)."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base + path, data=data)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with self.opener.open(req, timeout=30) as response:
                return response.status, response.headers["X-KB-Node"], response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers["X-KB-Node"], exc.read().decode()

    def sign_in(self, username: str, password: str) -> list[str]:
        """Sign in; the nodes that served the form and the post."""
        status, shown_by, page = self.request("/login")
        assert status == 200, page
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        status, posted_to, page = self.request(
            "/login", {"username": username, "password": password, "csrf_token": csrf})
        assert status == 302, page
        return [shown_by, posted_to]


@pytest.fixture
def setup(tmp_path, pg_cluster):
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(remote))
    url = pg_cluster.fresh_database()
    db = Database(url)
    create_user(db, "tara", PASSWORD, role="trainer", display_name="Tara")
    token = create_token(db, "tara", "load balancer test")
    db.dispose()
    seed = write_seed(tmp_path / "seed")
    nodes = {n: NodeProcess(n, tmp_path, str(remote), url, seed) for n in ("a", "b")}
    nodes["a"].start()  # the first node fills the empty remote
    nodes["b"].start()
    balancer = Balancer(tmp_path, nodes)
    yield remote, token, nodes, balancer
    balancer.stop()
    for node in nodes.values():
        node.kill()
    pg_cluster.drop_database(url)


def _searches(browser: Browser, token: str, words: str, times: int = 6) -> list[tuple]:
    """(status, node, found) for `times` API searches through the balancer."""
    out = []
    for _ in range(times):
        status, node, body = browser.request(f"/api/search?q={words}", token=token)
        out.append((status, node, '"slug":"refund-status"' in body.replace(" ", "")))
    return out


def test_two_nodes_behind_haproxy_with_its_health_check_on_readyz(tmp_path, setup):
    remote, token, nodes, balancer = setup
    wait_until(lambda: balancer.status() == {"a": "UP", "b": "UP"}, said=balancer.status)
    assert {row["check_status"] for row in balancer.servers().values()} == {"L7OK"}
    api = Browser(balancer.url)

    # requests through the balancer reach both nodes and all succeed
    answers = _searches(api, token, "refund")
    assert {status for status, _, _ in answers} == {200}
    assert {node for _, node, _ in answers} == {"a", "b"}

    # a sign-in on one node is valid on the other: no sticky sessions needed
    person = Browser(balancer.url)
    assert set(person.sign_in("tara", PASSWORD)) == {"a", "b"}  # form on one, post on the other
    pages = [person.request("/") for _ in range(4)]
    assert [status for status, _, _ in pages] == [200] * 4
    assert {node for _, node, _ in pages} == {"a", "b"}

    # Node a falls behind the shared content: it holds its write lock (as a long save
    # would) while an outside push arrives, so its index cannot catch up. It still
    # answers (/healthz 200) but /readyz says 503, and HAProxy takes it out.
    with open(tmp_path / "a" / "content" / "kb-write.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            work = tmp_path / "work"
            git("clone", "-q", str(remote), str(work))
            (work / "refund-status.md").write_text(
                entry_text("Refund status", "Your walrus refund is on its way."))
            git("-c", "user.name=T", "-c", "user.email=t@x", "commit", "-qam", "outside",
                cwd=work)
            git("push", "-q", "origin", "main", cwd=work)
            wait_until(lambda: balancer.status().get("a") == "DOWN", said=balancer.status)
            behind = balancer.servers()["a"]
            assert (behind["check_status"], behind["check_code"]) == ("L7STS", "503")
            assert nodes["a"].request("GET", "/healthz")[0] == 200
            assert nodes["a"].request("GET", "/readyz")[0] == 503
            # every request goes to b, which has the pushed words
            answers = wait_until(lambda: (r := _searches(api, token, "walrus"))
                                 and all(found for _, _, found in r) and r,
                                 said=lambda: "b never found the pushed words")
            assert {(status, node) for status, node, _ in answers} == {(200, "b")}
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

    # a catches up and is taken back in, with the pushed words
    wait_until(lambda: balancer.status() == {"a": "UP", "b": "UP"}, said=balancer.status)
    answers = _searches(api, token, "walrus")
    assert {(status, found) for status, _, found in answers} == {(200, True)}
    assert {node for _, node, _ in answers} == {"a", "b"}

    # b stops: requests keep succeeding (the one in flight is sent on to a), and once
    # the check has taken b out every request is a's
    stopping = threading.Thread(target=nodes["b"].stop)
    stopping.start()
    during = _searches(api, token, "walrus", times=20)
    stopping.join()
    assert {(status, found) for status, _, found in during} == {(200, True)}
    wait_until(lambda: balancer.status().get("b") == "DOWN", said=balancer.status)
    assert balancer.servers()["b"]["check_status"] == "L4CON"  # nothing listens there
    answers = _searches(api, token, "walrus")
    assert {(status, node, found) for status, node, found in answers} == {(200, "a", True)}
    pages = [person.request("/") for _ in range(2)]  # still signed in, on a alone
    assert {(status, node) for status, node, _ in pages} == {(200, "a")}
