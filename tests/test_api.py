"""The JSON API through the Flask test client."""

from __future__ import annotations

from tests.conftest import TARA, entry_text


def test_search_returns_ranked_results(client):
    data = client.get("/api/search?q=box+smashed").get_json()
    assert data["results"][0]["slug"] == "item-arrived-damaged"
    first = data["results"][0]
    assert set(first) >= {"slug", "title", "snippet", "score"}
    assert "<mark>" in first["snippet"]
    scores = [r["score"] for r in data["results"]]
    assert scores == sorted(scores, reverse=True)


def test_search_limit_tag_and_did_you_mean(client):
    assert len(client.get("/api/search?q=the&limit=1").get_json()["results"]) <= 1
    data = client.get("/api/search?q=different&tag=colour").get_json()
    assert [r["slug"] for r in data["results"]] == ["wrong-colour"]
    assert client.get("/api/search?q=refnud").get_json()["did_you_mean"] == "refund"
    as_typed = client.get("/api/search?q=refnud&as_typed=1").get_json()
    assert as_typed["did_you_mean"] is None and as_typed["query"] == "refnud"


def test_search_bad_limit_is_a_json_error(client):
    response = client.get("/api/search?q=x&limit=lots")
    assert response.status_code == 400
    assert "limit" in response.get_json()["message"]


def test_entry_has_fields_markdown_and_sanitised_html(client, app):
    app.extensions["kb"].sheet.write(
        {"xss.md": entry_text("Xss", "Hi <script>alert(1)</script> **bold**",
                              phrasings=["zap"])},
        message="x", author=TARA)
    data = client.get("/api/entries/xss").get_json()
    assert data["title"] == "Xss" and data["phrasings"] == ["zap"]
    assert "<script>" in data["answer"]  # the Markdown source, as written
    assert "<strong>bold</strong>" in data["answer_html"]
    assert "<script" not in data["answer_html"]


def test_unknown_entry_is_json_404(client):
    response = client.get("/api/entries/no-such-thing")
    assert response.status_code == 404
    assert "no-such-thing" in response.get_json()["message"]


def test_malformed_entry_is_a_clear_json_error(client, app):
    app.extensions["kb"].store.write({"bad.md": "no front matter"}, message="x", author=TARA)
    response = client.get("/api/entries/bad")
    assert response.status_code == 422
    assert "bad.md" in response.get_json()["message"]


def test_compose_fills_values_literally(client):
    response = client.post("/api/compose/item-arrived-damaged", json={
        "customer_name": "{{ agent_name }} {% raw %}", "order_number": "<b>A-1</b>",
        "agent_name": "Sam",
    })
    data = response.get_json()
    assert response.status_code == 200
    assert data["text"].startswith("Hello {{ agent_name }} {% raw %},")
    assert "order A-1" not in data["text"] and "order <b>A-1</b>" in data["text"]
    assert "&lt;b&gt;A-1&lt;/b&gt;" in data["html"] and "<b>A-1" not in data["html"]
    assert "Sam" in data["text"] and "Northwind Home" in data["text"]
    assert data["missing"] == ["item"]
    assert 'class="missing"' in data["html"]


def test_compose_wants_json(client):
    response = client.post("/api/compose/item-arrived-damaged", data={"customer_name": "x"})
    assert response.status_code == 415
    assert "application/json" in response.get_json()["message"]
    response = client.post("/api/compose/item-arrived-damaged", data="[1,2]",
                           content_type="application/json")
    assert response.status_code == 400


def test_unknown_api_route_is_json(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["error"] == "Not Found"


def test_answer_checks_through_the_api(client, app):
    app.extensions["kb"].sheet.write(
        {"rude.md": entry_text("Rude", "Calm down. We'll call you back.")},
        message="x", author=TARA)
    data = client.get("/api/entries/rude/checks").get_json()
    found = {(f["check"], f["level"], f["excerpt"]) for f in data["findings"]}
    assert ("tone", "error", "Calm down") in found
    assert ("commitment", "warning", "We'll call") in found
    assert data["errors"] == 1
    clean = client.get("/api/entries/refund-status/checks").get_json()
    assert clean["errors"] == 0
