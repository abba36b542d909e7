"""The cheat sheet as the app sees it: entries and the shared parts, read from
the content store, parsed once per version, and kept in step with the index."""

from __future__ import annotations

import copy
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from kb import priority
from kb.entry import Entry, EntryError, load_yaml, parse_entry, serialize_entry, update_text
from kb.store import (
    ENTRY_SUFFIX,
    SHEET_DIR,
    ContentStore,
    Person,
    StoreError,
    entry_path,
    is_entry_path,
    slug_of,
)

GREETING = "_sheet/greeting.md"
CLOSING = "_sheet/closing.md"
PHONE_OPENING = "_sheet/phone_opening.md"
SYNONYMS = "_sheet/synonyms.txt"
SHORTHAND = "_sheet/shorthand.txt"
PLACEHOLDERS = "_sheet/placeholders.yml"
FACTS = "_sheet/facts.yml"  # values the team's policy fixes (kb.facts)
log = logging.getLogger("kb")
CHAT_GREETING = "_sheet/chat_greeting.md"
CHAT_CLOSING = "_sheet/chat_closing.md"
PARTS = {"greeting": GREETING, "closing": CLOSING, "phone_opening": PHONE_OPENING,
         "chat_greeting": CHAT_GREETING, "chat_closing": CHAT_CLOSING}


class RefusedEntry(EntryError, StoreError):
    """An entry file a write would store, refused: the message says what to fix."""


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def parse_synonyms(text: str) -> list[tuple[str, ...]]:
    """One group per line, comma separated; '#' starts a comment."""
    groups = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = tuple(dict.fromkeys(w.strip().lower() for w in line.split(",") if w.strip()))
        if len(words) > 1:
            groups.append(words)
    return groups


def parse_shorthand(text: str) -> tuple[dict[str, list[str]], set[str], list[str]]:
    """shorthand.txt: `dd = direct debit` adds one, `cos =` (nothing after the =) drops
    one kb worked out; '#' starts a comment. Returns what is added, what is dropped,
    and the lines that could not be read (for the checks)."""
    added: dict[str, list[str]] = {}
    dropped: set[str] = set()
    bad = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        short, eq, phrase = line.partition("=")
        short, phrase = " ".join(short.lower().split()), " ".join(phrase.lower().split())
        if not eq or not short or " " in short:
            bad.append(f"line {number}: write it as 'short = what it stands for' "
                       f"(one word before the =), or 'short =' to drop one")
            continue
        if phrase:
            added.setdefault(short, [])
            if phrase not in added[short]:
                added[short].append(phrase)
        else:
            dropped.add(short)
    return added, dropped, bad


def parse_placeholders(text: str) -> dict[str, dict[str, str]]:
    try:
        data = load_yaml(text) or {}
    except Exception:  # unreadable or using aliases: no labels rather than no sheet
        return {}
    out = {}
    if isinstance(data, dict):
        for name, info in data.items():
            info = info if isinstance(info, dict) else {}
            out[str(name)] = {
                "label": str(info.get("label") or str(name).replace("_", " ").capitalize()),
                "example": str(info.get("example") or ""),
                "default": str(info.get("default") or ""),
            }
    return out


def in_a_folder(path: str) -> bool:
    """A Markdown file below the top folder (not the shared parts, not a hidden folder).
    Entries are `<slug>.md` at the top: a slug names one file, and a link names one
    entry, so files in folders are never read as entries."""
    parts = path.split("/")
    return (len(parts) > 1 and path.endswith(ENTRY_SUFFIX) and parts[0] != SHEET_DIR
            and not any(part.startswith(".") for part in parts))


def read_entry_file(store: ContentStore, path: str, version: str) -> Entry | EntryError:
    """One entry file from the repository, or the EntryError saying what is wrong.

    Whatever a file holds (a git push can bring anything), reading it never
    raises: every failure of this one file becomes its named problem, and the
    rest of the sheet reads on."""
    try:
        raw = store.read_bytes(version)
        try:
            text, warnings = raw.decode("utf-8"), ()
        except UnicodeDecodeError as exc:
            text = raw.decode("utf-8", "replace")
            warnings = (f"it is not UTF-8 text (byte {exc.start + 1} cannot be read); "
                        "save it as UTF-8 (the unreadable bytes show as �)",)
        entry = parse_entry(slug_of(path), text, version, lenient=True)
        return replace(entry, warnings=entry.warnings + warnings) if warnings else entry
    except EntryError as exc:
        return exc
    except Exception as exc:  # anything at all: name this file, keep the sheet
        log.warning("cannot read %s: %r", path, exc)
        return EntryError(str(exc) if isinstance(exc, StoreError)
                          else f"it cannot be read ({type(exc).__name__}: {str(exc)[:200]})")


