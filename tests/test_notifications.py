"""Notifications: proposers hear what became of their proposals, owners when their
entries fall due; in the app (badge and list) and by email through a real SMTP
server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import logging
import re
import socket

import pytest
from sqlalchemy import event

from kb import create_app
from kb import notifications as N
from kb.db import Notification
from kb.entry import fields_of, parse_entry
from kb.proposals import get as get_proposal
from kb.users import create_user, get_user
from tests.conftest import PASSWORD, PEOPLE, TARA, entry_text, login, post_form, write_seed

SECRET = "s3cret-Pa55"


def _propose(client, title: str, answer: str = "We are looking into it.") -> int:
    response = client.post("/api/proposals", json={
        "title": title, "answer": answer, "reason": "customers ask this on chat"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _review(trainer, pid: int, action: str, comment: str = "", text: str | None = None):
    page = trainer.get(f"/review/{pid}").get_data(as_text=True)
    if text is None:
        text = re.search(r'<textarea name="text"[^>]*>(.*?)</textarea>', page, re.S).group(1)
        text = text.replace("&#34;", '"').replace("&#39;", "'").replace("&lt;", "<") \
            .replace("&gt;", ">").replace("&amp;", "&")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return trainer.post(f"/review/{pid}", data={"csrf_token": token, "action": action,
                                                "comment": comment, "text": text})


def _badge(client) -> str | None:
    nav = client.get("/").get_data(as_text=True)
    found = re.search(r'id="nav-notifications">Notifications(?: <span class="count" '
                      r'aria-label="(\d+) unread">)?', nav)
    assert found, "no Notifications link in the navigation"
    return found.group(1)


def _rows(app, username: str) -> list[Notification]:
    db = app.extensions["kb_db"]
    return N.list_for(db, get_user(db, username).id)


# -- the functions ----------------------------------------------------------------------------


def test_notify_count_list_and_mark_read(app):
    db = app.extensions["kb_db"]
    alice, tara = get_user(db, "alice"), get_user(db, "tara")
    first = N.notify(db, alice, N.APPROVED, "First", "body one", "/e/refund-status")
    second = N.notify(db, alice, N.REJECTED, "Second")
    N.notify(db, tara, N.REJECTED, "Tara's own")
    assert N.unread_count(db, alice.id) == 2
    assert [n.title for n in N.list_for(db, alice.id)] == ["Second", "First"]  # newest first
    assert first.mail == ""  # no SMTP server configured: in the app only
    # nobody marks another person's notification read
    assert N.mark_read(db, tara.id, first.id) is None
    assert N.unread_count(db, alice.id) == 2
    assert N.mark_read(db, alice.id, first.id).read_at is not None
    assert N.unread_count(db, alice.id) == 1
    assert N.mark_all_read(db, alice.id) == 1
    assert N.unread_count(db, alice.id) == 0 and N.unread_count(db, tara.id) == 1
    assert N.list_for(db, alice.id)[0].id == second.id


def test_a_keyed_notification_is_made_once(app):
    db = app.extensions["kb_db"]
    alice = get_user(db, "alice")
    assert N.notify(db, alice, N.DUE, "Due", key="due:x:2026-01-01") is not None
    assert N.notify(db, alice, N.DUE, "Due again", key="due:x:2026-01-01") is None
    assert N.notify(db, get_user(db, "tara"), N.DUE, "Due", key="due:x:2026-01-01") is not None
    assert [n.title for n in N.list_for(db, alice.id)] == ["Due"]


# -- proposals reviewed, through the pages ------------------------------------------------


def test_send_back_approve_with_changes_and_reject_reach_the_proposer(app, client, trainer):
    assert _badge(client) is None
    pid = _propose(client, "Parcel left at the wrong door")
    response = _review(trainer, pid, "send_back", "Name the courier's photo proof")
    assert response.status_code == 302
    assert _badge(client) == "1"
    page = client.get("/notifications").get_data(as_text=True)
    assert "Your proposal “Parcel left at the wrong door” was sent back for changes" in page
    assert "Tara Example wrote: “Name the courier&#39;s photo proof”" in page
    row = _rows(app, "alice")[0]
    assert row.kind == N.SENT_BACK and row.link == f"/proposals/{pid}/resubmit"
    # opening it marks it read and leads to the resubmit page
    opened = client.get(f"/notifications/{row.id}")
    assert opened.status_code == 302 and opened.headers["Location"] == f"/proposals/{pid}/resubmit"
    assert _badge(client) is None
    # resubmitted, then approved with the trainer's own changes
    fields = fields_of(parse_entry("x", get_proposal(app.extensions["kb_db"], pid).text))
    assert post_form(client, f"/proposals/{pid}/resubmit",
                     fields | {"answer": "We are checking the photo.",
                               "reason": "added the photo"}).status_code == 302
    edited = get_proposal(app.extensions["kb_db"], pid).text.replace(
        "checking the photo", "checking the courier's photo")
    assert _review(trainer, pid, "approve", "Good catch", text=edited).status_code == 302
    newest = _rows(app, "alice")[0]
    assert newest.kind == N.CHANGED and newest.link.startswith("/e/")
    assert newest.title == "Your proposal “Parcel left at the wrong door” was approved with changes"
    assert "Good catch" in newest.body
    # approved as proposed, and rejected
    pid2 = _propose(client, "Voucher code refused")
    assert _review(trainer, pid2, "approve").status_code == 302
    assert _rows(app, "alice")[0].kind == N.APPROVED
    pid3 = _propose(client, "Gift wrap missing")
    assert _review(trainer, pid3, "reject", "We do not offer gift wrap").status_code == 302
    rejected = _rows(app, "alice")[0]
    assert rejected.kind == N.REJECTED and "We do not offer gift wrap" in rejected.body
    assert _badge(client) == "3"
    # mark all read
    page = client.get("/notifications").get_data(as_text=True)
    assert 'id="mark-all-read"' in page
    assert post_form(client, "/notifications/read", {}, page_url="/notifications") \
        .status_code == 302
    assert _badge(client) is None
    assert 'id="mark-all-read"' not in client.get("/notifications").get_data(as_text=True)


def test_nobody_is_told_of_their_own_review_nor_opens_anothers(app, client, trainer):
    pid = _propose(trainer, "Trainer's own idea")
    assert _review(trainer, pid, "approve").status_code == 302
    assert _rows(app, "tara") == []
    db = app.extensions["kb_db"]
    theirs = N.notify(db, get_user(db, "tara"), N.APPROVED, "Private", link="/e/refund-status")
    assert client.get(f"/notifications/{theirs.id}").status_code == 404
    assert N.unread_count(db, get_user(db, "tara").id) == 1


def test_the_badge_is_one_count_on_pages_and_none_on_the_api(app, client):
    db = app.extensions["kb_db"]
    N.notify(db, get_user(db, "alice"), N.APPROVED, "Something")
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    client.get("/api/search?q=refund")  # the first request of the day runs the due check
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert client.get("/api/search?q=refund").status_code == 200
        assert not [s for s in seen if "notifications" in s]
        assert 'aria-label="1 unread"' in client.get("/").get_data(as_text=True)
        assert len([s for s in seen if "notifications" in s]) == 1
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_an_admin_sets_an_email_and_a_bad_one_is_refused(app, admin):
    assert post_form(admin, "/admin/users", {"action": "email", "username": "alice",
                                             "email": "alice.new@example.com"}).status_code == 302
    assert get_user(app.extensions["kb_db"], "alice").email == "alice.new@example.com"
    post_form(admin, "/admin/users", {"action": "email", "username": "alice",
                                      "email": "a@x.com\r\nBcc: eve@example.com"})
    assert "one plain address" in admin.get("/admin/users").get_data(as_text=True)
    assert get_user(app.extensions["kb_db"], "alice").email == "alice.new@example.com"


# -- entries falling due --------------------------------------------------------------------


def _due_sheet(app, days_ago: int = 400) -> None:
    long_ago = (dt.date.today() - dt.timedelta(days=days_ago)).isoformat()
    soon = (dt.date.today() - dt.timedelta(days=10)).isoformat()
    app.extensions["kb"].sheet.write({
        "old-advice.md": entry_text("Old advice", "Zanzibar rules.", owner="tara",
                                    last_reviewed=long_ago, review_every_days=90),
        "by-display-name.md": entry_text("Owned by name", "Text.", owner="Tara Example",
                                         last_reviewed=long_ago, review_every_days=90),
        "not-yet.md": entry_text("Not yet", "Text.", owner="tara", last_reviewed=soon,
                                 review_every_days=90),
        "team-owned.md": entry_text("Team owned", "Text.", owner="billing-team",
                                    last_reviewed=long_ago, review_every_days=90),
    }, message="entries with review dates", author=TARA)


def test_owners_hear_once_per_entry_and_due_date(app):
    _due_sheet(app)
    kb, db = app.extensions["kb"], app.extensions["kb_db"]
    assert N.notify_due(db, kb.index, kb.sheet) == 2
    # the same check again, and in another process (its own keeper): nothing new
    assert N.notify_due(db, kb.index, kb.sheet) == 0
    N.DueKeeper(db, kb.index, kb.sheet, None).check_if_due()
    rows = _rows(app, "tara")
    assert sorted(r.title for r in rows) == ["“Old advice” is due for review",
                                             "“Owned by name” is due for review"]
    assert {r.link for r in rows} == {"/e/old-advice", "/e/by-display-name"}
    assert all(r.kind == N.DUE for r in rows) and _rows(app, "alice") == []
    # reviewed, and due again later: a new due date is a new notice
    entry = kb.sheet.entry("old-advice")
    kb.sheet.write({"old-advice.md": entry_text(
        "Old advice", "Zanzibar rules.", owner="tara",
        last_reviewed=(dt.date.today() - dt.timedelta(days=95)).isoformat(),
        review_every_days=90)}, message="reviewed", author=TARA,
        expected={"old-advice.md": entry.version})
    assert N.notify_due(db, kb.index, kb.sheet) == 1
    assert len(_rows(app, "tara")) == 3


def test_the_due_check_runs_on_the_first_page_of_the_day(app, trainer):
    _due_sheet(app)
    keeper = app.extensions["kb_due"]
    keeper._done_on = None  # a new day
    assert 'aria-label="2 unread"' in trainer.get("/").get_data(as_text=True)
    assert 'aria-label="2 unread"' in trainer.get("/").get_data(as_text=True)


# -- email through a real SMTP server --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Inbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    inbox = _Inbox()

    def authenticator(server, session, envelope, mechanism, auth_data):
        inbox.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=auth_data.password.decode() == SECRET)

    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(),
                            authenticator=authenticator, auth_require_tls=False)
    controller.start()
    yield inbox, f"smtp://kb%40example.com:{SECRET}@127.0.0.1:{controller.port}"
    controller.stop()


def _mail_app(tmp_path, database_url, smtp_url: str):
    config = {"INSTANCE_DIR": str(tmp_path / "instance"), "TESTING": True,
              "SEED_DIR": str(write_seed(tmp_path / "seed")), "SMTP_URL": smtp_url,
              "MAIL_FROM": "kb@example.com", "BASE_URL": "https://kb.example.com"}
    if database_url:
        config["DATABASE_URL"] = database_url
    app = create_app(config)
    for name, role in PEOPLE.items():
        create_user(app.extensions["kb_db"], name, PASSWORD, role=role,
                    display_name=name.title() + " Example", email=f"{name}@example.com")
    return app


@pytest.fixture
def mail_app(tmp_path, database_url, smtp_server):
    app = _mail_app(tmp_path, database_url, smtp_server[1])
    yield app
    app.extensions["kb"].index.close()
    app.extensions["kb_db"].dispose()


def _clients(app):
    agent, trainer = app.test_client(), app.test_client()
    assert login(agent, "alice").status_code == 302
    assert login(trainer, "tara").status_code == 302
    return agent, trainer


def test_a_sent_back_proposal_is_emailed_to_the_proposer(mail_app, smtp_server):
    inbox, _ = smtp_server
    agent, trainer = _clients(mail_app)
    pid = _propose(agent, "Parcel left at the wrong door")
    assert _review(trainer, pid, "send_back", "Name the photo proof").status_code == 302
    mail_app.extensions["kb_mail"].flush()
    assert set(inbox.logins) == {("kb@example.com", SECRET)}
    # the trainers heard of the proposal; the proposer of what became of it
    assert sorted(m["To"] for m in inbox.messages) == [
        "adam@example.com", "alice@example.com", "tara@example.com"]
    [message] = [m for m in inbox.messages if m["To"] == "alice@example.com"]
    assert message["To"] == "alice@example.com" and message["From"] == "kb@example.com"
    assert message["Subject"] == "Your proposal “Parcel left at the wrong door” was sent back " \
                                 "for changes"
    body = message.get_content()
    assert "Hello Alice Example," in body and "Tara Example wrote: “Name the photo proof”" in body
    assert f"https://kb.example.com/proposals/{pid}/resubmit" in body
    assert _rows(mail_app, "alice")[0].mail == "sent"


def test_due_entries_are_emailed_as_one_message_per_owner(mail_app, smtp_server):
    inbox, _ = smtp_server
    _due_sheet(mail_app)
    kb, db = mail_app.extensions["kb"], mail_app.extensions["kb_db"]
    mailer = mail_app.extensions["kb_mail"]
    N.notify_due(db, kb.index, kb.sheet, mailer=mailer, base_url="https://kb.example.com")
    N.notify_due(db, kb.index, kb.sheet, mailer=mailer, base_url="https://kb.example.com")
    mailer.flush()
    [message] = inbox.messages
    assert message["To"] == "tara@example.com"
    assert message["Subject"] == "2 entries you own are due for review"
    body = message.get_content()
    assert "“Old advice” is due for review" in body and "“Owned by name”" in body
    assert "https://kb.example.com/e/old-advice" in body
    assert {r.mail for r in _rows(mail_app, "tara")} == {"sent"}


def test_an_smtp_server_that_is_down_breaks_nothing(tmp_path, database_url, caplog):
    url = f"smtp://kb:{SECRET}@127.0.0.1:{_free_port()}"  # nothing listens there
    app = _mail_app(tmp_path, database_url, url)
    try:
        agent, trainer = _clients(app)
        pid = _propose(agent, "Parcel left at the wrong door")
        with caplog.at_level(logging.WARNING, logger="kb.mail"):
            response = _review(trainer, pid, "send_back", "Name the photo proof")
            assert response.status_code == 302
            assert "Sent #" in trainer.get("/review").get_data(as_text=True)
            app.extensions["kb_mail"].flush()
        row = _rows(app, "alice")[0]
        assert row.kind == N.SENT_BACK and row.mail == "failed"
        assert _badge(agent) == "1"
        assert "the email could not be sent" in agent.get("/notifications").get_data(as_text=True)
        assert "Could not email a notification to alice@example.com" in caplog.text
        assert SECRET not in caplog.text
    finally:
        app.extensions["kb"].index.close()
        app.extensions["kb_db"].dispose()


def test_a_bad_smtp_url_is_refused_with_a_hint():
    from kb.mail import MailSettingError, parse_smtp_url

    with pytest.raises(MailSettingError, match="smtp://host:25"):
        parse_smtp_url("http://mail.example.com")
    server = parse_smtp_url("smtps://a%40b.com:p%3Ass@mail.example.com")
    assert (server.security, server.port, server.username, server.password) == \
        ("ssl", 465, "a@b.com", "p:ss")
    assert str(server) == "mail.example.com:465"  # what logs show: no credentials
    assert parse_smtp_url("smtp+starttls://mail.example.com").port == 587


def test_emails_link_only_to_the_configured_address(tmp_path, database_url, smtp_server):
    """Without KB_BASE_URL a request's Host header never becomes the links' address:
    the email says where to look instead."""
    inbox, url = smtp_server
    config = {"INSTANCE_DIR": str(tmp_path / "instance"), "TESTING": True,
              "SEED_DIR": str(write_seed(tmp_path / "seed")), "SMTP_URL": url,
              "MAIL_FROM": "kb@example.com"}
    if database_url:
        config["DATABASE_URL"] = database_url
    app = create_app(config)
    try:
        for name, role in PEOPLE.items():
            create_user(app.extensions["kb_db"], name, PASSWORD, role=role,
                        display_name=name.title(), email=f"{name}@example.com")
        # the first request of the day names another host, signed in or not
        assert app.test_client().get("/login", headers={"Host": "evil.example"}
                                     ).status_code == 200
        agent, trainer = _clients(app)
        pid = _propose(agent, "Parcel left at the wrong door")
        assert _review(trainer, pid, "send_back", "Add proof").status_code == 302
        app.extensions["kb_mail"].flush()
        assert len(inbox.messages) == 3  # to both trainers, then to the proposer
        for message in inbox.messages:
            body = message.get_content()
            assert "evil.example" not in body and "http" not in body
            assert "open kb and choose Notifications" in body
    finally:
        app.extensions["kb"].index.close()
        app.extensions["kb_db"].dispose()


def test_trainers_hear_when_a_proposal_arrives_and_when_it_comes_back(app, client, trainer):
    pid = _propose(client, "Parcel left at the wrong door")
    for name in ("tara", "adam"):  # every trainer and admin, not the proposer
        [row] = _rows(app, name)
        assert row.kind == N.PROPOSED and row.link == f"/review/{pid}"
        assert row.title == "Alice Example proposed a new entry: “Parcel left at the wrong door”"
    assert _rows(app, "alice") == []
    assert _badge(trainer) == "1"
    counts = trainer.get("/notifications/count").get_json()
    assert counts == {"unread": 1, "review": 1}
    assert client.get("/notifications/count").get_json() == {"unread": 0, "review": None}
    # sent back, changed and sent again: the trainers hear of it again
    assert _review(trainer, pid, "send_back", "Name the photo proof").status_code == 302
    fields = fields_of(parse_entry("x", get_proposal(app.extensions["kb_db"], pid).text))
    assert post_form(client, f"/proposals/{pid}/resubmit",
                     fields | {"answer": "We are checking the photo.",
                               "reason": "added the photo"}).status_code == 302
    again = _rows(app, "tara")[0]
    assert again.title == "Alice Example sent “Parcel left at the wrong door” again after changes"
    # a change proposed through the API, by a trainer: the other trainers hear of it
    text = app.extensions["kb"].sheet.store.read("refund-status.md").text
    response = trainer.post("/api/proposals", json={
        "slug": "refund-status", "markdown": text.replace("was sent", "went out"),
        "reason": "wording"})
    assert response.status_code == 201, response.get_json()
    assert _rows(app, "adam")[0].title == "Tara Example proposed a change to “Refund status”"
    assert all("Refund status" not in r.title for r in _rows(app, "tara"))
