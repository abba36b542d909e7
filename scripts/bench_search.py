#!/usr/bin/env python3
"""Benchmark the search index and the write path on a synthetic sheet.

    python scripts/bench_search.py --entries 10000 --queries 300

Generates N entries with a varied vocabulary, commits them as one first commit,
then measures: the full index build, opening a valid index, search latency,
single-entry writes (commit + index update), write-to-findable, and peak memory.
Prints a table, then the same figures as one JSON line.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import platform
import pstats
import random
import re
import resource
import shutil
import statistics
import string
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import Corpus, build_files  # noqa: E402

from kb.meaning import Meaning  # noqa: E402
from kb.search import SearchIndex  # noqa: E402
from kb.sheet import Sheet  # noqa: E402
from kb.store import ContentStore, Person  # noqa: E402

BENCH = Person("Bench", "bench@localhost")

# -- measuring ----------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


class Profiler:
    """cProfile around one phase when --profile names it; prints the top functions."""

    def __init__(self, wanted: set[str]):
        self.wanted = wanted

    def run(self, phase: str, func):
        if phase not in self.wanted:
            return func()
        prof = cProfile.Profile()
        result = prof.runcall(func)
        print(f"\n--- profile: {phase} (top 25 by cumulative time) ---", file=sys.stderr)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
        return result


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def unique_word(rng: random.Random) -> str:
    # "qz" starts no word of the corpus, so a hit can only be the entry just written
    return "qz" + "".join(rng.choice(string.ascii_lowercase) for _ in range(8))


def bench(args: argparse.Namespace, base: Path) -> dict:
    profiler = Profiler(set(args.profile or []))
    corpus = Corpus(args.seed)
    figures: dict = {"entries": args.entries, "queries": args.queries,
                     "python": platform.python_version()}

    t0 = time.perf_counter()
    files = build_files(corpus, args.entries)
    figures["generate_s"] = round(time.perf_counter() - t0, 2)
    distinct = {w for text in files.values() for w in re.findall(r"[a-z]+", text.lower())}
    figures["distinct_words"] = len(distinct)

    t0 = time.perf_counter()
    store = ContentStore.create(base / "content", files, "Benchmark sheet", author=BENCH)
    figures["initial_commit_s"] = round(time.perf_counter() - t0, 2)
    del files

    # The full build, as `kb reindex` does it: parsing included, nothing cached.
    sheet = Sheet(store)
    index = SearchIndex(base / "index", sheet)
    t0 = time.perf_counter()
    indexed = profiler.run("index", index.rebuild)
    figures["full_index_s"] = round(time.perf_counter() - t0, 2)
    if indexed != args.entries:
        raise SystemExit(f"indexed {indexed} entries, expected {args.entries}: {index.problems}")
    index.close()

    # Start-up with a valid index: a new process opens the store and the index.
    store = ContentStore(base / "content")
    sheet = Sheet(store)
    index = SearchIndex(base / "index", sheet)
    t0 = time.perf_counter()
    state = profiler.run("open", index.open)
    figures["open_valid_index_ms"] = ms(time.perf_counter() - t0)
    if state != "current":
        raise SystemExit(f"expected the index to be current on open, it was {state!r}")
    sheet.after_commit = index.catch_up
    t0 = time.perf_counter()
    index.warm()  # as the app does at start-up
    figures["warm_ms"] = ms(time.perf_counter() - t0)
    t0 = time.perf_counter()
    index.search("late parcel")
    figures["first_search_ms"] = ms(time.perf_counter() - t0)

    queries = [corpus.query() for _ in range(args.queries)]
    for text, typing in queries[:10]:  # warm the per-thread searcher and caches
        index.search(text, typing=typing)

    def run_queries() -> tuple[list[float], int]:
        times, found = [], 0
        for text, typing in queries:
            t = time.perf_counter()
            results = index.search(text, typing=typing)
            times.append(time.perf_counter() - t)
            found += bool(results.hits)
        return times, found

    times, found = profiler.run("search", run_queries)
    figures.update(search_p50_ms=ms(pct(times, 0.5)), search_p95_ms=ms(pct(times, 0.95)),
                   search_max_ms=ms(max(times)),
                   queries_with_hits=f"{found}/{len(queries)}")
    # the same queries ranked on words alone (the vectors stay, unused)
    with_meaning = index.meaning
    index.meaning = Meaning(enabled=False)
    words_only, _ = run_queries()
    index.meaning = with_meaning
    figures.update(meaning=with_meaning.available,
                   search_words_only_p50_ms=ms(pct(words_only, 0.5)),
                   search_words_only_p95_ms=ms(pct(words_only, 0.95)))
    by_kind: dict[str, list[float]] = {"plain": [], "typing": []}
    for (_text, typing), t in zip(queries, times, strict=True):
        by_kind["typing" if typing else "plain"].append(t)
    figures["search_typing_p95_ms"] = ms(pct(by_kind["typing"], 0.95))

    # Single-entry writes: every other one edits an entry, the rest add new ones.
    slugs = [e.slug for e in sheet.entries()[0]]
    write_times, visible_after, write_to_found = [], [], []

    def run_writes() -> None:
        for i in range(args.writes):
            word = unique_word(corpus.rng)
            if i % 2:
                entry = corpus.entry(f"bench-new-{i}")
            else:
                entry = sheet.entry(corpus.rng.choice(slugs))
            entry = replace(entry, answer=entry.answer.rstrip() + f" Ask about {word}.\n")
            t_start = time.perf_counter()
            sheet.save_entry(entry, message=f"Bench write {i}", author=BENCH)
            t_saved = time.perf_counter()
            while not any(h.slug == entry.slug for h in index.search(word).hits):
                if time.perf_counter() - t_start > 10:
                    raise SystemExit(f"'{word}' not findable 10 s after writing {entry.slug}")
            t_found = time.perf_counter()
            write_times.append(t_saved - t_start)
            visible_after.append(t_found - t_saved)
            write_to_found.append(t_found - t_start)

    profiler.run("write", run_writes)
    figures.update(
        write_p50_ms=ms(pct(write_times, 0.5)), write_p95_ms=ms(pct(write_times, 0.95)),
        write_max_ms=ms(max(write_times)),
        write_to_findable_p50_ms=ms(pct(write_to_found, 0.5)),
        write_to_findable_p95_ms=ms(pct(write_to_found, 0.95)),
        findable_after_return_p50_ms=ms(pct(visible_after, 0.5)),
        findable_after_return_max_ms=ms(max(visible_after)),
    )
    figures["index_size_mb"] = round(
        sum(p.stat().st_size for p in (base / "index").rglob("*") if p.is_file()) / 2**20, 1)
    figures["content_size_mb"] = round(
        sum(p.stat().st_size for p in (base / "content").rglob("*") if p.is_file()) / 2**20, 1)
    figures["peak_rss_mb"] = peak_rss_mb()
    figures["median_search_ms_all"] = ms(statistics.median(times))
    index.close()
    return figures


def print_table(f: dict) -> None:
    rows = [
        ("entries", f"{f['entries']:,} ({f['distinct_words']:,} distinct words)"),
        ("generate + first commit", f"{f['generate_s']} s + {f['initial_commit_s']} s"),
        ("full index build", f"{f['full_index_s']} s"),
        ("open with a valid index", f"{f['open_valid_index_ms']} ms"),
        ("warm-up at start-up", f"{f['warm_ms']} ms"),
        ("first search after that", f"{f['first_search_ms']} ms"),
        (f"search ({f['queries']} queries)",
         f"p50 {f['search_p50_ms']} ms, p95 {f['search_p95_ms']} ms, "
         f"max {f['search_max_ms']} ms ({f['queries_with_hits']} with hits)"),
        ("  typing (prefix) queries", f"p95 {f['search_typing_p95_ms']} ms"),
        ("  the same on words alone", f"p50 {f['search_words_only_p50_ms']} ms, "
                                      f"p95 {f['search_words_only_p95_ms']} ms"),
        ("single-entry write", f"p50 {f['write_p50_ms']} ms, p95 {f['write_p95_ms']} ms, "
                               f"max {f['write_max_ms']} ms"),
        ("write -> findable", f"p50 {f['write_to_findable_p50_ms']} ms, "
                              f"p95 {f['write_to_findable_p95_ms']} ms"),
        ("  of which after the write returned",
         f"p50 {f['findable_after_return_p50_ms']} ms, "
         f"max {f['findable_after_return_max_ms']} ms"),
        ("index / repository on disk", f"{f['index_size_mb']} MB / {f['content_size_mb']} MB"),
        ("peak RSS", f"{f['peak_rss_mb']} MB"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--writes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where the repository and index go (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the out dir afterwards")
    parser.add_argument("--profile", action="append",
                        choices=["index", "open", "search", "write"],
                        help="cProfile a phase (repeatable); the report goes to stderr")
    args = parser.parse_args(argv)
    if args.entries < 1 or args.queries < 10 or args.writes < 1:
        parser.error("need at least 1 entry, 10 queries and 1 write")

    base = args.out_dir or Path(tempfile.mkdtemp(prefix="kb-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    if any(base.iterdir()):
        parser.error(f"{base} is not empty; give an empty or new --out-dir")
    try:
        figures = bench(args, base)
    finally:
        if args.keep:
            print(f"kept {base}", file=sys.stderr)
        elif args.out_dir:  # the folder is the caller's: remove only what we made in it
            for made in ("content", "index"):
                shutil.rmtree(base / made, ignore_errors=True)
        else:
            shutil.rmtree(base, ignore_errors=True)
    print_table(figures)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
