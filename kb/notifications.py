"""Notifications: trainers hear when a proposal waits for review, proposers what
became of their proposals, owners when their entries fall due for review. Each is a
row people see in the app (a badge and a list, kept up to date while a page is
open); with KB_SMTP_URL set it is emailed too, after the row is committed.

The due check runs at start and once a day in every server process, on every
node; a unique (user, "due:<slug>:<date>") key lets exactly one of them insert
each notice, so an owner hears once per entry and due date, however many run it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from kb.db import Database, Notification, User, utcnow
from kb.entry import EntryError, review_due
from kb.mail import Mailer

APPROVED, CHANGED, SENT_BACK, REJECTED, DUE = "approved", "changed", "sent_back", "rejected", "due"
PROPOSED = "proposed"  # to trainers: a proposal is waiting for review
CHECK = "check"  # to owners: a change elsewhere (a fact) reached their entries
PAGE = 100  # notifications on the list page
DUE_PER_RUN = 200  # due entries one owner hears about per check (the rest: next day)
RETRY = dt.timedelta(minutes=15)  # after a failed due check (database or index away)
log = logging.getLogger("kb.notifications")


# -- the record -----------------------------------------------------------------------------


def notify(db: Database, user: User, kind: str, title: str, body: str = "", link: str = "",
           key: str | None = None, mailer: Mailer | None = None,
           base_url: str = "") -> Notification | None:
    """Tell `user` something; emailed too when there is a mailer and they have an address.
    With a `key` it happens once: None when this user already had that key."""
    row = _record(db, user, kind, title, body, link, key, mailer)
    if row is not None and row.mail:  # committed first: the email never outruns the record
        mailer.submit(user.email, title, email_text(user, [row], base_url), ids=(row.id,))
    return row


def _record(db: Database, user: User, kind: str, title: str, body: str, link: str,
            key: str | None, mailer: Mailer | None) -> Notification | None:
    """The committed row (its email marked "queued" when one will be sent), or None when
    this user already had that key."""
    values = {"user_id": user.id, "kind": kind, "title": title[:300], "body": body,
              "link": link[:500], "key": key, "created_at": utcnow(),
              "mail": "queued" if mailer is not None and user.email else ""}
    with db.session() as s:
        new_id = _insert_once(s, values)
        s.commit()
        return s.get(Notification, new_id) if new_id is not None else None


def _insert_once(session, values: dict) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING; the new id, or None when the key was there."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (insert(Notification).values(**values)
                 .on_conflict_do_nothing(index_elements=["user_id", "key"])
                 .returning(Notification.id))
    return session.execute(statement).scalar()


def unread_count(db: Database, user_id: int) -> int:
    """One COUNT on an index: cheap enough for every page's navigation."""
    with db.session() as s:
        return s.scalar(select(func.count(Notification.id)).where(
            Notification.user_id == user_id, Notification.read_at.is_(None))) or 0


def list_for(db: Database, user_id: int, limit: int = PAGE) -> list[Notification]:
    with db.session() as s:
        return list(s.scalars(select(Notification).where(Notification.user_id == user_id)
                              .order_by(Notification.id.desc()).limit(limit)))


def mark_read(db: Database, user_id: int, notification_id: int) -> Notification | None:
    """Mark one of this user's notifications read; None when it is not theirs."""
    with db.session() as s:
        row = s.get(Notification, notification_id)
        if row is None or row.user_id != user_id:
            return None
        if row.read_at is None:
            row.read_at = utcnow()
            s.commit()
        return row


def mark_all_read(db: Database, user_id: int) -> int:
    with db.session() as s:
        done = s.execute(update(Notification).where(
            Notification.user_id == user_id, Notification.read_at.is_(None))
            .values(read_at=utcnow())).rowcount
        s.commit()
        return done or 0


