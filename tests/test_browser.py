"""The pages in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import shutil
import threading

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
if not shutil.which(CHROMIUM):  # pragma: no cover - scripts/test.sh installs it
    pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)",
                allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.conftest import PASSWORD  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def server(app):
    from waitress import create_server

    srv = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.effective_port}"
    srv.close()
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
    page.wait_for_url("**/")


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
    assert copied["text/plain"].startswith("Hello Zoë {{ agent_name }},")
    assert "Your refund of $25 was sent on 3 May." in copied["text/plain"]
    assert copied["text/plain"].rstrip().endswith("Northwind Home")
    assert "<p>" in copied["text/html"] and "$25" in copied["text/html"]


def test_copy_with_unfilled_placeholders_asks_first(page):
    page.goto("/e/item-arrived-damaged")
    messages = []

    def dismiss(dialog):
        messages.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.click("#copy")
    expect(page.locator("#copy-status")).to_contain_text("Not copied")
    assert "customer_name" in messages[0] and "order_number" in messages[0]


def test_arrow_keys_move_the_selection(page):
    page.goto("/")
    page.locator("#q").press_sequentially("refund smashed", delay=10)
    links = page.locator("#results li a")
    expect(links).to_have_count(2)
    expect(links.nth(0)).to_have_class("selected")
    page.locator("#q").press("ArrowDown")
    expect(links.nth(1)).to_have_class("selected")
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
