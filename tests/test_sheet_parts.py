"""The shared parts (greeting, closing, phone opening, synonyms, placeholders): checked
as they are typed, refused with the reason when broken, previewed as agents see them."""

from __future__ import annotations

import re
import shutil
from html import unescape

import pytest

from kb.parts import check_part, errors_in, preview
from tests.conftest import SMALL_SHEET, csrf_from

GREETING = "_sheet/greeting.md"


def _errors(findings):
    return [f.message for f in findings if f.level == "error"]


# -- the function ------------------------------------------------------------------------


def test_the_sheets_own_parts_pass(sheet):
    for name, path in (("greeting", GREETING), ("closing", "_sheet/closing.md"),
                       ("phone_opening", "_sheet/phone_opening.md"),
                       ("synonyms", "_sheet/synonyms.txt"),
                       ("placeholders", "_sheet/placeholders.yml")):
        assert errors_in(check_part(name, SMALL_SHEET[path], sheet)) == 0, name
    assert check_part("greeting", "Hello {{ customer_name }},", sheet) == []  # two words: no grade


def test_an_unknown_placeholder_names_the_closest_and_lists_the_known(sheet):
    findings = check_part("greeting", "Hello {{ customer_nme }},\n", sheet)
    [error] = [f for f in findings if f.level == "error"]
    assert "“customer_nme”" in error.message and "Did you mean customer_name" in error.message
    assert "Known: agent_name, amount, company_name, customer_name" in error.message
    assert error.suggestion == "{{ customer_name }}" and error.excerpt == "{{ customer_nme }}"
    # a name with nothing like it: no guess, still the list
    [far] = _errors(check_part("closing", "Bye {{ zzz }}", sheet))
    assert "Did you mean" not in far and "Known:" in far
    # agent_name is filled by kb itself, a fallback is fine
    assert _errors(check_part("closing", "{{ agent_name }} {{ item | your order }}", sheet)) == []


def test_wrong_braces_and_tone_in_a_part(sheet):
    assert any("wrong braces" in m for m in _errors(check_part("greeting", "Hi {customer_name}},",
                                                                sheet)))
    findings = check_part("phone_opening", "Calm down, this is {{ agent_name }}.", sheet)
    assert [f.check for f in findings if f.level == "error"] == ["tone"]
    # a warning only: the part can be saved
    findings = check_part("closing", "It's our policy to reply. {{ agent_name }}", sheet)
    assert findings and errors_in(findings) == 0
    long = "Thank you for calling us. " * 9
    assert [f.check for f in check_part("phone_opening", long, sheet)] == ["spoken-length"]


def test_synonym_lines_that_cannot_be_read_are_named_by_line(sheet):
    text = "# money\nrefund, money back\nrefund; reimbursement\n\nparcel\nbox, parcel, {{ item }}\n"
    messages = _errors(check_part("synonyms", text, sheet))
    assert messages[0].startswith("Line 3:") and "not “;”" in messages[0]
    assert messages[1].startswith("Line 5:") and "group of one" in messages[1]
    assert messages[2].startswith("Line 6:") and "braces" in messages[2]
    warnings = [f.message for f in check_part("synonyms", "a, b\nb, c\n", sheet)]
    assert warnings == ["Line 2: “b” is also in line 1, so a search for it finds the words of "
                        "both groups; keep it in one."]


