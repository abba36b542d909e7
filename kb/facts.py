"""Sheet facts: values the team's policy fixes (a refund window, the hotline, the
returns form's address), written once in `_sheet/facts.yml` and used in entries like
placeholders, `{{ refund_days }}`. They are filled everywhere an answer is shown or
copied and never asked of an agent; changing one changes every entry that uses it.

    refund_days: {label: Days to send a refund, type: days, value: 5}
    hotline: {label: Customer hotline, type: text, value: 0800 123 4567}
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from kb.checks import Finding
from kb.compose import PLACEHOLDER_NAME, PLACEHOLDER_RE
from kb.entry import Entry, load_yaml

TYPES = ("text", "number", "days", "money", "time", "link")
KEYS = ("label", "type", "value")
MAX_VALUE = 300
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_MONEY = re.compile(r"(?:[£$€¥]\s?)?\d+(?:[.,]\d{1,2})?(?:\s?(?:[A-Z]{3}|p|pence|cents?))?")
_TIME = re.compile(r"(?i)[\d:.\s]+(?:am|pm|h)?(?:\s*(?:-|–|to)\s*[\d:.\s]+(?:am|pm|h)?)?")
_LINK = re.compile(r"(?:https?://|mailto:)[^\s<>\"']+")
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
          "eight": 8, "nine": 9, "ten": 10, "fourteen": 14, "thirty": 30}
# "10 days", "ten working days", "14-day": a count of days written out in an answer
_DAYS = re.compile(r"\b(\d+|" + "|".join(_WORDS) + r")[ -](?:business |working |calendar )?"
                   r"days?\b", re.I)


@dataclass(frozen=True)
class Fact:
    name: str
    label: str
    type: str
    value: str


def parse_facts(text: str) -> dict[str, Fact]:
    """The facts a file defines; what cannot be read is left out (the checks say why)."""
    try:
        data = load_yaml(text) or {}
    except Exception:  # noqa: BLE001 - an unreadable file is the checks' business
        return {}
    out = {}
    if isinstance(data, dict):
        for name, info in data.items():
            if not isinstance(info, dict) or not PLACEHOLDER_NAME.fullmatch(str(name)):
                continue
            value = info.get("value")
            if value is None or isinstance(value, (dict, list)):
                continue
            kind = str(info.get("type") or "text")
            out[str(name)] = Fact(str(name), str(info.get("label") or name), kind,
                                  " ".join(str(value).split()))
    return out


def value_problem(kind: str, value: str) -> str | None:
    """What is wrong with a value for its type, or None."""
    value = " ".join(str(value).split())
    if not value:
        return "it has no value: write one, or remove the fact."
    if len(value) > MAX_VALUE:
        return f"the value is {len(value)} characters long; keep it under {MAX_VALUE}."
    if kind not in TYPES:
        return f"“{kind}” is not a type; use one of {', '.join(TYPES)}."
    if kind in ("number", "days") and not _NUMBER.fullmatch(value):
        return f"a {kind} fact holds a number (such as 5), not “{value}”."
    if kind == "money" and not _MONEY.fullmatch(value):
        return f"a money fact holds an amount (such as £4.95 or 10 EUR), not “{value}”."
    if kind == "time" and not _TIME.fullmatch(value):
        return f"a time fact holds a time or hours (such as 9 am – 5 pm), not “{value}”."
    if kind == "link" and not _LINK.fullmatch(value):
        return f"a link fact holds an address starting https:// (or mailto:), not “{value}”."
    return None


def values(facts: dict[str, Fact]) -> dict[str, str]:
    return {name: fact.value for name, fact in facts.items()}


def check_facts_file(text: str, placeholders: Iterable[str],
                     used_by: dict[str, list[str]]) -> list[Finding]:
    """Every fact readable, named, typed and of its type, not also a placeholder; a
    fact removed that entries still use is an error (`used_by`: name -> places)."""
    try:
        data = load_yaml(text)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [Finding("facts", "error", f"The file cannot be read ({first}). Write one "
                        "line per fact: name: {label: ..., type: days, value: 5}.", "facts")]
    data = data or {}
    if not isinstance(data, dict):
        return [Finding("facts", "error", "The file must list facts, one per line: "
                        "name: {label: ..., type: days, value: 5}.", "facts")]
    out = []
    taken = set(placeholders)
    for key, info in data.items():
        name = str(key)
        if not PLACEHOLDER_NAME.fullmatch(name):
            out.append(Finding("facts", "error", f"“{name}” cannot be a fact's name: one word "
                               "of letters, digits and _, such as refund_days.", "facts",
                               excerpt=name))
            continue
        if name in taken:
            out.append(Finding("facts", "error", f"“{name}” is also a placeholder agents fill "
                               "in: a fact's name must be its own. Rename one of them.",
                               "facts", excerpt=name))
        if not isinstance(info, dict):
            out.append(Finding("facts", "error", f"Write {name}: {{label: ..., type: ..., "
                               "value: ...}.", "facts", excerpt=name))
            continue
        for k in info:
            if str(k) not in KEYS:
                out.append(Finding("facts", "warning", f"{name}: “{k}” is not read; the keys "
                                   "are label, type and value.", "facts", excerpt=str(k)))
        value = info.get("value")
        problem = ("its value must be plain text." if isinstance(value, (dict, list))
                   else value_problem(str(info.get("type") or "text"),
                                      "" if value is None else str(value)))
        if problem:
            out.append(Finding("facts", "error", f"{name}: {problem}", "facts", excerpt=name))
    for name, places in sorted(used_by.items()):
        if name not in data:
            shown = ", ".join(places[:8]) + (f" and {len(places) - 8} more"
                                             if len(places) > 8 else "")
            out.append(Finding("facts", "error", f"“{name}” is still used by {shown}. Take it "
                               "out there first, or keep it here.", "facts", excerpt=name))
    return out


def uses(entry: Entry, names: Iterable[str]) -> set[str]:
    """The facts among `names` that the entry uses."""
    wanted = set(names)
    return {m.group(1) for text in (entry.title, entry.answer, entry.phone)
            for m in PLACEHOLDER_RE.finditer(text or "") if m.group(1) in wanted}


def _as_number(word: str) -> int | None:
    word = word.lower()
    return int(word) if word.isdigit() else _WORDS.get(word)


def contradictions(entry: Entry, facts: dict[str, Fact]) -> list[Finding]:
    """A count of days written out in the same sentence as a days fact, and not equal to
    it ("within 10 days" beside {{ refund_days }} = 5): one of them is out of date."""
    out = []
    day_facts = {n: f for n, f in facts.items() if f.type == "days"}
    for field, text in (("answer", entry.answer), ("phone", entry.phone)):
        for sentence in re.split(r"(?<=[.!?])\s+|\n", text or ""):
            used = [day_facts[m.group(1)] for m in PLACEHOLDER_RE.finditer(sentence)
                    if m.group(1) in day_facts]
            if not used:
                continue
            bare = PLACEHOLDER_RE.sub(" ", sentence)
            for match in _DAYS.finditer(bare):
                number = _as_number(match.group(1))
                for fact in used:
                    if number is not None and _NUMBER.fullmatch(fact.value) \
                            and number != float(fact.value.replace(",", ".")):
                        out.append(Finding(
                            "facts", "warning",
                            f"“{match.group(0)}” sits beside {{{{ {fact.name} }}}}, which is "
                            f"{fact.value} days ({fact.label}): one of them is out of date. "
                            f"Write {{{{ {fact.name} }}}} days, or say why they differ.",
                            field, excerpt=match.group(0),
                            suggestion=f"{{{{ {fact.name} }}}} days"))
    return out
