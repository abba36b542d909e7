"""The app's own state in SQL: users, tokens, proposals, sign-in failures, usage.

SQLite by default; PostgreSQL by URL (KB_DATABASE_URL=postgresql+psycopg://...)
for a team that outgrows one machine. Schema changes are steps in kb/migrations.py,
applied when the database is opened.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

from kb.migrations import migrate

if TYPE_CHECKING:
    from kb.usage_log import UsageLog

ROLES = ("agent", "trainer", "admin")
# Search ids are handed out in blocks above 2**40 (kb.usage_log): 64-bit on PostgreSQL;
# SQLite's INTEGER is 64-bit already and must stay INTEGER to remain the row id.
BIG_ID = BigInteger().with_variant(Integer, "sqlite")
MAX_ID = 2**63 - 1  # the largest integer SQLite (and PostgreSQL's BIGINT) can hold


def as_id(value: object) -> int | None:
    """A row id from a URL, form or JSON value; None when it cannot be one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    else:
        return None
    return number if 0 < number <= MAX_ID else None


# What a database that went away (stopped, restarting, unreachable) raises.
DOWN = (sqlalchemy_exc.OperationalError, sqlalchemy_exc.InterfaceError)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def too_long(model, values: dict) -> str | None:
    """The first value longer than its column holds, said for people ("display name:
    500 characters, at most 120"); None when every value fits. SQLite would store
    it and PostgreSQL refuse it: checked here, both behave alike."""
    for name, value in values.items():
        column = model.__table__.columns.get(name)
        limit = getattr(column.type, "length", None) if column is not None else None
        if limit and isinstance(value, str) and len(value) > limit:
            return f"{name.replace('_', ' ')}: {len(value)} characters, at most {limit}"
    return None


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True, index=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20), default="agent")
    password_hash: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # bumped by sign-out, password change, reset and disable: older sessions stop working
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    password_set_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # a service account has no password and cannot sign in; it uses API tokens only
    is_service: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")

    # flask-login's protocol
    @property
    def is_active(self) -> bool:
        return bool(self.active)

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def name(self) -> str:
        return self.display_name or self.username

    def can(self, role: str) -> bool:
        """True when this user's role is at least `role`."""
        return ROLES.index(self.role) >= ROLES.index(role)


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    label: Mapped[str] = mapped_column(String(120), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_used: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # a token that lives as long as a sign-in (the browser extension's): it stops when
    # the person's session generation moves on (signing out, a new password, a reset)
    session_generation: Mapped[int | None] = mapped_column(Integer, nullable=True)
    user: Mapped[User] = relationship()


class Proposal(Base):
    __tablename__ = "proposals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), index=True)
    is_new: Mapped[bool] = mapped_column(Boolean, default=False)
    base_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    text: Mapped[str] = mapped_column(Text)  # the whole proposed entry file
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    review_comment: Mapped[str] = mapped_column(Text, default="")
    commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    author: Mapped[User] = relationship(foreign_keys=[author_id])
    reviewer: Mapped[User | None] = relationship(foreign_keys=[reviewer_id])


class SignInFailures(Base):
    """Failed sign-ins counted per (user name, address) and per address."""

    __tablename__ = "sign_in_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), default="", index=True)  # "" = address
    address: Mapped[str] = mapped_column(String(64), index=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    blocked_until: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class SearchLog(Base):
    """One search as the agent typed it (keystrokes of one query are merged)."""

    __tablename__ = "searches"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    query: Mapped[str] = mapped_column(String(200))
    words: Mapped[str] = mapped_column(String(200), index=True)  # stemmed, sorted: groups wording
    result_count: Mapped[int] = mapped_column(Integer, default=0)
    opened_slug: Mapped[str | None] = mapped_column(String(80), nullable=True)
    copied: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Event(Base):
    """An entry viewed or its email copied, with the version it had then; or a signal
    that a copy did not help (kb.outcomes), keyed by that copy's `ref`."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(10), index=True)  # view | copy | a signal
    slug: Mapped[str] = mapped_column(String(80), index=True)
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    search_id: Mapped[int | None] = mapped_column(BIG_ID, nullable=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    # a copy's key, handed to the page or helpdesk that made it, for the signals after it
    ref: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)


class SearchIdBlock(Base):
    """A block of search ids reserved by one server process (see kb.usage_log)."""

    __tablename__ = "search_id_blocks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pid: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Favourite(Base):
    __tablename__ = "favourites"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Setting(Base):
    """A small fact the app remembers across restarts and processes (e.g. the
    admin's choice about the starter entries)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")


class LearnedWording(Base):
    """Words an agent typed in a search that led to copying an entry: one row per
    copy and wording (derived from the search log and events, rebuilt as needed)."""

    __tablename__ = "learned_wordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(Integer, index=True)  # the copy
    search_id: Mapped[int] = mapped_column(BIG_ID)  # the search the copy came from
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    slug: Mapped[str] = mapped_column(String(80), index=True)
    wording: Mapped[str] = mapped_column(String(200))
    failed: Mapped[bool] = mapped_column(Boolean, default=False)  # refined away from
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class PhrasingDecision(Base):
    """A trainer's answer to a suggested phrasing: accepted or dismissed."""

    __tablename__ = "phrasing_decisions"

    slug: Mapped[str] = mapped_column(String(80), primary_key=True)
    wording: Mapped[str] = mapped_column(String(200), primary_key=True)
    decision: Mapped[str] = mapped_column(String(20))  # "accepted" | "dismissed"
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Notification(Base):
    """Something a person should hear about: their proposal reviewed, their entry due.

    `key` names a once-only event (an entry falling due on a date): the unique
    (user_id, key) pair lets every process and node try, and exactly one insert win.
    `mail` is "" (no email), "queued", "sent" or "failed"."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("user_id", "key", name="uq_notifications_user_key"),
        Index("ix_notifications_user_unread", "user_id", "read_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str] = mapped_column(String(500), default="")
    key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    mail: Mapped[str] = mapped_column(String(10), default="")


class Database:
    def __init__(self, url: str):
        kwargs = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            # a node whose database restarted gets a fresh connection, not an error
            kwargs["pool_pre_ping"] = True
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            _private_file(Path(url.removeprefix("sqlite:///")))
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        migrate(self.engine)
        add_missing_columns(self.engine)
        self.session = sessionmaker(self.engine, expire_on_commit=False)
        self._usage_log: UsageLog | None = None
        self._usage_lock = threading.Lock()

    @property
    def usage_log(self) -> UsageLog:
        """The batched writer of searches, views and copies (see kb.usage_log)."""
        if self._usage_log is None:
            from kb.usage_log import UsageLog

            with self._usage_lock:
                if self._usage_log is None:
                    self._usage_log = UsageLog(self)
        return self._usage_log

    def user_count(self) -> int:
        with self.session() as s:
            return len(s.scalars(select(User.id)).all())

    def reachable(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        if self._usage_log is not None:
            self._usage_log.close()  # write what is queued before letting go
        self.engine.dispose()


def add_missing_columns(engine: Engine) -> None:
    """Give a database made by an older kb the columns added since (create_all only
    makes missing tables). Only nullable columns or ones with a server default are
    added, which every database accepts with ALTER TABLE ... ADD COLUMN."""
    inspector = inspect(engine)
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                kind = column.type.compile(engine.dialect)
                default = f" DEFAULT {column.server_default.arg}" if column.server_default else ""
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" '
                                  f"{kind}{default}"))


def _private_file(path: Path) -> None:
    """The database holds password hashes and what agents searched: owner only.
    SQLite gives its -wal and -shm files the mode of the database file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for extra in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if extra.stat().st_mode & 0o077:
                extra.chmod(0o600)
        except OSError:
            pass  # not there, or not ours: SQLite will say so if it matters


def _sqlite_pragmas(conn, _record) -> None:
    cur = conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
