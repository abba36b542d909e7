"""Reading a query: the customer's words as stems, the team's synonym groups
added as alternatives, the last word taken as a prefix while it is typed."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from whoosh import query as Q

from kb.search import shorthand
from kb.search.analysis import _spell, stems
from kb.search.scoring import BOOSTS, _Shared
from kb.sheet import parse_shorthand

MAX_PREFIX_TERMS = 20
SYNONYM_WEIGHT = 0.8
SHORTHAND_WEIGHT = 1.0  # "dd" typed means "direct debit" wherever it is written
PREFIX_WEIGHT = 0.6


@dataclass(frozen=True)
class _Synonyms:
    """The synonym list as search uses it, for one version of the file."""

    commit: str | None  # the index version it was last looked at for
    version: str | None  # the file's blob id (None: no file)
    groups: list  # each group's phrases, stemmed
    by_stem: dict  # stem -> numbers of the groups using it
    # every word of the list as written and every shorthand trainers added: never
    # "corrected" as a typo
    words: frozenset
    # shorthand.txt: what trainers added (short -> phrases) and dropped
    added: dict = field(default_factory=dict)
    dropped: frozenset = frozenset()


def read_synonyms(listed: list[list[str]], commit: str | None, version,
                  shorthand_text: str = "") -> _Synonyms:
    """The synonym list (groups of phrases as the file writes them), stemmed, and
    the trainers' shorthand lines."""
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
    added, dropped, _ = parse_shorthand(shorthand_text)
    return _Synonyms(commit, version, groups, by_stem, words | frozenset(added), added,
                     frozenset(dropped))


def shorthand_meanings(reader, synonyms: _Synonyms, word: str) -> list[str]:
    """What a typed word stands for: a trainer's meaning, or none if they dropped it,
    or what the sheet's initials say."""
    if word in synonyms.added:
        return synonyms.added[word]
    if word in synonyms.dropped or reader is None:
        return []
    return shorthand.meanings(reader, word)


def groups_among(synonyms: _Synonyms, among: Iterable[str] | None = None,
                 ) -> list[tuple[tuple[str, ...], ...]]:
    """The groups of stemmed phrases; with `among`, only the groups using one of
    those stems (in the list's order)."""
    if among is None:
        return synonyms.groups
    return [synonyms.groups[i]
            for i in sorted({i for w in among for i in synonyms.by_stem.get(w, ())})]


def build_query(words: list[str], prefix_word: str | None, reader, shared: _Shared | None,
                synonyms: _Synonyms):
    """The query for the (corrected) words, and every stem it searches for
    (synonyms and shorthand included), for highlighting."""
    token_stems = stems(" ".join(w for w in words if w != prefix_word))
    expanded: dict[str, list[tuple[str, ...]]] = {}
    for word in words:
        if word == prefix_word:
            continue
        if shared is not None:
            phrases = shared.remember(("short", word), shorthand_meanings, reader, synonyms,
                                      word)
        else:
            phrases = shorthand_meanings(reader, synonyms, word)
        key = stems(word)
        if phrases and len(key) == 1:
            expanded[key[0]] = [tuple(stems(p)) for p in phrases if stems(p)]
    concepts = []
    used: set[int] = set()
    for group in groups_among(synonyms, token_stems):
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
        if i in used:
            continue
        alts = [_phrase_query((stem,), 1.0)]
        for phrase in expanded.get(stem, ()):
            alts.append(_phrase_query(phrase, SHORTHAND_WEIGHT))
            all_stems.update(phrase)
        concepts.append(alts[0] if len(alts) == 1 else Q.Or(alts))
    if prefix_word:
        prefix_stem = prefix_word.lower()
        start = prefix_stem[:max(3, len(prefix_stem) - 1)]
        if shared is not None:
            expansions = shared.remember(("prefix", start), _prefix_terms, reader, start)
        else:
            expansions = _prefix_terms(reader, start)
        if expansions:
            concepts.append(Q.Or([Q.Term("lead", t, boost=BOOSTS["lead"] * PREFIX_WEIGHT)
                                  for t in expansions]))
        all_stems.add(prefix_stem)
    for group in groups_among(synonyms, all_stems):
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


def _phrase_query(phrase: tuple[str, ...], weight: float, fields: tuple[str, ...] = ()):
    boosts = {f: b for f, b in BOOSTS.items() if not fields or f in fields}
    if len(phrase) == 1:
        parts = [Q.Term(f, phrase[0], boost=b * weight) for f, b in boosts.items()]
    else:
        parts = [Q.Phrase(f, list(phrase), boost=b * weight) for f, b in boosts.items()]
    return parts[0] if len(parts) == 1 else Q.Or(parts)
