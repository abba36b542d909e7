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

import datetime as dt
import re
from dataclasses import dataclass, field, replace

from sqlalchemy import delete, or_, select

from kb.db import Database, Event, LearnedWording, PhrasingDecision, SearchLog, Setting, utcnow
from kb.entry import SLUG_RE, Entry, EntryError
from kb.sheet import Sheet
from kb.store import Person

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
    _users: set = field(default_factory=set, repr=False)

    @property
    def score(self) -> int:
        """Failed wordings count double: they are what the entry is missing."""
        return self.times + self.refined


def normalize(text: str) -> str:
    """One form per wording: lower case, single spaces, no punctuation at the ends."""
    text = " ".join(str(text).split()).lower()
    return re.sub(r"^[\W_]+|[\W_]+$", "", text)


def usable(wording: str) -> bool:
    return 3 <= len(wording) <= MAX_WORDING and bool(re.search(r"[^\W\d_]", wording))


# -- linking copies to the searches before them ------------------------------------------


def _final_search(s, copy: Event) -> SearchLog | None:
    if copy.search_id:
        row = s.get(SearchLog, copy.search_id)
        if row is not None and row.user_id == copy.user_id:
            return row
    return s.scalar(select(SearchLog).where(
        SearchLog.user_id == copy.user_id, SearchLog.at <= copy.at,
        SearchLog.at >= copy.at - LINK_WINDOW).order_by(SearchLog.at.desc()).limit(1))


def _chain(s, copy: Event) -> list[tuple[str, bool, int]]:
    """(wording, failed, search id) for the search that led to `copy` and the ones it refined."""
    if copy.user_id is None:
        return []
    final = _final_search(s, copy)
    if final is None:
        return []
    out = [(normalize(final.query), False, final.id)]
    # by time, not id: each server process numbers its searches from its own block
    earlier = s.scalars(select(SearchLog).where(
        SearchLog.user_id == copy.user_id, SearchLog.id != final.id, SearchLog.at <= final.at,
        SearchLog.at >= final.at - REFINE_GAP * MAX_REFINED)
        .order_by(SearchLog.at.desc()).limit(MAX_REFINED)).all()
    after = final
    for row in earlier:
        # a search that ended in a copy was another call; a long pause, another question
        if row.copied or after.at - row.at > REFINE_GAP:
            break
        out.append((normalize(row.query), True, final.id))
        after = row
    seen: set[str] = set()
    chain = []
    for wording, failed, sid in out:
        if usable(wording) and wording not in seen:
            seen.add(wording)
            chain.append((wording, failed, sid))
    return chain


def link(db: Database, now: dt.datetime | None = None) -> int:
    """Link the copies logged since the last call (and the last few minutes' again)."""
    db.usage_log.flush()  # what this process queued is written before it is read
    now = now or utcnow()
    settled_before = now - SETTLE
    with db.session() as s:
        mark_row = s.get(Setting, _WATERMARK)
        mark = int(mark_row.value) if mark_row and mark_row.value.isdigit() else 0
        copies = s.scalars(select(Event).where(
            Event.kind == "copy", or_(Event.id > mark, Event.at >= settled_before))
            .order_by(Event.id)).all()
        if not copies:
            return 0
        ids = [c.id for c in copies]
        for i in range(0, len(ids), _CHUNK):
            s.execute(delete(LearnedWording).where(LearnedWording.event_id.in_(ids[i:i + _CHUNK])))
        for copy in copies:
            for wording, failed, sid in _chain(s, copy):
                s.add(LearnedWording(event_id=copy.id, search_id=sid, user_id=copy.user_id,
                                     slug=copy.slug, wording=wording, failed=failed, at=copy.at))
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


def suggestions(
    db: Database, sheet: Sheet | None = None, *, slug: str | None = None, days: int = DAYS,
    min_times: int = 1, now: dt.datetime | None = None, limit: int = 200,
) -> list[Suggestion]:
    """Wordings that led agents to copy an entry, most telling first. With a sheet,
    wordings the entry already has, and entries that are gone or retired, are left out."""
    link(db, now)
    since = (now or utcnow()) - dt.timedelta(days=days)
    query = select(LearnedWording).where(LearnedWording.at >= since)
    decided = select(PhrasingDecision.slug, PhrasingDecision.wording)
    if slug is not None:
        query = query.where(LearnedWording.slug == slug)
        decided = decided.where(PhrasingDecision.slug == slug)
    found: dict[tuple[str, str], Suggestion] = {}
    searches: dict[tuple[str, str], dict[int, bool]] = {}
    with db.session() as s:
        done = set(s.execute(decided).all())
        for row in s.scalars(query):
            key = (row.slug, row.wording)
            if key in done:
                continue
            item = found.setdefault(key, Suggestion(row.slug, row.wording))
            # one search copied twice still counts once
            per = searches.setdefault(key, {})
            per[row.search_id] = per.get(row.search_id, False) or row.failed
            item._users.add(row.user_id)
            item.last = max(item.last or row.at, row.at)
    out = []
    entries: dict[str, Entry | None] = {}
    for key, item in found.items():
        item.times = len(searches[key])
        item.refined = sum(searches[key].values())
        item.agents = len(item._users)
        if item.times < min_times:
            continue
        if sheet is not None:
            if item.slug not in entries:
                try:
                    entries[item.slug] = sheet.entry(item.slug)
                except EntryError:
                    entries[item.slug] = None
            entry = entries[item.slug]
            if entry is None or entry.status == "retired" or item.wording in _known_wordings(entry):
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
    try:
        entry = sheet.entry(slug)
    except EntryError as exc:
        raise PhrasingError(f"The entry file {slug}.md cannot be read: {exc}") from None
    if entry is None or entry.status == "retired":
        raise PhrasingError(f"There is no entry called '{slug}' any more.")
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


def dismiss(db: Database, slug: str, wording: str, *, user_id: int | None = None) -> None:
    """Not a way customers put it (or not for this entry): never suggest it again."""
    wording = normalize(wording)
    if not usable(wording) or not SLUG_RE.match(slug):
        raise PhrasingError("Say which wording to dismiss, and for which entry.")
    _decide(db, slug, wording, "dismissed", user_id)
