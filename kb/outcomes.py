"""Whether a copied answer worked. Each copy gets a key (`ref`), returned to the page
or the helpdesk that made it; a "did not help" signal names that key: the agent in
one key after copying (wrong entry, customer still unhappy, answer out of date), or
a helpdesk when the case comes back or is escalated. Signals are usage events of the
copied entry and version, so the usage report counts them per entry and version.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select

from kb.db import Database, Event, utcnow

SIGNALS = {
    "wrong": "wrong entry",
    "unhappy": "customer still unhappy",
    "outdated": "answer out of date",
    "recontact": "the customer came back",
    "escalation": "the case was escalated",
}
MIN_COPIES = 3  # copies of a version before its rate says anything


class OutcomeError(ValueError):
    """A signal that cannot be recorded; the message says why and what to send."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def new_ref() -> str:
    return secrets.token_hex(8)


def record(db: Database, ref: str, signal: str) -> dict:
    """Record that the copy keyed `ref` did not help; the same signal twice counts once."""
    if not isinstance(signal, str) or signal not in SIGNALS:
        raise OutcomeError(f"“{str(signal)[:40]}” is not a signal: send one of "
                           f"{', '.join(SIGNALS)}.")
    if not isinstance(ref, str) or not ref or len(ref) > 32:
        raise OutcomeError("Send the key of the copy ('copy'), as POST /api/events returned it.")
    db.usage_log.flush()  # the copy may still wait in this process's queue
    with db.session() as s:
        copied = s.scalar(select(Event).where(Event.ref == ref, Event.kind == "copy"))
        if copied is None:
            raise OutcomeError("There is no copy with that key: send the 'copy' key that "
                               "POST /api/events returned for the copy.", 404)
        done = s.scalar(select(Event).where(Event.ref == ref, Event.kind == signal))
        if done is None:
            done = Event(user_id=copied.user_id, kind=signal, slug=copied.slug,
                         version=copied.version, search_id=copied.search_id, at=utcnow(),
                         ref=ref)
            s.add(done)
            s.commit()
        return {"copy": ref, "signal": signal, "slug": done.slug, "version": done.version}


def not_helped(counts: dict[str, int]) -> int:
    """The "did not help" signals among a version's (or an entry's) event counts."""
    return sum(n for kind, n in counts.items() if kind in SIGNALS)


@dataclass
class Rise:
    slug: str
    now: float  # the rate of the current version
    before: float  # the rate of the versions before it
    copies_now: int
    copies_before: int


def rose(slug: str, current: str | None, by_version: dict[str, dict[str, int]]) -> Rise | None:
    """The entry's "did not help" rate since its last change, when it rose above the rate
    of the versions before (each with MIN_COPIES copies at least)."""
    if not current or current not in by_version:
        return None
    now = by_version[current]
    before: dict[str, int] = {}
    for version, counts in by_version.items():
        if version != current:
            for kind, n in counts.items():
                before[kind] = before.get(kind, 0) + n
    copies_now, copies_before = now.get("copy", 0), before.get("copy", 0)
    if copies_now < MIN_COPIES or copies_before < MIN_COPIES:
        return None
    rate_now, rate_before = not_helped(now) / copies_now, not_helped(before) / copies_before
    if rate_now <= rate_before:
        return None
    return Rise(slug, rate_now, rate_before, copies_now, copies_before)
