"""The browser extension in Debian's Chromium (new headless, the unpacked extension as kb
serves it) against a real `kb serve` and stand-in helpdesk pages on another address: a
text area, a rich editor and an editor in a frame. Trigger, search, fill, insert, undo;
connecting; a revoked token, a person signed out, kb unreachable."""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.request

import pytest

pytestmark = pytest.mark.browser

if not shutil.which("/usr/bin/chromium"):  # pragma: no cover - scripts/test.sh installs it
    pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)",
                allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402
from sqlalchemy import select  # noqa: E402

from kb.db import Database, Event, SearchLog, Token  # noqa: E402
from kb.users import create_token, create_user, get_user, revoke_all_tokens  # noqa: E402
from tests.conftest import PASSWORD, entry_text, write_seed  # noqa: E402
from tests.extension_procs import KbServer, Pages, download_extension, launch  # noqa: E402

# where the stand-in page shows the customer's name and the order number
RULES = r"""presets: [zendesk]
sites:
  - name: Stand-in helpdesk
    match: http://127.0.0.1:*/helpdesk.html*
    values:
      customer_name: {selector: .requester, pattern: "^\\s*(\\S+)"}
      order_number: {text: "\\b(NW-\\d{6})\\b"}
    chat_boxes: "#chat"
"""
PANEL = "kb-reply-panel"
WAIT = 20_000  # ms; generous for a busy 2-core machine (no assertion is about speed)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("extension")
    seed = write_seed(base / "seed")
    (seed / "_sheet" / "page_values.yml").write_text(RULES)
    (seed / "refund-status.md").write_text(entry_text(
        "Refund status", "Your refund of {{ amount }} was sent on {{ date }}.",
        phrasings=["where is my money"], chat="Your refund of {{ amount }} left us on {{ date }}."))
    instance = base / "instance"
    instance.mkdir()
    db = Database(f"sqlite:///{instance / 'kb.sqlite'}")
    create_user(db, "alice", PASSWORD, role="agent", display_name="Alice Example")
    kb = KbServer(instance, seed)
    kb.start()
    pages = Pages()
    extension = download_extension(kb.url, create_token(db, "alice", "download"), base / "ext")
    with sync_playwright() as p:
        context, worker = launch(p, base / "profile", extension)
        context.set_default_timeout(WAIT)
        expect.set_options(timeout=WAIT)
        yield {"kb": kb, "db": db, "pages": pages, "context": context, "worker": worker}
        expect.set_options(timeout=5_000)  # Playwright's default, for the modules after this
        context.close()
    pages.close()
    kb.stop()
    db.dispose()


def sign_in(page, kb_url: str) -> None:
    page.goto(kb_url + "/login?next=/extension")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/extension")


def connect_once(world) -> str:
    """The agent's one click on kb's extension page; returns what the page then says."""
    page = world["context"].new_page()
    page.goto(world["kb"].url + "/extension")
    if "/login" in page.url:
        sign_in(page, world["kb"].url)
    page.click("#connect-extension")
    status = page.locator("#extension-status")
    expect(status).to_have_attribute("data-kb-extension", "connected")
    said = status.inner_text()
    page.close()
    world["context"].pages[0].bring_to_front()
    return said


@pytest.fixture
def connected(world):
    """The extension connected to kb (again, after a test that ended the connection)."""
    if not world["worker"].evaluate("chrome.storage.local.get('token')").get("token"):
        connect_once(world)
    return world


@pytest.fixture
def helpdesk(connected):
    page = connected["context"].new_page()
    page.goto(connected["pages"].url + "/helpdesk.html")
    page.wait_for_function("document.readyState === 'complete'")
    yield page
    page.close()


class Keys:
    """Keystrokes besides the typed words and values, counted as the agent makes them."""

    def __init__(self, page):
        self.page, self.count = page, 0

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)
        self.count += 1

    def colons(self) -> None:
        self.page.keyboard.type("::")
        self.count += 2


def panel_search(page, words: str, frame=None) -> None:
    """Type the customer's words into the open panel and wait for their results."""
    where = frame or page
    expect(where.locator(f"{PANEL} input[type=search]")).to_be_focused()
    page.keyboard.type(words, delay=15)
    expect(where.locator(PANEL)).to_have_attribute("data-shown", words)


