"""Schema versions: every change to the tables is a numbered function applied once.

A small table, `kb_schema`, records which steps a database has had. `kb init`
and every start run the missing ones in order, inside one transaction, so an
upgrade never needs a hand-written SQL step. Several processes or nodes that
start at once take turns (an advisory lock on PostgreSQL, a lock file beside
an SQLite database), so each step runs exactly once.

New tables, and new columns that are nullable or have a server default, need
no step: every start creates them from the models (create_all, then
add_missing_columns in kb/db.py). Anything else (a type, a rename, moving
data, a column that needs computed values) is one function at the end of this file:

    @migration(3, "proposals record their review time")
    def _(conn):
        add_column(conn, "proposals", Column("reviewed_at", DateTime, nullable=True))
        conn.execute(text("UPDATE proposals SET reviewed_at = updated_at WHERE ..."))

with the matching attribute on the model in kb/db.py. Steps must be safe on a
database that `create_all` made from the current models (step 1 builds fresh
databases that way): `add_column` skips a column that is already there.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, inspect, select, text
from sqlalchemy.engine import Connection, Engine


@dataclass(frozen=True)
class Step:
    version: int
    summary: str
    apply: Callable[[Connection], None]


STEPS: list[Step] = []
_meta = MetaData()
SCHEMA_TABLE = Table(
    "kb_schema", _meta,
    Column("version", Integer, primary_key=True),
    Column("summary", String(200), nullable=False),
)
_PG_LOCK_KEY = 0x6B625F6D  # any constant: the advisory lock all kb processes agree on


def migration(version: int, summary: str):
    """Register `fn(conn)` as schema step `version` (numbers go up by one)."""
    def register(fn: Callable[[Connection], None]):
        if STEPS and version != STEPS[-1].version + 1:
            raise RuntimeError(f"migration {version} must follow {STEPS[-1].version}")
        STEPS.append(Step(version, summary, fn))
        return fn
    return register


def add_column(conn: Connection, table: str, column: Column) -> None:
    """ALTER TABLE ... ADD COLUMN, unless the column is already there."""
    if column.name in {c["name"] for c in inspect(conn).get_columns(table)}:
        return
    ddl = column.type.compile(dialect=conn.dialect)
    sql = f'ALTER TABLE "{table}" ADD COLUMN "{column.name}" {ddl}'
    if column.server_default is not None:
        sql += f" DEFAULT {column.server_default.arg}"
    if not column.nullable:
        if column.server_default is None:
            raise ValueError(f"{table}.{column.name}: a NOT NULL column needs a server_default")
        sql += " NOT NULL"
    conn.execute(text(sql))


def applied(engine: Engine) -> int:
    """The highest step this database has had (0 for none)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("kb_schema"):
            return 0
        return max(conn.scalars(select(SCHEMA_TABLE.c.version)).all(), default=0)


def migrate(engine: Engine) -> list[int]:
    """Apply every missing step; returns the versions applied now."""
    done: list[int] = []
    with _exclusive(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        _meta.create_all(conn, checkfirst=True)
        have = set(conn.scalars(select(SCHEMA_TABLE.c.version)).all())
        for step in STEPS:
            if step.version in have:
                continue
            step.apply(conn)
            conn.execute(SCHEMA_TABLE.insert().values(version=step.version, summary=step.summary))
            done.append(step.version)
        # A new table needs no step: it is created here from its model.
        from kb.db import Base

        Base.metadata.create_all(conn, checkfirst=True)
    return done


@contextmanager
def _exclusive(engine: Engine) -> Iterator[None]:
    """Processes sharing one SQLite file migrate one at a time (PostgreSQL locks itself)."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    lock = Path(path).with_name(Path(path).name + ".migrate-lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- the steps ------------------------------------------------------------------------------


@migration(1, "the tables as of the first versioned release")
def _baseline(conn: Connection) -> None:
    # Databases made before versioning already have these tables: checkfirst keeps them.
    from kb.db import Base

    Base.metadata.create_all(conn, checkfirst=True)


@migration(2, "search ids are 64-bit (handed out in blocks above 2**40)")
def _big_search_ids(conn: Connection) -> None:
    if conn.dialect.name != "postgresql":  # SQLite's INTEGER is 64-bit already
        return
    tables = set(inspect(conn).get_table_names())
    for table, column in (("searches", "id"), ("events", "search_id"),
                          ("learned_wordings", "search_id")):
        if table in tables:
            conn.execute(text(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE BIGINT'))
