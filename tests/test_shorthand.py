"""The team's shorthand: initials of the sheet's own phrases are understood, and
trainers see what kb worked out, add their own and drop what agents do not mean."""

from __future__ import annotations

import pytest

from kb.search import SearchIndex
from kb.search.shorthand import _initials, entry_terms
from kb.sheet import Sheet, parse_shorthand
from kb.store import ContentStore
from tests.conftest import TARA, csrf_from, entry_text

ENERGY = {
    "dd-up.md": entry_text(
        "Direct Debit amount went up", "Your monthly payment follows what you use.",
        category="Payments"),
    "psr.md": entry_text(
        "Wants to join the Priority Services Register", "We can add you to the register.",
        category="Extra Help"),
    "e7.md": entry_text(
        "Economy 7 readings look swapped", "We will check the day and night registers.",
        category="Meters"),
    "whd.md": entry_text(
        "Winter discount not received", "The scheme pays 150 pounds each winter.",
        tags="[warm home discount]", category="Extra Help"),
    "pf-1.md": entry_text(
        "Penalty fare issued with a valid ticket", "We will look at the ticket you held.",
        category="Fines"),
    "pf-2.md": entry_text(
        "Appeal against a penalty fare", "Send us the notice and we will review it.",
        category="Fines"),
    "late.md": entry_text(
        "Train was late and did not stop", "Claim for the delay on our website.",
        category="Delays"),
    "bill.md": entry_text(
        "Bill is higher than expected", "We will check your meter readings.",
        phrasings=["new occupier bill"], category="Billing"),
    "_sheet/greeting.md": "Hello,\n",
}


@pytest.fixture
def energy(tmp_path):
    store = ContentStore.create(tmp_path / "content", ENERGY, "Start", author=TARA)
    sheet = Sheet(store)
    ix = SearchIndex(tmp_path / "index", sheet)
    ix.open()
    sheet.after_commit = ix.catch_up
    yield sheet, ix
    ix.close()


def first(ix, query):
    hits = ix.search(query).hits
    return hits[0].slug if hits else None


def test_initials_of_the_sheets_names_find_their_entry(energy):
    _, ix = energy
    assert first(ix, "dd gone up") == "dd-up"
    assert first(ix, "psr") == "psr"
    assert first(ix, "join psr") == "psr"
    assert first(ix, "e7 wrong") == "e7"
    assert first(ix, "whd") == "whd"  # from a tag
    assert first(ix, "pf") in {"pf-1", "pf-2"}  # "penalty fare" recurs in two titles
    # shorthand is not a typo: never "corrected" to a word it looks like ("psr" -> "per")
    for query in ["psr", "whd", "dd gone up"]:
        assert ix.search(query).did_you_mean is None


def test_only_names_labels_and_recurring_words_make_shorthand():
    terms = entry_terms("Wants to join the Priority Services Register", [], [], "")
    assert "psr|priority services register|n" in terms
    assert not any(t.endswith("|n") and "wants" in t for t in terms)  # a first capital: no name
    # a title written in Title Case names nothing in particular
    assert not [t for t in entry_terms("Card Payment Declined At The Shop", [], [], "")
                if t.endswith("|n")]
    # little words do not start or end a run of recurring words ("did not", "train was")
    assert not [t for t in entry_terms("Train was late and did not stop", [], [], "")
                if t.split("|")[1] in {"did not", "train was", "was late"}]
    assert _initials(["Pay", "As", "You", "Go"]) == {"payg", "pg"}
    assert _initials(["Economy", "7"]) == {"e7"}


def test_common_words_are_never_read_as_shorthand(energy):
    sheet, ix = energy
    # "no" would be the initials of "new occupier" (a phrasing): the agent means "no"
    results = ix.search("no power")
    assert all("new occupier" not in (h.matched_phrasing or "") for h in results.hits)
    assert not [s for s in ix.derived_shorthand() if s.short in {"no", "so", "dn", "tw"}]


def test_a_trainer_adds_and_drops_shorthand(energy):
    sheet, ix = energy
    assert ix.matching_slugs("svt") == set()
    sheet.write({"_sheet/shorthand.txt": "svt = monthly payment\ndd =\n"},
                message="Our shorthand", author=TARA)
    assert first(ix, "svt") == "dd-up"  # added: "monthly payment" is in that answer
    assert ix.matching_slugs("dd") == set()  # dropped: no longer read as "direct debit"
    assert first(ix, "psr") == "psr"  # the rest still worked out


def test_shorthand_lines_are_read_and_checked():
    added, dropped, bad = parse_shorthand("# c\ndd = Direct  Debit\ncos =\nno equals\na b = x\n")
    assert added == {"dd": ["direct debit"]} and dropped == {"cos"}
    assert [b.split(":")[0] for b in bad] == ["line 4", "line 5"]


def test_the_shorthand_page_lists_drops_and_is_for_trainers(app, trainer, client):
    sheet = app.extensions["kb"].sheet
    sheet.write({"dd.md": ENERGY["dd-up.md"]}, message="Add", author=TARA)
    assert client.get("/sheet/shorthand").status_code == 403
    page = trainer.get("/sheet/shorthand").get_data(as_text=True)
    assert "<code>dd</code>" in page and "direct debit" in page
    assert "worked out from the sheet" in page
    agent_token = csrf_from(client.get("/").get_data(as_text=True))
    assert client.post("/sheet/shorthand/drop", data={"short": "dd",
                                                      "csrf_token": agent_token}
                       ).status_code == 403
    assert trainer.post("/sheet/shorthand/drop", data={"short": "dd"}).status_code == 400
    response = trainer.post("/sheet/shorthand/drop",
                            data={"short": "dd", "csrf_token": csrf_from(page)})
    assert response.status_code == 302
    assert "dd =" in sheet.store.read("_sheet/shorthand.txt").text
    [last] = sheet.store.history("_sheet/shorthand.txt", limit=1)
    assert "Drop the shorthand" in last.message
    assert app.extensions["kb"].index.matching_slugs("dd") == set()
    page = trainer.get("/sheet/shorthand").get_data(as_text=True)
    assert "dropped" in page
    # a line that cannot be read is refused with the reason, the text kept
    response = trainer.post("/sheet/shorthand", data={
        "csrf_token": csrf_from(page), "text": "no equals sign here\n", "reason": "x",
        "base_version": sheet.store.version_of("_sheet/shorthand.txt")})
    assert response.status_code == 422
    assert "no equals sign here" in response.get_data(as_text=True)


def test_the_starter_shorthand_file_reads_cleanly():
    from pathlib import Path

    from kb.parts import check_shorthand

    text = (Path(__file__).resolve().parent.parent / "entries/_sheet/shorthand.txt").read_text()
    assert check_shorthand(text) == [] and parse_shorthand(text)[2] == []
