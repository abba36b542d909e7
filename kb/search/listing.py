"""Listing the sheet through the index (browse, facets, owners, entries due),
and searching without it: while the index is rebuilt, a plain scan of titles,
phrasings, tags and categories answers."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from whoosh import query as Q

from kb.entry import review_due
from kb.search.analysis import _document, _words, stems
from kb.search.results import Hit, Results, mark_confident
from kb.search.snippets import best_fragment, highlight
from kb.store import slug_of

log = logging.getLogger("kb")
MAX_WORDS = 12


def _live_counts(reader, field: str) -> dict[str, int]:
    """Each term of `field` with how many entries in the index hold it. A removed
    entry's terms stay in its index segment until segments merge, and field_terms and
    doc_frequency still count them; postings leave deleted documents out."""
    counts = {}
    deletions = reader.has_deletions()
    for term in reader.field_terms(field):
        if deletions:
            live = sum(1 for _ in reader.postings(field, term).all_ids())
        else:  # nothing removed: the plain count is right
            live = reader.doc_frequency(field, term)
        if live:
            counts[term.decode() if isinstance(term, bytes) else term] = live
    return counts


class Listing:
    """What SearchIndex answers besides a ranked search. Needs of the class that
    uses it: `sheet`, `store`, `commit`, `_rows`, `_read_lock`, `_searcher()`,
    `ensure_fresh()`, `error` and `_trouble()`."""

    # field -> term counts at one commit: worked out once per index version, not per page
    _live_cache: tuple[object, dict[str, dict[str, int]]] = (object(), {})

    def _live(self, field: str) -> dict[str, int]:
        """The terms of `field` that live entries hold, with counts (hold `_read_lock`)."""
        if self._live_cache[0] != self.commit:
            self._live_cache = (self.commit, {})
        cache = self._live_cache[1]
        if field not in cache:
            cache[field] = _live_counts(self._searcher().reader(), field)
        return cache[field]

    def _scan(self, text: str, limit: int, tag: str | None, category: str | None) -> Results:
        """Search as best we can without the index: published entries whose title,
        phrasings, tags or category share a stemmed word with the query."""
        words = [t.text for t in _words(text)][:MAX_WORDS]
        query_stems = set(stems(" ".join(words)))
        scored = []
        for row in self._published(tag, category):
            score = len(query_stems & row.lead)
            if score or (not query_stems and (tag or category)):
                scored.append((score, row))
        scored.sort(key=lambda pair: (-pair[0], pair[1].title.lower()))
        hits = []
        for score, row in scored[:limit]:
            try:
                e = self.sheet.entry_at_version(row.slug, row.version)
            except Exception:
                continue
            phrasing = next((p for p in e.phrasings if query_stems & set(stems(p))), None)
            hits.append(Hit(
                slug=e.slug, title=e.title, score=float(score),
                snippet=highlight(phrasing, query_stems) if phrasing
                else best_fragment(e.answer, query_stems),
                category=e.category, tags=e.tags, matched_phrasing=phrasing,
                meta=_document(e)["meta"]))
        hits, sure = mark_confident(hits, sorted(query_stems))
        return Results(text, hits, len(scored), words=sorted(query_stems), rebuilding=True,
                       sure=sure)

    def _published(self, tag: str | None = None, category: str | None = None) -> list[_Row]:
        """A small row per published entry, kept per file version, so that scanning
        a large sheet reads each file once rather than once per search."""
        try:
            files = [(p, self.store.version_of(p)) for p in self.store.entry_paths()]
        except Exception:  # not even the content can be read: nothing to show
            log.exception("cannot read the sheet")
            return []
        tag = (tag or "").strip().lower()
        rows = []
        for path, version in files:
            row = self._rows.get((path, version))
            if row is None:
                try:
                    e = self.sheet.entry_at_version(slug_of(path), version)
                except Exception:  # named in `problems` by the index; skipped here
                    continue
                row = _Row(e.slug, version, e.title, e.tags, e.category, e.published,
                           frozenset(stems(" ".join([e.title, *e.phrasings, *e.tags,
                                                     e.category]))))
                self._rows[(path, version)] = row
            if row.published and (not tag or tag in row.tags) and (
                    not category or row.category == category.strip()):
                rows.append(row)
        return rows


    def _healthy(self) -> bool:
        self.ensure_fresh()
        return self.error is None

    def due_between(self, start: dt.date | None, end: dt.date, *,
                    owners: Iterable[str] = (), offset: int = 0,
                    limit: int = 100) -> tuple[list[str], int]:
        """Slugs of published entries due for review from `start` (None: any time
        before) up to but not including `end`, earliest first, one page of them;
        and how many there are in all. Only that page is read from the index."""
        owners = [o for o in owners if o]
        if self._healthy():
            query = Q.TermRange("due", start.isoformat() if start else None, end.isoformat(),
                                endexcl=True)
            if owners:
                query = Q.And([query, Q.Or([Q.Term("owner", o) for o in owners])])
            try:
                with self._read_lock:
                    hits = self._searcher().search(query, limit=offset + limit, sortedby="due")
                    return [h["slug"] for h in hits[offset:offset + limit]], len(hits)
            except Exception as exc:
                self._trouble(exc)
        due = sorted((review_due(e), e.slug) for e in self._published()
                     if review_due(e) and (not start or review_due(e) >= start)
                     and review_due(e) < end and (not owners or e.owner in owners))
        return [slug for _, slug in due[offset:offset + limit]], len(due)

    def published_slugs(self, *, category: str | None = None, tag: str | None = None,
                        limit: int = 100) -> tuple[list[str], int]:
        """Up to `limit` published slugs (of one category or tag), by category then
        slug, and how many there are in all."""
        if self._healthy():
            filters = [Q.Every()]
            if category:
                filters.append(Q.Term("category", category))
            if tag:
                filters.append(Q.Term("tags", tag.lower()))
            try:
                with self._read_lock:
                    hits = self._searcher().search(Q.And(filters), limit=limit,
                                                   sortedby=["category", "slug"])
                    return [h["slug"] for h in hits], len(hits)
            except Exception as exc:
                self._trouble(exc)
        chosen = sorted((e.category, e.slug) for e in self._published(tag, category))
        return [slug for _, slug in chosen[:limit]], len(chosen)

    def browse(self, tag: str | None = None, category: str | None = None) -> list[dict]:
        """Stored fields of every published entry (for lists and filters), by title."""
        rows = None
        if self._healthy():
            filters = [Q.Every()]
            if tag:
                filters.append(Q.Term("tags", tag.lower()))
            if category:
                filters.append(Q.Term("category", category))
            try:
                with self._read_lock:
                    hits = self._searcher().search(Q.And(filters), limit=None, sortedby="slug")
                    rows = [{"slug": h["slug"], "title": h["title"],
                             "category": h.get("category", ""),
                             "tags": [t for t in h.get("tags", "").split(",") if t]}
                            for h in hits]
            except Exception as exc:
                self._trouble(exc)
        if rows is None:
            rows = [{"slug": e.slug, "title": e.title, "category": e.category,
                     "tags": list(e.tags)} for e in self._published(tag, category)]
        return sorted(rows, key=lambda r: r["title"].lower())

    def facets(self) -> dict[str, list[str]]:
        if self._healthy():
            try:
                with self._read_lock:
                    return {"tags": sorted(self._live("tags")),
                            "categories": sorted(self._live("category"))}
            except Exception as exc:
                self._trouble(exc)
        entries = self._published()
        return {"tags": sorted({t for e in entries for t in e.tags}),
                "categories": sorted({e.category for e in entries if e.category})}

    def owners(self) -> list[str]:
        """The owners entries name (for the edit form's list); empty while the index is
        unwell, since reading every file for a hint is not worth it."""
        if self._healthy():
            try:
                with self._read_lock:
                    return sorted(self._live("owner"))
            except Exception as exc:
                self._trouble(exc)
        return []

    def category_counts(self) -> dict[str, int]:
        if self._healthy():
            try:
                with self._read_lock:
                    return dict(self._live("category"))
            except Exception as exc:
                self._trouble(exc)
        counts: dict[str, int] = {}
        for e in self._published():
            if e.category:
                counts[e.category] = counts.get(e.category, 0) + 1
        return counts

    def doc_count(self) -> int:
        if self._healthy():
            try:
                with self._read_lock:
                    return self._searcher().doc_count()
            except Exception as exc:
                self._trouble(exc)
        return len(self._published())



@dataclass(frozen=True)
class _Row:
    """What the plain scan (no index) needs of one entry."""

    slug: str
    version: str
    title: str
    tags: tuple[str, ...]
    category: str
    published: bool
    lead: frozenset[str]  # stems of the title, phrasings, tags and category
