"""The notifications badge and list in a real browser, wide and narrow."""

from __future__ import annotations

import pytest

from tests.test_browser import (  # noqa: F401 - fixtures used by name
    _box,
    _header_is_tidy,
    _inside,
    browser,
    expect,
    server,
    sign_in,
)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width,height", [(1280, 800), (375, 812)])
def test_the_badge_shows_and_the_list_opens(browser, server, app, width, height):  # noqa: F811
    from kb import notifications as N
    from kb.users import get_user

    db = app.extensions["kb_db"]
    alice = get_user(db, "alice")
    N.notify(db, alice, N.SENT_BACK, "Your proposal “A rather long title about a parcel "
             "left at the neighbour's door” was sent back for changes",
             "Tara Example wrote: “Name the photo proof”", "/proposals")
    N.notify(db, alice, N.APPROVED, "Your proposal “Refund status” was approved", "",
             "/e/refund-status")
    context = browser.new_context(base_url=server, viewport={"width": width, "height": height})
    page = context.new_page()
    sign_in(page, "alice")
    page.goto("/")
    # on a phone the links sit behind "Menu", which carries the count
    link = "#nav-notifications" if width > 700 else "#menu-nav-notifications"
    if width <= 700:
        expect(page.locator("#narrow-menu summary .count")).to_have_text("2")
        _header_is_tidy(page, width)
        page.click("#narrow-menu summary")
    badge = page.locator(f"{link} .count")
    expect(badge).to_have_text("2")
    assert _inside(_box(page, link), width, height)
    if width > 700:
        _header_is_tidy(page, width)
    page.click(link)
    expect(page.locator("h1")).to_have_text("Notifications")
    items = page.locator("#notices li.unread")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("was approved")  # newest first
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "sideways scroll"
    items.first.locator("a").click()
    expect(page.locator("h1")).to_have_text("Refund status")
    expect(page.locator(f"{link} .count")).to_have_text("1")
    page.goto("/notifications")
    page.click("#mark-all-read")
    expect(page.locator("#notices li.unread")).to_have_count(0)
    expect(page.locator(f"{link} .count")).to_have_count(0)
    context.close()


@pytest.mark.parametrize("width,height", [(1280, 800), (375, 812)])
def test_a_trainer_sees_a_proposal_arrive_without_reloading(browser, server, app,  # noqa: F811
                                                             width, height):
    from tests.conftest import login

    context = browser.new_context(base_url=server, viewport={"width": width, "height": height})
    page = context.new_page()
    sign_in(page, "tara")
    page.goto("/")
    page.wait_for_selector("html[data-ready]", state="attached")
    expect(page.locator("#nav-review .count")).to_have_count(0)
    agent = app.test_client()
    assert login(agent, "alice").status_code == 302
    assert agent.post("/api/proposals", json={
        "title": "Parcel left at the wrong door", "answer": "We will check the photo.",
        "reason": "customers ask"}).status_code == 201
    # no reload: the page asks for the counts (every 20 s, or at once when shown again)
    page.evaluate("window.kbRefreshCounts()")
    if width > 700:
        expect(page.locator("#nav-review .count")).to_have_text("1")
        expect(page.locator("#nav-notifications .count")).to_have_text("1")
    else:
        expect(page.locator("#narrow-menu summary .count")).to_have_text("2")
        page.click("#narrow-menu summary")
        expect(page.locator("#menu-nav-review .count")).to_have_text("1")
    page.click("#nav-notifications" if width > 700 else "#menu-nav-notifications")
    expect(page.locator("#notices")).to_contain_text(
        "Alice Example proposed a new entry: “Parcel left at the wrong door”")
    context.close()
