"""Spelling: which typed words are typos, and what they become.

A word of the language (see `language`) is never corrected, however close it is to
a word of the sheet: "waited" stays "waited", "cant" stays "cant". Only a token that
is no word at all, and not the sheet's own word, synonym or shorthand, is matched to
the nearest word the sheet uses ("powr" -> "power"); only then does the page say
"Showing results for ...".
"""

from __future__ import annotations

from collections.abc import Callable

from whoosh.support.levenshtein import distance as edit_distance

from kb.search.analysis import _STOP, _stem_word
from kb.search.language import common, is_word
from kb.search.scoring import _Shared


def correct(words: list[str], typing: bool, reader, shared: _Shared,
            known: frozenset[str], keep: frozenset[str],
            is_shorthand: Callable[[object, str], bool],
            ) -> tuple[list[str], dict[str, str], str | None]:
    """The words to search for, the corrections made ({typed: searched}), and the
    last word when it is still being typed (searched as a prefix). `known`: the
    words of the synonym list and the trainers' shorthand (kept per file version);
    `keep`: this query's words to leave as typed; neither is ever corrected.
    `is_shorthand(reader, word)`: whether the sheet's initials give it a meaning."""
    corrected, corrections, prefix_word = [], {}, None
    for i, word in enumerate(words):
        last = typing and i == len(words) - 1
        if word in known or word in keep:  # not kept with the index version: per query
            kind, best = "kept", word
        else:
            kind, best = shared.remember(("word", word, last), _fate, reader, shared, word,
                                         last, is_shorthand)
        if kind == "prefix":
            prefix_word = word  # still being typed: match it as a prefix
        elif kind == "corrected":
            corrections[word] = best
        corrected.append(best)
    return corrected, corrections, prefix_word


def _fate(reader, shared: _Shared, word: str, last: bool, is_shorthand):
    """("kept" | "prefix" | "corrected", the word to search for)."""
    if (word in _STOP or not word.isalpha() or len(word) < 3
            or reader.doc_frequency("spell", word) > 0):
        return "kept", word
    if last and any(True for _ in reader.expand_prefix("spell", word)):
        return "prefix", word
    if is_word(word) or _sheet_has_stem(reader, word) or is_shorthand(reader, word):
        return "kept", word  # a real word, a form of one the sheet uses, or shorthand
    if _clipped_compound(reader, word):
        return "kept", word  # "nonref": the sheet's "non" and the start of "refundable"
    best = _suggest(reader, shared, word)
    if best and not any(v in word for v in "aeiouy") and _consonants(best) != word:
        return "kept", word  # "pmt", "svt": an abbreviation; "smrt" is "smart" less a vowel
    return ("corrected", best) if best else ("kept", word)


def _clipped_compound(reader, word: str) -> bool:
    """Whether `word` is a word of the sheet followed by the start of another one, as
    agents clip and join words ("nonref", "prepay")."""
    for cut in range(3, len(word) - 2):
        head, tail = word[:cut], word[cut:]
        if reader.doc_frequency("spell", head) > 0 and any(
                True for _ in reader.expand_prefix("spell", tail)):
            return True
    return False


def _consonants(word: str) -> str:
    return "".join(c for c in word if c not in "aeiou")


def _sheet_has_stem(reader, word: str) -> bool:
    stem = _stem_word(word)
    return any(reader.doc_frequency(name, stem) > 0 for name in ("lead", "body"))


def spelling_words(reader, shared: _Shared) -> dict[tuple[str, int], list[str]]:
    """The sheet's words by (first letter, length), built once per index version,
    so a correction compares a typo with a few dozen words, not the whole lexicon."""
    if shared.spelling is not None:
        return shared.spelling
    groups: dict[tuple[str, int], list[str]] = {}
    for raw in reader.lexicon("spell"):
        term = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        if term.isalpha():
            groups.setdefault((term[0], len(term)), []).append(term)
    shared.spelling = groups
    return groups


def _suggest(reader, shared: _Shared, word: str) -> str | None:
    """The nearest word the sheet uses (Damerau-Levenshtein 1, or 2 for long
    words), sharing the first letter; ties go to the more common word. Never one of
    the language's most used little words ("all", "none"): what is typed is then more
    likely shorthand, and a typo of a little word would change nothing anyway."""
    maxdist = 1 if len(word) < 6 else 2
    groups = spelling_words(reader, shared)
    best: tuple[int, int, str] | None = None
    for length in range(len(word) - maxdist, len(word) + maxdist + 1):
        for cand in groups.get((word[0], length), ()):
            if cand in _STOP or (len(cand) <= 4 and cand in common()):
                continue  # "ahl" is not "all": a typo of a little word changes nothing
            dist = edit_distance(word, cand, maxdist)
            if 0 < dist <= maxdist:
                rank = (dist, -reader.doc_frequency("spell", cand), cand)
                if best is None or rank < best:
                    best = rank
    return best[2] if best else None
