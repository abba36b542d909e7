"""Links and small files that go with an answer.

An entry names them in its front matter:

    links:
      - {label: Returns form, url: 'https://shop.example/returns'}
    files: [returns-form.pdf]

Links are written into the email (text and formatted), files (a returns form as
PDF, say) live in the content repository under `_files/`, versioned like the rest,
offered beside the copy button and attached to the `.eml`. A file is checked by its
content (a PDF, PNG or JPEG whose bytes say so) and its size before it is saved, and
served as a download that no browser runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kb.entry import Entry

FILES_DIR = "_files/"
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_FILES = 5
MAX_LINKS = 10
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}\.(pdf|png|jpe?g)$")
# what each allowed type's bytes start with, and how it is served
TYPES = {
    "pdf": (b"%PDF-", "application/pdf"),
    "png": (b"\x89PNG\r\n\x1a\n", "image/png"),
    "jpg": (b"\xff\xd8\xff", "image/jpeg"),
    "jpeg": (b"\xff\xd8\xff", "image/jpeg"),
}
_URL = re.compile(r"^(?:https?://[^\s<>\"']+|mailto:[^\s<>\"']+)$")


class AttachmentError(ValueError):
    """A link or file that cannot go with an answer; the message says what to do."""


@dataclass(frozen=True)
class Link:
    label: str
    url: str


def links_of(entry: Entry) -> list[Link]:
    """The entry's links, as read (kb.entry refuses malformed ones on save)."""
    out = []
    for item in entry.extra.get("links") or []:
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            out.append(Link(str(item.get("label") or item["url"]).strip(), item["url"].strip()))
    return out


def files_of(entry: Entry) -> list[str]:
    return [f for f in entry.extra.get("files") or [] if isinstance(f, str)]


def parse_links(text: str) -> list[dict[str, str]]:
    """The form's links, one per line, "label | address" (or just the address)."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        label, bar, url = line.rpartition("|")
        label, url = (label.strip(), url.strip()) if bar else ("", line)
        if not _URL.match(url):
            raise AttachmentError(f"Link {number}: “{url[:80]}” is not an address: write "
                                  "“label | https://…” (or mailto:…).")
        out.append({"label": label or url, "url": url})
    if len(out) > MAX_LINKS:
        raise AttachmentError(f"{len(out)} links: an answer carries at most {MAX_LINKS}.")
    return out


def links_text(entry: Entry) -> str:
    return "\n".join(f"{link.label} | {link.url}" for link in links_of(entry))


def check_links(value) -> None:
    """The front matter's `links:`: a list of {label, url} with real addresses."""
    if value is None:
        return
    if not isinstance(value, list) or len(value) > MAX_LINKS:
        raise AttachmentError(f"'links:' is a list of at most {MAX_LINKS} "
                              "{label: ..., url: https://...}")
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str) \
                or not _URL.match(item["url"].strip()):
            raise AttachmentError("each link is {label: ..., url: https://...} (or mailto:)")


def check_files(value) -> None:
    if value is None:
        return
    if not isinstance(value, list) or len(value) > MAX_FILES or not all(
            isinstance(f, str) and NAME_RE.match(f) for f in value):
        raise AttachmentError(f"'files:' is a list of at most {MAX_FILES} file names "
                              "(lowercase, ending .pdf, .png or .jpg)")


def safe_name(filename: str) -> str:
    """A file's name in the repository, from the name it was uploaded with."""
    stem, _, ext = (filename or "").strip().lower().rpartition(".")
    stem = re.sub(r"[^a-z0-9]+", "-", stem).strip("-")[:60] or "file"
    name = f"{stem}.{ext}"
    if not NAME_RE.match(name):
        raise AttachmentError(f"“{filename[:80]}”: only PDF, PNG and JPEG files go with an "
                              "answer; save it as one of those.")
    return name


def check_upload(name: str, data: bytes) -> str:
    """The content type of an upload, when its bytes are what its name says."""
    if len(data) > MAX_FILE_BYTES:
        raise AttachmentError(f"“{name}” is {len(data) / 1024 / 1024:.1f} MB; a file that goes "
                              f"with an answer is at most {MAX_FILE_BYTES // 1024 // 1024} MB. "
                              "Make it smaller (a PDF printed at a lower quality, say).")
    if not data:
        raise AttachmentError(f"“{name}” is empty: choose the file again.")
    magic, mimetype = TYPES[name.rsplit(".", 1)[1]]
    if not data.startswith(magic):
        raise AttachmentError(f"“{name}” is not the {name.rsplit('.', 1)[1].upper()} file its "
                              "name says: save it as a real PDF, PNG or JPEG and upload it "
                              "again.")
    return mimetype


def mimetype_of(name: str) -> str:
    return TYPES[name.rsplit(".", 1)[1]][1]
