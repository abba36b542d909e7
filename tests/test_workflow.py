"""Keeping the sheet, end to end: proposals, review, edits, history, through pages and API."""

from __future__ import annotations

import html
import re
import shutil
import subprocess

import pytest

from kb.entry import fields_of
from kb.users import create_token, update_user
from tests.conftest import TARA, csrf_from, entry_text, post_form

ALICE_NAME, TARA_NAME = "Alice Example", "Tara Example"


def _hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden field {name}"
    return match.group(1)


def _fields(app, slug: str, **changes) -> dict[str, str]:
    """The edit form's fields for an entry as it is now, with some changed."""
    return fields_of(app.extensions["kb"].sheet.entry(slug)) | changes


def _slugs(client, query: str) -> list[str]:
    return [r["slug"] for r in client.get("/api/search", query_string={"q": query})
            .get_json()["results"]]


def _proposals(client) -> list[dict]:
    return client.get("/api/proposals").get_json()["proposals"]


def _git_log(app, path: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", app.config["DATA_DIR"], "log", "-1",
         "--format=%an|%ae|%cn|%s", "--", path],
        check=True, capture_output=True, text=True).stdout.strip()


def _propose(client, title: str, answer: str, reason: str, phrasing: str = "") -> int:
    response = client.post("/api/proposals", json={
        "title": title, "answer": answer, "reason": reason,
        "phrasings": [phrasing] if phrasing else []})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


# -- a new entry, proposed by an agent and approved by a trainer ------------------------------


def test_agent_proposes_trainer_approves_and_it_is_found_at_once(app, client, trainer):
    store = app.extensions["kb"].store
    page = client.get("/propose?phrasing=my parcel never came").get_data(as_text=True)
    assert 'value="My parcel never came"' in page
    assert ">my parcel never came</textarea>" in page
    response = post_form(client, "/propose", {
        "title": "My parcel never came", "phrasings": "my parcel never came\nno delivery yet",
        "tags": "delivery, lost", "category": "Orders and delivery",
        "answer": "We are tracing order {{ order_number }} with the courier.",
        "phone": "- Ask for the order number.", "reason": "Asked five times on chat today"},
        page_url="/propose?phrasing=my parcel never came")
    assert response.status_code == 302 and response.headers["Location"] == "/proposals"
    assert "waiting for review" in client.get("/proposals").get_data(as_text=True)
    assert _slugs(client, "parcel never came")[:1] != ["my-parcel-never-came"]

    # the trainer sees one waiting in the navigation; agents have no review link
    nav = trainer.get("/").get_data(as_text=True)
    assert 'aria-label="1 waiting">1</span>' in nav
    assert 'id="nav-review"' not in client.get("/").get_data(as_text=True)
    pid = _proposals(client)[0]["id"]
    queue = trainer.get("/review").get_data(as_text=True)
    assert f'href="/review/{pid}"' in queue and ALICE_NAME in queue
    review = trainer.get(f"/review/{pid}").get_data(as_text=True)
    assert f"<h1>Review #{pid}: My parcel never came (new entry)</h1>" in review  # not the slug

    response = post_form(trainer, f"/review/{pid}", {"action": "approve"})
    assert response.status_code == 302
    nav = trainer.get("/").get_data(as_text=True)
    assert "waiting</span>" not in nav  # nothing left to review (the notice of it stays)

    rev = store.history("my-parcel-never-came.md")[0]
    assert (rev.author.name, rev.author.email) == (ALICE_NAME, "alice@example.com")
    assert rev.committer.name == TARA_NAME
    assert rev.message == "Asked five times on chat today"
    if shutil.which("git"):
        assert _git_log(app, "my-parcel-never-came.md") == (
            f"{ALICE_NAME}|alice@example.com|{TARA_NAME}|Asked five times on chat today")

    assert _slugs(client, "parcel never came")[0] == "my-parcel-never-came"
    assert "My parcel never came" in client.get("/?q=no+delivery+yet").get_data(as_text=True)
    mine = _proposals(client)[0]
    assert mine["status"] == "approved" and mine["commit"] == rev.commit
    assert "See it live" in client.get("/proposals").get_data(as_text=True)