def test_placeholders_file_lines_and_removed_names_in_use(sheet):
    good = SMALL_SHEET["_sheet/placeholders.yml"]
    [broken] = _errors(check_part("placeholders", good + "days: {label: Days\nx: 1\n", sheet))
    assert broken.startswith("Line 9:") and "cannot be read" in broken
    bad = good + "order number: {label: x}\nitem: {label: Again}\nlink: Link\n"
    messages = _errors(check_part("placeholders", bad, sheet))
    assert any(m.startswith("Line 8:") and "“order number” cannot be" in m for m in messages)
    assert any(m.startswith("Line 9:") and "listed twice (also line 5)" in m for m in messages)
    assert any(m.startswith("Line 10:") and "write link:" in m for m in messages)
    typo = check_part("placeholders", good + "days: {lable: Days}\n", sheet)
    assert [f.level for f in typo] == ["warning"] and "Did you mean label?" in typo[0].message
    # taking out a name that the greeting or an entry still uses
    fewer = "\n".join(line for line in good.splitlines()
                      if not line.startswith(("customer_name", "amount", "date")))
    messages = _errors(check_part("placeholders", fewer, sheet))
    assert messages == [
        "“amount” is still used by “Refund status”. Take it out there first, or keep it here.",
        "“customer_name” is still used by the greeting. Take it out there first, or keep it "
        "here.",
        "“date” is still used by “Refund status”. Take it out there first, or keep it here."]


def test_preview_puts_the_part_in_an_email_with_sample_values(sheet):
    shown = preview("greeting", "Dear {{ customer_name }},", sheet,
                    {"company_name": "Northwind Home"}, "Tara Trainer")
    assert shown.email.text.startswith("Dear Alex,\n\n")
    assert shown.email.text.rstrip().endswith("Tara Trainer\nNorthwind Home")
    assert shown.entry.title == "Colour differs from the website"  # first by title
    shown = preview("phone_opening", "Hi, {{ agent_name }} here.", sheet, {}, "Tara Trainer")
    assert "Hi, Tara Trainer here." in shown.opening and "Say sorry" in shown.points
    shown = preview("synonyms", "a, b\nc, d, e\n", sheet, {}, "Tara")
    assert shown.groups == [("a", "b"), ("c", "d", "e")]


# -- the page ----------------------------------------------------------------------------


def _head(app):
    return app.extensions["kb"].store.head()


def _post_part(client, name: str, data: dict):
    """Send the part's form as a browser does: with its token and the version it shows."""
    page = client.get(f"/sheet/{name}").get_data(as_text=True)
    base = re.search(r'name="base_version" value="([^"]*)"', page).group(1)
    return client.post(f"/sheet/{name}", data={"csrf_token": csrf_from(page),
                                               "base_version": base, **data})


def test_a_typo_is_refused_with_the_text_kept(app, trainer):
    before = _head(app)
    typed = "Hello {{ customer_nme }},\n\nThanks for writing to us."
    reply = _post_part(trainer, "greeting", {"text": typed, "reason": "warmer",
                                                   "action": "save"})
    assert reply.status_code == 422
    page = unescape(reply.get_data(as_text=True))
    assert "Not saved: 1 error below" in page
    assert "Did you mean customer_name?" in page
    assert re.search(r"<textarea[^>]*>" + re.escape(typed) + "</textarea>", page)
    assert _head(app) == before
    assert app.extensions["kb"].store.read(GREETING).text == SMALL_SHEET[GREETING]


def test_a_good_save_commits_and_warnings_do_not_stop_it(app, trainer):
    before = _head(app)
    reply = _post_part(trainer, "greeting", {
        "text": "Hi {{ customer_name }},\r\nIt's our policy to answer within a day.",
        "reason": "say when we answer", "action": "save"})
    assert reply.status_code == 302
    store = app.extensions["kb"].store
    assert _head(app) != before
    assert store.read(GREETING).text == ("Hi {{ customer_name }},\nIt's our policy to answer "
                                         "within a day.\n")
    assert store.history(GREETING, limit=1)[0].message == "say when we answer"
    page = trainer.get("/sheet/greeting").get_data(as_text=True)
    assert "Saved the greeting. 1 warning below." in page
    assert 'class="warning"' in page and "Can be saved" in page


