"""Whether an answer worked (kb.outcomes): each copy's key, the "did not help" signals
from the agent or a helpdesk, and what trainers see per entry and version."""

from __future__ import annotations

import re

from kb.outcomes import MIN_COPIES, rose
from tests.conftest import TARA
from tests.test_reports import search


def copy(client, slug: str, search_id=None) -> str:
    version = client.get(f"/api/entries/{slug}").get_json()["version"]
    response = client.post("/api/events", json={"kind": "copy", "slug": slug,
                                                "version": version, "search_id": search_id})
    assert response.status_code == 201
    return response.get_json()["copy"]


def test_a_signal_names_the_copy_it_follows(app, client, anon):
    key = copy(client, "refund-status")
    assert re.fullmatch(r"[0-9a-f]{16}", key)
    assert client.post("/api/events", json={"kind": "view", "slug": "refund-status"}
                       ).get_json()["copy"] is None  # only a copy has a key
    done = client.post("/api/outcomes", json={"copy": key, "signal": "wrong"})
    assert done.status_code == 201
    assert done.get_json() | {"version": None} == {"copy": key, "signal": "wrong",
                                                   "slug": "refund-status", "version": None}
    again = client.post("/api/outcomes", json={"copy": key, "signal": "wrong"})
    assert again.status_code == 201  # the same signal twice counts once
    # what cannot be recorded says why, and nothing is written
    assert client.post("/api/outcomes", json={"copy": "feed" * 4, "signal": "wrong"}
                       ).status_code == 404
    bad = client.post("/api/outcomes", json={"copy": key, "signal": "meh"})
    assert bad.status_code == 400 and "recontact" in bad.get_json()["message"]
    assert client.post("/api/outcomes", json={"copy": "x" * 500, "signal": "wrong"}
                       ).status_code == 400
    assert client.post("/api/outcomes", json={"copy": ["a"], "signal": "wrong"}
                       ).status_code == 400
    for odd in (["wrong"], {"x": 1}, None, 7):  # any JSON a careless client sends
        assert client.post("/api/outcomes", json={"copy": key, "signal": odd}
                           ).status_code == 400
    assert anon.post("/api/outcomes", json={"copy": key, "signal": "wrong"}
                     ).status_code in (401, 403)
    from sqlalchemy import func, select

    from kb.db import Event

    with app.extensions["kb_db"].session() as s:
        assert s.scalar(select(func.count()).where(Event.kind == "wrong")) == 1


def test_a_helpdesk_reports_a_recontact_with_its_own_token(app, client):
    from kb.users import create_token, create_user

    db = app.extensions["kb_db"]
    create_user(db, "helpdesk", None, role="agent", service=True)
    token = create_token(db, "helpdesk", "helpdesk")
    key = copy(client, "refund-status")
    helpdesk = app.test_client()
    response = helpdesk.post("/api/outcomes", json={"copy": key, "signal": "recontact"},
                             headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201 and response.get_json()["slug"] == "refund-status"


def test_the_usage_report_shows_it_per_entry_and_version_and_what_got_worse(app, client,
                                                                            trainer):
    sheet = app.extensions["kb"].sheet
    for n in range(4):  # the old version: 4 copies, 1 did not help
        key = copy(client, "refund-status")
        if n == 0:
            client.post("/api/outcomes", json={"copy": key, "signal": "unhappy"})
    text = sheet.store.read("refund-status.md").text.replace("was sent", "went out")
    sheet.write({"refund-status.md": text}, message="wording", author=TARA)
    for n in range(3):  # since the change: 3 copies, 2 did not help
        key = copy(client, "refund-status")
        if n < 2:
            client.post("/api/outcomes", json={"copy": key, "signal": "outdated"})
    html = trainer.get("/usage").get_data(as_text=True)
    row = re.search(r'<tr data-slug="refund-status">(.*?)</tr>', html, re.S).group(1)
    assert re.search(r'<td class="bad90">3 \(43%\)</td>', row)
    assert "did not help 2" in row and "did not help 1" in row  # per version
    rising = html.split('id="rising"')[1].split("</div>")[0]
    assert "Refund status" in rising and "67% of 3 copies since the change, 25% of 4" in rising


def test_a_rise_needs_enough_copies_on_both_sides():
    few = {"new": {"copy": MIN_COPIES - 1, "wrong": 2}, "old": {"copy": 10}}
    assert rose("x", "new", few) is None
    same = {"new": {"copy": 4, "wrong": 1}, "old": {"copy": 8, "wrong": 2}}
    assert rose("x", "new", same) is None  # 25% both: no rise
    worse = {"new": {"copy": 4, "wrong": 2}, "old": {"copy": 8, "view": 3, "unhappy": 1}}
    found = rose("x", "new", worse)
    assert (found.now, found.before) == (0.5, 0.125)


def test_the_search_is_still_answered_when_the_copy_did_not_help(app, client):
    found = search(client, "where is my refund")
    key = copy(client, "refund-status", found["search_id"])
    assert client.post("/api/outcomes", json={"copy": key, "signal": "wrong"}
                       ).status_code == 201
    import datetime as dt

    from kb.gaps import read_searches

    since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=1)
    [row] = [s for s in read_searches(app.extensions["kb_db"], since)
             if s.id == found["search_id"]]
    assert row.used_slug == "refund-status"  # the signal is no use of its own