def test_reject_needs_a_comment_and_the_proposer_sees_it(app, client, trainer):
    head = app.extensions["kb"].store.head()
    pid = _propose(client, "Gift wrap missing", "Sorry, we forgot the wrap.", "Seen on chat")
    response = post_form(trainer, f"/review/{pid}", {"action": "reject", "comment": "  "})
    assert response.status_code == 200
    assert "Say why it is rejected" in response.get_data(as_text=True)
    assert _proposals(client)[0]["status"] == "pending"

    response = post_form(trainer, f"/review/{pid}",
                         {"action": "reject", "comment": "We do not offer gift wrap."})
    assert response.status_code == 302
    page = client.get("/proposals").get_data(as_text=True)
    assert "rejected by Tara Example" in page and "We do not offer gift wrap." in page
    assert _proposals(client)[0]["review_comment"] == "We do not offer gift wrap."
    assert app.extensions["kb"].store.head() == head  # nothing written
    # a closed proposal cannot be approved afterwards
    response = post_form(trainer, f"/review/{pid}", {"action": "approve"},
                         page_url="/review")
    assert "rejected, not waiting" in response.get_data(as_text=True)
    assert app.extensions["kb"].store.head() == head


def test_send_back_rework_and_approve(app, client, trainer):
    store = app.extensions["kb"].store
    pid = _propose(client, "Voucher not working", "Try again.", "Common on chat",
                   "my code is invalid")
    response = post_form(trainer, f"/review/{pid}", {"action": "send_back", "comment": ""})
    assert "Say what should change" in response.get_data(as_text=True)
    response = post_form(trainer, f"/review/{pid}",
                         {"action": "send_back", "comment": "Say when vouchers expire."})
    assert response.status_code == 302
    assert "1 waiting" not in trainer.get("/").get_data(as_text=True)

    page = client.get("/proposals").get_data(as_text=True)
    assert "changes requested" in page and f'href="/proposals/{pid}/resubmit"' in page
    form = client.get(f"/proposals/{pid}/resubmit").get_data(as_text=True)
    assert "Say when vouchers expire." in form and 'value="Voucher not working"' in form
    rework = {"title": "Voucher not working", "phrasings": "my code is invalid",
              "answer": "Vouchers expire after 90 days; {{ code }} may be too old.",
              "reason": "Added the expiry"}
    # an unknown placeholder is an error of the checks: shown, and the rework not sent
    response = post_form(client, f"/proposals/{pid}/resubmit", rework)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Not sent yet" in page
    assert '<li class="error"><strong>error</strong> · answer “{{ code }}”' in page
    assert _proposals(client)[0]["status"] != "pending"
    rework["answer"] = "Vouchers expire after 90 days; {{ date }} may be too long ago."
    response = post_form(client, f"/proposals/{pid}/resubmit", rework)
    assert response.status_code == 302
    assert _proposals(client)[0]["status"] == "pending"
    assert f'href="/review/{pid}"' in trainer.get("/review").get_data(as_text=True)
    # only a sent-back proposal can be reworked
    response = post_form(client, f"/proposals/{pid}/resubmit", {
        "title": "Voucher not working", "answer": "Again.", "reason": "x"})
    assert "Only a proposal sent back" in response.get_data(as_text=True)

    assert post_form(trainer, f"/review/{pid}", {"action": "approve"}).status_code == 302
    assert "90 days" in store.read("voucher-not-working.md").text
    assert store.history("voucher-not-working.md")[0].message == "Added the expiry"
    assert _slugs(client, "code is invalid")[0] == "voucher-not-working"


