"""The entry form: live preview and checks, proposals held back by errors, the review
form that changes only what the trainer changed, tags and the lists to pick from."""

from __future__ import annotations

import difflib
import re

from kb import proposals as P
from kb.entry import fields_of, parse_entry
from kb.users import get_user
from tests.conftest import csrf_from, post_form

# A proposal written by hand, with the quirks a form must not rewrite: a comment, a
# quoted title, tags in a flow list, phrasings indented by four, an unknown key.
HAND_WRITTEN = """---
title: "Lid does not fit"   # as agents say it
phrasings:
    - the lid won't close
    - lid is the wrong size
tags: [lid, fit]
category: Orders and delivery
team_note: photos help
---
Sorry the lid of your {{ item }} does not fit.

Send us a photo and we will send a new lid.

## On the phone

- Ask for a photo.
- Offer a new lid.
"""


def _changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    return ([d[2:] for d in diff if d.startswith("- ")],
            [d[2:] for d in diff if d.startswith("+ ")])


def _hand_written_proposal(app) -> int:
    svc = app.extensions["kb"]
    db = app.extensions["kb_db"]
    proposal = P.create(db, svc.sheet, get_user(db, "alice"), "lid-does-not-fit", HAND_WRITTEN,
                        "Asked on chat", None, True)
    return proposal.id


def _form_of(text: str) -> dict[str, str]:
    """The review form's fields as the page fills them in."""
    fields = fields_of(parse_entry("x", text))
    return {k: fields[k] for k in ("title", "phrasings", "tags", "category", "owner",
                                   "review_every_days", "answer", "phone")} | {"text": text}


# -- the preview endpoint ---------------------------------------------------------------


def test_preview_is_sanitised_and_shows_placeholders_as_the_entry_page_does(client):
    response = client.post("/api/preview-entry", json={
        "title": "Lid", "answer": "Hi {{ customer_name }} <script>alert(1)</script>**sorry**",
        "phone": "- Offer a <img src=x onerror=alert(1)> new lid"})
    assert response.status_code == 200
    data = response.get_json()
    assert "<script" not in data["answer_html"] and "alert(1)" not in data["answer_html"]
    assert "<strong>sorry</strong>" in data["answer_html"]
    cue = '<mark class="missing" data-name="customer_name">[Customer name]</mark>'
    assert cue in data["answer_html"]
    assert "<img" not in data["phone_html"] and "onerror" not in data["phone_html"]
    assert data["findings"] == [] and data["errors"] == 0


def test_preview_names_an_unknown_placeholder_and_the_known_ones(client):
    data = client.post("/api/preview-entry", json={
        "answer": "Your {{ ordr_number }} is on its way. Calm down.", "phone": ""}).get_json()
    unknown = [f for f in data["findings"] if f["check"] == "placeholder"]
    assert len(unknown) == 1 and unknown[0]["level"] == "error"
    assert unknown[0]["excerpt"] == "{{ ordr_number }}" and "ordr_number" in unknown[0]["message"]
    assert "order_number" in unknown[0]["message"] and "customer_name" in unknown[0]["message"]
    assert any(f["check"] == "tone" and f["excerpt"].lower() == "calm down"
               for f in data["findings"])
    assert data["errors"] == 2


def test_preview_refuses_what_it_cannot_read(client, anon):
    assert client.post("/api/preview-entry", data={"answer": "x"}).status_code == 415
    assert client.post("/api/preview-entry", json={"answer": ["x"]}).status_code == 400
    huge = client.post("/api/preview-entry", json={"answer": "word " * 20_000})
    assert huge.status_code == 413 and "at most 64 KB" in huge.get_json()["message"]
    assert anon.post("/api/preview-entry", json={"answer": "x"}).status_code in (401, 302)


# -- proposals: errors hold them back, warnings do not ------------------------------------------


def test_a_proposal_with_an_error_is_shown_the_checks_and_not_sent(app, client):
    form = {"title": "Lid does not fit", "answer": "Sorry. {{ lid_size }} is what we sent.",
            "phone": "- Ask for a photo.", "reason": "Asked on chat"}
    response = post_form(client, "/propose", form)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Not sent yet" in page
    assert '<li class="error"><strong>error</strong> · answer “{{ lid_size }}”' in page
    assert 'id="live-checks"' in page and 'class="error"' in page
    assert 'value="Lid does not fit"' in page and "{{ lid_size }} is what we sent." in page
    assert P.by_author(app.extensions["kb_db"], get_user(app.extensions["kb_db"], "alice").id) \
        == []
    # a warning (a promise with no time) is shown but does not stop it
    form["answer"] = "Sorry. We will get back to you about the lid."
    response = post_form(client, "/propose", form)
    assert response.status_code == 302


