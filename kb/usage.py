"""What agents search for, open and copy: the raw material for recently used,
favourites, "changed since you last copied it", gaps (kb.gaps) and usage reports."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import case, delete, func, select

from kb.db import Database, Event, Favourite, LearnedWording, SearchLog, utcnow

# Agents paste the customer's details into the search box; the log keeps what was
# asked for, not who asked. Emails, phone numbers and order-like digit runs are
# replaced before anything is stored.
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*")
_PHONE = re.compile(r"\+?\(?\d[\d\s().-]{5,}\d")  # 7+ digits with +, spaces, dots, dashes
_NUMBER = re.compile(r"\d{5,}")  # order, account, card or parcel numbers
# a card number written with slashes or underscores: 4111/1111/1111/1111
_GROUPED = re.compile(r"\d+(?:[/_]+\d+){2,}")
# an email read out: "john dot doe at gmail dot com"
_SPOKEN_EMAIL = re.compile(
    r"\b[\w+-]+(?:\s+dot\s+[\w+-]+)*\s+at\s+[\w-]+(?:\s+dot\s+[\w-]+)+\b", re.I)
# a UK postcode: SW1A 1AA, m1 1ae
_POSTCODE = re.compile(r"\b[a-z]{1,2}\d[a-z\d]?\s*\d[a-z]{2}\b", re.I)
# an order or reference code: eight or more letters and digits, three digits at least
_CODE = re.compile(r"\b(?=(?:[a-z]*\d){3})(?=[a-z\d]*[a-z][a-z\d]*[a-z])[a-z\d]{8,}\b", re.I)


def _phone(match: re.Match) -> str:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    return "[phone]" if digits >= 7 and not text.isdigit() else text


def mask_private(query: str) -> tuple[str, list[str]]:
    """The query with emails (written or read out), phone numbers, long numbers,
    postcodes and reference codes masked, and what was removed."""
    removed = []
    for pattern, mark in ((_EMAIL, "[email]"), (_SPOKEN_EMAIL, "[email]"),
                          (_GROUPED, "[number]"), (_POSTCODE, "[postcode]"),
                          (_CODE, "[code]")):
        removed += [m.group(0) for m in pattern.finditer(query)]
        query = pattern.sub(mark, query)
    masked = _PHONE.sub(_phone, query)
    removed += [m.group(0) for m in _PHONE.finditer(query) if _phone(m) != m.group(0)]
    removed += _NUMBER.findall(masked)
    return _NUMBER.sub("[number]", masked), removed


def _public_words(words: list[str], masked: str, removed: list[str]) -> list[str]:
    """Drop the stems that came from a masked part ("ana" of "ana@example.com")."""
    gone = " ".join(removed).lower()
    kept = masked.lower()
    return [w for w in words
            if not re.search(r"\d{5,}", w) and not (w in gone and w not in kept)
            and not _CODE.fullmatch(w) and not _POSTCODE.fullmatch(w)]


def log_search(db: Database, user_id: int | None, query: str, words: list[str],
               result_count: int, after: int | None = None) -> int | None:
    """Queue a search for the log, customer details masked, and return its id
    (keystrokes of one query count once; `after`: the search the page says these
    words continue; see kb.usage_log)."""
    masked, removed = mask_private(" ".join(query.split()))
    return db.usage_log.search(user_id, masked, _public_words(words, masked, removed),
                               result_count, after)


def purge_searches(db: Database, days: int) -> int:
    """Delete searches older than `days`; returns how many went."""
    since = utcnow() - dt.timedelta(days=days)
    with db.session() as s:
        # the wordings learned from those searches go with them (kb.phrasings)
        s.execute(delete(LearnedWording).where(LearnedWording.at < since))
        done = s.execute(delete(SearchLog).where(SearchLog.at < since))
        s.commit()
        return done.rowcount


class SearchLogKeeper:
    """Purges the search log at start and then once a day, on the first request of the
    day: a date comparison per request, one DELETE per day and process."""

    def __init__(self, db: Database, days: int):
        self.db, self.days = db, days
        self._done_on: dt.date | None = None
        self._lock = threading.Lock()

    def purge_if_due(self) -> None:
        today = utcnow().date()
        if self._done_on == today or not self._lock.acquire(blocking=False):
            return
        try:
            if self._done_on != today:
                purge_searches(self.db, self.days)
                self._done_on = today
        finally:
            self._lock.release()


def log_event(db: Database, user_id: int | None, kind: str, slug: str, version: str | None,
              search_id: int | None = None, ref: str | None = None) -> None:
    db.usage_log.event(user_id, kind, slug, version, search_id, ref)


def _written(db: Database) -> None:
    """What this process queued is in the database before we read it."""
    db.usage_log.flush()


def recent(db: Database, user_id: int, limit: int = 8) -> list[str]:
    """The entries this user opened or copied lately, newest first."""
    _written(db)
    with db.session() as s:
        rows = s.execute(select(Event.slug, func.max(Event.id).label("last"))
                         .where(Event.user_id == user_id).group_by(Event.slug)
                         .order_by(func.max(Event.id).desc()).limit(limit)).all()
    return [r.slug for r in rows]


def favourites(db: Database, user_id: int) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(Favourite.slug).where(Favourite.user_id == user_id)
                              .order_by(Favourite.at)))


def set_favourite(db: Database, user_id: int, slug: str, on: bool) -> None:
    with db.session() as s:
        s.execute(delete(Favourite).where(Favourite.user_id == user_id, Favourite.slug == slug))
        if on:
            s.add(Favourite(user_id=user_id, slug=slug))
        s.commit()


def last_copied_version(db: Database, user_id: int, slug: str) -> str | None:
    queued = db.usage_log.last_queued(user_id, "copy", slug)
    if queued is not None:  # not written yet: an entry page need not wait for it
        return queued["version"]
    with db.session() as s:
        return s.scalar(select(Event.version).where(
            Event.user_id == user_id, Event.slug == slug, Event.kind == "copy")
            .order_by(Event.id.desc()).limit(1))


@dataclass
class EntryUsage:
    slug: str
    views: int = 0
    copies: int = 0
    last_used: dt.datetime | None = None
    by_version: dict[str, dict[str, int]] = field(default_factory=dict)


def usage(db: Database, days: int | None = None) -> dict[str, EntryUsage]:
    """Views and copies per entry and per version."""
    _written(db)
    out: dict[str, EntryUsage] = {}
    query = select(Event.slug, Event.kind, Event.version, func.count(), func.max(Event.at))
    if days:
        query = query.where(Event.at >= utcnow() - dt.timedelta(days=days))
    query = query.group_by(Event.slug, Event.kind, Event.version)
    with db.session() as s:
        for slug, kind, version, count, last in s.execute(query):
            row = out.setdefault(slug, EntryUsage(slug))
            if kind == "view":
                row.views += count
            elif kind == "copy":
                row.copies += count
            per = row.by_version.setdefault(version or "", Counter())
            per[kind] += count
            row.last_used = max(row.last_used or last, last)
    return out


def search_counts(db: Database) -> dict[str, int]:
    _written(db)
    with db.session() as s:
        total, empty = s.execute(select(
            func.count(), func.sum(case((SearchLog.result_count == 0, 1), else_=0)))).one()
    totals = {"no results": int(empty or 0), "with results": int(total - (empty or 0))}
    return {k: v for k, v in totals.items() if v}
