"""Copying people from one kb database to another: a single machine's SQLite to the
shared PostgreSQL of several nodes (`kb user copy --to URL`).

What moves: each person's account as it is (password hash, role, display name,
email, one-time-password state, service accounts), their API tokens (only hashes
are stored, so the tokens keep working) and their favourites. What stays behind,
readable in the source: proposals, notifications and the usage log. Their rows
point at people and entries by ids that change on the target, finished proposals
are already in the content's git history, and the usage log is a record of the
old machine, not a setting. Open proposals are counted, so they can be decided
on the source before the move.

Safe to run again: a person already copied (same name and the same creation time)
is left as the target has it, tokens and favourites included, so nothing revoked
or removed there comes back; a different person of the same name on the target is
reported and never overwritten. Every value is checked against the target's own
columns first, since PostgreSQL refuses what SQLite stored without a word.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Column, MetaData, Table, func, select, text
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from kb.db import ROLES, Database, Proposal
from kb.errors import KbError

COPIED, ALREADY, REFUSED = "copied", "already there", "not copied"
OPEN_PROPOSALS = ("pending", "changes_requested")


class CopyError(KbError):
    """The copy cannot start at all (same database on both sides)."""


@dataclass
class PersonOutcome:
    username: str
    outcome: str  # COPIED, ALREADY or REFUSED
    detail: str = ""

    def line(self) -> str:
        return f"{self.username}: {self.outcome}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class CopyReport:
    people: list[PersonOutcome] = field(default_factory=list)
    tokens: int = 0
    favourites: int = 0
    open_proposals: int = 0

    def count(self, outcome: str) -> int:
        return sum(1 for p in self.people if p.outcome == outcome)

    @property
    def refused(self) -> list[PersonOutcome]:
        return [p for p in self.people if p.outcome == REFUSED]

    def summary(self) -> str:
        text = (f"{self.count(COPIED)} people copied with {self.tokens} API tokens and "
                f"{self.favourites} favourites; {self.count(ALREADY)} already there; "
                f"{self.count(REFUSED)} not copied.")
        if self.count(COPIED):
            text += " People copied now sign in there again with their own passwords."
        if self.open_proposals:
            text += (f" {self.open_proposals} proposals are still open on the source and do "
                     "not move: review them there first, or their authors propose again.")
        return text


def copy_people(source: Database, target: Database) -> CopyReport:
    """Copy every person of `source` into `target` (both opened by kb, so the target's
    tables are created and upgraded by kb/migrations.py). One transaction per person."""
    if source.engine.url == target.engine.url:
        raise CopyError("The source and the target are the same database: give --to the "
                        "URL of the other one.")
    report = CopyReport()
    # the target's tables as they are (kb has just created or upgraded them)
    meta = MetaData()
    tables = {t: Table(t, meta, autoload_with=target.engine)
              for t in ("users", "tokens", "favourites")}
    with source.engine.connect() as conn:
        people = _rows(conn, "users")
        tokens = _rows(conn, "tokens")
        favourites = _rows(conn, "favourites")
        # Old session cookies name a user id and a session generation. Ids change on the
        # target, so copied people start above every generation the source handed out:
        # a cookie of the old machine can never pass for someone on the target.
        generation = 1 + max((g for p in people
                              if isinstance(g := p.get("session_generation"), int)), default=0)
    with source.session() as s:
        report.open_proposals = s.scalar(select(func.count(Proposal.id)).where(
            Proposal.status.in_(OPEN_PROPOSALS))) or 0
    for person in people:
        mine = [t for t in tokens if t.get("user_id") == person.get("id")]
        liked = [f for f in favourites if f.get("user_id") == person.get("id")]
        report.people.append(_copy_one(target, tables, person, mine, liked, generation,
                                       report))
    return report


def _copy_one(target: Database, tables: dict[str, Table], person: dict, tokens: list[dict],
              favourites: list[dict], generation: int, report: CopyReport) -> PersonOutcome:
    name = str(person.get("username") or "")
    users = tables["users"]
    big = target.engine.dialect.name != "postgresql"  # SQLite's INTEGER is 64-bit
    values, problem = _fit(person, users, big, skip={"id"})
    if problem is None and values.get("role") not in ROLES:
        problem = f"role {values.get('role')!r} is none of {', '.join(ROLES)}"
    if problem is not None:
        return PersonOutcome(name, REFUSED, problem + "; fix it on the source and run "
                                                     "this again")
    rows = []
    for token in tokens:
        row, problem = _fit(token, tables["tokens"], big, skip={"id", "user_id"})
        if problem is not None:
            return PersonOutcome(name, REFUSED, f"an API token's {problem}")
        rows.append(("tokens", row))
    for favourite in favourites:
        row, problem = _fit(favourite, tables["favourites"], big, skip={"user_id"})
        if problem is not None:
            return PersonOutcome(name, REFUSED, f"a favourite's {problem}")
        rows.append(("favourites", row))
    values["session_generation"] = generation
    try:
        with target.engine.begin() as conn:
            there = conn.execute(select(users.c.id, users.c.created_at)
                                 .where(users.c.username == name)).first()
            if there is not None:
                return _already(name, there.created_at, values.get("created_at"))
            new_id = conn.execute(users.insert().values(**values)).inserted_primary_key[0]
            copied_tokens = copied_favourites = 0
            for table, row in rows:
                if table == "tokens":
                    hashes = tables["tokens"].c.token_hash
                    if conn.scalar(select(hashes).where(hashes == row["token_hash"])) is None:
                        conn.execute(tables["tokens"].insert().values(**row, user_id=new_id))
                        copied_tokens += 1
                else:
                    conn.execute(tables["favourites"].insert().values(**row, user_id=new_id))
                    copied_favourites += 1
    except SQLAlchemyError as exc:
        # e.g. a node on the target made the same name a moment ago
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        return PersonOutcome(name, REFUSED, f"the target refused it: {reason}")
    report.tokens += copied_tokens
    report.favourites += copied_favourites
    return PersonOutcome(name, COPIED, f"{copied_tokens} tokens, {copied_favourites} "
                                       "favourites")


def _already(name: str, there: dt.datetime | None, ours: dt.datetime | None) -> PersonOutcome:
    if there is not None and there == ours:
        return PersonOutcome(name, ALREADY, "copied before; left as the target has it")
    made = f" made there on {there:%Y-%m-%d}" if there else ""
    return PersonOutcome(
        name, REFUSED, f"the target already has a different person called {name}{made}; "
        "that one is left as it is: create this person there under another name "
        "(kb user create)")


def _rows(conn: Connection, table: str) -> list[dict]:
    """Rows as the database stored them (no type conversion on the way out), so a value
    SQLite kept in the wrong shape is reported, not a crash halfway."""
    return [dict(r) for r in conn.execute(text(f'SELECT * FROM "{table}"')).mappings()]


def _fit(row: dict, table: Table, big: bool, skip: set[str]) -> tuple[dict, str | None]:
    """The row's values as the target's columns take them, or the first problem, said
    for people ("display name: 500 characters, at most 120")."""
    values = {}
    for column in table.columns:
        name = column.name
        if name in skip:
            continue
        value = row.get(name)
        if value is None:
            if column.nullable or column.server_default is not None:
                continue  # the target's own default, as kb would have written it
            return values, f"{name.replace('_', ' ')}: empty, and the target needs a value"
        value, problem = _fit_value(value, column, big)
        if problem is not None:
            return values, f"{name.replace('_', ' ')}: {problem}"
        values[name] = value
    return values, None


def _fit_value(value, column: Column, big: bool):
    kind = column.type
    if isinstance(kind, sqltypes.Boolean):
        if isinstance(value, (bool, int)) and value in (0, 1):
            return bool(value), None
        return None, f"{value!r} is not true or false"
    if isinstance(kind, sqltypes.Integer):
        limit = 2**63 if big or isinstance(kind, sqltypes.BigInteger) else 2**31
        if isinstance(value, bool) or not isinstance(value, int):
            return None, f"{value!r} is not a whole number"
        if not -limit <= value < limit:
            return None, f"{value} is too large for the target"
        return value, None
    if isinstance(kind, sqltypes.DateTime):
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError:
                return None, f"{value!r} is not a date and time"
        if not isinstance(value, dt.datetime):
            return None, f"{value!r} is not a date and time"
        return value, None
    if isinstance(kind, sqltypes.String):
        if not isinstance(value, str):
            return None, f"{type(value).__name__} where text belongs"
        if "\x00" in value:
            return None, "holds a NUL character, which PostgreSQL refuses"
        limit = getattr(kind, "length", None)
        if limit and len(value) > limit:
            return None, f"{len(value)} characters, at most {limit}"
        return value, None
    return value, None

