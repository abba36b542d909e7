"""Full-text search over the sheet. The only module that imports whoosh.

Agents type the customer's words, so a query is taken apart by hand rather
than by a query parser: every word is stemmed, unknown words are corrected
against the words the sheet uses ("did you mean"), the team's synonym groups
add their alternatives, the last word counts as a prefix while typing, and
title and customer phrasings weigh more than the body. Nothing here raises
on odd input: a query is only ever a bag of words.

The index is derived data. It records the content commit it reflects in a
small state file, catches up from that commit with a tree diff, and is rebuilt
from scratch only when it is missing, from another schema, or unreadable.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from whoosh import columns as whoosh_columns
from whoosh import index as whoosh_index
from whoosh import query as Q
from whoosh.analysis import (
    STOP_WORDS,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
)
from whoosh.fields import COLUMN, ID, KEYWORD, STORED, TEXT, Schema
from whoosh.lang.porter import stem as porter_stem
from whoosh.support.levenshtein import distance as edit_distance
from whoosh.writing import MERGE_SMALL

from kb import meaning as kb_meaning
from kb import priority
from kb.entry import Entry, review_due
from kb.sheet import SYNONYMS, Problem, Sheet
from kb.store import is_entry_path, slug_of

log = logging.getLogger("kb")
RETRY_SECONDS = 30.0  # a failed background rebuild is tried again after this long
# 7: plain segment files; 8: doubled consonants; 9: meaning vectors; 10: owner, due date;
# 11: two meaning vectors per entry
SCHEMA_VERSION = 11
STATE_FILE = "kb-state.json"
MAX_QUERY_CHARS = 200
MAX_WORDS = 12
MAX_SEGMENTS = 12
MAX_PREFIX_TERMS = 20
CACHE_POSTINGS_FROM = 256  # a posting list this long is kept decoded in memory ...
MAX_CACHED_POSTINGS = 2_000_000  # ... up to this many postings in all (about 16 MB)
MAX_CACHED_LEAF_SCORES = 500_000  # scores of query words kept per index version (6 MB)
MAX_CACHED_WORDS = 20_000
PARALLEL_FROM = 2000  # entries; below this a second indexing process costs more than it saves

# How much a match counts, by field: the customer's words and the title first.
# "lead" holds the title, the customer phrasings, tags and category: short text
# that says what the entry is about. Two fields, not four, halves the work per
# query word, which is what keeps a 10,000-entry sheet fast in pure Python.
BOOSTS = {"lead": 3.0, "body": 1.0}
SYNONYM_WEIGHT = 0.8
PREFIX_WEIGHT = 0.6
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
# The final rank is BM25F + MEANING_WEIGHT x how much more alike (cosine similarity)
# an entry is to the query than the sheet's median entry (tuned on the sets in
# tests/relevance_*.tsv, see README). An entry no word matched is ranked only if it
# is among the MEANING_CANDIDATES most alike and MEANING_FLOOR above the average.
# An entry has two vectors (kb.meaning.entry_vectors); its likeness is the nearer one.
MEANING_WEIGHT = 200.0
MEANING_CANDIDATES = 10
MEANING_FLOOR = 0.1
_VECTOR_BYTES = kb_meaning.VECTORS_PER_ENTRY * kb_meaning.DIM * 2  # float16


def _porter(word: str) -> str:
    """Porter stemming with the rule whoosh's stemmer leaves out: after -ed or
    -ing, a doubled final consonant is undone ("wrapping" and "stopped" become
    "wrap" and "stop", as "wrap" and "stop" do)."""
    stemmed = porter_stem(word)
    if (word.endswith(("ed", "ing")) and len(stemmed) > 3 and stemmed[-1] == stemmed[-2]
            and stemmed[-1] not in "aeioulsz"):
        return stemmed[:-1]
    return stemmed


_stem = RegexTokenizer() | LowercaseFilter() | StopFilter() | StemFilter(stemfn=_porter)
_words = RegexTokenizer(r"[^\W_]+(?:'[^\W_]+)?") | LowercaseFilter()
_STOP = frozenset(STOP_WORDS)
_spell = RegexTokenizer() | LowercaseFilter()


def _schema() -> Schema:
    return Schema(
        slug=ID(stored=True, unique=True),
        title=STORED(),
        phrasings=STORED(),
        lead=TEXT(analyzer=_stem),
        body=TEXT(analyzer=_stem, stored=True),
        spell=TEXT(analyzer=_spell, phrase=False),
        tags=KEYWORD(stored=True, commas=True, lowercase=True),
        category=ID(stored=True),
        status=ID(stored=True),
        meta=STORED(),
        meaning=COLUMN(whoosh_columns.FixedBytesColumn(_VECTOR_BYTES)),  # float16
        # the reports page through these instead of reading every entry file
        owner=ID(stored=True),
        due=ID(sortable=True),  # ISO date of the next review: text order is date order
    )


_TOKEN = re.compile(r"[\w\*]+(?:\.?[\w\*]+)*")  # whoosh's RegexTokenizer default


@functools.lru_cache(maxsize=50_000)
def _stem_word(word: str) -> str:
    return _porter(word)


def stems(text: str) -> list[str]:
    """What the `_stem` analyzer makes of `text`, without its generator pipeline:
    snippets stem every sentence of ten answers per search, so this is hot."""
    out = []
    for match in _TOKEN.finditer(text):
        word = match.group(0).lower()
        if len(word) >= 2 and word not in _STOP:
            out.append(_stem_word(word))
    return out


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


class SearchIndex:
    """A Whoosh index of the sheet that knows which commit it reflects."""

    def __init__(self, index_dir: str | os.PathLike[str], sheet: Sheet,
                 meaning: kb_meaning.Meaning | None = None):
        self.dir = Path(index_dir)
        self.sheet = sheet
        self.store = sheet.store
        self._ix = None
        # One searcher for all threads, used under this lock. A searcher per
        # thread copies parts of the index into memory for each one (about 30 MB
        # at 10,000 entries); searching is pure Python under the GIL, so threads
        # gain nothing from searching side by side.
        self._read_lock = threading.RLock()
        self._shared: _Shared | None = None
        self._synonyms = _Synonyms(None, None, [], {}, frozenset())
        self.commit: str | None = None
        self.problems: dict[str, str] = {}
        # When the index cannot be used (its folder deleted, unreadable, a failed
        # update), `error` says why, searches fall back to a plain scan of the
        # sheet, and a background thread rebuilds it; a failed rebuild is tried
        # again `retry_seconds` later, at the next search.
        self.error: str | None = None
        self.retry_seconds = RETRY_SECONDS
        self._failed_at = 0.0
        self._rebuilder: threading.Thread | None = None
        self._recover_lock = threading.Lock()
        self._rows: dict[tuple[str, str], _Row] = {}  # (path, version): what the scan needs
        # the model is loaded once per process; without it, search uses words only
        self.meaning = meaning or kb_meaning.shared()

    # -- state ------------------------------------------------------------------

    def _state_path(self) -> Path:
        return self.dir / STATE_FILE

    def _read_state(self) -> dict:
        try:
            return json.loads(self._state_path().read_text())
        except (OSError, ValueError):
            return {}

    def _write_state(self) -> None:
        tmp = self.dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps({
            "schema": SCHEMA_VERSION, "commit": self.commit, "problems": self.problems,
            "meaning": self.meaning.name if self.meaning.available else None,
        }))
        os.replace(tmp, self._state_path())

    def problem_list(self) -> list[Problem]:
        return [Problem(p, m) for p, m in sorted(self.problems.items())]

    # -- opening, catching up, rebuilding --------------------------------------------

    def open(self, progress: Callable[[Iterable], Iterable] | None = None) -> str:
        """Open the index and bring it up to the content's head commit.

        Returns what was done: "current", "caught up", "rebuilt", or "unavailable"
        when it cannot be opened or rebuilt now: `error` says why, searching
        goes on by a plain scan, and it is rebuilt in the background."""
        try:
            with self.store.locked():
                return self._open_locked(progress)
        except Exception as exc:  # derived data: never a reason not to start
            self._trouble(exc)
            return "unavailable"

    def _open_locked(self, progress) -> str:
        state = self._read_state()
        usable = state.get("schema") == SCHEMA_VERSION
        if self.meaning.available and state.get("meaning") != self.meaning.name:
            usable = False  # built without the model's vectors (or another model's)
        if usable:
            try:
                ix = whoosh_index.open_dir(str(self.dir))
            except Exception:  # missing or damaged: it is derived data, so rebuild
                usable = False
            else:
                with self._read_lock:
                    self._drop_searcher()
                    if self._ix is not None:
                        self._ix.close()
                    self._ix = ix
        if not usable:
            self._rebuild_locked(progress)
            return "rebuilt"
        self.commit = state.get("commit")
        self.problems = dict(state.get("problems") or {})
        if self.commit == self.store.head():
            return "current"
        return self._catch_up_locked(progress)

    # -- when the index is missing or unusable ------------------------------------------

    def _trouble(self, exc: BaseException | str) -> None:
        """Note why the index cannot be used and rebuild it in the background."""
        message = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        log.warning("search index %s unusable (%s); rebuilding it in the background",
                    self.dir, message)
        self.error = message
        self._failed_at = time.monotonic()
        self._start_recovery()

    def _start_recovery(self) -> None:
        with self._recover_lock:
            if self._rebuilder is not None and self._rebuilder.is_alive():
                return
            self._rebuilder = threading.Thread(target=self._recover, name="kb-index-rebuild",
                                               daemon=True)
            self._rebuilder.start()

    def _recover(self) -> None:
        """Reopen the index (another process may have rebuilt it) or rebuild it."""
        try:
            with self.store.locked():
                self._open_locked(None)
        except Exception as exc:
            log.warning("search index %s could not be rebuilt: %r; trying again later",
                        self.dir, exc)
            self.error = f"{type(exc).__name__}: {exc}"
            self._failed_at = time.monotonic()
            return
        self.error = None
        self._rows = {}
        log.warning("search index %s rebuilt at %s", self.dir, (self.commit or "")[:7])

    def wait_until_recovered(self) -> bool:
        """Wait for a background rebuild, if one runs; True if the index is usable."""
        thread = self._rebuilder
        if thread is not None:
            thread.join()
        return self.error is None

    @property
    def catching_up(self) -> bool:
        """True while the index does not yet show the latest saved content."""
        return self.error is not None

    def rebuild(self, progress: Callable[[Iterable], Iterable] | None = None) -> int:
        """Index every entry from scratch. Returns the number of entries indexed."""
        with self.store.locked():
            return self._rebuild_locked(progress)

    def _rebuild_locked(self, progress) -> int:
        with self._read_lock:
            self._drop_searcher()
        if self._ix is not None:
            self._ix.close()
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.dir.chmod(0o700)  # derived from the content, so as private as it
        self._ix = whoosh_index.create_in(str(self.dir), _schema())
        head = self.store.head()
        paths = self.store.entry_paths(head)
        self.problems = {}
        count = 0
        # A large sheet is indexed by two processes (one per core here), about
        # twice as fast; each leaves its own segment, which search reads as one.
        procs = min(2, os.cpu_count() or 1) if len(paths) > PARALLEL_FROM else 1
        writer = self._ix.writer(limitmb=128, procs=procs, multisegment=procs > 1, compound=False)
        try:
            for path in progress(paths) if progress else paths:
                count += self._index_path(writer, path, head)
            writer.commit()
        except BaseException:
            writer.cancel()
            raise
        self.commit = head
        self._write_state()
        return count

    def catch_up(self, old_head: str | None = None, new_head: str | None = None) -> None:
        """Bring the index to the store's head. Call with the store lock held
        (the store's `after_commit` hook does); the arguments are ignored.

        Never raises: the save it follows is already in git, so a failure here
        only means the index catches up in the background."""
        if self.error is not None:
            self._start_recovery()  # waits for the store lock this save holds
            return
        try:
            self._catch_up_locked(None)
        except Exception as exc:
            self._trouble(exc)

    def _catch_up_locked(self, progress) -> str:
        state = self._read_state()  # another process may already have caught up
        if state.get("commit"):
            self.commit = state["commit"]
            self.problems = dict(state.get("problems") or {})
        head = self.store.head()
        if self.commit == head:
            return "current"
        try:
            changed = self.store.changes_between(self.commit, head)
        except Exception:
            changed = None  # the old commit is gone: the content was replaced
        if changed is None or self._ix is None:
            self._rebuild_locked(progress)
            return "rebuilt"
        writer = self._ix.writer(compound=False)
        try:
            for path in progress(changed) if progress else changed:
                if is_entry_path(path):
                    writer.delete_by_term("slug", slug_of(path))
                    self.problems.pop(path, None)
                    self._index_path(writer, path, head)
            # A write adds a small segment; merging on every write would make one save
            # in five slow, so small segments are merged only once they pile up.
            if len(self._ix._segments()) >= MAX_SEGMENTS:
                writer.commit(mergetype=MERGE_SMALL)
            else:
                writer.commit(merge=False)
        except BaseException:
            writer.cancel()
            raise
        self.commit = head
        self._write_state()
        return "caught up"

    def _index_path(self, writer, path: str, commit: str | None) -> int:
        version = self.store.version_of(path, commit)
        if version is None:
            return 0
        try:
            entry = self.sheet.entry_at_version(slug_of(path), version)
        except Exception as exc:  # EntryError names the problem; anything else, too
            self.problems[path] = str(exc)
            return 0
        if entry.warnings:  # read, but with a value left out: still in search
            self.problems[path] = "; ".join(entry.warnings)
        if not entry.published:  # drafts and retired entries stay out of search
            return 0
        writer.add_document(**_document(entry, self.meaning))
        return 1

    def ensure_fresh(self) -> None:
        """Catch up if someone else (another process, a git push) moved the head;
        notice a deleted index folder. Never raises."""
        if self.error is not None:
            if time.monotonic() - self._failed_at >= self.retry_seconds:
                self._failed_at = time.monotonic()
                self._start_recovery()
            return
        if self._ix is None:
            self.open()
            return
        if not self._state_path().is_file():  # the folder was deleted under us
            self._trouble(f"{self._state_path()} is missing")
            return
        if self.store.head() != self.commit:
            try:
                with self.store.locked():
                    self._catch_up_locked(None)
            except Exception as exc:
                self._trouble(exc)

    # -- searching ----------------------------------------------------------------

    def _searcher(self):
        """The shared searcher (hold `_read_lock`), reopened when the index moved to
        another commit. (whoosh's own up_to_date() misses commits that only delete.)"""
        lengths, postings, docs = {}, {}, {}
        if self._shared is not None:
            if self._shared.commit == self.commit and self._shared.searcher.up_to_date():
                return self._shared.searcher
            # segments are immutable: keep what was worked out for those still there
            lengths, postings = self._shared.lengths, self._shared.postings
            docs = self._shared.docs
            self._drop_searcher()
        searcher = self._ix.searcher()
        live = {_segment_id(sub) for sub, _ in searcher.leaf_searchers()}
        kept = {key: value for key, value in postings.items() if key[0] in live}
        self._shared = _Shared(searcher, self.commit, lengths={
            key: value for key, value in lengths.items() if key[0] in live},
            postings=kept, posting_count=sum(len(ids) for ids, _ in kept.values()),
            docs={key: value for key, value in docs.items() if key[0] in live})
        return searcher

    def warm(self) -> None:
        """Do at start-up what the first search would: open the searcher, read the
        spelling words and field lengths, so the first agent does not wait for it."""
        if self.error is not None:
            return
        try:
            with self._read_lock:
                searcher = self._searcher()
                self._spelling_words(searcher.reader())
                for sub, _ in searcher.leaf_searchers():
                    for name in BOOSTS:
                        _field_lengths(sub, name, self._shared.lengths)
                    if self.meaning.available:
                        _vectors(sub, self._shared.lengths)
        except Exception as exc:
            self._trouble(exc)

    def _drop_searcher(self) -> None:
        if self._shared is not None:
            self._shared.searcher.close()
            self._shared = None

    def _synonym_list(self) -> _Synonyms:
        """The sheet's synonym list as search uses it, worked out again only when the
        file changed (looked at once per index version)."""
        cached = self._synonyms
        if cached.commit == self.commit and self.commit is not None:
            return cached
        version = self.store.version_of(SYNONYMS)
        if version == cached.version:
            self._synonyms = replace(cached, commit=self.commit)
            return self._synonyms
        listed = self.sheet.synonyms()
        groups = []
        for group in listed:
            phrases = tuple(dict.fromkeys(tuple(stems(p)) for p in group if stems(p)))
            if len(phrases) > 1:
                groups.append(phrases)
        by_stem: dict[str, list[int]] = {}
        for i, group in enumerate(groups):
            for stem in {w for phrase in group for w in phrase}:
                by_stem.setdefault(stem, []).append(i)
        words = frozenset(w for group in listed for phrase in group
                          for w in re.findall(r"[^\W_]+", phrase))
        self._synonyms = _Synonyms(self.commit, version, groups, by_stem, words)
        return self._synonyms

    def synonym_groups(self, among: Iterable[str] | None = None,
                       ) -> list[tuple[tuple[str, ...], ...]]:
        """The synonym list as groups of stemmed phrases; with `among`, only the groups
        using one of those stems (in the list's order)."""
        synonyms = self._synonym_list()
        if among is None:
            return synonyms.groups
        return [synonyms.groups[i]
                for i in sorted({i for w in among for i in synonyms.by_stem.get(w, ())})]

    def search(
        self, text: str, limit: int = 10, tag: str | None = None,
        category: str | None = None, typing: bool = False,
    ) -> Results:
        """Rank published entries for the customer's words. Never raises for a query."""
        self.ensure_fresh()
        text = (text or "")[:MAX_QUERY_CHARS]
        limit = max(1, min(int(limit or 10), 100))
        if self.error is None:
            try:
                self._lock_for_search()
                try:
                    return self._search(text, limit, tag, category, typing)
                finally:
                    self._read_lock.release()
            except Exception as exc:  # the files went away under the searcher, say
                self._trouble(exc)
        return self._scan(text, limit, tag, category)

    def _lock_for_search(self) -> None:
        """Take the searcher's lock, letting a save that started meanwhile in this
        process go first: searches queued on the lock had passed the gate before it
        (at most MAX_WAIT in all, then the search goes ahead)."""
        deadline = time.monotonic() + priority.MAX_WAIT
        while True:
            self._read_lock.acquire()
            if not priority.gate.holds_back() or time.monotonic() >= deadline:
                return
            self._read_lock.release()
            priority.gate.wait(max(0.0, deadline - time.monotonic()))

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

    def _search(self, text: str, limit: int, tag: str | None, category: str | None,
                typing: bool) -> Results:
        searcher = self._searcher()
        words = [t.text for t in _words(text)][:MAX_WORDS]
        corrected, corrections, prefix_word = self._correct(searcher, words, typing)
        filters = []  # only published entries are in the index at all
        if tag:
            filters.append(Q.Term("tags", tag.strip().lower()))
        if category:
            filters.append(Q.Term("category", category.strip()))
        query, query_stems = self._build_query(corrected, prefix_word, searcher.reader())
        did_you_mean = None
        if corrections:
            did_you_mean = " ".join(corrections.get(w, w) for w in words)
        if query is None:
            if not words and (tag or category):
                query = Q.Every()
            else:
                return Results(text, [], 0, did_you_mean, corrections, stems(" ".join(words)))
        vector = None
        if self.meaning.available and words and not isinstance(query, Q.Every):
            vector = self.meaning.embed([" ".join(corrected)])[0]
        typed = frozenset(stems(" ".join(w for w in corrected if w != prefix_word)))
        ranked, total, alike_only = _top_documents(
            searcher, query, Q.And(filters) if filters else None, limit, self._shared, vector,
            typed - _filler())
        out, sure = mark_confident([_doc(searcher, doc, self._shared).hit(score, query_stems)
                                    for doc, score in ranked],
                                   stems(" ".join(corrected)), self.synonym_groups)
        # found by likeness alone, no word of the customer's in it: a guess, shown
        # behind "More results", never in the list an agent takes as the answer
        out = [replace(h, confident=False) if doc in alike_only else h
               for h, (doc, _) in zip(out, ranked, strict=True)]
        sure = sure and ranked[0][0] not in alike_only
        return Results(text, out, total, did_you_mean, corrections, stems(" ".join(words)),
                       sure=sure)

    def matching_slugs(self, text: str) -> set[str]:
        """Every entry the query matches, ranked or not (for recall checks)."""
        if not self._healthy():
            return {h.slug for h in self._scan(text, 100, None, None).hits}
        with self._read_lock:
            searcher = self._searcher()
            words = [t.text for t in _words(text[:MAX_QUERY_CHARS])][:MAX_WORDS]
            corrected, _, prefix_word = self._correct(searcher, words, False)
            query, _ = self._build_query(corrected, prefix_word, searcher.reader())
            if query is None:
                return set()
            _, matched, _ = _scores(searcher, query, None, self._shared)
            return {searcher.stored_fields(int(d))["slug"] for d in np.flatnonzero(matched)}

    def _correct(self, searcher, words: list[str], typing: bool):
        """Replace words the sheet never uses by the nearest word it does."""
        synonym_words = self._synonym_list().words
        corrected, corrections, prefix_word = [], {}, None
        reader = searcher.reader()
        for i, word in enumerate(words):
            last = typing and i == len(words) - 1
            kind, best = self._shared.remember(("word", word, last), self._fate, reader, word,
                                               last, synonym_words)
            if kind == "prefix":
                prefix_word = word  # still being typed: match it as a prefix
            elif kind == "corrected":
                corrections[word] = best
            corrected.append(best)
        return corrected, corrections, prefix_word

    def _fate(self, reader, word: str, last: bool, synonym_words: frozenset[str]):
        """("kept" | "prefix" | "corrected", the word to search for)."""
        if (word in _STOP or word.isdigit() or len(word) < 3 or word in synonym_words
                or reader.doc_frequency("spell", word) > 0):
            return "kept", word
        if last and any(True for _ in reader.expand_prefix("spell", word)):
            return "prefix", word
        best = self._suggest(reader, word)
        return ("corrected", best) if best else ("kept", word)

    def _spelling_words(self, reader) -> dict[tuple[str, int], list[str]]:
        """The sheet's words by (first letter, length), built once per index version,
        so a correction compares a typo with a few dozen words, not the whole lexicon."""
        if self._shared.spelling is not None:
            return self._shared.spelling
        groups: dict[tuple[str, int], list[str]] = {}
        for raw in reader.lexicon("spell"):
            term = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            if term.isalpha():
                groups.setdefault((term[0], len(term)), []).append(term)
        self._shared.spelling = groups
        return groups

    def _suggest(self, reader, word: str) -> str | None:
        """The nearest word the sheet uses (Damerau-Levenshtein 1, or 2 for long
        words), sharing the first letter; ties go to the more common word."""
        maxdist = 1 if len(word) < 6 else 2
        groups = self._spelling_words(reader)
        best: tuple[int, int, str] | None = None
        for length in range(len(word) - maxdist, len(word) + maxdist + 1):
            for cand in groups.get((word[0], length), ()):
                dist = edit_distance(word, cand, maxdist)
                if 0 < dist <= maxdist:
                    rank = (dist, -reader.doc_frequency("spell", cand), cand)
                    if best is None or rank < best:
                        best = rank
        return best[2] if best else None

    def _build_query(self, words: list[str], prefix_word: str | None, reader=None):
        token_stems = stems(" ".join(w for w in words if w != prefix_word))
        concepts = []
        used: set[int] = set()
        for group in self.synonym_groups(token_stems):
            for phrase in group:
                n = len(phrase)
                for start in range(len(token_stems) - n + 1):
                    if tuple(token_stems[start:start + n]) == phrase:
                        used.update(range(start, start + n))
                        alts = [_phrase_query(phrase, 1.0)]
                        # a synonym counts where it says what the entry is about (the
                        # lead); in the body it is weak evidence and costs the most
                        alts += [_phrase_query(p, SYNONYM_WEIGHT, ("lead",))
                                 for p in group if p != phrase]
                        concepts.append(Q.Or(alts))
        all_stems = set(token_stems)
        for i, stem in enumerate(token_stems):
            if i not in used:
                concepts.append(_phrase_query((stem,), 1.0))
        if prefix_word:
            prefix_stem = prefix_word.lower()
            start = prefix_stem[:max(3, len(prefix_stem) - 1)]
            expansions = self._shared.remember(("prefix", start), self._prefix_terms, reader,
                                               start)
            if expansions:
                concepts.append(Q.Or([Q.Term("lead", t, boost=BOOSTS["lead"] * PREFIX_WEIGHT)
                                      for t in expansions]))
            all_stems.add(prefix_stem)
        for group in self.synonym_groups(all_stems):
            if any(set(p) <= all_stems for p in group):
                for p in group:
                    all_stems.update(p)
        if not concepts:
            # only little words ("the", "if", "for a"): the body drops them, but they
            # are still the entry's own words, so look them up where every word is kept
            plain = list(dict.fromkeys(t.text for t in _spell(" ".join(words))))
            if not plain:
                return None, all_stems
            all_stems.update(plain)
            concepts = [Q.Term("spell", w) for w in plain]
        if len(concepts) == 1:
            return concepts[0], all_stems
        return Q.Or(concepts), all_stems

    @staticmethod
    def _prefix_terms(reader, prefix: str) -> list[str]:
        """The most frequent lead words starting with what is being typed."""
        if reader is None:
            return []
        terms = []
        for raw in reader.expand_prefix("lead", prefix):
            term = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            terms.append((reader.doc_frequency("lead", term), term))
        terms.sort(reverse=True)
        return [t for _, t in terms[:MAX_PREFIX_TERMS]]

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
                    reader = self._searcher().reader()
                    return {
                        "tags": sorted(t.decode() if isinstance(t, bytes) else t
                                       for t in reader.field_terms("tags")),
                        "categories": sorted(c.decode() if isinstance(c, bytes) else c
                                             for c in reader.field_terms("category")),
                    }
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
                    reader = self._searcher().reader()
                    return sorted(o.decode() if isinstance(o, bytes) else o
                                  for o in reader.field_terms("owner"))
            except Exception as exc:
                self._trouble(exc)
        return []

    def category_counts(self) -> dict[str, int]:
        if self._healthy():
            try:
                with self._read_lock:
                    reader = self._searcher().reader()
                    return {c: reader.doc_frequency("category", c)
                            for c in self.facets()["categories"]}
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

    def close(self) -> None:
        with self._read_lock:
            self._drop_searcher()
        if self._ix is not None:
            self._ix.close()


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


def _leaves(query) -> Iterable:
    """The term and phrase queries inside a tree of ORs (whose own boosts are all 1)."""
    if isinstance(query, Q.Or):
        for sub in query.subqueries:
            yield from _leaves(sub)
    else:
        yield query


@dataclass(frozen=True)
class _Synonyms:
    """The synonym list as search uses it, for one version of the file."""

    commit: str | None  # the index version it was last looked at for
    version: str | None  # the file's blob id (None: no file)
    groups: list  # each group's phrases, stemmed
    by_stem: dict  # stem -> numbers of the groups using it
    words: frozenset  # every word of the list as written: never "corrected" as a typo


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


@dataclass
class _Shared:
    """The searcher all threads use, and what is worked out once per index version."""

    searcher: object
    commit: str | None
    spelling: dict | None = None
    lengths: dict = field(default_factory=dict)  # (segment id, field) -> length of each doc
    # (segment id, field, term) -> (document ids, frequencies) of long posting lists:
    # decoding them is most of a search's cost, and a segment never changes
    postings: dict = field(default_factory=dict)
    posting_count: int = 0
    # (segment id, document number in it) -> _Doc: what a result needs, read and taken
    # apart once; agents typing look up the same few hundred entries keystroke after
    # keystroke
    docs: dict = field(default_factory=dict)
    # query leaf -> (documents, scores) at this version of the index (see _leaf_scores)
    leaves: dict = field(default_factory=dict)
    leaf_count: int = 0
    # what a typed word became (kept, prefix, corrected) and a prefix's expansions
    words: dict = field(default_factory=dict)

    def remember(self, key, work: Callable, *args):
        """work(*args) for key, worked out once at this version of the index."""
        found = self.words.get(key)
        if found is None:
            if len(self.words) >= MAX_CACHED_WORDS:
                self.words.clear()
            found = self.words[key] = work(*args)
        return found


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


def _segment_id(sub) -> str:
    segment = sub.reader().segment()  # None for an index with no entries at all
    return segment.segment_id() if segment is not None else ""


def _field_lengths(sub, fieldname: str, cache: dict) -> np.ndarray:
    key = (_segment_id(sub), fieldname)
    found = cache.get(key)
    if found is None:
        reader = sub.reader()
        found = np.fromiter((reader.doc_field_length(d, fieldname, 1)
                             for d in range(reader.doc_count_all())), dtype=np.float64,
                            count=reader.doc_count_all())
        cache[key] = found
    return found


def _posting_blocks(matcher) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """(document ids, term frequencies) of a posting list, a block at a time.

    whoosh's on-disk matcher keeps each block of 128 postings as arrays; reading
    them whole is what lets a word found in most of 10,000 answers be scored in
    well under a millisecond. Any other matcher is walked posting by posting."""
    if all(hasattr(matcher, a) for a in ("_read_ids", "_read_weights", "_next_block")):
        while matcher.is_active():
            matcher._read_ids()
            matcher._read_weights()
            yield (np.asarray(matcher._ids, dtype=np.int32),
                   np.asarray(matcher._weights, dtype=np.float32))
            matcher._next_block()
        return
    ids, weights = [], []
    while matcher.is_active():
        ids.append(matcher.id())
        weights.append(matcher.weight())
        matcher.next()
    if ids:
        yield np.asarray(ids, dtype=np.int32), np.asarray(weights, dtype=np.float32)


def _postings(sub, fieldname: str, text: bytes, shared: _Shared) -> tuple[np.ndarray, np.ndarray]:
    """Document ids and frequencies of one term in one segment, deletions and all;
    long lists are kept decoded (up to MAX_CACHED_POSTINGS in all)."""
    key = (_segment_id(sub), fieldname, text)
    found = shared.postings.get(key)
    if found is not None:
        return found
    raw = sub.reader().postings(fieldname, text)
    blocks = list(_posting_blocks(getattr(raw, "child", raw)))  # child: unfiltered
    if not blocks:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
    found = (np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks]))
    if len(found[0]) >= CACHE_POSTINGS_FROM and (
            shared.posting_count + len(found[0]) <= MAX_CACHED_POSTINGS):
        shared.postings[key] = found
        shared.posting_count += len(found[0])
    return found


