"""kb serve's gunicorn worker: gthread, with two changes.

1. No thread ever waits on a client. gthread hands a connection to a pool thread as
   soon as it is accepted or becomes readable, and the thread then reads the request
   from a blocking socket: connections that send their headers a byte every few
   seconds, or nothing at all, each held a thread, and a few dozen stopped everyone.
   Here the worker's event loop reads each request itself, without blocking, until
   its headers and (up to BUFFERED_BODY bytes of) its body are in, within
   REQUEST_SECONDS; only a complete request goes to a thread, which parses it from
   memory. Idle and slow connections cost a socket and a few bytes, not a thread.
2. Writes first: requests that change something get a small pool of their own, so a
   trainer's save never waits behind the searches queued before it.

Loaded by gunicorn by name (`kb.worker.WritesFirstWorker`), never on Windows. Written
against gunicorn 27's gthread worker (pinned in pyproject.toml)."""

from __future__ import annotations

import re
import selectors
import socket
import time
from concurrent import futures
from functools import partial

from gunicorn.workers.gthread import TConn, ThreadWorker

WRITE_THREADS = 2
_WRITES = (b"POST", b"PUT ", b"PATC", b"DELE")
REQUEST_SECONDS = 20.0  # a request's head and small body must arrive within this
MAX_HEAD = 64 * 1024  # bytes of request line and headers
BUFFERED_BODY = 1024 * 1024  # larger bodies (spreadsheet uploads) are read by the thread
_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.I)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*chunked", re.I)


def is_write(sock: socket.socket) -> bool:
    """Whether the request waiting on this connection changes something, read from its
    first bytes without taking them; False when nothing has arrived yet (never waits)."""
    try:
        head = sock.recv(4, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError, OSError):
        return False
    return head in _WRITES


def complete(data: bytes) -> bool:
    """Whether `data` holds a whole request to hand on: its head and its body (or as
    much of a large body as is buffered here), or more head than any request has."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return len(data) > MAX_HEAD  # the parser answers it with its own error
    head = data[:end + 2]
    body = len(data) - end - 4
    if _CHUNKED.search(head):
        return data.endswith(b"0\r\n\r\n") or body >= BUFFERED_BODY
    length = _LENGTH.search(head)
    wanted = int(length.group(1)) if length else 0
    return body >= min(wanted, BUFFERED_BODY)


class WritesFirstWorker(ThreadWorker):
    def init_process(self) -> None:
        self.write_pool = futures.ThreadPoolExecutor(max_workers=WRITE_THREADS)
        self.reading: dict[TConn, float] = {}  # connections being read -> deadline
        super().init_process()

    # -- reading requests in the event loop --------------------------------------------

    def _buffers(self) -> bool:
        return not self.cfg.is_ssl  # TLS is unwrapped by the thread: left as gthread does

    def accept(self, listener) -> None:
        if not self._buffers():
            super().accept(listener)
            return
        try:
            sock, client = listener.accept()
        except OSError:
            return  # another worker took it, or it went away
        self.nr_conns += 1
        self._read_later(TConn(self.cfg, sock, client, listener.getsockname()))

    def on_client_socket_readable(self, conn, client) -> None:
        if not self._buffers():
            super().on_client_socket_readable(conn, client)
            return
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_later(conn)

    def _read_later(self, conn: TConn) -> None:
        conn.sock.setblocking(False)
        conn.kb_data = b""
        self.reading[conn] = time.monotonic() + REQUEST_SECONDS
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._read, conn))

    def _read(self, conn: TConn, sock) -> None:
        try:
            chunk = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # closed before a whole request arrived
            self._drop(conn)
            return
        conn.kb_data += chunk
        if complete(conn.kb_data):
            self.poller.unregister(sock)
            del self.reading[conn]
            conn.data_ready = True  # the thread need not wait for the socket
            self.enqueue_req(conn)

    def _drop(self, conn: TConn) -> None:
        self.reading.pop(conn, None)
        try:
            self.poller.unregister(conn.sock)
        except Exception:  # noqa: BLE001 - not registered, or the poller is closed
            pass
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn in [c for c, deadline in self.reading.items()
                     if deadline < now or not self.alive]:  # a stopping worker waits for none
            self._drop(conn)  # too slow: it held no thread, and now not even a socket

    def handle(self, conn):
        data = getattr(conn, "kb_data", b"")
        if data:
            conn.kb_data = b""
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(data)  # parsed from memory, then the socket
        return super().handle(conn)

    # -- writes first ---------------------------------------------------------------------

    def enqueue_req(self, conn) -> None:
        data = getattr(conn, "kb_data", b"")
        writes = data[:4] in _WRITES if data else is_write(conn.sock)
        if not writes:
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
            for conn in list(self.reading):
                self._drop(conn)
            self.write_pool.shutdown(wait=False)
