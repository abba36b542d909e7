"""The pages in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
if not shutil.which(CHROMIUM):  # pragma: no cover - scripts/test.sh installs it
    pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)",
                allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from kb import proposals  # noqa: E402
from kb.users import get_user  # noqa: E402
from tests.conftest import PASSWORD, TARA, entry_text  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def server(app):
    from waitress import create_server, wasyncore

    srv = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.effective_port}"
    # Stop in order: let in-flight requests finish, then close every socket from the
    # server's own loop thread (closing them from here races its select() call).
    srv.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
    srv.trigger.pull_trigger(lambda: wasyncore.close_all(srv._map))
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"],
                                  base_url=server)
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, "alice")
    yield page
    context.close()


def sign_in(page, username: str) -> None:
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)  # an admin may land on a first-visit page


def signed_in(browser, server, username: str, width: int, height: int = 812,
              clipboard: bool = False):
    """A new browser context at this size, signed in as `username`: (context, page)."""
    context = browser.new_context(
        base_url=server, viewport={"width": width, "height": height},
        permissions=["clipboard-read", "clipboard-write"] if clipboard else [])
    page = context.new_page()
    sign_in(page, username)
    return context, page


def keys_ready(page) -> None:
    """After a navigation the keyboard shortcuts work once the page's script has run."""
    page.wait_for_selector("html[data-ready]", state="attached")


def clipboard(page) -> dict[str, str]:
    return page.evaluate("""async () => {
        const out = {};
        for (const item of await navigator.clipboard.read()) {
            for (const type of item.types) out[type] = await (await item.getType(type)).text();
        }
        return out;
    }""")


def test_type_pick_fill_and_copy(page):
    page.goto("/")
    page.locator("#q").press_sequentially("where is my mony back", delay=20)
    first = page.locator("#results li a").first
    expect(first).to_contain_text("Refund status")
    expect(page.locator("#did-you-mean")).to_contain_text("money")
    page.locator("#q").press("Enter")
    expect(page.locator("h1")).to_have_text("Refund status")
    page.fill("input[name=customer_name]", "Zoë {{ agent_name }}")
    page.fill("input[name=amount]", "$25")
    page.fill("input[name=date]", "3 May")
    expect(page.locator("input[name=agent_name]")).to_have_value("Alice Example")
    page.fill("input[name=agent_name]", "Sam")
    expect(page.locator("#preview")).to_contain_text("Hello Zoë {{ agent_name }},")
    expect(page.locator("#missing")).to_be_hidden()
    page.click("#copy")
    expect(page.locator("#copy-status")).to_contain_text("Copied")
    copied = clipboard(page)
    assert copied["text/plain"].startswith("Hello Zoë {{ agent_name }},")  # typed: as typed
    assert "Your refund of $25 was sent on 3 May." in copied["text/plain"]
    assert copied["text/plain"].rstrip().endswith("Northwind Home")
    assert "<p>" in copied["text/html"] and "$25" in copied["text/html"]


def test_eml_download_and_fill_in_keep_the_values_out_of_urls(page, browser, server):
    seen = []
    page.on("request", lambda request: seen.append(request.url))
    page.goto("/e/refund-status")
    keys_ready(page)
    page.fill("input[name=customer_name]", "Ana Lima")
    page.fill("input[name=amount]", "ORD-77123")
    expect(page.locator("#preview")).to_contain_text("ORD-77123")
    page.click("#eml")  # the date is still to fill: downloading with blanks is a choice
    with page.expect_download() as download:
        page.click("#copy-anyway")
    text = Path(download.value.path()).read_text()
    assert "Hello Ana Lima," in text and "ORD-77123" in text
    expect(page.locator("#preview")).to_contain_text("ORD-77123")  # still on the page
    assert not [u for u in seen if "ORD-77123" in u or "Ana" in u]

    # without JavaScript, "Fill in" posts the form: the URL stays the entry's own
    context = browser.new_context(java_script_enabled=False, base_url=server)
    plain = context.new_page()
    sign_in(plain, "alice")
    plain.goto("/e/refund-status")
    plain.fill("input[name=amount]", "ORD-77123")
    plain.click("noscript button, button:has-text('Fill in')")
    expect(plain.locator("#preview")).to_contain_text("ORD-77123")
    assert plain.url == server + "/e/refund-status"
    context.close()


def test_copy_with_an_empty_placeholder_goes_to_the_field_first(page):
    page.goto("/e/item-arrived-damaged")
    keys_ready(page)
    page.keyboard.press("c")
    # not copied: the first empty field has the cursor, the message names what is missing
    expect(page.locator("input[name=customer_name]")).to_be_focused()
    expect(page.locator("#copy-status")).to_contain_text("Not copied yet")
    expect(page.locator("#copy-status")).to_contain_text("Customer name")
    page.evaluate("navigator.clipboard.writeText('untouched')")
    page.keyboard.type("Ana")
    page.keyboard.press("Alt+c")  # from the field, with a modifier: still one empty
    expect(page.locator("input[name=item]")).to_be_focused()
    assert page.evaluate("navigator.clipboard.readText()") == "untouched"
    # copying with blanks is a deliberate second step
    page.click("#copy-anyway")
    expect(page.locator("#copy-status")).to_contain_text("Copied with blanks")
    assert "[Item]" in clipboard(page)["text/plain"]  # a readable cue, never braces
    assert "{{" not in clipboard(page)["text/plain"]


def test_a_placeholder_fallback_fills_an_empty_field(page, app):
    sheet = app.extensions["kb"].sheet
    text = sheet.store.read("item-arrived-damaged.md").text.replace(
        "your {{ item }}", "your {{ item | order }}")
    sheet.write({"item-arrived-damaged.md": text}, message="fallback", author=TARA)
    page.goto("/e/item-arrived-damaged")
    expect(page.locator("input[name=item]")).to_have_attribute("placeholder", "if empty: order")
    page.fill("input[name=customer_name]", "Ana")
    page.fill("input[name=order_number]", "NW-1")
    page.click("#copy")
    expect(page.locator("#copy-status")).to_have_text("Copied. Paste it into your reply.")
    copied = clipboard(page)
    assert "I'm sorry your order arrived damaged." in copied["text/plain"]
    assert "{{" not in copied["text/plain"] and "missing" not in copied["text/html"]


def test_arrow_keys_move_the_selection(page):
    page.goto("/")
    page.locator("#q").press_sequentially("refund smashed", delay=10)
    # one sure result; the other waits behind "More results", which ArrowDown opens
    links = page.locator("#results li a, #more li a")
    expect(links).to_have_count(2)
    expect(page.locator("#more-results")).not_to_have_attribute("open", "")
    expect(links.nth(0)).to_have_class("selected")
    page.locator("#q").press("ArrowDown")
    expect(links.nth(1)).to_have_class("selected")
    expect(links.nth(1)).to_be_visible()
    expect(links.nth(0)).not_to_have_class("selected")
    second = links.nth(1).get_attribute("href")
    page.locator("#q").press("Enter")
    page.wait_for_url("**" + second.split("?")[0] + "*")


def test_agent_name_comes_from_the_profile(page):
    page.goto("/profile")
    page.fill("input[name=display_name]", "Priya")
    page.click("text=Save")
    page.goto("/e/refund-status")
    expect(page.locator("input[name=agent_name]")).to_have_value("Priya")
    expect(page.locator("#opening")).to_contain_text("this is Priya")
    expect(page.locator("#preview")).to_contain_text("Priya")


# -- keyboard first -------------------------------------------------------------------

