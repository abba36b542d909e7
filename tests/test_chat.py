"""The chat and SMS version of an entry: written beside the email, checked for length,
filled like the email between the chat greeting and closing, offered per channel."""

from __future__ import annotations

import re

from kb.checks import CHAT_LIMIT, check_chat_length, load_rules
from kb.compose import compose_chat
from kb.entry import Entry, parse_entry, serialize_entry
from kb.history import readable
from tests.conftest import TARA, post_form

CHATTY = Entry("late", "Parcel late", "The email.\n", extra={
    "chat": "Your parcel for order {{ order_number }} is on its way; it reaches you by "
            "{{ date | Friday }}."})


def test_the_chat_message_is_greeting_version_and_closing_filled_like_the_email():
    chat = compose_chat(CHATTY, "Hi {{ customer_name }},", "– {{ agent_name }}",
                        {"customer_name": "Ana", "order_number": "NW-1"},
                        defaults={"agent_name": "Sam"}, labels={"date": "Date"})
    assert chat.text == ("Hi Ana,\nYour parcel for order NW-1 is on its way; it reaches you "
                         "by Friday.\n– Sam")
    assert chat.missing == [] and chat.length == len(chat.text) and chat.limit == 320
    blank = compose_chat(CHATTY, "Hi {{ customer_name }},", "", {}, labels={
        "customer_name": "Customer's first name"})
    assert blank.missing == ["customer_name", "order_number"]
    assert blank.text.startswith("Hi [Customer's first name],") and "{{" not in blank.text
    assert compose_chat(Entry("x", "T", "Email only.\n"), "Hi", "Bye", {}) is None


def test_the_chat_version_is_kept_in_the_front_matter_and_read_back():
    entry = parse_entry("late", serialize_entry(CHATTY))
    assert entry.chat == CHATTY.chat and entry.to_dict()["chat"] == CHATTY.chat
    assert "In chat and SMS:\n" + CHATTY.chat in readable("late.md", serialize_entry(CHATTY))
    bad = "---\ntitle: T\nchat: [a, list]\n---\nBody.\n"
    try:
        parse_entry("t", bad)
    except ValueError as exc:
        assert "chat" in str(exc)
    else:
        raise AssertionError("a chat version that is not text was read")


def test_a_chat_version_too_long_for_one_message_is_an_error_and_the_team_sets_the_limit():
    assert check_chat_length("x" * 200, CHAT_LIMIT) == []
    [found] = check_chat_length("x" * 300, CHAT_LIMIT)
    assert found.level == "error" and found.field == "chat" and "300 characters" in found.message
    assert load_rules("chat_limit: 160\nrules: []\n").chat_limit == 160
    rules = load_rules("chat_limit: nine\nrules: []\n")
    assert rules.chat_limit == CHAT_LIMIT and "chat_limit" in rules.problems[0]


def test_every_channel_through_the_api(app, client):
    sheet = app.extensions["kb"].sheet
    sheet.write({"_sheet/chat_greeting.md": "Hi {{ customer_name }},\n",
                 "_sheet/chat_closing.md": "– {{ agent_name }}\n",
                 "late.md": serialize_entry(CHATTY)}, message="chat", author=TARA)
    data = client.post("/api/compose/late", json={"customer_name": "Ana"}).get_json()
    assert data["text"].startswith("Hello Ana,")  # the email
    assert "phone_html" in data
    assert data["chat"]["text"].startswith("Hi Ana,\nYour parcel for order [Order number]")
    assert data["chat"]["text"].endswith("– Alice Example")
    assert data["chat"]["missing"] == ["order_number"]
    assert data["chat"]["missing_labels"] == ["Order number"] and data["chat"]["over"] is False
    assert client.get("/api/entries/late").get_json()["chat"] == CHATTY.chat
    assert client.post("/api/compose/refund-status", json={}).get_json()["chat"] is None


def test_a_trainer_writes_a_chat_version_in_the_form(app, trainer):
    page = trainer.get("/e/refund-status/edit").get_data(as_text=True)
    assert '<textarea name="chat"' in page
    fields = dict(re.findall(r'<input[^>]*name="(\w+)"[^>]*value="([^"]*)"', page))
    for name in ("answer", "phone", "phrasings"):
        fields[name] = re.search(rf'<textarea name="{name}"[^>]*>(.*?)</textarea>', page,
                                 re.S).group(1).replace("&#39;", "'")
    fields |= {"chat": "Your refund went out on {{ date }}; banks take a few days.",
               "reason": "chat agents asked"}
    assert post_form(trainer, "/e/refund-status/edit", fields).status_code == 302
    entry = app.extensions["kb"].sheet.entry("refund-status")
    assert entry.chat == "Your refund went out on {{ date }}; banks take a few days."
    text = app.extensions["kb"].sheet.store.read("refund-status.md").text
    assert re.search(r"^chat: '?Your refund went out on", text, re.M) and text.count("---") == 2


def test_usage_lists_the_most_used_entries_without_a_chat_version(app, client, trainer):
    app.extensions["kb"].sheet.write({"late.md": serialize_entry(CHATTY)}, message="chat",
                                     author=TARA)
    for slug in ("refund-status", "late", "wrong-colour"):
        client.get(f"/e/{slug}")
    html = trainer.get("/usage").get_data(as_text=True)
    listed = html.split('id="no-chat"')[1].split("</details>")[0]
    assert "Refund status" in listed and "Colour differs" in listed
    assert "Parcel late" not in listed  # it has one
    assert "Item arrived damaged" not in listed  # not used: not among the most used


def test_the_starter_sheet_has_chat_versions_for_its_common_entries():
    from pathlib import Path

    from kb.entry import parse_entry as read

    chats = {p.stem: read(p.stem, p.read_text()).chat for p in Path("entries").glob("*.md")}
    have = {slug for slug, chat in chats.items() if chat}
    assert {"refund-status", "item-arrived-damaged", "package-lost", "charged-twice",
            "how-to-return", "cancel-an-order"} <= have
    assert all(len(chats[s]) <= CHAT_LIMIT - 60 for s in have)
