"""The search index: opening it, catching it up with the content, rebuilding it,
and answering a search.

The index is derived data. It records the content commit it reflects in a
small state file, catches up from that commit with a tree diff, and is rebuilt
from scratch only when it is missing, from another schema, or unreadable.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
from whoosh import index as whoosh_index
from whoosh import query as Q
from whoosh.writing import MERGE_SMALL

from kb import meaning as kb_meaning
from kb import priority
from kb.search import shorthand, spelling
from kb.search.analysis import _document, _schema, _words, stems
from kb.search.fusion import _top_documents, _vectors
from kb.search.listing import Listing, _Row
from kb.search.query import (
    _Synonyms,
    build_query,
    groups_among,
    read_synonyms,
    shorthand_meanings,
)
from kb.search.results import Results, _filler, mark_confident
from kb.search.scoring import BOOSTS, _field_lengths, _scores, _segment_id, _Shared
from kb.search.snippets import _doc
from kb.sheet import SHORTHAND, SYNONYMS, Problem, Sheet, in_a_folder
from kb.store import is_entry_path, slug_of

log = logging.getLogger("kb")
RETRY_SECONDS = 30.0  # a failed background rebuild is tried again after this long
# 7: plain segment files; 8: doubled consonants; 9: meaning vectors; 10: owner, due date;
# 11: two meaning vectors per entry; 12: initials of phrases (shorthand)
SCHEMA_VERSION = 12
STATE_FILE = "kb-state.json"
MAX_QUERY_CHARS = 200
MAX_WORDS = 12
MAX_SEGMENTS = 12
PARALLEL_FROM = 2000  # entries; below this a second indexing process costs more than it saves


class SearchIndex(Listing):
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
            for path in filter(in_a_folder, self.store.paths(head)):
                self._note_misplaced(path, head)
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
                else:
                    self._note_misplaced(path, head)
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

    def _note_misplaced(self, path: str, commit: str | None) -> None:
        """Name an entry file left in a folder, where it is not read."""
        if not in_a_folder(path):
            return
        self.problems.pop(path, None)
        problem = self.sheet.misplaced(path, commit)
        if problem is not None:
            self.problems[path] = problem.message

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
                spelling.spelling_words(searcher.reader(), self._shared)
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
        version = (self.store.version_of(SYNONYMS), self.store.version_of(SHORTHAND))
        if version == cached.version:
            self._synonyms = replace(cached, commit=self.commit)
            return self._synonyms
        self._synonyms = read_synonyms(self.sheet.synonyms(), self.commit, version,
                                       self.sheet.shorthand_text())
        return self._synonyms

    def synonym_groups(self, among: Iterable[str] | None = None,
                       ) -> list[tuple[tuple[str, ...], ...]]:
        """The synonym list as groups of stemmed phrases; with `among`, only the groups
        using one of those stems (in the list's order)."""
        return groups_among(self._synonym_list(), among)

    def search(
        self, text: str, limit: int = 10, tag: str | None = None,
        category: str | None = None, typing: bool = False, as_typed: bool = False,
    ) -> Results:
        """Rank published entries for the customer's words. Never raises for a query.
        `as_typed`: no word is corrected (the agent went back to their own words)."""
        self.ensure_fresh()
        text = (text or "")[:MAX_QUERY_CHARS]
        limit = max(1, min(int(limit or 10), 100))
        if self.error is None:
            try:
                self._lock_for_search()
                try:
                    return self._search(text, limit, tag, category, typing, as_typed)
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

    def _search(self, text: str, limit: int, tag: str | None, category: str | None,
                typing: bool, as_typed: bool = False) -> Results:
        searcher = self._searcher()
        words = [t.text for t in _words(text)][:MAX_WORDS]
        keep = set(words) if as_typed else _capitals(text)
        corrected, corrections, prefix_word = self._correct(searcher, words, typing, keep)
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

    def derived_shorthand(self) -> list[shorthand.Shorthand]:
        """The shorthand worked out from the sheet as the index holds it now (empty
        while the index is unwell)."""
        if not self._healthy():
            return []
        try:
            with self._read_lock:
                return shorthand.derived(self._searcher().reader())
        except Exception as exc:
            self._trouble(exc)
            return []

    def _correct(self, searcher, words: list[str], typing: bool,
                 keep: Iterable[str] = ()):
        """Replace words that are no word by the nearest word the sheet uses; the
        words of `keep` stay as typed."""
        synonyms = self._synonym_list()
        return spelling.correct(words, typing, searcher.reader(), self._shared,
                                synonyms.words, frozenset(keep),
                                lambda reader, word: bool(
                                    shorthand_meanings(reader, synonyms, word)))

    def _build_query(self, words: list[str], prefix_word: str | None, reader=None):
        return build_query(words, prefix_word, reader, self._shared, self._synonym_list())

    def close(self) -> None:
        with self._read_lock:
            self._drop_searcher()
        if self._ix is not None:
            self._ix.close()


def _capitals(text: str) -> set[str]:
    """Words typed in capitals ("AHL", "IDV"): shorthand, whatever it is close to."""
    return {w.lower() for w in re.findall(r"[^\W_]+", text) if len(w) >= 2 and w.isupper()}
