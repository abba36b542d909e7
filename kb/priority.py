"""Who goes first in a busy server process. Python runs one thread at a time per
process, so a save sharing a process with dozens of typing agents got a sliver of it
and took seconds: while a save runs in a process, searches starting in that process
wait for it (at most MAX_WAIT); searches in other processes go on. And one person
gets one search at a time per process (`share`): a script or a stuck key firing
searches in parallel waits its turn instead of taking everyone's share."""

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


SHARE_WAIT = 2.0  # seconds a person's next search waits for their last one, then refused


class Busy(Exception):
    """This person already has a search running here for longer than SHARE_WAIT."""


class PerPerson:
    """At most one search in flight per person in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[object, list] = {}  # person -> [semaphore, users of it]

    @contextmanager
    def slot(self, person: object, timeout: float | None = None) -> Iterator[None]:
        with self._lock:
            entry = self._slots.setdefault(person, [threading.Semaphore(1), 0])
            entry[1] += 1
        try:
            if not entry[0].acquire(timeout=SHARE_WAIT if timeout is None else timeout):
                raise Busy
            try:
                yield
            finally:
                entry[0].release()
        finally:
            with self._lock:
                entry[1] -= 1
                if not entry[1]:
                    del self._slots[person]  # nobody waiting: nothing kept per person


gate = WritesFirst()
share = PerPerson()