def test_keyboard_only_from_search_to_clipboard(page):
    page.goto("/e/refund-status")
    page.keyboard.press("/")  # from an entry page: back to search, box focused
    page.wait_for_url("**/?q=*")
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.type("still waiting for my money")
    expect(page.locator("#results li a.selected")).to_contain_text("Refund status")
    page.keyboard.press("Enter")
    expect(page.locator("#entry h1")).to_have_text("Refund status")
    keys_ready(page)
    page.keyboard.press("Tab")  # first Tab lands in the first placeholder field
    expect(page.locator("input[name=customer_name]")).to_be_focused()
    page.keyboard.type("Ana")
    page.keyboard.press("Tab")
    page.keyboard.type("$40")
    page.keyboard.press("Tab")
    page.keyboard.type("Monday")
    expect(page.locator("#missing")).to_be_hidden()
    page.locator("input[name=date]").evaluate("el => el.blur()")
    page.keyboard.press("c")
    expect(page.locator("#copy-status")).to_contain_text("Copied")
    text = clipboard(page)["text/plain"]
    assert text.startswith("Hello Ana,")
    assert "Your refund of $40 was sent on Monday." in text
    assert "Alice Example" in text  # the signed-in agent's own name


def test_escape_goes_back_to_search_with_the_query_kept(page):
    page.goto("/")
    page.locator("#q").press_sequentially("box smashed", delay=10)
    expect(page.locator("#results li a.selected")).to_contain_text("Item arrived damaged")
    page.keyboard.press("Enter")
    expect(page.locator("#entry h1")).to_have_text("Item arrived damaged")
    keys_ready(page)
    page.keyboard.press("Escape")
    page.wait_for_url("**/?q=box+smashed")
    expect(page.locator("#q")).to_have_value("box smashed")
    expect(page.locator("#q")).to_be_focused()


def _two_placeholder_entry(app):
    app.extensions["kb"].sheet.write({"order-cancelled.md": entry_text(
        "Order cancelled by mistake", "I have put order {{ order_number }} back in the queue.",
        phrasings=["you cancelled my order"], tags="[order]", category="Orders and delivery")},
        message="new", author=TARA)


def test_live_loop_in_few_keystrokes(page, app):
    """From the customer's words to a copied, fully filled email, keyboard only, the
    keys besides the typed values counted (the target is 20 at most)."""
    _two_placeholder_entry(app)
    page.goto("/?q=refund")
    page.locator("#results li a").first.click()
    keys_ready(page)  # the agent is on the last call's entry
    count = 0

    def press(key):
        nonlocal count
        count += 1
        page.keyboard.press(key)

    press("/")
    page.wait_for_url("**/?q=*")
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.type("you cancelled my order")  # typed values: not counted
    expect(page.locator("#results li a.selected")).to_contain_text("Order cancelled")
    press("Enter")
    keys_ready(page)
    press("Tab")  # to the first empty field
    page.keyboard.type("Ana")
    press("Enter")  # the next empty field
    page.keyboard.type("NW-104233")
    press("Enter")  # none left: copies
    expect(page.locator("#copy-status")).to_have_text("Copied. Paste it into your reply.")
    text = clipboard(page)["text/plain"]
    assert text.startswith("Hello Ana,")
    assert "I have put order NW-104233 back in the queue." in text
    assert "{{" not in text
    assert count <= 20
    assert count == 5  # /, Enter, Tab, Enter, Enter


def test_slash_always_means_an_empty_or_selected_search_box(page):
    page.goto("/e/refund-status?q=manager")
    keys_ready(page)
    page.keyboard.press("/")
    page.wait_for_url("**/?q=manager")
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.type("charged twice")  # replaces the old words, never appended
    expect(page.locator("#q")).to_have_value("charged twice")
    # on the search page, "/" in the box selects the words instead of typing a slash
    page.keyboard.press("/")
    page.keyboard.type("smashed")
    expect(page.locator("#q")).to_have_value("smashed")
    page.locator("body").click()
    page.keyboard.press("/")
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.type("refund")
    expect(page.locator("#q")).to_have_value("refund")


def test_shortcuts_work_from_the_fields_and_escape_leaves_the_field_first(page):
    page.goto("/e/refund-status?q=money")
    keys_ready(page)
    page.keyboard.press("Tab")
    expect(page.locator("input[name=customer_name]")).to_be_focused()
    page.keyboard.type("Ana")
    page.keyboard.press("Alt+p")  # a letter would type: with Alt it is the shortcut
    expect(page.locator("body")).to_have_class("call-mode")
    expect(page.locator("input[name=customer_name]")).to_have_value("Ana")
    page.keyboard.press("Alt+p")
    page.keyboard.press("Escape")  # leaves the field, stays on the entry
    expect(page.locator("input[name=customer_name]")).not_to_be_focused()
    assert "/e/refund-status" in page.url
    expect(page.locator("input[name=customer_name]")).to_have_value("Ana")
    page.keyboard.press("Escape")  # now back to search, query kept
    page.wait_for_url("**/?q=money")
    page.go_back()  # what was typed is still there
    expect(page.locator("input[name=customer_name]")).to_have_value("Ana")
    page.locator("input[name=amount]").fill("$5")
    page.locator("input[name=date]").fill("Monday")
    page.locator("input[name=date]").press("Control+Enter")
    expect(page.locator("#copy-status")).to_have_text("Copied. Paste it into your reply.")
    assert clipboard(page)["text/plain"].startswith("Hello Ana,")


def test_propose_is_offered_when_no_result_is_confident(page):
    page.goto("/")
    page.locator("#q").press_sequentially("refund", delay=10)
    expect(page.locator("#results li")).not_to_have_count(0)
    expect(page.locator("#propose")).to_be_hidden()  # a sure match
    page.locator("#q").fill("")
    page.locator("#q").press_sequentially("order please", delay=10)
    expect(page.locator("#results li")).not_to_have_count(0)  # weak matches only ...
    expect(page.locator("#propose")).to_be_visible()  # ... so a new entry is offered
    expect(page.locator("#propose-link")).to_have_text("Propose an entry for “order please”")
    page.goto("/?q=order+please")  # the same without script
    expect(page.locator("#propose")).to_be_visible()


def test_stale_search_answers_are_dropped(page):
    page.goto("/")
    # type fast: every keystroke may fire a request; only the last query's results may show
    page.locator("#q").press_sequentially("refund", delay=0)
    page.locator("#q").fill("")
    page.locator("#q").press_sequentially("smashed", delay=0)
    expect(page.locator("#results li")).to_have_count(1)
    expect(page.locator("#results li a").first).to_contain_text("Item arrived damaged")


def test_the_page_names_the_search_its_keystrokes_continue(page):
    """With several server processes, keystrokes land in different ones: each request
    after the first carries the id of the search the words continue."""
    sent = []
    page.on("request", lambda r: sent.append(r.url) if "/api/search" in r.url else None)
    page.goto("/")
    page.locator("#q").press_sequentially("box", delay=60)
    expect(page.locator("#results li").first).to_be_visible()  # the first search answered
    first = len(sent)
    page.locator("#q").press_sequentially(" smashed", delay=60)
    expect(page.locator("#results li a").first).to_contain_text("Item arrived damaged")
    after = [re.search(r"[?&]after=(\d+)", url) for url in sent]
    assert after[0] is None and len(sent) > first
    assert all(after[first:])  # every later keystroke names the search it continues
    assert len({m.group(1) for m in after if m}) == 1  # one search, however many keys


def test_shortcut_overlay(page):
    page.goto("/")
    page.locator("body").click()
    page.keyboard.press("?")
    overlay = page.locator("#shortcuts")
    expect(overlay).to_be_visible()
    expect(overlay).to_contain_text("Copy the finished email")
    page.keyboard.press("Escape")
    expect(overlay).to_be_hidden()


