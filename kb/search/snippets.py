"""What a result shows: the entry's stored fields read once per index version,
the customer phrasing or answer sentence that matched, highlighted."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from kb.search.analysis import _TOKEN, _key, stems
from kb.search.results import Hit
from kb.search.scoring import _segment_id, _Shared

MAX_CACHED_DOCS = 2_000  # about 5 MB of stored fields


@dataclass(frozen=True)
class _Doc:
    """One indexed entry as a result needs it: its stored fields, and its phrasings
    with their words already stemmed. (The answer's sentences are taken apart only
    for a result no phrasing matched: kept for every cached entry they cost more
    memory than all the rest of a search's caches.)"""

    stored: dict
    phrasings: tuple[tuple[str, tuple[str, ...]], ...]  # (phrasing, its stems)

    @classmethod
    def of(cls, stored: dict) -> _Doc:
        phrasings = tuple((p, tuple(stems(p)))
                          for p in stored.get("phrasings", "").split("\n") if p)
        return cls(stored, phrasings)

    def hit(self, score: float, query_stems: set[str]) -> Hit:
        """The result: the phrasing holding most of the searched words, or else the
        answer's sentence holding most, highlighted."""
        stored, best_phrasing, best_count = self.stored, None, 0
        for phrasing, its_stems in self.phrasings:
            count = sum(1 for s in its_stems if s in query_stems)
            if count > best_count:
                best_phrasing, best_count = phrasing, count
        if best_phrasing:
            snippet = highlight(best_phrasing, query_stems)
        else:
            snippet = best_fragment(stored.get("body", ""), query_stems)
        return Hit(
            slug=stored["slug"], title=stored["title"], score=float(score),
            snippet=snippet, category=stored.get("category", ""),
            tags=tuple(t for t in stored.get("tags", "").split(",") if t),
            matched_phrasing=best_phrasing, meta=stored.get("meta") or {},
        )


def _doc(searcher, docnum: int, shared: _Shared) -> _Doc:
    """The document `docnum` of the searcher, from the cache of its segment."""
    sub, offset = next((sub, offset) for sub, offset in reversed(searcher.leaf_searchers())
                       if docnum >= offset)
    key = (_segment_id(sub), docnum - offset)
    found = shared.docs.get(key)
    if found is None:
        found = _Doc.of(searcher.stored_fields(docnum))
        if len(shared.docs) >= MAX_CACHED_DOCS:
            shared.docs.pop(next(iter(shared.docs)))  # the oldest goes
        shared.docs[key] = found
    return found


def highlight(text: str, query_stems: set[str]) -> str:
    """Escape `text` and wrap the words whose stems were searched for in <mark>."""
    out, last = [], 0
    for match in _TOKEN.finditer(text):
        if _key(match.group(0).lower()) in query_stems:
            out.append(html.escape(text[last:match.start()]))
            out.append("<mark>" + html.escape(match.group(0)) + "</mark>")
            last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_EDGES = ".,;:!?()[]{}\"'*_`<>"


def best_fragment(body: str, query_stems: set[str], width: int = 160) -> str:
    """The sentence of the body with the most searched-for words (the first on a tie),
    highlighted."""
    plain = re.sub(r"(?m)^\s*(?:[#>]+|[-*+]|\d+\.)\s+", "", body)  # headings, quotes, lists
    plain = re.sub(r"\*\*|__|`", "", plain)
    sentences = [s.strip() for s in _SENTENCE.findall(plain) if s.strip()]
    if not sentences:
        return ""
    # Plain string splitting, not the analyzer: this runs on every answer shown.
    best = max(sentences, key=lambda s: sum(1 for w in s.lower().split()
                                            if _key(w.strip(_EDGES)) in query_stems))
    if len(best) > width:
        best = best[:width].rsplit(" ", 1)[0] + " …"
    return highlight(best, query_stems)
