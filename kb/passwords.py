"""What makes a password acceptable: long enough, and hard to guess as zxcvbn (Dropbox's
strength estimator, which knows the common passwords, keyboard walks, sequences, repeats,
dates and l33t spellings guessers try first) estimates it."""

from __future__ import annotations

import secrets

from werkzeug.security import check_password_hash
from zxcvbn import zxcvbn

MIN_PASSWORD = 10
MIN_SCORE = 3  # zxcvbn's 0-4: 3 is "safely unguessable" online (about 10^8 guesses or more)
MAX_CHECKED = 100  # zxcvbn's cost grows with length; a longer password is judged by its start


class PasswordError(ValueError):
    """The password is refused; the message says what to choose instead."""


def check_new_password(password: str, username: str = "", current_hash: str | None = None) -> None:
    """Raise PasswordError for a password that is short, guessable or unchanged."""
    if len(password) < MIN_PASSWORD:
        raise PasswordError(f"Use a password of at least {MIN_PASSWORD} characters.")
    name = username.strip().lower()
    if name and (password.lower() == name or (len(name) >= 4 and name in password.lower())):
        raise PasswordError("A password must not contain your user name.")
    verdict = zxcvbn(password[:MAX_CHECKED], user_inputs=[name] if name else [])
    if verdict["score"] < MIN_SCORE:
        feedback = verdict["feedback"]
        why = feedback.get("warning") or "It is among the first passwords guessers try."
        advice = " ".join(feedback.get("suggestions") or []) or \
            "Use three or four words you will remember, with a number between them."
        raise PasswordError(f"That password is easy to guess. {why} {advice}")
    if current_hash and check_password_hash(current_hash, password):
        raise PasswordError("That is your current password; choose a new one.")


def new_password() -> str:
    """A random one-time password an admin hands over."""
    return secrets.token_urlsafe(12)
