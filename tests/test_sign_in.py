"""Sign-in throttling, server-side sessions, password rules, tokens and service accounts."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from kb import create_app, throttle
from kb.cli import main as cli
from kb.db import Database, User, utcnow
from kb.users import (
    UserError,
    authenticate,
    create_token,
    create_user,
    get_user,
    reset_password,
    update_user,
)
from tests.conftest import PASSWORD, csrf_from, login, post_form
from tests.test_privacy import _seed

HOME, OFFICE, ATTACKER = "10.0.0.1", "192.0.2.10", "203.0.113.66"


def login_from(client, address: str, username: str, password: str = PASSWORD):
    env = {"REMOTE_ADDR": address}
    page = client.get("/login", environ_base=env).get_data(as_text=True)
    return client.post("/login", environ_base=env, data={
        "username": username, "password": password, "csrf_token": csrf_from(page)})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- 9. throttling per name and address, never a lock a stranger can set -------------------


def test_a_stranger_cannot_lock_anyone_out(app):
    attacker = app.test_client()
    for _ in range(12):
        assert login_from(attacker, ATTACKER, "adam", "wrong password!").status_code == 401
    # the attacker's address now waits, even with the right password ...
    response = login_from(attacker, ATTACKER, "adam")
    assert response.status_code == 401
    assert "Too many failed sign-ins for this name from your address" in response.get_data(
        as_text=True)
    # ... but the admin at their own desk signs in at once
    assert login_from(app.test_client(), HOME, "adam").status_code == 302


def test_delays_start_after_five_failures_double_and_stop_at_fifteen_minutes():
    assert [throttle.delay_after(n).total_seconds() for n in range(1, 12)] == [
        0, 0, 0, 0, 15, 30, 60, 120, 240, 480, 900]
    assert throttle.delay_after(10_000) == dt.timedelta(minutes=15)


def test_a_delay_runs_out_and_a_good_sign_in_starts_afresh(app):
    db = app.extensions["kb_db"]
    now = utcnow()
    with db.session() as s:
        for _ in range(5):
            throttle.record_failure(s, "alice", HOME, now)
        s.commit()
        with pytest.raises(throttle.Throttled, match="Try again in 1 minute"):
            throttle.check(s, "alice", HOME, now + dt.timedelta(seconds=14))
        throttle.check(s, "alice", HOME, now + dt.timedelta(seconds=16))  # no raise
        throttle.check(s, "alice", OFFICE, now)  # another address was never slowed
    with db.session() as s:
        throttle.clear_pair(s, "alice", HOME)
        throttle.record_failure(s, "alice", HOME, now)
        s.commit()
        throttle.check(s, "alice", HOME, now)


def test_unlock_command_and_admin_reset_clear_the_counters(app, tmp_path):
    db = app.extensions["kb_db"]
    for _ in range(6):
        login_from(app.test_client(), OFFICE, "alice", "wrong password!")
    assert login_from(app.test_client(), OFFICE, "alice").status_code == 401
    env = {"KB_INSTANCE_DIR": app.config["INSTANCE_DIR"],
           "KB_DATABASE_URL": app.config["DATABASE_URL"],
           "KB_DATA_DIR": None}
    result = CliRunner().invoke(cli, ["user", "unlock", "alice"], env=env)
    assert result.exit_code == 0 and "alice may sign in again" in result.output
    assert login_from(app.test_client(), OFFICE, "alice").status_code == 302
    result = CliRunner().invoke(cli, ["user", "unlock", "nobody"], env=env)
    assert result.exit_code == 1 and "No user called nobody" in result.output

    for _ in range(6):
        login_from(app.test_client(), OFFICE, "tara", "wrong password!")
    assert login_from(app.test_client(), OFFICE, "tara").status_code == 401
    password = reset_password(db, "tara")
    assert login_from(app.test_client(), OFFICE, "tara", password).status_code == 302


def test_admin_sees_who_is_slowed_down_and_why_and_can_unlock(app, admin):
    for _ in range(6):
        login_from(app.test_client(), ATTACKER, "tara", "wrong password!")
    page = admin.get("/admin/users").get_data(as_text=True)
    section = page[page.index('id="throttled"'):]
    assert "tara" in section and ATTACKER in section
    assert "5 failed sign-ins for this name from " + ATTACKER in section
    post_form(admin, "/admin/users", {"action": "unlock", "username": "tara"})
    assert login_from(app.test_client(), ATTACKER, "tara").status_code == 302
    assert "Nobody is slowed down now" in admin.get("/admin/users").get_data(as_text=True)


# -- 10. one shared office address ---------------------------------------------------------


def test_a_noisy_office_address_does_not_lock_out_the_office(app):
    db = app.extensions["kb_db"]
    for i in range(40):  # many people behind one NAT address, all mistyping, some unknown
        login_from(app.test_client(), OFFICE, f"temp{i % 10}", "wrong password!")
    # those who type their password right get in
    for name in ("alice", "tara", "adam"):
        assert login_from(app.test_client(), OFFICE, name).status_code == 302, name
    # the address is noisy, so a name failing from it waits after its first failure
    create_user(db, "ben", "ben-long-password-7")
    assert login_from(app.test_client(), OFFICE, "ben", "wrong password!").status_code == 401
    response = login_from(app.test_client(), OFFICE, "ben", "ben-long-password-7")
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    assert login_from(app.test_client(), HOME, "ben", "ben-long-password-7").status_code == 302
    reasons = [b.reason for b in throttle.current_blocks(db) if not b.username]
    assert reasons and "failed sign-ins from this address" in reasons[0]


# -- 11. sessions end on the server side -----------------------------------------------------


def _copy_session(app, client):
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def test_a_copied_cookie_dies_with_sign_out(app, client):
    thief = _copy_session(app, client)
    assert thief.get("/").status_code == 200
    post_form(client, "/logout", {}, page_url="/")
    assert thief.get("/").status_code == 302
    assert thief.get("/api/search?q=refund").status_code == 401


def test_a_password_change_signs_out_the_other_sessions(app, client):
    other = app.test_client()
    assert login(other, "alice").status_code == 302
    response = post_form(client, "/profile", {"action": "password", "current": PASSWORD,
                                              "new": "a-brand-new-phrase", "confirm":
                                              "a-brand-new-phrase"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200  # the one that changed it stays in
    assert other.get("/").status_code == 302


def test_sign_out_everywhere(app, client):
    other = app.test_client()
    assert login(other, "alice").status_code == 302
    response = post_form(client, "/profile", {"action": "everywhere"})
    assert response.headers["Location"].endswith("/login")
    assert client.get("/").status_code == 302 and other.get("/").status_code == 302
    assert login(app.test_client(), "alice").status_code == 302


def test_after_an_admin_reset_the_old_session_can_make_no_token(app, client, anon):
    db = app.extensions["kb_db"]
    old_token = create_token(db, "alice")
    html = client.get("/profile").get_data(as_text=True)
    reset_password(db, "alice")
    response = client.post("/profile", data={"csrf_token": csrf_from(html), "action": "token"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert anon.get("/api/search?q=refund", headers=_bearer(old_token)).status_code == 401


def test_re_enabling_a_user_revives_neither_sessions_nor_tokens(app, client, anon):
    db = app.extensions["kb_db"]
    token = create_token(db, "alice")
    update_user(db, "alice", active=False)
    update_user(db, "alice", active=True)
    assert client.get("/").status_code == 302
    assert anon.get("/api/search?q=refund", headers=_bearer(token)).status_code == 401


def test_a_one_time_password_session_can_only_change_it(app):
    db = app.extensions["kb_db"]
    create_user(db, "newbie", "temporary-pass-1", must_change=True)
    c = app.test_client()
    login(c, "newbie", "temporary-pass-1")
    html = c.get("/profile").get_data(as_text=True)
    assert 'value="token"' not in html  # only the password form is offered
    for action in ("token", "profile", "revoke"):
        response = c.post("/profile", data={"csrf_token": csrf_from(html), "action": action,
                                            "display_name": "X", "token_id": "1"})
        assert response.status_code == 403, action
    assert not [t for t in get_tokens(db, "newbie")]
    for path in ("/", "/gaps", "/admin/users", "/e/refund-status"):
        assert c.get(path).status_code in (302, 403), path


def get_tokens(db, username):
    from kb.users import list_tokens

    return list_tokens(db, get_user(db, username).id)


def test_an_older_database_gets_the_new_columns(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, username VARCHAR(80), "
                     "display_name VARCHAR(120), email VARCHAR(200), role VARCHAR(20), "
                     "password_hash VARCHAR(300), active BOOLEAN, must_change_password BOOLEAN,"
                     " created_at DATETIME)")
        conn.execute("INSERT INTO users VALUES (1, 'olga', 'Olga', '', 'agent', 'x', 1, 0, "
                     "'2026-01-01 00:00:00')")
    db = Database(f"sqlite:///{path}")
    try:
        olga = get_user(db, "olga")
        assert olga.session_generation == 0 and not olga.is_service
    finally:
        db.dispose()


# -- 12. password rules, one-time passwords ---------------------------------------------


@pytest.mark.parametrize("password, message", [
    ("aaaaaaaaaa", "easy to guess"),
    ("password12", "easy to guess"),
    ("Qwerty123456!", "similar to a commonly used password"),
    ("iloveyou2026", "easy to guess"),
    # accepted by the old list and rules, refused by the estimator
    ("1234567890", "easy to guess"), ("qwertyuiop1", "easy to guess"),
    ("1q2w3e4r5t", "easy to guess"), ("abcdefghij", "easy to guess"),
    ("passwordpassword", "easy to guess"), ("P@ssw0rd1234", "easy to guess"),
    ("alice", "at least 10"),
    ("alice-2026-x", "user name"),
])
def test_weak_passwords_are_refused(app, password, message):
    with pytest.raises(UserError, match=message):
        update_user(app.extensions["kb_db"], "alice", password=password)


def test_a_memorable_strong_password_is_accepted(app):
    for password in ("quiet-sofa-lamp-1", "summer tea house 42"):
        update_user(app.extensions["kb_db"], "alice", password=password)


def test_the_one_time_password_cannot_be_changed_to_itself(app):
    db = app.extensions["kb_db"]
    create_user(db, "newbie", "temporary-pass-1", must_change=True)
    c = app.test_client()
    login(c, "newbie", "temporary-pass-1")
    post_form(c, "/profile", {"action": "password", "current": "temporary-pass-1",
                              "new": "temporary-pass-1", "confirm": "temporary-pass-1"})
    assert "That is your current password" in c.get("/profile").get_data(as_text=True)
    assert get_user(db, "newbie").must_change_password


def test_one_time_passwords_expire(app):
    db = app.extensions["kb_db"]
    create_user(db, "late", "temporary-pass-1", must_change=True)
    with db.session() as s:
        s.execute(update(User).where(User.username == "late").values(
            password_set_at=utcnow() - dt.timedelta(hours=73)))
        s.commit()
    response = login(app.test_client(), "late", "temporary-pass-1")
    assert response.status_code == 401
    assert "one-time password has expired" in response.get_data(as_text=True)
    assert authenticate(db, "late", "temporary-pass-1", "x", one_time_hours=100)
    # a password the user chose never expires
    create_user(db, "old", "my-own-password-9")
    with db.session() as s:
        s.execute(update(User).where(User.username == "old").values(
            password_set_at=utcnow() - dt.timedelta(days=400)))
        s.commit()
    assert login(app.test_client(), "old", "my-own-password-9").status_code == 302


def _session_of(app, client) -> dict:
    cookie = client.get_cookie("session")
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)


@pytest.mark.parametrize("form", [
    {"action": "create", "username": "newbie", "role": "agent"},
    {"action": "reset", "username": "alice"},
])
def test_admin_sees_one_time_passwords_on_the_page_never_in_the_cookie(app, admin, form):
    response = post_form(admin, "/admin/users", form)
    assert response.status_code == 200
    password = re.search(r'id="one-time-password">.*?<code[^>]*>([^<]+)</code>',
                         response.get_data(as_text=True), re.S).group(1)
    assert authenticate(app.extensions["kb_db"], form["username"], password, "x")
    assert password not in repr(_session_of(app, admin))


# -- 13. revoking a token that is not yours ---------------------------------------------


def test_revoking_someone_elses_or_a_missing_token_is_404(app, client, anon):
    db = app.extensions["kb_db"]
    theirs = create_token(db, "tara")
    tara_id = get_user(db, "tara").id
    from kb.users import list_tokens

    their_id = list_tokens(db, tara_id)[0].id
    for token_id in (str(their_id), "99999", "x"):
        response = post_form(client, "/profile", {"action": "revoke", "token_id": token_id})
        assert response.status_code == 404, token_id
        assert "You have no token with that number" in response.get_data(as_text=True)
        assert "Token revoked" not in client.get("/profile").get_data(as_text=True)
    assert anon.get("/api/search?q=refund", headers=_bearer(theirs)).status_code == 200


# -- 20. service accounts -------------------------------------------------------------------


@pytest.fixture
def kb_cli(app):
    env = {"KB_INSTANCE_DIR": app.config["INSTANCE_DIR"],
           "KB_DATABASE_URL": app.config["DATABASE_URL"],
           "KB_DATA_DIR": None}

    def run(*args: str, ok: bool = True):
        result = CliRunner().invoke(cli, list(args), env=env)
        assert (result.exit_code == 0) == ok, result.output
        return result

    return run


def test_a_service_account_token_made_on_the_command_line_works(app, kb_cli, anon):
    out = kb_cli("user", "create", "helpdesk-bot", "--service").output
    assert "cannot sign in" in out and "kb token create helpdesk-bot" in out
    token = kb_cli("token", "create", "helpdesk-bot").stdout.strip()
    response = anon.get("/api/search?q=refund", headers=_bearer(token))
    assert response.status_code == 200
    assert "helpdesk-bot" in kb_cli("user", "list").output
    # no password: it cannot sign in, nor be given one
    db = app.extensions["kb_db"]
    assert login(app.test_client(), "helpdesk-bot", "").status_code in (400, 401)
    with pytest.raises(UserError, match="service account"):
        reset_password(db, "helpdesk-bot")


def test_a_normal_users_command_line_token_is_refused_with_a_clear_message(app, kb_cli, anon):
    kb_cli("user", "create", "dana")
    result = kb_cli("token", "create", "dana")
    response = anon.get("/api/search?q=refund", headers=_bearer(result.stdout.strip()))
    assert response.status_code == 403
    message = response.get_json()["message"]
    assert "one-time password" in message and "--service" in message


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(tmp_path):
    app = create_app({"INSTANCE_DIR": str(tmp_path / "instance"), "SEED_DIR": str(_seed(tmp_path)),
                      "TESTING": True, "TRUSTED_PROXIES": 1})
    try:
        create_user(app.extensions["kb_db"], "alice", PASSWORD)

        def via_proxy(client, forwarded: str, password: str):
            env = {"REMOTE_ADDR": "127.0.0.1"}
            headers = {"X-Forwarded-For": forwarded}
            page = client.get("/login", environ_base=env, headers=headers)
            return client.post("/login", environ_base=env, headers=headers, data={
                "username": "alice", "password": password,
                "csrf_token": csrf_from(page.get_data(as_text=True))})

        for _ in range(6):
            via_proxy(app.test_client(), ATTACKER, "wrong password!")
        assert via_proxy(app.test_client(), ATTACKER, PASSWORD).status_code == 401
        assert via_proxy(app.test_client(), HOME, PASSWORD).status_code == 302
    finally:
        app.extensions["kb"].index.close()
        app.extensions["kb_db"].dispose()


def test_a_valid_bearer_token_wins_over_a_session_cookie_from_another_browser(app):
    """A client holding a session cookie signed in from another browser (session
    protection refuses it) and a valid token is served as the token's owner."""
    db = app.extensions["kb_db"]
    token = create_token(db, "alice")
    c = app.test_client()
    assert login(c, "tara").status_code == 302
    headers = {**_bearer(token), "User-Agent": "curl/8.0 (another program)"}
    response = c.get("/api/proposals", headers=headers)
    assert response.status_code == 200
    response = c.post("/api/events", json={"kind": "copy", "slug": "refund-status"},
                      headers=headers)
    assert response.status_code == 201  # a token needs no CSRF token
    # a wrong token with that cookie is still refused, never served as the cookie's owner
    assert c.get("/api/proposals", headers={**_bearer("wrong"), "User-Agent": "curl/8.0"}
                 ).status_code == 401


