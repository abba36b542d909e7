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

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class NoAliasLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # the C build when present
    """The safe loader, refusing YAML aliases (`*name`, and `<<: *name` merges).

    An alias repeats a node; nested aliases repeat it exponentially ("billion
    laughs": a few hundred bytes that expand to gigabytes). Nothing in an entry
    or a sheet file needs one. The parser hands the same node object to the
    constructor once per use, so a node met twice means an alias."""

    def construct_document(self, node):
        self._kb_seen: set[int] = set()
        return super().construct_document(node)

    def construct_object(self, node, deep=False):
        seen = getattr(self, "_kb_seen", None)
        if seen is None:
            seen = self._kb_seen = set()
        if id(node) in seen:
            raise yaml.constructor.ConstructorError(
                None, None, "it uses a YAML alias (*name); write the value out instead",
                node.start_mark)
        seen.add(id(node))
        return super().construct_object(node, deep)


def _timestamp_or_text(loader, node):
    """A date YAML cannot build (2024-13-45) stays text, for the field's own check."""
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError:
        return loader.construct_scalar(node)


NoAliasLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_or_text)


def load_yaml(text: str) -> Any:
    """Safe YAML without aliases: how every file of the sheet is read."""
    return yaml.load(text, Loader=NoAliasLoader)

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
    # problems found reading the file that did not stop it being read (see parse_entry)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def published(self) -> bool:
        return self.status == "published"

    @property
    def chat(self) -> str:
        """The short version for chat and SMS (front matter `chat:`), or ''."""
        value = self.extra.get("chat")
        return value.strip() if isinstance(value, str) else ""

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
            "chat": self.chat,
            "links": [i for i in self.extra.get("links") or [] if isinstance(i, dict)],
            "files": [f for f in self.extra.get("files") or [] if isinstance(f, str)],
            "version": self.version,
        }


def review_due(entry: Entry) -> dt.date | None:
    """The date the entry is due for review, if it has an interval."""
    if entry.last_reviewed is None or not entry.review_every_days:
        return None
    try:
        return entry.last_reviewed + dt.timedelta(days=entry.review_every_days)
    except (OverflowError, TypeError, ValueError):  # values parse_entry did not check
        return None


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


# Ranges a real sheet stays within. Dates and intervals outside them are typing
# mistakes (9999-12-31, 999999999 days) that would also overflow date sums.
MAX_REVIEW_DAYS = 3650  # ten years
EARLIEST_REVIEW = dt.date(1970, 1, 1)
MAX_DEPTH = 10  # nesting of lists and mappings in the front matter
# One entry file, front matter and all. The longest starter entry is under 3 KB; a
# bigger file is a paste gone wrong, and would slow every search that finds it.
MAX_ENTRY_BYTES = 64 * 1024


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()] + [level + 1])
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value] + [level + 1])
    return level


