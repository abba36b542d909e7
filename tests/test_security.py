"""Security: CSRF, JSON-only API writes, XSS, sign-in limits and redirects, cookies,
password storage, the first admin, disabled users, the last admin, and the user CLI."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from werkzeug.security import check_password_hash

from kb import create_app
from kb.cli import main as cli
from kb.db import Base, Database
from kb.users import UserError, authenticate, get_user, update_user, user_for_token
from tests.conftest import PASSWORD, csrf_from, login, post_form, write_seed

# -- CSRF --------------------------------------------------------------------------------------


def _refused(response) -> None:
    assert response.status_code == 400
    assert "This form has expired or came from another site" in response.get_data(as_text=True)


def test_sign_in_without_csrf_token_is_refused(anon):
    _refused(anon.post("/login", data={"username": "alice", "password": PASSWORD}))
    _refused(anon.post("/login", data={"username": "alice", "password": PASSWORD,
                                       "csrf_token": "forged"}))
    assert anon.get("/").status_code == 302  # still not signed in


def test_proposal_without_csrf_token_is_refused(client):
    form = {"title": "Sneaky", "answer": "Posted from another site.", "reason": "csrf"}
    _refused(client.post("/propose", data=form))
    # a token from someone else's session does not count either
    other = client.application.test_client()
    stolen = csrf_from(other.get("/login").get_data(as_text=True))
    _refused(client.post("/propose", data={**form, "csrf_token": stolen}))
    assert client.get("/api/proposals").get_json()["proposals"] == []


def test_edit_without_csrf_token_is_refused(app, trainer):
    store = app.extensions["kb"].store
    before = store.read("refund-status.md")
    _refused(trainer.post("/e/refund-status/edit", data={
        "title": "Refund status", "answer": "Hacked.", "reason": "csrf",
        "base_version": before.version}))
    assert store.read("refund-status.md") == before


def test_logout_without_csrf_token_is_refused(client):
    _refused(client.post("/logout"))
    assert client.get("/").status_code == 200  # still signed in


@pytest.mark.parametrize("method, url", [
    ("POST", "/api/proposals"),
    ("PUT", "/api/entries/refund-status"),
    ("POST", "/api/entries/refund-status/retire"),
    ("POST", "/api/entries/refund-status/restore"),
    ("POST", "/api/compose/refund-status"),
])
def test_api_writes_need_json_even_when_signed_in(app, trainer, method, url):
    store = app.extensions["kb"].store
    head = store.head()
    body = {"title": "Form post", "answer": "x", "reason": "csrf", "base_version": "",
            "version": store.version_of("refund-status.md")}
    response = trainer.open(url, method=method, data=body)
    assert response.status_code == 415
    assert "application/json" in response.get_json()["message"]
    response = trainer.open(url, method=method, data='{"reason": "x"}',
                            content_type="text/plain")
    assert response.status_code == 415
    assert store.head() == head
    assert trainer.get("/api/proposals").get_json()["proposals"] == []


# -- XSS -----------------------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
LINK = "[x](javascript:alert(1))"
APP_SCRIPT = re.compile(r"^/static/[\w./-]+$")


class _LiveMarkup(HTMLParser):
    """Collects what a browser would run: scripts, on* handlers, javascript: URLs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and not APP_SCRIPT.match(attrs.get("src") or ""):
            self.found.append(f"<script {attrs}>")
        for name, value in attrs.items():
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...>")
            if name in ("href", "src", "action", "formaction") and \
                    (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value}>")


def _assert_inert(html: str, where: str) -> None:
    parser = _LiveMarkup()
    parser.feed(html)
    parser.close()
    assert parser.found == [], f"live markup on {where}"
    # and the payloads' own tags never appear unescaped
    for raw in ("<script>", "<img src=x", 'href="javascript'):
        assert raw not in html, f"{raw} on {where}"


