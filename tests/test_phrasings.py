"""The sheet learns the team's words: searches that led to a copy become suggested
customer phrasings, which only a trainer can add (one commit) or dismiss."""

from __future__ import annotations

import datetime as dt

import pytest

from kb import phrasings as P
from kb import usage
from kb.db import Database, SearchLog
from kb.users import create_user
from tests.conftest import PASSWORD, csrf_from, login

WORDING = "cash never came"


def _flush(app) -> None:
    """The usage log is written in batches: make sure what was logged is in the database."""
    app.extensions["kb_db"].usage_log.flush()


def search(client, q: str) -> int:
    response = client.get("/api/search", query_string={"q": q})
    assert response.status_code == 200
    return response.get_json()["search_id"]


def open_and_copy(client, slug: str, sid: int) -> None:
    page = client.get(f"/e/{slug}?sid={sid}")
    assert page.status_code == 200
    version = page.get_data(as_text=True).split('data-version="', 1)[1].split('"', 1)[0]
    response = client.post("/api/events", json={"kind": "copy", "slug": slug,
                                                 "version": version, "search_id": sid})
    assert response.status_code == 201


def refine_then_copy(client, first: str, then: str, slug: str) -> None:
    """An agent types the customer's words, finds nothing useful, types again, copies."""
    search(client, first)
    open_and_copy(client, slug, search(client, then))


@pytest.fixture
def bob(app):
    create_user(app.extensions["kb_db"], "bob", PASSWORD, role="agent", display_name="Bob")
    c = app.test_client()
    assert login(c, "bob").status_code == 302
    return c


def test_a_learned_phrasing_is_suggested_accepted_and_ranks_the_entry_first(
        app, client, bob, trainer):
    svc, db = app.extensions["kb"], app.extensions["kb_db"]
    before = svc.index.search(WORDING)
    assert not any(h.slug == "refund-status" and h.matched_phrasing == WORDING
                   for h in before.hits)
    head = svc.store.head()

    refine_then_copy(client, "Cash never came!", "refund", "refund-status")
    refine_then_copy(bob, "cash  never came", "where is my refund", "refund-status")
    _flush(app)

    # nothing changes the sheet without a trainer
    assert svc.store.head() == head
    found = [s for s in P.suggestions(db, svc.sheet) if s.slug == "refund-status"]
    by_words = {s.wording: s for s in found}
    assert by_words[WORDING].times == 2 and by_words[WORDING].agents == 2
    assert by_words[WORDING].refined == 2
    # the wordings that failed rank above the one that worked
    assert found[0].wording == WORDING and by_words["where is my refund"].times == 1
    assert "refund" not in by_words  # the title says it already

    listing = trainer.get("/phrasings").get_data(as_text=True)
    assert f"<q>{WORDING}</q>" in listing
    assert "agents found this entry by typing it 2 times by 2 agents" in listing
    assert "<q>where is my refund</q>" not in listing  # typed once: on the entry page only
    entry_page = trainer.get("/e/refund-status").get_data(as_text=True)
    assert "Agents found this entry by typing <q>cash never came</q> 2 times" in entry_page
    assert "<q>where is my refund</q> 1 time." in entry_page
    assert "Agents found this entry" not in client.get("/e/refund-status").get_data(as_text=True)

    token = csrf_from(listing)
    response = trainer.post("/phrasings/accept", data={
        "csrf_token": token, "slug": "refund-status", "wording": WORDING, "back": "/phrasings"})
    assert response.status_code == 302

    commits = svc.store.history()
    assert commits[1].commit == head  # exactly one commit
    latest = commits[0]
    assert (latest.author.name, latest.author.email) == ("Agents' searches", "agents@kb")
    assert (latest.committer.name, latest.committer.email) == ("Tara Example",
                                                               "tara@example.com")
    assert "“cash never came”" in latest.message and "2 times" in latest.message
    assert WORDING in svc.sheet.entry("refund-status").phrasings

    # counted at once: the save brought the index up to date
    after = client.get("/api/search", query_string={"q": WORDING}).get_json()["results"]
    assert after[0]["slug"] == "refund-status"
    assert after[0]["matched_phrasing"] == WORDING
    # and no longer suggested
    assert f"<q>{WORDING}</q>" not in trainer.get("/phrasings?min=1").get_data(as_text=True)