def test_suggested_edit_goes_stale_when_the_entry_changes(app, client, trainer):
    store = app.extensions["kb"].store
    path = "refund-status.md"
    version = store.version_of(path)
    page = client.get("/e/refund-status/suggest").get_data(as_text=True)
    assert _hidden(page, "base_version") == version
    response = post_form(client, "/e/refund-status/suggest", _fields(
        app, "refund-status", answer="Your refund of {{ amount }} left us on {{ date }}.",
        base_version=version, reason="Plainer words"))
    assert response.status_code == 302
    pid = _proposals(client)[0]["id"]

    # meanwhile a trainer edits the entry directly
    response = post_form(trainer, "/e/refund-status/edit", _fields(
        app, "refund-status", answer="Refunds take 5 working days.", base_version=version,
        reason="Add the timing"))
    assert response.status_code == 302
    current = store.version_of(path)
    assert current != version

    page = trainer.get(f"/review/{pid}").get_data(as_text=True)
    assert 'id="stale"' in page
    assert "What changed in the entry meanwhile" in page
    assert "The proposal against the entry as it is now" in page
    assert "5 working days." in page and "left us on" in page
    assert _hidden(page, "over_version") == current
    assert "Approve on top of the current version" in page

    head = store.head()
    for over in ({}, {"over_version": version}):  # no version seen, or an old one
        response = post_form(trainer, f"/review/{pid}", {"action": "approve", **over})
        assert response.status_code == 200
        assert "The entry changed after this proposal was made" in response.get_data(
            as_text=True)
        assert store.head() == head
    assert _proposals(client)[0]["status"] == "pending"

    response = post_form(trainer, f"/review/{pid}",
                         {"action": "approve", "over_version": current})
    assert response.status_code == 302
    assert "left us on" in store.read(path).text
    rev = store.history(path)[0]
    assert (rev.author.name, rev.committer.name, rev.message) == (
        ALICE_NAME, TARA_NAME, "Plainer words")


def test_direct_edit_on_a_stale_version_is_a_conflict(app, trainer, admin):
    store = app.extensions["kb"].store
    path = "wrong-colour.md"
    page = trainer.get("/e/wrong-colour/edit").get_data(as_text=True)
    version = _hidden(page, "base_version")
    assert version == store.version_of(path)
    response = admin.put("/api/entries/wrong-colour", json={
        "base_version": version, "answer": "Theirs: we show true colours now.",
        "reason": "Photos redone"})
    assert response.status_code == 200
    theirs = store.read(path).text

    response = post_form(trainer, "/e/wrong-colour/edit", _fields(
        app, "wrong-colour", answer="Mine: screens differ.", base_version=version,
        reason="Shorter"), page_url="/e/wrong-colour/edit")
    assert response.status_code == 409
    body = html.unescape(response.get_data(as_text=True))
    assert "Theirs: we show true colours now." in body and "Mine: screens differ." in body
    assert "changed while you were editing" in body
    assert store.read(path).text == theirs


def test_retire_and_bring_back(app, client, trainer):
    store = app.extensions["kb"].store
    assert "wrong-colour" in _slugs(client, "the shade is off")
    response = post_form(trainer, "/e/wrong-colour/status",
                         {"status": "retired", "reason": "Range discontinued"},
                         page_url="/history/wrong-colour.md")
    assert response.status_code == 302
    assert "wrong-colour" not in _slugs(client, "the shade is off")
    gone = client.get("/e/wrong-colour")  # an old link says why, not a bare 404
    assert gone.status_code == 410 and "Range discontinued" in gone.get_data(as_text=True)
    history = client.get("/history/wrong-colour.md").get_data(as_text=True)
    assert "Range discontinued" in history
    assert len(store.history("wrong-colour.md")) == 2

    response = post_form(trainer, "/e/wrong-colour/status",
                         {"status": "published", "reason": "Back in stock"},
                         page_url="/history/wrong-colour.md")
    assert response.status_code == 302
    assert "wrong-colour" in _slugs(client, "the shade is off")
    assert client.get("/e/wrong-colour").status_code == 200
    assert [r.message for r in store.history("wrong-colour.md")][:2] == [
        "Back in stock", "Range discontinued"]


