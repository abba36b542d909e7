"""BM25F scores of a query's words, straight from whoosh's posting lists.

A query is a flat OR of scored terms and phrases, so a document's score is the
sum of its leaves' scores; adding them up leaf by leaf, a block of postings at a
time, gives whoosh's own BM25F scores at a fraction of its OR matcher's cost.
What is worked out once per index version (field lengths, long posting lists,
leaf scores) is kept in `_Shared`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from whoosh import query as Q

MAX_CACHED_WORDS = 20_000
CACHE_POSTINGS_FROM = 256  # a posting list this long is kept decoded in memory ...
MAX_CACHED_POSTINGS = 2_000_000  # ... up to this many postings in all (about 16 MB)
MAX_CACHED_LEAF_SCORES = 500_000  # scores of query words kept per index version (6 MB)

# How much a match counts, by field: the customer's words and the title first.
# "lead" holds the title, the customer phrasings, tags and category: short text
# that says what the entry is about. Two fields, not four, halves the work per
# query word, which is what keeps a 10,000-entry sheet fast in pure Python.
BOOSTS = {"lead": 3.0, "body": 1.0}


def _leaves(query) -> Iterable:
    """The term and phrase queries inside a tree of ORs (whose own boosts are all 1)."""
    if isinstance(query, Q.Or):
        for sub in query.subqueries:
            yield from _leaves(sub)
    else:
        yield query


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

