"""The README's screenshots, taken in Debian's Chromium against a real `kb serve`.

Seeds a temporary instance from the starter sheet (entries/), creates a trainer
and five agents, starts the real server (waitress) on loopback and replays a
morning of agent work through the JSON API and pages: searches typed a few
keys at a time, some followed by opening or copying an entry, others (gift
wrapping, assembly, loyalty points...) leading nowhere. Then it signs in as the
trainer and saves full-page PNGs of /gaps, /print, a search and an entry.
Usage: python scripts/screenshots.py [--out static/readme-images]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb.db import Database  # noqa: E402
from kb.users import create_token, create_user  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 900}
PRINT_HEIGHT = 1600  # the printable sheet is cropped to its first page or so
TRAINER = ("sam", "Sam Lee")
AGENTS = {"priya": "Priya Shah", "tom": "Tom Becker", "ana": "Ana Lima",
          "joe": "Joe Okafor", "mei": "Mei Chen"}
PASSWORD = "screenshot-password-1"

# (agent, what they typed, then: None = nothing opened, ("open"|"copy", slug)).
# Consecutive searches of one agent never extend each other, so none merge.
SCRIPT: list[tuple[str, str, tuple[str, str] | None]] = [
    ("priya", "box came smashed", ("copy", "item-arrived-damaged")),
    ("tom", "where is my money", ("copy", "refund-status")),
    ("ana", "gift wrapping", None),
    ("joe", "charged twice", ("copy", "charged-twice")),
    ("mei", "assembly service", None),
    ("priya", "gift wrap", None),
    ("tom", "loyalty points missing", None),
    ("ana", "parcel never came", ("open", "package-lost")),
    ("joe", "Gift wrapping?", None),
    ("mei", "cancel my order", ("copy", "cancel-an-order")),
    ("priya", "someone to assemble it", None),
    ("tom", "speak to a manager", ("open", "asks-for-a-manager")),
    ("ana", "wrong size", ("copy", "exchange-for-different-size")),
    ("joe", "assemble", None),
    ("mei", "gift-wrapping", None),
    ("priya", "cant log in", ("open", "cannot-log-in")),
    ("tom", "wrap as a present", None),
    ("ana", "loyalty points missing", None),
    ("joe", "price match", ("open", "price-match-or-discount")),
    ("mei", "can you gift wrap it", None),
    ("priya", "promo code doesnt work", ("copy", "promo-code-not-working")),
    ("tom", "gift card balance", None),
    ("ana", "Assembly service?", None),
    ("joe", "sent me the wrong thing", ("copy", "wrong-item-sent")),
    ("mei", "Loyalty points missing?", None),
    ("priya", "gift wrap option", None),
    ("tom", "it arrived broken", ("copy", "item-arrived-damaged")),
    ("ana", "engraving", None),
    ("joe", "says delivered but nothing here", ("copy", "delivered-but-not-received")),
    ("mei", "someone to assemble it", None),
    ("priya", "assembled?", None),
    ("tom", "refund not received", ("copy", "refund-status")),
    ("ana", "card declined", ("copy", "payment-declined")),
    ("joe", "can you engrave it", None),
    ("mei", "stopped working after a week", ("copy", "product-stopped-working")),
    ("priya", "loyalty points", None),
    ("tom", "want to return it", ("copy", "how-to-return")),
    ("ana", "click and collect", None),
    ("joe", "wrap it as a present", None),
    ("mei", "track my parcel", ("open", "order-running-late")),
    ("priya", "threatening to leave a bad review", ("open", "threatens-bad-review")),
    ("tom", "gift card balance", None),
    ("ana", "delete my account data", ("open", "delete-my-data")),
    ("joe", "missing items", ("open", "items-missing-from-box")),
    ("mei", "newsletter", None),
    ("priya", "gift wrapping", None),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """One agent talking to the server with a personal API token, as a script would."""

    def __init__(self, base: str, token: str):
        self.base, self.token = base, token

    def call(self, path: str, body: dict | None = None) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{path}: HTTP {exc.code} {exc.read()[:300]!r}") from None

    def json(self, path: str, body: dict | None = None) -> dict:
        return json.loads(self.call(path, body)[1])

    def search(self, query: str) -> dict:
        """Type the query a few keys at a time, as the search box asks the API."""
        cuts = list(range(3, len(query), 3)) + [len(query)]
        data: dict = {}
        for cut in cuts:
            params = urllib.parse.urlencode({"q": query[:cut], "limit": 20, "typing": 1})
            data = self.json(f"/api/search?{params}")
        return data


def replay_usage(base: str, tokens: dict[str, str]) -> dict[str, int]:
    clients = {name: Client(base, token) for name, token in tokens.items()}
    counts = {"searches": 0, "no results": 0, "opened": 0, "copied": 0, "led nowhere": 0}
    search_ids = set()
    for agent, query, then in SCRIPT:
        client = clients[agent]
        data = client.search(query)
        counts["searches"] += 1
        counts["no results"] += data["total"] == 0
        search_ids.add(data["search_id"])
        if then is None:
            counts["led nowhere"] += 1
            continue
        kind, slug = then
        found = [hit["slug"] for hit in data["results"]]
        if slug not in found[:5]:
            print(f"warning: {query!r} did not find {slug} in its top 5 ({found[:5]}); "
                  f"opening the top hit instead", file=sys.stderr)
            if not found:
                continue
            slug = found[0]
        params = urllib.parse.urlencode({"q": query, "sid": data["search_id"]})
        client.call(f"/e/{slug}?{params}")  # the entry page logs the view
        counts["opened"] += 1
        if kind == "copy":
            version = client.json(f"/api/entries/{slug}")["version"]
            client.json("/api/events", {"kind": "copy", "slug": slug, "version": version,
                                        "search_id": data["search_id"]})
            counts["copied"] += 1
    if len(search_ids) != len(SCRIPT):
        print(f"warning: {len(SCRIPT)} searches were logged as {len(search_ids)} rows "
              "(some merged as one agent's typing)", file=sys.stderr)
    return counts


def wait_for_server(server: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/login", timeout=1)
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start:\n" + log.read_text()) from None
            time.sleep(0.2)


def propose_an_edit(base: str, token: str) -> int:
    """An agent suggests a one-line change, so the review page has something to show."""
    agent = Client(base, token)
    entry = agent.json("/api/entries/item-arrived-damaged")
    answer = entry["answer"].replace("Please keep it or recycle it.",
                                     "Please keep it, give it away or recycle it.")
    return agent.json("/api/proposals", {
        "slug": "item-arrived-damaged", "answer": answer, "base_version": entry["version"],
        "reason": "Customers asked whether they may give it away"})["id"]


def take_screenshots(base: str, out: Path, proposal: int | None = None) -> list[Path]:
    from playwright.sync_api import sync_playwright

    written = []
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        try:
            context = browser.new_context(base_url=base, viewport=VIEWPORT,
                                          color_scheme="light")
            page = context.new_page()
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("console", lambda msg: msg.type == "error"
                    and not msg.text.startswith("Failed to load resource")
                    and problems.append(f"console error on {page.url}: {msg.text}"))
            page.on("response", lambda r: r.status >= 400
                    and problems.append(f"HTTP {r.status} for {r.url}"))
            page.goto("/login")
            page.fill("input[name=username]", TRAINER[0])
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(base + "/")

            # Gaps first: the trainer's own search below would otherwise count as one.
            page.goto("/gaps")
            page.wait_for_selector("#gaps tbody tr")
            written.append(out / "gaps.png")
            page.screenshot(path=written[-1], full_page=True)

            page.goto("/print?" + urllib.parse.urlencode({"category": "Orders and delivery"}))
            page.wait_for_load_state("load")
            height = page.evaluate("document.documentElement.scrollHeight")
            written.append(out / "print.png")
            if height > PRINT_HEIGHT:
                page.screenshot(path=written[-1], full_page=True, clip={
                    "x": 0, "y": 0, "width": VIEWPORT["width"], "height": PRINT_HEIGHT})
            else:
                page.screenshot(path=written[-1], full_page=True)

            query = "box came smashed"
            page.goto("/")
            page.locator("#q").press_sequentially(query, delay=60)
            page.wait_for_function(
                "q => { const a = document.querySelector('#results li a');"
                " return a && a.href.includes('q=' + encodeURIComponent(q)); }", arg=query)
            page.wait_for_timeout(200)  # let the last paint settle
            written.append(out / "search.png")
            page.screenshot(path=written[-1], full_page=True)

            page.locator("#results li a").first.click()
            page.wait_for_selector("#entry")
            page.fill("input[name=customer_name]", "Maria")
            # Functions, not expressions: the site's CSP forbids eval.
            page.wait_for_function(
                "() => document.body.dataset.composed"
                " && document.getElementById('preview').textContent.includes('Maria')")
            page.locator("input[name=customer_name]").blur()
            written.append(out / "entry.png")
            page.screenshot(path=written[-1], full_page=True)

            # a customer with two problems: one reply, then the same as a chat message
            page.goto("/e/refund-status?and=item-arrived-damaged")
            page.wait_for_selector("html[data-ready]", state="attached")
            page.fill("input[name=customer_name]", "Maria")
            page.wait_for_function(
                "() => document.getElementById('preview').textContent.includes('Maria')")
            page.locator("input[name=customer_name]").blur()
            written.append(out / "together.png")
            page.screenshot(path=written[-1], full_page=False)
            page.goto("/e/refund-status")
            page.wait_for_selector("html[data-ready]", state="attached")
            page.keyboard.press("m")
            page.fill("input[name=customer_name]", "Maria")
            page.wait_for_function(
                "() => document.getElementById('chat-preview').textContent.includes('Maria')")
            page.locator("input[name=customer_name]").blur()
            written.append(out / "chat.png")
            page.screenshot(path=written[-1], full_page=False)
            page.keyboard.press("m")  # back to the email for the pages after

            page.goto("/sheet/placeholders")
            page.wait_for_selector("#part-rows")
            written.append(out / "placeholders.png")
            page.screenshot(path=written[-1], full_page=True)

            # a fact changed: the preview lists the entries it reaches, as they will read
            page.goto("/sheet/facts")
            row = page.locator("#part-rows tr", has=page.locator("input[value=bank_days]"))
            row.locator("input[name^=value_]").fill("7")
            page.get_by_role("button", name="Preview").click()
            page.wait_for_selector("#part-facts section")
            written.append(out / "facts.png")
            page.screenshot(path=written[-1], full_page=False)

            page.goto("/sheet/shorthand")
            page.wait_for_selector("#part-shorthand")
            written.append(out / "shorthand.png")
            page.screenshot(path=written[-1], full_page=True)

            page.goto("/e/item-arrived-damaged/edit")
            page.wait_for_selector("#edit-form")
            written.append(out / "editor.png")
            page.screenshot(path=written[-1], full_page=True)

            if proposal is not None:
                page.goto(f"/review/{proposal}")
                page.wait_for_selector("table.diff")
                written.append(out / "review.png")
                page.screenshot(path=written[-1], full_page=True)

            # an agent's phone: the mid-call view of an entry at 375 px, one screen
            phone = browser.new_context(base_url=base, viewport={"width": 375, "height": 812},
                                        color_scheme="light")
            small = phone.new_page()
            small.goto("/login")
            small.fill("input[name=username]", TRAINER[0])
            small.fill("input[name=password]", PASSWORD)
            small.click("button[type=submit]")
            small.wait_for_url(base + "/")
            small.goto("/e/refund-status")
            small.wait_for_selector("html[data-ready]", state="attached")
            small.click("#call-toggle")
            written.append(out / "phone-view.png")
            small.screenshot(path=written[-1])
            phone.close()
        finally:
            browser.close()
    for problem in problems:
        print("warning:", problem, file=sys.stderr)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "static" / "readme-images",
                        help="folder for the PNG files (default: static/readme-images)")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="kb-screenshots-") as tmp:
        inst = Path(tmp)
        db = Database(f"sqlite:///{inst / 'kb.sqlite'}")
        create_user(db, TRAINER[0], PASSWORD, role="trainer", display_name=TRAINER[1])
        tokens = {}
        for name, display in AGENTS.items():
            create_user(db, name, PASSWORD, role="agent", display_name=display)
            tokens[name] = create_token(db, name, "screenshots")
        db.dispose()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = dict(os.environ, KB_INSTANCE_DIR=str(inst), KB_SEED_DIR=str(ROOT / "entries"),
                   PYTHONPATH=str(ROOT))
        log = inst / "server.log"
        with open(log, "w") as log_file:
            server = subprocess.Popen(
                [sys.executable, "-m", "kb.cli", "serve", "--port", str(port)],
                env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=tmp)
            try:
                wait_for_server(server, base, log)
                counts = replay_usage(base, tokens)
                print("usage: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
                proposal = propose_an_edit(base, tokens[next(iter(tokens))])
                written = take_screenshots(base, out, proposal)
            finally:
                server.terminate()
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
    for path in written:
        print(f"{path}  ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