def test_dismiss_is_remembered(app, client, bob, trainer):
    db = app.extensions["kb_db"]
    for agent in (client, bob):
        refine_then_copy(agent, "parcel in bits", "damaged", "item-arrived-damaged")
    _flush(app)
    assert "parcel in bits" in trainer.get("/phrasings").get_data(as_text=True)
    head = app.extensions["kb"].store.head()
    token = csrf_from(trainer.get("/e/item-arrived-damaged").get_data(as_text=True))
    response = trainer.post("/phrasings/dismiss", data={
        "csrf_token": token, "slug": "item-arrived-damaged", "wording": "parcel in bits",
        "back": "/e/item-arrived-damaged"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/e/item-arrived-damaged"
    assert app.extensions["kb"].store.head() == head
    # more agents type it: still not offered again
    refine_then_copy(client, "parcel in bits", "damaged", "item-arrived-damaged")
    _flush(app)
    assert "<q>parcel in bits</q>" not in trainer.get("/phrasings?min=1").get_data(as_text=True)
    assert all(s.wording != "parcel in bits" for s in P.suggestions(db))


def test_agents_cannot_accept_or_dismiss(app, client, bob):
    for agent in (client, bob):
        refine_then_copy(agent, "cash never came", "refund", "refund-status")
    _flush(app)
    head = app.extensions["kb"].store.head()
    token = csrf_from(client.get("/").get_data(as_text=True))
    form = {"csrf_token": token, "slug": "refund-status", "wording": WORDING}
    assert client.post("/phrasings/accept", data=form).status_code == 403
    assert client.post("/phrasings/dismiss", data=form).status_code == 403
    assert client.get("/phrasings").status_code == 403
    assert app.extensions["kb"].store.head() == head


def test_accept_needs_a_csrf_token_and_a_real_suggestion(app, trainer):
    head = app.extensions["kb"].store.head()
    form = {"slug": "refund-status", "wording": "made up words"}
    assert trainer.post("/phrasings/accept", data=form).status_code == 400
    token = csrf_from(trainer.get("/phrasings").get_data(as_text=True))
    response = trainer.post("/phrasings/accept", data={"csrf_token": token, **form},
                            follow_redirects=True)
    assert "No search for “made up words” led to this entry" in response.get_data(as_text=True)
    assert app.extensions["kb"].store.head() == head


# -- the linking rules, on the log itself --------------------------------------------------


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'usage.sqlite'}")
    yield database
    database.dispose()


def _age(db: Database, search_id: int, minutes: float) -> None:
    db.usage_log.flush()
    with db.session() as s:
        row = s.get(SearchLog, search_id)
        row.at -= dt.timedelta(minutes=minutes)
        s.commit()


def test_one_search_copied_twice_counts_once(db):
    sid = usage.log_search(db, 1, "where is my money", ["money"], 1)
    usage.log_event(db, 1, "copy", "refund-status", "v1", sid)
    usage.log_event(db, 1, "copy", "refund-status", "v1", sid)
    (only,) = P.suggestions(db)
    assert (only.wording, only.times, only.refined) == ("where is my money", 1, 0)


def test_a_long_pause_or_an_earlier_copy_ends_the_refining(db):
    # user 1 searched something else half an hour ago, then refined once and copied
    paused = usage.log_search(db, 1, "bulb dead", ["bulb", "dead"], 0)
    _age(db, paused, 30)
    usage.log_search(db, 1, "lamp does not work", ["lamp", "work"], 0)
    final = usage.log_search(db, 1, "faulty product", ["faulti", "product"], 2)
    usage.log_event(db, 1, "copy", "product-stopped-working", "v1", final)
    # user 3 copied one answer, then searched again and copied another
    first = usage.log_search(db, 3, "lamp cracked", ["lamp", "crack"], 1)
    usage.log_event(db, 3, "copy", "item-arrived-damaged", "v1", first)
    second = usage.log_search(db, 3, "no light at all", ["light"], 1)
    usage.log_event(db, 3, "copy", "product-stopped-working", "v1", second)

    words = {s.wording: s for s in P.suggestions(db) if s.slug == "product-stopped-working"}
    assert set(words) == {"faulty product", "lamp does not work", "no light at all"}
    assert words["lamp does not work"].refined == 1 and words["faulty product"].refined == 0
    assert words["lamp does not work"].score > words["faulty product"].score


def test_a_copy_without_a_search_id_uses_the_users_last_search(db):
    usage.log_search(db, 2, "someone else's words", ["someon", "els", "word"], 1)
    usage.log_search(db, 1, "money not back", ["money", "back"], 1)
    usage.log_event(db, 1, "copy", "refund-status", "v1", None)
    assert [s.wording for s in P.suggestions(db)] == ["money not back"]


def test_links_are_rebuilt_from_the_log_and_settle(db):
    sid = usage.log_search(db, 1, "where is my money", ["money"], 1)
    usage.log_event(db, 1, "copy", "refund-status", "v1", sid)
    later = P.utcnow() + dt.timedelta(hours=1)
    assert P.link(db) == 1
    assert P.link(db, now=later) == 1  # recent copies are linked again once...
    assert P.link(db, now=later) == 0  # ...and then left alone
    assert [s.times for s in P.suggestions(db, now=later)] == [1]


def test_a_search_written_after_its_copy_is_linked_when_it_arrives(db):
    """Server processes write their logs in batches: the copy may reach the database
    while its search row is still the empty placeholder another process left."""
    with db.session() as s:
        s.add(SearchLog(id=77, user_id=1, query="", words="", result_count=0, at=P.utcnow(),
                        opened_slug="refund-status", copied=True))
        s.commit()
    usage.log_event(db, 1, "copy", "refund-status", "v1", 77)
    assert P.suggestions(db) == []
    with db.session() as s:
        s.get(SearchLog, 77).query = "money still not back"
        s.commit()
    assert [s.wording for s in P.suggestions(db)] == ["money still not back"]


def test_customer_details_are_never_suggested_and_purged_with_the_log(db):
    masked = usage.log_search(db, 1, "order 123456789 never came", ["order", "came"], 1)
    usage.log_event(db, 1, "copy", "package-lost", "v1", masked)
    sid = usage.log_search(db, 2, "parcel vanished", ["parcel", "vanish"], 1)
    usage.log_event(db, 2, "copy", "package-lost", "v1", sid)
    assert [s.wording for s in P.suggestions(db)] == ["parcel vanished"]
    usage.purge_searches(db, days=0)
    assert P.suggestions(db) == []


def test_a_wording_that_failed_once_is_offered_and_a_batch_is_added_in_one_commit(
        app, client, trainer):
    """A wording an agent had to search again after is offered at once (it counts
    double); the trainer ticks several, for several entries, and adds them in one
    commit whose author is the agents' words; the next search finds each first."""
    svc = app.extensions["kb"]
    refine_then_copy(client, "parcel turned up in bits", "damaged", "item-arrived-damaged")
    refine_then_copy(client, "tint looks odd", "colour", "wrong-colour")
    _flush(app)
    listing = trainer.get("/phrasings").get_data(as_text=True)
    for wording in ("parcel turned up in bits", "tint looks odd"):
        assert f"<q>{wording}</q>" in listing  # typed once, but failed first
    assert 'name="pick"' in listing and "checked" in listing
    response = trainer.post("/phrasings/accept-many", data={
        "csrf_token": csrf_from(listing),
        "pick": ["item-arrived-damaged\nparcel turned up in bits",
                 "wrong-colour\ntint looks odd", "refund-status\nnever typed by anyone"]})
    assert response.status_code == 302
    commits = svc.store.history("item-arrived-damaged.md", limit=1)
    assert commits[0].commit == svc.store.history("wrong-colour.md", limit=1)[0].commit
    assert svc.store.history("refund-status.md", limit=1)[0].commit != commits[0].commit
    assert commits[0].author.name == "Agents' searches"
    assert "Add 2 customer phrasings" in commits[0].message
    assert "parcel turned up in bits" in svc.sheet.entry("item-arrived-damaged").phrasings
    assert svc.index.search("parcel turned up in bits").hits[0].slug == "item-arrived-damaged"
    assert svc.index.search("tint looks odd").hits[0].slug == "wrong-colour"
    page = trainer.get("/phrasings").get_data(as_text=True)
    assert "never typed by anyone" in page and "Not added" in page  # said why
    assert "<q>tint looks odd</q>" not in page  # decided: not offered again
