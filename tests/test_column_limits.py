"""A value longer than its column is refused with a message, on SQLite (which would
store it) and on PostgreSQL (which refuses it); one bad row never blocks the usage
log's batch, so nobody else's searches and views are lost."""

from __future__ import annotations

from sqlalchemy import func, select

from kb.db import Event, SearchLog
from tests.conftest import csrf_from


def _counts(app) -> tuple[int, int]:
    db = app.extensions["kb_db"]
    db.usage_log.flush()
    with db.session() as s:
        return (s.scalar(select(func.count()).select_from(SearchLog)),
                s.scalar(select(func.count()).select_from(Event)))


def test_an_overlong_version_in_a_copy_event_is_refused(app, client):
    response = client.post("/api/events", json={"kind": "copy", "slug": "refund-status",
                                                 "version": "v" * 100})
    assert response.status_code == 400
    assert "version" in response.get_json()["message"]


def test_one_bad_row_never_blocks_the_usage_log(app, client):
    """Even a row the API did not catch (queued here directly) is dropped alone:
    the searches and views around it are written, and the pages keep working."""
    db = app.extensions["kb_db"]
    searches, events = _counts(app)
    client.get("/api/search?q=refund")
    db.usage_log.event(None, "copy", "refund-status", "v" * 100)  # too long for its column
    client.get("/e/refund-status")
    client.get("/api/search?q=colour")
    db.usage_log.flush()
    after = _counts(app)
    assert after[0] == searches + 2 and after[1] == events + 1  # the view, not the bad copy
    assert db.usage_log.pending() == 0  # nothing left to retry forever
    for url in ["/", "/?q=refund", "/e/refund-status"]:
        assert client.get(url).status_code == 200


def test_an_overlong_base_version_in_a_proposal_is_refused(client):
    response = client.post("/api/proposals", json={
        "slug": "refund-status", "answer": "New words.", "reason": "clearer",
        "base_version": "x" * 100})
    assert response.status_code in (400, 422)
    assert "version" in response.get_json()["message"]


def test_an_overlong_display_name_is_refused_with_the_limit(client, admin):
    page = client.get("/profile").get_data(as_text=True)
    response = client.post("/profile", data={"csrf_token": csrf_from(page),
                                             "action": "profile", "display_name": "N" * 500})
    assert response.status_code in (200, 302, 400, 422)
    text = client.get("/profile").get_data(as_text=True)
    assert "N" * 500 not in text
    assert "120" in response.get_data(as_text=True) + text  # the limit is named
    page = admin.get("/admin/users").get_data(as_text=True)
    response = admin.post("/admin/users", data={
        "csrf_token": csrf_from(page), "action": "create", "username": "newbie",
        "role": "agent", "display_name": "N" * 500, "email": ""})
    assert response.status_code < 500
    assert "120" in response.get_data(as_text=True) + admin.get("/admin/users").get_data(
        as_text=True)


def test_an_overlong_wording_to_accept_is_refused(trainer):
    page = trainer.get("/phrasings").get_data(as_text=True)
    response = trainer.post("/phrasings/accept", data={
        "csrf_token": csrf_from(page), "slug": "refund-status", "wording": "w" * 500})
    assert response.status_code == 302
    response = trainer.post("/phrasings/dismiss", data={
        "csrf_token": csrf_from(page), "slug": "refund-status", "wording": "w" * 500})
    assert response.status_code == 302
    assert trainer.get("/phrasings").status_code == 200


def test_a_display_name_is_kept_on_one_line(app):
    from kb.users import create_user, get_user, update_user

    db = app.extensions["kb_db"]
    create_user(db, "eve", "correct-horse-9", display_name="Eve\r\nBcc: x@evil.example")
    assert get_user(db, "eve").display_name == "Eve Bcc: x@evil.example"
    update_user(db, "eve", display_name="Eve\nAgain\x00")
    assert get_user(db, "eve").display_name == "Eve Again"