def test_xss_payloads_come_out_inert_everywhere(app, client, trainer):
    title = f"Evil {SCRIPT} title {IMG}"
    response = post_form(client, "/propose", {
        "title": title, "phrasings": f"{SCRIPT}\n{IMG}\n{LINK}",
        "answer": f"Hello {SCRIPT}\n\n{IMG}\n\nClick {LINK} now",
        "phone": f"- {IMG}\n- {LINK}", "reason": f"Why {SCRIPT}", "tags": "xss"})
    assert response.status_code == 302
    proposal = client.get("/api/proposals").get_json()["proposals"][0]
    pid, slug = proposal["id"], proposal["slug"]

    pages = {"my proposals": (client, "/proposals"), "queue": (trainer, "/review"),
             "review": (trainer, f"/review/{pid}")}
    for where, (who, url) in pages.items():
        page = who.get(url).get_data(as_text=True)
        assert "&lt;script&gt;" in page, f"the payload is shown escaped on {where}"
        _assert_inert(page, where)

    assert post_form(trainer, f"/review/{pid}", {"action": "approve"}).status_code == 302
    version = app.extensions["kb"].store.version_of(f"{slug}.md")
    pages = {
        "entry": f"/e/{slug}",
        "history": f"/history/{slug}.md",
        "diff": f"/history/{slug}.md/diff?a=&b={version}",
        "version": f"/history/{slug}.md/at/{version}",
        "changes": "/changes",
        "search": "/?q=evil+title",
        "search by phrase": "/?q=alert",
        "suggest": f"/e/{slug}/suggest",
    }
    for where, url in pages.items():
        response = client.get(url)
        assert response.status_code == 200, where
        page = response.get_data(as_text=True)
        assert "&lt;script&gt;" in page or where == "search by phrase", where
        _assert_inert(page, where)
    filled = post_form(client, f"/e/{slug}", {"customer_name": SCRIPT})
    assert filled.status_code == 200 and "&lt;script&gt;" in filled.get_data(as_text=True)
    _assert_inert(filled.get_data(as_text=True), "entry with values")
    assert f"/e/{slug}" in client.get("/?q=evil+title").get_data(as_text=True)
    page = trainer.get(f"/e/{slug}/edit").get_data(as_text=True)
    _assert_inert(page, "edit")

    data = client.get("/api/search?q=evil+title").get_json()
    hit = next(r for r in data["results"] if r["slug"] == slug)
    _assert_inert(hit["snippet"], "API snippet")
    entry = client.get(f"/api/entries/{slug}").get_json()
    _assert_inert(entry["answer_html"] + entry["phone_html"], "API entry html")
    email = client.post(f"/api/compose/{slug}", json={"customer_name": IMG}).get_json()
    _assert_inert(email["html"], "composed email")


# -- signing in ------------------------------------------------------------------------------


def test_a_good_sign_in_clears_the_failures(anon):
    for _ in range(4):
        assert login(anon, "alice", "wrong password!").status_code == 401
    assert login(anon, "alice").status_code == 302
    fresh = anon.application.test_client()
    for _ in range(4):
        assert login(fresh, "alice", "wrong password!").status_code == 401
    assert login(fresh, "alice").status_code == 302


