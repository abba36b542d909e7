"""Top-1 and top-3 rates of the relevance sets.

    python scripts/relevance.py [--words-only] [--misses]

Sets: tests/relevance_cases.tsv (customers' words, on the starter sheet),
tests/relevance_paraphrases.tsv (no stemmed word shared with the right entry's
title or phrasings, on the starter sheet), and tests/relevance_telecom.tsv on
the telecom sheet (tests/telecom_sheet.csv) imported on top of the starter
sheet and on an empty instance. --words-only ranks without the meaning model.
"""

from __future__ import annotations

import csv
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb.meaning import Meaning  # noqa: E402
from kb.search import SearchIndex  # noqa: E402
from kb.sheet import Sheet  # noqa: E402
from kb.spreadsheet import import_sheet  # noqa: E402
from kb.store import ContentStore, Person  # noqa: E402

TESTS = ROOT / "tests"
SHARED_PARTS = "_sheet"


def load(name: str) -> list[tuple[str, str]]:
    with (TESTS / name).open(encoding="utf-8") as handle:
        return [(row["query"], row.get("slug") or row["complaint"])
                for row in csv.DictReader(handle, delimiter="\t")]


def open_index(base: Path, meaning: Meaning, starter: bool, telecom: bool) -> SearchIndex:
    seed = base / "seed"
    shutil.copytree(ROOT / "entries", seed)
    if not starter:  # an empty instance keeps only the shared parts
        for f in seed.glob("*.md"):
            f.unlink()
    sheet = Sheet(ContentStore.open_or_create(base / "content", seed))
    if telecom:
        import_sheet(sheet, TESTS / "telecom_sheet.csv", author=Person("Team", "team@localhost"),
                     message="Import the telecom sheet")
    index = SearchIndex(base / "index", sheet, meaning)
    index.open()
    return index


def rates(index: SearchIndex, cases: list[tuple[str, str]], label: str,
          misses: bool = False) -> tuple[int, int, int]:
    by_title = {row["title"]: row["slug"] for row in index.browse()}
    top1 = top3 = 0
    for query, want in cases:
        want = by_title.get(want, want)
        ranked = [h.slug for h in index.search(query, limit=3).hits]
        top1 += bool(ranked) and ranked[0] == want
        top3 += want in ranked
        if misses and (not ranked or ranked[0] != want):
            print(f"  {'TOP3' if want in ranked else 'MISS'} {label} {query!r}: "
                  f"want {want}, got {ranked}")
    return top1, top3, len(cases)


def measure(meaning: Meaning, misses: bool = False) -> dict[str, tuple[int, int, int]]:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        plans = [("keywords (starter)", True, False, "relevance_cases.tsv"),
                 ("paraphrases (starter)", True, False, "relevance_paraphrases.tsv"),
                 ("telecom on top of starter", True, True, "relevance_telecom.tsv"),
                 ("telecom alone", False, True, "relevance_telecom.tsv")]
        for n, (label, starter, telecom, cases) in enumerate(plans):
            index = open_index(base / str(n), meaning, starter, telecom)
            out[label] = rates(index, load(cases), label, misses)
            index.close()
    return out


def main() -> None:
    meaning = Meaning(enabled="--words-only" not in sys.argv)
    print("ranking by", "words only" if not meaning.available else f"words + {meaning.name}")
    for label, (top1, top3, n) in measure(meaning, "--misses" in sys.argv).items():
        print(f"{label:28} {n:3} queries: "
              f"top-1 {100 * top1 / n:3.0f}%  top-3 {100 * top3 / n:3.0f}%")


if __name__ == "__main__":
    main()
