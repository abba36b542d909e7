"""Gaps, usage, review dates, the printable sheet, exports and the OpenAPI document,
fed by real searches, views and copies through the HTTP API and pages."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import time

from tests.conftest import TARA, entry_text


def search(client, q: str) -> dict:
    return client.get("/api/search", query_string={"q": q, "typing": "1"}).get_json()


def copy(client, slug: str, search_id=None) -> None:
    version = client.get(f"/api/entries/{slug}").get_json()["version"]
    response = client.post("/api/events", json={"kind": "copy", "slug": slug, "version": version,
                                                "search_id": search_id})
    assert response.status_code == 201


def _earlier(app, minutes: int) -> None:
    """Move every logged search and event back in time, as if it happened earlier."""
    from sqlalchemy import select

    from kb.db import Event, SearchLog

    db = app.extensions["kb_db"]
    db.usage_log.flush()  # written in batches: write the batch first
    with db.session() as s:
        for table in (SearchLog, Event):  # in Python: SQLite keeps datetimes as text
            for row in s.scalars(select(table)):
                row.at -= dt.timedelta(minutes=minutes)
        s.commit()


def test_gaps_list_searches_that_found_nothing_or_led_nowhere(client, trainer, app):
    # typed letter by letter, as the live search does: one logged search, not six
    for end in range(3, len("gift vouchers") + 1):
        search(client, "gift vouchers"[:end])
    search(client, "gift voucher")  # trimmed back at once: still the same search
    search(trainer, "gift voucher")  # same words after stemming: grouped with it
    search(client, "vouchers for gifts")
    led_somewhere = search(client, "box smashed")
    client.get(f"/e/item-arrived-damaged?sid={led_somewhere['search_id']}")
    copy(client, "item-arrived-damaged", led_somewhere["search_id"])
    _earlier(app, minutes=2)  # the copy was kept: no other search within a minute
    nowhere = search(client, "refund")  # results, but nothing copied
    assert nowhere["total"] > 0
    html = trainer.get("/gaps").get_data(as_text=True)
    rows = re.findall(r"<tr><td>(.*?)</td>\s*<td>(\d+)</td><td>(\d+)</td>", html, re.S)
    table = {re.sub(r"<[^>]+>", "", cells).strip(): (int(n), int(z)) for cells, n, z in rows}
    gift = next(k for k in table if "gift voucher" in k)
    # two needs: the client's two wordings of one need (refined, never found) count once
    assert table[gift] == (2, 2)
    assert "vouchers for gifts" in gift
    assert any("refund" in k for k in table)
    assert not any("box smashed" in k for k in table)
    assert "/propose?phrasing=vouchers" in html  # the last wording of the need


def test_a_search_counts_once_and_is_answered_only_when_the_copy_was_kept(client, trainer,
                                                                         app):
    gone = search(client, "voucher expired")  # a need nobody answered
    wrong = search(client, "where is my money")
    client.get(f"/e/wrong-colour?sid={wrong['search_id']}")
    copy(client, "wrong-colour", wrong["search_id"])  # the wrong entry copied ...
    right = search(client, "refund still waiting")  # ... so another search at once
    client.get(f"/?q={right['query']}")  # back on the search page: not a new search
    client.get(f"/?q={right['query']}")
    client.get(f"/e/refund-status?sid={right['search_id']}")
    copy(client, "refund-status", right["search_id"])  # kept: nothing searched after it
    html = trainer.get("/gaps").get_data(as_text=True)
    rows = re.findall(r"<tr><td>(.*?)</td>\s*<td>(\d+)</td>", html, re.S)
    table = {re.sub(r"<[^>]+>", "", cells).strip(): int(n) for cells, n in rows}
    # the wrong copy was undone by a search for the same need (the entry copied next was
    # among its results) that was answered: the need was met, so no gap
    assert table == {"voucher expired": 1}
    from kb.gaps import answered

    since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=1)
    assert gone["search_id"] not in answered(app.extensions["kb_db"], since)
    assert {wrong["search_id"], right["search_id"]} <= answered(app.extensions["kb_db"], since)


def test_gap_link_prefills_a_new_entry(trainer):
    search(trainer, "parrot ate the parcel")
    html = trainer.get("/gaps").get_data(as_text=True)
    link = re.search(r'href="(/propose\?phrasing=[^"]+)"', html).group(1)
    form = trainer.get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert "parrot ate the parcel" in form


def backdate_sheet(app, days: int) -> None:
    """Give the content repository a first commit `days` old holding today's sheet, as
    if the sheet had been in use that long (git itself, with a chosen date)."""
    store = app.extensions["kb"].sheet.store
    env = {**os.environ, "GIT_COMMITTER_DATE": f"@{int(time.time()) - days * 86400} +0000",
           "GIT_AUTHOR_DATE": f"@{int(time.time()) - days * 86400} +0000",
           "GIT_AUTHOR_NAME": "Tara Trainer", "GIT_AUTHOR_EMAIL": "tara@example.com",
           "GIT_COMMITTER_NAME": "Tara Trainer", "GIT_COMMITTER_EMAIL": "tara@example.com"}

    def git(*args: str) -> str:
        return subprocess.run(["git", "--git-dir", str(store.path), *args], env=env,
                              check=True, capture_output=True, text=True).stdout.strip()

    old = git("commit-tree", "main^{tree}", "-m", "The sheet as it was")
    git("update-ref", "refs/heads/main", old)


def test_usage_counts_views_and_copies_per_entry_and_version(client, trainer, app):
    backdate_sheet(app, days=120)
    found = search(client, "where is my money")
    client.get(f"/e/refund-status?sid={found['search_id']}")
    copy(client, "refund-status", found["search_id"])
    copy(client, "refund-status")
    sheet = app.extensions["kb"].sheet
    text = sheet.store.read("refund-status.md").text.replace("was sent", "went out")
    sheet.write({"refund-status.md": text}, message="wording", author=TARA)
    client.get("/e/refund-status")
    copy(client, "refund-status")
    html = trainer.get("/usage").get_data(as_text=True)
    row = re.search(r'<tr data-slug="refund-status">(.*?)</tr>', html, re.S).group(1)
    cells = re.findall(r"<td(?: class=\"copies90\")?>(\d+)</td>", row)
    assert cells[:4] == ["2", "3", "2", "3"]  # views 90d, copies 90d, views, copies
    assert len(re.findall(r"\d+ views, \d+ copies", row)) == 2  # two versions
    # each version named by when and by whom it was written, not by a hash
    today = dt.date.today().isoformat()
    labels = re.findall(r"<a [^>]*>([^<]*)</a>: \d+ views", row)
    assert len(labels) == 2 and all("Tara Trainer" in label for label in labels), labels
    assert sum(today in label for label in labels) == 1, labels  # the new one: today
    assert not any(re.search(r"\b[0-9a-f]{7}\b", label) for label in labels), labels
    unused = re.search(r'id="unused">(.*?)</details>', html, re.S).group(1)
    assert "Colour differs" in unused and "Refund status" not in unused


def test_an_entry_written_minutes_ago_is_no_candidate_to_retire(trainer, app):
    backdate_sheet(app, days=120)
    sheet = app.extensions["kb"].sheet
    sheet.write({"lost-voucher.md": entry_text("Lost voucher")}, message="new", author=TARA)
    html = trainer.get("/usage").get_data(as_text=True)
    unused = re.search(r'id="unused">(.*?)</details>', html, re.S).group(1)
    assert "Colour differs" in unused  # on the sheet 120 days, never used
    assert "Lost voucher" not in unused  # on the sheet minutes: no window to judge by
    assert "Lost voucher" in html  # still listed with its figures


def test_a_young_sheet_has_no_candidates_to_retire(trainer):
    html = trainer.get("/usage").get_data(as_text=True)
    assert 'id="unused"' not in html


def test_search_log_marks_what_was_opened_and_copied(client, app):
    from kb.db import SearchLog

    found = search(client, "shade is off")
    client.get(f"/e/wrong-colour?sid={found['search_id']}")
    copy(client, "wrong-colour", found["search_id"])
    app.extensions["kb_db"].usage_log.flush()  # written in batches: write the batch now
    with app.extensions["kb_db"].session() as s:
        row = s.get(SearchLog, found["search_id"])
        assert (row.query, row.opened_slug, row.copied) == ("shade is off", "wrong-colour", True)
        assert row.result_count >= 1


def test_overdue_entries_are_listed_for_owners_and_marked_for_agents(client, trainer, app):
    long_ago = (dt.date.today() - dt.timedelta(days=400)).isoformat()
    app.extensions["kb"].sheet.write({
        "old-advice.md": entry_text("Old advice", "Zanzibar shipping rules.", owner="tara",
                                    last_reviewed=long_ago, review_every_days=90),
    }, message="old", author=TARA)
    hit = search(client, "zanzibar")["results"][0]
    assert hit["review_due_since"] is not None  # marked, not hidden
    assert "review overdue" in client.get("/e/old-advice").get_data(as_text=True)
    page = trainer.get("/review-due?mine=1").get_data(as_text=True)
    assert "Old advice" in page and "1 entry is overdue" in page
    assert "Old advice" in client.get("/review-due").get_data(as_text=True)
    # mark reviewed: a commit in the history, and no longer overdue
    html = trainer.get("/review-due").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    response = trainer.post("/e/old-advice/reviewed", data={
        "csrf_token": token, "reason": "checked with the carrier"})
    assert response.status_code == 302
    history = app.extensions["kb"].store.history("old-advice.md")
    assert history[0].message == "Reviewed: checked with the carrier"
    assert history[0].author.name == "Tara Example"
    assert search(client, "zanzibar")["results"][0]["review_due_since"] is None
    assert ">Old advice</a>" not in trainer.get("/review-due").get_data(as_text=True)


def test_agents_cannot_mark_reviewed(client):
    html = client.get("/review-due").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
    assert client.post("/e/refund-status/reviewed", data={"csrf_token": token}).status_code == 403


def test_printable_sheet_of_all_or_one_category(client):
    html = client.get("/print").get_data(as_text=True)
    for title in ("Item arrived damaged", "Refund status", "Colour differs from the website"):
        assert title in html
    assert "On the phone" in html and "Email answer" in html and "print.css" in html
    one = client.get("/print?category=Returns and refunds").get_data(as_text=True)
    assert "Refund status" in one and "Item arrived damaged" not in one
    # the shared parts carry the company and the printing agent's name; the blanks
    # an agent fills per customer stay visible and marked
    assert "Thanks for calling Northwind Home, this is Alice Example." in one
    assert "{{ company_name }}" not in one and "{{ agent_name }}" not in one
    assert '<mark class="missing" data-name="customer_name">[Customer name]</mark>' in one
    assert '<mark class="missing" data-name="amount">[Amount]</mark>' in one


def test_openapi_document_describes_every_api_route(client, app):
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    documented = set(doc["paths"])
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            assert path in documented, path


def test_trainers_export_the_sheet_as_csv_and_xlsx(trainer, client):
    import csv
    import io

    import openpyxl

    response = trainer.get("/export.csv")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))  # BOM for Excel
    assert rows[0][:2] == ["Complaint", "Answer"]
    assert {r[0] for r in rows[1:]} == {"Item arrived damaged", "Refund status",
                                        "Colour differs from the website"}
    # phone points start with "-": a spreadsheet would take them for formulas
    assert all(r[2].startswith("'- ") for r in rows[1:])
    response = trainer.get("/export.xlsx")
    book = openpyxl.load_workbook(io.BytesIO(response.data), read_only=True)
    values = [row[0] for row in book.active.iter_rows(values_only=True)]
    book.close()
    assert "Refund status" in values
    assert client.get("/export.csv").status_code == 403


def test_gaps_group_similar_wordings_but_not_a_shared_common_word(client, trainer, admin):
    # one of each pair from another agent, and words one agent searches in a row share
    # none, so no search reads as the need before it searched again (kb.gaps)
    for text in ["assemble", "loyalty points", "gift wrap order"]:
        search(client, text)
    for text in ["someone to assemble it", "loyalty points missing", "order gift wrapping"]:
        search(trainer, text)
    search(admin, "orders")
    html = trainer.get("/gaps").get_data(as_text=True)
    rows = re.findall(r"<tr><td>(.*?)</td>\s*<td>(\d+)</td>", html, re.S)
    groups = {frozenset(re.findall(r"<q>(.*?)</q>", cells)): int(n) for cells, n in rows}
    assert groups == {
        frozenset({"assemble", "someone to assemble it"}): 2,
        frozenset({"loyalty points", "loyalty points missing"}): 2,
        frozenset({"gift wrap order", "order gift wrapping"}): 2,  # wrap, wrapping: one stem
        frozenset({"orders"}): 1,  # shares only "order" with the gift wrap group
    }


def test_the_page_names_the_search_its_keystrokes_continue(client):
    first = search(client, "box sm")["search_id"]
    # what another server process numbered: this one takes the page's word for it
    other = client.get("/api/search", query_string={"q": "parcel", "typing": "1"}).get_json()
    assert other["search_id"] != first
    again = client.get("/api/search", query_string={"q": "box smashed", "typing": "1",
                                                     "after": str(first)}).get_json()
    assert again["search_id"] == first
    junk = client.get("/api/search", query_string={"q": "box smashed", "after": "x1"})
    assert junk.status_code == 200  # a bad id is ignored, never an error
