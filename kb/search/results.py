"""What a search answers: its results, and which of them are confident."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from kb.search.analysis import stems

# A result is "confident" when what it is about (title, customer phrasings, tags) holds at
# least half of the customer's words and it stands clear of the next result. Queries of
# common words ("can you help me") match many entries alike and none is confident, so
# the page also offers to propose an entry. Scores grow with the sheet; the ratio does not.
CONFIDENT_COVER = 0.5
CONFIDENT_LEAD = 1.2
# The list shows the results scoring at least this share of the best one; weaker ones
# (a common word alone, a faint likeness) wait behind "More results".
SHOWN_SHARE = 0.6
_FILLER_WORDS = (
    "i me my mine you your yours it its we us our they them their he him his she her this "
    "that these those please hi hello thanks want wanted need needs get got can could would "
    "will just still some any thing things someone something about")


@dataclass(frozen=True)
class Hit:
    slug: str
    title: str
    score: float
    snippet: str  # HTML: escaped text with <mark> around the matching words
    category: str
    tags: tuple[str, ...]
    matched_phrasing: str | None = None
    meta: dict = field(default_factory=dict)
    confident: bool = False

    def review_due_since(self) -> str | None:
        """Worked out at query time: an entry turns overdue without being re-indexed."""
        reviewed, every = self.meta.get("last_reviewed"), self.meta.get("every")
        if not reviewed or not every:
            return None
        try:  # an index written before values were range-checked may hold anything
            due = dt.date.fromisoformat(reviewed) + dt.timedelta(days=int(every))
        except (OverflowError, TypeError, ValueError):
            return None
        return due.isoformat() if due < dt.date.today() else None

    def to_dict(self) -> dict:
        return {
            "slug": self.slug, "title": self.title, "score": round(self.score, 3),
            "snippet": self.snippet, "category": self.category, "tags": list(self.tags),
            "matched_phrasing": self.matched_phrasing, "confident": self.confident,
            "last_reviewed": self.meta.get("last_reviewed"),
            "review_due_since": self.review_due_since(),
        }


@dataclass
class Results:
    query: str
    hits: list[Hit]
    total: int
    did_you_mean: str | None = None
    corrections: dict[str, str] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)  # stems of the words as typed, for logs
    rebuilding: bool = False  # the index is being rebuilt: a simpler search answered
    sure: bool = False  # the first result is a sure answer (see mark_confident)

    @property
    def confident(self) -> bool:
        """Whether the first result is a sure match; if not, the page offers a new entry."""
        return self.sure

    def to_dict(self) -> dict:
        out = {
            "query": self.query, "total": self.total, "did_you_mean": self.did_you_mean,
            "confident": self.confident, "results": [h.to_dict() for h in self.hits],
        }
        if self.rebuilding:
            out["index"] = "rebuilding"
        return out


@functools.lru_cache(maxsize=1)
def _filler() -> frozenset[str]:
    return frozenset(stems(_FILLER_WORDS))


def mark_confident(hits: list[Hit], word_stems: list[str],
                   synonym_groups: Callable[[set[str]], Iterable] = lambda _: (),
                   ) -> tuple[list[Hit], bool]:
    """The one place that decides which results are confident and whether the first is
    a sure answer. Confident: scoring at least SHOWN_SHARE of the best (the first always
    is). Sure: what the first is about holds at least half of the customer's words (a
    synonym or the start of a half-typed word counts), and it scores clearly above the
    next result."""
    if hits:
        floor = SHOWN_SHARE * hits[0].score
        hits = [replace(h, confident=(i == 0 or h.score >= floor)) for i, h in enumerate(hits)]
    words = [w for w in dict.fromkeys(word_stems) if w not in _filler()]
    if not hits or not words:
        return hits, False
    top = hits[0]
    about = set(stems(" ".join([top.title, top.matched_phrasing or "", *top.tags])))
    for group in synonym_groups(about):
        if any(set(p) <= about for p in group):
            about |= {w for p in group for w in p}

    def covered(word: str) -> bool:
        return word in about or (len(word) >= 3 and any(a.startswith(word) for a in about))

    cover = sum(1 for w in words if covered(w)) / len(words)
    second = hits[1].score if len(hits) > 1 else 0.0
    return hits, cover >= CONFIDENT_COVER and top.score >= CONFIDENT_LEAD * second
