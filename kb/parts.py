"""Checks and a preview for the shared parts: greeting, closing, phone opening,
synonyms and placeholders.

`check_part` returns findings like the answer checks: an error stops the save
(a placeholder the form does not know, wrong braces, a line of the synonyms or
placeholders file that cannot be read, a placeholder removed that text still
uses); a warning is shown and the part is saved. `preview` shows the part where
agents meet it: inside an email or at the start of a call, with sample values.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace

import yaml

from kb.checks import (
    Finding,
    check_commitment,
    check_placeholders,
    check_reading,
    check_tone,
    reading_level,
    rules_for,
    spoken_seconds,
)
from kb.compose import (
    PLACEHOLDER_NAME,
    PLACEHOLDER_RE,
    Email,
    compose,
    compose_chat,
    phone_script,
)
from kb.entry import Entry, load_yaml
from kb.facts import check_facts_file, parse_facts, uses
from kb.search.shorthand import listing
from kb.sheet import (
    FACTS,
    PARTS,
    PLACEHOLDERS,
    SHORTHAND,
    SYNONYMS,
    Sheet,
    parse_placeholders,
    parse_shorthand,
    parse_synonyms,
)

FILES = {**PARTS, "synonyms": SYNONYMS, "shorthand": SHORTHAND,  # name -> path
         "placeholders": PLACEHOLDERS, "facts": FACTS}
# Filled by kb itself whatever placeholders.yml says: the signed-in person's name.
BUILT_IN = frozenset({"agent_name"})
PLACEHOLDER_KEYS = ("label", "example", "default")
READING_MIN_WORDS = 25  # a grade for "Hello Alex," says nothing
OPENING_WARN_SECONDS = 15  # the customer wants to speak: a short opening
SAMPLE_CUSTOMER = "Alex"
SAMPLE_CHAT = "Sorry about this. Here is what happens next, and when."
SAMPLE_ENTRY = Entry(
    slug="sample", title="Your question",
    answer="This is where the answer goes: what happened, what we are doing about it, "
           "and when the customer will hear from us.",
    phone="- Say sorry for the trouble.\n- Say what happens next, and when.")


def known_names(placeholders: dict[str, dict[str, str]], facts=()) -> set[str]:
    return set(placeholders) | BUILT_IN | set(facts)


def check_text_part(name: str, text: str, sheet: Sheet) -> list[Finding]:
    """Greeting, closing, phone opening: placeholders, tone, plain words, promises."""
    placeholders = sheet.placeholders()
    # an unreadable placeholders file is its own problem, not this part's: then only
    # braces and malformed names are checked here
    findings = check_placeholders(text, name, known_names(placeholders, sheet.facts())
                                  if placeholders else None)
    findings += check_tone(text, name, rules_for(sheet))
    findings += check_commitment(text, name)
    if reading_level(text).words >= READING_MIN_WORDS:
        findings += check_reading(text, name)
    if name == "phone_opening":
        seconds = spoken_seconds(text)
        if seconds > OPENING_WARN_SECONDS:
            findings.append(Finding(
                "spoken-length", "warning",
                f"The opening takes about {seconds:.0f} seconds to say; keep it under "
                f"{OPENING_WARN_SECONDS} so the customer can speak sooner.", name,
                suggestion="Thank them, say your name, ask theirs."))
    return findings


def check_synonyms(text: str) -> list[Finding]:
    """One group per line, two or more words or phrases separated by commas."""
    out = []
    first_line: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = list(dict.fromkeys(w.strip().lower() for w in line.split(",") if w.strip()))
        if len(words) < 2:
            sep = next((s for s in (";", "/", "|", "\t") if s in line), None)
            how = (f"separate them with commas, not “{sep.strip() or 'tab'}”" if sep
                   else "add the words or phrases that mean the same, separated by commas")
            out.append(Finding(
                "synonyms", "error",
                f"Line {number}: “{line}” is a group of one, so search ignores it; {how}.",
                "synonyms", excerpt=line))
            continue
        for word in words:
            if "{" in word or "}" in word:
                out.append(Finding(
                    "synonyms", "error",
                    f"Line {number}: “{word}” holds braces; a synonym is words customers "
                    "type, not a placeholder.", "synonyms", excerpt=word))
            elif word in first_line and first_line[word] != number:
                out.append(Finding(
                    "synonyms", "warning",
                    f"Line {number}: “{word}” is also in line {first_line[word]}, so a search "
                    "for it finds the words of both groups; keep it in one.",
                    "synonyms", excerpt=word))
            else:
                first_line.setdefault(word, number)
    return out


def check_shorthand(text: str) -> list[Finding]:
    """`short = what it stands for`, or `short =` to drop one kb worked out."""
    added, dropped, bad = parse_shorthand(text)
    out = [Finding("shorthand", "error", message[0].upper() + message[1:] + ".", "shorthand")
           for message in bad]
    for short in sorted(set(added) & dropped):
        out.append(Finding(
            "shorthand", "warning",
            f"“{short}” is both given a meaning and dropped; the meaning counts.",
            "shorthand", excerpt=short))
    return out


def _yaml_problem(exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"Line {mark.line + 1}: " if mark is not None else ""
    return f"{where}the file cannot be read ({what}). Write one line per placeholder: " \
           "name: {label: ..., example: ...}."


def _users_of(sheet: Sheet, names: set[str]) -> dict[str, list[str]]:
    """For each name, the shared parts and entries (by title) that use it."""
    used: dict[str, list[str]] = {n: [] for n in names}

    def note(label: str, *texts: str) -> None:
        for found in {m.group(1) for t in texts for m in PLACEHOLDER_RE.finditer(t or "")}:
            if found in used:
                used[found].append(label)

    for part in PARTS:
        note(f"the {part.replace('_', ' ')}", sheet.part(part))
    entries, _ = sheet.entries()
    for entry in sorted(entries, key=lambda e: e.title.lower()):
        if entry.status != "retired":
            note(f"“{entry.title}”", entry.title, entry.answer, entry.phone)
    return {n: places for n, places in used.items() if places}


def check_placeholders_file(text: str, sheet: Sheet) -> list[Finding]:
    """Every line readable, every name usable, and nothing removed that text still uses."""
    try:
        data = load_yaml(text)
    except Exception as exc:  # any unreadable YAML (aliases too) is one clear error
        return [Finding("placeholders", "error", _yaml_problem(exc), "placeholders")]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return [Finding("placeholders", "error",
                        "The file must list placeholders, one per line: "
                        "name: {label: ..., example: ...}.", "placeholders")]
    out = []
    lines: dict[str, int] = {}
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    for key, _value in getattr(root, "value", None) or []:
        name, number = str(key.value), key.start_mark.line + 1
        if name in lines:
            out.append(Finding("placeholders", "error",
                               f"Line {number}: “{name}” is listed twice (also line "
                               f"{lines[name]}); only the last one would count.",
                               "placeholders", excerpt=name))
        lines.setdefault(name, number)
    for key, info in data.items():
        name = str(key)
        where = f"Line {lines.get(name, '?')}"
        if not PLACEHOLDER_NAME.fullmatch(name):
            out.append(Finding("placeholders", "error",
                               f"{where}: “{name}” cannot be a placeholder name: one word of "
                               "letters, digits and underscores, e.g. order_number.",
                               "placeholders", excerpt=name))
            continue
        if info is None:
            continue
        if not isinstance(info, dict):
            out.append(Finding("placeholders", "error",
                               f"{where}: write {name}: {{label: ..., example: ...}} "
                               f"(found “{info}”).", "placeholders", excerpt=name))
            continue
        for k, v in info.items():
            if str(k) not in PLACEHOLDER_KEYS:
                close = difflib.get_close_matches(str(k), PLACEHOLDER_KEYS, n=1)
                hint = f" Did you mean {close[0]}?" if close else ""
                out.append(Finding("placeholders", "warning",
                                   f"{where}: “{k}” is not read; the keys are label, example "
                                   f"and default.{hint}", "placeholders", excerpt=str(k)))
            elif isinstance(v, (dict, list)):
                out.append(Finding("placeholders", "error",
                                   f"{where}: the {k} of {name} must be plain text.",
                                   "placeholders", excerpt=name))
    removed = set(sheet.placeholders()) - {str(k) for k in data} - BUILT_IN - set(sheet.facts())
    for name, places in sorted(_users_of(sheet, removed).items()):
        shown = ", ".join(places[:8]) + (f" and {len(places) - 8} more" if len(places) > 8
                                         else "")
        out.append(Finding("placeholders", "error",
                           f"“{name}” is still used by {shown}. Take it out there first, or "
                           "keep it here.", "placeholders", excerpt=name))
    return out


def check_part(name: str, text: str, sheet: Sheet) -> list[Finding]:
    """The findings for one shared part as it would be saved; errors stop the save."""
    if name in PARTS:
        return check_text_part(name, text, sheet)
    if name == "synonyms":
        return check_synonyms(text)
    if name == "shorthand":
        return check_shorthand(text)
    if name == "placeholders":
        return check_placeholders_file(text, sheet)
    if name == "facts":
        return check_facts_file(text, sheet.placeholders(), _users_of(sheet, set(sheet.facts())))
    raise KeyError(name)


# -- the preview ------------------------------------------------------------------------


@dataclass
class Preview:
    kind: str  # email | phone | synonyms | shorthand
    entry: Entry
    email: Email | None = None
    opening: str = ""
    points: str = ""
    groups: list[tuple[str, ...]] = field(default_factory=list)
    placeholders: dict[str, dict[str, str]] = field(default_factory=dict)
    shorthand: list = field(default_factory=list)  # kb.search.shorthand.Shorthand rows
    chat: object = None  # kb.compose.Chat, for the chat greeting and closing
    changed: list = field(default_factory=list)  # facts: (entry, email) of each entry a
    # changed fact reaches, with its new text

def sample_entry(sheet: Sheet) -> Entry:
    """A real answer from the sheet (the first published one by title), or a stand-in."""
    entries, _ = sheet.entries()
    published = sorted((e for e in entries if e.published), key=lambda e: e.title.lower())
    return published[0] if published else SAMPLE_ENTRY


def sample_values(placeholders: dict[str, dict[str, str]], defaults: dict[str, str],
                  person: str) -> dict[str, str]:
    """What an agent would have typed: each placeholder's example, the team's defaults,
    Alex as the customer and the signed-in person as the agent."""
    values = {n: i["example"] for n, i in placeholders.items() if i.get("example")}
    values.update({k: v for k, v in defaults.items() if v})
    values["customer_name"] = SAMPLE_CUSTOMER
    if person:
        values["agent_name"] = person
    return values


def preview(name: str, text: str, sheet: Sheet, defaults: dict[str, str],
            person: str, derived: list | None = None) -> Preview:
    """The part as agents meet it, with `text` in place of the saved version;
    `derived`: the shorthand search worked out from the sheet."""
    placeholders = sheet.placeholders()
    if name == "placeholders":
        placeholders = parse_placeholders(text)
        defaults = {**defaults, **{n: i["default"] for n, i in placeholders.items()
                                   if i["default"]}}
    entry = sample_entry(sheet)
    values = sample_values(placeholders, defaults, person)
    labels = {n: i["label"] for n, i in placeholders.items()}
    if name == "synonyms":
        return Preview("synonyms", entry, groups=parse_synonyms(text))
    if name == "shorthand":
        return Preview("shorthand", entry, shorthand=listing(derived or [], text))
    if name == "facts":
        return _facts_preview(text, sheet, entry, values, labels)
    if name in ("chat_greeting", "chat_closing"):
        chat_parts = {p: sheet.part(p) for p in ("chat_greeting", "chat_closing")}
        chat_parts[name] = text.strip()
        with_chat = next((e for e in sorted(sheet.entries()[0], key=lambda e: e.title.lower())
                          if e.published and e.chat), None) or replace(
            entry, extra={**entry.extra, "chat": SAMPLE_CHAT})
        chat = compose_chat(with_chat, chat_parts["chat_greeting"], chat_parts["chat_closing"],
                            values, labels=labels, limit=rules_for(sheet).chat_limit)
        return Preview("chat", with_chat, chat=chat)
    if name == "phone_opening":
        opening, points, _ = phone_script(text, entry, values, labels=labels)
        return Preview("phone", entry, opening=opening, points=points)
    parts = {p: sheet.part(p) for p in ("greeting", "closing")}
    if name in parts:
        parts[name] = text.strip()
    email = compose(entry, parts["greeting"], parts["closing"], values, labels=labels)
    return Preview("email", entry, email=email,
                   placeholders=placeholders if name == "placeholders" else {})


def _facts_preview(text: str, sheet: Sheet, entry: Entry, values: dict[str, str],
                   labels: dict[str, str]) -> Preview:
    """Every entry a changed (or removed, or new) fact reaches, with its answer as it
    will read: the trainer sees what the change does before saving it."""
    old, new = sheet.facts(), parse_facts(text)
    filled = {k: v for k, v in values.items() if k not in old} | {n: f.value
                                                                  for n, f in new.items()}
    return Preview("facts", entry, changed=[(e, compose(e, "", "", filled, labels=labels))
                                            for e in reached_by(sheet, text)])


def reached_by(sheet: Sheet, facts_text: str) -> list[Entry]:
    """The entries (not retired, by title) using a fact this text changes, adds or
    removes against the saved facts."""
    old, new = sheet.facts(), parse_facts(facts_text)
    changed = {n for n in set(old) | set(new) if old.get(n) != new.get(n)}
    entries, _ = sheet.entries()
    return [e for e in sorted(entries, key=lambda e: e.title.lower())
            if e.status != "retired" and uses(e, changed)]


def errors_in(findings: list[Finding]) -> int:
    return sum(f.level == "error" for f in findings)


__all__ = ["check_part", "preview", "Preview", "errors_in", "known_names", "BUILT_IN"]
