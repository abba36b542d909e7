"""How text becomes index terms: stemming, the index's fields, and what an
entry is made into when it is indexed."""

from __future__ import annotations

import functools
import re

import numpy as np
from whoosh import columns as whoosh_columns
from whoosh.analysis import (
    STOP_WORDS,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
)
from whoosh.fields import COLUMN, ID, KEYWORD, STORED, TEXT, Schema
from whoosh.lang.porter import stem as porter_stem

from kb import meaning as kb_meaning
from kb.entry import Entry, review_due
from kb.search.shorthand import entry_terms

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
        short=KEYWORD(commas=True),  # initials of the entry's phrases (search.shorthand)
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
        "short": ",".join(entry_terms(entry.title, entry.phrasings, entry.tags,
                                      entry.category)),
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
