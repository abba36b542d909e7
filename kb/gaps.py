"""Gaps: the needs agents searched for that the sheet did not answer.

What a gap is, read from one agent's searches in time order, with what came of
each (an entry opened or copied from it, the "use"):

- a search with no word of two letters or more ("f", "?") is a stray keystroke:
  it is left out altogether;
- a search whose use was **kept** is answered: the agent did not search for the
  same need again within a minute of the use (a search for something else, the
  customer's next problem, does not undo it). An open counts as a use: on the
  phone the agent reads the entry's points and copies nothing;
- a search not answered that the agent **refined**, searching for the same need
  again within two minutes, is answered when the refined search is (the first
  wording is the learning loop's business, kb.phrasings, not a gap);
- what is left are gaps: each chain of wordings of one need counts once, under
  the agent's last wording.

Two searches are for the same need when they share a stemmed word, or when the
entry used after the second was among the first's top results (the agent found
the answer to the same question in other words).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select

from kb.db import Database, Event, SearchLog, utcnow

KEEP_WINDOW = dt.timedelta(minutes=1)  # the same need searched again this soon: not kept
REFINE_WINDOW = dt.timedelta(minutes=2)  # the same need searched again this soon: refined
_REAL_WORD = re.compile(r"[^\W\d_]{2,}|\d{2,}")


@dataclass
class Search:
    """One logged search and what came of it."""

    id: int
    user: int | None
    query: str
    words: frozenset[str]  # stemmed, stop words gone
    at: dt.datetime
    results: int = 0
    used_slug: str | None = None  # the entry copied from it, else opened from it
    used_at: dt.datetime | None = None

    @property
    def stray(self) -> bool:
        return not _REAL_WORD.search(self.query)


SameNeed = Callable[[Search, Search], bool]


def shares_a_word(first: Search, then: Search) -> bool:
    return bool(first.words & then.words)


def same_need_or_found(top: Callable[[str], list[str]], most: int = 2000) -> SameNeed:
    """Sharing a word, or: the entry used after the second search was among the first
    search's top results (`top`: a query's top slugs; at most `most` distinct queries
    are searched, then words alone decide, so a busy quarter's report stays quick)."""
    seen: dict[str, list[str]] = {}

    def same(first: Search, then: Search) -> bool:
        if shares_a_word(first, then):
            return True
        if then.used_slug is None:
            return False
        if first.query not in seen:
            if len(seen) >= most:
                return False
            seen[first.query] = top(first.query)
        return then.used_slug in seen[first.query]

    return same


def unanswered(searches: Iterable[Search], same_need: SameNeed = shares_a_word,
               ) -> list[list[Search]]:
    """The gaps among these searches: each a chain of one agent's wordings of a need
    that was never answered, oldest first (see the module's docstring)."""
    by_user: dict[int | None, list[Search]] = {}
    for s in sorted(searches, key=lambda s: (s.at, s.id)):
        if not s.stray:
            by_user.setdefault(s.user, []).append(s)
    chains = []
    for mine in by_user.values():
        answered_from = [False] * len(mine)
        refines = [False] * len(mine)  # the next search is this one's need searched again
        for i in range(len(mine) - 1, -1, -1):
            s, after = mine[i], mine[i + 1] if i + 1 < len(mine) else None
            since = s.used_at or s.at
            # the time first: the same-need test may run a search
            again = (after is not None and after.at - since < REFINE_WINDOW
                     and same_need(s, after))
            kept = s.used_at is not None and not (again and after.at - since < KEEP_WINDOW)
            refines[i] = not kept and again
            answered_from[i] = kept or (refines[i] and answered_from[i + 1])
        chain: list[Search] = []
        for i, s in enumerate(mine):
            if answered_from[i]:
                continue
            chain.append(s)
            if not refines[i]:
                chains.append(chain)
                chain = []
    return chains