def test_an_error_the_entry_already_had_does_not_stop_a_suggestion(app, client, trainer):
    svc = app.extensions["kb"]
    current = svc.sheet.entry("refund-status")
    old = current.answer.strip() + " Ask {{ bank_name }}."  # left there by someone else
    assert post_form(trainer, "/e/refund-status/edit", fields_of(current) | {
        "answer": old, "reason": "old error", "base_version": current.version}).status_code == 302
    now = svc.sheet.entry("refund-status")
    fields = fields_of(now) | {"base_version": now.version}
    response = post_form(client, "/e/refund-status/suggest", fields | {
        "phrasings": fields["phrasings"] + "\nmy refund is late", "reason": "a phrasing"})
    assert response.status_code == 302
    # a new error in the same suggestion is refused
    response = post_form(client, "/e/refund-status/suggest", fields | {
        "answer": old + " Tell them {{ whatever }}", "reason": "x"})
    assert "Not sent yet" in response.get_data(as_text=True)


# -- the review form ------------------------------------------------------------------------


def test_review_form_is_prefilled_with_the_raw_file_under_details(app, trainer):
    pid = _hand_written_proposal(app)
    page = trainer.get(f"/review/{pid}").get_data(as_text=True)
    assert 'name="title" value="Lid does not fit"' in page
    assert "the lid won&#39;t close\nlid is the wrong size</textarea>" in page
    assert 'name="tags" value="lid, fit"' in page
    assert '<details class="wide raw-file" id="raw-file">' in page  # closed
    assert "Edit the file itself" in page and "# as agents say it" in page
    assert 'name="owner"' in page and 'name="review_every_days"' in page
    assert "table class=\"diff\"" in page and page.index("table class=\"diff\"") < \
        page.index('id="review-form"')


def test_approving_from_the_form_changes_only_the_edited_lines(app, trainer):
    store = app.extensions["kb"].store
    pid = _hand_written_proposal(app)
    form = _form_of(HAND_WRITTEN)
    form["category"] = "Returns and refunds"
    form["phrasings"] = "the lid won't close\nlid is the wrong size\nlid falls off"
    form["answer"] = form["answer"].replace("Send us a photo", "Send us a photo of it")
    response = post_form(trainer, f"/review/{pid}", form | {"action": "approve"})
    assert response.status_code == 302
    written = store.read("lid-does-not-fit.md").text
    removed, added = _changed_lines(HAND_WRITTEN, written)
    # the three edits, and the owner and review date every new entry gets; nothing else
    assert removed == ["category: Orders and delivery",
                       "Send us a photo and we will send a new lid."]
    assert added[:1] == ["    - lid falls off"]
    assert "category: Returns and refunds" in added
    assert "Send us a photo of it and we will send a new lid." in added
    assert sorted(a.split(":")[0] for a in added if re.match(r"^\w+:", a)) == [
        "category", "last_reviewed", "owner", "review_every_days"]
    assert '"Lid does not fit"   # as agents say it' in written and "team_note" in written


def test_approving_an_unchanged_form_writes_the_proposal_as_it_is(app, trainer):
    store = app.extensions["kb"].store
    pid = _hand_written_proposal(app)
    form = _form_of(HAND_WRITTEN) | {"owner": "returns-team", "review_every_days": "90"}
    assert post_form(trainer, f"/review/{pid}", form | {"action": "approve"}).status_code == 302
    removed, added = _changed_lines(HAND_WRITTEN, store.read("lid-does-not-fit.md").text)
    assert removed == []
    assert sorted(added) == ["last_reviewed: " + parse_entry(
        "x", store.read("lid-does-not-fit.md").text).last_reviewed.isoformat(),
        "owner: returns-team", "review_every_days: 90"]


