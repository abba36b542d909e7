"""Answer checks: tone, reading level, spoken length, placeholders, commitments.

Each finding names the field, the place in the text and, where there is one, a
calmer or clearer rewrite. The tone rules are a YAML file in the content
repository (`_sheet/checks.yml`) that trainers edit like everything else; the
defaults below are what a new sheet starts with.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import yaml

from kb.compose import PLACEHOLDER_RE
from kb.entry import Entry, EntryError, load_yaml
from kb.sheet import Sheet

RULES_PATH = "_sheet/checks.yml"
WORDS_PER_MINUTE = 150  # a calm, clear speaking pace
PHONE_WARN_SECONDS = 45
PHONE_MAX_SECONDS = 60
GRADE_WARN = 8.0  # Flesch-Kincaid; the target is a 5th-6th grader, with some room

DEFAULT_RULES_TEXT = r"""# Phrases that make an upset customer angrier, and what to say instead.
# Each rule: a phrase (plain words, or a regular expression with `regex: true`),
# or a list of them, the level (error or warning), why it hurts, and a calmer alternative.
# `unless` lists words that, in the same sentence, make the phrase fine;
# `followed_by` (a regular expression, or a list of them) limits it to where the next
# words match.
rules:
  - phrase: calm down
    level: error
    why: Telling someone to calm down tells them their feelings are wrong.
    instead: I can hear how frustrating this is. Let's sort it out together.
  - phrase: "you(?:'|’)?re wrong|you are wrong|that(?:'|’)?s incorrect|that is incorrect"
    regex: true
    level: error
    why: It turns the talk into an argument the customer has to win.
    instead: Let me check what happened, so we get this right.
  - phrase: "I don(?:'|’)?t know|I do not know"
    regex: true
    level: error
    unless: [find out, check, get back, let you know, ask, look into]
    why: On its own it sounds like the end of the road.
    instead: I don't know yet, but I will find out and tell you by (a time).
  - phrase:
      - "that(?:'|’)?s not my job|not my department|not my problem"
      - "I can(?:'|’)?t help (?:you )?with that"
    regex: true
    level: error
    why: The customer hears that nobody owns the problem.
    instead: I'll connect you with the person who can fix this, and stay on until they're here.
  - phrase: whatever
    level: error
    why: It sounds dismissive.
    instead: I understand. Here is what I can do.
  - phrase:
      - "(?:it(?:'|’)?s|that(?:'|’)?s) (?:our|the|company) policy"
      - "(?:our|the) policy says|policy states"
    regex: true
    level: warning
    why: A policy used as a wall shuts the door without an alternative.
    instead: Here is how it works, and here is what I can do for you.
  - phrase:
      - "your fault|you failed to|you forgot to|obviously"
      - "as I already said|as I said before"
    regex: true
    level: error
    why: Blame words make the customer defend themselves instead of working with you.
    instead: Let's look at what happened and fix it.
  - phrase: "you should(?:n(?:'|’)?t| not)?(?: have|(?:'|’)ve)(?:\\s+(?:\\w+ly|already|just))?"
    regex: true
    # Blame only before something the customer did ("read the label", "checked",
    # "been more careful"). "You should have had it by now", "should have received"
    # and "should have been sent" say we are late; "should have enough left" is
    # what they can expect.
    followed_by:
      - "(?!received\\b)\\w+ed"
      - "read|sent|told|kept|left|made|done|known|seen|taken|given|brought|bought|put"
      - "paid|said|written|chosen|sold|shown|spoken|forgotten|thrown|lost|gone|broken"
      - "been(?!\\s+(?:\\w+ly\\s+)?(?:\\w+ed|sent|told|given|paid|shown|made|kept)\\b)"
    level: error
    why: Blame words make the customer defend themselves instead of working with you.
    instead: Let's look at what happened and fix it.
  - phrase:
      - "unfortunately,? there is nothing"
      - "there(?:'|’)?s nothing (?:I|we) can do|nothing we can do"
    regex: true
    level: error
    why: It leaves the customer with no way forward.
    instead: What I can do is …
  - phrase: "(?:^|(?<=[.!?]\\s))no(?=[.,!]|\\s+(?:that|we|I|you)\\b)"
    regex: true
    level: warning
    flat_no: true
    why: A flat "no" with nothing after it feels like a closed door.
    instead: I can't do that, but what I can do is …
