"""The README's pictures of the browser extension: its panel in a helpdesk's reply box
(the answers for the customer's words, then the entry's blanks with the page's values
offered). Real parts: `kb serve` on the starter sheet, Chromium with the extension as
kb serves it, a stand-in ticket page. Usage: python scripts/screenshot_extension.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb.db import Database  # noqa: E402
from kb.users import create_token, create_user  # noqa: E402
from tests.extension_procs import KbServer, Pages, download_extension, launch  # noqa: E402

OUT = ROOT / "static" / "readme-images"
RULES = r"""presets: [zendesk, freshdesk, help-scout, zammad, chatwoot]
sites:
  - name: Our helpdesk
    match: http://127.0.0.1:*/ticket.html*
    values:
      customer_name: {selector: .requester, pattern: "^\\s*(\\S+)"}
      order_number: {text: "\\b(NW-\\d{6})\\b"}
"""
TICKET = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>#4711 Broken on arrival · Helpdesk</title>
<link rel="icon" href="data:,">
<style>
  body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: #1f2933; background: #eef1f5; }
  header { background: #243447; color: #fff; padding: .6rem 1.2rem; font-weight: 600; }
  main { max-width: 760px; margin: 1rem auto; background: #fff; border-radius: 8px;
         box-shadow: 0 1px 3px rgba(0,0,0,.12); padding: 1rem 1.4rem; }
  h1 { font-size: 1.15rem; margin: 0 0 .2rem; }
  .meta { color: #52606d; margin: 0 0 .8rem; }
  .message { background: #f5f7fa; border-radius: 6px; padding: .6rem .8rem; margin-bottom: 1rem; }
  textarea { width: 100%; box-sizing: border-box; height: 15rem; font: inherit; padding: .6rem;
             border: 1px solid #9aa5b1; border-radius: 6px; }
  .bar { display: flex; justify-content: flex-end; margin-top: .5rem; }
  button { background: #2f6fbb; color: #fff; border: 0; border-radius: 5px; padding: .45rem 1rem; }
</style></head>
<body><header>Helpdesk · Tickets</header>
<main>
  <h1>#4711 Broken on arrival</h1>
  <p class="meta">From <span class="requester">Ana Lima</span> · ana@example.com · 2 hours ago</p>
  <div class="message">Hello, my order NW-104233 came today and the box was smashed. The lamp
    inside is cracked. What now?</div>
  <label for="reply"><strong>Reply</strong></label>
  <textarea id="reply"></textarea>
  <div class="bar"><button type="button">Send</button></div>
</main></body></html>
"""


def main() -> None:
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        seed = base / "seed"
        shutil.copytree(ROOT / "entries", seed)
        (seed / "_sheet" / "page_values.yml").write_text(RULES)
        (base / "pages").mkdir()
        (base / "pages" / "ticket.html").write_text(TICKET)
        instance = base / "instance"
        instance.mkdir()
        db = Database(f"sqlite:///{instance / 'kb.sqlite'}")
        create_user(db, "sam", "quiet-sofa-lamp-1", role="agent", display_name="Sam Lee")
        token = create_token(db, "sam")
        kb = KbServer(instance, seed)
        kb.start()
        pages = Pages(base / "pages")
        try:
            extension = download_extension(kb.url, token, base / "ext")
            with sync_playwright() as p:
                context, worker = launch(p, base / "profile", extension)
                worker.evaluate("([kb, token]) => chrome.storage.local.set({kb_url: kb, token})",
                                [kb.url, token])
                page = context.pages[0]
                page.set_viewport_size({"width": 900, "height": 660})
                page.goto(pages.url + "/ticket.html")
                page.click("#reply")
                page.keyboard.type("Thanks for getting in touch. ")
                page.keyboard.type("::")
                page.keyboard.type("box came smashed", delay=40)
                panel = page.locator("kb-reply-panel")
                expect(panel).to_have_attribute("data-shown", "box came smashed")
                page.screenshot(path=str(OUT / "extension-search.png"))
                page.keyboard.press("Enter")
                expect(panel.locator("form")).to_be_visible()
                expect(panel.locator(".preview")).to_contain_text("Hi Ana")
                page.keyboard.type("lamp")
                page.keyboard.press("Enter")
                expect(panel.locator(".preview")).to_contain_text("new lamp for order NW-104233")
                page.screenshot(path=str(OUT / "extension-fill.png"))
                context.close()
        finally:
            pages.close()
            kb.stop()
            db.dispose()
    print("wrote", OUT / "extension-search.png", "and", OUT / "extension-fill.png")


if __name__ == "__main__":
    main()
