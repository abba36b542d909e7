"""What the entry form shows beside its fields: the answer and talking points as
agents will see them, and the answer checks, for the text as typed now.

The same function serves the live preview (JSON, while typing) and the page
itself (after a submit, or without JavaScript), so both say the same thing.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass

from markupsafe import Markup

from kb.checks import Finding, Rules, check_entry, check_names
from kb.compose import render_filled
from kb.entry import MAX_ENTRY_BYTES, Entry
from kb.facts import contradictions


@dataclass
class Preview:
    answer_html: Markup
    phone_html: Markup
    findings: list[Finding]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    def to_dict(self) -> dict:
        return {"answer_html": str(self.answer_html), "phone_html": str(self.phone_html),
                "findings": [asdict(f) for f in self.findings],
                "errors": len(self.errors), "warnings": len(self.warnings)}


class TooLong(ValueError):
    """More text than one entry file may hold."""


def preview_fields(fields: dict[str, str], rules: Rules | None,
                   known: set[str] | None, names: dict[str, list[str]] | None = None,
                   facts: dict | None = None) -> Preview:
    """The preview for a form's title, answer and phone. Nothing is required here:
    a half-typed form is previewed as it stands. `names`: the sheet's categories and
    tags, to warn of a new one that looks like one of them."""
    title, answer, phone = (str(fields.get(k) or "").replace("\r\n", "\n")
                            for k in ("title", "answer", "phone"))
    if len((title + answer + phone).encode("utf-8", "replace")) > MAX_ENTRY_BYTES:
        raise TooLong(f"An entry holds at most {MAX_ENTRY_BYTES // 1024} KB of text; "
                      "shorten the answer.")
    entry = Entry(slug="preview", title=title.strip(), answer=answer.strip() + "\n",
                  phone=phone.strip() + "\n" if phone.strip() else "")
    findings = check_entry(entry, rules, known)
    if facts:
        findings += contradictions(entry, facts)
    if names is not None:
        tags = [t.strip().lower() for t in re.split(r"[,;]", str(fields.get("tags") or ""))]
        findings += check_names(str(fields.get("category") or "").strip(),
                                [t for t in tags if t], names.get("categories", []),
                                names.get("tags", []))
    # placeholders show as cues, as on the entry page before anything is filled in;
    # facts show their values, as everywhere
    filled = {n: f.value for n, f in (facts or {}).items()}
    return Preview(render_filled(entry.answer, filled), render_filled(entry.phone, filled),
                   findings)


def _key(f: Finding) -> tuple:
    # not the message: it may name a number (seconds, grade) that moves with every word
    return (f.check, f.field, f.excerpt)


def new_errors(findings: list[Finding], before: list[Finding]) -> list[Finding]:
    """The errors a proposal would add: those the entry did not already have, so a small
    fix to an entry is never refused for a problem someone else left in it."""
    left = Counter(_key(f) for f in before if f.level == "error")
    added = []
    for f in findings:
        if f.level != "error":
            continue
        if left[_key(f)]:
            left[_key(f)] -= 1
        else:
            added.append(f)
    return added