"""

# "no" that is not a refusal
_HARMLESS_NO = re.compile(
    r"\bno (?:problem|worries|charge|cost|need|longer|matter|rush|doubt|extra|fee|questions)\b",
    re.IGNORECASE)
_OFFER = re.compile(r"what (?:I|we) can do|instead|(?:I|we) can\b|here is what", re.IGNORECASE)
_PROMISE = re.compile(
    r"\b(?:(?:I|we)(?:'|’)?ll|(?:I|we) will) (?:get back|call|email|update|contact|write|let you "
    r"know|be in touch|follow up|reply|send you an update)|\bfollow(?:-| )up\b|\bget back to you\b"
    r"|\bbe in touch\b|\bcall you back\b",
    re.IGNORECASE)
_TIME = re.compile(
    r"\b(?:by|within|before|until|today|tonight|tomorrow|hours?|minutes?|(?:business |working )?"
    r"days?|weeks?|monday|tuesday|wednesday|thursday|friday|saturday|sunday|noon|midday|"
    r"morning|afternoon|evening|end of)\b|\d{1,2}(?::\d\d)?\s?(?:am|pm)\b|\{\{\s*(?:date|"
    r"callback_time)\s*\}\}",
    re.IGNORECASE)
_BAD_BRACES = re.compile(
    r"\{\{\s*\}\}|\{\{\s*[^{}]*?\s*\}(?!\})|(?<!\{)\{\s*[A-Za-z_ ]+\s*\}\}|\[\[\s*\w+\s*\]\]"
    r"|\{\{(?![^{}]*\}\})[^{}\n]{0,40}")
_ANY_PLACEHOLDER = re.compile(r"\{\{\s*([^{}|]*?)\s*(?:\|[^{}]*)?\}\}")  # "| fallback" allowed


@dataclass
class Finding:
    check: str  # tone | reading-level | spoken-length | placeholder | commitment
    level: str  # error | warning
    message: str
    field: str  # answer | phone | title
    start: int | None = None
    end: int | None = None
    excerpt: str = ""
    suggestion: str = ""

    def describe(self) -> str:
        """One line for a person: where, what is wrong, what to write instead."""
        quoted = f"“{self.excerpt}”: " if self.excerpt else ""
        tip = f" Try: {self.suggestion}" if self.suggestion else ""
        return f"{self.check} in the {self.field}: {quoted}{self.message}{tip}"


@dataclass
class Rule:
    pattern: re.Pattern
    level: str
    why: str
    instead: str
    unless: tuple[str, ...] = ()
    flat_no: bool = False


CHAT_LIMIT = 320
CHAT_FRAME = 60  # what a chat greeting and closing take, with a name filled in


@dataclass
class Rules:
    rules: list[Rule] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    chat_limit: int = CHAT_LIMIT  # characters a chat or SMS message may take


def _followed_by(spec) -> str:
    """A look-ahead: the rule's phrase counts only where the next words match `spec`
    (a pattern or a list of them); it stays out of the finding's excerpt."""
    if not spec:
        return ""
    patterns = spec if isinstance(spec, list) else [spec]
    either = "|".join(f"(?:{p})" for p in map(str, patterns))
    return rf"(?=\s+(?:{either})(?![\w'’]))"


