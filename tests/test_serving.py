"""Serving with several processes: real `kb serve` subprocesses (gunicorn workers and
waitress) over one instance folder, and the settings that reach each server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from kb.db import Database, Event, SearchLog
from kb.serving import ServeOptions, gunicorn_application, gunicorn_available, waitress_config
from kb.users import create_token, create_user
from tests.conftest import write_seed

KB = [sys.executable, "-c", "from kb.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port: int, token: str, method: str, path: str, body: dict | None = None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def start(env: dict, *args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([*KB, "serve", "--port", str(port), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    for _ in range(600):  # the first start builds the index; no timing is asserted
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(f"kb serve exited: {proc.stderr.read()}") from None
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("kb serve did not answer")


def stop(proc: subprocess.Popen) -> str:
    """A clean stop, as a service manager does it: SIGTERM, then wait."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    return err


@pytest.fixture
def instance(tmp_path) -> tuple[dict, str]:
    """An instance folder with a trainer and a token, and the environment to serve it."""
    seed = write_seed(tmp_path / "seed")
    inst = tmp_path / "instance"
    inst.mkdir()
    db = Database(f"sqlite:///{inst / 'kb.sqlite'}")
    create_user(db, "tara", "correct-horse-1", role="trainer")
    token = create_token(db, "tara")
    db.dispose()
    env = {**os.environ, "KB_INSTANCE_DIR": str(inst), "KB_SEED_DIR": str(seed),
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return env, token


@pytest.mark.skipif(not gunicorn_available(), reason="gunicorn runs on POSIX systems only")
def test_a_save_through_one_server_is_found_through_another_at_once(instance):
    env, token = instance
    multi, multi_port = start({**env, "KB_MAX_CONNECTIONS": "1500"}, "--workers", "2")
    single, single_port = start(env, "--workers", "1")
    try:
        # the settings reached the servers that were started
        for _ in range(3):
            status, found = call(single_port, token, "GET", "/api/entries/refund-status")
            assert status == 200
            version = found["version"]
            status, saved = call(multi_port, token, "PUT", "/api/entries/refund-status", {
                "title": "Refund status", "answer": f"Your refund left us: ref zebra{_}.",
                "reason": "new wording", "base_version": version})
            assert status == 200, saved
            # findable through the other server as soon as the save returned
            status, results = call(single_port, token, "GET", f"/api/search?q=zebra{_}")
            assert [r["slug"] for r in results["results"]] == ["refund-status"]
            # and through every gunicorn worker (connections land on either)
            for _attempt in range(4):
                status, results = call(multi_port, token, "GET", f"/api/search?q=zebra{_}")
                assert [r["slug"] for r in results["results"]] == ["refund-status"]
        # a save over an older version is refused, whichever process holds the news
        status, body = call(single_port, token, "PUT", "/api/entries/refund-status", {
            "title": "Refund status", "answer": "Overwrite.", "reason": "stale",
            "base_version": version})
        assert status == 409 and body["current"]["version"] != version
        # usage logged by the gunicorn workers is written when they stop cleanly
        queries = [f"lost parcel code{n:02d}x" for n in range(12)]  # none extends another
        for query in queries:
            assert call(multi_port, token, "GET", f"/api/search?q={quote(query)}")[0] == 200
    finally:
        multi_err = stop(multi)
        stop(single)
    assert "gunicorn, 2 processes" in multi_err and "1500 open connections" in multi_err
    db = Database(f"sqlite:///{Path(env['KB_INSTANCE_DIR']) / 'kb.sqlite'}")
    try:
        with db.session() as s:
            logged = set(s.scalars(select(SearchLog.query).where(
                SearchLog.query.like("lost parcel code%"))))
    finally:
        db.dispose()
    assert logged == set(queries)


def test_the_connection_limit_reaches_the_server_settings():
    opts = ServeOptions(workers=3, threads=4, max_connections=1700)
    cfg = gunicorn_application(lambda: None, opts).cfg
    assert (cfg.workers, cfg.threads, cfg.worker_connections) == (3, 4, 1700)
    from gunicorn.workers.gthread import ThreadWorker

    from kb.worker import WritesFirstWorker

    assert cfg.worker_class is WritesFirstWorker and issubclass(WritesFirstWorker, ThreadWorker)
    assert not cfg.preload_app
    assert cfg.backlog >= 1700

    from waitress.adjustments import Adjustments

    adj = Adjustments(**waitress_config(ServeOptions(workers=1, max_connections=1700)))
    assert adj.connection_limit == 1700 and adj.backlog >= 1700
    assert ServeOptions(workers=1).server == "waitress"
    assert ServeOptions().max_connections >= 1000  # the default


def test_kb_serve_takes_the_settings_from_the_environment(instance):
    env, _ = instance
    proc, _ = start({**env, "KB_MAX_CONNECTIONS": "1234", "KB_THREADS": "3"}, "--workers", "1")
    err = stop(proc)
    assert "waitress, 1 process × 3 threads, up to 1234 open connections" in err


def test_usage_log_queued_in_a_process_is_written_when_it_exits(tmp_path):
    url = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    script = (
        "import sys\n"
        "from kb.db import Database\n"
        "from kb.usage import log_event, log_search\n"
        f"db = Database({url!r})\n"
        "db.usage_log.interval = 3600  # no timed flush: only the exit writes\n"
        "for n in range(300):\n"
        "    sid = log_search(db, 1, f'query {n}', [f'word{n}'], n)\n"
        "    log_event(db, 1, 'copy', f'entry-{n}', 'v1', sid)\n"
        "sys.exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=str(tmp_path),
                   env={**os.environ,
                        "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    db = Database(url)
    try:
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(SearchLog)) == 300
            assert s.scalar(select(func.count()).select_from(Event)) == 300
            assert s.scalar(select(func.count()).select_from(SearchLog).where(
                SearchLog.copied.is_(True))) == 300
    finally:
        db.dispose()


@pytest.mark.skipif(not gunicorn_available(), reason="gunicorn does not run here")
def test_a_write_is_told_from_its_first_bytes_without_taking_them():
    from kb.worker import is_write

    for request, write in ((b"PUT /api/entries/x HTTP/1.1\r\n", True),
                           (b"POST /review/3 HTTP/1.1\r\n", True),
                           (b"DELETE /api/tokens/2 HTTP/1.1\r\n", True),
                           (b"GET /api/search?q=PUT HTTP/1.1\r\n", False)):
        server, client = socket.socketpair()
        with server, client:
            assert is_write(server) is False  # nothing sent yet: no wait, a search's pool
            client.sendall(request)
            assert is_write(server) is write
            assert server.recv(100) == request  # the request is still there to be read


@pytest.mark.skipif(not gunicorn_available(), reason="gunicorn does not run here")
def test_a_body_with_broken_chunk_framing_is_a_400_not_a_500(instance):
    env, _ = instance
    proc, port = start(env)  # gunicorn: it hands a body on to the app unread
    try:
        for path, body in [("/propose", b"zz\r\nabc\r\n0\r\n\r\n"),
                           ("/login", b"3\r\nabcXX0\r\n\r\n"),
                           ("/api/proposals", b"5\r\nabc\r\n0\r\n\r\n")]:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                             "Transfer-Encoding: chunked\r\n"
                             "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
                             .encode() + body)
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            status = int(answer.split(b" ", 2)[1])
            assert 400 <= status < 500, (path, answer[:200])
    finally:
        stop(proc)


@pytest.mark.skipif(not gunicorn_available(), reason="gunicorn does not run here")
def test_a_thousand_slow_or_idle_connections_hold_no_worker(instance):
    """500 connections sending their headers a byte a second and 500 sending nothing
    hold no thread: everyone else's requests are answered meanwhile (a thread that
    waited on such clients stalled every request for minutes; the bound here is only
    there so that a regression fails instead of hanging)."""
    import resource
    import selectors as sel

    env, token = instance
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4096)), hard))
    proc, port = start(env)  # gunicorn: 2 processes x 8 threads, 1,000 connections each
    slow, idle = [], []
    try:
        head = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode()
        for n in range(1000):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.setblocking(False)
            (slow if n % 2 else idle).append(sock)
        answered = []
        deadline = time.monotonic() + 8
        sent = 0
        while time.monotonic() < deadline:
            for sock in slow:  # one more byte of the headers each, never the end
                try:
                    sock.send(head[sent % len(head):sent % len(head) + 1])
                except (BlockingIOError, OSError):
                    pass
            sent += 1
            started = time.monotonic()
            status, _ = call(port, token, "GET", "/api/search?q=refund")
            answered.append((status, time.monotonic() - started))
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as r:
                assert r.status == 200
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        assert answered and all(status == 200 for status, _ in answered), answered
        # the slow ones are still open, costing a socket each: nothing was refused
        selector = sel.DefaultSelector()
        for sock in slow[:50]:
            selector.register(sock, sel.EVENT_READ)
        closed = [k for k, _ in selector.select(timeout=0)]
        assert not closed
        selector.close()
    finally:
        for sock in slow + idle:
            sock.close()
        stop(proc)
