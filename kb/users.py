"""People: accounts, roles, passwords, service accounts, personal API tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import time

from sqlalchemy import delete, func, select
from werkzeug.security import check_password_hash, generate_password_hash

from kb import throttle
from kb.db import DOWN, ROLES, Database, Token, User, too_long, utcnow
from kb.errors import KbError
from kb.passwords import PasswordError, check_new_password, new_password
from kb.store import Person
from kb.text import single_line

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
# One plain address (notifications are emailed to it): no name part, spaces or lists.
EMAIL_RE = re.compile(r"^[^@\s<>,;\"()]+@[^@\s<>,;\"()]+$")
ONE_TIME_HOURS = 72  # default life of a one-time password (KB_ONE_TIME_PASSWORD_HOURS)
NO_PASSWORD = "!"  # the hash of a service account: matches no password at all


class UserError(KbError, ValueError):
    """A user operation that cannot be done; the message says why and what to do."""


def person_of(user: User) -> Person:
    """The git identity for a user's commits."""
    return Person(user.name, user.email or f"{user.username}@kb.local")


def clean_email(email: str) -> str:
    email = (email or "").strip()
    if email and (len(email) > 200 or not EMAIL_RE.match(email)):
        raise UserError("An email address is one plain address like name@example.com "
                        "(200 characters at most), or empty.")
    return email


def check_password_strength(password: str, username: str = "",
                            current_hash: str | None = None) -> None:
    try:
        check_new_password(password, username, current_hash)
    except PasswordError as exc:
        raise UserError(str(exc)) from None


def clean_name(name: str) -> str:
    """A display name on one line (it goes into emails, and into git as a commit's
    author)."""
    return single_line(name)


def _check_lengths(values: dict) -> None:
    problem = too_long(User, values)
    if problem:
        raise UserError(f"Too long: {problem}. Shorten it and save again.")


def create_user(db: Database, username: str, password: str | None, role: str = "agent",
                display_name: str = "", email: str = "", must_change: bool = False,
                service: bool = False) -> User:
    """A person (with a password), or with `service` an integration's account: no
    password, no sign-in, API tokens only (`password` is then ignored)."""
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        raise UserError("A user name is 2–40 lowercase letters, digits, dots, dashes or "
                        "underscores, starting with a letter or digit.")
    if role not in ROLES:
        raise UserError(f"Role must be one of: {', '.join(ROLES)}.")
    email = clean_email(email)
    display_name = clean_name(display_name)
    _check_lengths({"display_name": display_name, "email": email.strip()})
    if not service:
        check_password_strength(password or "", username)
    with db.session() as s:
        if s.scalar(select(User).where(User.username == username)):
            raise UserError(f"There is already a user called {username}.")
        user = User(username=username, display_name=display_name.strip() or username.title(),
                    email=email.strip(), role=role,
                    password_hash=NO_PASSWORD if service else generate_password_hash(password),
                    must_change_password=must_change and not service, is_service=service,
                    password_set_at=utcnow())
        s.add(user)
        s.commit()
        return user


def get_user(db: Database, username: str) -> User:
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise UserError(f"No user called {username}.")
    return user


# Who each request is for, as last read: while the database is down, signed-in people
# keep searching, reading and copying as the person they were a moment ago.
_LAST_SEEN: dict[tuple[int, int], tuple[float, User | None]] = {}
LAST_SEEN_SECONDS = 15 * 60
_LAST_SEEN_MAX = 10_000


def user_by_id(db: Database, user_id: int) -> User | None:
    key = (id(db), user_id)
    try:
        with db.session() as s:
            user = s.get(User, user_id)
    except DOWN:
        seen = _LAST_SEEN.get(key)
        if seen is None or time.monotonic() - seen[0] > LAST_SEEN_SECONDS:
            raise
        return seen[1]
    if len(_LAST_SEEN) >= _LAST_SEEN_MAX:
        _LAST_SEEN.pop(next(iter(_LAST_SEEN)))
    _LAST_SEEN[key] = (time.monotonic(), user)
    return user