def load_rules(text: str) -> Rules:
    """Read the tone rules; a broken rule is reported, the others still apply."""
    out = Rules()
    try:
        data = load_yaml(text) or {}
        if not isinstance(data, dict):
            raise yaml.YAMLError("the file must be 'rules:' followed by a list")
    except Exception as exc:  # any unreadable file (aliases too): the defaults apply
        out.problems.append(f"{RULES_PATH} is not valid YAML ({exc}); using the defaults.")
        data = yaml.safe_load(DEFAULT_RULES_TEXT)
    limit = data.get("chat_limit")
    if limit is not None:
        if isinstance(limit, int) and not isinstance(limit, bool) and 20 <= limit <= 5000:
            out.chat_limit = limit
        else:
            out.problems.append(f"chat_limit in {RULES_PATH} must be a number of characters "
                                f"from 20 to 5000; using {CHAT_LIMIT}.")
    for i, item in enumerate(data.get("rules") or [], start=1):
        if not isinstance(item, dict) or not item.get("phrase"):
            out.problems.append(f"rule {i} in {RULES_PATH} has no phrase.")
            continue
        phrases = item["phrase"] if isinstance(item["phrase"], list) else [item["phrase"]]
        if item.get("regex"):
            source = "|".join(f"(?:{p})" for p in map(str, phrases))
        else:
            source = "|".join(r"\s+".join(map(re.escape, str(p).split())) for p in phrases)
        source = f"(?:{source}){_followed_by(item.get('followed_by'))}"
        try:
            pattern = re.compile(rf"(?<![\w'’])(?:{source})(?![\w'’])",
                                 re.IGNORECASE | re.MULTILINE)
        except re.error as exc:
            out.problems.append(f"rule {i} in {RULES_PATH} is not a valid pattern: {exc}.")
            continue
        out.rules.append(Rule(
            pattern=pattern, level="error" if item.get("level") == "error" else "warning",
            why=str(item.get("why") or ""), instead=str(item.get("instead") or ""),
            unless=tuple(str(u).lower() for u in item.get("unless") or ()),
            flat_no=bool(item.get("flat_no"))))
    return out


def rules_for(sheet: Sheet) -> Rules:
    found = sheet.store.read(RULES_PATH)
    return load_rules(found.text if found else DEFAULT_RULES_TEXT)


# -- sentences and syllables ----------------------------------------------------------

_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)", re.MULTILINE)


def sentences_with_offsets(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for m in _SENTENCE.finditer(text)
            if re.search(r"[A-Za-z]", m.group(0))]


def _sentence_around(text: str, pos: int) -> str:
    for start, end, sentence in sentences_with_offsets(text):
        if start <= pos < end:
            return sentence
    return text


def plain_text(markdown: str) -> str:
    """Markdown and placeholders out, so they do not count as words or sentences."""
    text = PLACEHOLDER_RE.sub("someone", markdown)  # a placeholder reads as a 2-syllable word
    text = re.sub(r"(?m)^\s*(?:[-*+]|\d+\.)\s+(.*?)\s*$", lambda m: m.group(1).rstrip(".") + ".",
                  text)  # each talking point is a sentence
    text = re.sub(r"[#*_`>\[\]()]", " ", text)
    return text


def syllables(word: str) -> int:
    word = re.sub(r"[^a-z]", "", word.lower())
    if not word:
        return 0
    if len(word) <= 3:
        return 1
    if re.search(r"[^aeiouy]le$", word):  # ta-ble: the "le" is a syllable of its own
        return max(1, len(re.findall(r"[aeiouy]{1,2}", word[:-2]))) + 1
    word = re.sub(r"(?:(?<=[^aeiouytd])ed|(?<=[^aeiouysxzcgh])es|e)$", "", word)  # silent endings
    word = re.sub(r"^y", "", word)
    return max(1, len(re.findall(r"[aeiouy]{1,2}", word)))


@dataclass
class ReadingLevel:
    grade: float
    words: int
    sentences: int
    hardest: list[tuple[float, str]]  # (grade, sentence), hardest first


def _grade(words: int, sentences: int, syll: int) -> float:
    if not words or not sentences:
        return 0.0
    return 0.39 * words / sentences + 11.8 * syll / words - 15.59


def reading_level(markdown: str) -> ReadingLevel:
    """Flesch-Kincaid grade level of the text, with its hardest sentences."""
    text = plain_text(markdown)
    per_sentence = []
    total_words = total_syll = 0
    for _, _, sentence in sentences_with_offsets(text):
        words = re.findall(r"[A-Za-z][A-Za-z'’-]*", sentence)
        if not words:
            continue
        syll = sum(syllables(w) for w in words)
        total_words += len(words)
        total_syll += syll
        per_sentence.append((round(_grade(len(words), 1, syll), 1), sentence.strip()))
    grade = round(_grade(total_words, len(per_sentence), total_syll), 1)
    return ReadingLevel(grade, total_words, len(per_sentence),
                        sorted(per_sentence, reverse=True)[:3])


def spoken_seconds(markdown: str, wpm: int = WORDS_PER_MINUTE) -> float:
    words = re.findall(r"[A-Za-z0-9][A-Za-z0-9'’-]*", plain_text(markdown))
    return round(len(words) * 60 / wpm, 1)


