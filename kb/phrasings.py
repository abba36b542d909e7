"""The sheet learns the team's words.

When an agent's search leads to copying an entry, the words typed are how a
customer put that complaint, and the entry may not know them yet. The usage log
already records searches and copies; this module links each copy to the search
it came from (the page passes the search id; failing that, the same user's last
search a few minutes before) and to the searches just before it that the agent
refined away from. Those first wordings failed, so they count double.

Suggestions only ever reach the sheet through a trainer: accepting one is a
commit whose author is the agents' words and whose committer is the trainer;
dismissing one is remembered so it is not offered again.

The links are derived data, rebuilt from the log: each read links the copies
logged since the last read, and links again the copies of the last few minutes,
because the log is written in batches by each server process, so a search
queued in one process may reach the database after the copy written by another.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from dataclasses import dataclass, replace

from sqlalchemy import case, delete, func, insert, select

from kb.db import Database, Event, LearnedWording, PhrasingDecision, SearchLog, Setting, utcnow
from kb.entry import SLUG_RE, Entry, EntryError
from kb.sheet import Sheet
from kb.store import Person, entry_path

AGENTS = Person("Agents' searches", "agents@kb")
LINK_WINDOW = dt.timedelta(minutes=10)  # no search id: the user's last search this recent
REFINE_GAP = dt.timedelta(minutes=2)  # a search typed this soon before the next one was refined
MAX_REFINED = 4  # earlier wordings of one search that count
SETTLE = dt.timedelta(minutes=5)  # copies this recent are linked again at the next read
DAYS = 90
MIN_TIMES = 2  # the list page; an entry's own page shows every suggestion
MAX_WORDING = 120
_WATERMARK = "phrasings.linked_up_to"
_CHUNK = 500


class PhrasingError(Exception):
    """A suggestion that cannot be accepted or dismissed; the message says why."""


@dataclass
class Suggestion:
    slug: str
    wording: str
    times: int = 0  # searches that led to a copy of this entry with these words
    refined: int = 0  # of those, the times the words failed and the agent typed again
    agents: int = 0
    last: dt.datetime | None = None
    title: str = ""

    @property
    def score(self) -> int:
        """Failed wordings count double: they are what the entry is missing."""
        return self.times + self.refined


def normalize(text: str) -> str:
    """One form per wording: lower case, single spaces, no punctuation at the ends."""
    text = " ".join(str(text).split()).lower()
    return re.sub(r"^[\W_]+|[\W_]+$", "", text)


_MASKED = re.compile(r"\[(?:email|phone|number)")  # customer details the log masked


def usable(wording: str) -> bool:
    return (3 <= len(wording) <= MAX_WORDING and bool(re.search(r"[^\W\d_]", wording))
            and not _MASKED.search(wording))


# -- linking copies to the searches before them ------------------------------------------


class _Searches:
    """The searches of the users who copied, by user and in time order, read in a few
    queries (not one per copy: a first run may link a year of copies at once)."""

    def __init__(self, s, copies: list) -> None:
        users = sorted({c.user_id for c in copies if c.user_id is not None})
        since = min(c.at for c in copies) - LINK_WINDOW - REFINE_GAP * MAX_REFINED
        cols = (SearchLog.id, SearchLog.user_id, SearchLog.query, SearchLog.at, SearchLog.copied)
        rows = []
        for i in range(0, len(users), _CHUNK):
            rows += s.execute(select(*cols).where(
                SearchLog.user_id.in_(users[i:i + _CHUNK]), SearchLog.at >= since)).all()
        wanted = {c.search_id for c in copies if c.search_id} - {r.id for r in rows}
        wanted_ids = sorted(wanted)
        for i in range(0, len(wanted_ids), _CHUNK):  # a page left open a long time
            rows += s.execute(select(*cols).where(
                SearchLog.id.in_(wanted_ids[i:i + _CHUNK]))).all()
        self.by_id = {r.id: r for r in rows}
        self.by_user: dict[int, list] = {}
        # by time, not id: each server process numbers its searches from its own block
        for r in sorted(self.by_id.values(), key=lambda r: (r.at, r.id)):
            self.by_user.setdefault(r.user_id, []).append(r)
        self.times = {u: [r.at for r in rows] for u, rows in self.by_user.items()}
        self.position = {r.id: i for rows in self.by_user.values() for i, r in enumerate(rows)}

    def final(self, copy) -> tuple[list, int] | None:
        """The user's searches and the position of the one `copy` came from."""
        mine = self.by_user.get(copy.user_id, [])
        row = self.by_id.get(copy.search_id) if copy.search_id else None
        if row is not None and row.user_id == copy.user_id:
            return mine, self.position[row.id]
        at = bisect.bisect_right(self.times.get(copy.user_id, []), copy.at) - 1
        if at >= 0 and copy.at - mine[at].at <= LINK_WINDOW:
            return mine, at
        return None


