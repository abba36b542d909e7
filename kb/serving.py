"""Running the web site: gunicorn's worker processes where it runs (Linux, macOS),
waitress in one process elsewhere (Windows) or with one worker.

Python runs one thread at a time per process, so one process is one core. With
gunicorn, each worker process builds its own app after the fork (no
`preload_app`): its own dulwich repository, Whoosh index and database
connections, never handles shared across a fork. They share the files: the
content repository (writes serialised by its lock file), the index (each
process catches up with the content head, as a single process does) and the
SQLite database (WAL mode).
"""

from __future__ import annotations

import errno
import importlib.util
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask

from kb.errors import KbError

DEFAULT_THREADS = 8
# Slow and idle connections cost a socket each, never a thread (kb/worker.py), so a
# process can keep thousands open while others' requests go on.
DEFAULT_MAX_CONNECTIONS = 4000
KEEPALIVE_SECONDS = 5  # an idle kept-alive connection is closed after this


def cpu_count() -> int:
    """The cores this process may run on (a container's limit, not the host's)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 0  # 0: one per core
    threads: int = DEFAULT_THREADS
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    def __post_init__(self) -> None:
        if self.workers <= 0:
            self.workers = cpu_count()
        self.threads = max(1, self.threads)
        self.max_connections = max(self.threads + 1, self.max_connections)

    @property
    def server(self) -> str:
        """gunicorn when it is installed and more than one process is wanted."""
        if self.workers > 1 and gunicorn_available():
            return "gunicorn"
        return "waitress"

    def describe(self) -> str:
        if self.server == "gunicorn":
            return (f"gunicorn, {self.workers} processes × {self.threads} threads, up to "
                    f"{self.max_connections} open connections per process")
        return (f"waitress, 1 process × {self.threads} threads, up to "
                f"{self.max_connections} open connections")


class ServeError(KbError):
    """The server cannot listen where it was asked to; the message says what to try."""


_ANY_ADDRESS = ("", "0.0.0.0", "::")


def _bind(host: str, port: int) -> None:
    """Bind (and let go of) the address the way the servers will; OSError if it cannot be."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    with socket.socket(family, kind, proto) as sock:
        if sys.platform != "win32":  # as gunicorn and waitress do; on Windows it means sharing
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)


def _free_port_after(host: str, port: int) -> int | None:
    for candidate in range(port + 1, min(port + 20, 65535) + 1):
        try:
            _bind(host, candidate)
            return candidate
        except OSError:
            continue
    return None


def bind_problem(exc: OSError, host: str, port: int) -> str:
    """What a failed bind means for the person starting kb, and what to try."""
    if exc.errno == errno.EADDRINUSE:
        where = "on this machine" if host in _ANY_ADDRESS else f"on {host}"
        free = _free_port_after(host, port)
        option = f"--port {free}" if free else "another --port"
        return (f"port {port} is in use {where} (another program, or kb already running, "
                f"listens there); try {option}")
    if exc.errno == errno.EACCES:
        return (f"port {port} may only be opened by an administrator here; try --port 8000 "
                "(any port above 1023)")
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"{host} is not an address of this machine; try --host 127.0.0.1 (this "
                "machine only) or --host 0.0.0.0 (every network it is on)")
    return f"cannot listen on {host}:{port} ({exc.strerror or exc}); try another --host or --port"


def check_address(host: str, port: int) -> None:
    """Refuse at once, with what to try, an address the server could not listen on:
    before the index, the first admin or the workers are prepared for nothing."""
    try:
        _bind(host, port)
    except socket.gaierror:
        raise ServeError(f"{host} is not a name or address of this machine; try --host "
                         "127.0.0.1 (this machine only) or --host 0.0.0.0 (every network it "
                         "is on)") from None
    except OSError as exc:
        raise ServeError(bind_problem(exc, host, port)) from None


def gunicorn_available() -> bool:
    return sys.platform != "win32" and importlib.util.find_spec("gunicorn") is not None


def gunicorn_config(opts: ServeOptions) -> dict:
    """gunicorn's settings for these options."""
    return {
        "bind": [f"{opts.host}:{opts.port}"],
        "workers": opts.workers,
        # gthread: kept-alive and slow connections wait in the worker's poller,
        # not in a thread, so a slow client cannot hold a worker; kb's own
        # subclass gives saves and other writes threads of their own.
        "worker_class": "kb.worker.WritesFirstWorker",
        "threads": opts.threads,
        "worker_connections": opts.max_connections,
        "backlog": max(2048, opts.max_connections),
        "keepalive": KEEPALIVE_SECONDS,
        "timeout": 120,  # a worker stuck this long on one request is restarted
        "graceful_timeout": 20,
        "preload_app": False,  # each worker opens its own repository, index, database
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "kb",
        "worker_exit": _worker_exit,
    }


def waitress_config(opts: ServeOptions) -> dict:
    """waitress's settings for these options."""
    return {
        "host": opts.host,
        "port": opts.port,
        "threads": opts.threads,
        "connection_limit": opts.max_connections,
        "backlog": max(2048, opts.max_connections),
        # waitress reads whole requests before a thread sees them, so a slow
        # client holds no thread; an idle one is dropped after this.
        "channel_timeout": 60,
        "ident": "kb",
    }


def shutdown(app: Flask) -> None:
    """Write what is queued (the usage log) and let go of the files."""
    db = app.extensions.get("kb_db")
    if db is not None:
        db.dispose()
    services = app.extensions.get("kb")
    if services is not None:
        services.index.close()


def _worker_exit(_server, worker) -> None:
    app = getattr(worker, "wsgi", None)
    if isinstance(app, Flask):
        shutdown(app)


def gunicorn_application(make_app: Callable[[], Flask], opts: ServeOptions,
                         on_listening: Callable[[], None] | None = None):
    """A gunicorn application that builds the app in each worker, after the fork;
    `on_listening` is called once its sockets listen."""
    from gunicorn.app.base import BaseApplication

    class KbApplication(BaseApplication):
        def load_config(self) -> None:
            for key, value in gunicorn_config(opts).items():
                self.cfg.set(key, value)
            if on_listening is not None:
                self.cfg.set("when_ready", lambda _arbiter: on_listening())

        def load(self) -> Flask:
            return make_app()

    return KbApplication()


def allow_open_files(opts: ServeOptions) -> None:
    """Raise this process's open-file limit towards what the connections need (many
    systems start at 1,024); never above the hard limit the system sets."""
    try:
        import resource
    except ImportError:  # Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = opts.max_connections + 256  # the content, index and database files too
    if soft != resource.RLIM_INFINITY and soft < wanted:
        limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
        except (ValueError, OSError):
            pass


def run(make_app: Callable[[], Flask], opts: ServeOptions,
        on_listening: Callable[[], None] = lambda: None) -> None:
    """Serve until stopped (Ctrl+C or SIGTERM); the usage log is written on the way out.
    `on_listening` is called once the server's socket listens, not before."""
    allow_open_files(opts)
    if opts.server == "gunicorn":
        gunicorn_application(make_app, opts, on_listening).run()
        return
    from waitress import create_server

    app = make_app()
    # SIGTERM (a service manager's stop) ends like Ctrl+C: through `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logging.basicConfig()  # waitress's warnings reach stderr, as its serve() arranges
    try:
        try:
            server = create_server(app, **waitress_config(opts))  # binds and listens
        except OSError as exc:  # taken since check_address looked
            raise ServeError(bind_problem(exc, opts.host, opts.port)) from None
        on_listening()
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        shutdown(app)