def _term_weights(sub, term: Q.Term, shared: _Shared) -> tuple[np.ndarray, np.ndarray]:
    """BM25F (whoosh's own formula and global statistics) of one term at boost 1 in
    each document of one segment that holds it, straight from the posting list, with
    field lengths read from an array. Deleted documents are masked out by the caller."""
    schema_field = sub.schema[term.fieldname]
    text = schema_field.to_bytes(term.text)
    reader = sub.reader()
    if (term.fieldname, text) not in reader:
        return _NONE
    top = sub.get_parent()
    weighting = top.weighting
    idf = top.idf(term.fieldname, text)
    avgfl = top.avg_field_length(term.fieldname) or 1
    k1, b = weighting.K1, weighting.B
    flen = _field_lengths(sub, term.fieldname, shared.lengths)
    ids, tf = _postings(sub, term.fieldname, text, shared)
    tf = tf.astype(np.float64)  # frequencies are stored small, summed in full precision
    return ids, idf * (k1 + 1) * tf / (tf + k1 * (1 - b) + k1 * b / avgfl * flen[ids])


_NONE = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))


def _leaf_scores(searcher, leaf, shared: _Shared) -> tuple[np.ndarray, np.ndarray]:
    """The documents (index-wide numbers) one leaf of the query matches and its score
    in each: a term's at boost 1, a phrase's as whoosh scores it. Kept for as long as
    the index stays at this version (the statistics change with every save), since
    agents typing ask for the same few hundred words again and again."""
    if isinstance(leaf, Q.Term):
        key = ("term", leaf.fieldname, leaf.text)
    else:
        key = ("phrase", leaf.fieldname, tuple(leaf.words), leaf.boost)
    found = shared.leaves.get(key)
    if found is not None:
        return found
    parts = []
    for sub, offset in searcher.leaf_searchers():
        if isinstance(leaf, Q.Term):
            ids, weights = _term_weights(sub, leaf, shared)
        else:  # phrases match few documents: whoosh scores them
            matcher, found_ids, found_scores = leaf.matcher(sub, sub.context()), [], []
            while matcher.is_active():
                found_ids.append(matcher.id())
                found_scores.append(matcher.score())
                matcher.next()
            ids = np.asarray(found_ids, dtype=np.int64)
            weights = np.asarray(found_scores, dtype=np.float64)
        if len(ids):
            parts.append((offset + ids.astype(np.int64), weights))
    found = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])) \
        if parts else _NONE
    if shared.leaf_count + len(found[0]) <= MAX_CACHED_LEAF_SCORES:
        shared.leaves[key] = found
        shared.leaf_count += len(found[0])
    return found


