"""Plain-text helpers shared by the places that put people's words on one line."""

from __future__ import annotations


def single_line(text: str | None) -> str:
    """`text` on one line: line breaks and other control characters become spaces and
    every run of white space is one space (for mail headers, git identities, names)."""
    return " ".join("".join(" " if ord(c) < 32 or ord(c) == 127 else c
                            for c in text or "").split())
