"""Version history views over the git store: list, diff, restore."""

from __future__ import annotations

import datetime as dt
import difflib
import html
from collections.abc import Iterable
from dataclasses import dataclass

from markupsafe import Markup

from kb.entry import EntryError, parse_entry
from kb.sheet import Sheet
from kb.store import (
    ContentStore,
    Person,
    Revision,
    StoreError,
    is_entry_path,
    revision_of,
    slug_of,
)


@dataclass
class DiffRow:
    kind: str  # "same", "changed", "added", "removed"
    left_no: int | None
    left: Markup
    right_no: int | None
    right: Markup


def _inline(a: str, b: str) -> tuple[Markup, Markup]:
    """Mark the changed words inside a changed line pair."""
    sa, sb = a.split(" "), b.split(" ")
    left, right = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, sa, sb).get_opcodes():
        l_part = html.escape(" ".join(sa[i1:i2]))
        r_part = html.escape(" ".join(sb[j1:j2]))
        if op == "equal":
            left.append(l_part)
            right.append(r_part)
        else:
            if l_part:
                left.append(f"<del>{l_part}</del>")
            if r_part:
                right.append(f"<ins>{r_part}</ins>")
    return Markup(" ".join(left)), Markup(" ".join(right))


def side_by_side(old: str, new: str) -> list[DiffRow]:
    """Rows for a two-column diff, with changed words highlighted; all text escaped."""
    a, b = (old or "").splitlines(), (new or "").splitlines()
    rows: list[DiffRow] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            for k in range(i2 - i1):
                text = Markup(html.escape(a[i1 + k]))
                rows.append(DiffRow("same", i1 + k + 1, text, j1 + k + 1, text))
        elif op == "replace":
            for k in range(max(i2 - i1, j2 - j1)):
                li, rj = i1 + k, j1 + k
                if li < i2 and rj < j2:
                    left, right = _inline(a[li], b[rj])
                    rows.append(DiffRow("changed", li + 1, left, rj + 1, right))
                elif li < i2:
                    rows.append(DiffRow("removed", li + 1, Markup(html.escape(a[li])), None,
                                        Markup("")))
                else:
                    rows.append(DiffRow("added", None, Markup(""), rj + 1,
                                        Markup(html.escape(b[rj]))))
        elif op == "delete":
            for k in range(i1, i2):
                rows.append(DiffRow("removed", k + 1, Markup(html.escape(a[k])), None, Markup("")))
        else:
            for k in range(j1, j2):
                rows.append(DiffRow("added", None, Markup(""), k + 1, Markup(html.escape(b[k]))))
    return rows


def unified(old: str, new: str, old_label: str = "before", new_label: str = "after") -> str:
    return "".join(difflib.unified_diff(
        (old or "").splitlines(keepends=True), (new or "").splitlines(keepends=True),
        fromfile=old_label, tofile=new_label))


def text_at(sheet: Sheet, path: str, version: str | None) -> str:
    """The file's text at a blob version ('' for none)."""
    if not version:
        return ""
    try:
        return sheet.store.read_blob(version)
    except (KeyError, ValueError):
        raise StoreError(f"There is no version {version[:7]} of {path}.") from None


def restore(sheet: Sheet, path: str, version: str, reason: str, who: Person) -> str | None:
    """Make an earlier version current again, as a new commit."""
    if not version:  # text_at gives '' for no version: that would empty the file
        raise StoreError(f"There is no version given to restore: pick one from the history "
                         f"of {path}.")
    if version not in {r.version for r in sheet.store.history(path, limit=100_000)}:
        raise StoreError(f"There is no version {version[:7]} of {path} to restore.")
    old = text_at(sheet, path, version)
    current = sheet.store.version_of(path)
    message = reason.strip() or f"Restore the version {version[:7]}"
    return sheet.write({path: old}, message=message, author=who, expected={path: current})


def compact(rows: list[DiffRow], context: int = 1) -> list[DiffRow | None]:
    """Only the changed rows and a line around each; None marks the lines left out."""
    keep = set()
    for i, row in enumerate(rows):
        if row.kind != "same":
            keep.update(range(max(0, i - context), min(len(rows), i + context + 1)))
    out: list[DiffRow | None] = []
    for i, row in enumerate(rows):
        if i in keep:
            out.append(row)
        elif out and out[-1] is not None:
            out.append(None)
    return out


def _changes(base: list[str], other: list[str]) -> list[tuple[int, int, list[str]]]:
    """(start, end, new lines) of each change from base to other, in base's lines."""
    return [(i1, i2, other[j1:j2]) for op, i1, i2, j1, j2 in
            difflib.SequenceMatcher(None, base, other, autojunk=False).get_opcodes()
            if op != "equal"]


