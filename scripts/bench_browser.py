"""End-to-end speed in a real browser: Debian's Chromium against `kb serve`.

Generates a sheet of N synthetic entries, starts the real server (waitress) on
loopback, signs in, types queries like an agent (about 60 ms a key) and
measures, for the last keystroke of each query, the time until the results
for that exact query are painted; and the load time of the search and entry
pages. Usage: python scripts/bench_browser.py [--entries 10000] [--queries 60]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from corpus import Corpus, build_files  # noqa: E402

from kb.db import Database  # noqa: E402
from kb.store import ContentStore  # noqa: E402
from kb.users import create_user  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "quiet-sofa-lamp-1"

# Installed in the page: remember when the last key went down, and when the
# results list was painted after a change (the frame after the DOM mutation).
PROBE = """() => {
  const q = document.getElementById('q');
  window.__paints = [];
  q.addEventListener('keydown', () => { window.__lastKey = performance.now(); }, true);
  new MutationObserver(() => {
    const value = q.value;
    requestAnimationFrame(() => window.__paints.push(
      {value, ms: performance.now() - window.__lastKey}));
  }).observe(document.getElementById('results'), {childList: true});
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    """The server's high-water mark of resident memory (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--delay", type=int, default=60, help="ms between keystrokes")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        inst = Path(tmp)
        t0 = time.perf_counter()
        corpus = Corpus()
        ContentStore.create(inst / "content", build_files(corpus, args.entries), "Benchmark sheet")
        create_user(Database(f"sqlite:///{inst / 'kb.sqlite'}"), "bench", PASSWORD, role="agent")
        print(f"generated {args.entries} entries in {time.perf_counter() - t0:.1f}s", flush=True)
        port = free_port()
        env = dict(os.environ, KB_INSTANCE_DIR=str(inst), PYTHONPATH=str(ROOT))
        # Index first, as `kb reindex` would, so the server's memory is its steady state.
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kb.cli", "reindex"], env=env, check=True,
                       stderr=subprocess.DEVNULL)
        print(f"kb reindex: {time.perf_counter() - t0:.1f}s", flush=True)
        server = subprocess.Popen(
            [sys.executable, "-m", "kb.cli", "serve", "--port", str(port)], env=env,
            stderr=subprocess.PIPE, text=True)
        base = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        while True:  # start-up with a valid index
            try:
                urllib.request.urlopen(base + "/login", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit(server.stderr.read()) from None
                time.sleep(0.2)
        startup = time.perf_counter() - t0
        print(f"server answering after {startup:.1f}s", flush=True)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = browser.new_page(base_url=base)
                page.goto("/login")
                page.fill("input[name=username]", "bench")
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url("**/")
                latencies, misses = [], 0
                for q in [corpus.query()[0] for _ in range(args.queries)]:
                    page.goto("/")
                    page.evaluate(PROBE)
                    page.locator("#q").press_sequentially(q, delay=args.delay)
                    try:
                        page.wait_for_function(
                            "v => window.__paints.some(p => p.value === v)", arg=q,
                            timeout=5000)
                    except Exception:
                        misses += 1
                        continue
                    paints = page.evaluate("window.__paints")
                    latencies.append(next(p["ms"] for p in paints if p["value"] == q))
                loads = {"search": [], "entry": []}
                page.goto("/?q=" + corpus.query()[0])
                entry_url = page.locator("#results li a").first.get_attribute("href")
                for _ in range(10):
                    for name, url in (("search", "/"), ("entry", entry_url)):
                        page.goto(url)
                        loads[name].append(page.evaluate(
                            "performance.getEntriesByType('navigation')[0].loadEventEnd"))
                browser.close()
            server_rss = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=10)
    result = {
        "entries": args.entries, "queries": len(latencies), "missed": misses,
        "keystroke_to_results_p50_ms": round(statistics.median(latencies), 1),
        "keystroke_to_results_p95_ms": round(pct(latencies, 95), 1),
        "keystroke_to_results_max_ms": round(max(latencies), 1),
        "search_page_load_p50_ms": round(statistics.median(loads["search"]), 1),
        "entry_page_load_p50_ms": round(statistics.median(loads["entry"]), 1),
        "server_answering_after_s": round(startup, 1),
        "server_peak_rss_mb": server_rss,
    }
    for key, value in result.items():
        print(f"{key:32} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