def _top_documents(searcher, query, filter_query, limit: int, shared: _Shared,
                   vector: np.ndarray | None = None,
                   words: frozenset[str] = frozenset()) -> tuple[list, int, set[int]]:
    """The `limit` best (docnum, score) pairs, how many documents matched, and which
    of them only the likeness in meaning brought in.

    The query is a flat OR of scored terms and phrases, so a document's score is
    the sum of its leaves' scores. Adding them up leaf by leaf, a block of
    postings at a time into one array, gives whoosh's BM25F scores at a fraction
    of the cost of its OR matcher, and ranks every match: no word is too common
    to be looked up in the answers, so a query whose words are in an entry's
    text always finds that entry.
    """
    if isinstance(query, Q.Every):  # no words, only a tag or category: list them all
        docs = sorted(searcher.docs_for_query(filter_query or query))
        return [(doc, 1.0) for doc in docs[:limit]], len(docs), set()
    # which entries hold every typed word matters only against a likeness
    scores, matched, full = _scores(searcher, query, filter_query, shared,
                                    words if vector is not None else frozenset())
    if vector is not None:
        by_words = matched.copy()
        similar = _similarities(searcher, vector, shared)
        if similar is not None:
            eligible = _eligible(searcher, filter_query)
            # Any two texts are somewhat alike to a bag of token vectors: what counts is
            # how much more alike an entry is than the sheet's typical (median) entry; the
            # median, not the mean, so that on a small sheet the entry that is alike does
            # not raise the bar it is measured against.
            if eligible.any():
                similar = np.maximum(similar - float(np.median(similar[eligible])), 0.0)
            # the entries most alike in meaning join the words' matches
            pool = np.flatnonzero(eligible & (similar >= MEANING_FLOOR))
            if len(pool) > MEANING_CANDIDATES:
                pool = pool[np.argpartition(-similar[pool], MEANING_CANDIDATES - 1)
                            [:MEANING_CANDIDATES]]
            matched[pool] = True
            scores = scores + MEANING_WEIGHT * similar
            # A likeness never ranks above an entry holding every word the customer
            # typed (an order code, a product name): meaning adds, it does not overrule.
            if full is not None and full.any():
                floor = float(scores[full].min())
                alike_only = matched & ~by_words
                scores[alike_only] = np.minimum(scores[alike_only], np.nextafter(floor, 0))
            ranked, total = _ranked(scores, matched, limit)
            return ranked, total, {doc for doc, _ in ranked if not by_words[doc]}
    return (*_ranked(scores, matched, limit), set())


