"""Starting from the team's own sheet instead of the starter entries.

A new instance is seeded with the starter entries and the shared parts
(greeting, closing, phone opening, synonyms, placeholders, checks). A team that
brings its own spreadsheet chooses whether the starter entries stay: an empty
sheet keeps only the shared parts. The admin is asked once, on the first visit,
while the starter entries are still exactly as they were seeded.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from dulwich.objects import Blob
from sqlalchemy import select

from kb.db import Database, Setting
from kb.sheet import Sheet
from kb.store import SHEET_DIR, ContentStore, Person, StoreError, is_entry_path, read_seed_dir

CHOICE = "starter.choice"  # "keep" | "empty" | "replace", once the admin has chosen
EMPTY_MESSAGE = ("Start an empty cheat sheet: only the shared parts (greeting, closing, "
                 "phone opening, synonyms, placeholders, checks)")


def shared_parts(seed_dir: str | os.PathLike[str]) -> dict[str, str]:
    """The starter's _sheet/ files: what every sheet needs whatever its entries."""
    return {p: t for p, t in read_seed_dir(Path(seed_dir)).items()
            if p.startswith(SHEET_DIR + "/")}


def create_empty(path: str | os.PathLike[str], seed_dir: str | os.PathLike[str]) -> ContentStore:
    """A new content repository holding the shared parts and no entries."""
    return ContentStore.create(path, shared_parts(seed_dir), EMPTY_MESSAGE)


@lru_cache(maxsize=4)
def _starter_versions(seed_dir: str) -> dict[str, str]:
    """Entry path -> blob id of each starter entry, as the seed commit holds it."""
    return {p: Blob.from_string(t.encode("utf-8")).id.decode()
            for p, t in read_seed_dir(Path(seed_dir)).items() if is_entry_path(p)}


def starter_untouched(store: ContentStore, seed_dir: str | os.PathLike[str]) -> bool:
    """True while every starter entry is in the sheet exactly as it was seeded
    (entries the team added beside them do not count: a plain `kb import` on a
    new instance keeps the starter entries, which is what the choice is about)."""
    try:
        starter = _starter_versions(str(seed_dir))
    except StoreError:
        return False
    return bool(starter) and all(store.version_of(p) == v for p, v in starter.items())


def own_entries(store: ContentStore, seed_dir: str | os.PathLike[str]) -> list[str]:
    """Entry paths that are not starter entries."""
    try:
        starter = _starter_versions(str(seed_dir))
    except StoreError:
        starter = {}
    return [p for p in store.entry_paths() if p not in starter]


def remove_starter(sheet: Sheet, seed_dir: str | os.PathLike[str], *, author: Person) -> str | None:
    """Delete the starter entries in one commit (history keeps them); the shared
    parts and the team's own entries stay."""
    head = sheet.store.head()
    starter = _starter_versions(str(seed_dir))
    paths = [p for p in sheet.store.entry_paths(head) if p in starter]
    if not paths:
        return None
    return sheet.write(
        dict.fromkeys(paths), author=author,
        message=f"Start from our own sheet: remove the {len(paths)} starter entries",
        expected={p: sheet.store.version_of(p, head) for p in paths})


def choice(db: Database) -> str | None:
    with db.session() as s:
        return s.scalar(select(Setting.value).where(Setting.key == CHOICE))


def record_choice(db: Database, value: str) -> None:
    with db.session() as s:
        row = s.get(Setting, CHOICE)
        if row is None:
            s.add(Setting(key=CHOICE, value=value))
        else:
            row.value = value
        s.commit()


def should_offer(db: Database, store: ContentStore, seed_dir: str | os.PathLike[str]) -> bool:
    """Ask the admin while no choice is recorded and the starter entries are untouched."""
    return choice(db) is None and starter_untouched(store, seed_dir)