def test_restore_an_old_version_as_a_new_commit(app, client, trainer):
    sheet = app.extensions["kb"].sheet
    path = "refund-status.md"
    old = sheet.store.read(path)
    sheet.write({path: entry_text("Refund status", "A worse answer.")}, message="Oops",
                author=TARA)
    head = sheet.store.head()
    page = trainer.get(f"/history/{path}").get_data(as_text=True)
    assert f'/restore?version={old.version}"' in page  # Restore asks first
    assert page.count('class="badge">current<') == 1
    confirm = trainer.get(f"/history/{path}/restore?version={old.version}")
    text = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and sheet.store.head() == head  # nothing changed yet
    assert f'name="version" value="{old.version}"' in text
    assert "A worse answer." in text and "was sent on" in text  # what will change
    response = post_form(trainer, f"/history/{path}/restore",
                         {"version": old.version, "reason": "Undo the worse answer"},
                         page_url=f"/history/{path}/restore?version={old.version}")
    assert response.status_code == 302
    assert sheet.store.head() != head
    assert sheet.store.read(path).text == old.text
    assert [r.message for r in sheet.store.history(path)][:2] == ["Undo the worse answer", "Oops"]
    assert _slugs(client, "still waiting for my refund")[0] == "refund-status"
    # the first version and the restored one hold the same text: one "current" only
    page = trainer.get(f"/history/{path}").get_data(as_text=True)
    assert page.count('class="badge">current<') == 1 and "same text as current" in page


def test_a_retired_entrys_link_says_why_and_what_replaces_it(app, client, trainer):
    page = trainer.get("/history/wrong-colour.md").get_data(as_text=True)
    response = trainer.post("/e/wrong-colour/status", data={
        "status": "retired", "reason": "Merged into the refund answer",
        "replaced_by": "refund-status", "base_version": _hidden(page, "base_version"),
        "csrf_token": csrf_from(page)})
    assert response.status_code == 302
    response = client.get("/e/wrong-colour")
    text = response.get_data(as_text=True)
    assert response.status_code == 410
    assert "Merged into the refund answer" in text and "Tara Example" in text
    assert 'id="replacement" href="/e/refund-status"' in text
    # brought back: the pointer goes, the entry is live again
    page = trainer.get("/history/wrong-colour.md").get_data(as_text=True)
    trainer.post("/e/wrong-colour/status", data={
        "status": "published", "base_version": _hidden(page, "base_version"),
        "csrf_token": csrf_from(page)})
    assert client.get("/e/wrong-colour").status_code == 200
    assert "replaced_by" not in app.extensions["kb"].store.read("wrong-colour.md").text


def test_conflict_offers_to_apply_a_change_on_top(app, trainer):
    sheet = app.extensions["kb"].sheet
    page = trainer.get("/e/refund-status/edit").get_data(as_text=True)
    base_version = _hidden(page, "base_version")
    # meanwhile someone else changes the title line
    text = sheet.store.read("refund-status.md").text.replace("title: Refund status",
                                                             "title: Where is my refund")
    sheet.write({"refund-status.md": text}, message="Customers' words", author=TARA)
    response = trainer.post("/e/refund-status/edit", data={
        **_fields(app, "refund-status", title="Refund status",
                  phone="- Say sorry.\n- Give the date."),
        "reason": "one more point", "base_version": base_version,
        "csrf_token": csrf_from(page)})
    assert response.status_code == 409
    body = response.get_data(as_text=True)
    assert "Tara Trainer</strong> saved a newer version" in body and "Customers&#39; words" in body
    assert 'id="apply-on-top"' in body
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"',
                             body.split('id="on-top"')[1].split("</form>")[0]))
    fields = {k: html.unescape(v) for k, v in fields.items()}
    assert trainer.post("/e/refund-status/edit", data=fields).status_code == 302
    entry = sheet.entry("refund-status")
    assert entry.title == "Where is my refund" and "Give the date." in entry.phone


def test_restore_without_a_version_changes_nothing(app, trainer):
    store = app.extensions["kb"].store
    text, head = store.read("refund-status.md").text, store.head()
    response = post_form(trainer, "/history/refund-status.md/restore", {"version": ""},
                         page_url="/history/refund-status.md")
    assert response.status_code == 302
    assert "no version given" in trainer.get(response.headers["Location"]).get_data(
        as_text=True)
    assert trainer.post("/api/entries/refund-status/restore", json={}).status_code == 404
    assert store.head() == head and store.read("refund-status.md").text == text


