"""One cheat-sheet entry: a Markdown file with YAML front matter.

The body holds the email answer, then a `## On the phone` section with the
talking points. Parsing never evaluates anything: front matter goes through
the safe YAML loader and the body stays plain text.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from kb.errors import KbError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C build of the safe loader
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

PHONE_HEADING = "## On the phone"
_PHONE_RE = re.compile(r"^##\s+on the phone\s*$", re.IGNORECASE | re.MULTILINE)
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
STATUSES = ("published", "draft", "retired")
KNOWN_FIELDS = (
    "title", "phrasings", "tags", "category", "status", "owner",
    "last_reviewed", "review_every_days",
)


class EntryError(KbError, ValueError):
    """An entry file that cannot be read; the message says what to fix."""


@dataclass(frozen=True)
class Entry:
    slug: str
    title: str
    answer: str
    phone: str = ""
    phrasings: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    category: str = ""
    status: str = "published"
    owner: str = ""
    last_reviewed: dt.date | None = None
    review_every_days: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    version: str | None = field(default=None, compare=False)  # blob id in the store

    @property
    def published(self) -> bool:
        return self.status == "published"

    def with_version(self, version: str | None) -> Entry:
        return replace(self, version=version)

    def to_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "title": self.title,
            "phrasings": list(self.phrasings),
            "tags": list(self.tags),
            "category": self.category,
            "status": self.status,
            "owner": self.owner,
            "last_reviewed": self.last_reviewed.isoformat() if self.last_reviewed else None,
            "review_every_days": self.review_every_days,
            "answer": self.answer,
            "phone": self.phone,
            "version": self.version,
        }


def review_due(entry: Entry) -> dt.date | None:
    """The date the entry is due for review, if it has an interval."""
    if entry.last_reviewed is None or not entry.review_every_days:
        return None
    return entry.last_reviewed + dt.timedelta(days=entry.review_every_days)


def entry_overdue(entry: Entry, today: dt.date | None = None) -> str | None:
    """The ISO date since when the entry is overdue for review, or None."""
    due = review_due(entry)
    if due is not None and due < (today or dt.date.today()):
        return due.isoformat()
    return None


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:60].rstrip("-") or "entry"


def split_front_matter(text: str) -> tuple[str, str]:
    text = text.lstrip("\ufeff")
    if not text.startswith("---"):
        raise EntryError("it does not start with a '---' line opening the front matter")
    lines = text.split("\n")
    if lines[0].strip() != "---":
        raise EntryError("the first line must be exactly '---'")
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1:])
    raise EntryError("the front matter is never closed: add a '---' line after it")


def _str_list(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\n]", value)]
    if not isinstance(value, list):
        raise EntryError(f"'{name}' must be a list")
    return tuple(str(v).strip() for v in value if v is not None and str(v).strip())


def parse_entry(slug: str, text: str, version: str | None = None) -> Entry:
    """Read an entry file. Raises EntryError naming the problem."""
    front_text, body = split_front_matter(text)
    try:
        meta = yaml.load(front_text, Loader=_Loader) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (front matter line {where.line + 1})" if where else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise EntryError(f"the front matter is not valid YAML{line}: {problem}") from None
    if not isinstance(meta, dict):
        raise EntryError("the front matter must be 'name: value' lines")
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        raise EntryError("it has no 'title:' (the complaint as an agent would name it)")
    status = str(meta.get("status") or "published").strip().lower()
    if status not in STATUSES:
        raise EntryError(f"status '{status}' is not one of: {', '.join(STATUSES)}")
    reviewed = meta.get("last_reviewed")
    if isinstance(reviewed, dt.datetime):
        reviewed = reviewed.date()
    elif isinstance(reviewed, str) and reviewed.strip():
        try:
            reviewed = dt.date.fromisoformat(reviewed.strip())
        except ValueError:
            raise EntryError(
                f"last_reviewed '{reviewed}' is not a date: write it as YYYY-MM-DD"
            ) from None
    elif not isinstance(reviewed, dt.date):
        reviewed = None
    interval = meta.get("review_every_days")
    if interval is not None:
        try:
            interval = int(interval)
        except (TypeError, ValueError):
            raise EntryError("review_every_days must be a whole number of days") from None
    answer, phone = split_body(body)
    if not answer.strip():
        raise EntryError("the answer is empty: write the email answer below the front matter")
    return Entry(
        slug=slug,
        title=title.strip(),
        answer=answer,
        phone=phone,
        phrasings=_str_list(meta.get("phrasings"), "phrasings"),
        tags=tuple(t.lower() for t in _str_list(meta.get("tags"), "tags")),
        category=str(meta.get("category") or "").strip(),
        status=status,
        owner=str(meta.get("owner") or "").strip(),
        last_reviewed=reviewed,
        review_every_days=interval,
        extra={k: v for k, v in meta.items() if k not in KNOWN_FIELDS},
        version=version,
    )


def split_body(body: str) -> tuple[str, str]:
    match = _PHONE_RE.search(body)
    if not match:
        return body.strip() + "\n", ""
    return body[: match.start()].strip() + "\n", body[match.end():].strip() + "\n"


def serialize_entry(entry: Entry) -> str:
    meta: dict[str, Any] = {"title": entry.title, "phrasings": list(entry.phrasings)}
    meta["tags"] = list(entry.tags)
    meta["category"] = entry.category
    meta["status"] = entry.status
    meta["owner"] = entry.owner
    if entry.last_reviewed:
        meta["last_reviewed"] = entry.last_reviewed
    if entry.review_every_days:
        meta["review_every_days"] = entry.review_every_days
    meta.update(entry.extra)
    front = yaml.dump(meta, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    text = f"---\n{front}---\n{entry.answer.strip()}\n"
    if entry.phone.strip():
        text += f"\n{PHONE_HEADING}\n\n{entry.phone.strip()}\n"
    return text


def entry_from_fields(slug: str, fields: dict[str, str], base: Entry | None = None) -> Entry:
    """Build an entry from an edit form's fields, keeping what the form does not show."""

    def lines(name: str) -> tuple[str, ...]:
        return tuple(x.strip() for x in fields.get(name, "").splitlines() if x.strip())

    reviewed = fields.get("last_reviewed", "").strip()
    try:
        reviewed_date = dt.date.fromisoformat(reviewed) if reviewed else (
            base.last_reviewed if base else None)
    except ValueError:
        raise EntryError(f"'{reviewed}' is not a date: write it as YYYY-MM-DD") from None
    interval = fields.get("review_every_days", "").strip()
    if interval and not interval.isdigit():
        raise EntryError("review every … days must be a whole number")
    status = fields.get("status") or (base.status if base else "published")
    if status not in STATUSES:
        raise EntryError(f"status '{status}' is not one of: {', '.join(STATUSES)}")
    title = fields.get("title", "").strip()
    if not title:
        raise EntryError("the title is empty: name the complaint as an agent would")
    answer = fields.get("answer", "").replace("\r\n", "\n").strip()
    if not answer:
        raise EntryError("the answer is empty: write the email answer")
    return Entry(
        slug=slug, title=title, answer=answer + "\n",
        phone=fields.get("phone", "").replace("\r\n", "\n").strip() + "\n",
        phrasings=lines("phrasings"),
        tags=tuple(t.strip().lower() for t in re.split(r"[,;]", fields.get("tags", ""))
                   if t.strip()),
        category=fields.get("category", "").strip(),
        status=status,
        owner=fields.get("owner", base.owner if base else "").strip(),
        last_reviewed=reviewed_date,
        review_every_days=int(interval) if interval else (base.review_every_days if base else None),
        extra=dict(base.extra) if base else {},
    )


def fields_of(entry: Entry) -> dict[str, str]:
    """The edit form's fields for an entry (the inverse of entry_from_fields)."""
    return {
        "title": entry.title, "phrasings": "\n".join(entry.phrasings),
        "tags": ", ".join(entry.tags), "category": entry.category, "status": entry.status,
        "owner": entry.owner,
        "last_reviewed": entry.last_reviewed.isoformat() if entry.last_reviewed else "",
        "review_every_days": str(entry.review_every_days or ""),
        "answer": entry.answer.strip(), "phone": entry.phone.strip(),
    }
