"""Top-1 and top-3 rates of the relevance set (tests/relevance_cases.tsv) on the
starter sheet. Usage: python scripts/relevance.py [--misses]"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb.search import SearchIndex  # noqa: E402
from kb.sheet import Sheet  # noqa: E402
from kb.store import ContentStore  # noqa: E402
from tests.test_relevance import load_cases  # noqa: E402


def main() -> None:
    cases = load_cases()
    with tempfile.TemporaryDirectory() as tmp:
        store = ContentStore.open_or_create(Path(tmp) / "content", ROOT / "entries")
        index = SearchIndex(Path(tmp) / "index", Sheet(store))
        index.open()
        top1 = top3 = 0
        for query, slug in cases:
            ranked = [h.slug for h in index.search(query, limit=3).hits]
            top1 += bool(ranked) and ranked[0] == slug
            top3 += slug in ranked
            if "--misses" in sys.argv and (not ranked or ranked[0] != slug):
                print(f"{'TOP3' if slug in ranked else 'MISS'} {query!r}: want {slug}, "
                      f"got {ranked}")
        index.close()
    n = len(cases)
    print(f"{n} queries over {len({s for _, s in cases})} entries: "
          f"top-1 {top1}/{n} ({100 * top1 / n:.0f}%), top-3 {top3}/{n} ({100 * top3 / n:.0f}%)")


if __name__ == "__main__":
    main()
