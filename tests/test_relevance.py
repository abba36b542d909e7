"""Customers' own words against the sheet: the right entry first, or in the top 3.

relevance_cases.tsv (query, expected slug): typos, plurals and paraphrases on the
starter sheet. relevance_paraphrases.tsv: queries sharing no stemmed word with the
right entry's title and phrasings. relevance_telecom.tsv: a telecom team's sheet
(telecom_sheet.csv) imported on top of the starter sheet and on an empty instance.
`python scripts/relevance.py [--words-only]` prints the rates; the thresholds
below sit a little under what search reaches (README, "Relevance").
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


# (top-1, top-3) the sets must reach, in per cent
THRESHOLDS = {
    "keywords (starter)": (88, 98),
    "paraphrases (starter)": (46, 77),
    "telecom on top of starter": (65, 82),
    "telecom alone": (74, 91),
}


@pytest.fixture(scope="module")
def rates():
    from kb.meaning import shared
    from scripts.relevance import measure

    assert shared().available, shared().error
    return measure(shared())


@pytest.mark.parametrize("label", list(THRESHOLDS))
def test_relevance_set_reaches_its_threshold(rates, label):
    top1, top3, n = rates[label]
    want1, want3 = THRESHOLDS[label]
    assert 100 * top1 / n >= want1 and 100 * top3 / n >= want3, \
        f"{label}: top-1 {top1}/{n}, top-3 {top3}/{n}"


def test_paraphrases_share_no_stemmed_word_with_the_entry():
    from kb.entry import parse_entry
    from kb.search import stems

    with (CASES_FILE.parent / "relevance_paraphrases.tsv").open(encoding="utf-8") as handle:
        paraphrases = list(csv.DictReader(handle, delimiter="\t"))
    assert len(paraphrases) >= 60
    entries = {}
    for path in (CASES_FILE.parent.parent / "entries").glob("*.md"):
        entry = parse_entry(path.stem, path.read_text(encoding="utf-8"))
        entries[entry.slug] = set(stems(" ".join([entry.title, *entry.phrasings])))
    for row in paraphrases:
        assert not set(stems(row["query"])) & entries[row["slug"]], row["query"]


def test_a_short_limit_returns_the_true_top_results(starter_index):
    """Asking for 3 results gives the first 3 of the full ranking: no top hit is
    skipped by a collector shortcut."""
    queries = [q for q, _ in CASES] + ["parcel not here yet", "refnd not recieved"]
    for query in queries:
        short = [h.slug for h in starter_index.search(query, limit=3).hits]
        full = [h.slug for h in starter_index.search(query, limit=100).hits][:3]
        assert short == full, query