def test_greeting_and_synonyms_are_versioned_and_used_at_once(app, client, trainer):
    store = app.extensions["kb"].store
    page = trainer.get("/sheet/greeting").get_data(as_text=True)
    assert _hidden(page, "base_version") == store.version_of("_sheet/greeting.md")
    response = post_form(trainer, "/sheet/greeting", {
        "text": "Good day {{ customer_name }},", "reason": "Warmer greeting",
        "base_version": _hidden(page, "base_version")})
    assert response.status_code == 302
    rev = store.history("_sheet/greeting.md")[0]
    assert (rev.message, rev.author.name) == ("Warmer greeting", TARA_NAME)
    assert "Warmer greeting" in client.get("/history/_sheet/greeting.md").get_data(as_text=True)
    data = client.post("/api/compose/refund-status", json={"customer_name": "Ana"}).get_json()
    assert data["text"].startswith("Good day Ana,")

    page = trainer.get("/sheet/closing").get_data(as_text=True)
    response = post_form(trainer, "/sheet/closing", {
        "text": "Speak soon,\n{{ agent_name }}", "reason": "Friendlier sign-off",
        "base_version": _hidden(page, "base_version")})
    assert response.status_code == 302
    data = client.post("/api/compose/refund-status", json={"customer_name": "Ana"}).get_json()
    assert data["text"].rstrip().endswith("Speak soon,\nAlice Example")

    # no word of the entry matches yet (meaning alone may list it, unmarked)
    before = client.get("/api/search", query_string={"q": "payback"}).get_json()["results"]
    assert not [r for r in before if r["slug"] == "refund-status" and "<mark>" in r["snippet"]]
    page = trainer.get("/sheet/synonyms").get_data(as_text=True)
    text = store.read("_sheet/synonyms.txt").text.replace(
        "refund, money back", "refund, payback, money back")
    response = post_form(trainer, "/sheet/synonyms", {
        "text": text, "reason": "Customers say payback",
        "base_version": _hidden(page, "base_version")})
    assert response.status_code == 302
    assert store.history("_sheet/synonyms.txt")[0].message == "Customers say payback"
    assert _slugs(client, "payback")[0] == "refund-status"


def test_sheet_part_saved_on_a_stale_version_is_a_conflict(app, trainer):
    store = app.extensions["kb"].store
    page = trainer.get("/sheet/greeting").get_data(as_text=True)
    version = _hidden(page, "base_version")
    app.extensions["kb"].sheet.write({"_sheet/greeting.md": "Hi {{ customer_name }},\n"},
                                     message="Shorter", author=TARA)
    response = post_form(trainer, "/sheet/greeting", {
        "text": "Dear {{ customer_name }},", "reason": "Formal", "base_version": version})
    assert response.status_code == 409
    assert store.read("_sheet/greeting.md").text == "Hi {{ customer_name }},\n"


# -- the same through the JSON API ----------------------------------------------------------


def test_api_proposal_is_reviewed_on_the_pages(app, client, trainer):
    response = client.post("/api/proposals", json={
        "title": "Late delivery", "phrasings": ["it is late", "still not here"],
        "tags": ["delivery"], "answer": "Your parcel is on its way.", "reason": "From the API"})
    assert response.status_code == 201
    data = response.get_json()
    assert (data["slug"], data["status"], data["is_new"]) == ("late-delivery", "pending", True)
    assert client.post("/api/proposals", json={"title": "Late delivery", "answer": "x"}
                       ).status_code == 422  # no reason
    assert post_form(trainer, f"/review/{data['id']}", {"action": "approve"}).status_code == 302
    entry = client.get("/api/entries/late-delivery").get_json()
    assert entry["phrasings"] == ["it is late", "still not here"]
    rev = app.extensions["kb"].store.history("late-delivery.md")[0]
    assert (rev.author.name, rev.committer.name, rev.message) == (
        ALICE_NAME, TARA_NAME, "From the API")
    # an edit proposal for an existing entry is based on its current version
    response = client.post("/api/proposals", json={
        "slug": "late-delivery", "answer": "It is coming.", "reason": "Shorter"})
    assert response.status_code == 201 and response.get_json()["is_new"] is False


