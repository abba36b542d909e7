"""The usage log's writer: searches and views/copies are queued in memory and
written in batches by a background thread (about once a second, sooner when
many are waiting), so a keystroke never costs a database commit.

The queue is flushed on a clean shutdown (atexit, a server worker's exit, or
`Database.dispose`), so no event is lost then. Reads of the usage data in
`kb.usage` flush first, so a process always reads what it wrote.

A search's id is handed to the browser at once (it comes back with the open
and copy of the entry found), before its row exists: each process reserves a
block of ids from the database (one small commit per few thousand searches)
and numbers its searches from that block, so processes never pick the same id.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError

from kb.db import DOWN, Event, SearchIdBlock, SearchLog, too_long, utcnow

if TYPE_CHECKING:
    from kb.db import Database

log = logging.getLogger("kb.usage")

MERGE_WINDOW = dt.timedelta(seconds=20)  # keystrokes of one query land in one row
REPEAT_WINDOW = dt.timedelta(minutes=30)  # back on the search page, same words: same search
FLUSH_SECONDS = 1.0
FLUSH_ROWS = 500  # write at once when this many are waiting
MAX_WAITING = 100_000  # rows of each kind kept while the database is unreachable
ID_BASE = 1 << 40  # above any id an older database gave out; below 2**53 for JavaScript
ID_BLOCK = 4096


@dataclass
class _Typing:
    """The last search of a user in this process, to merge keystrokes into it."""

    id: int
    query: str
    at: dt.datetime
    opened: bool = False


@dataclass
class _Link:
    """An entry opened or copied from a search: marks the search row."""

    search_id: int
    user_id: int | None
    slug: str
    copied: bool
    at: dt.datetime


def _naive(at: dt.datetime) -> dt.datetime:
    """SQLite hands back naive UTC times, PostgreSQL aware ones: compare them alike."""
    return at.replace(tzinfo=None) if at.tzinfo else at


class UsageLog:
    def __init__(self, db: Database, interval: float = FLUSH_SECONDS,
                 max_rows: int = FLUSH_ROWS):
        self.db = db
        self.interval = interval
        self.max_rows = max_rows
        self._lock = threading.Lock()  # guards the queues below
        self._flush_lock = threading.Lock()  # one batch written at a time
        self._wake = threading.Event()
        self._reset()
        ref = weakref.ref(self)
        atexit.register(lambda: (w := ref()) is not None and w.close())

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._searches: dict[int, dict] = {}
        self._events: list[dict] = []
        self._links: list[_Link] = []
        self._typing: dict[int | None, _Typing] = {}
        self._next_id, self._end_id = 0, 0
        self._thread: threading.Thread | None = None
        self._closed = False

    def _check_fork(self) -> None:
        """A forked child starts empty: the parent writes what it queued."""
        if os.getpid() != self._pid:
            self._reset()

    # -- queueing ---------------------------------------------------------------

    def search(self, user_id: int | None, query: str, words: list[str],
               result_count: int, after: int | None = None) -> int | None:
        """Queue a search and return its id. A query that extends or trims the
        user's last one within a few seconds replaces it, so typing "box sma" →
        "box smashed" counts once. With several server processes the keystrokes
        of one query land in different ones, so the search page names the search
        its words continue (`after`), and that search's row is updated wherever
        it was queued."""
        query = " ".join(query.split())[:200]
        if not query:
            return None
        key = " ".join(sorted(set(words)))[:200]
        now = utcnow()
        with self._lock:
            self._check_fork()
            last = self._typing.get(user_id)
            if (last is not None and last.query.lower() == query.lower()
                    and now - last.at < REPEAT_WINDOW):
                return last.id  # coming back to the same words is not a new search
            if after is not None and after >= ID_BASE and not (
                    last is not None and last.id == after and last.opened):
                search_id = after  # numbered by this or another process
            elif (last is not None and now - last.at < MERGE_WINDOW and not last.opened
                    and (query.startswith(last.query) or last.query.startswith(query))):
                search_id = last.id
            else:
                try:
                    search_id = self._new_id()
                except DOWN:  # no block of ids to be had: this search goes unlogged
                    log.warning("search not logged: the database is unreachable")
                    return None
            self._typing[user_id] = _Typing(search_id, query, now)
            self._searches[search_id] = dict(user_id=user_id, query=query, words=key,
                                             result_count=result_count, at=now)
            waiting = len(self._searches) + len(self._events)
        self._started(waiting)
        return search_id

    def event(self, user_id: int | None, kind: str, slug: str, version: str | None,
              search_id: int | None = None, ref: str | None = None) -> None:
        """Queue an entry viewed or copied; with the search it came from, if any, and
        a copy's key (`ref`) for what is said of it later (kb.outcomes)."""
        now = utcnow()
        fields = dict(user_id=user_id, kind=kind, slug=slug, version=version,
                      search_id=search_id, at=now, ref=ref)
        problem = too_long(Event, fields)
        if problem:  # would fail the whole batch on PostgreSQL: never queued
            log.warning("usage event not logged (%s)", problem)
            return
        with self._lock:
            self._check_fork()
            self._events.append(fields)
            if search_id:
                self._links.append(_Link(search_id, user_id, slug, kind == "copy", now))
                last = self._typing.get(user_id)
                if last is not None and last.id == search_id:
                    last.opened = True  # the next words are a new search
            waiting = len(self._searches) + len(self._events)
        self._started(waiting)

    def _bound(self) -> None:
        """While the database stays away, keep at most MAX_WAITING rows of each kind
        in memory (hold `_lock`): the oldest go first, with a log line."""
        over = len(self._events) - MAX_WAITING
        if over > 0:
            del self._events[:over]
            log.warning("usage log: %d oldest views and copies dropped, the database "
                        "has been unreachable too long", over)
        del self._links[:max(0, len(self._links) - MAX_WAITING)]
        while len(self._searches) > MAX_WAITING:
            self._searches.pop(next(iter(self._searches)))

    def _new_id(self) -> int:
        """The next search id from this process's block (hold `_lock`)."""
        if self._next_id >= self._end_id:
            with self.db.session() as s:
                block = SearchIdBlock(pid=os.getpid(), at=utcnow())
                s.add(block)
                s.commit()
                start = ID_BASE + block.id * ID_BLOCK
            self._next_id, self._end_id = start, start + ID_BLOCK
        self._next_id += 1
        return self._next_id - 1

    def _started(self, waiting: int) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="kb-usage-log",
                                                    daemon=True)
                    self._thread.start()
        if waiting >= self.max_rows:
            self._wake.set()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except DOWN as exc:  # kept in the queue; written when the database is back
                log.warning("usage log waiting for the database (%d rows): %s",
                            self.pending(), str(exc).splitlines()[0])
            except Exception:  # kept in the queue; the next round tries again
                log.exception("Could not write the usage log; will retry")

    # -- writing ----------------------------------------------------------------

    def last_queued(self, user_id: int | None, kind: str, slug: str) -> dict | None:
        """The newest queued event of this kind, not yet written (waits for a batch
        being written, so an event is always either here or in the database)."""
        with self._flush_lock, self._lock:
            for fields in reversed(self._events):
                if (fields["user_id"], fields["kind"], fields["slug"]) == (user_id, kind, slug):
                    return fields
        return None

    def pending(self) -> int:
        with self._lock:
            return len(self._searches) + len(self._events) + len(self._links)

    def flush(self) -> int:
        """Write everything queued in one transaction; return how many rows."""
        with self._flush_lock:
            with self._lock:
                self._check_fork()
                searches, events, links = self._searches, self._events, self._links
                self._searches, self._events, self._links = {}, [], []
            if not (searches or events or links):
                return 0
            try:
                self._write(searches, events, links)
            except (DataError, IntegrityError):
                # one row the database refuses must not hold back the rest: write
                # them one by one and drop (with a log line) only the refused ones
                self._write_each(searches, events, links)
            except Exception:
                self._put_back(searches, events, links)
                raise
            return len(searches) + len(events)

    def _put_back(self, searches: dict[int, dict], events: list[dict],
                  links: list[_Link]) -> None:
        """Rows not written go back to the queue, behind nothing newer."""
        with self._lock:
            for search_id, fields in searches.items():
                self._searches.setdefault(search_id, fields)
            self._events[:0] = events
            self._links[:0] = links
            self._bound()

    def _write(self, searches: dict[int, dict], events: list[dict],
               links: list[_Link]) -> None:
        ids = set(searches) | {link.search_id for link in links}
        with self.db.session() as s:
            rows = {row.id: row for row in s.scalars(
                select(SearchLog).where(SearchLog.id.in_(ids)))}
            for search_id, fields in searches.items():
                row = rows.get(search_id)
                if row is None:
                    rows[search_id] = row = SearchLog(id=search_id, **fields)
                    s.add(row)
                elif row.user_id == fields["user_id"] and (
                        not row.query or _naive(fields["at"]) >= _naive(row.at)):
                    # opened/copied may already be set by another process: keep them;
                    # an older keystroke written late does not undo a newer one
                    row.query, row.words = fields["query"], fields["words"]
                    row.result_count, row.at = fields["result_count"], fields["at"]
            for link in links:
                row = rows.get(link.search_id)
                if row is None:
                    if link.search_id < ID_BASE:
                        continue  # not one of ours and not in the database
                    # The search itself is still queued in another process; its
                    # write fills in the words and keeps what is marked here.
                    rows[link.search_id] = row = SearchLog(
                        id=link.search_id, user_id=link.user_id, query="", words="",
                        result_count=0, at=link.at)
                    s.add(row)
                if row.user_id != link.user_id:
                    continue
                row.opened_slug = row.opened_slug or link.slug
                if link.copied:
                    row.copied = True
            s.add_all(Event(**fields) for fields in events)
            s.commit()

    def _write_each(self, searches: dict[int, dict], events: list[dict],
                    links: list[_Link]) -> None:
        """Each row in a transaction of its own; a row the database refuses (a value
        it will not store) is dropped and logged. When the connection is lost midway,
        the rows not yet written go back to the queue (never the written ones twice)
        and the error is raised."""
        rows = [({search_id: fields}, [], []) for search_id, fields in searches.items()]
        rows += [({}, [fields], []) for fields in events]
        rows += [({}, [], [link]) for link in links]
        for n, one in enumerate(rows):
            try:
                self._write(*one)
            except (DataError, IntegrityError) as exc:
                log.warning("usage log row dropped, the database refused it: %s",
                            str(exc).splitlines()[0])
            except Exception:
                rest = rows[n:]
                self._put_back({k: v for s, _, _ in rest for k, v in s.items()},
                               [e for _, es, _ in rest for e in es],
                               [link for _, _, ls in rest for link in ls])
                raise

    def close(self) -> None:
        """Stop the writer thread and write what is left."""
        if os.getpid() != self._pid:
            return
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        try:
            self.flush()
        except Exception:
            log.exception("Could not write the usage log at shutdown")
