"""Saves before searches. Python runs one thread at a time per process, so a save
sharing a busy server process with dozens of typing agents got a sliver of it and
took seconds. While a save runs in a process, searches starting in that process
wait for it (at most MAX_WAIT); searches in other processes go on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

MAX_WAIT = 2.0  # seconds; a save slower than this no longer holds searches back


class WritesFirst:
    def __init__(self) -> None:
        self._done = threading.Condition()
        self._writers: dict[int, int] = {}  # thread id -> saves it has under way

    @contextmanager
    def writing(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._done:
            self._writers[me] = self._writers.get(me, 0) + 1
        try:
            yield
        finally:
            with self._done:
                self._writers[me] -= 1
                if not self._writers[me]:
                    del self._writers[me]
                if not self._writers:
                    self._done.notify_all()

    def busy(self) -> bool:
        return bool(self._writers)

    def holds_back(self) -> bool:
        """Whether a save under way in another thread should go before this thread."""
        return bool(self._writers) and threading.get_ident() not in self._writers

    def wait(self, timeout: float = MAX_WAIT) -> None:
        """Wait until no save runs in this process (never for the saving thread itself)."""
        if not self._writers:  # the common case, without taking the lock
            return
        me = threading.get_ident()
        with self._done:
            self._done.wait_for(lambda: not self._writers or me in self._writers, timeout)


gate = WritesFirst()