def email_text(user: User, rows: Iterable[Notification], base_url: str) -> str:
    """The email's body. Links only to `base_url`, the address the admin configured
    (KB_BASE_URL); without one, none: never the address a request happened to name."""
    base = base_url.rstrip("/")
    parts = [f"Hello {user.name},", ""]
    for row in rows:
        parts.append(row.title)
        if row.body:
            parts.append(row.body)
        if row.link and base:
            parts.append(f"Open: {base}{row.link}")
        parts.append("")
    parts += [f"All your notifications: {base}/notifications" if base
              else "All your notifications: open kb and choose Notifications.", "",
              f"kb sends this to {user.email}, the address on your profile."]
    return "\n".join(parts) + "\n"


# -- proposals ------------------------------------------------------------------------------


def proposal_reviewed(db: Database, proposal, outcome: str, title: str, reviewer: User,
                      mailer: Mailer | None = None, base_url: str = "") -> Notification | None:
    """Tell the proposer their proposal was approved (as is or changed), sent back or
    rejected, with the trainer's comment. Nobody is told about their own review."""
    author = proposal.author
    if author is None or author.id == reviewer.id:
        return None
    comment = (proposal.review_comment or "").strip()
    said = f"{reviewer.name} wrote: “{comment}”" if comment else ""
    if outcome == APPROVED:
        headline = f"Your proposal “{title}” was approved"
        body = f"{reviewer.name} approved it; it is live now."
        link = f"/e/{proposal.slug}"
    elif outcome == CHANGED:
        headline = f"Your proposal “{title}” was approved with changes"
        body = (f"{reviewer.name} changed the text before approving it; the history shows "
                "the live version.")
        link = f"/e/{proposal.slug}"
    elif outcome == SENT_BACK:
        headline = f"Your proposal “{title}” was sent back for changes"
        body = "Change it and send it again."
        link = f"/proposals/{proposal.id}/resubmit"
    elif outcome == REJECTED:
        headline = f"Your proposal “{title}” was rejected"
        body = f"{reviewer.name} rejected it."
        link = "/proposals"
    else:
        raise ValueError(f"unknown outcome {outcome!r}")
    body = f"{body}\n{said}" if said else body
    return notify(db, author, outcome, headline, body, link, mailer=mailer, base_url=base_url)


def proposal_arrived(db: Database, proposal, title: str, mailer: Mailer | None = None,
                     base_url: str = "", again: bool = False) -> int:
    """Tell every trainer (and admin) but its author that a proposal waits for review;
    once per proposal and round (`again`: sent again after changes). How many were told."""
    from kb.users import list_users

    author = proposal.author
    who = author.name if author is not None else "Someone"
    headline = (f"{who} sent “{title}” again after changes" if again
                else f"{who} proposed a new entry: “{title}”" if proposal.is_new
                else f"{who} proposed a change to “{title}”")
    body = f"Their reason: “{(proposal.reason or '').strip()}”" if proposal.reason else ""
    told = 0
    for user in list_users(db):
        if not user.active or not user.can("trainer") or user.id == proposal.author_id:
            continue
        key = f"proposal:{proposal.id}:{proposal.updated_at.isoformat()}"
        if notify(db, user, PROPOSED, headline, body, f"/review/{proposal.id}", key=key,
                  mailer=mailer, base_url=base_url) is not None:
            told += 1
    return told


def ask_owners(db: Database, entries: Iterable, headline: str, body: str, key: str,
               mailer: Mailer | None = None, base_url: str = "") -> int:
    """Ask each person who owns some of these entries (owner = their user name or display
    name) to read them again: one notice per person listing theirs. How many were asked."""
    from kb.users import list_users

    people = [u for u in list_users(db) if u.active]
    told = 0
    for user in people:
        names = {user.username.lower(), (user.display_name or "").lower()} - {""}
        theirs = [e for e in entries if (e.owner or "").strip().lower() in names]
        if not theirs:
            continue
        listed = "\n".join(f"- {e.title}: /e/{e.slug}" for e in theirs[:50])
        more = f"\n… and {len(theirs) - 50} more" if len(theirs) > 50 else ""
        if notify(db, user, CHECK, headline, f"{body}\n{listed}{more}", f"/e/{theirs[0].slug}",
                  key=f"{key}:{user.id}", mailer=mailer, base_url=base_url) is not None:
            told += 1
    return told


