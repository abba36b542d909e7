"""What a gap is (kb.gaps), tested on recorded sequences of searches, opens and
copies, and then end to end through the pages on a real sheet and database."""

from __future__ import annotations

import datetime as dt
import re

from kb.gaps import Search, same_need_or_found, shares_a_word, unanswered
from kb.search.analysis import stems
from tests.conftest import TARA, entry_text
from tests.test_reports import _earlier, copy, search

T0 = dt.datetime(2026, 3, 2, 9, 0, 0)


class Agent:
    """Records one agent's searches the way the log holds them."""

    ids = iter(range(1, 10_000))

    def __init__(self, user: int = 1):
        self.user, self.log = user, []

    def search(self, seconds: float, query: str, results: int = 3,
               copied: str | None = None, opened: str | None = None,
               used_after: float = 10) -> Search:
        at = T0 + dt.timedelta(seconds=seconds)
        used = copied or opened
        s = Search(next(self.ids), self.user, query, frozenset(stems(query)), at, results,
                   used, at + dt.timedelta(seconds=used_after) if used else None)
        self.log.append(s)
        return s


def gap_wordings(searches, same_need=shares_a_word) -> list[list[str]]:
    return [[s.query for s in chain] for chain in unanswered(searches, same_need)]


def test_copies_followed_by_the_next_customers_problem_are_answers():
    # the sequence that was reported as three gaps: each search ended in the right copy,
    # and the next one, within a minute, was the customer's next problem
    a = Agent()
    a.search(0, "box came smashed", copied="item-arrived-damaged")
    a.search(30, "charged twice", copied="double-charge")
    a.search(55, "f", results=0)  # a stray keystroke
    a.search(58, "where is my refund", copied="refund-status")
    a.search(61, "f", results=0)
    assert gap_wordings(a.log) == []


def test_a_copy_undone_by_searching_the_same_need_again():
    a = Agent()
    a.search(0, "refund not arrived", copied="wrong-colour")
    a.search(40, "refund still missing", results=0)  # same need, within a minute: no luck
    assert gap_wordings(a.log) == [["refund not arrived", "refund still missing"]]
    # ... and when the second wording found it, the need was answered after all
    b = Agent()
    b.search(0, "refund not arrived", copied="wrong-colour")
    b.search(40, "refund still missing", copied="refund-status")
    assert gap_wordings(b.log) == []


def test_a_copy_kept_for_more_than_a_minute_stands():
    a = Agent()
    a.search(0, "refund not arrived", copied="refund-status", used_after=5)
    a.search(5 + 61, "refund for another order", results=0)  # later: a new need
    assert gap_wordings(a.log) == [["refund for another order"]]


def test_refined_wordings_of_one_need_count_once_under_the_last():
    a = Agent()
    a.search(0, "gift vouchr", results=0)
    a.search(20, "gift voucher expired", results=2)
    a.search(70, "voucher out of date", results=2)
    assert gap_wordings(a.log) == [
        ["gift vouchr", "gift voucher expired", "voucher out of date"]]
    # refined into a search that was answered: the first wordings are no gap
    b = Agent()
    b.search(0, "gift vouchr", results=0)
    b.search(20, "gift voucher expired", opened="voucher-expired")
    assert gap_wordings(b.log) == []


def test_searching_again_after_two_minutes_is_another_need():
    a = Agent()
    a.search(0, "loyalty points missing", results=0)
    a.search(180, "loyalty points", copied="loyalty-points")
    assert gap_wordings(a.log) == [["loyalty points missing"]]


def test_an_entry_read_on_the_phone_answers_without_a_copy():
    a = Agent()
    a.search(0, "engineer never came", opened="missed-appointment")
    a.search(100, "meter reading wrong", opened="meter-reading")
    assert gap_wordings(a.log) == []


def test_a_search_that_led_nowhere_is_a_gap_and_strays_never_are():
    a = Agent()
    for at, junk in enumerate(["f", "?", "1", " k "]):
        a.search(at * 300, junk, results=0)
    a.search(2000, "parrot ate the parcel", results=0)
    a.search(2300, "tv", results=1)  # two letters: a real word
    assert gap_wordings(a.log) == [["parrot ate the parcel"], ["tv"]]


def test_agents_do_not_continue_each_others_searches():
    alice, tara = Agent(1), Agent(2)
    alice.search(0, "refund not arrived", results=3)
    tara.search(10, "refund still missing", copied="refund-status")
    assert gap_wordings(alice.log + tara.log) == [["refund not arrived"]]


def test_the_same_need_in_other_words_is_found_through_the_results():
    a = Agent()
    a.search(0, "where is my money", results=4)  # nothing used
    a.search(25, "refund still waiting", copied="refund-status")
    # no shared word: by words alone the first is a gap ...
    assert gap_wordings(a.log) == [["where is my money"]]
    # ... but the entry copied next was among its top results: the same need
    tops = {"where is my money": ["refund-status", "wrong-colour"]}
    same = same_need_or_found(lambda q: tops.get(q, []))
    assert gap_wordings(a.log, same) == []
    other = same_need_or_found(lambda q: ["wrong-colour"])
    assert gap_wordings(a.log, other) == [["where is my money"]]


# -- end to end: the report on a real sheet, log and index -------------------------------


def gap_rows(trainer) -> dict[str, int]:
    html = trainer.get("/gaps").get_data(as_text=True)
    rows = re.findall(r"<tr><td>(.*?)</td>\s*<td>(\d+)</td>", html, re.S)
    return {re.sub(r"<[^>]+>", "", cells).strip(): int(n) for cells, n in rows}


def test_the_report_counts_needs_not_keystrokes(client, trainer):
    for query, slug in [("box came smashed", "item-arrived-damaged"),
                        ("f", None), ("where is my refund", "refund-status")]:
        found = search(client, query)
        if slug:
            client.get(f"/e/{slug}?sid={found['search_id']}")
            copy(client, slug, found["search_id"])
    search(client, "parrot ate the parcel")  # the next need: found nothing
    assert gap_rows(trainer) == {"parrot ate the parcel": 1}


def test_a_gap_answered_since_says_so_instead_of_offering_to_write(app, client, trainer):
    search(client, "parrot ate the parcel")
    search(trainer, "voucher expired")
    html = trainer.get("/gaps").get_data(as_text=True)
    assert html.count('class="write"') == 2 and "Answered since" not in html
    _earlier(app, minutes=5)
    app.extensions["kb"].sheet.write(
        {"parrot-ate-parcel.md": entry_text("Parrot ate the parcel")}, message="new",
        author=TARA)
    html = trainer.get("/gaps").get_data(as_text=True)
    parrot = re.search(r"<tr><td><q>parrot ate the parcel</q>.*?</tr>", html, re.S).group(0)
    assert "Answered since" in parrot and "/e/parrot-ate-parcel" in parrot
    assert 'class="write"' not in parrot
    voucher = re.search(r"<tr><td><q>voucher expired</q>.*?</tr>", html, re.S).group(0)
    assert 'class="write"' in voucher  # nothing new answers this one


def test_a_copy_names_the_search_s_use_over_an_entry_only_opened(app, client):
    from kb.gaps import read_searches

    found = search(client, "money back please")
    client.get(f"/e/wrong-colour?sid={found['search_id']}")  # opened, not the one
    client.get(f"/e/refund-status?sid={found['search_id']}")
    copy(client, "refund-status", found["search_id"])
    since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=1)
    [row] = [s for s in read_searches(app.extensions["kb_db"], since)
             if s.id == found["search_id"]]
    assert row.used_slug == "refund-status"