# -- the checks -------------------------------------------------------------------------


def check_tone(text: str, field_name: str, rules: Rules) -> list[Finding]:
    out = []
    for rule in rules.rules:
        for match in rule.pattern.finditer(text):
            sentence = _sentence_around(text, match.start()).lower()
            if rule.unless and any(u in sentence for u in rule.unless):
                continue
            if rule.flat_no:
                if _HARMLESS_NO.search(text[match.start():match.start() + 20]):
                    continue
                if _OFFER.search(text):  # the "no" comes with an alternative
                    continue
            out.append(Finding(
                "tone", rule.level, rule.why or "This phrase can upset a customer.",
                field_name, match.start(), match.end(), match.group(0).strip(), rule.instead))
    return out


def check_reading(text: str, field_name: str) -> list[Finding]:
    if not text.strip():
        return []
    level = reading_level(text)
    if level.grade <= GRADE_WARN:
        return []
    hardest = "; ".join(f"“{s}” (grade {g})" for g, s in level.hardest[:2])
    return [Finding(
        "reading-level", "warning",
        f"Reads at grade {level.grade}; aim for grade 5-6 so anyone can follow. "
        f"Hardest: {hardest}", field_name, suggestion="Use shorter sentences and "
        "everyday words.")]


def check_spoken_length(phone: str) -> list[Finding]:
    seconds = spoken_seconds(phone)
    if seconds > PHONE_MAX_SECONDS:
        level = "error"
    elif seconds > PHONE_WARN_SECONDS:
        level = "warning"
    else:
        return []
    return [Finding("spoken-length", level,
                    f"The talking points take about {seconds:.0f} seconds to say; keep them "
                    f"under {PHONE_MAX_SECONDS} (better {PHONE_WARN_SECONDS}).", "phone",
                    suggestion="Keep the three points that matter most.")]


def check_placeholders(text: str, field_name: str, known: set[str] | None) -> list[Finding]:
    out = []
    for match in _BAD_BRACES.finditer(text):
        out.append(Finding("placeholder", "error",
                           "This looks like a placeholder with wrong braces; write it as "
                           "{{ name }}.", field_name, match.start(), match.end(),
                           match.group(0), "{{ customer_name }}"))
    for match in _ANY_PLACEHOLDER.finditer(text):
        name = match.group(1)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            out.append(Finding("placeholder", "error",
                               f"“{name}” cannot be filled in: a placeholder name is one word "
                               "of letters, digits and underscores.", field_name,
                               match.start(), match.end(), match.group(0),
                               "{{ " + re.sub(r"\W+", "_", name.strip()).strip("_").lower()
                               + " }}"))
        elif known is not None and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
            hint = f"Did you mean {' or '.join(close)}? " if close else ""
            line = text.count("\n", 0, match.start()) + 1
            out.append(Finding(
                "placeholder", "error",
                f"“{name}” (line {line}) is not a known placeholder, so the form has no field "
                f"for it and it would reach the customer as written. {hint}Known: "
                f"{', '.join(sorted(known))} (a new one is added under placeholders first).",
                field_name, match.start(), match.end(), match.group(0),
                "{{ " + close[0] + " }}" if close else ""))
    return out


def check_commitment(text: str, field_name: str) -> list[Finding]:
    out = []
    spans = sentences_with_offsets(text)
    for i, (start, _end, sentence) in enumerate(spans):
        match = _PROMISE.search(sentence)
        if not match:
            continue
        following = spans[i + 1][2] if i + 1 < len(spans) else ""
        if _TIME.search(sentence) or _TIME.search(following):
            continue
        out.append(Finding("commitment", "warning",
                           "This promises to follow up but names no time; say when.",
                           field_name, start + match.start(), start + match.end(),
                           match.group(0), match.group(0) + " by the end of the next business "
                           "day"))
    return out


