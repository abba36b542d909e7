"""Search: stemming, synonyms, typos, boosts, highlights, filters, freshness."""

from __future__ import annotations

import pytest

from kb.meaning import Meaning
from kb.search import SearchIndex
from kb.sheet import Sheet
from kb.store import ContentStore
from tests.conftest import ALICE, TARA, entry_text

WORDS_ONLY = Meaning(enabled=False)


def slugs(results) -> list[str]:
    return [h.slug for h in results.hits]


def test_stemming_matches_other_word_forms(index):
    assert slugs(index.search("cracks"))[0] == "item-arrived-damaged"
    assert slugs(index.search("refunds"))[0] == "refund-status"


def test_synonym_list_expands_the_query(index):
    # "money back" is only in the synonym list, never in the refund entry's words
    assert slugs(index.search("I want my money back"))[0] == "refund-status"
    # "broken" appears nowhere in the sheet; the synonym group maps it to damaged/smashed
    assert slugs(index.search("broken"))[0] == "item-arrived-damaged"


def test_editing_the_synonym_list_changes_search_at_once(index, sheet):
    # no word of the sheet matches yet (meaning alone may already bring the entry up)
    assert index.matching_slugs("busted") == set()
    synonyms = sheet.store.read("_sheet/synonyms.txt").text + "busted, damaged\n"
    sheet.write({"_sheet/synonyms.txt": synonyms}, message="Add busted", author=TARA)
    assert slugs(index.search("busted")) == ["item-arrived-damaged"]


def test_typo_is_corrected_and_reported(index):
    results = index.search("refnud")
    assert slugs(results)[0] == "refund-status"
    assert results.did_you_mean == "refund"
    assert index.search("refund").did_you_mean is None


def test_last_word_counts_as_prefix_while_typing(index):
    assert slugs(index.search("smas", typing=True)) == ["item-arrived-damaged"]
    # without the typing flag a short unknown word is corrected, not prefixed
    assert index.search("smas").did_you_mean != "smas"


def test_phrasings_and_title_weigh_more_than_body(store, sheet, tmp_path):
    sheet.write({
        "body-mention.md": entry_text("Parcel questions", "Ask if the parcel was smashed."),
        "phrasing-mention.md": entry_text("Courier trouble", "We will look.",
                                          phrasings=["parcel smashed"]),
    }, message="two entries", author=TARA)
    ix = SearchIndex(tmp_path / "ix2", sheet, WORDS_ONLY)  # the words' weights alone
    ix.open()
    ranked = slugs(ix.search("parcel smashed"))
    assert ranked.index("phrasing-mention") < ranked.index("body-mention")
    ix.close()


def test_highlighted_fragment_marks_the_matching_words(index):
    hit = index.search("box smashed").hits[0]
    assert "<mark>box</mark>" in hit.snippet and "<mark>smashed</mark>" in hit.snippet
    assert hit.matched_phrasing == "the box came smashed"


def test_snippet_escapes_entry_text(index, sheet):
    sheet.write({"xss.md": entry_text("Odd <b>title</b>", "Zebra <script>alert(1)</script>")},
                message="odd", author=TARA)
    hit = index.search("zebra").hits[0]
    assert "<script" not in hit.snippet and "&lt;script&gt;" in hit.snippet


def test_filter_by_tag_and_category(index, sheet, tmp_path):
    assert slugs(index.search("different", tag="colour")) == ["wrong-colour"]
    assert all(h.slug == "refund-status" for h in index.search("smashed", tag="refund").hits)
    words = SearchIndex(tmp_path / "words", sheet, WORDS_ONLY)
    words.open()
    assert words.search("smashed", tag="refund").hits == []
    words.close()
    assert slugs(index.search("", category="Returns and refunds")) == ["refund-status"]
    assert set(slugs(index.search("", category="Orders and delivery"))) == {
        "item-arrived-damaged", "wrong-colour"}


@pytest.mark.parametrize("query", [
    "", "   ", "AND", "OR NOT (", '"unclosed', "title:refund", "*", "??", "{{ x }}",
    "a" * 5000, "💥 🚚", "\x00\x01", "refund^99", "smashed~2", "-refund", "1234567",
])
def test_odd_queries_never_raise(index, query):
    results = index.search(query, typing=True)
    assert isinstance(results.hits, list)


def test_write_is_findable_when_the_write_returns(index, sheet):
    assert index.search("trampoline").hits == []
    sheet.write({"trampoline.md": entry_text("Trampoline squeaks", "Oil the springs.")},
                message="new", author=ALICE)
    assert slugs(index.search("trampoline")) == ["trampoline"]
    sheet.write({"trampoline.md": None}, message="gone", author=TARA)
    assert index.search("trampoline").hits == []


def test_retired_and_draft_entries_are_not_found(index, sheet):
    sheet.write({"ghost.md": entry_text("Ghost entry", "Gooseberry.", status="retired"),
                 "draft.md": entry_text("Draft entry", "Gooseberry.", status="draft")},
                message="hidden", author=TARA)
    assert index.search("gooseberry").hits == []