def test_mid_call_view_shows_phone_points_large_with_the_agents_name(page):
    page.goto("/e/item-arrived-damaged")
    normal = page.locator("#points").evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
    page.keyboard.press("p")
    expect(page.locator("body")).to_have_class("call-mode")
    large = page.locator("#points").evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
    assert large >= normal * 1.3
    expect(page.locator("#opening")).to_contain_text("this is Alice Example")
    expect(page.locator("#preview")).to_be_visible()  # the email stays beside it
    page.reload()  # the agent's choice is kept
    expect(page.locator("body")).to_have_class("call-mode")
    page.keyboard.press("p")
    expect(page.locator("body")).not_to_have_class("call-mode")


def test_favourites_and_recently_used_on_the_empty_search(page):
    page.goto("/e/wrong-colour")
    page.keyboard.press("f")
    expect(page.locator("#favourite")).to_have_attribute("aria-pressed", "true")
    page.goto("/e/refund-status")
    page.goto("/")
    expect(page.locator("#favourites")).to_contain_text("Colour differs from the website")
    recent = page.locator("#recent li")
    expect(recent.first).to_contain_text("Refund status")
    expect(page.locator("#recent")).to_contain_text("Colour differs")


def test_changed_since_you_last_copied_it(page, app):
    page.goto("/e/wrong-colour")
    page.fill("input[name=customer_name]", "Ana")
    page.click("#copy")
    expect(page.locator("#copy-status")).to_contain_text("Copied")
    sheet = app.extensions["kb"].sheet
    text = sheet.store.read("wrong-colour.md").text.replace(
        "Screens show colours a little differently.",
        "Screens and lighting change how colours look.")
    sheet.write({"wrong-colour.md": text}, message="clearer", author=TARA)
    page.goto("/e/wrong-colour")
    changed = page.locator("#changed")
    expect(changed).to_contain_text("Changed since you last copied it")
    # one line saying what changed, in words; the fields stay where they were
    expect(changed.locator("summary")).to_contain_text("“show colours a little differently.” → "
                                                       "“and lighting change how colours look.”")
    summary = _box(page, "#changed summary")
    assert summary["height"] < 40, summary
    assert _box(page, "#compose input[name=customer_name]")["y"] < 300
    expect(changed.locator("ins").first).not_to_be_visible()
    changed.locator("summary").click()  # the whole diff, one click away
    expect(changed.locator("ins").first).to_contain_text("lighting")


def two_edit_forms(context, slug: str):
    """A trainer with the same entry's edit form open in two tabs."""
    one, two = context.new_page(), context.new_page()
    sign_in(one, "tara")
    for p in (one, two):
        p.goto(f"/e/{slug}/edit")
    return one, two


def save_edit(page, field: str, text: str, reason: str) -> None:
    """Change one field of the open edit form and save it with a reason."""
    page.fill(f"textarea[name={field}]", text)
    page.fill("input[name=reason]", reason)
    page.click("#edit-form button[type=submit]")


def test_conflict_page_in_the_browser(browser, server, app):
    context = browser.new_context(base_url=server)
    one, two = two_edit_forms(context, "refund-status")
    save_edit(one, "answer", "First trainer's answer.", "first")
    expect(one.locator("#entry h1")).to_have_text("Refund status")
    save_edit(two, "answer", "Second trainer's answer.", "second")
    expect(two.locator("h1")).to_contain_text("changed while you were editing")
    expect(two.locator("#mine")).to_have_value(re.compile("Second trainer's answer"))
    expect(two.locator("#theirs")).to_have_value(re.compile("First trainer's answer"))
    assert "First trainer's answer." in app.extensions["kb"].sheet.entry("refund-status").answer
    context.close()


def test_review_queue_in_the_browser(page, browser, server):
    page.goto("/?q=wobbly+table")
    expect(page.locator("#no-results")).to_be_visible()
    page.click("#propose-link")
    expect(page.locator("textarea[name=phrasings]")).to_have_value("wobbly table")
    page.fill("textarea[name=answer]", "Tighten the legs with the key in the box.")
    page.fill("input[name=reason]", "Asked three times today")
    page.click("text=Send for review")
    expect(page.locator("table.list")).to_contain_text("waiting for review")
    context = browser.new_context(base_url=server)
    trainer = context.new_page()
    sign_in(trainer, "tara")
    expect(trainer.locator("#nav-review .count")).to_have_text("1")
    trainer.click("#nav-review")
    trainer.click("#queue >> text=Review")
    expect(trainer.locator("table.diff")).to_contain_text("Tighten the legs")
    trainer.click("button[value=approve]")
    expect(trainer.locator("#queue")).to_contain_text("Nothing waiting")
    context.close()
    page.goto("/?q=wobbly")
    expect(page.locator("#results li a").first).to_contain_text("Wobbly table")


# -- layout ---------------------------------------------------------------------------

SHOTS = Path(__file__).resolve().parent / "screenshots"


def _box(page, selector):
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not rendered"
    return box


def _inside(box, width, height):
    return (box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= width + 0.5
            and box["y"] + box["height"] <= height + 0.5)


def _overlap(a, b):
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def _header_is_tidy(page, width):
    """The brand on one line; every header link and button on screen, none on another."""
    brand = page.locator(".top .brand")
    line = brand.evaluate("el => parseFloat(getComputedStyle(el).lineHeight)")
    height = _box(page, ".top .brand")["height"]
    assert height < 2 * line, f"the brand wraps at {width}px: {height}px tall, lines {line}px"
    items = page.locator(".top a:not(.skip), .top button, .top summary")
    boxes = []
    for i in range(items.count()):
        if not items.nth(i).is_visible():  # inside the closed trainer menu
            continue
        box, text = items.nth(i).bounding_box(), items.nth(i).inner_text()
        assert box is not None, f"header item {text!r} is not rendered at {width}px"
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (
            f"header item {text!r} is off screen at {width}px: {box}")
        assert box["height"] < 2 * line, f"header item {text!r} wraps at {width}px: {box}"
        clipped = items.nth(i).evaluate("el => el.scrollWidth > el.clientWidth + 1")
        assert not clipped, f"header item {text!r} is cut short at {width}px"
        for other, other_box in boxes:
            assert not _overlap(box, other_box), f"{text!r} overlaps {other!r} at {width}px"
        boxes.append((text, box))


@pytest.mark.parametrize("width,height", [(1280, 800), (375, 812)])
def test_main_pages_fit_the_screen(browser, server, width, height):
    SHOTS.mkdir(exist_ok=True)
    context, page = signed_in(browser, server, "alice", width, height)
    page.goto("/")
    _header_is_tidy(page, width)
    page.locator("#q").press_sequentially("refund", delay=10)
    expect(page.locator("#results li")).not_to_have_count(0)
    search, result = _box(page, "#q"), _box(page, "#results li")
    assert _inside(search, width, height) and _inside(result, width, height)
    assert not _overlap(search, result)
    page.screenshot(path=str(SHOTS / f"search-{width}.png"))
    page.goto("/e/refund-status")
    copy, title = _box(page, "#copy"), _box(page, "#entry h1")
    assert _inside(copy, width, height), f"copy button off screen at {width}px: {copy}"
    assert not _overlap(copy, title)
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, "the page scrolls sideways"
    page.screenshot(path=str(SHOTS / f"entry-{width}.png"), full_page=True)
    context.close()


@pytest.mark.parametrize("width", [1280, 375])
def test_trainer_header_is_tidy(browser, server, width):
    """A trainer has the longest nav: it still fits, and a Tab shows where focus is."""
    SHOTS.mkdir(exist_ok=True)
    context, page = signed_in(browser, server, "tara", width, 700)
    page.goto("/proposals")
    _header_is_tidy(page, width)
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, "the page scrolls sideways"
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")  # the brand
    page.keyboard.press("Tab")  # the first nav link, or on a phone the menu holding them
    first = ".top nav a" if width > 700 else "#narrow-menu summary"
    expect(page.locator(first).first).to_be_focused()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")
    page.screenshot(path=str(SHOTS / f"header-trainer-{width}.png"))
    context.close()


