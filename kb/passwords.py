"""What makes a password acceptable: long enough and not one a guesser tries first."""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from pathlib import Path

from werkzeug.security import check_password_hash

MIN_PASSWORD = 10
_LIST = Path(__file__).with_name("common_passwords.txt")
_TAIL = re.compile(r"[\d\W_]+$")  # "password12", "qwerty!!" are their stem plus a tail


class PasswordError(ValueError):
    """The password is refused; the message says what to choose instead."""


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    lines = _LIST.read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip().lower() for w in lines if w.strip() and not w.startswith("#"))


def is_common(password: str) -> bool:
    lowered = password.lower()
    stem = _TAIL.sub("", lowered)
    common = common_passwords()
    return lowered in common or (len(stem) >= 3 and stem in common)


def check_new_password(password: str, username: str = "", current_hash: str | None = None) -> None:
    """Raise PasswordError for a password that is short, guessable or unchanged."""
    if len(password) < MIN_PASSWORD:
        raise PasswordError(f"Use a password of at least {MIN_PASSWORD} characters.")
    if len(set(password)) < 3:
        raise PasswordError("That password repeats one or two characters; use a few words "
                            "you will remember instead.")
    name = username.strip().lower()
    if name and (password.lower() == name or (len(name) >= 4 and name in password.lower())):
        raise PasswordError("A password must not contain your user name.")
    if is_common(password):
        raise PasswordError("That password is on the list of the most common passwords "
                            "guessers try first; choose another.")
    if current_hash and check_password_hash(current_hash, password):
        raise PasswordError("That is your current password; choose a new one.")


def new_password() -> str:
    """A random one-time password an admin hands over."""
    return secrets.token_urlsafe(12)
