"""The shared parts that are lists, edited as forms: placeholders (name, label,
example, default) and synonym groups, one row each, so a trainer never types YAML.

A form's rows become the part's text here, and the text its rows; the text is then
checked, previewed and saved like any part. Comments are kept: the placeholders'
opening comment block, and in the synonyms every comment and blank line, since each
group row remembers the line it came from.
"""

from __future__ import annotations

import re

import yaml

from kb.compose import PLACEHOLDER_NAME
from kb.entry import load_yaml

FORM_PARTS = ("placeholders", "synonyms", "facts")
BLANK_ROWS = 3  # empty rows offered for new ones
MAX_ROWS = 2000
FIELDS = {"placeholders": ("name", "label", "example", "default"), "synonyms": ("words",),
          "facts": ("name", "label", "type", "value")}


class RowError(ValueError):
    """A row the part cannot hold; the message says which and what to do."""


def rows_of(name: str, text: str) -> list[dict[str, str]]:
    """The form's rows for the part's text (empty when it cannot be read as rows)."""
    if name == "synonyms":
        return _synonym_rows(text)
    return _keyed_rows(text, FIELDS[name][1:])


def text_of(name: str, original: str, rows: list[dict[str, str]]) -> str:
    """The part's text for the form's rows, built on the original text."""
    if name == "synonyms":
        return _synonyms_text(original, rows)
    return _keyed_text(original, rows, FIELDS[name][1:], "a placeholder" if
                       name == "placeholders" else "a fact")


def rows_from_form(name: str, form) -> list[dict[str, str]]:
    """The rows as posted: fields `<field>_<n>`, a row left out when `remove_<n>` is on
    or every field is empty."""
    rows = []
    for n in range(MAX_ROWS + BLANK_ROWS):
        values = {f: " ".join(str(form.get(f"{f}_{n}", "")).split()) for f in FIELDS[name]}
        if f"{FIELDS[name][0]}_{n}" not in form:
            break
        line = form.get(f"line_{n}", "")
        if form.get(f"remove_{n}") or not _filled(values):
            values = dict.fromkeys(values, "")
        rows.append(values | {"line": line})
    return rows


# -- placeholders ------------------------------------------------------------------


def _keyed_rows(text: str, keys: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        data = load_yaml(text) or {}
    except Exception:  # noqa: BLE001 - the file itself is shown with its error
        return []
    if not isinstance(data, dict):
        return []
    rows = []
    for key, info in data.items():
        info = info if isinstance(info, dict) else {}
        rows.append({"name": str(key), **{f: "" if info.get(f) is None else str(info[f])
                                          for f in keys}})
    return rows


def _keyed_text(original: str, rows: list[dict[str, str]], keys: tuple[str, ...],
               what: str) -> str:
    head = []
    for line in original.splitlines():  # the opening comments say how the file works
        if not line.startswith("#"):
            break
        head.append(line)
    seen, lines = set(), []
    for row in rows:
        name = row.get("name", "")
        if not _filled(row):
            continue
        if not name:
            raise RowError(f"{what.capitalize()} labelled “{row.get('label') or row.get(keys[-1])}”"
                           " has no name: give it one (letters, digits and _), or remove the row.")
        if not PLACEHOLDER_NAME.fullmatch(name):
            raise RowError(f"“{name}” cannot be {what}'s name: use letters, digits and "
                           "_ only, starting with a letter (order_number).")
        if name in seen:
            raise RowError(f"“{name}” is there twice: keep one row for it.")
        seen.add(name)
        info = {f: _plain(row[f]) for f in keys if row.get(f)}
        lines.append(yaml.safe_dump({name: info}, default_flow_style=None, allow_unicode=True,
                                    sort_keys=False, width=10_000).strip())
    return "\n".join(head + lines) + "\n"


def _filled(row: dict[str, str]) -> bool:
    """A row holds something typed (a fact's type is a choice that always has a value)."""
    return any(v for k, v in row.items() if k not in ("type", "line"))


def _plain(value: str):
    """A number stays a number in the file (value: 5), anything else is text."""
    return int(value) if re.fullmatch(r"[1-9]\d{0,8}", value) else value


# -- synonyms ----------------------------------------------------------------------------


def _synonym_rows(text: str) -> list[dict[str, str]]:
    rows = []
    for number, line in enumerate(text.splitlines()):
        words = line.split("#", 1)[0].strip()
        if words:
            rows.append({"words": ", ".join(w.strip() for w in words.split(",") if w.strip()),
                         "line": str(number)})
    return rows


def _synonyms_text(original: str, rows: list[dict[str, str]]) -> str:
    lines = original.splitlines()
    kept: dict[int, str] = {}
    added = []
    for row in rows:
        words = [w.strip() for w in row.get("words", "").split(",") if w.strip()]
        if any("#" in w for w in words):
            raise RowError(f"“{row['words']}”: a word cannot hold #, which starts a comment.")
        if len(words) == 1:
            raise RowError(f"“{words[0]}” alone is no group: add the words customers use "
                           "for the same thing, separated by commas, or remove the row.")
        text = ", ".join(words)
        line = row.get("line", "")
        if re.fullmatch(r"\d+", line or "") and int(line) < len(lines):
            kept[int(line)] = text
        elif text:
            added.append(text)
    out = []
    for number, line in enumerate(lines):
        comment = line.split("#", 1)[1] if "#" in line else None
        if not line.split("#", 1)[0].strip():  # a comment or a blank line: as it was
            out.append(line)
        elif kept.get(number):
            out.append(kept[number] + (f"  #{comment}" if comment is not None else ""))
    return "\n".join(out + added).rstrip("\n") + "\n"