def test_focus_is_visible_and_fields_are_labelled(page):
    page.goto("/e/refund-status")
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")
    unlabelled = page.evaluate(
        "() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]"
        ".filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')"
        " && !el.textContent.trim() && !el.classList.contains('visually-hidden'))"
        ".map(el => el.outerHTML)")
    assert unlabelled == []


# -- contrast (WCAG 2.1 AA) -----------------------------------------------------------

# Every visible element with its own text (plus form fields and their placeholders): its
# colour against the background it is painted on, found by walking up the ancestors and
# blending any see-through layers. Returns the offenders and the body's luminance.
CONTRAST_JS = """(rootSelector) => {
  const rgba = s => {
    const m = s.match(/^rgba?\\(([^)]+)\\)$/);
    if (!m) throw new Error('cannot read colour ' + s);
    const [r, g, b, a = 1] = m[1].split(/[\\s,\\/]+/).map(Number);
    return [r, g, b, a];
  };
  const over = (top, below) => [0, 1, 2].map(i => top[i] * top[3] + below[i] * (1 - top[3]));
  const background = el => {
    const layers = [];
    for (let e = el; e && layers.every(c => c[3] < 1); e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.unshift(c);
    }
    return layers.reduce((below, c) => over(c, below), [255, 255, 255]);
  };
  const luminance = rgb => {
    const [r, g, b] = rgb.map(v => v / 255)
      .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const hex = rgb => '#' + rgb.map(v => Math.round(v).toString(16).padStart(2, '0')).join('');
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + [...el.classList].map(c => '.' + c).join('');

  const offenders = [];
  const check = (el, what, style, part = '') => {
    const bg = background(el);
    const fg = over(rgba(style.color), bg);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && parseInt(style.fontWeight) >= 700);
    const need = large ? 3 : 4.5;
    const got = ratio(fg, bg);
    if (got < need) {
      offenders.push(`${name(el)}${part} "${what.trim().slice(0, 40)}": ${hex(fg)} on ${hex(bg)}`
                     + ` = ${got.toFixed(2)} (needs ${need})`);
    }
  };
  const fields = 'input:not([type=hidden], [type=checkbox], [type=radio]), textarea, select';
  const root = document.querySelector(rootSelector);
  for (const el of [root, ...root.querySelectorAll('*')]) {
    const box = el.getBoundingClientRect();
    const shown = el.checkVisibility({visibilityProperty: true, opacityProperty: true})
      && box.width > 1 && box.height > 1 && box.right > 0;  // not .visually-hidden, not .skip
    if (!shown) continue;
    if (el.matches(fields)) {
      check(el, el.value || '(field)', getComputedStyle(el));
      if (el.placeholder) {
        check(el, el.placeholder, getComputedStyle(el, '::placeholder'), '::placeholder');
      }
      continue;
    }
    const text = [...el.childNodes].filter(n => n.nodeType === Node.TEXT_NODE)
      .map(n => n.data).join('');
    if (text.trim()) check(el, text, getComputedStyle(el));
  }
  return {offenders, body: luminance(background(document.body))};
}"""


def _contrast(page, root="body"):
    return page.evaluate(CONTRAST_JS, root)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast_meets_wcag_aa(browser, server, app, scheme):
    SHOTS.mkdir(exist_ok=True)
    kb = app.extensions["kb"]
    db = app.extensions["kb_db"]
    tara = get_user(db, "tara")
    text = kb.sheet.store.read("refund-status.md").text.replace("was sent on", "left us on")
    proposals.create(db, kb.sheet, tara, "refund-status", text, "clearer",
                     base_version=kb.sheet.entry("refund-status").version, is_new=False)
    context = browser.new_context(base_url=server, color_scheme=scheme,
                                  viewport={"width": 1280, "height": 900})
    page = context.new_page()
    found: dict[str, list[str]] = {}

    def audit(label, root="body"):
        result = _contrast(page, root)
        found[label] = result["offenders"]
        return result

    page.goto("/login")
    body = audit("login")["body"]
    if scheme == "dark":
        assert body < 0.2, f"dark scheme asked for, but the page background is light ({body:.2f})"
    else:
        assert body > 0.8, f"light scheme asked for, but the page background is dark ({body:.2f})"
    sign_in(page, "tara")
    audit("search, empty")
    page.goto("/")
    page.locator("#q").press_sequentially("refund smashed", delay=10)
    expect(page.locator("#results li mark").first).to_be_visible()
    audit("search with results")
    page.screenshot(path=str(SHOTS / f"search-{scheme}.png"))
    page.locator("#q").evaluate("el => el.blur()")
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()
    audit("shortcuts overlay", "#shortcuts .card")
    page.goto("/e/item-arrived-damaged")
    expect(page.locator("#preview mark.missing").first).to_be_visible()
    audit("entry")
    page.screenshot(path=str(SHOTS / f"entry-{scheme}.png"), full_page=True)
    page.goto("/?q=wobbly+table")
    expect(page.locator("#no-results")).to_be_visible()
    audit("no results")
    page.goto("/propose")
    audit("propose")
    page.goto("/proposals")
    expect(page.locator("table.list")).to_contain_text("Refund status")
    audit("my proposals")
    page.goto("/review")
    expect(page.locator("#queue")).to_contain_text("Refund status")  # by its title
    audit("review queue")
    page.locator("#queue >> text=Review").click()
    expect(page.locator("table.diff")).to_contain_text("left us on")
    audit("review")
    page.screenshot(path=str(SHOTS / f"review-{scheme}.png"), full_page=True)
    context.close()
    report = [f"{label}: {line}" for label, lines in found.items() for line in lines]
    if report:
        pytest.fail(f"text below WCAG AA contrast ({scheme} scheme):\n" + "\n".join(report),
                    pytrace=False)


def test_pages_load_without_errors_or_failed_requests(page):
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # a request still loading when the test moves to the next page is aborted: not a fault
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}")
            if "ERR_ABORTED" not in (r.failure or "") else None)
    page.on("response", lambda r: problems.append(f"{r.status}: {r.url}")
            if r.status >= 400 else None)
    for url in ["/", "/?q=box+smashed", "/e/item-arrived-damaged", "/print", "/proposals",
                "/propose", "/history/item-arrived-damaged.md"]:
        page.goto(url)
        page.wait_for_load_state("networkidle")  # the icon and late fetches too
    assert problems == []


# -- the live view's layout, the phone view, and a session that ends ----------------------

PROMO = (Path(__file__).resolve().parent.parent / "entries" / "promo-code-not-working.md")


@pytest.mark.parametrize("width,height", [(1280, 800), (375, 812)])
def test_entry_leads_with_the_fields_and_the_email(browser, server, app, width, height):
    app.extensions["kb"].sheet.write({"promo-code-not-working.md": PROMO.read_text()},
                                     message="a long entry", author=TARA)
    context, page = signed_in(browser, server, "alice", width, height)
    page.goto("/e/promo-code-not-working")
    keys_ready(page)
    first, preview = _box(page, "#compose input:not([type=hidden])"), _box(page, "#preview")
    assert _inside(first, width, height), f"the first field is below the fold: {first}"
    assert preview["y"] + 40 < height, f"the email preview starts below the fold: {preview}"
    # the sticky copy bar never covers the first field
    assert not _overlap(_box(page, "#actions"), first)
    page.keyboard.press("i")  # the rest is one key away
    expect(page.locator("#about")).to_have_attribute("open", "")
    expect(page.locator("#about")).to_contain_text("Suggest an edit")
    # the phone view: every point on one screen, upright and large enough to read aloud
    page.keyboard.press("p")
    expect(page.locator("body")).to_have_class("call-mode")
    points = page.locator("#points li")
    assert points.count() == 5
    for i in range(points.count()):
        assert _inside(_box(page, f"#points li >> nth={i}"), width, height), (
            f"talking point {i + 1} is off the first screen at {width}x{height}")
    style = page.locator("#points").evaluate(
        "el => [getComputedStyle(el).fontStyle, parseFloat(getComputedStyle(el).fontSize)]")
    assert style[0] == "normal" and style[1] >= 19
    opening = page.locator("#opening").evaluate("el => getComputedStyle(el).fontStyle")
    assert opening == "normal"
    page.screenshot(path=str(SHOTS / f"call-{width}.png"))
    context.close()