def test_api_put_entry_and_conflict(app, trainer):
    store = app.extensions["kb"].store
    version = trainer.get("/api/entries/refund-status").get_json()["version"]
    assert version == store.version_of("refund-status.md")
    response = trainer.put("/api/entries/refund-status", json={
        "base_version": version, "answer": "Refunds arrive in 5 days.", "reason": "Timing"})
    assert response.status_code == 200
    new_version = response.get_json()["version"]
    assert new_version != version and new_version == store.version_of("refund-status.md")
    assert "Refunds arrive in 5 days." in store.read("refund-status.md").text
    assert trainer.get("/api/entries/refund-status").get_json()["title"] == "Refund status"

    response = trainer.put("/api/entries/refund-status", json={
        "base_version": version, "answer": "Refunds arrive in 3 days.", "reason": "Stale"})
    assert response.status_code == 409
    data = response.get_json()
    assert data["current"]["version"] == new_version
    assert "Refunds arrive in 5 days." in data["current"]["markdown"]
    assert data["yours"]["base_version"] == version
    assert "Refunds arrive in 3 days." in data["yours"]["markdown"]
    assert store.version_of("refund-status.md") == new_version

    assert trainer.put("/api/entries/refund-status", json={"answer": "x"}).status_code == 400
    response = trainer.put("/api/entries/brand-new", json={
        "base_version": None, "title": "Brand new", "answer": "Hello.", "reason": "New"})
    assert response.status_code == 200 and store.version_of("brand-new.md")


def test_api_retire_unretire(app, client, trainer):
    response = trainer.post("/api/entries/wrong-colour/retire", json={"reason": "Old range"})
    assert response.status_code == 200 and response.get_json()["status"] == "retired"
    assert "wrong-colour" not in _slugs(client, "the shade is off")
    assert client.get("/api/entries/wrong-colour").status_code == 404
    versions = client.get("/api/entries/wrong-colour/history").get_json()["versions"]
    assert versions[0]["message"] == "Old range" and len(versions) == 2
    response = trainer.post("/api/entries/wrong-colour/unretire", json={})
    assert response.status_code == 200
    assert "wrong-colour" in _slugs(client, "the shade is off")
    assert trainer.post("/api/entries/no-such/retire", json={}).status_code == 404


def test_api_history_diff_and_restore(app, client, trainer):
    store = app.extensions["kb"].store
    first = store.read("refund-status.md")
    trainer.put("/api/entries/refund-status", json={
        "base_version": first.version, "answer": "Refunds arrive in 5 days.",
        "reason": "Timing"})
    data = client.get("/api/entries/refund-status/history").get_json()
    assert [v["message"] for v in data["versions"]] == [
        "Timing", "Start the cheat sheet from the starter entries"]
    top = data["versions"][0]
    assert (top["author"], top["committer"]) == (TARA_NAME, TARA_NAME)
    assert data["versions"][1]["version"] == first.version

    diff = client.get("/api/entries/refund-status/diff",
                      query_string={"from": first.version}).get_json()["diff"]
    assert "+Refunds arrive in 5 days." in diff
    assert "-Your refund of {{ amount }} was sent on {{ date }}." in diff
    assert client.get("/api/entries/refund-status/diff?from=nonsense").status_code == 404
    assert client.get("/api/entries/no-such/history").status_code == 404

    response = trainer.post("/api/entries/refund-status/restore",
                            json={"version": first.version, "reason": "Back to the old one"})
    assert response.status_code == 200
    assert response.get_json()["version"] == first.version
    assert store.read("refund-status.md").text == first.text
    assert store.history("refund-status.md")[0].message == "Back to the old one"
    assert len(store.history("refund-status.md")) == 3


# -- API tokens -------------------------------------------------------------------------------


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_bearer_token_works_without_a_session(app, anon):
    db = app.extensions["kb_db"]
    token = create_token(db, "alice", "script")
    response = anon.get("/api/search?q=refund", headers=_bearer(token))
    assert response.status_code == 200
    assert response.get_json()["results"][0]["slug"] == "refund-status"
    response = anon.post("/api/proposals", headers=_bearer(token), json={
        "title": "Token proposal", "answer": "From a script.", "reason": "Integration"})
    assert response.status_code == 201
    assert _proposals_with(anon, token)[0]["slug"] == "token-proposal"
    # an agent's token still cannot do trainer things
    response = anon.post("/api/entries/wrong-colour/retire", headers=_bearer(token), json={})
    assert response.status_code == 403

    trainer_token = create_token(db, "tara")
    version = app.extensions["kb"].store.version_of("wrong-colour.md")
    response = anon.put("/api/entries/wrong-colour", headers=_bearer(trainer_token), json={
        "base_version": version, "answer": "Via token.", "reason": "Script edit"})
    assert response.status_code == 200
    assert app.extensions["kb"].store.history("wrong-colour.md")[0].author.name == TARA_NAME


