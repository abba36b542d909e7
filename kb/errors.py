"""The base of every error kb explains to a person.

Each one carries a message that says what to do; the command line prints that
message and exits 1 instead of showing a traceback."""

from __future__ import annotations


class KbError(Exception):
    """A problem a person can fix; str(error) says how."""
