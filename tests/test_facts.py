"""Sheet facts (kb.facts): the team's policy values written once, filled everywhere,
never asked of an agent; checked by type and against the numbers beside them."""

from __future__ import annotations

import email
import email.policy
import re

import pytest

from kb.entry import Entry
from kb.facts import Fact, check_facts_file, contradictions, parse_facts, value_problem
from kb.users import get_user, update_user
from tests.conftest import TARA, entry_text, post_form

FACTS = ("# The team's policy values.\n"
         "refund_days: {label: Days to send a refund, type: days, value: 5}\n"
         "hotline: {label: Customer hotline, type: text, value: 0800 123 4567}\n"
         "returns_link: {label: Returns form, type: link, value: 'https://shop.example/returns'}\n")
REFUND = entry_text(
    "Refund timing", "Hi {{ customer_name }}, we send your refund within {{ refund_days }} "
    "days. Forms: {{ returns_link }}. Call {{ hotline }}.",
    "- Say the refund goes out within {{ refund_days }} days.", owner="alice")


@pytest.mark.parametrize("kind,value,ok", [
    ("days", "5", True), ("days", "five", False), ("number", "2.5", True),
    ("money", "£4.95", True), ("money", "10 EUR", True), ("money", "cheap", False),
    ("time", "9 am – 5 pm", True), ("time", "10:30", True), ("time", "soon", False),
    ("link", "https://shop.example/returns", True), ("link", "shop.example", False),
    ("text", "the billing team", True), ("text", "", False), ("colour", "red", False),
])
def test_a_value_is_checked_against_its_type(kind, value, ok):
    assert (value_problem(kind, value) is None) is ok


def test_a_number_that_contradicts_the_fact_beside_it_is_a_warning():
    facts = parse_facts(FACTS)
    entry = Entry("x", "T", "We refund within {{ refund_days }} days, or within 10 days at "
                  "most. Returns take 30 days.\n", "- Refund in ten working days: "
                  "{{ refund_days }}.\n")
    found = contradictions(entry, facts)
    assert [(f.field, f.excerpt) for f in found] == [("answer", "10 days"),
                                                      ("phone", "ten working days")]
    assert "{{ refund_days }}" in found[0].message and "5 days" in found[0].message
    agreeing = Entry("x", "T", "Within {{ refund_days }} days (5 days).\n")
    assert contradictions(agreeing, facts) == []


def test_the_facts_file_is_checked():
    bad = ("refund_days: {label: Refund, type: days, value: soon}\n"
           "customer_name: {label: Name, type: text, value: Ana}\n"
           "odd: {label: Odd, type: colour, value: red}\n")
    found = check_facts_file(bad, {"customer_name": {}}, {"hotline": ["“Refund timing”"]})
    messages = " | ".join(f.message for f in found)
    assert "a days fact holds a number" in messages
    assert "also a placeholder" in messages
    assert "“colour” is not a type" in messages
    assert "“hotline” is still used by “Refund timing”" in messages
    assert all(f.level == "error" for f in found)
    assert parse_facts(FACTS)["hotline"] == Fact("hotline", "Customer hotline", "text",
                                                 "0800 123 4567")


@pytest.fixture
def with_facts(app):
    app.extensions["kb"].sheet.write({"_sheet/facts.yml": FACTS, "refund-timing.md": REFUND},
                                     message="facts", author=TARA)
    return app


def test_facts_are_filled_everywhere_and_never_asked(with_facts, client):
    page = client.get("/e/refund-timing").get_data(as_text=True)
    assert "within 5 days" in page and "0800 123 4567" in page
    assert 'name="refund_days"' not in page and 'name="hotline"' not in page
    assert "[Days to send a refund]" not in page and "{{ refund_days }}" not in page
    points = page.split('id="points"')[1].split("</div>")[0]
    assert "within 5 days" in points
    composed = client.post("/api/compose/refund-timing", json={"customer_name": "Ana"})
    data = composed.get_json()
    assert "within 5 days" in data["text"] and "https://shop.example/returns" in data["text"]
    assert data["missing"] == []
    # an API caller cannot talk a fact into another value
    forced = client.post("/api/compose/refund-timing", json={"refund_days": "30"}).get_json()
    assert "within 5 days" in forced["text"]
    eml = post_form(client, "/e/refund-timing/email.eml", {"customer_name": "Ana"},
                    page_url="/e/refund-timing")
    body = email.message_from_bytes(eml.data, policy=email.policy.default)
    assert "within 5 days" in body.get_body(("plain",)).get_content()
    printed = client.get("/print").get_data(as_text=True)
    assert "within 5 days" in printed and "0800 123 4567" in printed


