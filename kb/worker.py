"""kb serve's gunicorn worker: gthread, with a small pool of its own for requests
that change something, so a trainer's save never waits behind the searches queued
before it. (gthread hands each request to one thread pool in arrival order; with a
room of agents typing, a save arriving behind a hundred keystrokes waited seconds.)
Loaded by gunicorn by name (`kb.worker.WritesFirstWorker`), never on Windows."""

from __future__ import annotations

import socket
from concurrent import futures

from gunicorn.workers.gthread import ThreadWorker

WRITE_THREADS = 2
_WRITES = (b"POST", b"PUT ", b"PATC", b"DELE")


def is_write(sock: socket.socket) -> bool:
    """Whether the request waiting on this connection changes something, read from its
    first bytes without taking them; False when nothing has arrived yet (never waits)."""
    try:
        head = sock.recv(4, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError, OSError):
        return False
    return head in _WRITES


class WritesFirstWorker(ThreadWorker):
    def init_process(self) -> None:
        self.write_pool = futures.ThreadPoolExecutor(max_workers=WRITE_THREADS)
        super().init_process()

    def enqueue_req(self, conn) -> None:
        if not is_write(conn.sock):
            super().enqueue_req(conn)
            return
        searches, self.tpool = self.tpool, self.write_pool
        try:
            super().enqueue_req(conn)
        finally:
            self.tpool = searches

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.write_pool.shutdown(wait=False)