def _eligible(searcher, filter_query) -> np.ndarray:
    """Documents that are live (not deleted) and pass the tag/category filter."""
    size = searcher.doc_count_all()
    live = np.ones(size, dtype=bool)
    for sub, offset in searcher.leaf_searchers():
        deleted = sub.reader().deleted_docs_set
        if deleted:
            live[offset + np.fromiter(deleted, dtype=np.int64, count=len(deleted))] = False
    if filter_query is not None:
        allowed = np.zeros(size, dtype=bool)
        docs = list(searcher.docs_for_query(filter_query))
        allowed[np.asarray(docs, dtype=np.int64)] = True
        live &= allowed
    return live


def _similarities(searcher, vector: np.ndarray, shared: _Shared) -> np.ndarray | None:
    """Cosine similarity of every document's vector with the query's (documents
    indexed without the model score 0)."""
    out = np.zeros(searcher.doc_count_all(), dtype=np.float64)
    for sub, offset in searcher.leaf_searchers():
        matrix = _vectors(sub, shared.lengths)  # VECTORS_PER_ENTRY rows per document
        if len(matrix):
            # einsum, not `matrix @ vector`: the BLAS matrix-vector product took 8-20 ms
            # for 20,000 x 256 here (and starts threads), einsum's own loop 1 ms
            alike = np.einsum("ij,j->i", matrix, vector.astype(np.float32))
            alike = alike.reshape(-1, kb_meaning.VECTORS_PER_ENTRY)
            out[offset:offset + len(alike)] = alike.max(axis=1)
    return out