def check_entry(entry: Entry, rules: Rules | None = None,
                known_placeholders: set[str] | None = None,
                errors_only: bool = False) -> list[Finding]:
    """Every finding on one entry; with `errors_only`, only the errors, without running
    the checks that only ever warn (an import checks thousands of rows)."""
    rules = rules or load_rules(DEFAULT_RULES_TEXT)
    findings: list[Finding] = []
    for name, text in (("title", entry.title), ("answer", entry.answer), ("phone", entry.phone),
                       ("chat", entry.chat)):
        findings += check_tone(text, name, rules)
        findings += check_placeholders(text, name, known_placeholders)
    findings += check_chat_length(entry.chat, rules.chat_limit)
    if not errors_only:
        for name, text in (("answer", entry.answer), ("phone", entry.phone)):
            findings += check_reading(text, name)
            findings += check_commitment(text, name)
    findings += check_spoken_length(entry.phone)
    return [f for f in findings if f.level == "error"] if errors_only else findings


def check_chat_length(chat: str, limit: int) -> list[Finding]:
    """A chat or SMS message has a length the team sets (chat_limit in checks.yml); the
    chat version leaves room for the chat greeting and closing."""
    room = max(20, limit - CHAT_FRAME)
    if len(chat) <= room:
        return []
    return [Finding("chat-length", "error",
                    f"The chat version is {len(chat)} characters; with the chat greeting and "
                    f"closing a message holds {limit}, so keep it to about {room}. Say what "
                    "happens next and when; the email has the rest.", "chat",
                    excerpt=chat[:40] + "…")]


@dataclass
class EntryReport:
    slug: str
    findings: list[Finding]
    grade: float
    phone_seconds: float

    @property
    def errors(self) -> int:
        return sum(f.level == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.level == "warning" for f in self.findings)


@dataclass
class SheetReport:
    entries: list[EntryReport]
    problems: list[str]  # unreadable files and broken rules: errors

    @property
    def errors(self) -> int:
        return sum(e.errors for e in self.entries) + len(self.problems)

    @property
    def warnings(self) -> int:
        return sum(e.warnings for e in self.entries)


def check_sheet(sheet: Sheet) -> SheetReport:
    rules = rules_for(sheet)
    facts = sheet.facts()
    known = sheet.known_names()
    entries, problems = sheet.entries()
    reports = []
    for entry in entries:
        if entry.status == "retired":
            continue
        from kb.facts import contradictions  # kb.facts builds on this module

        reports.append(EntryReport(entry.slug, check_entry(entry, rules, known)
                                   + contradictions(entry, facts),
                                   reading_level(entry.answer).grade,
                                   spoken_seconds(entry.phone)))
    problems += sheet.misplaced_files()
    return SheetReport(reports, [str(p) for p in problems] + rules.problems)


__all__ = ["EntryError", "Finding", "check_entry", "check_sheet", "load_rules", "reading_level",
           "spoken_seconds", "DEFAULT_RULES_TEXT"]


# -- names the sheet already uses ------------------------------------------------------

_NAME_FILLER = {"and", "the", "of", "for", "a", "an", "to", "or"}


def _name_words(name: str) -> frozenset[str]:
    words = re.findall(r"[^\W_]+", name.lower())
    return frozenset(_singular(w) for w in words if w not in _NAME_FILLER)


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def near_name(new: str, existing: Iterable[str]) -> str | None:
    """An existing name the new one is probably meant to be: the same words in another
    order or form ("Payments and billing", "Billing & payments"), or nearly the same
    letters ("Deliveries", "Delivery")."""
    if not new.strip():
        return None
    words, low = _name_words(new), new.strip().lower()
    for old in existing:
        if old.strip().lower() == low:
            return None  # it is one of them
    for old in existing:
        if (words and _name_words(old) == words) or difflib.SequenceMatcher(
                None, low, old.strip().lower()).ratio() >= 0.88:
            return old
    return None


def check_names(category: str, tags: Iterable[str], categories: Iterable[str],
                known_tags: Iterable[str]) -> list[Finding]:
    """A new category or tag that looks like one the sheet already uses: a warning, so
    the sheet does not grow two names for one thing."""
    out = []
    old = near_name(category, list(categories))
    if old:
        out.append(Finding("near-duplicate", "warning",
                           f"“{category}” is a new category, and the sheet already has "
                           f"“{old}”: use that one unless they really differ.",
                           "category", excerpt=category, suggestion=old))
    known = list(known_tags)
    for tag in tags:
        old = near_name(tag, known)
        if old:
            out.append(Finding("near-duplicate", "warning",
                               f"“{tag}” is a new tag, and the sheet already has “{old}”: "
                               "use that one unless they really differ.",
                               "tags", excerpt=tag, suggestion=old))
    return out