def _rows_form(page: str) -> dict[str, str]:
    fields = {k: v for k, v in re.findall(r'<input[^>]*name="(\w+)"[^>]*value="([^"]*)"', page)
              if not k.startswith("remove_") and k != "ask_owners"}
    for n, chosen in re.findall(r'<select name="type_(\d+)"[^>]*>(.*?)</select>', page, re.S):
        fields[f"type_{n}"] = re.search(r"<option selected>(\w+)", chosen).group(1) \
            if "selected" in chosen else "text"
    for name in ("original", "text"):
        fields[name] = re.search(rf'<textarea name="{name}"[^>]*>(.*?)</textarea>', page,
                                 re.S).group(1).replace("&#39;", "'").replace("&amp;", "&")
    return fields


def test_changing_a_fact_shows_every_entry_it_reaches_then_asks_their_owners(with_facts,
                                                                           trainer):
    app = with_facts
    store = app.extensions["kb"].sheet.store
    page = trainer.get("/sheet/facts").get_data(as_text=True)
    assert 'value="refund_days"' in page and "<option selected>days</option>" in page
    form = _rows_form(page)
    row = next(k for k, v in form.items() if v == "refund_days").split("_")[1]
    form |= {f"value_{row}": "7", "reason": "refunds now take a week",
             "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)}
    shown = trainer.post("/sheet/facts", data=form | {"action": "preview"}).get_data(
        as_text=True)
    reached = shown.split('id="part-facts"')[1]
    assert "Refund timing" in reached and "within 7 days" in reached
    assert "Item arrived damaged" not in reached  # it does not use the fact
    before = len(store.history())
    saved = trainer.post("/sheet/facts", data=form | {"action": "save", "ask_owners": "1"})
    assert saved.status_code == 302
    assert len(store.history()) == before + 1  # one commit
    assert "within 7 days" in app.extensions["kb"].sheet.store.read("_sheet/facts.yml").text \
        or "value: 7" in store.read("_sheet/facts.yml").text
    from kb.db import Notification

    db = app.extensions["kb_db"]
    with db.session() as s:
        [notice] = s.query(Notification).filter_by(user_id=get_user(db, "alice").id).all()
    assert notice.title == "A fact your entries use has changed"
    assert "Refund timing: /e/refund-timing" in notice.body
    assert "refunds now take a week" in notice.body


def test_a_wrong_value_is_refused_and_the_rows_kept(with_facts, trainer):
    store = with_facts.extensions["kb"].sheet.store
    page = trainer.get("/sheet/facts").get_data(as_text=True)
    form = _rows_form(page)
    row = next(k for k, v in form.items() if v == "refund_days").split("_")[1]
    form |= {f"value_{row}": "a week", "reason": "x", "action": "save",
             "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)}
    before = store.head()
    response = trainer.post("/sheet/facts", data=form)
    assert response.status_code == 422 and store.head() == before
    shown = response.get_data(as_text=True)
    assert "a days fact holds a number" in shown and 'value="a week"' in shown


def test_an_entry_using_an_unknown_fact_or_a_contradiction_is_flagged(with_facts, trainer):
    found = trainer.post("/api/preview-entry", json={
        "title": "X", "answer": "Refunds within {{ refund_dayz }} days, or 10 days at most "
        "{{ refund_days }}."}).get_json()
    checks = {f["check"]: f for f in found["findings"]}
    assert "refund_dayz" in checks["placeholder"]["message"]
    assert checks["facts"]["excerpt"] == "10 days"
    assert "5" in found["answer_html"]  # the preview shows the fact's value


def test_the_owner_of_nothing_and_the_agent_named_differently_are_not_asked(with_facts):
    db = with_facts.extensions["kb_db"]
    update_user(db, "alice", display_name="Alice Example")
    from kb.notifications import ask_owners

    entry = with_facts.extensions["kb"].sheet.entry("refund-timing")
    assert ask_owners(db, [entry], "h", "b", key="k") == 1  # by user name
    assert ask_owners(db, [entry], "h", "b", key="k") == 0  # once per key


def test_the_api_lists_the_facts_and_openapi_describes_them(with_facts, client):
    facts = {f["name"]: f for f in client.get("/api/facts").get_json()["facts"]}
    assert facts["refund_days"] == {"name": "refund_days", "label": "Days to send a refund",
                                    "type": "days", "value": "5"}
    doc = client.get("/api/openapi.json").get_json()
    assert "/api/facts" in doc["paths"]
    part = doc["paths"]["/api/sheet/{name}/check"]["parameters"][0]["schema"]["enum"]
    assert "facts" in part
