"""Recall on the 2,000-page comparison corpus: a query made of a page's own words
always finds that page, however common its words are in the sheet."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from recall_pages import build, pages_from, queries_for  # noqa: E402

GENERATORS = [p / "shared" / "corpora" / "complaint_pages.py"
              for p in (ROOT.parent, ROOT.parent.parent)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    generator = next((g for g in GENERATORS if g.exists()), None)
    if generator is None:
        pytest.skip("the comparison corpus generator (shared/corpora/complaint_pages.py) "
                    "is not beside this checkout")
    base = tmp_path_factory.mktemp("pages")
    pages = pages_from(generator, base)
    index = build(pages, base)
    yield pages, index
    index.close()


def test_every_query_of_a_pages_own_words_finds_that_page(corpus):
    pages, index = corpus
    slugs = {row["title"]: row["slug"] for row in index.browse()}
    assert len(slugs) == len(pages) == 2000
    empty, missed = [], []
    for text, i in queries_for(pages, 200):
        if not index.search(text, limit=10).hits:
            empty.append(text)
        if slugs[pages[i][0]] not in index.matching_slugs(text):
            missed.append(text)
    assert empty == [] and missed == []


def test_a_word_in_most_answers_still_ranks_the_page_that_has_it_in_the_title(corpus):
    pages, index = corpus
    hits = index.search("refund not received 0002").hits
    # the 80 pages of that title differ by number only; the meaning layer may put a
    # near twin first, never out of the top three
    assert "Refund not received 0002" in [h.title for h in hits[:3]]