@pytest.mark.parametrize("target, lands", [
    ("https://evil.example/", "/"),
    ("//evil.example", "/"),
    ("/\\evil.example", "/"),
    ("javascript:alert(1)", "/"),
    ("/e/refund-status", "/e/refund-status"),
    ("/?q=refund", "/?q=refund"),
])
def test_next_redirect_stays_on_site(anon, target, lands):
    token = csrf_from(anon.get("/login").get_data(as_text=True))
    response = anon.post("/login?next=" + quote(target, safe=""), data={
        "username": "alice", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == lands


def test_session_cookie_is_httponly_and_samesite_lax(anon):
    response = login(anon, "alice")
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies
    attributes = {a.strip().lower() for a in cookies[-1].split(";")}
    assert "httponly" in attributes and "samesite=lax" in attributes


def test_passwords_and_tokens_are_stored_hashed(app, client):
    page = post_form(client, "/profile", {"action": "token", "label": "x"}).get_data(
        as_text=True)
    token = re.search(r"<code[^>]*>(kb_[^<]+)</code>", page).group(1)
    db = app.extensions["kb_db"]
    with db.engine.connect() as conn:
        hashes = dict(conn.execute(text("SELECT username, password_hash FROM users")).all())
        dump = "\n".join(repr(row) for table in Base.metadata.sorted_tables
                         for row in conn.execute(table.select()))
    assert hashes["alice"] != PASSWORD and check_password_hash(hashes["alice"], PASSWORD)
    assert PASSWORD not in dump and token not in dump


# -- first start, disabled users, the last admin --------------------------------------------------


def _fresh_app(base: Path):
    seed = write_seed(base / "seed")
    return create_app({"INSTANCE_DIR": str(base / "instance"), "SEED_DIR": str(seed),
                       "TESTING": True})


def _close(app) -> None:
    app.extensions["kb"].index.close()
    app.extensions["kb_db"].dispose()


def test_first_start_creates_admin_with_a_one_time_password(tmp_path):
    app = _fresh_app(tmp_path)
    try:
        password = app.config["KB_FIRST_ADMIN_PASSWORD"]
        db = app.extensions["kb_db"]
        admin = get_user(db, "admin")
        assert admin.role == "admin" and admin.must_change_password
        assert admin.password_hash != password
        client = app.test_client()
        response = login(client, "admin", password)
        assert response.status_code == 302 and response.headers["Location"] == "/profile"
        assert "Choose your own password now" in client.get("/profile").get_data(as_text=True)
        response = post_form(client, "/profile", {
            "action": "password", "current": password, "new": "a-new-long-password",
            "confirm": "a-new-long-password"})
        assert response.status_code == 302
        assert not get_user(db, "admin").must_change_password
        other = app.test_client()
        assert login(other, "admin", password).status_code == 401
        response = login(other, "admin", "a-new-long-password")
        assert response.status_code == 302 and response.headers["Location"] == "/"
    finally:
        _close(app)
    again = create_app({"INSTANCE_DIR": str(tmp_path / "instance"),
                        "SEED_DIR": str(tmp_path / "seed"), "TESTING": True})
    try:
        assert "KB_FIRST_ADMIN_PASSWORD" not in again.config  # only on the very first start
    finally:
        _close(again)


def test_disabled_user_cannot_sign_in_and_loses_the_session(app, client):
    update_user(app.extensions["kb_db"], "alice", active=False)
    assert client.get("/").status_code == 302
    response = login(app.test_client(), "alice")
    assert response.status_code == 401
    assert "This account is disabled" in response.get_data(as_text=True)


def test_admin_page_disables_a_user(app, admin):
    response = post_form(admin, "/admin/users", {"action": "disable", "username": "alice"})
    assert response.status_code == 302
    assert login(app.test_client(), "alice").status_code == 401
    post_form(admin, "/admin/users", {"action": "enable", "username": "alice"})
    assert login(app.test_client(), "alice").status_code == 302


def test_the_last_admin_cannot_be_demoted_or_disabled(app, admin):
    db = app.extensions["kb_db"]
    update_user(db, "admin", active=False)  # the first-start admin; adam is now the only one
    response = post_form(admin, "/admin/users",
                         {"action": "role", "username": "adam", "role": "agent"})
    assert response.status_code == 302
    page = admin.get("/admin/users").get_data(as_text=True)
    assert "last active admin" in page
    assert get_user(db, "adam").role == "admin"
    with pytest.raises(UserError, match="last active admin"):
        update_user(db, "adam", active=False)
    assert get_user(db, "adam").active
    # with a second admin, the first can step down
    update_user(db, "tara", role="admin")
    update_user(db, "adam", role="trainer")
    assert get_user(db, "adam").role == "trainer"


# -- the user CLI ----------------------------------------------------------------------------


@pytest.fixture
def kb_cli(tmp_path):
    runner = CliRunner()
    env = {"KB_INSTANCE_DIR": str(tmp_path), "KB_DATABASE_URL": None, "KB_DATA_DIR": None}

    def run(*args: str, ok: bool = True) -> str:
        result = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    db = Database(f"sqlite:///{tmp_path / 'kb.sqlite'}")
    yield run, db
    db.dispose()


def test_cli_user_lifecycle(kb_cli):
    run, db = kb_cli
    out = run("user", "create", "bob", "--role", "trainer", "--name", "Bob Builder",
              "--email", "bob@example.com")
    password = re.search(r"One-time password: (\S+)", out).group(1)
    bob = authenticate(db, "bob", password, "cli")
    assert (bob.role, bob.display_name, bob.must_change_password) == (
        "trainer", "Bob Builder", True)
    assert "already a user called bob" in run("user", "create", "bob", ok=False)
    assert "user name" in run("user", "create", "Not Valid!", ok=False)

    listing = run("user", "list")
    assert re.search(r"^bob\s+trainer\s+active\s+Bob Builder$", listing, re.M)

    assert "bob is now admin" in run("user", "set-role", "bob", "admin")
    assert get_user(db, "bob").role == "admin"
    assert run("user", "set-role", "bob", "boss", ok=False)
    assert "No user called nobody" in run("user", "set-role", "nobody", "agent", ok=False)

    out = run("user", "reset-password", "bob")
    new = re.search(r"New one-time password for bob: (\S+)", out).group(1)
    assert new != password
    with pytest.raises(UserError):
        authenticate(db, "bob", password, "cli")
    assert authenticate(db, "bob", new, "cli").must_change_password

    run("user", "create", "carol", "--role", "admin")
    assert "can no longer sign in" in run("user", "disable", "bob")
    assert re.search(r"^bob\s+admin\s+disabled", run("user", "list"), re.M)
    with pytest.raises(UserError, match="disabled"):
        authenticate(db, "bob", new, "cli")
    assert "can sign in again" in run("user", "disable", "bob", "--enable")
    assert authenticate(db, "bob", new, "cli").active


def test_cli_refuses_to_remove_the_last_admin(kb_cli):
    run, db = kb_cli
    run("user", "create", "solo", "--role", "admin")
    assert "last active admin" in run("user", "set-role", "solo", "agent", ok=False)
    assert "last active admin" in run("user", "disable", "solo", ok=False)
    assert get_user(db, "solo").role == "admin" and get_user(db, "solo").active


def test_cli_token_create(kb_cli):
    run, db = kb_cli
    run("user", "create", "dana")
    token = run("token", "create", "dana", "--label", "helpdesk").splitlines()[0]
    assert token.startswith("kb_")
    assert user_for_token(db, token).username == "dana"
    assert user_for_token(db, token + "x") is None
    assert "No user called nobody" in run("token", "create", "nobody", ok=False)


def test_one_time_password_must_be_changed_before_anything_else(app):
    from kb.users import create_user

    db = app.extensions["kb_db"]
    create_user(db, "newbie", "temporary-pass-1", must_change=True)
    c = app.test_client()
    login(c, "newbie", "temporary-pass-1")
    assert c.get("/").headers["Location"].endswith("/profile")
    assert c.get("/api/search?q=refund").status_code == 403
    page = c.get("/profile").get_data(as_text=True)
    response = c.post("/profile", data={
        "csrf_token": csrf_from(page), "action": "password", "current": "temporary-pass-1",
        "new": "my-own-password-2", "confirm": "my-own-password-2"})
    assert response.status_code == 302
    assert c.get("/").status_code == 200
