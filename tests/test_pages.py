"""Pages through the Flask test client (the browser tests drive the JavaScript)."""

from __future__ import annotations

import email
import email.policy
import re

from tests.conftest import TARA, csrf_from, entry_text, post_form


def test_search_page_lists_the_sheet_when_empty(client):
    html = client.get("/").get_data(as_text=True)
    assert 'id="q"' in html
    assert "Item arrived damaged" in html and "Refund status" in html


def test_search_page_renders_results_without_javascript(client):
    html = client.get("/?q=money+back").get_data(as_text=True)
    assert "Refund status" in html
    assert "Colour differs" not in html


def test_search_page_shows_did_you_mean(client):
    html = client.get("/?q=refnud").get_data(as_text=True)
    assert "Showing results for" in html and "<strong>refund</strong>" in html
    # and one link back to the words as typed, which then stay as typed
    assert 'href="/?q=refnud&amp;as_typed=1"' in html
    html = client.get("/?q=refnud&as_typed=1").get_data(as_text=True)
    assert "<strong>refund</strong>" not in html and "Searched as typed" in html


def test_search_page_escapes_the_query(client):
    html = client.get("/?q=<script>alert(1)</script>").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_entry_page_shows_answer_phone_tags_and_review_date(client):
    html = client.get("/e/item-arrived-damaged").get_data(as_text=True)
    assert "Item arrived damaged" in html
    assert "We will send a new one" in html
    assert "On the phone" in html and "Say sorry." in html
    assert "delivery" in html and "2026-10-01" in html
    assert 'id="copy"' in html and "mailto:" in html and ".eml" in html


def test_entry_page_flags_unfilled_placeholders_and_fills_given_ones(client):
    html = post_form(client, "/e/item-arrived-damaged", {"customer_name": "Ana", "item": "lamp"}
                     ).get_data(as_text=True)
    assert "Hello Ana," in html and "your lamp arrived" in html
    assert '<mark class="missing" data-name="order_number">[Order number]</mark>' in html
    assert "Still to fill" in html


def test_entry_page_sanitises_markdown(client, app):
    app.extensions["kb"].sheet.write(
        {"evil.md": entry_text("Evil", '<img src=x onerror="alert(1)"> [x](javascript:alert(1))')},
        message="x", author=TARA)
    html = client.get("/e/evil").get_data(as_text=True)
    # the plain-text copy and the mailto link carry the words escaped; no live markup anywhere
    assert "<img" not in html and 'href="javascript' not in html


def test_entry_page_never_evaluates_entry_text_as_a_template(client, app):
    app.extensions["kb"].sheet.write(
        {"ssti.md": entry_text("Ssti", "Total {{ 7*7 }} and {% if true %}yes{% endif %}")},
        message="x", author=TARA)
    html = client.get("/e/ssti").get_data(as_text=True)
    assert "Total 49" not in html and "Total {{ 7*7 }}" in html
    assert "{% if true %}yes{% endif %}" in html


def test_eml_download_is_a_mail_draft(client):
    response = post_form(client, "/e/item-arrived-damaged/email.eml",
                         {"customer_name": "Zoë", "agent_name": "Sam", "item": "lamp",
                          "order_number": "NW-1"},
                         page_url="/e/item-arrived-damaged")
    assert response.status_code == 200
    assert response.mimetype == "message/rfc822"
    assert "attachment" in response.headers["Content-Disposition"]
    msg = email.message_from_bytes(response.data, policy=email.policy.default)
    assert msg["Subject"] == "Re: Item arrived damaged"
    body = msg.get_body(("plain",)).get_content()
    assert body.startswith("Hello Zoë,") and "Sam" in body
    assert msg.get_body(("html",)) is not None


def test_unknown_entry_page_is_404_with_a_way_back(client):
    response = client.get("/e/nothing")
    assert response.status_code == 404
    assert "Back to search" in response.get_data(as_text=True)


