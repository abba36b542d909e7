"""People: accounts, roles, passwords, personal API tokens, sign-in limits."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

from sqlalchemy import delete, func, select
from werkzeug.security import check_password_hash, generate_password_hash

from kb.db import ROLES, Database, LoginAttempt, Token, User, utcnow
from kb.errors import KbError
from kb.store import Person

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
MIN_PASSWORD = 10
FAILED_LIMIT_USER = 5  # failed sign-ins per user name ...
FAILED_LIMIT_IP = 20  # ... and per address, within the window
FAILED_WINDOW = dt.timedelta(minutes=15)


class UserError(KbError, ValueError):
    """A user operation that cannot be done; the message says why and what to do."""


def person_of(user: User) -> Person:
    """The git identity for a user's commits."""
    return Person(user.name, user.email or f"{user.username}@kb.local")


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"Use a password of at least {MIN_PASSWORD} characters.")


def new_password() -> str:
    return secrets.token_urlsafe(12)


def create_user(db: Database, username: str, password: str, role: str = "agent",
                display_name: str = "", email: str = "", must_change: bool = False) -> User:
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        raise UserError("A user name is 2–40 lowercase letters, digits, dots, dashes or "
                        "underscores, starting with a letter or digit.")
    if role not in ROLES:
        raise UserError(f"Role must be one of: {', '.join(ROLES)}.")
    check_password_strength(password)
    with db.session() as s:
        if s.scalar(select(User).where(User.username == username)):
            raise UserError(f"There is already a user called {username}.")
        user = User(username=username, display_name=display_name.strip() or username.title(),
                    email=email.strip(), role=role,
                    password_hash=generate_password_hash(password),
                    must_change_password=must_change)
        s.add(user)
        s.commit()
        return user


def get_user(db: Database, username: str) -> User:
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise UserError(f"No user called {username}.")
    return user


def user_by_id(db: Database, user_id: int) -> User | None:
    with db.session() as s:
        return s.get(User, user_id)


def list_users(db: Database) -> list[User]:
    with db.session() as s:
        return list(s.scalars(select(User).order_by(User.username)))


def update_user(db: Database, username: str, **changes) -> User:
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username.strip().lower()))
        if user is None:
            raise UserError(f"No user called {username}.")
        if "role" in changes and changes["role"] not in ROLES:
            raise UserError(f"Role must be one of: {', '.join(ROLES)}.")
        was_admin = user.role == "admin" and user.active
        if "password" in changes:
            check_password_strength(changes["password"])
            user.password_hash = generate_password_hash(changes.pop("password"))
        for key, value in changes.items():
            setattr(user, key, value)
        if was_admin and not (user.role == "admin" and user.active):
            others = s.scalar(select(func.count(User.id)).where(
                User.role == "admin", User.active.is_(True), User.id != user.id))
            if not others:
                s.rollback()
                raise UserError("This is the last active admin; make someone else admin first.")
        s.commit()
        return user


def authenticate(db: Database, username: str, password: str, address: str) -> User:
    """The user for these credentials, or UserError (also when rate-limited)."""
    username = (username or "").strip().lower()
    keys = [f"user:{username}", f"ip:{address}"]
    now = utcnow()
    with db.session() as s:
        since = now - FAILED_WINDOW
        s.execute(delete(LoginAttempt).where(LoginAttempt.at < since))
        per_user = s.scalar(select(func.count()).where(LoginAttempt.key == keys[0]))
        per_ip = s.scalar(select(func.count()).where(LoginAttempt.key == keys[1]))
        s.commit()
        if per_user >= FAILED_LIMIT_USER or per_ip >= FAILED_LIMIT_IP:
            raise UserError("Too many failed sign-ins. Wait 15 minutes, or ask an admin "
                            "to reset your password.")
        user = s.scalar(select(User).where(User.username == username))
        # check a hash even for unknown names so timing does not reveal which exist
        ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
        if not ok or user is None or not user.active:
            s.add_all([LoginAttempt(key=k, at=now) for k in keys])
            s.commit()
            if user is not None and ok and not user.active:
                raise UserError("This account is disabled. Ask an admin to enable it.")
            raise UserError("That user name and password do not match. Check both and try again.")
        s.execute(delete(LoginAttempt).where(LoginAttempt.key == keys[0]))
        s.commit()
        return user


_DUMMY_HASH = generate_password_hash("not a real password")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Database, username: str, label: str = "") -> str:
    """A new personal API token; only its hash is kept, so show it once."""
    user = get_user(db, username)
    token = "kb_" + secrets.token_urlsafe(32)
    with db.session() as s:
        s.add(Token(user_id=user.id, label=label.strip()[:120], token_hash=_hash_token(token)))
        s.commit()
    return token


def user_for_token(db: Database, token: str) -> User | None:
    with db.session() as s:
        row = s.scalar(select(Token).where(Token.token_hash == _hash_token(token.strip())))
        if row is None:
            return None
        row.last_used = utcnow()
        user = s.get(User, row.user_id)
        s.commit()
        return user if user and user.active else None


def list_tokens(db: Database, user_id: int) -> list[Token]:
    with db.session() as s:
        return list(s.scalars(select(Token).where(Token.user_id == user_id)))


def revoke_token(db: Database, user_id: int, token_id: int) -> bool:
    with db.session() as s:
        done = s.execute(delete(Token).where(Token.id == token_id, Token.user_id == user_id))
        s.commit()
        return done.rowcount > 0


def ensure_first_admin(db: Database) -> str | None:
    """With no users at all, create `admin` with a one-time password and return it."""
    if db.user_count():
        return None
    password = new_password()
    create_user(db, "admin", password, role="admin", display_name="Admin", must_change=True)
    return password
