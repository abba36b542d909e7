"""The cheat sheet as the app sees it: entries and the shared parts, read from
the content store, parsed once per version, and kept in step with the index."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import yaml

from kb.entry import Entry, EntryError, parse_entry, serialize_entry
from kb.store import ContentStore, Person, entry_path, is_entry_path, slug_of

GREETING = "_sheet/greeting.md"
CLOSING = "_sheet/closing.md"
PHONE_OPENING = "_sheet/phone_opening.md"
SYNONYMS = "_sheet/synonyms.txt"
PLACEHOLDERS = "_sheet/placeholders.yml"
PARTS = {"greeting": GREETING, "closing": CLOSING, "phone_opening": PHONE_OPENING}


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


def parse_placeholders(text: str) -> dict[str, dict[str, str]]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError:
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


class Sheet:
    """Entries and shared parts, with a small parse cache keyed by blob id."""

    def __init__(self, store: ContentStore, cache_size: int = 2_000):
        self.store = store
        self._cache: OrderedDict[str, Entry | EntryError] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        # Called inside the write lock with (old_head, new_head): the search
        # index catches up before the write returns.
        self.after_commit = None

    def _parse(self, path: str, version: str) -> Entry:
        with self._lock:
            hit = self._cache.get(version + path)
            if hit is not None:
                self._cache.move_to_end(version + path)
        if hit is None:
            try:
                hit = parse_entry(slug_of(path), self.store.read_blob(version), version)
            except EntryError as exc:
                hit = exc
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

    def part(self, name: str) -> str:
        found = self.store.read(PARTS[name])
        return found.text.strip() if found else ""

    def synonyms(self) -> list[tuple[str, ...]]:
        found = self.store.read(SYNONYMS)
        return parse_synonyms(found.text) if found else []

    def placeholders(self) -> dict[str, dict[str, str]]:
        found = self.store.read(PLACEHOLDERS)
        return parse_placeholders(found.text) if found else {}

    def save_entry(
        self, entry: Entry, *, message: str, author: Person, committer: Person | None = None,
        based_on: str | None | Any = ...,
    ) -> str | None:
        """Write one entry. `based_on` is the version the edit started from
        (None for a new entry); leave it out to skip the conflict check."""
        path = entry_path(entry.slug)
        expected = None if based_on is ... else {path: based_on}
        return self.write(
            {path: serialize_entry(entry)}, message=message, author=author,
            committer=committer, expected=expected,
        )

    def write(self, changes: dict[str, str | None], **kwargs: Any) -> str | None:
        """One commit through the store, with the index brought up to date inside it."""
        return self.store.write(changes, after_commit=self.after_commit, **kwargs)


__all__ = ["Sheet", "Problem", "parse_synonyms", "parse_placeholders", "is_entry_path"]