def test_index_records_commit_and_catches_up_without_rebuilding(tmp_path, store, sheet):
    ix = SearchIndex(tmp_path / "ix", sheet)
    assert ix.open() == "rebuilt"
    ix.close()
    # a change made while the app was down (say, a git push) ...
    store.write({"late.md": entry_text("Late parcel", "Xylophone delay.")},
                message="offline", author=TARA)
    ix = SearchIndex(tmp_path / "ix", Sheet(store))
    assert ix.open() == "caught up"
    assert slugs(ix.search("xylophone")) == ["late"]
    assert ix.commit == store.head()
    ix.close()
    ix = SearchIndex(tmp_path / "ix", Sheet(store))
    assert ix.open() == "current"
    ix.close()


def test_other_process_writes_are_seen_before_searching(tmp_path, store, index):
    # a second ContentStore on the same repository stands for another process
    other = Sheet(ContentStore(store.path))
    other.write({"quokka.md": entry_text("Quokka question", "Quokka answer.")},
                message="elsewhere", author=ALICE)
    assert slugs(index.search("quokka")) == ["quokka"]


def test_malformed_file_is_reported_and_the_rest_is_indexed(index, sheet):
    sheet.store.write({"broken.md": "---\ntitle: [oops\n---\nbody\n"}, message="bad", author=ALICE,
                      after_commit=sheet.after_commit)  # as a push would: the sheet refuses it
    assert "broken.md" in index.problems
    assert "YAML" in index.problems["broken.md"]
    assert slugs(index.search("smashed"))[0] == "item-arrived-damaged"
    sheet.write({"broken.md": entry_text("Fixed now", "Pelican.")}, message="fix", author=TARA)
    assert "broken.md" not in index.problems
    assert slugs(index.search("pelican")) == ["broken"]


# whoosh leaves the damaged table-of-contents file open when it refuses it
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_rebuild_recovers_from_a_damaged_index(tmp_path, store, sheet):
    ix = SearchIndex(tmp_path / "ix", sheet)
    ix.open()
    ix.close()
    for f in (tmp_path / "ix").glob("*.toc"):
        f.write_bytes(b"garbage")
    ix = SearchIndex(tmp_path / "ix", Sheet(store))
    assert ix.open() == "rebuilt"
    assert slugs(ix.search("smashed"))[0] == "item-arrived-damaged"
    ix.close()


def test_scores_equal_whoosh_own_bm25f_after_edits_and_deletes(sheet, tmp_path):
    """Search adds up BM25F per posting list itself; it must rank and score exactly
    as whoosh's own OR matcher does, also once edits leave deleted documents behind."""
    index = SearchIndex(tmp_path / "words", sheet, WORDS_ONLY)  # BM25F alone, no meaning
    index.open()
    sheet.after_commit = index.catch_up
    from dataclasses import replace

    from kb.search import _words

    entry = sheet.entry("refund-status")
    sheet.save_entry(replace(entry, answer="Refund sent, money back."), message="Edit",
                     author=TARA)
    sheet.write({"wrong-colour.md": None}, message="Remove", author=TARA)
    for text in ["box smashed money back", "refund", "cracked colour shade", "where is my money"]:
        got = {h.slug: h.score for h in index.search(text, limit=100).hits}
        with index._read_lock:  # the same query, scored by whoosh's own matcher
            searcher = index._searcher()
            words, _, prefix = index._correct(searcher, [t.text for t in _words(text)], False)
            query, _ = index._build_query(words, prefix, searcher.reader())
            expected = {h["slug"]: h.score for h in searcher.search(query, limit=None)}
        assert got.keys() == expected.keys() and got
        for slug, score in expected.items():
            assert got[slug] == pytest.approx(score, rel=1e-9)
    index.close()


def test_only_a_clear_match_is_confident(index):
    assert index.search("refund").confident
    assert index.search("box came smashed").hits[0].confident
    weak = index.search("order please")  # a common word shared by several entries
    assert weak.hits and not weak.confident
    assert not index.search("can you help me with my thing").confident
    assert index.search("box came smashed").to_dict()["confident"] is True


def test_stems_are_what_the_index_analyzer_makes():
    from kb.search import _stem, stems

    for text in ["The box came SMASHED, and it's wrapping-paper torn.", "U.S.A. no.123 3.5kg",
                 "café naïve — I'm 'quoted' *wild* a x 12", "stopped hopping wrapped", ""]:
        assert stems(text) == [t.text for t in _stem(text)]


def test_an_empty_sheet_is_searched_without_rebuilding_the_index(tmp_path):
    """With no entry at all, a search finds nothing and the index stays usable (it
    used to be taken for damaged and rebuilt at every search)."""
    store = ContentStore.create(tmp_path / "content", {"_sheet/greeting.md": "Hello,\n"},
                                "Start", author=TARA)
    ix = SearchIndex(tmp_path / "index", Sheet(store))
    ix.open()
    for query in ["refund", "box came smashed", "x"]:
        results = ix.search(query)
        assert results.hits == [] and not results.rebuilding
        assert ix.error is None
    ix.close()
