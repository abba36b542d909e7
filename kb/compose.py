"""Turning an entry into a finished email: plain text substitution, never a template.

Placeholders look like `{{ customer_name }}`. They are replaced in one pass of
a regular expression from the values the agent typed, so a value that itself
contains `{{ ... }}` or any template syntax comes out literally. A placeholder
with no value stays visible and is reported as missing.

A placeholder may carry a fallback after a bar, `{{ item | your order }}`: the
words after the bar are used, as written, when the agent leaves the field empty,
so that placeholder is never missing. The fallback is plain text, part of the
same regular expression; nothing in it is evaluated.

A placeholder left empty is never shown with its braces: the email, the phone
points, the subject and every copy of them show a readable cue in square
brackets, its label from the sheet ("[Number of days]"), and the email lists it
as missing, so Copy, "Open in mail app" and "Download .eml" can ask for it.
"""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from urllib.parse import quote

from markupsafe import Markup

from kb.attachments import files_of, links_of
from kb.entry import Entry
from kb.render import to_html
from kb.text import single_line

# group 1: the name; group 2: the optional fallback after "|" (no braces, one line)
PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|\s*([^{}|\n]*?)\s*)?\}\}")
PLACEHOLDER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_VALUE_CHARS = 500


def placeholders_in(*texts: str) -> list[str]:
    """Placeholder names in order of first appearance."""
    seen: dict[str, None] = {}
    for text in texts:
        for match in PLACEHOLDER_RE.finditer(text or ""):
            seen.setdefault(match.group(1), None)
    return list(seen)


def one_line(text: str) -> str:
    """Text for a one-line place (a mail header such as the subject): every run of
    white space or control characters is one space, and an RFC 2047 encoded word a
    user wrote ("=?utf-8?q?...?=") is defused, since Python's email package may decode
    it while refolding and put its line breaks into the headers (CVE-2024-6923)."""
    return single_line((text or "").replace("=?", "= ?"))


def clean_values(values: dict[str, object] | None) -> dict[str, str]:
    """Keep string values for well-formed names; trim whitespace and length."""
    out = {}
    for name, value in (values or {}).items():
        if not isinstance(name, str) or not PLACEHOLDER_NAME.fullmatch(name):
            continue
        if value is None:
            continue
        text = " ".join(str(value).split())[:MAX_VALUE_CHARS]
        if text:
            out[name] = text
    return out


def fallbacks_in(*texts: str) -> dict[str, str]:
    """The fallback written for each placeholder name (the first one, if several)."""
    out: dict[str, str] = {}
    for text in texts:
        for match in PLACEHOLDER_RE.finditer(text or ""):
            if match.group(2):
                out.setdefault(match.group(1), match.group(2))
    return out


def missing_in(names: list[str], values: dict[str, str], *texts: str) -> list[str]:
    """Names with no value where some use of them in the texts has no fallback either."""
    bare = {m.group(1) for text in texts for m in PLACEHOLDER_RE.finditer(text or "")
            if not m.group(2)}
    return [n for n in names if n not in values and n in bare]


def label_of(name: str, labels: dict[str, str] | None = None) -> str:
    """What a person calls a placeholder: its label on the sheet, else its name in words."""
    return ((labels or {}).get(name) or name.replace("_", " ").strip().capitalize()
            or name)


def cue(name: str, labels: dict[str, str] | None = None) -> str:
    """The readable mark of a value still to fill: "[Number of days]"."""
    return f"[{label_of(name, labels)}]"


def fill(text: str, values: dict[str, str], escape=None,
         labels: dict[str, str] | None = None) -> str:
    """Replace each placeholder that has a value (or a fallback); the others become
    readable cues ("[Order number]") when `labels` is given, else stay as written."""

    def repl(match: re.Match) -> str:
        value = values.get(match.group(1))
        if value is None:
            value = match.group(2)
        if not value:
            return match.group(0) if labels is None else cue(match.group(1), labels)
        return escape(value) if escape else value

    return PLACEHOLDER_RE.sub(repl, text)


@dataclass
class Email:
    subject: str
    text: str
    html: Markup
    missing: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "subject": self.subject, "text": self.text, "html": str(self.html),
            "missing": self.missing, "placeholders": self.placeholders,
        }

    def mailto(self, to: str = "") -> str:
        return f"mailto:{quote(to)}?subject={quote(self.subject)}&body={quote(self.text)}"

    def to_eml(self, sender: str = "", to: str = "",
               files: list[tuple[str, bytes, str]] = ()) -> bytes:
        """A draft mail file, with the answer's files attached (name, bytes, type). A
        header is one line: line breaks in the subject fold into spaces; an address
        with a line break is refused (it could add headers)."""
        if any(c in (sender + to) for c in "\r\n"):
            raise ValueError("An email address cannot contain a line break.")
        msg = EmailMessage(policy=SMTP)
        msg["Subject"] = one_line(self.subject)
        if sender:
            msg["From"] = sender
        if to:
            msg["To"] = to
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain="kb.local")
        msg["X-Unsent"] = "1"  # mail programs open it as a draft ready to send
        msg.set_content(self.text)
        msg.add_alternative(f"<!doctype html><html><body>{self.html}</body></html>", subtype="html")
        for name, data, mimetype in files:
            maintype, subtype = mimetype.split("/", 1)
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
        return msg.as_bytes()


def _marker_tag(text: str) -> str:
    """A random tag that does not occur in `text`, so a marker built from it can
    never be confused with anything the entry's author wrote."""
    while True:
        tag = "kb" + secrets.token_hex(6)
        if tag not in text:
            return tag


