#!/usr/bin/env python3
"""Recall on the 2,000-page comparison corpus: does a query made of a page's own
words always find something, and that page?

    python scripts/recall_pages.py PAGES_GENERATOR [--queries 200] [--http]

PAGES_GENERATOR is complaint_pages.py (it writes 2,000 synthetic pages). The
pages are imported as a sheet (Complaint = title, Answer = body) on an empty
content repository; each query is 1-3 consecutive words of a random page's text
(fixed seed). Prints how many queries found nothing, how many found their page
among all matches and in the top 10, and search latency (in process, or over
HTTP with one sequential client when --http is given).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb.search import SearchIndex  # noqa: E402
from kb.sheet import Sheet  # noqa: E402
from kb.spreadsheet import import_sheet  # noqa: E402
from kb.store import ContentStore, Person  # noqa: E402

SHARED_ONLY = ("_sheet/",)


def pages_from(generator: Path, out: Path) -> list[tuple[str, str]]:
    subprocess.run([sys.executable, str(generator), str(out / "pages")], check=True,
                   stdout=subprocess.DEVNULL)
    return [tuple(p) for p in json.loads((out / "corpus.json").read_text())["pages"]]


def queries_for(pages: list[tuple[str, str]], count: int, seed: int = 9) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        i = rng.randrange(len(pages))
        words = re.findall(r"[A-Za-z0-9']+", pages[i][1])
        n = rng.randint(1, 3)
        start = rng.randrange(len(words) - n + 1)
        out.append((" ".join(words[start:start + n]), i))
    return out


def build(pages: list[tuple[str, str]], base: Path) -> SearchIndex:
    """An empty content repository (only the shared parts of the starter) with the pages."""
    starter = base / "starter"
    for f in (ROOT / "entries").rglob("*"):
        rel = f.relative_to(ROOT / "entries").as_posix()
        if f.is_file() and rel.startswith(SHARED_ONLY):
            (starter / rel).parent.mkdir(parents=True, exist_ok=True)
            (starter / rel).write_bytes(f.read_bytes())
    store = ContentStore.open_or_create(base / "content", starter)
    sheet = Sheet(store)
    sheet_file = base / "pages.csv"
    with sheet_file.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["Complaint", "Answer"])
        for title, body in pages:
            w.writerow([title, body])
    import_sheet(sheet, sheet_file, author=Person("Bench", "bench@localhost"),
                 message="Import the comparison pages")
    index = SearchIndex(base / "index", sheet)
    index.open()
    index.warm()
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("generator", type=Path)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--http", action="store_true",
                        help="time the queries against `kb serve` (one process, one client)")
    args = parser.parse_args(argv)
    if args.http:
        return over_http(args)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        pages = pages_from(args.generator, base)
        index = build(pages, base)
        slugs = {h["title"]: h["slug"] for h in index.browse()}
        empty, found, top10, times = [], 0, 0, []
        for text, i in queries_for(pages, args.queries):
            t0 = time.perf_counter()
            res = index.search(text, limit=10)
            times.append(time.perf_counter() - t0)
            if not res.hits:
                empty.append(text)
            want = slugs[pages[i][0]]
            top10 += want in [h.slug for h in res.hits]
            found += want in index.matching_slugs(text)
        index.close()
    times.sort()
    n = args.queries
    print(f"{n} queries over {len(pages)} pages: {len(empty)} found nothing {empty[:10]}; "
          f"own page matched {found}/{n}, in top 10 {top10}/{n}; "
          f"p50 {1000 * statistics.median(times):.1f} ms, "
          f"p95 {1000 * times[round(0.95 * (n - 1))]:.1f} ms")
    return 1 if empty or found < n else 0


def over_http(args: argparse.Namespace) -> int:
    """The pages imported, `kb reindex`, then `kb serve` (waitress, one process) asked
    the queries one after another over HTTP with a personal token."""
    from kb.db import Database
    from kb.users import create_token, create_user

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        pages = pages_from(args.generator, base)
        build(pages, base).close()
        db = Database(f"sqlite:///{base / 'kb.sqlite'}")
        create_user(db, "bench", "Quiet-Harbour-Lamp-71", role="agent")
        token = create_token(db, "bench", "recall")
        db.dispose()
        env = dict(os.environ, KB_INSTANCE_DIR=str(base), PYTHONPATH=str(ROOT))
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kb.cli", "reindex"], env=env, check=True,
                       stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        reindex_s = time.perf_counter() - t0
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "kb.cli", "serve", "--workers", "1",
                                   "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/api/search?q="
        try:
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            times, empty = [], 0
            queries = queries_for(pages, args.queries)
            for n, (text, _) in enumerate(queries[:10] + queries):
                request = urllib.request.Request(url + urllib.parse.quote(text),
                                                 headers={"Authorization": f"Bearer {token}"})
                t = time.perf_counter()
                with urllib.request.urlopen(request) as response:
                    data = json.load(response)
                if n >= 10:  # the first ten only warm up
                    times.append(time.perf_counter() - t)
                    empty += not data["results"]
            rss = next(int(line.split()[1]) / 1024 for line in
                       Path(f"/proc/{server.pid}/status").read_text().splitlines()
                       if line.startswith("VmHWM:"))
        finally:
            server.terminate()
            server.wait()
    times.sort()
    n = len(times)
    print(f"HTTP, one sequential client, {n} queries over {len(pages)} pages: {empty} empty; "
          f"p50 {1000 * statistics.median(times):.1f} ms, "
          f"p95 {1000 * times[round(0.95 * (n - 1))]:.1f} ms; kb reindex {reindex_s:.1f} s; "
          f"server peak RSS {rss:.0f} MB")
    return 1 if empty else 0


if __name__ == "__main__":
    sys.exit(main())
