"""The browser extension's side of kb: its download, connecting it with a token that
lives as long as the sign-in, the fields and page-value rules it reads, and the events
it reports. (The extension itself runs in Chromium: tests/test_extension_browser.py.)"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from kb import usage
from kb.extension import PAGE_VALUES, PRESETS, RulesError, build_zip, parse_rules
from kb.users import create_token, get_user, list_tokens, reset_password
from tests.conftest import TARA, csrf_from, entry_text, login, post_form

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "static" / "extension"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def connect(client) -> str:
    """The one-click connection from the extension page: the token it hands over."""
    html = post_form(client, "/extension/connect", {}, page_url="/extension").get_data(True)
    marker = 'data-kb-extension-token="'
    assert marker in html
    return html.split(marker, 1)[1].split('"', 1)[0]


def test_fields_are_the_emails_blanks_with_labels_and_what_kb_fills_for_a_token(app, anon):
    sheet = app.extensions["kb"].sheet
    text = sheet.store.read("item-arrived-damaged.md").text.replace(
        "your {{ item }}", "your {{ item | order }}")
    sheet.write({"item-arrived-damaged.md": text}, message="fallback", author=TARA)
    token = create_token(app.extensions["kb_db"], "alice")
    response = anon.get("/api/entries/item-arrived-damaged/fields", headers=bearer(token))
    assert response.status_code == 200
    data = response.get_json()
    assert data["title"] == "Item arrived damaged"
    assert data["version"] == sheet.store.version_of("item-arrived-damaged.md")
    fields = {f["name"]: f for f in data["fields"]}
    # in the email's order: greeting, answer, closing
    assert [f["name"] for f in data["fields"]] == [
        "customer_name", "item", "order_number", "agent_name", "company_name"]
    assert fields["customer_name"] == {"name": "customer_name", "label": "Customer name",
                                       "example": "Ana", "value": "", "fallback": ""}
    assert fields["item"]["fallback"] == "order"
    # what kb fills for this person: their own name and the sheet's default
    assert fields["agent_name"]["value"] == "Alice Example"
    assert fields["company_name"]["value"] == "Northwind Home"
    # compose with the same token fills them as well
    email = anon.post("/api/compose/item-arrived-damaged", headers=bearer(token),
                      json={"values": {"customer_name": "Ana", "order_number": "NW-1"}}).get_json()
    assert email["missing"] == [] and email["text"].rstrip().endswith("Northwind Home")
    assert "Alice Example" in email["text"]
    assert anon.get("/api/entries/nope/fields", headers=bearer(token)).status_code == 404


def test_facts_are_filled_by_kb_and_never_fields(app, client):
    sheet = app.extensions["kb"].sheet
    sheet.write({"_sheet/facts.yml": "refund_days: {label: Days to refund, type: days, "
                                     "value: 5}\n",
                 "refund-status.md": entry_text(
                     "Refund status", "Your refund of {{ amount }} takes {{ refund_days }} "
                     "days.")}, message="a fact", author=TARA)
    names = [f["name"] for f in client.get("/api/entries/refund-status/fields")
             .get_json()["fields"]]
    assert "refund_days" not in names and "amount" in names


def test_fields_of_the_chat_message_where_the_entry_has_one(app, client):
    sheet = app.extensions["kb"].sheet
    sheet.write({"refund-status.md": entry_text(
        "Refund status", "Your refund of {{ amount }} was sent on {{ date }}.",
        chat="Refund of {{ amount }} on its way."),
        "_sheet/chat_greeting.md": "Hi {{ customer_name }}!\n"}, message="chat",
        author=TARA)
    chat = client.get("/api/entries/refund-status/fields?channel=chat").get_json()
    assert chat["channel"] == "chat"
    assert [f["name"] for f in chat["fields"]] == ["customer_name", "amount"]
    email = client.get("/api/entries/refund-status/fields").get_json()
    assert email["channel"] == "email" and "date" in [f["name"] for f in email["fields"]]
    # no chat version: the email's fields, said so
    other = client.get("/api/entries/wrong-colour/fields?channel=chat").get_json()
    assert other["channel"] == "email"


def test_the_panel_reports_a_view_and_an_insert_as_a_copy_linked_to_its_search(app, anon):
    db = app.extensions["kb_db"]
    token = create_token(db, "alice")
    sid = anon.get("/api/search?q=box+smashed&typing=1", headers=bearer(token)
                   ).get_json()["search_id"]
    version = app.extensions["kb"].store.version_of("item-arrived-damaged.md")
    for kind in ("view", "copy"):
        response = anon.post("/api/events", headers=bearer(token), json={
            "kind": kind, "slug": "item-arrived-damaged", "version": version, "search_id": sid})
        assert response.status_code == 201
    counted = usage.usage(db)["item-arrived-damaged"]
    assert (counted.views, counted.copies) == (1, 1)
    assert anon.post("/api/events", headers=bearer(token), json={
        "kind": "open", "slug": "item-arrived-damaged"}).status_code == 400


def test_connecting_makes_a_token_that_ends_when_its_person_signs_out(app, client, anon):
    db = app.extensions["kb_db"]
    alice = get_user(db, "alice")
    lasting = create_token(db, "alice", "helpdesk script")  # an ordinary token
    token = connect(client)
    assert anon.get("/api/session", headers=bearer(token)).get_json() == {"username": "alice"}
    assert sorted(t.label for t in list_tokens(db, alice.id)) == [
        "Browser extension", "helpdesk script"]
    # signing out of kb (anywhere) ends the extension's connection at once
    post_form(client, "/logout", {}, page_url="/profile")
    response = anon.get("/api/search?q=refund", headers=bearer(token))
    assert response.status_code == 401
    assert "You signed out of kb" in response.get_json()["message"]
    assert [t.label for t in list_tokens(db, alice.id)] == ["helpdesk script"]
    assert anon.get("/api/session", headers=bearer(lasting)).status_code == 200
    # gone for good: the next call says kb does not know it
    assert "does not know this token" in anon.get(
        "/api/session", headers=bearer(token)).get_json()["message"]
    # a reset (by an admin) ends it too, like every token
    assert login(client, "alice").status_code == 302
    token = connect(client)
    reset_password(db, "alice")
    assert anon.get("/api/session", headers=bearer(token)).status_code == 401


def test_a_new_password_ends_the_extensions_connection(app, client, anon):
    token = connect(client)
    post_form(client, "/profile", {"action": "password", "current": "correct-horse-1",
                                   "new": "violet-harbour-tram-9", "confirm":
                                   "violet-harbour-tram-9"})
    assert anon.get("/api/session", headers=bearer(token)).status_code == 401
    # the session that changed the password stays in and can connect again
    token = connect(client)
    assert anon.get("/api/session", headers=bearer(token)).status_code == 200


def test_the_profile_offers_the_download_and_a_one_click_connection(client):
    html = client.get("/profile").get_data(True)
    assert 'href="/extension.zip"' in html and 'action="/extension/connect"' in html
    page = client.get("/extension").get_data(True)
    assert "Load unpacked" in page and "data-kb-extension-status" in page
    assert csrf_from(page)


def _zip(data: bytes) -> dict[str, bytes]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    return {n: archive.read(n) for n in archive.namelist()}


def test_the_download_is_the_extension_set_up_for_this_kb(client, anon):
    assert anon.get("/extension.zip").status_code == 302  # signed-in agents only
    response = client.get("/extension.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    files = _zip(response.data)
    shipped = {p.relative_to(EXTENSION).as_posix() for p in EXTENSION.rglob("*") if p.is_file()}
    assert {n.removeprefix("kb-extension/") for n in files} == shipped | {"kb.json"}
    manifest = json.loads(files["kb-extension/manifest.json"])
    assert manifest["manifest_version"] == 3
    # the one host it may call is this kb; the address is filled in
    assert manifest["host_permissions"] == ["http://localhost/*"]
    assert json.loads(files["kb-extension/kb.json"]) == {"kb_url": "http://localhost"}
    for name in ("worker.js", "content.js", "options.js"):
        assert files[f"kb-extension/{name}"] == (EXTENSION / name).read_bytes()


def test_the_download_names_the_configured_address():
    files = _zip(build_zip("https://kb.example.com:8443/"))
    manifest = json.loads(files["kb-extension/manifest.json"])
    assert manifest["host_permissions"] == ["https://kb.example.com:8443/*"]
    assert json.loads(files["kb-extension/kb.json"])["kb_url"] == "https://kb.example.com:8443"
    with pytest.raises(ValueError):
        build_zip("javascript:alert(1)")


def test_the_extension_has_no_remote_code_and_asks_for_little():
    manifest = json.loads((EXTENSION / "manifest.json").read_text())
    assert manifest["permissions"] == ["storage"]
    assert "host_permissions" not in manifest  # the download adds this kb's address alone
    assert "content_security_policy" not in manifest  # MV3's default: no eval, no remote code
    for path in EXTENSION.glob("*.js"):
        text = path.read_text()
        assert "eval(" not in text and "new Function" not in text, path.name
    # the options page runs its own file only
    html = (EXTENSION / "options.html").read_text()
    assert re.findall(r"<script[^>]*>", html) == ['<script src="options.js" defer>']


def test_page_value_rules_are_checked_and_name_each_problem():
    rules = parse_rules("presets: [zendesk]\nsites:\n  - match: https://help.example.com/*\n"
                        "    values:\n      customer_name: {selector: '.who', pattern: '^(\\S+)'}\n"
                        "      case_number: [{url: '/t/(\\d+)'}, {title: '#(\\d+)'}]\n")
    assert rules["presets"] == ["zendesk"]
    assert rules["sites"][0]["values"]["case_number"] == [{"url": "/t/(\\d+)"},
                                                          {"title": "#(\\d+)"}]
    bad = [
        ("presets: [zendsk]", "there is no preset 'zendsk'"),
        ("sites:\n  - match: help.example.com\n    values: {a: {url: x}}", "match is the page"),
        ("sites:\n  - match: https://x/*\n    values: {a: {url: '(?P<n>1)'}}", "Python's syntax"),
        ("sites:\n  - match: https://x/*\n    values: {a: {url: x, title: y}}", "exactly one"),
        ("sites:\n  - match: https://x/*\n    values: {a: {url: '('}}", "regular expression"),
        ("sites:\n  - match: https://x/*\n    values: {a-b: {url: x}}", "not a placeholder"),
        ("sites:\n  - match: https://x/*\n    values: {a: {url: x, pattern: y}}", "go with a"),
        ("presets: [", "not readable YAML"),
        ("sites:\n  - match: https://x/*\n    chat_boxes: 3", "chat_boxes is a CSS selector"),
        ("sites:\n  - match: https://x/*\n    value: {a: {url: x}}", "unknown key value"),
    ]
    for text, says in bad:
        with pytest.raises(RulesError, match=says.replace("(", r"\(")):
            parse_rules(text)


def test_admins_set_the_page_value_rules_and_the_extension_reads_them(app, admin, client):
    page = admin.get("/admin/page-values").get_data(True)
    assert "presets: [zendesk, freshdesk, help-scout, zammad, chatwoot]" in page
    # every preset reads a page address the extension can match
    assert client.get("/api/extension/page-values").get_json()["sites"] == list(PRESETS.values())
    bad = "sites:\n  - match: nowhere\n    values: {customer_name: {selector: '.who'}}\n"
    response = post_form(admin, "/admin/page-values", {"text": bad, "base_version": ""})
    assert response.status_code == 422
    html = response.get_data(True)
    assert "Not saved" in html and "match is the page" in html and "match: nowhere" in html
    assert app.extensions["kb"].store.read(PAGE_VALUES) is None
    good = ("presets: [zendesk]\nsites:\n  - name: Shop desk\n    match: http://127.0.0.1:*/*\n"
            "    values:\n      customer_name: {selector: '.who'}\n")
    response = post_form(admin, "/admin/page-values", {"text": good, "base_version": ""})
    assert response.status_code == 302
    store = app.extensions["kb"].store
    assert store.read(PAGE_VALUES).text == good
    last = store.history(PAGE_VALUES)[0]
    assert last.author.name == "Adam Example"
    sites = client.get("/api/extension/page-values").get_json()["sites"]
    assert [s["name"] for s in sites] == ["Shop desk", "Zendesk"]  # theirs first
    assert sites[0]["values"] == {"customer_name": [{"selector": ".who"}]}
    # saving over a newer version is refused, not lost
    response = post_form(admin, "/admin/page-values", {"text": good, "base_version": ""})
    assert response.status_code == 409 and "saved these rules meanwhile" in response.get_data(True)
    assert client.get("/admin/page-values").status_code == 403