def composed(world, slug: str, values: dict) -> str:
    """The email kb composes for these values, asked the way any API client does."""
    token = create_token(world["db"], "alice", "test check")
    request = urllib.request.Request(
        f"{world['kb'].url}/api/compose/{slug}", method="POST",
        data=json.dumps({"values": values}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["text"].rstrip()


def test_one_click_on_kbs_page_connects_it_and_another_site_cannot(world):
    said = connect_once(world)
    assert said.startswith("Connected: the extension works as alice in this browser.")
    token = world["worker"].evaluate("chrome.storage.local.get('token')")["token"]
    with world["db"].session() as s:
        labels = s.scalars(select(Token.label).where(
            Token.session_generation.is_not(None))).all()
    assert labels == ["Browser extension"]
    # a page of another site offering a token of its own is refused, the token kept
    page = world["context"].new_page()
    page.goto(world["pages"].url + "/elsewhere.html")
    status = page.locator("#extension-status")
    expect(status).to_have_attribute("data-kb-extension", "refused")
    expect(status).to_contain_text(f"set up for {world['kb'].url}, not this site")
    assert world["worker"].evaluate("chrome.storage.local.get('token')")["token"] == token
    page.close()


def test_the_options_page_shows_the_connection_and_changes_the_shortcut(connected):
    worker = connected["worker"]
    extension_id = worker.url.split("/")[2]
    options = connected["context"].new_page()
    options.goto(f"chrome-extension://{extension_id}/options.html")
    expect(options.locator("#status")).to_have_text(
        f"Connected to {connected['kb'].url} as alice.")
    expect(options.locator("#kb")).to_have_value(connected["kb"].url)
    expect(options.locator("#shortcut")).to_have_value("Alt+K")
    options.click("#shortcut")
    options.keyboard.press("Alt+j")
    expect(options.locator("#shortcut")).to_have_value("Alt+J")
    options.close()
    page = connected["context"].new_page()
    try:
        page.goto(connected["pages"].url + "/helpdesk.html")
        page.click("#reply")
        page.keyboard.press("Alt+k")  # no longer the shortcut: the page gets the key
        page.keyboard.type("x")
        expect(page.locator("#reply")).to_have_value("x")
        expect(page.locator(PANEL)).to_have_count(0)
        page.keyboard.press("Alt+j")
        expect(page.locator(f"{PANEL} input[type=search]")).to_be_focused()
    finally:
        worker.evaluate("chrome.storage.sync.set({shortcut: 'Alt+K'})")
        page.close()


def test_text_area_colons_search_fill_insert_and_undo(helpdesk, connected):
    page = helpdesk
    keys = Keys(page)
    page.click("#reply")
    page.keyboard.type("Thanks for writing. ")
    keys.colons()
    expect(page.locator(PANEL)).to_have_count(1)
    assert page.input_value("#reply") == "Thanks for writing. "  # the :: is not left behind
    panel_search(page, "box smashed")
    options = page.locator(f"{PANEL} li[role=option]")
    expect(options.first).to_contain_text("Item arrived damaged")
    expect(options.first).to_have_attribute("aria-selected", "true")
    keys.press("Enter")
    # asked in the panel: the page's values offered, the agent's name and company known
    customer = page.locator(f"{PANEL} input[name=customer_name]")
    expect(customer).to_have_value("Ana")
    expect(page.locator(f"{PANEL} input[name=order_number]")).to_have_value("NW-104233")
    expect(page.locator(f"{PANEL} label", has_text="Customer name")).to_contain_text(
        "from the page")
    expect(page.locator(f"{PANEL} details summary")).to_have_text(
        "Filled in for you: Your name, Company")
    item = page.locator(f"{PANEL} input[name=item]")
    expect(item).to_be_focused()  # the one blank
    expect(page.locator(f"{PANEL} .preview")).to_contain_text("[Item]")
    # Enter with a blank left goes to the blank: nothing is inserted with one
    customer.focus()
    page.keyboard.press("Enter")
    expect(item).to_be_focused()
    assert page.input_value("#reply") == "Thanks for writing. "
    page.keyboard.type("vase")
    keys.press("Enter")
    expect(page.locator(PANEL)).to_have_count(0)
    email = composed(connected, "item-arrived-damaged", {
        "customer_name": "Ana", "item": "vase", "order_number": "NW-104233"})
    assert "Hello Ana," in email and "Alice Example" in email
    expect(page.locator("#reply")).to_have_value("Thanks for writing. " + email)
    value = page.input_value("#reply")
    assert "{{" not in value and "[" not in value
    expect(page.locator("#reply")).to_be_focused()  # back where the agent was typing
    assert keys.count <= 6, keys.count  # the target: trigger to inserted email
    # the editor's own undo takes it out again
    page.keyboard.press("Control+z")
    expect(page.locator("#reply")).to_have_value("Thanks for writing. ")
    # the insert is a copy, linked to the search it came from (the usage log is
    # written in batches: wait for it)
    db = connected["db"]
    alice = get_user(db, "alice")
    for _ in range(300):
        with db.session() as s:
            rows = s.execute(select(Event.kind, Event.search_id, Event.version).where(
                Event.user_id == alice.id, Event.slug == "item-arrived-damaged")).all()
        if {r.kind for r in rows} == {"view", "copy"}:
            break
        time.sleep(0.1)
    copy = next(r for r in rows if r.kind == "copy")
    with db.session() as s:
        searched = s.get(SearchLog, copy.search_id)
    assert searched is not None and searched.query == "box smashed"
    assert copy.version and len(copy.version) == 40


def test_rich_editor_shortcut_inserts_formatting_and_undo(helpdesk):
    page = helpdesk
    keys = Keys(page)
    before = page.inner_html("#rich")
    page.click("#end")
    keys.press("Alt+k")
    panel_search(page, "shade is off")
    keys.press("Enter")
    customer = page.locator(f"{PANEL} input[name=customer_name]")
    expect(customer).to_have_value("Ana")  # offered from the page; no blank left
    expect(customer).to_be_focused()
    keys.press("Enter")
    expect(page.locator(PANEL)).to_have_count(0)
    rich = page.locator("#rich")
    expect(rich.locator("p", has_text="Screens show colours")).to_have_count(1)
    html = page.inner_html("#rich")
    assert "<p>Hello Ana,</p>" in html and "Alice Example<br>Northwind Home" in html
    assert html.startswith("<p>Thanks for waiting.</p>")
    assert "{{" not in html and "[" not in html and "<mark" not in html
    assert keys.count <= 6
    page.keyboard.press("Control+z")
    expect(rich).not_to_contain_text("Screens show colours")
    assert page.inner_html("#rich") == before


def test_editor_in_a_frame(helpdesk):
    page = helpdesk
    page.frame_locator("#frame").locator("body").click()
    page.keyboard.type("::")
    frame = page.frame_locator("#frame")
    panel_search(page, "where is my money", frame=frame)
    expect(frame.locator(f"{PANEL} li[role=option]").first).to_contain_text("Refund status")
    page.keyboard.press("Enter")
    # the name is on the ticket page around the frame
    expect(frame.locator(f"{PANEL} input[name=customer_name]")).to_have_value("Ana")
    expect(frame.locator(f"{PANEL} input[name=amount]")).to_be_focused()
    page.keyboard.type("$25")
    page.keyboard.press("Enter")
    expect(frame.locator(f"{PANEL} input[name=date]")).to_be_focused()
    page.keyboard.type("3 May")
    page.keyboard.press("Enter")
    body = frame.locator("body")
    expect(body).to_contain_text("Your refund of $25 was sent on 3 May.")
    expect(body.locator("p", has_text="Hello Ana,")).to_have_count(1)
    page.keyboard.press("Control+z")
    expect(body).not_to_contain_text("Your refund")


def test_a_chat_box_gets_the_chat_version_as_plain_text(helpdesk):
    page = helpdesk
    for box in ("#chat", "#line"):  # a box the site's rules name, and a one-line field
        page.click(box)
        page.keyboard.press("Alt+k")
        panel_search(page, "where is my money")
        page.keyboard.press("Enter")
        expect(page.locator(f"{PANEL} h2")).to_have_text("Refund status · chat message")
        expect(page.locator(f"{PANEL} input[name=amount]")).to_be_focused()
        page.keyboard.type("$25")
        page.keyboard.press("Enter")
        page.keyboard.type("3 May")
        page.keyboard.press("Enter")
        expect(page.locator(PANEL)).to_have_count(0)
    expect(page.locator("#chat")).to_have_text("Your refund of $25 left us on 3 May.")
    assert "<p>" not in page.inner_html("#chat")
    expect(page.locator("#line")).to_have_value("Your refund of $25 left us on 3 May.")
    # an entry without a chat version gives its email there
    page.fill("#line", "")
    page.keyboard.press("Alt+k")
    panel_search(page, "shade is off")
    page.keyboard.press("Enter")
    expect(page.locator(f"{PANEL} h2")).to_have_text("Colour differs from the website")


def test_escape_goes_back_a_step_and_leaves_the_field_as_it_was(helpdesk):
    page = helpdesk
    page.click("#reply")
    page.keyboard.type("Hi ::")
    panel_search(page, "refund")
    page.keyboard.press("ArrowDown")  # the keys move the choice, not the page
    page.keyboard.press("Enter")
    expect(page.locator(f"{PANEL} form")).to_be_visible()
    page.keyboard.press("Escape")  # back to the answers, the words kept
    expect(page.locator(f"{PANEL} input[type=search]")).to_have_value("refund")
    expect(page.locator(f"{PANEL} input[type=search]")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator(PANEL)).to_have_count(0)
    expect(page.locator("#reply")).to_have_value("Hi ::")  # as typed, nothing else
    expect(page.locator("#reply")).to_be_focused()
    page.keyboard.type("x")
    expect(page.locator("#reply")).to_have_value("Hi ::x")
    # "::" inside a word (std::string) is text, not the trigger
    page.keyboard.type(" std::")
    expect(page.locator(PANEL)).to_have_count(0)


def test_a_revoked_token_stops_it_at_once_and_nothing_is_inserted(helpdesk, connected):
    page = helpdesk
    page.click("#reply")
    page.keyboard.press("Alt+k")
    panel_search(page, "box smashed")
    page.keyboard.press("Enter")
    expect(page.locator(f"{PANEL} input[name=item]")).to_be_focused()
    page.keyboard.type("vase")
    revoke_all_tokens(connected["db"], get_user(connected["db"], "alice").id)
    page.keyboard.press("Enter")
    message = page.locator(f"{PANEL} .msg")
    expect(message).to_contain_text("Nothing was inserted. kb no longer accepts this "
                                    "browser's connection: it was revoked")
    expect(message).to_contain_text("press Connect the extension on your profile page")
    expect(message.locator("button")).to_have_text("Connect")
    assert page.input_value("#reply") == ""
    # the next panel says so straight away
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    page.click("#reply")
    page.keyboard.press("Alt+k")
    page.keyboard.type("refund")
    expect(page.locator(f"{PANEL} .msg")).to_contain_text("it was revoked")


def test_signing_out_of_kb_stops_it(helpdesk, connected):
    kb_page = connected["context"].new_page()
    kb_page.goto(connected["kb"].url + "/profile")
    kb_page.click("form[action='/logout'] button")
    kb_page.wait_for_url("**/login")
    kb_page.close()
    page = helpdesk
    page.bring_to_front()
    page.click("#reply")
    page.keyboard.press("Alt+k")
    page.keyboard.type("refund")
    message = page.locator(f"{PANEL} .msg")
    expect(message).to_contain_text("You signed out of kb, which also ends this browser's "
                                    "connection. Sign in to kb and press Connect")
    expect(page.locator(f"{PANEL} li[role=option]")).to_have_count(0)


def test_kb_unreachable_says_so_and_inserts_nothing(helpdesk, connected):
    page = helpdesk
    page.click("#reply")
    page.keyboard.press("Alt+k")
    panel_search(page, "box smashed")
    page.keyboard.press("Enter")
    expect(page.locator(f"{PANEL} input[name=item]")).to_be_focused()
    page.keyboard.type("vase")
    kb = connected["kb"]
    kb.stop()
    try:
        page.keyboard.press("Enter")
        message = page.locator(f"{PANEL} .msg")
        expect(message).to_contain_text(f"Nothing was inserted. kb did not answer at {kb.url}.")
        assert page.input_value("#reply") == ""
        expect(page.locator(f"{PANEL} input[name=item]")).to_have_value("vase")  # kept
    finally:
        kb.start()
    # kb is back: the same Enter inserts (the connection outlived the outage)
    page.locator(f"{PANEL} input[name=item]").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#reply")).to_have_value(re.compile("I'm sorry your vase arrived damaged."))
