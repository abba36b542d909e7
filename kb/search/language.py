"""The team's language: its words, and how often each is used.

SymSpell's English frequency dictionary (82,765 words: Google Books counts of the
words in SCOWL, a spell-checker's word list, so common misspellings are not in it),
which the `symspellpy` package ships. Spelling uses it to tell a word from a typo,
shorthand to leave the most used words alone."""

from __future__ import annotations

import functools
import importlib.resources

DICTIONARY = ("symspellpy", "frequency_dictionary_en_82_765.txt")
# An apostrophe left out ("didnt", "youre", "theyll") joins a very common word and an
# ending; "very common" is read off the dictionary's counts: its top words.
_CONTRACTION_ENDINGS = ("nt", "re", "ve", "ll")
COMMON = 300  # the language's "very common" words: "no", "so", "all", "did"


@functools.lru_cache(maxsize=1)
def english() -> dict[str, int]:
    """The language's words and how often each is used (lower case)."""
    package, name = DICTIONARY
    counts: dict[str, int] = {}
    try:
        text = importlib.resources.files(package).joinpath(name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):  # no list: correct as if every word were a typo
        return counts
    for line in text.splitlines():
        word, _, count = line.partition(" ")
        if count.strip().isdigit():
            counts[word.lower()] = int(count)
    return counts


@functools.lru_cache(maxsize=4)
def most_used(count: int) -> frozenset[str]:
    """The language's `count` most used words."""
    counts = english()
    return frozenset(sorted(counts, key=counts.__getitem__, reverse=True)[:count])


def common() -> frozenset[str]:
    return most_used(COMMON)


def is_word(word: str) -> bool:
    """Whether `word` (lower case) is a word of the language, written with or without
    a contraction's apostrophe ("can't", "cant", "didnt")."""
    counts = english()
    if word in counts or word.replace("'", "") in counts:
        return True
    if "'" in word:
        head = word.split("'", 1)[0]
        return head in counts
    return any(word.endswith(end) and word[:-len(end)] in common()
               for end in _CONTRACTION_ENDINGS)
