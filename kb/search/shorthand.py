"""The team's shorthand: initials of the sheet's own phrases ("Direct Debit" -> dd,
"Priority Services Register" -> psr, "Economy 7" -> e7), worked out from titles,
phrasings, tags and categories, plus what trainers add or drop in
`_sheet/shorthand.txt`. A query word that is a shorthand also searches for what it
stands for, at full weight."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from kb.search.language import common, most_used
from kb.sheet import parse_shorthand

# Words a phrase's initials may skip ("Pay As You Go" is payg, "Change of Supplier"
# is cos or cs): the little words written in lower case inside a name.
_JOINING = frozenset("a an and as at by for in of on or the to with you your my".split())
_WORD = re.compile(r"[A-Za-z]+|\d+")
_SEGMENT = re.compile(r"[^,;:.!?()\[\]/\n\u2013\u2014]+")
MIN_LEN, MAX_LEN = 2, 5
MAX_SPAN = 5  # words in a tag or category read as a name
MAX_MEANINGS = 3
# Initials of a label or of recurring title words that spell one of this many of the
# language's most used words ("bill", "card") are not shorthand: the agent means the word.
COMMON_LABELS = 5_000


@dataclass(frozen=True)
class Shorthand:
    short: str  # as typed, lower case
    phrase: str  # what it stands for, lower case
    added: bool = False  # written by a trainer in shorthand.txt
    dropped: bool = False  # worked out, but dropped (or replaced) by a trainer


def _initials(words: list[str], every_word: bool = True) -> set[str]:
    """Initials of a phrase: every word's first letter (a number whole), and the same
    skipping the joining words (only that with `every_word` False)."""
    def first(w: str) -> str:
        return w if w.isdigit() else w[0]
    out = {"".join(first(w) for w in words)} if every_word else set()
    content = [w for w in words if w.lower() not in _JOINING]
    if len(content) >= 2:
        out.add("".join(first(w) for w in content))
    return {s.lower() for s in out if MIN_LEN <= len(s) <= MAX_LEN}


def _capitalised(word: str) -> bool:
    return (word[0].isupper() and len(word) > 1) or word.isdigit()  # not "I", not "B"


def _names(text: str) -> Iterable[list[str]]:
    """Names written in capitals inside `text` ("Priority Services Register",
    "Economy 7", "Pay As You Go"): each longest run of capitalised words (joining
    words allowed inside), and the same run less a first word that only starts the
    sentence. A text written all in capitals or Title Case names nothing in particular."""
    for segment in _SEGMENT.findall(text):
        words = _WORD.findall(segment)
        if words and sum(1 for w in words if _capitalised(w)) >= max(3, 0.75 * len(words)):
            continue
        run: list[str] = []
        for i, word in enumerate([*words, ""]):
            if word and (_capitalised(word) or (run and word.lower() in _JOINING)):
                run.append(word)
                continue
            while run and run[-1].lower() in _JOINING:
                run.pop()
            start = i - len(run)
            if start == 0 and len(run) > 2:
                yield run[1:]
            if len(run) >= 2:
                yield run
            run = []


def _spans(text: str) -> Iterable[list[str]]:
    """Runs of two or three words inside one part of `text` (between punctuation)
    that start and end with a word that is not a joining word."""
    for segment in _SEGMENT.findall(text):
        words = _WORD.findall(segment)
        for i in range(len(words)):
            for j in range(i + 2, min(len(words), i + 3) + 1):
                span = words[i:j]
                if span[0].lower() not in _JOINING and span[-1].lower() not in _JOINING:
                    yield span


def entry_terms(title: str, phrasings: Iterable[str], tags: Iterable[str],
                category: str) -> list[str]:
    """What one entry adds to the index's `short` field: "short|phrase|kind" for the
    initials of each name written in capitals in its title or phrasings (kind n), of
    each tag or category of several words (kind l), and of each run of two or three
    words of its title (kind s: counted only once it recurs in several entries)."""
    found: dict[str, None] = {}

    def note(span: list[str], kind: str) -> None:
        phrase = " ".join(w.lower() for w in span)
        # a name keeps its little words ("Pay As You Go": payg); a label or words in a
        # title skip them ("orders and delivery": od, not oad)
        for short in _initials(span, every_word=kind == "n"):
            found[f"{short}|{phrase}|{kind}"] = None

    for text in (title, *phrasings):
        for span in _names(text):
            note(span, "n")
    for label in (*tags, category):
        words = _WORD.findall(label or "")
        if 2 <= len(words) <= MAX_SPAN:
            note(words, "l")
    very_common = common()
    for span in _spans(title):
        if span[0].lower() not in very_common and span[-1].lower() not in very_common:
            note(span, "s")  # "did not", "train was": words, not a name
    return list(found)


def _read_term(raw) -> tuple[str, str, str] | None:
    term = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    parts = term.split("|")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def _counted(short: str, kind: str, entries: int) -> int:
    """How strongly the sheet says `short` stands for a phrase (0: not at all). A
    name in capitals counts from one entry, a label or recurring words from two."""
    if short in common() or (kind != "n" and short in most_used(COMMON_LABELS)):
        return 0  # initials spelling "no", "so", "card": the agent means the word
    if kind == "s" and entries < 2:
        return 0
    return entries + (100 if kind == "n" else 10 if kind == "l" else 0)


def meanings(reader, word: str) -> list[str]:
    """The phrases a typed word stands for, worked out from the sheet, strongest first
    (at most MAX_MEANINGS); none when the sheet uses the word itself."""
    if not MIN_LEN <= len(word) <= MAX_LEN or reader.doc_frequency("spell", word) > 0:
        return []
    best: dict[str, int] = {}
    for raw in reader.expand_prefix("short", word + "|"):
        parsed = _read_term(raw)
        if parsed is None or parsed[0] != word:
            continue
        term = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        strength = _counted(word, parsed[2], reader.doc_frequency("short", term))
        if strength:
            best[parsed[1]] = max(best.get(parsed[1], 0), strength)
    return sorted(best, key=lambda p: (-best[p], p))[:MAX_MEANINGS]


def derived(reader) -> list[Shorthand]:
    """Every shorthand worked out from the sheet (for the trainers' list)."""
    by_short: dict[str, dict[str, int]] = {}
    for raw in reader.lexicon("short"):
        parsed = _read_term(raw)
        if parsed is None:
            continue
        short, phrase, kind = parsed
        term = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        strength = _counted(short, kind, reader.doc_frequency("short", term))
        if strength and reader.doc_frequency("spell", short) == 0:
            seen = by_short.setdefault(short, {})
            seen[phrase] = max(seen.get(phrase, 0), strength)
    out = []
    for short, phrases in sorted(by_short.items()):
        ranked = sorted(phrases, key=lambda p: (-phrases[p], p))[:MAX_MEANINGS]
        out += [Shorthand(short, phrase) for phrase in ranked]
    return out


def listing(derived: list[Shorthand], text: str) -> list[Shorthand]:
    """Every shorthand for the trainers' list: what they added in `text` (the file
    shorthand.txt), and what kb worked out, marked dropped where they dropped it or
    gave that shorthand a meaning of their own."""
    added, dropped, _ = parse_shorthand(text)
    out = [Shorthand(short, phrase, added=True)
           for short, phrases in added.items() for phrase in phrases]
    out += [Shorthand(s.short, s.phrase, dropped=s.short in dropped or s.short in added)
            for s in derived]
    return sorted(out, key=lambda s: (s.short, not s.added, s.phrase))