def test_an_ended_session_never_copies_a_wrong_email(page, app):
    page.goto("/e/refund-status")
    keys_ready(page)
    page.fill("input[name=customer_name]", "Ana")
    page.fill("input[name=amount]", "$5")
    page.fill("input[name=date]", "Monday")
    expect(page.locator("#missing")).to_be_hidden()  # the preview caught up
    page.evaluate("navigator.clipboard.writeText('before')")
    page.context.clear_cookies()  # the sign-in ends, e.g. signed out in another tab
    page.click("#copy")
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#copy-status")).not_to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "before"
    page.fill("#signin input[name=password]", PASSWORD)
    page.click("#signin button[type=submit]")
    expect(page.locator("#copy-status")).to_have_text("Copied. Paste it into your reply.")
    text = clipboard(page)["text/plain"]
    assert text.startswith("Hello Ana,") and "Your refund of $5 was sent on Monday." in text
    # a reload after the sign-in ended goes through the sign-in page and back, text kept
    page.fill("input[name=customer_name]", "Bea")
    page.context.clear_cookies()
    page.reload()
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/e/refund-status*")
    expect(page.locator("input[name=customer_name]")).to_have_value("Bea")


def test_an_ended_session_never_loses_a_trainers_edit(browser, server, app):
    context = browser.new_context(base_url=server)
    page = context.new_page()
    sign_in(page, "tara")
    page.goto("/e/refund-status/edit")
    keys_ready(page)
    page.fill("textarea[name=answer]", "Your refund left us on {{ date }}.")
    page.fill("input[name=reason]", "shorter")
    context.clear_cookies()
    page.click("#edit-form button[type=submit]")
    expect(page.locator("#signin")).to_be_visible()
    page.fill("#signin input[name=username]", "tara")
    page.fill("#signin input[name=password]", PASSWORD)
    page.click("#signin button[type=submit]")
    expect(page.locator("#entry h1")).to_have_text("Refund status")
    assert app.extensions["kb"].sheet.entry("refund-status").answer == \
        "Your refund left us on {{ date }}.\n"
    # a detour away from an unsaved form brings the text back
    page.goto("/e/refund-status/edit")
    page.fill("textarea[name=answer]", "Draft in progress.")
    page.goto("/")
    page.goto("/e/refund-status/edit")
    expect(page.locator("textarea[name=answer]")).to_have_value("Draft in progress.")
    expect(page.locator("#restored")).to_be_visible()
    context.close()


# -- the trainer's desk: conflicts, restores, retired links --------------------------------

def test_conflict_page_is_compact_and_applies_a_change_on_top(browser, server, app):
    context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 800})
    one, two = two_edit_forms(context, "item-arrived-damaged")
    save_edit(one, "answer", "I'm sorry your {{ item }} arrived damaged. "
                             "A new one for order {{ order_number }} leaves today.", "faster")
    expect(one.locator("#entry h1")).to_have_text("Item arrived damaged")
    save_edit(two, "phone", "- Say sorry.\n- Offer a new one.", "a second point")
    expect(two.locator("#who")).to_contain_text("Tara Example saved a newer version")
    expect(two.locator("#who")).to_contain_text("faster")
    height = two.evaluate("document.documentElement.scrollHeight")
    assert height <= 1400, f"the conflict page is {height}px tall"
    two.screenshot(path=str(SHOTS / "conflict-1280.png"), full_page=True)
    two.click("#apply-on-top")
    expect(two.locator("#entry h1")).to_have_text("Item arrived damaged")
    entry = app.extensions["kb"].sheet.entry("item-arrived-damaged")
    assert "leaves today" in entry.answer and "Offer a new one." in entry.phone
    context.close()


def test_restore_asks_first_and_retired_links_explain(browser, server, app):
    sheet = app.extensions["kb"].sheet
    text = sheet.store.read("refund-status.md").text
    sheet.write({"refund-status.md": text.replace("was sent on", "went out on")},
                message="wording", author=TARA)
    context = browser.new_context(base_url=server)
    page = context.new_page()
    sign_in(page, "tara")
    page.goto("/history/refund-status.md")
    expect(page.locator(".badge", has_text="current")).to_have_count(1)
    page.locator("a.restore").first.click()
    expect(page.locator("h1")).to_contain_text("Restore this version")
    expect(page.locator("table.diff")).to_contain_text("went out on")  # what will change
    assert "went out on" in sheet.entry("refund-status").answer  # nothing changed yet
    page.click("#restore-form button[type=submit]")
    expect(page.locator(".badge", has_text="current")).to_have_count(1)
    assert "was sent on" in sheet.entry("refund-status").answer
    # retire with a replacement: an old link explains
    page.click("#retire summary")
    page.fill("input[name=reason]", "Folded into refunds")
    page.fill("input[name=replaced_by]", "item-arrived-damaged")
    page.click("button[value=retired]")
    page.goto("/e/refund-status")
    expect(page.locator("#retired")).to_contain_text("Folded into refunds")
    page.click("#replacement")
    expect(page.locator("#entry h1")).to_have_text("Item arrived damaged")
    context.close()


# -- the small things ---------------------------------------------------------------------

LIST_PAGES = ["/proposals", "/review", "/gaps", "/usage", "/review-due", "/changes",
              "/history/refund-status.md", "/admin/users"]


def test_list_pages_fit_375_and_the_trainer_menu_holds_the_rest(browser, server, app):
    db = app.extensions["kb_db"]
    kb = app.extensions["kb"]
    adam = get_user(db, "adam")
    text = kb.sheet.store.read("refund-status.md").text.replace("was sent on", "left us on")
    proposals.create(db, kb.sheet, adam, "refund-status", text, "a long reason " * 8,
                     base_version=kb.sheet.entry("refund-status").version, is_new=False)
    context = browser.new_context(base_url=server, viewport={"width": 375, "height": 812})
    page = context.new_page()
    sign_in(page, "adam")
    for url in LIST_PAGES:
        page.goto(url)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{url} is {width}px wide at 375px"
    # the trainer's pages sit under one menu, export included
    page.click("#narrow-menu summary")  # on a phone every link sits behind "Menu"
    menu = page.locator("#narrow-menu .menu-items")
    expect(menu).to_be_visible()
    for name in ("Gaps", "Usage", "Due for review", "Export (CSV)", "Users"):
        expect(menu.get_by_role("link", name=name)).to_be_visible()
    assert _inside(_box(page, "#narrow-menu .menu-items"), 375, 812)
    with page.expect_download() as download:
        page.click("#menu-export-csv")
    assert download.value.suggested_filename.endswith(".csv")
    # My proposals names entries by title
    page.goto("/proposals")
    expect(page.locator("table.list")).to_contain_text("Refund status")
    context.close()