def _vectors(sub, cache: dict) -> np.ndarray:
    """The segment's entry vectors as one float32 matrix, VECTORS_PER_ENTRY rows per
    document (a segment never changes).
    Stored as float16 to halve the index; widened once here, because NumPy has no fast
    float16 product (10,000 x 256 took 18 ms in float16, 0.3 ms in float32)."""
    key = (_segment_id(sub), "meaning")
    found = cache.get(key)
    if found is None:
        reader = sub.reader()
        width = _VECTOR_BYTES
        count = reader.doc_count_all()
        if not reader.has_column("meaning"):
            raw = bytes(count * width)
        else:
            column = reader.column_reader("meaning", translate=False)
            try:  # one read of the whole column; item by item if its layout differs
                stored = column._dbfile.get(column._basepos, column._count * width)
                raw = stored + bytes((count - column._count) * width)
            except AttributeError:
                raw = b"".join(column[d] for d in range(count))
        found = np.frombuffer(raw, dtype=np.float16).reshape(
            count * kb_meaning.VECTORS_PER_ENTRY, kb_meaning.DIM)
        found = found.astype(np.float32)
        cache[key] = found
    return found


def _scores(searcher, query, filter_query, shared: _Shared, words: frozenset[str] = frozenset(),
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Each document's score for the query, which documents matched at all, and
    which hold every one of `words` (the typed stems; None when there are none)."""
    size = searcher.doc_count_all()
    scores = np.zeros(size, dtype=np.float64)
    matched = np.zeros(size, dtype=bool)
    per_word = {w: np.zeros(size, dtype=bool) for w in words}
    for leaf in _leaves(query):
        ids, weights = _leaf_scores(searcher, leaf, shared)
        scores[ids] += leaf.boost * weights if isinstance(leaf, Q.Term) else weights
        matched[ids] = True
        has = per_word.get(leaf.text) if isinstance(leaf, Q.Term) and (
            leaf.fieldname in BOOSTS) else None
        if has is not None:
            has[ids] = True
    for sub, offset in searcher.leaf_searchers():
        deleted = getattr(sub.reader(), "deleted_docs_set", None)  # none in an empty index
        if deleted:
            matched[offset + np.fromiter(deleted, dtype=np.int64, count=len(deleted))] = False
    if filter_query is not None and matched.any():
        allowed = np.zeros(size, dtype=bool)
        docs = list(searcher.docs_for_query(filter_query))
        allowed[np.asarray(docs, dtype=np.int64)] = True
        matched &= allowed
    full = None
    if per_word:
        full = matched.copy()
        for has in per_word.values():
            full &= has
    return scores, matched, full


def _ranked(scores: np.ndarray, matched: np.ndarray, limit: int) -> tuple[list, int]:
    """The best `limit` matched documents, ties to the lower document number."""
    docs = np.flatnonzero(matched)
    if not len(docs):
        return [], 0
    if len(docs) > limit:
        keep = np.argpartition(-scores[docs], limit - 1)[:limit]
        cut = scores[docs[keep]].min()
        docs = docs[scores[docs] >= cut]  # every doc tied at the cut, for a stable order
    order = np.lexsort((docs, -scores[docs]))[:limit]
    return [(int(docs[i]), float(scores[docs[i]])) for i in order], int(matched.sum())


def _phrase_query(phrase: tuple[str, ...], weight: float, fields: tuple[str, ...] = ()):
    boosts = {f: b for f, b in BOOSTS.items() if not fields or f in fields}
    if len(phrase) == 1:
        parts = [Q.Term(f, phrase[0], boost=b * weight) for f, b in boosts.items()]
    else:
        parts = [Q.Phrase(f, list(phrase), boost=b * weight) for f, b in boosts.items()]
    return parts[0] if len(parts) == 1 else Q.Or(parts)


def _document(entry: Entry, meaning: kb_meaning.Meaning | None = None) -> dict:
    body = entry.answer + "\n" + entry.phone
    vector = {}
    if meaning is not None and meaning.available:
        vectors = meaning.entry_vectors(entry.title, entry.phrasings, entry.answer)
        vector = {"meaning": vectors.astype(np.float16).tobytes()}
    doc = {
        **vector,
        "slug": entry.slug,
        "title": entry.title,
        "phrasings": "\n".join(entry.phrasings),
        "lead": "\n".join([entry.title, *entry.phrasings, " ".join(entry.tags), entry.category]),
        "body": body,
        "spell": " ".join([entry.title, *entry.phrasings, *entry.tags, entry.category, body]),
        "tags": ",".join(entry.tags),
        "category": entry.category,
        "status": entry.status,
        "meta": {"last_reviewed": entry.last_reviewed.isoformat() if entry.last_reviewed else None,
                 "every": entry.review_every_days},
    }
    due = review_due(entry)
    if due is not None:
        doc["due"] = due.isoformat()
    if entry.owner:
        doc["owner"] = entry.owner
    return doc


def _key(word: str) -> str:
    """What a lower-case word of the text is searched by: its stem, or the word as
    typed for the little words the stemmer's analyzer leaves alone."""
    if len(word) < 2 or word in _STOP:
        return word
    return _stem_word(word)


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