def test_changing_the_password_revokes_api_tokens_unless_kept(app, client, anon):
    db = app.extensions["kb_db"]
    token = create_token(db, "alice")
    page = client.get("/profile").get_data(as_text=True)
    assert 'name="revoke_tokens" value="on" checked' in page  # offered, on by default
    response = post_form(client, "/profile", {
        "action": "password", "current": PASSWORD, "new": "a-new-secret-phrase-7",
        "confirm": "a-new-secret-phrase-7", "revoke_tokens": "on"}, page_url="/profile")
    assert response.status_code == 302
    assert "API token was revoked" in client.get("/profile").get_data(as_text=True)
    assert anon.get("/api/search?q=refund", headers=_bearer(token)).status_code == 401
    # unticked, the tokens stay
    kept = create_token(db, "alice")
    post_form(client, "/profile", {
        "action": "password", "current": "a-new-secret-phrase-7",
        "new": "another-secret-phrase-8", "confirm": "another-secret-phrase-8"},
        page_url="/profile")
    assert anon.get("/api/search?q=refund", headers=_bearer(kept)).status_code == 200


def test_forwarded_headers_count_only_from_a_named_proxy(tmp_path):
    """A client that reaches kb directly cannot pick the address sign-in throttling
    counts by rotating X-Forwarded-For, nor the host by X-Forwarded-Host; a request
    from the named proxy is counted by the address it forwards for."""
    from kb.proxies import ProxySettingError, parse

    app = create_app({"INSTANCE_DIR": str(tmp_path / "instance"), "SEED_DIR": str(_seed(tmp_path)),
                      "TESTING": True, "TRUSTED_PROXIES": "10.9.0.5, 10.8.0.0/16"})
    try:
        create_user(app.extensions["kb_db"], "alice", PASSWORD)

        def attempt(peer: str, forwarded: str, password: str, host: str = ""):
            client = app.test_client()
            env = {"REMOTE_ADDR": peer}
            headers = {"X-Forwarded-For": forwarded}
            if host:
                headers["X-Forwarded-Host"] = host
            page = client.get("/login", environ_base=env, headers=headers)
            return client.post("/login", environ_base=env, headers=headers, data={
                "username": "alice", "password": password,
                "csrf_token": csrf_from(page.get_data(as_text=True))})

        # straight to kb, a new forged address each time: all counted as its own
        for n in range(7):
            attempt(ATTACKER, f"198.51.100.{n}", "wrong password!")
        assert attempt(ATTACKER, "198.51.100.99", PASSWORD).status_code == 401
        # through the named proxies (one behind the other), the person's address counts
        for _ in range(6):
            attempt("10.9.0.5", f"{OFFICE}, 10.8.3.4", "wrong password!")
        assert attempt("10.9.0.5", f"{OFFICE}, 10.8.3.4", PASSWORD).status_code == 401
        assert attempt("10.9.0.5", f"{HOME}, 10.8.3.4", PASSWORD).status_code == 302
        # the host a direct client claims is not believed
        response = attempt(HOME, HOME, "wrong password!", host="evil.example")
        assert "evil.example" not in response.headers.get("Location", "")
    finally:
        app.extensions["kb"].index.close()
        app.extensions["kb_db"].dispose()
    assert parse("") == [] and parse("0") == []
    assert [str(n) for n in parse("2")] == ["127.0.0.0/8", "::1/128"]  # the older form
    with pytest.raises(ProxySettingError, match="not an address or network"):
        parse("proxy.example.com")


