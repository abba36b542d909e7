"""Schema steps: applied once, in order, on SQLite and PostgreSQL, to old and new databases."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, create_engine, inspect, text

from kb import migrations
from kb.db import Database
from kb.migrations import add_column, applied, migrate


@pytest.fixture
def url(database_url, tmp_path):
    return database_url or f"sqlite:///{tmp_path / 'kb.sqlite'}"


def test_a_new_database_gets_every_step_once(url):
    db = Database(url)
    try:
        assert applied(db.engine) == migrations.STEPS[-1].version
        assert migrate(db.engine) == []  # a second start applies nothing
        assert "users" in inspect(db.engine).get_table_names()
    finally:
        db.dispose()


def test_a_database_made_before_versioning_is_adopted(url):
    engine = create_engine(url)
    from kb.db import Base

    Base.metadata.create_all(engine)  # what every start did before schema steps
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO favourites (user_id, slug, at) "
                          "VALUES (1, 'refund-status', CURRENT_TIMESTAMP)"))
    assert applied(engine) == 0
    assert 1 in migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT slug FROM favourites")).scalar() == "refund-status"
    engine.dispose()


def test_a_later_step_adds_a_column_to_an_existing_database(url, monkeypatch):
    db = Database(url)
    before = applied(db.engine)
    steps = list(migrations.STEPS)
    monkeypatch.setattr(migrations, "STEPS", steps)

    @migrations.migration(before + 1, "users carry a test counter")
    def _(conn):
        add_column(conn, "users", Column("test_counter", Integer, nullable=False,
                                         server_default="0"))

    try:
        assert migrate(db.engine) == [before + 1]
        assert migrate(db.engine) == []
        columns = {c["name"] for c in inspect(db.engine).get_columns("users")}
        assert "test_counter" in columns
        with db.engine.connect() as conn:
            versions = conn.execute(text("SELECT version FROM kb_schema")).scalars().all()
        assert sorted(versions) == list(range(1, before + 2))
    finally:
        db.dispose()


def test_steps_must_be_numbered_in_order(monkeypatch):
    monkeypatch.setattr(migrations, "STEPS", list(migrations.STEPS))
    with pytest.raises(RuntimeError):
        migrations.migration(migrations.STEPS[-1].version + 2, "a gap")(lambda conn: None)