def check_file(path: str, text: str) -> None:
    """Refuse a file that would not read back: RefusedEntry says what to fix."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RefusedEntry(f"{path} cannot be saved: it holds a character that is not "
                           f"text (at position {exc.start + 1}); retype that part.") from None
    if is_entry_path(path):
        try:
            parse_entry(slug_of(path), text)
        except EntryError as exc:
            raise RefusedEntry(f"{path} cannot be saved: {exc}.") from None
    elif path in (PLACEHOLDERS, FACTS):
        try:
            data = load_yaml(text)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RefusedEntry(f"{path} cannot be saved: it is not valid YAML ({first}).") \
                from None
        if data is not None and not isinstance(data, dict):
            raise RefusedEntry(f"{path} cannot be saved: write one 'name: {{label: ...}}' "
                               "line per placeholder.")


class Sheet:
    """Entries and shared parts, with a small parse cache keyed by blob id."""

    def __init__(self, store: ContentStore, cache_size: int = 2_000):
        self.store = store
        self._cache: OrderedDict[str, Entry | EntryError] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._parts: dict[tuple[str, str], Any] = {}  # (path, blob id) -> parsed
        # Called inside the write lock with (old_head, new_head): the search
        # index catches up before the write returns.
        self.after_commit = None

    def _parse(self, path: str, version: str) -> Entry:
        with self._lock:
            hit = self._cache.get(version + path)
            if hit is not None:
                self._cache.move_to_end(version + path)
        if hit is None:
            hit = read_entry_file(self.store, path, version)
            with self._lock:
                self._cache[version + path] = hit
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        if isinstance(hit, EntryError):
            raise EntryError(str(hit))
        return hit

    def entry(self, slug: str, commit: str | None = None) -> Entry | None:
        """The entry, or None if there is no such file. Raises EntryError if malformed."""
        path = entry_path(slug)
        version = self.store.version_of(path, commit)
        if version is None:
            return None
        return self._parse(path, version)

    def entry_at_version(self, slug: str, version: str) -> Entry:
        return self._parse(entry_path(slug), version)

    def entries(self, commit: str | None = None) -> tuple[list[Entry], list[Problem]]:
        """Every readable entry, and a Problem for each file that is not."""
        entries, problems = [], []
        for path in self.store.entry_paths(commit):
            try:
                entries.append(self._parse(path, self.store.version_of(path, commit)))
            except EntryError as exc:
                problems.append(Problem(path, str(exc)))
        return entries, problems

    def misplaced(self, path: str, commit: str | None = None) -> Problem | None:
        """An entry file in a folder, which the sheet does not read: a Problem saying
        so and what to do. A file without front matter (notes, a README) is no entry
        and is left alone."""
        version = self.store.version_of(path, commit) if in_a_folder(path) else None
        if version is None:
            return None
        try:
            start = self.store.read_bytes(version)[:8]
        except StoreError:
            return None
        if not start.removeprefix(b"\xef\xbb\xbf").startswith(b"---"):
            return None
        name = path.rsplit("/", 1)[1]
        return Problem(path, "entries are read from the top folder only, so this one is not "
                             f"in the sheet. Move it there (git mv {path} {name}), or delete it.")

    def misplaced_files(self, commit: str | None = None) -> list[Problem]:
        """Every entry file in a folder (see `misplaced`)."""
        found = (self.misplaced(path, commit) for path in self.store.paths(commit))
        return [problem for problem in found if problem is not None]

    def _read_part(self, path: str, parse: Callable[[str], Any], empty: Any) -> Any:
        """A shared file, parsed once per version of it (an entry page reads the
        placeholders several times; each YAML parse cost more than the page's search)."""
        version = self.store.version_of(path)
        if version is None:
            return empty
        key = (path, version)
        with self._lock:
            hit = self._parts.get(key)
        if hit is None:
            hit = parse(self.store.read_blob(version))
            with self._lock:
                if len(self._parts) > 32:
                    self._parts.clear()
                self._parts[key] = hit
        return copy.deepcopy(hit)  # callers may change what they get

    def part(self, name: str) -> str:
        return self._read_part(PARTS[name], str.strip, "")

    def synonyms(self) -> list[tuple[str, ...]]:
        return self._read_part(SYNONYMS, parse_synonyms, [])

    def shorthand_text(self) -> str:
        found = self.store.read(SHORTHAND)
        return found.text if found else ""

    def placeholders(self) -> dict[str, dict[str, str]]:
        return self._read_part(PLACEHOLDERS, parse_placeholders, {})

    def known_names(self) -> set[str] | None:
        """The names an answer may use, placeholders and facts (None: no list to check
        answers by, so only braces and malformed names are)."""
        return (set(self.placeholders()) | set(self.facts())) or None

    def facts(self) -> dict:
        """name -> kb.facts.Fact: the team's policy values, filled in everywhere."""
        from kb.facts import parse_facts

        return self._read_part(FACTS, parse_facts, {})

    def save_entry(
        self, entry: Entry, *, message: str, author: Person, committer: Person | None = None,
        based_on: str | None | Any = ...,
    ) -> str | None:
        """Write one entry. `based_on` is the version the edit started from
        (None for a new entry); leave it out to skip the conflict check."""
        path = entry_path(entry.slug)
        expected = None if based_on is ... else {path: based_on}
        return self.write(
            {path: self.entry_text(entry)}, message=message, author=author,
            committer=committer, expected=expected,
        )

    def entry_text(self, entry: Entry, base_text: str | None = None) -> str:
        """The file for an entry, changing only what differs from the file it was
        edited from (the current file unless given), so its formatting is kept."""
        if base_text is None:
            found = self.store.read(entry_path(entry.slug))
            base_text = found.text if found else None
        if base_text is not None:
            try:
                base = parse_entry(entry.slug, base_text)
            except EntryError:
                return serialize_entry(entry)
            return update_text(base_text, base, entry)  # EntryError for text that is not text
        return serialize_entry(entry)

    def write(self, changes: dict[str, str | None], **kwargs: Any) -> str | None:
        """One commit through the store, with the index brought up to date inside it.

        Every entry file written is checked here, whichever way it came (API,
        edit form, approved proposal, import, restore): a file that would not
        read back cleanly is refused with the reason."""
        for path, text in changes.items():
            if isinstance(text, str):  # bytes: a file, checked by kb.attachments
                check_file(path, text)
        with priority.gate.writing():
            return self.store.write(changes, after_commit=self.after_commit, **kwargs)


__all__ = ["Sheet", "Problem", "in_a_folder", "parse_synonyms", "parse_placeholders",
           "is_entry_path"]