def test_the_file_itself_or_the_form_but_not_both(app, trainer):
    store = app.extensions["kb"].store
    pid = _hand_written_proposal(app)
    raw = HAND_WRITTEN.replace("photos help", "photos help a lot")
    both = _form_of(HAND_WRITTEN) | {"text": raw, "category": "Returns"}
    response = post_form(trainer, f"/review/{pid}", both | {"action": "approve"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "changed both the form and the file" in page
    assert "photos help a lot" in page and 'value="Returns"' in page  # nothing typed is lost
    assert '<details class="wide raw-file" id="raw-file" open>' in page
    assert store.read("lid-does-not-fit.md") is None
    response = post_form(trainer, f"/review/{pid}",
                         _form_of(HAND_WRITTEN) | {"text": raw, "action": "approve"})
    assert response.status_code == 302
    assert "team_note: photos help a lot" in store.read("lid-does-not-fit.md").text


def test_send_back_keeps_the_trainers_form_when_the_comment_is_missing(app, trainer):
    pid = _hand_written_proposal(app)
    form = _form_of(HAND_WRITTEN) | {"category": "Fit and finish", "action": "send_back"}
    page = post_form(trainer, f"/review/{pid}", form).get_data(as_text=True)
    assert "Say what should change" in page and 'value="Fit and finish"' in page


# -- tags, categories, owners ----------------------------------------------------------------


def test_tags_round_trip_through_the_form(app, trainer):
    sheet = app.extensions["kb"].sheet
    before = sheet.store.read("item-arrived-damaged.md").text
    entry = sheet.entry("item-arrived-damaged")
    fields = fields_of(entry) | {"base_version": entry.version}
    assert fields["tags"] == "delivery, damaged"
    page = trainer.get("/e/item-arrived-damaged/edit").get_data(as_text=True)
    assert 'name="tags" value="delivery, damaged" data-chips' in page
    response = post_form(trainer, "/e/item-arrived-damaged/edit", fields | {
        "tags": "delivery, damaged, Broken Glass", "reason": "a tag"})
    assert response.status_code == 302
    assert sheet.entry("item-arrived-damaged").tags == ("delivery", "damaged", "broken glass")
    removed, added = _changed_lines(before, sheet.store.read("item-arrived-damaged.md").text)
    assert removed == ["tags: [delivery, damaged]"]
    assert added == ["tags: [delivery, damaged, broken glass]"]


def test_the_form_offers_the_sheets_categories_tags_and_owners(app, client, trainer):
    page = trainer.get("/e/refund-status/edit").get_data(as_text=True)
    lists = {m.group(1): re.findall(r'<option value="([^"]*)">', m.group(2))
             for m in re.finditer(r'<datalist id="([\w-]+)">(.*?)</datalist>', page, re.S)}
    categories = {e.category for e in app.extensions["kb"].sheet.entries()[0] if e.category}
    assert set(lists["category-list"]) == categories and len(categories) >= 2
    assert {"delivery", "damaged"} <= set(lists["tag-list"])
    assert "tara" in lists["owner-list"] and "alice" not in lists["owner-list"]  # trainers
    assert 'list="category-list"' in page and 'name="review_every_days"' in page
    # a new category is typed like any text, and then offered to the next person
    entry = app.extensions["kb"].sheet.entry("refund-status")
    fields = fields_of(entry) | {"base_version": entry.version}
    assert post_form(trainer, "/e/refund-status/edit", fields | {
        "category": "Money back", "reason": "new category"}).status_code == 302
    page = client.get("/propose").get_data(as_text=True)
    assert '<option value="Money back">' in page
    # proposers leave owner and review period to the trainer
    assert 'name="owner"' not in page and 'name="review_every_days"' not in page


def test_without_javascript_the_checks_show_on_the_page(app, trainer):
    page = trainer.get("/e/refund-status/edit").get_data(as_text=True)
    assert 'id="live-checks"' in page and "Nothing to fix." in page
    entry = app.extensions["kb"].sheet.entry("refund-status")
    fields = fields_of(entry) | {"base_version": entry.version}
    html = trainer.get("/e/refund-status/edit").get_data(as_text=True)
    response = trainer.post("/e/refund-status/edit", data=fields | {
        "answer": "", "reason": "x", "csrf_token": csrf_from(html)})
    page = response.get_data(as_text=True)
    assert "the answer is empty" in page and 'id="live-checks"' in page


def test_new_errors_count_each_problem_and_ignore_numbers_that_move():
    from kb.checks import Finding
    from kb.preview import new_errors

    calm = Finding("tone", "error", "why", "answer", excerpt="calm down")
    before = [Finding("spoken-length", "error", "about 70 seconds", "phone"), calm]
    after = [Finding("spoken-length", "error", "about 75 seconds", "phone"), calm,
             Finding("tone", "error", "why", "answer", excerpt="calm down"),
             Finding("commitment", "warning", "say when", "answer")]
    assert new_errors(after, before) == [after[2]]  # the second "calm down" is new
    assert new_errors(after, []) == after[:3]