def test_parallel_guesses_are_checked_and_counted_as_one_step(app):
    """Sixteen wrong passwords sent at once for a fresh (name, address) get no more
    evaluations than sixteen sent one after another."""
    from concurrent.futures import ThreadPoolExecutor

    from kb.users import authenticate

    db = app.extensions["kb_db"]

    def guess(address: str) -> str:
        try:
            authenticate(db, "alice", "not the password", address)
        except UserError as exc:
            return "throttled" if "Too many" in str(exc) else "evaluated"
        return "signed in"

    one_by_one = [guess("198.51.100.1") for _ in range(16)]
    with ThreadPoolExecutor(16) as pool:
        at_once = list(pool.map(guess, ["198.51.100.2"] * 16))
    assert one_by_one.count("evaluated") == 5
    assert at_once.count("evaluated") == one_by_one.count("evaluated"), at_once
    assert at_once.count("throttled") == 11
    # the right password from a third address still works at once, and is not counted
    assert authenticate(db, "alice", PASSWORD, "198.51.100.3").username == "alice"


def test_guesses_from_many_addresses_share_one_budget_and_the_owner_never_waits(
        app, monkeypatch):
    """OWASP's device cookies: guesses for one account from browsers it never signed in
    on share one hourly budget whatever their addresses; the owner's own browser (it
    signed in before) still signs in at once, and a shared office address full of
    failures does not keep the admin out."""
    from kb import throttle

    monkeypatch.setattr(throttle, "UNKNOWN_PER_HOUR", 12)
    owner = app.test_client()
    assert login(owner, "alice").status_code == 302  # her browser, known from now on
    assert owner.get_cookie("kb_device") is not None

    def attempt(client, address: str, password: str):
        env = {"REMOTE_ADDR": address}
        page = client.get("/login", environ_base=env)
        return client.post("/login", environ_base=env, data={
            "username": "alice", "password": password,
            "csrf_token": csrf_from(page.get_data(as_text=True))})

    answers = [attempt(app.test_client(), f"198.51.100.{n}", "wrong password!")
               for n in range(20)]  # a new address, and a new browser, every time
    pages = [a.get_data(as_text=True) for a in answers]
    evaluated = sum("do not match" in p for p in pages)
    assert evaluated == 12, evaluated
    assert sum("never signed in on" in p for p in pages) == 8
    # the right password from yet another new browser waits too ...
    assert attempt(app.test_client(), "198.51.100.99", PASSWORD).status_code == 401
    # ... but not from hers, whatever the address (a shared office's included)
    for _ in range(12):
        attempt(app.test_client(), OFFICE, "wrong password!")
    assert attempt(owner, OFFICE, PASSWORD).status_code == 302
    # a cookie made for someone else, or forged, counts for nothing
    forged = app.test_client()
    forged.set_cookie("kb_device", owner.get_cookie("kb_device").value + "x")
    assert attempt(forged, HOME, PASSWORD).status_code == 401
    # the admin sees the account-wide pause and can lift it
    blocks = throttle.current_blocks(app.extensions["kb_db"])
    assert any("never signed in on" in b.reason for b in blocks)
    throttle.unlock(app.extensions["kb_db"], "alice")
    assert attempt(app.test_client(), HOME, PASSWORD).status_code == 302


def test_a_known_browser_that_keeps_failing_becomes_a_stranger(app, monkeypatch):
    from kb import throttle

    monkeypatch.setattr(throttle, "DEVICE_FREE", 3)
    own = app.test_client()
    assert login(own, "alice").status_code == 302
    results = [login(own, "alice", "wrong password!").get_data(as_text=True)
               for _ in range(9)]
    # three on its own allowance, then the address rules: five free, then a delay
    assert sum("do not match" in r for r in results) == 3 + throttle.PAIR_FREE
    assert "Too many failed sign-ins" in results[-1]