def _chain(searches: _Searches, copy) -> list[tuple[str, bool, int]]:
    """(wording, failed, search id) for the search that led to `copy` and the ones it refined."""
    if copy.user_id is None:
        return []
    found = searches.final(copy)
    if found is None:
        return []
    mine, at = found
    final = mine[at]
    out = [(normalize(final.query), False)]
    after = final
    for row in reversed(mine[max(0, at - MAX_REFINED):at]):
        # a search that ended in a copy was another call; a long pause, another question
        if row.copied or after.at - row.at > REFINE_GAP:
            break
        out.append((normalize(row.query), True))
        after = row
    seen: set[str] = set()
    chain = []
    for wording, failed in out:
        if usable(wording) and wording not in seen:
            seen.add(wording)
            chain.append((wording, failed, final.id))
    return chain


def link(db: Database, now: dt.datetime | None = None) -> int:
    """Link the copies logged since the last call (and the last few minutes' again)."""
    db.usage_log.flush()  # what this process queued is written before it is read
    now = now or utcnow()
    settled_before = now - SETTLE
    with db.session() as s:
        mark_row = s.get(Setting, _WATERMARK)
        mark = int(mark_row.value) if mark_row and mark_row.value.isdigit() else 0
        cols = select(Event.id, Event.user_id, Event.slug, Event.search_id, Event.at)
        # two index lookups; an OR of the two would read the whole table
        new = s.execute(cols.where(Event.id > mark, Event.kind == "copy")).all()
        recent = s.execute(cols.where(Event.at >= settled_before, Event.kind == "copy")).all()
        copies = sorted({c.id: c for c in [*new, *recent]}.values(), key=lambda c: c.id)
        if not copies:
            return 0
        ids = [c.id for c in copies]
        for i in range(0, len(ids), _CHUNK):
            s.execute(delete(LearnedWording).where(LearnedWording.event_id.in_(ids[i:i + _CHUNK])))
        searches = _Searches(s, copies)
        rows = [dict(event_id=copy.id, search_id=sid, user_id=copy.user_id, slug=copy.slug,
                     wording=wording, failed=failed, at=copy.at)
                for copy in copies for wording, failed, sid in _chain(searches, copy)]
        if rows:
            s.execute(insert(LearnedWording), rows)
        settled = [c.id for c in copies if c.at < settled_before]
        if settled and max(settled) > mark:
            if mark_row is None:
                s.add(Setting(key=_WATERMARK, value=str(max(settled))))
            else:
                mark_row.value = str(max(settled))
        s.commit()
    return len(copies)


# -- what trainers see --------------------------------------------------------------------


def _known_wordings(entry: Entry) -> set[str]:
    return {normalize(entry.title), *(normalize(p) for p in entry.phrasings)}


def _already_said(wording: str, known: set[str]) -> bool:
    """The entry has these words already: as a phrasing, or inside its title or one."""
    padded = f" {wording} "
    return any(padded in f" {k} " for k in known)


def suggestions(
    db: Database, sheet: Sheet | None = None, *, slug: str | None = None, days: int = DAYS,
    min_times: int = 1, now: dt.datetime | None = None, limit: int = 200,
) -> list[Suggestion]:
    """Wordings that led agents to copy an entry, most telling first, scoring at least
    `min_times` (see Suggestion.score). With a sheet, wordings the entry already has,
    and entries that are gone or retired, are left out."""
    link(db, now)
    since = (now or utcnow()) - dt.timedelta(days=days)
    LW = LearnedWording
    # one row per search (a search copied twice counts once), then per wording
    per_search = select(
        LW.slug, LW.wording, LW.search_id, func.max(LW.user_id).label("user_id"),
        func.max(case((LW.failed, 1), else_=0)).label("failed"),
        func.max(LW.at).label("at")).where(LW.at >= since)
    decided = select(PhrasingDecision.slug, PhrasingDecision.wording)
    if slug is not None:
        per_search = per_search.where(LW.slug == slug)
        decided = decided.where(PhrasingDecision.slug == slug)
    sub = per_search.group_by(LW.slug, LW.wording, LW.search_id).subquery()
    query = select(
        sub.c.slug, sub.c.wording, func.count().label("times"),
        func.sum(sub.c.failed).label("refined"),
        func.count(sub.c.user_id.distinct()).label("agents"), func.max(sub.c.at).label("last"),
    ).group_by(sub.c.slug, sub.c.wording).having(
        # a wording that failed before the copy counts double here too: it is offered
        # as soon as it failed once, as a wording two agents typed is
        func.count() + func.sum(sub.c.failed) >= min_times)
    with db.session() as s:
        done = set(s.execute(decided).all())
        found = [Suggestion(r.slug, r.wording, r.times, int(r.refined or 0), r.agents, r.last)
                 for r in s.execute(query) if (r.slug, r.wording) not in done]
    out = []
    entries: dict[str, Entry | None] = {}
    for item in found:
        if sheet is not None:
            if item.slug not in entries:
                try:
                    entries[item.slug] = sheet.entry(item.slug)
                except EntryError:
                    entries[item.slug] = None
            entry = entries[item.slug]
            if (entry is None or entry.status == "retired"
                    or _already_said(item.wording, _known_wordings(entry))):
                continue
            item.title = entry.title
        out.append(item)
    out.sort(key=lambda x: (-x.score, -x.times, x.slug, x.wording))
    return out[:limit]


