"""`kb user copy --to URL`: people move from a single machine's SQLite to the shared
PostgreSQL, sign in there with their own passwords, and a second run changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from kb import create_app
from kb.db import Database, Favourite, Token, User
from kb.people_copy import ALREADY, COPIED, REFUSED, CopyError, copy_people
from kb.users import create_token, create_user, user_for_token
from tests.conftest import PASSWORD, login, write_seed
from tests.test_cli import kb

SECRET = "the-single-machine-key"


@pytest.fixture
def source(tmp_path):
    """A single machine's SQLite with people, tokens and favourites."""
    db = Database(f"sqlite:///{tmp_path / 'single' / 'kb.sqlite'}")
    create_user(db, "alice", PASSWORD, role="agent", display_name="Alice Ng",
                email="alice@example.com")
    create_user(db, "tara", PASSWORD, role="trainer", display_name="Tara Lee")
    create_user(db, "newbie", "one-time-pass-123", must_change=True)
    create_user(db, "helpdesk", None, role="agent", service=True)
    tokens = {"alice": create_token(db, "alice", "laptop"),
              "helpdesk": create_token(db, "helpdesk", "integration")}
    with db.session() as s:
        alice = s.scalar(select(User).where(User.username == "alice"))
        s.add_all([Favourite(user_id=alice.id, slug="refund-status"),
                   Favourite(user_id=alice.id, slug="wrong-colour")])
        s.commit()
    yield db, tokens
    db.dispose()


@pytest.fixture
def target_url(pg_cluster):
    url = pg_cluster.fresh_database()
    yield url
    pg_cluster.drop_database(url)


def _app(tmp_path, name: str, url: str):
    return create_app({"INSTANCE_DIR": str(tmp_path / name), "DATABASE_URL": url,
                       "SEED_DIR": str(write_seed(tmp_path / f"seed-{name}")),
                       "SECRET_KEY": SECRET, "TESTING": True})


def _close(app) -> None:
    app.extensions["kb"].index.close()
    app.extensions["kb_db"].dispose()


def _counts(db: Database) -> tuple[int, int, int]:
    with db.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(model))
                     for model in (User, Token, Favourite))


def test_people_move_to_postgresql_and_sign_in_there_with_their_own_passwords(
        tmp_path, source, target_url):
    db, tokens = source
    target = Database(target_url)  # an empty database: kb creates its tables
    try:
        report = copy_people(db, target)
        assert [(p.username, p.outcome) for p in report.people] == [
            ("alice", COPIED), ("tara", COPIED), ("newbie", COPIED), ("helpdesk", COPIED)]
        assert (report.tokens, report.favourites) == (2, 2)
        assert _counts(target) == (4, 2, 2)

        # the API tokens keep working (only their hashes were ever stored)
        assert user_for_token(target, tokens["alice"]).username == "alice"
        assert user_for_token(target, tokens["helpdesk"]).is_service
        with target.session() as s:
            alice = s.scalar(select(User).where(User.username == "alice"))
            newbie = s.scalar(select(User).where(User.username == "newbie"))
            liked = s.scalars(select(Favourite.slug).where(Favourite.user_id == alice.id)
                              .order_by(Favourite.slug)).all()
        assert (alice.display_name, alice.email, alice.role) == (
            "Alice Ng", "alice@example.com", "agent")
        assert newbie.must_change_password
        assert liked == ["refund-status", "wrong-colour"]

        # the real app on the target database: same password, same role
        app = _app(tmp_path, "node", target_url)
        try:
            client = app.test_client()
            assert login(client, "tara").status_code == 302
            assert client.get("/review").status_code == 200  # a trainer's page
            assert login(app.test_client(), "tara", "not-her-password").status_code == 401
        finally:
            _close(app)

        # a second run changes nothing
        again = copy_people(db, target)
        assert {p.outcome for p in again.people} == {ALREADY}
        assert (again.tokens, again.favourites) == (0, 0)
        assert _counts(target) == (4, 2, 2)
    finally:
        target.dispose()