def test_one_time_password_has_a_copy_button_and_a_forced_change_focuses(browser, server):
    context = browser.new_context(base_url=server,
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    sign_in(page, "adam")
    page.goto("/admin/users")
    add = page.locator("form:has(input[name=action][value=create])")
    add.locator("input[name=username]").fill("newbie")
    add.locator("input[name=display_name]").fill("New Bie")
    add.locator("button[type=submit]").click()
    otp = page.locator("#otp").inner_text().strip()
    page.click("#one-time-password button")
    expect(page.locator("#one-time-password button")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == otp
    other = browser.new_context(base_url=server).new_page()
    other.goto("/login")
    other.fill("input[name=username]", "newbie")
    other.fill("input[name=password]", otp)
    other.click("button[type=submit]")
    other.wait_for_url("**/profile")
    expect(other.locator("input[name=current]")).to_be_focused()
    other.context.close()
    context.close()


# -- the entry form: chips, live preview and checks, the review form --------------------------

@pytest.mark.parametrize("width", [1280, 375])
def test_entry_form_previews_checks_and_tags_as_you_type(browser, server, app, width):
    context, page = signed_in(browser, server, "tara", width, 800)
    page.goto("/e/refund-status/edit")
    keys_ready(page)
    answer = page.locator("textarea[name=answer]")
    answer.fill("")
    answer.press_sequentially("Your refund is **on its way**, {{ custmer_name }}.", delay=5)
    expect(page.locator("#preview-answer strong")).to_have_text("on its way")
    expect(page.locator("#live-checks li.error")).to_contain_text("“{{ custmer_name }}”")
    expect(page.locator("#checks-count")).to_have_text("1 error, 0 warnings")
    answer.press_sequentially(" Calm down.", delay=5)
    expect(page.locator("#checks-count")).to_have_text("2 errors, 0 warnings")
    # tags: typed words become chips at a comma or Enter; Backspace and × take them away
    tags = page.locator("input[name=tags]")
    expect(page.locator(".chip")).to_have_count(1)
    page.click("label:has-text('Tags')")  # the label leads to the box you type in
    expect(page.locator("#tags-typing")).to_be_focused()
    page.keyboard.type("Money Back,late", delay=5)
    page.keyboard.press("Enter")
    expect(page.locator(".chip")).to_have_text([re.compile("^refund"), re.compile("^money back"),
                                                 re.compile("^late")])
    expect(tags).to_have_value("refund, money back, late")
    page.keyboard.press("Backspace")
    expect(tags).to_have_value("refund, money back")
    page.click("button[aria-label='Remove tag refund']")
    expect(tags).to_have_value("money back")
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "scrolls sideways"
    page.keyboard.type("wait")  # left in the box: sending makes it a tag too
    answer.fill("Your refund of {{ amount }} is on its way.")
    page.fill("input[name=reason]", "friendlier")
    page.click("#edit-form button[type=submit]")
    expect(page.locator("#entry h1")).to_have_text("Refund status")
    entry = app.extensions["kb"].sheet.entry("refund-status")
    assert entry.tags == ("money back", "wait") and "on its way" in entry.answer
    context.close()


@pytest.mark.parametrize("width", [1280, 375])
def test_review_form_approves_the_trainers_change(browser, server, app, width):
    svc, db = app.extensions["kb"], app.extensions["kb_db"]
    text = entry_text("Lid does not fit", "Sorry the lid does not fit. We will send a new one.",
                      category="Orders and delivery")
    pid = proposals.create(db, svc.sheet, get_user(db, "alice"), "lid-does-not-fit", text,
                           "Asked on chat", None, True).id
    context, page = signed_in(browser, server, "tara", width, 800)
    page.goto(f"/review/{pid}")
    keys_ready(page)
    expect(page.locator("table.diff")).to_contain_text("Sorry the lid does not fit")
    expect(page.locator("#raw-file textarea")).to_be_hidden()  # the file itself, on request
    page.fill("input[name=category]", "Returns and refunds")
    page.locator("input[name=category]").press("Enter")  # Enter in a field approves nothing
    page.locator("input[name=comment]").press("Enter")
    expect(page.locator("button[value=approve]")).to_be_visible()
    assert proposals.get(db, pid).status == "pending"
    page.locator("textarea[name=answer]").press_sequentially(" Calm down.", delay=5)
    expect(page.locator("#live-checks")).to_contain_text("calm down")
    page.locator("textarea[name=answer]").fill(
        "Sorry the lid does not fit. A new one is on its way.")
    expect(page.locator("#checks-count")).to_have_text("0 errors, 0 warnings")
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "scrolls sideways"
    page.click("button[value=approve]")
    expect(page.locator("#queue")).to_contain_text("Nothing waiting")
    written = svc.store.read("lid-does-not-fit.md").text
    assert "category: Returns and refunds" in written and "A new one is on its way." in written
    assert "title: Lid does not fit" in written  # untouched lines as the proposer wrote them
    context.close()


def test_alt_t_goes_back_to_the_words_as_typed(page):
    page.goto("/")
    page.locator("#q").press_sequentially("refnud", delay=20)
    dym = page.locator("#did-you-mean")
    expect(dym).to_contain_text("Showing results for refund")
    expect(page.locator("#as-typed")).to_contain_text("refnud")
    page.locator("#q").press("Alt+t")
    expect(dym).to_contain_text("Searched as typed")
    expect(page.locator("#q")).to_have_value("refnud")
    assert "as_typed=1" in page.url
    # new words are a new search: corrected again
    page.locator("#q").fill("")
    page.locator("#q").press_sequentially("refnud again", delay=20)
    expect(dym).to_contain_text("Searched as typed")  # still the same words, extended
    page.locator("#q").fill("")
    page.locator("#q").press_sequentially("smashd box", delay=20)
    expect(dym).to_contain_text("Showing results for")


# -- the phone side and readable blanks (the starter sheet's own entries) ----------------


@pytest.fixture(scope="module")
def starter_server(tmp_path_factory):
    """The real starter sheet (46 entries) served by a real server, built once for the
    tests that only read it."""
    from waitress import create_server, wasyncore

    from kb import create_app
    from kb.users import create_user

    app = create_app({"INSTANCE_DIR": str(tmp_path_factory.mktemp("starter") / "i"),
                      "SEED_DIR": "entries", "TESTING": True})
    create_user(app.extensions["kb_db"], "alice", PASSWORD, role="agent",
                display_name="Alice Example")
    srv = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    slugs = [e.slug for e in app.extensions["kb"].sheet.entries()[0] if e.published]
    yield f"http://127.0.0.1:{srv.effective_port}", slugs
    srv.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
    srv.trigger.pull_trigger(lambda: wasyncore.close_all(srv._map))
    thread.join(timeout=5)
    app.extensions["kb"].index.close()
    app.extensions["kb_db"].dispose()


@pytest.fixture
def starter_page(browser, starter_server):
    """An agent on the starter sheet: open_page(width, height, call_mode)."""
    base, slugs = starter_server
    contexts = []

    def open_page(width: int, height: int, call_mode: bool):
        context = browser.new_context(base_url=base, viewport={"width": width, "height": height})
        page = context.new_page()
        sign_in(page, "alice")
        page.evaluate(f"localStorage.setItem('kb.callMode', '{'1' if call_mode else ''}')")
        contexts.append(context)
        return page

    yield open_page, slugs
    for context in contexts:
        context.close()


MEASURE = """() => {
  const box = (id) => document.getElementById(id).getBoundingClientRect();
  const text = (id) => document.getElementById(id).innerText;
  const spoken = text('opening') + text('points');
  return {points: box('points').bottom + scrollY, email: box('preview').bottom + scrollY,
          braces: /[{][{]|[}][}]/.test(spoken + document.getElementById('preview').innerText),
          cues: document.querySelectorAll('#points mark.missing').length};
}"""


@pytest.mark.parametrize("width,height", [(1280, 800), (375, 812)])
def test_every_starter_entry_s_phone_points_fit_the_first_screen(starter_page, width, height):
    open_page, slugs = starter_page
    page = open_page(width, height, call_mode=True)
    past, braces, cues = [], [], 0
    for slug in slugs:
        page.goto(f"/e/{slug}")
        seen = page.evaluate(MEASURE)
        if seen["points"] > height:
            past.append(slug)
        if seen["braces"]:
            braces.append(slug)
        cues += seen["cues"]
    assert past == [], f"talking points run past the first screen at {width}px: {past}"
    assert braces == [], f"raw {{{{ }}}} shown in: {braces}"
    assert cues > 0  # unfilled values are there, shown as readable cues


def test_every_starter_email_ends_above_the_fold_at_1280(starter_page):
    open_page, slugs = starter_page
    page = open_page(1280, 800, call_mode=False)
    below = []
    for slug in slugs:
        page.goto(f"/e/{slug}")
        if page.evaluate(MEASURE)["email"] > 800:
            below.append(slug)
    assert below == [], f"the email's closing is below the fold at 1280x800: {below}"


@pytest.mark.parametrize("width", [1280, 375])
def test_the_phone_view_is_one_key_or_tap_away(starter_page, width):
    open_page, _ = starter_page
    page = open_page(width, 812, call_mode=False)
    page.goto("/e/refund-status")
    keys_ready(page)
    toggle = page.locator("#call-toggle")
    assert _inside(_box(page, "#call-toggle"), width, 812)
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    points = _box(page, "#points")
    assert points["y"] + points["height"] <= 812, points
    # the sheet's facts are spoken (never asked), a value still to give is a readable cue
    expect(page.locator("#points")).to_contain_text("banks take up to 5 business days")
    assert "{{" not in page.locator("#points").inner_text()
    page.goto("/e/asks-for-a-manager")
    expect(page.locator("#points mark.missing").first).to_have_text("[Call-back time]")
    page.fill("input[name=callback_time]", "4 pm today")
    expect(page.locator("#points")).to_contain_text("4 pm today")


def test_copy_mail_app_and_eml_follow_one_rule_for_blanks(page, server):
    page.goto("/e/item-arrived-damaged")
    keys_ready(page)
    page.fill("input[name=customer_name]", "Ana")
    status, anyway = page.locator("#copy-status"), page.locator("#copy-anyway")
    # Open in mail app: refused like Copy, the missing values named by their labels
    page.click("#mailto")
    expect(status).to_contain_text("Not opened yet: fill Item, Order number")
    expect(page.locator("input[name=item]")).to_be_focused()
    expect(anyway).to_contain_text("Open with blanks")
    assert page.url.endswith("/e/item-arrived-damaged")
    # Download .eml: the same
    page.click("#eml")
    expect(status).to_contain_text("Not downloaded yet: fill Item, Order number")
    expect(anyway).to_contain_text("Download with blanks")
    with page.expect_download() as download:
        anyway.click()
    text = Path(download.value.path()).read_text()
    assert "Hello Ana," in text and "[Order number]" in text and "{{" not in text
    # Copy: the same rule, and with blanks the cues are readable
    page.click("#copy")
    expect(status).to_contain_text("Not copied yet: fill Item, Order number")
    expect(anyway).to_contain_text("Copy with blanks")
    anyway.click()
    expect(status).to_contain_text("Copied with blanks: replace [Item], [Order number]")
    copied = clipboard(page)["text/plain"]
    assert "[Item]" in copied and "{{" not in copied and "order_number" not in copied
    # every value given: the mail app opens with the finished email
    page.fill("input[name=item]", "lamp")
    page.fill("input[name=order_number]", "NW-1")
    page.click("#mailto")
    expect(status).to_have_text("Opened in your mail app.")
    href = page.locator("#mailto").get_attribute("href")
    assert "NW-1" in unquote(href) and "[" not in unquote(href) and "{{" not in unquote(href)


# -- keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1280, 375])
def test_esc_closes_the_shortcut_list_and_only_that(browser, server, width):
    context, page = signed_in(browser, server, "alice", width)
    page.goto("/e/refund-status")
    keys_ready(page)
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts")).to_be_hidden()
    page.wait_for_timeout(300)  # a navigation would have started by now
    assert page.url.endswith("/e/refund-status")
    page.keyboard.press("Escape")  # the entry's own Esc still leaves it, query kept
    page.wait_for_url(lambda url: "/e/" not in url)
    context.close()


def test_tab_walks_the_empty_fields_past_the_prefilled_ones(page):
    page.goto("/e/refund-status")
    keys_ready(page)
    fields = "#compose input[name]:not([type=hidden])"
    order = page.evaluate(f"[...document.querySelectorAll('{fields}')]"
                          ".map(el => [el.name, el.value])")
    empty = [name for name, value in order if not value]
    prefilled = [name for name, value in order if value]
    assert "agent_name" in prefilled and empty  # Your name comes filled in
    page.keyboard.press("Tab")  # from the page: the first empty field
    walked = [page.evaluate("document.activeElement.name")]
    for _ in empty[1:]:
        page.keyboard.press("Tab")
        walked.append(page.evaluate("document.activeElement.name"))
    assert walked == empty
    page.keyboard.press("Tab")  # none left: the copy button
    expect(page.locator("#copy")).to_be_focused()
    page.keyboard.press("Shift+Tab")  # backwards, every field is reachable
    assert page.evaluate("document.activeElement.tagName") == "INPUT"


@pytest.mark.parametrize("width", [1280, 375])
def test_before_the_password_change_a_nav_link_says_why(browser, server, app, width):
    from kb.users import create_user

    create_user(app.extensions["kb_db"], "newbie", "Temp-Passw0rd-123", role="agent",
                must_change=True)
    context = browser.new_context(base_url=server, viewport={"width": width, "height": 812})
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=username]", "newbie")
    page.fill("input[name=password]", "Temp-Passw0rd-123")
    page.click("button[type=submit]")
    page.wait_for_url("**/profile")
    page.goto("/changes")  # a nav link
    assert page.url.endswith("/profile")
    expect(page.locator(".flash.error")).to_contain_text("Choose your own password first")
    context.close()


@pytest.mark.parametrize("width", [1280, 375])
def test_retiring_in_the_browser_takes_a_reason(browser, server, app, width):
    context, page = signed_in(browser, server, "tara", width)
    page.goto("/history/wrong-colour.md")
    expect(page.get_by_role("button", name="Retire it")).to_be_hidden()  # a second step
    page.click("#retire summary")
    page.get_by_role("button", name="Retire it").click()  # no reason: the browser asks
    assert page.evaluate("document.querySelector('#retire input[name=reason]').validity"
                         ".valueMissing")
    assert app.extensions["kb"].sheet.entry("wrong-colour").published
    page.fill("#retire input[name=reason]", "Range discontinued")
    page.get_by_role("button", name="Retire it").click()
    expect(page.locator(".flash")).to_contain_text("Retired")
    assert not app.extensions["kb"].sheet.entry("wrong-colour").published
    expect(page.locator("#unretire")).to_be_visible()
    context.close()


@pytest.mark.parametrize("width", [1280, 375])
def test_synonyms_are_edited_as_rows_in_the_browser(browser, server, app, width):
    from kb.sheet import parse_synonyms

    context, page = signed_in(browser, server, "tara", width)
    page.goto("/sheet/synonyms")
    expect(page.locator("#part-text")).to_be_hidden()  # the file itself: one click away
    empty = page.locator("#part-rows input[name^=words_]").filter(has_text="").last
    empty.fill("parcel, package, box")
    page.fill("input[name=reason]", "customers say package")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("Saved the synonyms")
    text = app.extensions["kb"].sheet.store.read("_sheet/synonyms.txt").text
    assert ("parcel", "package", "box") in parse_synonyms(text)
    assert text.startswith("# groups\n")  # the file's comments are kept
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()


@pytest.mark.parametrize("width", [1280, 375])
def test_a_fact_is_changed_in_the_browser_and_its_entries_shown_first(browser, server, app,
                                                                     width):
    sheet = app.extensions["kb"].sheet
    sheet.write({"_sheet/facts.yml": "refund_days: {label: Days to refund, type: days, "
                 "value: 5}\n",
                 "refund-timing.md": entry_text("Refund timing", "We refund within "
                                                "{{ refund_days }} days.")},
                message="facts", author=TARA)
    context, page = signed_in(browser, server, "tara", width)
    page.goto("/sheet/facts")
    row = page.locator("#part-rows tr", has=page.locator("input[value=refund_days]"))
    row.locator("input[name^=value_]").fill("7")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#part-facts")).to_contain_text("Refund timing")
    expect(page.locator("#part-facts")).to_contain_text("We refund within 7 days.")
    page.fill("input[name=reason]", "refunds take a week now")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash").first).to_contain_text("Saved the facts")
    assert sheet.facts()["refund_days"].value == "7"
    page.goto("/e/refund-timing")  # agents see the new value, and are not asked for it
    expect(page.locator("#preview")).to_contain_text("We refund within 7 days.")
    expect(page.locator("input[name=refund_days]")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()


@pytest.mark.parametrize("width", [1280, 375])
def test_m_switches_to_the_chat_message_and_copy_gives_it(browser, server, app, width):
    from kb.entry import Entry, serialize_entry

    app.extensions["kb"].sheet.write({
        "_sheet/chat_greeting.md": "Hi {{ customer_name }},\n",
        "_sheet/chat_closing.md": "– {{ agent_name }}\n",
        "late.md": serialize_entry(Entry("late", "Parcel late", "The long email.\n", extra={
            "chat": "Order {{ order_number }} reaches you by Friday."}))},
        message="chat", author=TARA)
    context, page = signed_in(browser, server, "alice", width, clipboard=True)
    page.goto("/e/late")
    keys_ready(page)
    page.keyboard.press("m")
    expect(page.locator("#chat-pane")).to_be_visible()
    expect(page.locator("#copy-what")).to_have_text("Copy chat message")
    page.fill("input[name=customer_name]", "Ana")
    page.keyboard.press("Alt+c")  # the order number is still to fill: the same rule
    expect(page.locator("#copy-status")).to_contain_text("Not copied yet: fill Order number")
    page.keyboard.type("NW-7")
    page.keyboard.press("Alt+c")
    expect(page.locator("#copy-status")).to_have_text(
        "Copied the chat message. Paste it into the chat.")
    assert clipboard(page)["text/plain"] == "Hi Ana,\nOrder NW-7 reaches you by Friday.\n– " \
                                            "Alice Example"
    expect(page.locator("#chat-preview")).to_contain_text("Order NW-7 reaches you by Friday.")
    # the choice is kept; an entry without a chat version says so and copies nothing
    page.goto("/e/refund-status")
    keys_ready(page)
    expect(page.locator("#chat-none")).to_be_visible()
    page.evaluate("navigator.clipboard.writeText('untouched')")
    page.keyboard.press("c")
    expect(page.locator("#copy-status")).to_contain_text("no chat version yet")
    assert page.evaluate("navigator.clipboard.readText()") == "untouched"
    page.keyboard.press("m")  # back to the email
    expect(page.locator("#preview")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()


@pytest.mark.parametrize("width", [1280, 375])
def test_after_a_copy_one_key_says_it_did_not_help(browser, server, app, width):
    context, page = signed_in(browser, server, "alice", width, clipboard=True)
    page.goto("/e/wrong-colour")
    keys_ready(page)
    expect(page.locator("#outcome")).to_be_hidden()  # nothing to say before a copy
    page.fill("input[name=customer_name]", "Ana")
    page.locator("input[name=customer_name]").press("Escape")
    page.keyboard.press("c")
    expect(page.locator("#copy-status")).to_contain_text("Copied")
    expect(page.locator("#outcome")).to_be_visible()
    page.keyboard.press("o")
    expect(page.locator("#copy-status")).to_contain_text("Noted: answer out of date")
    expect(page.locator("#outcome")).to_be_hidden()
    from sqlalchemy import select

    from kb.db import Event

    db = app.extensions["kb_db"]
    db.usage_log.flush()
    with db.session() as s:
        kinds = [e.kind for e in s.scalars(select(Event).where(Event.slug == "wrong-colour"))]
    assert kinds.count("outdated") == 1 and "copy" in kinds
    context.close()


@pytest.mark.parametrize("width", [1280, 375])
def test_and_also_adds_an_entry_to_the_same_reply(browser, server, app, width):
    context, page = signed_in(browser, server, "alice", width, clipboard=True)
    page.goto("/e/refund-status")
    keys_ready(page)
    page.fill("input[name=customer_name]", "Ana")
    page.locator("input[name=customer_name]").press("Escape")
    page.keyboard.press("a")  # and also…
    expect(page.locator("#and-q")).to_be_focused()
    page.keyboard.type("box came smashed")
    expect(page.locator("#and-results li").first).to_contain_text("Item arrived damaged")
    page.keyboard.press("Enter")
    page.wait_for_url("**/e/refund-status?*and=item-arrived-damaged*")
    keys_ready(page)
    expect(page.locator("#together")).to_contain_text("Item arrived damaged")
    expect(page.locator("input[name=customer_name]")).to_have_value("Ana")  # kept
    for name, value in (("amount", "£5"), ("date", "3 May"), ("item", "lamp"),
                        ("order_number", "NW-1")):
        page.fill(f"input[name={name}]", value)
    page.locator("#copy").click()
    expect(page.locator("#copy-status")).to_contain_text("Copied")
    text = clipboard(page)["text/plain"]
    assert text.count("Hello Ana,") == 1 and "Your refund of £5" in text
    assert "your lamp arrived damaged" in text and text.count("Kind regards") <= 1
    expect(page.locator("#outcome")).to_be_visible()  # shown once the copies are logged
    from sqlalchemy import select

    from kb.db import Event

    db = app.extensions["kb_db"]
    db.usage_log.flush()
    with db.session() as s:
        copied = {e.slug for e in s.scalars(select(Event).where(Event.kind == "copy"))}
    assert copied == {"refund-status", "item-arrived-damaged"}  # a copy of each
    page.locator("#together .drop").click()  # and out again
    expect(page.locator("#together")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()


@pytest.mark.parametrize("width", [1280, 375])
def test_a_trainer_attaches_a_form_and_a_link_and_agents_get_them(browser, server, app, width,
                                                                 tmp_path):
    form = tmp_path / "Returns Form.pdf"
    form.write_bytes(b"%PDF-1.4\n%%EOF\n")
    context, page = signed_in(browser, server, "tara", width)
    page.goto("/e/item-arrived-damaged/edit")
    page.fill("textarea[name=links]", "Photo guide | https://shop.example/photos")
    page.set_input_files("input[name=upload]", str(form))
    page.fill("input[name=reason]", "the returns form customers ask for")
    page.locator("#edit-form button.primary").click()
    expect(page.locator("#entry h1")).to_have_text("Item arrived damaged")
    expect(page.locator("#files a")).to_have_text("returns-form.pdf")
    expect(page.locator("#preview")).to_contain_text("Photo guide: https://shop.example/photos")
    with page.expect_download() as download:
        page.locator("#files a").click()
    assert Path(download.value.path()).read_bytes() == b"%PDF-1.4\n%%EOF\n"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()