def _proposals_with(client, token: str) -> list[dict]:
    return client.get("/api/proposals", headers=_bearer(token)).get_json()["proposals"]


@pytest.mark.parametrize("header", ["Bearer kb_not-a-real-token", "Bearer ", "Basic abc"])
def test_bad_token_is_401(anon, header):
    response = anon.get("/api/search?q=refund", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["error"] == "Unauthorized"


def test_disabled_users_token_is_401(app, anon):
    db = app.extensions["kb_db"]
    token = create_token(db, "alice")
    assert anon.get("/api/search?q=refund", headers=_bearer(token)).status_code == 200
    update_user(db, "alice", active=False)
    assert anon.get("/api/search?q=refund", headers=_bearer(token)).status_code == 401


def test_profile_creates_and_revokes_tokens(app, client, anon):
    response = post_form(client, "/profile", {"action": "token", "label": "helpdesk"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    match = re.search(r'id="new-token">[^<]*<code[^>]*>(kb_[^<]+)</code>', page)
    assert match, "the new token is shown once"
    token = match.group(1)
    assert anon.get("/api/proposals", headers=_bearer(token)).status_code == 200
    page = client.get("/profile").get_data(as_text=True)
    assert "helpdesk" in page and token not in page  # listed, but never shown again
    token_id = re.search(r'name="token_id" value="(\d+)"', page).group(1)
    response = client.post("/profile", data={
        "csrf_token": csrf_from(page), "action": "revoke", "token_id": token_id})
    assert response.status_code == 302
    assert anon.get("/api/proposals", headers=_bearer(token)).status_code == 401


# -- a proposal changes only what the person changed ----------------------------------------


def _diff_lines(old: str, new: str) -> list[str]:
    import difflib

    return [line for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="")
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_suggest_an_edit_keeps_owner_and_formatting(app, client):
    sheet = app.extensions["kb"].sheet
    original = ("---\ntitle: Refund status\n# what customers say\nphrasings:\n"
                "    - where is my money\n"
                "tags: [refund]\ncategory: Returns and refunds\nowner: training-team\n"
                "last_reviewed: 2026-10-01\nreview_every_days: 90\nteam_note: keep it short\n---\n"
                "Your refund of {{ amount }} was sent on {{ date }}.\n\nIt takes a few days.\n"
                "\n## On the phone\n\n- Say sorry.\n")
    sheet.write({"refund-status.md": original}, message="formatted by hand", author=TARA)
    page = client.get("/e/refund-status/suggest").get_data(as_text=True)
    fields = {k: html.unescape(v) for k, v in
              fields_of(sheet.entry("refund-status")).items()}
    form = {k: fields[k] for k in ("title", "phrasings", "tags", "category", "answer", "phone")}
    form["answer"] = form["answer"].replace("a few days", "three to five days")
    response = client.post("/e/refund-status/suggest", data={
        **form, "reason": "be precise", "base_version": _hidden(page, "base_version"),
        "csrf_token": csrf_from(page)})
    assert response.status_code == 302
    text = _proposals(client)[0]
    proposal = app.extensions["kb_db"]
    from kb import proposals as P

    saved = P.get(proposal, text["id"]).text
    assert _diff_lines(original, saved) == ["-It takes a few days.",
                                            "+It takes three to five days."]
    assert "owner: training-team" in saved and "team_note: keep it short" in saved


def test_a_new_entry_gets_an_owner_and_a_review_date(app, client, trainer):
    import datetime as dt

    pid = _propose(client, "Gift wrap missing", "We will send the wrap today.", "asked twice")
    html_page = trainer.get(f"/review/{pid}").get_data(as_text=True)
    response = trainer.post(f"/review/{pid}", data={"action": "approve", "csrf_token":
                                                     csrf_from(html_page)})
    assert response.status_code == 302
    entry = app.extensions["kb"].sheet.entry("gift-wrap-missing")
    assert entry.owner == "tara"
    assert entry.last_reviewed == dt.date.today() and entry.review_every_days == 180


def test_an_expired_form_token_keeps_the_trainers_text(app, trainer):
    page = trainer.get("/e/refund-status/edit").get_data(as_text=True)
    response = trainer.post("/e/refund-status/edit", data={
        **_fields(app, "refund-status", answer="Kept <b>answer</b> text."),
        "reason": "r", "base_version": _hidden(page, "base_version"), "csrf_token": "stale"})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "nothing is lost" in body and "Kept &lt;b&gt;answer&lt;/b&gt; text." in body
    assert 'action="/e/refund-status/edit"' in body
    # sending it again from that page saves it
    kept = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', body))
    kept.update({k: html.unescape(v) for k, v in
                 re.findall(r'<textarea name="([a-z_]+)"[^>]*>([^<]*)</textarea>', body)})
    assert trainer.post("/e/refund-status/edit", data=kept).status_code == 302
    assert app.extensions["kb"].sheet.entry("refund-status").answer == \
        "Kept <b>answer</b> text.\n"


def test_retiring_needs_a_reason_and_a_second_step(app, client, trainer):
    store = app.extensions["kb"].store
    before = store.head()
    page = trainer.get("/history/wrong-colour.md").get_data(as_text=True)
    # the button sits behind "Retire this entry…", its reason field required
    retire = page.split('<details id="retire"')[1].split("</details>")[0]
    assert "Retire this entry…" in retire and re.search(r'<input name="reason" required', retire)
    for empty in ("", "   "):
        response = trainer.post("/e/wrong-colour/status", data={
            "status": "retired", "reason": empty,
            "base_version": _hidden(page, "base_version"), "csrf_token": csrf_from(page)})
        assert response.status_code == 302
        assert store.head() == before  # nothing retired
        shown = trainer.get(response.headers["Location"]).get_data(as_text=True)
        assert "Not retired: say why" in shown
    assert "wrong-colour" in _slugs(client, "the shade is off")
    response = trainer.post("/api/entries/wrong-colour/retire", json={})
    assert response.status_code == 422 and "reason" in response.get_json()["message"]
    assert store.head() == before
    # a retired entry's page offers only to bring it back
    assert trainer.post("/api/entries/wrong-colour/retire",
                        json={"reason": "Range gone"}).status_code == 200
    page = trainer.get("/history/wrong-colour.md").get_data(as_text=True)
    assert 'id="unretire"' in page and 'id="retire"' not in page


def test_a_new_category_like_an_existing_one_warns_the_trainer(app, client, trainer):
    # the form's live checks: the same words in another order, or nearly the same letters
    for typed, meant in (("Refunds and returns", "Returns and refunds"),
                         ("orders & deliveries", "Orders and delivery")):
        found = trainer.post("/api/preview-entry", json={
            "title": "Box lost", "answer": "We are on it.", "category": typed,
            "tags": "refunds, new-tag"}).get_json()
        near = [f for f in found["findings"] if f["check"] == "near-duplicate"]
        assert [(f["field"], f["suggestion"]) for f in near] == [
            ("category", meant), ("tags", "refund")], near
        assert all(f["level"] == "warning" for f in near)
    same = trainer.post("/api/preview-entry", json={
        "title": "Box lost", "answer": "We are on it.", "category": "Returns and refunds",
        "tags": "refund, gift wrap"}).get_json()
    assert not [f for f in same["findings"] if f["check"] == "near-duplicate"]
    # and on the review page of a proposal that brings one
    db, sheet = app.extensions["kb_db"], app.extensions["kb"].sheet
    from kb import proposals as P
    from kb.users import get_user

    new = P.create(db, sheet, get_user(db, "alice"), "box-lost",
                   entry_text("Box lost", category="Refunds & returns"), "new",
                   base_version=None, is_new=True)
    page = trainer.get(f"/review/{new.id}").get_data(as_text=True)
    assert "is a new category, and the sheet already has “Returns and refunds”" in (
        html.unescape(page))