def list_users(db: Database) -> list[User]:
    with db.session() as s:
        return list(s.scalars(select(User).order_by(User.username)))


def update_user(db: Database, username: str, **changes) -> User:
    """Change a user's fields. A new password, or disabling, signs out every session of
    theirs (the session generation moves on); disabling also revokes their tokens."""
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username.strip().lower()))
        if user is None:
            raise UserError(f"No user called {username}.")
        if "role" in changes and changes["role"] not in ROLES:
            raise UserError(f"Role must be one of: {', '.join(ROLES)}.")
        if "email" in changes:
            changes["email"] = clean_email(changes["email"])
        if "display_name" in changes:
            changes["display_name"] = clean_name(changes["display_name"]) or user.username
        _check_lengths({k: v for k, v in changes.items() if k in ("display_name", "email")})
        was_admin = user.role == "admin" and user.active
        if "password" in changes:
            if user.is_service:
                raise UserError(f"{user.username} is a service account: it has no password "
                                f"and uses API tokens (kb token create {user.username}).")
            check_password_strength(changes["password"], user.username, user.password_hash)
            user.password_hash = generate_password_hash(changes.pop("password"))
            user.password_set_at = utcnow()
            user.session_generation = (user.session_generation or 0) + 1
        if changes.get("active") is False and user.active:
            user.session_generation = (user.session_generation or 0) + 1
            # tokens die with the account and stay dead if it is enabled again
            s.execute(delete(Token).where(Token.user_id == user.id))
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


def authenticate(db: Database, username: str, password: str, address: str,
                 one_time_hours: int = ONE_TIME_HOURS, device: str | None = None) -> User:
    """The user for these credentials, or UserError (also when throttled: see kb.throttle).
    `device`: the id of this browser's device cookie, when it was issued to this name."""
    username = (username or "").strip().lower()[:80]
    address = (address or "")[:64]
    now = utcnow()
    with db.session() as s:
        # checked and counted in one step, before the password is weighed: guesses sent
        # in parallel each see the others' count (kb.throttle)
        throttle.hold(s, username)
        if not throttle.device_trusted(s, username, device, now):
            device = None  # a known device past its allowance is one more stranger
        try:
            if device is None:  # a browser that signed in before skips these
                throttle.check(s, username, address, now)
                throttle.check_unknown(s, username, now)
        except throttle.Throttled as exc:
            s.commit()
            raise UserError(str(exc)) from None
        throttle.count_attempt(s, username, address, device, now)
        s.commit()
        user = s.scalar(select(User).where(User.username == username))
        # check a hash even for unknown names so timing does not reveal which exist
        usable = user is not None and not user.is_service
        ok = check_password_hash(user.password_hash if usable else _DUMMY_HASH, password or "")
        if not ok or not usable or not user.active:
            if usable and ok and not user.active:
                raise UserError("This account is disabled. Ask an admin to enable it.")
            raise UserError("That user name and password do not match. Check both and try again.")
        throttle.forgive(s, username, address, device)
        s.commit()
        if user.must_change_password and one_time_expired(user, one_time_hours, now):
            raise UserError(f"This one-time password has expired (they last {one_time_hours} "
                            "hours). Ask an admin for a new one.")
        return user


def one_time_expired(user: User, hours: int, now: dt.datetime | None = None) -> bool:
    set_at = user.password_set_at or user.created_at
    return bool(set_at) and (now or utcnow()) - set_at > dt.timedelta(hours=hours)


def reset_password(db: Database, username: str) -> str:
    """A new one-time password for someone who lost theirs: signs out their sessions,
    revokes their tokens and clears their sign-in throttling. Returns the password."""
    password = new_password()
    user = update_user(db, username, password=password, must_change_password=True)
    with db.session() as s:
        s.execute(delete(Token).where(Token.user_id == user.id))
        s.commit()
    throttle.unlock(db, user.username)
    return password


def bump_sessions(db: Database, user_id: int) -> int:
    """Sign out every session of this user; returns the new generation."""
    with db.session() as s:
        user = s.get(User, user_id)
        user.session_generation = (user.session_generation or 0) + 1
        s.commit()
        return user.session_generation


