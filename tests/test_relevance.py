"""Customers' own words against the starter sheet: the right entry must be in the top 3.

The cases live in relevance_cases.tsv (query, expected slug): typos, plurals,
paraphrases and queries sharing no word with the entry's title.
`python scripts/relevance.py` prints the top-1 and top-3 rates.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

CASES_FILE = Path(__file__).resolve().parent / "relevance_cases.tsv"


def load_cases() -> list[tuple[str, str]]:
    with CASES_FILE.open(encoding="utf-8") as handle:
        return [(row["query"], row["slug"]) for row in csv.DictReader(handle, delimiter="\t")]


CASES = load_cases()


def test_the_set_is_large_and_varied():
    assert len(CASES) >= 60
    assert len({slug for _, slug in CASES}) >= 30


def test_every_expected_entry_exists(starter_index):
    slugs = {row["slug"] for row in starter_index.browse()}
    assert {slug for _, slug in CASES} <= slugs


@pytest.mark.parametrize("query,slug", CASES, ids=[q for q, _ in CASES])
def test_right_entry_in_top_three(starter_index, query, slug):
    ranked = [h.slug for h in starter_index.search(query, limit=3).hits]
    assert slug in ranked, f"{query!r}: expected {slug}, got {ranked}"


def test_a_short_limit_returns_the_true_top_results(starter_index):
    """Asking for 3 results gives the first 3 of the full ranking: no top hit is
    skipped by a collector shortcut."""
    queries = [q for q, _ in CASES] + ["parcel not here yet", "refnd not recieved"]
    for query in queries:
        short = [h.slug for h in starter_index.search(query, limit=3).hits]
        full = [h.slug for h in starter_index.search(query, limit=100).hits][:3]
        assert short == full, query