def test_a_name_taken_on_the_target_is_reported_and_never_overwritten(source, target_url):
    db, _ = source
    target = Database(target_url)
    try:
        create_user(target, "tara", "another-pass-9876", role="admin")
        with target.session() as s:
            before = s.scalar(select(User.password_hash).where(User.username == "tara"))

        report = copy_people(db, target)

        outcome = {p.username: p for p in report.people}
        assert outcome["tara"].outcome == REFUSED
        assert "already has a different person called tara" in outcome["tara"].detail
        assert outcome["alice"].outcome == COPIED  # the others still move
        with target.session() as s:
            tara = s.scalar(select(User).where(User.username == "tara"))
        assert (tara.password_hash, tara.role) == (before, "admin")
    finally:
        target.dispose()


def test_values_postgresql_would_refuse_are_reported_per_person(source, target_url):
    """SQLite stores an over-long name or a NUL character without a word."""
    db, _ = source
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE users SET display_name = :v WHERE username = 'tara'"),
                     {"v": "T" * 500})
        conn.execute(text("UPDATE users SET email = :v WHERE username = 'newbie'"),
                     {"v": "new\x00bie@example.com"})
    target = Database(target_url)
    try:
        report = copy_people(db, target)

        outcome = {p.username: p for p in report.people}
        assert outcome["tara"].outcome == REFUSED
        assert outcome["tara"].detail.startswith("display name: 500 characters, at most 120")
        assert outcome["newbie"].outcome == REFUSED
        assert "NUL" in outcome["newbie"].detail
        assert (outcome["alice"].outcome, outcome["helpdesk"].outcome) == (COPIED, COPIED)
        with target.session() as s:
            names = set(s.scalars(select(User.username)))
        assert names == {"alice", "helpdesk"}
    finally:
        target.dispose()


def test_an_old_machines_session_cookie_passes_for_nobody_on_the_target(tmp_path, target_url):
    """User ids change on the target; with the same secret key, tara's old cookie
    (her id there) must not sign anyone in where that id is now someone else."""
    single = _app(tmp_path, "single", f"sqlite:///{tmp_path / 'single.sqlite'}")
    target = Database(target_url)
    try:
        db = single.extensions["kb_db"]
        create_user(db, "alice", PASSWORD)
        create_user(db, "tara", PASSWORD, role="trainer")
        old = single.test_client()
        assert login(old, "tara").status_code == 302
        cookie = old.get_cookie("session").value
        create_user(target, "bob", PASSWORD)  # ids on the target move up by one

        copy_people(db, target)

        node = _app(tmp_path, "node", target_url)
        try:
            client = node.test_client()
            client.set_cookie("session", cookie)
            assert client.get("/").status_code == 302  # to the sign-in page
            assert login(node.test_client(), "tara").status_code == 302
        finally:
            _close(node)
    finally:
        target.dispose()
        _close(single)


def test_the_same_database_on_both_sides_is_refused(source):
    db, _ = source
    with pytest.raises(CopyError, match="same database"):
        copy_people(db, db)


def test_the_command_copies_reports_and_exits_1_on_a_conflict(tmp_path, target_url):
    env = {"KB_INSTANCE_DIR": str(tmp_path / "inst")}
    assert kb(env, "user", "create", "alice").returncode == 0
    assert kb(env, "user", "create", "tara", "--role", "trainer").returncode == 0

    first = kb(env, "user", "copy", "--to", target_url)
    assert first.returncode == 0, first.stderr
    assert "alice: copied" in first.stdout and "2 people copied" in first.stdout

    second = kb(env, "user", "copy", "--to", target_url)
    assert second.returncode == 0, second.stderr
    assert "0 people copied" in second.stdout and "2 already there" in second.stdout

    assert kb(env, "user", "create", "bob").returncode == 0
    target = Database(target_url)
    create_user(target, "bob", PASSWORD)
    target.dispose()
    third = kb(env, "user", "copy", "--to", target_url)
    assert third.returncode == 1
    assert "bob: not copied (the target already has a different person called bob" \
        in third.stderr