_DUMMY_HASH = generate_password_hash("not a real password")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Database, username: str, label: str = "",
                 with_session: bool = False) -> str:
    """A new personal API token; only its hash is kept, so show it once.
    `with_session`: the token stops when this person signs out anywhere, changes their
    password or is reset (the browser extension's token, made from a signed-in page)."""
    user = get_user(db, username)
    token = "kb_" + secrets.token_urlsafe(32)
    with db.session() as s:
        generation = s.get(User, user.id).session_generation or 0
        # tokens of earlier sign-ins are dead already: no need to list them
        s.execute(delete(Token).where(Token.user_id == user.id,
                                      Token.session_generation.is_not(None),
                                      Token.session_generation != generation))
        s.add(Token(user_id=user.id, label=label.strip()[:120], token_hash=_hash_token(token),
                    session_generation=generation if with_session else None))
        s.commit()
    return token


# why a token was refused, for the API's 401 message
TOKEN_UNKNOWN = "unknown"
TOKEN_SIGNED_OUT = "signed out"


def token_user(db: Database, token: str) -> tuple[User | None, str]:
    """The person a token stands for, or None and why: TOKEN_UNKNOWN (never made,
    revoked, its person reset or disabled) or TOKEN_SIGNED_OUT (a token tied to a
    sign-in that has ended; it is deleted then)."""
    with db.session() as s:
        row = s.scalar(select(Token).where(Token.token_hash == _hash_token(token.strip())))
        if row is None:
            return None, TOKEN_UNKNOWN
        user = s.get(User, row.user_id)
        if user is None or not user.active:
            return None, TOKEN_UNKNOWN
        if row.session_generation is not None and \
                row.session_generation != (user.session_generation or 0):
            s.delete(row)
            s.commit()
            return None, TOKEN_SIGNED_OUT
        row.last_used = utcnow()
        s.commit()
        return user, ""


def user_for_token(db: Database, token: str) -> User | None:
    return token_user(db, token)[0]


def list_tokens(db: Database, user_id: int) -> list[Token]:
    """This person's tokens that still work."""
    with db.session() as s:
        generation = s.get(User, user_id).session_generation or 0
        return list(s.scalars(select(Token).where(
            Token.user_id == user_id,
            Token.session_generation.is_(None) | (Token.session_generation == generation))))


def revoke_token(db: Database, user_id: int, token_id: int) -> bool:
    with db.session() as s:
        done = s.execute(delete(Token).where(Token.id == token_id, Token.user_id == user_id))
        s.commit()
        return done.rowcount > 0


def revoke_all_tokens(db: Database, user_id: int) -> int:
    """Revoke every API token of one person; how many there were."""
    with db.session() as s:
        done = s.execute(delete(Token).where(Token.user_id == user_id))
        s.commit()
        return done.rowcount


def ensure_first_admin(db: Database) -> str | None:
    """With no users at all, create `admin` with a one-time password and return it."""
    if db.user_count():
        return None
    password = new_password()
    create_user(db, "admin", password, role="admin", display_name="Admin", must_change=True)
    return password


def admins_not_signed_in(db: Database) -> list[User]:
    """While no admin has a password of their own, the admins still holding a one-time
    password (usually the first start's `admin`): nobody can run the site until one of
    them signs in. Only hashes are stored, so the password itself cannot be shown again."""
    with db.session() as s:
        admins = list(s.scalars(select(User).where(
            User.role == "admin", User.active.is_(True), User.is_service.is_(False))
            .order_by(User.username)))
    if any(not admin.must_change_password for admin in admins):
        return []
    return admins


def first_sign_in_note(user: User, hours: int) -> str:
    """What to tell whoever starts kb while `user` still has a one-time password."""
    reset = f"kb user reset-password {user.username}"
    if one_time_expired(user, hours):
        return (f"{user.username}'s one-time password has expired (it lasts {hours} hours), "
                f"and no admin has signed in yet. For a new one, run: {reset}")
    return (f"{user.username} has not signed in with its one-time password yet (it was "
            f"printed when the account was created). If you do not have it, run: {reset}")
