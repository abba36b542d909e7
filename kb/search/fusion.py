"""The meaning layer's part in the rank: each entry's likeness to the query (the
nearer of its two vectors), centred on the sheet's median entry and added to the
words' BM25F; the entries most alike join the words' matches."""

from __future__ import annotations

import numpy as np
from whoosh import query as Q

from kb import meaning as kb_meaning
from kb.search.analysis import _VECTOR_BYTES
from kb.search.scoring import _ranked, _scores, _segment_id, _Shared

# The final rank is BM25F + MEANING_WEIGHT x how much more alike (cosine similarity)
# an entry is to the query than the sheet's median entry (tuned on the sets in
# tests/relevance_*.tsv, see README). An entry no word matched is ranked only if it
# is among the MEANING_CANDIDATES most alike and MEANING_FLOOR above the average.
# An entry has two vectors (kb.meaning.entry_vectors); its likeness is the nearer one.
MEANING_WEIGHT = 200.0
MEANING_CANDIDATES = 10
MEANING_FLOOR = 0.1


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
        deleted = getattr(sub.reader(), "deleted_docs_set", None)  # none in an empty index
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
