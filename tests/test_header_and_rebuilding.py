"""Two small things in a real browser: the signed-in person's name in the header on a
phone, and the search page while the search index is being rebuilt."""

from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.browser

if not shutil.which("/usr/bin/chromium"):  # pragma: no cover - scripts/test.sh installs it
    pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)",
                allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

from tests.test_browser import browser, server, sign_in  # noqa: E402, F401 - fixtures


@pytest.mark.parametrize("width", [375, 1280])
def test_the_admins_name_is_not_cut_short(browser, server, width):  # noqa: F811
    context = browser.new_context(base_url=server, viewport={"width": width, "height": 800})
    page = context.new_page()
    sign_in(page, "adam")
    page.goto("/proposals")
    name = page.locator(".me > a")
    expect(name).to_have_text("Adam Example")
    assert name.evaluate("el => el.scrollWidth <= el.clientWidth"), "the name is cut short"
    box, out = name.bounding_box(), page.locator(".me button").bounding_box()
    assert box["x"] >= 0 and out["x"] + out["width"] <= width + 0.5
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()


def test_while_the_index_is_rebuilt_search_offers_no_new_entry(browser, server, app):  # noqa: F811
    context = browser.new_context(base_url=server)
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, "alice")
    page.goto("/")
    page.locator("#q").press_sequentially("pelican feathers", delay=10)
    expect(page.locator("#propose")).to_be_visible()  # a real miss: propose one
    expect(page.locator("#index-rebuilding")).to_be_hidden()
    index = app.extensions["kb"].index
    index.retry_seconds = 3600  # the rebuild fails and is not tried again in the test
    shutil.rmtree(index.dir)
    index.dir.write_text("not a folder")
    index.search("refund")
    index.wait_until_recovered()
    page.locator("#q").fill("")
    for words in ("screens", "where is my money"):
        page.locator("#q").fill("")
        page.locator("#q").press_sequentially(words, delay=10)
        expect(page.locator("#index-rebuilding")).to_be_visible()
        expect(page.locator("#propose")).to_be_hidden()
    expect(page.locator("#results li").first).to_contain_text("Refund status")
    context.close()