def test_removing_a_placeholder_in_use_is_refused(app, trainer):
    before = _head(app)
    fewer = SMALL_SHEET["_sheet/placeholders.yml"].replace("amount: {label: Amount}\n", "")
    reply = _post_part(trainer, "placeholders", {"text": fewer, "reason": "tidy"})
    assert reply.status_code == 422 and _head(app) == before
    assert "“amount” is still used by “Refund status”" in unescape(reply.get_data(as_text=True))


def test_preview_without_javascript_saves_nothing(app, trainer):
    before = _head(app)
    reply = _post_part(trainer, "closing", {
        "text": "Best wishes,\n{{ agent_name }} at {{ company_name }}", "action": "preview"})
    assert reply.status_code == 200 and _head(app) == before
    page = unescape(reply.get_data(as_text=True))
    assert "Hello Alex," in page  # the greeting, then a sample answer, then this closing
    assert "Best wishes,\nTara Example at Northwind Home" in page
    assert "No problems found." in page


def test_the_json_check_for_live_typing(app, trainer, client):
    reply = trainer.post("/api/sheet/greeting/check", json={"text": "Hi {{ customer_nme }}"})
    body = reply.get_json()
    assert reply.status_code == 200 and body["errors"] == 1
    assert body["findings"][0]["suggestion"] == "{{ customer_name }}"
    assert "Did you mean customer_name?" in unescape(body["checks_html"])
    cue = '<mark class="missing" data-name="customer_nme">[Customer nme]</mark>'
    assert cue in body["preview_html"]
    assert trainer.post("/api/sheet/greeting/check", json={}).status_code == 400
    assert trainer.post("/api/sheet/nothing/check", json={"text": ""}).status_code == 404
    # a form post from another site cannot reach it, and agents may not use it
    assert trainer.post("/api/sheet/greeting/check", data={"text": "x"}).status_code == 415
    assert client.post("/api/sheet/greeting/check", json={"text": "x"}).status_code == 403
    page = trainer.get("/sheet/greeting").get_data(as_text=True)
    assert csrf_from(page)  # the page carries the token the script sends along


# -- in a browser ------------------------------------------------------------------------

if shutil.which("/usr/bin/chromium"):
    from playwright.sync_api import expect

    from tests.test_browser import browser, server, sign_in  # noqa: F401 - fixtures


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 375])
def test_typing_a_typo_shows_the_error_and_the_preview_follows(browser, server, app,  # noqa: F811
                                                               width):
    context = browser.new_context(base_url=server, viewport={"width": width, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, "tara")
    page.goto("/sheet/greeting")
    page.wait_for_selector("html[data-ready]", state="attached")
    expect(page.locator("#part-checks")).to_contain_text("No problems found.")
    expect(page.locator("#part-email")).to_contain_text("Hello Alex,")
    box = page.locator("#part-text")
    box.fill("")
    box.press_sequentially("Good day {{ customer_nme }},", delay=10)
    checks = page.locator("#part-checks")
    expect(checks).to_contain_text("1 error: fix it before saving.")
    expect(checks).to_contain_text("Did you mean customer_name?")
    expect(page.locator("#part-email")).to_contain_text("Good day [Customer nme],")
    expect(box).to_have_attribute("aria-invalid", "true")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # saving anyway: refused, the text kept
    page.fill("input[name=reason]", "warmer")
    page.click("button[value=save]")
    expect(page.locator("#part-error")).to_contain_text("Not saved")
    expect(page.locator("#part-text")).to_have_value("Good day {{ customer_nme }},")
    # fixed: the error goes, the preview shows the name filled in, the save goes through
    page.locator("#part-text").fill("Good day {{ customer_name }},")
    expect(page.locator("#part-email")).to_contain_text("Good day Alex,")
    expect(page.locator("#part-checks")).to_contain_text("No problems found.")
    page.fill("input[name=reason]", "warmer")
    page.click("button[value=save]")
    expect(page.locator(".flash", has_text="Saved the greeting.")).to_be_visible()
    assert app.extensions["kb"].store.read(GREETING).text == "Good day {{ customer_name }},\n"
    context.close()