def test_malformed_file_is_named_on_the_search_page(client, app):
    app.extensions["kb"].store.write({"oops.md": "---\ntitle: x\n"}, message="x", author=TARA)
    html = client.get("/").get_data(as_text=True)
    assert "oops.md" in html and "never closed" in html
    assert "Item arrived damaged" in html


def test_security_headers(client):
    response = client.get("/")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_text_holding_an_invisible_marker_renders_composes_and_prints(client, trainer):
    marker = "\u2063kb0\u2063"
    page = trainer.get("/e/refund-status/edit").get_data(as_text=True)
    base = re.search(r'name="base_version" value="([^"]+)"', page).group(1)
    saved = trainer.post("/e/refund-status/edit", data={
        "csrf_token": csrf_from(page), "base_version": base, "reason": "odd text",
        "title": f"Refund status {marker}", "answer": f"Your refund {marker} of {{{{ amount }}}}.",
        "phone": f"- Say {marker}.", "phrasings": "where is my money", "tags": "refund",
        "category": "Returns and refunds", "status": "published"})
    assert saved.status_code == 302
    html = post_form(client, "/e/refund-status", {"amount": "12"}).get_data(as_text=True)
    assert f"Your refund {marker} of 12." in html
    composed = client.post("/api/compose/refund-status", json={"amount": "12"})
    assert composed.status_code == 200
    assert f"Your refund {marker} of 12." in composed.get_json()["text"]
    printed = client.get("/print?category=Returns and refunds")
    assert printed.status_code == 200 and f"Your refund {marker} of" in printed.get_data(True)


def test_typed_values_stay_out_of_every_url(client):
    # the compose form posts; the page it answers links nowhere with the values in
    html = post_form(client, "/e/item-arrived-damaged",
                     {"customer_name": "Ana Lima", "order_number": "ORD-77123"}).get_data(True)
    assert "Hello Ana Lima," in html
    assert re.search(r'<form id="compose"[^>]*method="post"', html)
    for url in re.findall(r'(?:href|action|formaction|data-[a-z-]+)="([^"]*)"', html):
        if url.startswith("mailto:"):  # handed to the mail program, never fetched
            continue
        assert "ORD-77123" not in url and "Ana" not in url, url
    # a link that carries values (an old bookmark, one passed around) fills nothing in
    old = client.get("/e/item-arrived-damaged?customer_name=Ana+Lima").get_data(as_text=True)
    assert "Hello Ana Lima," not in old
    # the .eml is a POST of the same form, never a GET with the values in its URL
    assert client.get("/e/item-arrived-damaged/email.eml?customer_name=Ana").status_code == 405
    eml = post_form(client, "/e/item-arrived-damaged/email.eml",
                    {"order_number": "ORD-77123", "to": "ana@example.com", "blanks": "1"},
                    page_url="/e/item-arrived-damaged")
    msg = email.message_from_bytes(eml.data, policy=email.policy.default)
    assert msg["To"] == "ana@example.com" and "ORD-77123" in msg.get_body(("plain",)).get_content()


def test_pages_and_api_answers_are_never_cached(client, app):
    for url in ("/", "/e/refund-status", "/api/search?q=refund", "/print", "/review-due",
                "/api/entries/refund-status"):
        assert client.get(url).headers.get("Cache-Control") == "no-store", url
    composed = client.post("/api/compose/refund-status", json={"customer_name": "Ana"})
    assert composed.headers["Cache-Control"] == "no-store"
    assert client.get("/login").headers["Cache-Control"] == "no-store"
    static = client.get("/static/app.js")
    assert static.headers.get("Cache-Control") != "no-store"
    static.close()
    assert "Strict-Transport-Security" not in client.get("/").headers


def test_hsts_when_the_session_cookie_is_https_only(client, app):
    app.config["SESSION_COOKIE_SECURE"] = True
    response = client.get("/login")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