def render_filled(markdown_text: str, values: dict[str, str],
                  labels: dict[str, str] | None = None) -> Markup:
    """Render Markdown with placeholders kept out of the Markdown parser's reach,
    then put the escaped values (or a flagged, readable cue) into the safe HTML."""
    names: list[tuple[str, str | None]] = []
    # Invisible separators around a per-call tag: Markdown leaves them alone.
    tag = _marker_tag(markdown_text)

    def hide(match: re.Match) -> str:
        names.append((match.group(1), match.group(2)))
        return f"\u2063{tag}-{len(names) - 1}\u2063"

    rendered = str(to_html(PLACEHOLDER_RE.sub(hide, markdown_text)))

    def show(match: re.Match) -> str:
        name, fallback = names[int(match.group(1))]
        if name in values:
            return html.escape(values[name])
        if fallback:  # copied as is: the customer sees ordinary words
            return html.escape(fallback)
        return (f'<mark class="missing" data-name="{html.escape(name)}">'
                f'{html.escape(cue(name, labels))}</mark>')

    return Markup(re.sub(f"\u2063{tag}-(\\d+)\u2063", show, rendered))


def compose(
    entry: Entry, greeting: str, closing: str, values: dict[str, object] | None,
    defaults: dict[str, str] | None = None, labels: dict[str, str] | None = None,
) -> Email:
    """Greeting + answer + closing with the values filled in; `labels`: the sheet's
    names for its placeholders, for the cues of those still empty."""
    labels = labels or {}
    filled_values = {k: v for k, v in (defaults or {}).items() if v}
    filled_values.update(clean_values(values))
    links = links_of(entry)  # after the answer: "label: address" in text, a link in HTML
    text_links = "\n".join(f"- {link.label}: {link.url}" for link in links)
    html_links = "\n".join(f"- {link.label}: <{link.url}>" for link in links)
    parts = [p.strip() for p in (greeting, entry.answer, text_links, closing) if p and p.strip()]
    source = "\n\n".join(parts)
    html_source = "\n\n".join(p.strip() for p in (greeting, entry.answer, html_links, closing)
                               if p and p.strip())
    names = placeholders_in(source, entry.title)
    missing = missing_in(names, filled_values, source, entry.title)
    # Markdown's two-space line breaks mean nothing in a pasted plain-text email.
    text = "\n".join(line.rstrip() for line in
                     fill(source, filled_values, labels=labels).splitlines()) + "\n"
    subject = one_line(fill(f"Re: {entry.title}", filled_values, labels=labels))
    return Email(
        subject=subject, text=text, html=render_filled(html_source, filled_values, labels),
        missing=missing, placeholders=names,
    )


def phone_script(opening: str, entry: Entry, values: dict[str, object] | None,
                 defaults: dict[str, str] | None = None, labels: dict[str, str] | None = None,
                 ) -> tuple[Markup, Markup, list[str]]:
    """The phone opening and the talking points, filled like the email: values,
    defaults and fallbacks spoken, a value still to give as a readable cue."""
    filled_values = {k: v for k, v in (defaults or {}).items() if v}
    filled_values.update(clean_values(values))
    missing = missing_in(placeholders_in(opening, entry.phone), filled_values, opening,
                         entry.phone)
    return (render_filled(opening, filled_values, labels),
            render_filled(entry.phone, filled_values, labels), missing)


@dataclass
class Chat:
    """The chat and SMS version: one short plain-text message."""

    text: str
    missing: list[str] = field(default_factory=list)
    limit: int = 320

    @property
    def length(self) -> int:
        return len(self.text)

    def to_dict(self) -> dict:
        return {"text": self.text, "missing": self.missing, "length": self.length,
                "limit": self.limit, "over": self.length > self.limit}


def compose_chat(entry: Entry, greeting: str, closing: str, values: dict[str, object] | None,
                 defaults: dict[str, str] | None = None, labels: dict[str, str] | None = None,
                 limit: int = 320) -> Chat | None:
    """The chat greeting, the entry's chat version and the chat closing, filled like the
    email, on one line each; None when the entry has no chat version."""
    if not entry.chat:
        return None
    filled_values = {k: v for k, v in (defaults or {}).items() if v}
    filled_values.update(clean_values(values))
    parts = [p.strip() for p in (greeting, entry.chat, closing) if p and p.strip()]
    source = "\n".join(parts)
    missing = missing_in(placeholders_in(source), filled_values, source)
    return Chat(fill(source, filled_values, labels=labels or {}), missing, limit)


MAX_TOGETHER = 4  # entries in one reply


def together(entries: list[Entry]) -> Entry:
    """Several entries as one reply, for a customer with more than one problem: the
    answers in order (one greeting and one closing go around them), the phone points
    under each title, the chat versions one after the other when each has one. A
    placeholder the answers share is one value."""
    if len(entries) == 1:
        return entries[0]
    first = entries[0]
    answer = "\n\n".join(e.answer.strip() for e in entries) + "\n"
    phone = "\n\n".join(f"**{e.title}**\n\n{e.phone.strip()}" for e in entries
                         if e.phone.strip())
    chats = [e.chat for e in entries]
    extra: dict = {"chat": " ".join(chats)} if all(chats) else {}
    links = [dict(label=link.label, url=link.url) for e in entries for link in links_of(e)]
    files = list(dict.fromkeys(f for e in entries for f in files_of(e)))
    if links:
        extra["links"] = links
    if files:
        extra["files"] = files
    return replace(first, title=" and ".join(e.title for e in entries), answer=answer,
                   phone=phone + "\n" if phone else "", extra=extra)