def _scalar(value: Any, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise EntryError(f"'{name}' must be a single line of text, not a list or mapping")
    return str(value).strip()


def _str_list(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\n]", value)]
    if not isinstance(value, list):
        raise EntryError(f"'{name}' must be a list")
    for item in value:
        if isinstance(item, (dict, list)):
            raise EntryError(f"'{name}' must be a list of short texts, one per line")
    return tuple(str(v).strip() for v in value if v is not None and str(v).strip())


def check_last_reviewed(value: Any, today: dt.date | None = None) -> dt.date | None:
    """The review date from a file or a form; EntryError if it is not a plausible date."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    elif isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise EntryError(
                f"last_reviewed '{value.strip()[:40]}' is not a date: write it as YYYY-MM-DD"
            ) from None
    elif not isinstance(value, dt.date):
        raise EntryError("last_reviewed must be a date written as YYYY-MM-DD")
    latest = (today or dt.date.today()) + dt.timedelta(days=1)  # a day's grace for time zones
    if not EARLIEST_REVIEW <= value <= latest:
        raise EntryError(f"last_reviewed {value.isoformat()} is not a real review date: "
                         f"give a date from {EARLIEST_REVIEW.isoformat()} to today")
    return value


def check_review_every(value: Any) -> int | None:
    """The review interval from a file or a form; EntryError unless 1 to 3650 days."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        digits = value.strip().lstrip("0") or "0"
        value = int(digits) if len(digits) <= 9 else 10 ** 9  # never int() a huge string
    if isinstance(value, bool) or not isinstance(value, int):
        shown = str(value).strip()[:40]
        raise EntryError(f"review_every_days '{shown}' is not a whole number of days")
    if value == 0:  # 0 has always meant "no fixed interval"
        return None
    if not 1 <= value <= MAX_REVIEW_DAYS:
        shown = f"{value}" if abs(value) < 10 ** 9 else "with so many digits"
        raise EntryError(f"review_every_days {shown} is out of range: give 1 to "
                         f"{MAX_REVIEW_DAYS} days (ten years), or leave it empty")
    return value


def parse_entry(slug: str, text: str, version: str | None = None, *,
                lenient: bool = False) -> Entry:
    """Read an entry file. Raises EntryError naming the problem.

    Every field's type and range is checked. Written by the app (every save,
    proposal and import), any problem refuses the file. Read back from the
    repository (`lenient`, where a `git push` may have put anything), a bad
    review date or interval is dropped and listed in `warnings` instead, so
    the entry stays in the sheet while its file names the problem."""
    size = len(text.encode("utf-8", "replace"))
    if size > MAX_ENTRY_BYTES:
        raise EntryError(f"it is {size / 1024:,.0f} KB; an entry is at most "
                         f"{MAX_ENTRY_BYTES // 1024} KB. Shorten the answer, or split it into "
                         "entries for each situation")
    front_text, body = split_front_matter(text)
    try:
        meta = load_yaml(front_text) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (front matter line {where.line + 1})" if where else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise EntryError(f"the front matter is not valid YAML{line}: {problem}") from None
    except Exception as exc:  # e.g. an integer too long for Python to convert
        raise EntryError(f"the front matter cannot be read: {str(exc)[:200]}") from None
    if not isinstance(meta, dict):
        raise EntryError("the front matter must be 'name: value' lines")
    if _depth(meta) > MAX_DEPTH:
        raise EntryError(f"the front matter is nested more than {MAX_DEPTH} levels deep")
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        raise EntryError("it has no 'title:' (the complaint as an agent would name it)")
    status = _scalar(meta.get("status"), "status").lower() or "published"
    if status not in STATUSES:
        raise EntryError(f"status '{status[:40]}' is not one of: {', '.join(STATUSES)}")
    warnings: list[str] = []

    def checked(check, value):
        """A bad review field refuses a write; read leniently (a pushed file) it is
        dropped and named, so the entry stays in search."""
        try:
            return check(value)
        except EntryError as exc:
            if not lenient:
                raise
            warnings.append(f"{exc}; it is ignored until fixed")
            return None

    chat = meta.get("chat")
    if chat is not None and not isinstance(chat, str):
        raise EntryError("'chat:' is the short chat and SMS version: write it as text")
    from kb.attachments import AttachmentError, check_files, check_links

    try:
        check_links(meta.get("links"))
        check_files(meta.get("files"))
    except AttachmentError as exc:
        raise EntryError(str(exc)) from None
    reviewed = checked(check_last_reviewed, meta.get("last_reviewed"))
    interval = checked(check_review_every, meta.get("review_every_days"))
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
        category=_scalar(meta.get("category"), "category"),
        status=status,
        owner=_scalar(meta.get("owner"), "owner"),
        last_reviewed=reviewed,
        review_every_days=interval,
        extra={k: v for k, v in meta.items() if k not in KNOWN_FIELDS},
        version=version,
        warnings=tuple(warnings),
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
    try:
        front = yaml.dump(meta, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") from a JSON body, say
        raise EntryError("a field holds a character that is not text; retype it") from None
    text = f"---\n{front}---\n{entry.answer.strip()}\n"
    if entry.phone.strip():
        text += f"\n{PHONE_HEADING}\n\n{entry.phone.strip()}\n"
    return text


def entry_from_fields(slug: str, fields: dict[str, str], base: Entry | None = None) -> Entry:
    """Build an entry from an edit form's fields, keeping what the form does not show."""

    def lines(name: str) -> tuple[str, ...]:
        return tuple(x.strip() for x in fields.get(name, "").splitlines() if x.strip())

    reviewed = fields.get("last_reviewed", "").strip()
    reviewed_date = check_last_reviewed(reviewed) if reviewed else (
        base.last_reviewed if base else None)
    interval = fields.get("review_every_days", "").strip()
    if interval and not interval.isdigit():
        raise EntryError("review every … days must be a whole number")
    interval_days = check_review_every(interval) if interval else (
        base.review_every_days if base else None)
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
        review_every_days=interval_days,
        extra=_with_links(_with_chat(dict(base.extra) if base else {}, fields), fields),
    )


def _with_links(extra: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    """The form's links ("label | address" lines) into the front matter's `links:`."""
    if "links" in fields:
        from kb.attachments import AttachmentError, parse_links

        try:
            links = parse_links(fields["links"])
        except AttachmentError as exc:
            raise EntryError(str(exc)) from None
        if links:
            extra["links"] = links
        else:
            extra.pop("links", None)
    return extra


def _with_chat(extra: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    """The form's chat version into the front matter's `chat:` (gone when emptied)."""
    if "chat" in fields:
        chat = " ".join(fields["chat"].replace("\r\n", "\n").split())
        if chat:
            extra["chat"] = chat
        else:
            extra.pop("chat", None)
    return extra


def fields_of(entry: Entry) -> dict[str, str]:
    """The edit form's fields for an entry (the inverse of entry_from_fields)."""
    return {
        "title": entry.title, "phrasings": "\n".join(entry.phrasings),
        "tags": ", ".join(entry.tags), "category": entry.category, "status": entry.status,
        "owner": entry.owner,
        "last_reviewed": entry.last_reviewed.isoformat() if entry.last_reviewed else "",
        "review_every_days": str(entry.review_every_days or ""),
        "answer": entry.answer.strip(), "phone": entry.phone.strip(), "chat": entry.chat,
        "links": "\n".join(f"{i.get('label') or i.get('url')} | {i.get('url')}"
                           for i in entry.extra.get("links") or [] if isinstance(i, dict)),
    }


# -- changing a file without rewriting it -------------------------------------------------
#
# A form edit changes a few fields; the file on disk keeps its comments, key order, list
# style and quoting for everything else, so the diff shows only what the person changed.

DEFAULT_REVIEW_DAYS = 180
_KEY_LINE = re.compile(r"^([A-Za-z_][\w-]*)\s*:")


def _yaml_scalar(value: Any) -> str:
    """One YAML value as it would appear inside a flow list (quoted only when needed)."""
    try:
        text = yaml.dump([value], Dumper=_Dumper, default_flow_style=True, allow_unicode=True,
                         width=10**6).strip()
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") from a JSON body, say
        raise EntryError("a field holds a character that is not text; retype it") from None
    return text[1:-1]


def _render_field(key: str, value: Any, old_lines: list[str]) -> list[str]:
    """`key: value` lines for a new value, in the style the old lines used."""
    if value is None or value == "" and key in ("last_reviewed", "review_every_days"):
        return []
    if isinstance(value, (list, tuple)):
        first = old_lines[0] if old_lines else ""
        after = first.split(":", 1)[1].strip() if ":" in first else ""
        if after.startswith("[") or (not old_lines and len(value) <= 4 and key == "tags"):
            return [f"{key}: [" + ", ".join(_yaml_scalar(v) for v in value) + "]"]
        indent = "  "
        for line in old_lines[1:]:
            stripped = line.lstrip(" ")
            if stripped.startswith("- "):
                indent = line[: len(line) - len(stripped)]
                break
        if not value:
            return [f"{key}: []"]
        return [f"{key}:"] + [f"{indent}- {_yaml_scalar(v)}" for v in value]
    if isinstance(value, dict):
        try:
            return yaml.dump({key: value}, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                             width=100).rstrip("\n").split("\n")
        except UnicodeEncodeError:
            raise EntryError("a field holds a character that is not text; retype it") from None
    return [f"{key}: {_yaml_scalar(value)}"]


def _meta_of(entry: Entry) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "title": entry.title, "phrasings": list(entry.phrasings), "tags": list(entry.tags),
        "category": entry.category, "status": entry.status, "owner": entry.owner,
        "last_reviewed": entry.last_reviewed, "review_every_days": entry.review_every_days,
    }
    meta.update(entry.extra)
    return meta


def update_text(original: str, old: Entry, new: Entry) -> str:
    """The original file with only the fields that differ between old and new rewritten.

    Falls back to a fresh serialisation when the original cannot be taken apart."""
    try:
        front, body = split_front_matter(original)
    except EntryError:
        return serialize_entry(new)
    lead = original[: original.index("---")]  # a byte-order mark, if any
    blocks: list[tuple[str | None, list[str]]] = []  # (key or None, lines)
    for line in front.split("\n") if front else []:
        match = _KEY_LINE.match(line)
        if match:
            blocks.append((match.group(1), [line]))
        elif blocks and (line.startswith((" ", "\t", "-")) or not line.strip()) \
                and blocks[-1][0] is not None:
            blocks[-1][1].append(line)
        else:
            blocks.append((None, [line]))
    before, after = _meta_of(old), _meta_of(new)
    changed = [k for k in after if after[k] != before.get(k)]
    changed += [k for k in before if k not in after]
    seen = set()
    out_blocks: list[list[str]] = []
    for key, lines in blocks:
        if key is not None and key in changed and key not in seen:
            seen.add(key)
            trailing = []
            while len(lines) > 1 and not lines[-1].strip():  # keep blank lines after it
                trailing.insert(0, lines.pop())
            out_blocks.append(_render_field(key, after.get(key), lines) + trailing)
        else:
            out_blocks.append(lines)
    for key in changed:
        if key not in seen and key in after:
            value = after[key]
            if value in (None, "", [], ()):
                continue
            out_blocks.append(_render_field(key, value, []))
    front_out = "\n".join(line for block in out_blocks for line in block)
    body_out = _update_body(body, old, new)
    closing = original.split("\n")[len(front.split("\n")) + 1 if front else 1]
    return f"{lead}---\n{front_out}\n{closing}\n{body_out}" if front_out else \
        f"{lead}---\n{closing}\n{body_out}"


def _update_body(body: str, old: Entry, new: Entry) -> str:
    same_answer = old.answer.strip() == new.answer.strip()
    same_phone = old.phone.strip() == new.phone.strip()
    if same_answer and same_phone:
        return body
    match = _PHONE_RE.search(body)
    if match:
        answer_part, heading, phone_part = body[: match.start()], match.group(0), \
            body[match.end():]
    else:
        answer_part, heading, phone_part = body, "", ""
    if not same_answer:
        lead = answer_part[: len(answer_part) - len(answer_part.lstrip())]
        gap = answer_part[len(answer_part.rstrip()):] if heading else "\n"
        answer_part = lead + new.answer.strip() + (gap or "\n\n")
    if not same_phone:
        if not new.phone.strip():
            heading, phone_part = "", ""
            answer_part = answer_part.rstrip() + "\n"
        else:
            if not heading:
                answer_part = answer_part.rstrip() + "\n\n"
                heading = PHONE_HEADING
            gap = phone_part[: len(phone_part) - len(phone_part.lstrip())] or "\n\n"
            phone_part = gap + new.phone.strip() + "\n"
    return answer_part + heading + phone_part


def with_review_defaults(entry: Entry, owner: str, today: dt.date | None = None) -> Entry:
    """A new entry gets an owner and a review date, so it falls due like the others."""
    return replace(
        entry, owner=entry.owner or owner,
        last_reviewed=entry.last_reviewed or today or dt.date.today(),
        review_every_days=entry.review_every_days or DEFAULT_REVIEW_DAYS,
    )