def read_searches(db: Database, since: dt.datetime) -> list[Search]:
    """The searches logged since then, each with its latest use (copy before open)."""
    db.usage_log.flush()  # what this process queued is in the database first
    with db.session() as s:
        rows = s.execute(select(SearchLog.id, SearchLog.user_id, SearchLog.query,
                                SearchLog.words, SearchLog.at, SearchLog.result_count,
                                SearchLog.opened_slug)
                         .where(SearchLog.at >= since)).all()
        uses = s.execute(select(Event.search_id, Event.kind, Event.slug, func.max(Event.at))
                         .where(Event.search_id.is_not(None), Event.at >= since,
                                Event.kind.in_(("copy", "view")))
                         .group_by(Event.search_id, Event.kind, Event.slug)).all()
    used: dict[int, tuple[str, str, dt.datetime]] = {}
    for search_id, kind, slug, at in uses:
        best = used.get(search_id)
        # the entry copied names the use rather than one only opened; its time is the
        # search's last use, copy or open
        if best is None:
            used[search_id] = (kind, slug, at)
        else:
            wins = (kind == "copy") > (best[0] == "copy") or (kind == best[0] and at > best[2])
            used[search_id] = (kind if wins else best[0], slug if wins else best[1],
                               max(at, best[2]))
    out = []
    for r in rows:
        kind, slug, at = used.get(r.id, (None, r.opened_slug, None))
        if slug and at is None:  # opened in another process, its event not read: at once
            at = r.at
        out.append(Search(r.id, r.user_id, r.query, frozenset((r.words or "").split()), r.at,
                          r.result_count, slug, at))
    return out


def answered(db: Database, since: dt.datetime, same_need: SameNeed = shares_a_word,
             ) -> set[int]:
    """The ids of the searches since then that were answered (not part of a gap)."""
    found = read_searches(db, since)
    open_ids = {s.id for chain in unanswered(found, same_need) for s in chain}
    return {s.id for s in found if s.id not in open_ids and not s.stray}


@dataclass
class Gap:
    words: str
    count: int  # needs: each chain of wordings once
    queries: list[str] = field(default_factory=list)
    zero_results: int = 0
    last: dt.datetime | None = None
    answered_by: str | None = None  # an entry changed since that now answers it


def gaps(db: Database, days: int = 90, limit: int = 100,
         same_need: SameNeed = shares_a_word) -> list[Gap]:
    """The unanswered needs of the last `days`, grouped by the stemmed words of their
    last wording (similar wordings folded together), most frequent first."""
    since = utcnow() - dt.timedelta(days=days)
    groups: dict[str, Gap] = {}
    for chain in unanswered(read_searches(db, since), same_need):
        final = chain[-1]
        key = " ".join(sorted(final.words)) or final.query.lower()
        gap = groups.setdefault(key, Gap(key, 0))
        gap.count += 1
        gap.zero_results += final.results == 0
        for s in reversed(chain):  # the final wording first
            if s.query not in gap.queries:
                gap.queries.append(s.query)
        gap.last = max(gap.last or final.at, final.at)
    return merge_similar(sorted(groups.values(), key=_most_searched))[:limit]


def _most_searched(gap: Gap) -> tuple:
    return (-gap.count, -gap.zero_results, gap.words)


def similar_words(a: set[str], b: set[str]) -> bool:
    """Two searches ask for the same thing when at least half of all their words
    are shared: "assemble" and "someone to assemble it", "loyalty points" and
    "loyalty points missing" (stop words are already gone), but not "order" and
    "order gift wrap"."""
    return bool(a and b) and len(a & b) / len(a | b) >= 0.5


def merge_similar(ranked: list[Gap]) -> list[Gap]:
    """Fold each group into the first more frequent group worded alike."""
    merged: list[tuple[set[str], Gap]] = []
    for gap in ranked:
        words = set(gap.words.split())
        home = next((g for w, g in merged if similar_words(w, words)), None)
        if home is None:
            merged.append((words, Gap(gap.words, gap.count, list(gap.queries),
                                      gap.zero_results, gap.last)))
            continue
        home.count += gap.count
        home.zero_results += gap.zero_results
        home.queries += [q for q in gap.queries if q not in home.queries]
        if gap.last and (home.last is None or gap.last > home.last):
            home.last = gap.last
    return sorted((g for _, g in merged), key=_most_searched)