def find(db: Database, slug: str, wording: str) -> Suggestion | None:
    wording = normalize(wording)
    return next((x for x in suggestions(db, slug=slug, limit=10_000) if x.wording == wording),
                None)


# -- a trainer's decision ---------------------------------------------------------------


def _decide(db: Database, slug: str, wording: str, decision: str, user_id: int | None,
            commit: str | None = None) -> None:
    with db.session() as s:
        row = s.get(PhrasingDecision, (slug, wording))
        if row is None:
            s.add(PhrasingDecision(slug=slug, wording=wording, decision=decision,
                                   user_id=user_id, commit=commit))
        else:
            row.decision, row.user_id, row.commit, row.at = decision, user_id, commit, utcnow()
        s.commit()


def _live_entry(sheet: Sheet, slug: str) -> Entry:
    """The entry a wording would be added to; PhrasingError when it is gone, retired
    or cannot be read."""
    try:
        entry = sheet.entry(slug)
    except EntryError as exc:
        raise PhrasingError(f"The entry file {slug}.md cannot be read: {exc}") from None
    if entry is None or entry.status == "retired":
        raise PhrasingError(f"There is no entry called '{slug}' any more.")
    return entry


def accept(db: Database, sheet: Sheet, slug: str, wording: str, *, committer: Person,
           user_id: int | None = None) -> str | None:
    """Add the wording to the entry's customer phrasings: one commit, author = the
    agents' words, committer = the trainer. The index catches up inside the write,
    so the next search already counts it. Returns the commit (None if the entry
    already had the wording)."""
    wording = normalize(wording)
    suggestion = find(db, slug, wording)
    if suggestion is None:
        raise PhrasingError(f"No search for “{wording}” led to this entry; nothing to add.")
    entry = _live_entry(sheet, slug)
    commit = None
    if wording not in _known_wordings(entry):
        n = suggestion.times
        refined = f", {suggestion.refined} of them before searching again" \
            if suggestion.refined else ""
        message = (f"Add the customer phrasing “{wording}”: agents found this entry by "
                   f"typing it {n} time{'' if n == 1 else 's'}{refined}")
        commit = sheet.save_entry(
            replace(entry, phrasings=(*entry.phrasings, wording)), message=message,
            author=AGENTS, committer=committer, based_on=entry.version)
    _decide(db, slug, wording, "accepted", user_id, commit)
    return commit


def accept_many(db: Database, sheet: Sheet, picks: list[tuple[str, str]], *,
                committer: Person, user_id: int | None = None,
                ) -> tuple[str | None, list[tuple[str, str]], list[str]]:
    """Add several suggested wordings, to one entry or several, in one commit (author
    = the agents' words, committer = the trainer). Returns the commit, the (slug,
    wording) pairs added, and what could not be added, each with its reason; the
    rest is added all the same."""
    offered = {(x.slug, x.wording): x for x in suggestions(db, limit=10_000)}
    wanted: dict[str, list[str]] = {}
    skipped = []
    for slug, wording in picks:
        wording = normalize(wording)
        if (slug, wording) not in offered:
            skipped.append(f"“{wording}”: no search for it led to {slug}")
        elif wording not in wanted.setdefault(slug, []):
            wanted[slug].append(wording)
    changes, expected, added, gone = {}, {}, [], set()
    for slug, wordings in wanted.items():
        try:
            entry = _live_entry(sheet, slug)
        except PhrasingError as exc:
            skipped.append(str(exc).rstrip("."))
            gone.add(slug)
            continue
        new = [w for w in wordings if w not in _known_wordings(entry)]
        if new:
            path = entry_path(slug)
            changes[path] = sheet.entry_text(replace(entry, phrasings=(*entry.phrasings, *new)))
            expected[path] = entry.version
            added += [(slug, w) for w in new]
    commit = None
    if changes:
        listed = "; ".join(f"“{w}” ({slug})" for slug, w in added[:10])
        more = f" and {len(added) - 10} more" if len(added) > 10 else ""
        commit = sheet.write(
            changes, message=f"Add {len(added)} customer phrasing"
            f"{'' if len(added) == 1 else 's'} agents found entries by: {listed}{more}",
            author=AGENTS, committer=committer, expected=expected)
    for slug, wordings in wanted.items():
        if slug not in gone:
            for wording in wordings:
                _decide(db, slug, wording, "accepted", user_id, commit)
    return commit, added, skipped


def dismiss(db: Database, slug: str, wording: str, *, user_id: int | None = None) -> None:
    """Not a way customers put it (or not for this entry): never suggest it again."""
    wording = normalize(wording)
    if not usable(wording) or not SLUG_RE.match(slug):
        raise PhrasingError("Say which wording to dismiss, and for which entry.")
    _decide(db, slug, wording, "dismissed", user_id)