# -- entries falling due --------------------------------------------------------------------


def notify_due(db: Database, index, sheet, today: dt.date | None = None,
               mailer: Mailer | None = None, base_url: str = "") -> int:
    """Tell each person who owns entries (owner = their user name or display name) about
    the ones due for review by `today`, once per entry and due date. One email per
    person lists what is new to them. Returns how many notifications were made."""
    today = today or dt.date.today()
    made = 0
    with db.session() as s:
        people = list(s.scalars(select(User).where(User.active.is_(True),
                                                   User.is_service.is_(False))))
    for user in people:
        slugs, _ = index.due_between(None, today + dt.timedelta(days=1),
                                     owners=(user.username, user.display_name),
                                     limit=DUE_PER_RUN)
        due = _due_entries(sheet, slugs)
        if not due:
            continue
        keys = {f"due:{e.slug}:{review_due(e).isoformat()}": e for e in due}
        with db.session() as s:  # most checks find every notice made already: one SELECT
            seen = set(s.scalars(select(Notification.key).where(
                Notification.user_id == user.id, Notification.key.in_(list(keys)))))
        fresh = []
        for key, entry in keys.items():
            if key in seen:
                continue
            when = review_due(entry)
            row = _due_notice(db, user, entry, when, today, key, mailer)
            if row is not None:
                fresh.append(row)
        made += len(fresh)
        if fresh and mailer is not None and user.email:
            subject = (fresh[0].title if len(fresh) == 1
                       else f"{len(fresh)} entries you own are due for review")
            mailer.submit(user.email, subject, email_text(user, fresh, base_url),
                          ids=tuple(r.id for r in fresh))
    return made


def _due_entries(sheet, slugs: list[str]) -> list:
    out = []
    for slug in slugs:
        try:
            entry = sheet.entry(slug)
        except EntryError:
            continue
        if entry is not None and entry.published and review_due(entry) is not None:
            out.append(entry)
    return out


def _due_notice(db: Database, user: User, entry, when: dt.date, today: dt.date, key: str,
                mailer: Mailer | None) -> Notification | None:
    since = "today" if when == today else f"since {when.isoformat()}"
    return _record(db, user, DUE, f"“{entry.title}” is due for review",
                   f"You own this entry; it is due {since}. Check that it is still right, "
                   "then mark it reviewed on the Due for review page or edit it.",
                   f"/e/{entry.slug}", key, mailer)


class DueKeeper:
    """Runs notify_due at start and then once a day, on the first request of the day:
    a date comparison per request, one check per day and process."""

    def __init__(self, db: Database, index, sheet, mailer: Mailer | None):
        self.db, self.index, self.sheet, self.mailer = db, index, sheet, mailer
        self._done_on: dt.date | None = None
        self._not_before = dt.datetime.min
        self._lock = threading.Lock()

    def check_if_due(self, base_url: str = "") -> None:
        today = dt.date.today()
        if self._done_on == today or not self._lock.acquire(blocking=False):
            return
        try:
            if self._done_on != today and dt.datetime.now() >= self._not_before:
                notify_due(self.db, self.index, self.sheet, today, self.mailer, base_url)
                self._done_on = today
        except Exception as exc:  # noqa: BLE001 - the page asked for must still load
            log.warning("The check for entries due for review failed (%s: %s); trying "
                        "again in 15 minutes.", type(exc).__name__, exc)
            self._not_before = dt.datetime.now() + RETRY
        finally:
            self._lock.release()