def merge3(base: str, theirs: str, mine: str) -> str | None:
    """Both changes applied to base when they touch different lines (with at least
    one untouched line between them); None when they overlap, so a person decides."""
    b = (base or "").splitlines(keepends=True)
    ours, other = _changes(b, (mine or "").splitlines(keepends=True)), \
        _changes(b, (theirs or "").splitlines(keepends=True))
    if not ours:
        return theirs
    for s1, e1, _ in ours:
        for s2, e2, _ in other:
            # touching or overlapping ranges (an insert at the same place counts too)
            if s1 <= e2 and s2 <= e1:
                return None
    merged, pos = [], 0
    for start, end, lines in sorted(ours + other, key=lambda c: (c[0], c[1])):
        merged += b[pos:start] + lines
        pos = end
    merged += b[pos:]
    return "".join(merged)


def made_by(store: ContentStore, versions: Iterable[str], limit: int = 5000,
            ) -> dict[str, Revision]:
    """For each file version (blob id), the latest commit that wrote it: when and by
    whom, so a report can say "12 May, Tara" instead of a hash. One walk back from the
    head, over at most `limit` commits; versions not found are left out."""
    wanted = {v for v in versions if v}
    found: dict[str, Revision] = {}
    head = store.head()
    if head is None or not wanted:
        return found
    for entry in store.repo.get_walker(include=[head.encode()], max_entries=limit):
        changes = entry.changes()
        if changes and isinstance(changes[0], list):  # a merge: a list per parent
            changes = [c for per_parent in changes for c in per_parent]
        for change in changes:
            new = change.new.sha.decode() if change.new and change.new.sha else None
            if new in wanted and new not in found:
                found[new] = revision_of(entry.commit, new)
        if len(found) == len(wanted):
            break
    return found


def when(revision: Revision) -> dt.datetime:
    """A revision's time as the usage log keeps times: naive UTC."""
    return dt.datetime.fromtimestamp(revision.time, dt.timezone.utc).replace(tzinfo=None)


def entries_older_than(store: ContentStore, moment: dt.datetime, limit: int = 100_000,
                       ) -> set[str]:
    """The entry paths that already existed at that moment (in the newest commit made
    before it); empty when the sheet is younger."""
    head = store.head()
    if head is None:
        return set()
    for entry in store.repo.get_walker(include=[head.encode()], max_entries=limit):
        if when(revision_of(entry.commit, None)) <= moment:
            return set(store.entry_paths(entry.commit.id.decode()))
    return set()


def change_summary(old: str, new: str, limit: int = 90) -> str:
    """The change in one line, word by word: "“was sent” → “went out”", "added “today”"."""
    a, b = (old or "").split(), (new or "").split()
    changes: list[list[int]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        # two changes a word or two apart read as one: "show colours a little" → "..."
        if changes and i1 - changes[-1][1] <= 2 and j1 - changes[-1][3] <= 2:
            changes[-1][1], changes[-1][3] = i2, j2
        else:
            changes.append([i1, i2, j1, j2])
    parts = []
    for i1, i2, j1, j2 in changes:
        before, after = " ".join(a[i1:i2]), " ".join(b[j1:j2])
        op = "replace" if before and after else "insert" if after else "delete"
        if op == "replace":
            parts.append(f"“{_clip(before)}” → “{_clip(after)}”")
        elif op == "insert":
            parts.append(f"added “{_clip(after)}”")
        elif op == "delete":
            parts.append(f"removed “{_clip(before)}”")
    line = "; ".join(parts)
    return line if len(line) <= limit else line[:limit - 1].rsplit(" ", 1)[0] + " …"


def _clip(text: str, words: int = 8) -> str:
    cut = text.split()
    return " ".join(cut[:words]) + (" …" if len(cut) > words else "")


def readable(path: str, text: str) -> str:
    """An entry file as a trainer reads it, for diffs: labelled fields, then the email
    answer and the phone points; no YAML. Any other file, or an entry file that
    cannot be read, as written."""
    if not text or not is_entry_path(path):
        return text
    try:
        e = parse_entry(slug_of(path), text)
    except EntryError:
        return text
    lines = [f"Title: {e.title}", f"Category: {e.category or '(none)'}",
             f"Tags: {', '.join(e.tags) or '(none)'}"]
    lines += [f"Customers say: {p}" for p in e.phrasings] or ["Customers say: (none)"]
    every = f"{e.review_every_days} days" if e.review_every_days else "(not set)"
    lines += [f"Status: {e.status}", f"Owner: {e.owner or '(none)'}", f"Review every: {every}",
              f"Last reviewed: {e.last_reviewed.isoformat() if e.last_reviewed else 'never'}"]
    lines += [f"{k.replace('_', ' ').capitalize()}: {v}" for k, v in sorted(e.extra.items())
              if k != "chat"]
    lines += ["", "Email answer:", *e.answer.strip().splitlines(), "",
              "On the phone:", *e.phone.strip().splitlines()]
    if e.chat:
        lines += ["", "In chat and SMS:", e.chat]
    return "\n".join(lines) + "\n"
