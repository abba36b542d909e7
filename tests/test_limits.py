"""Limits a real sheet never meets, so one oversized input cannot slow or swamp
everyone: entry size, proposals waiting per person, spreadsheet size and rows,
and reports that read a page, not the whole sheet."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile

import pytest
from openpyxl import Workbook

from kb import proposals as P
from kb.entry import MAX_ENTRY_BYTES
from kb.spreadsheet import MAX_ROWS, SpreadsheetError, import_sheet, read_rows
from kb.users import get_user
from kb.views import reports
from tests.conftest import TARA, csrf_from, entry_text, post_form

BIG = "Word " * (MAX_ENTRY_BYTES // 5 + 10)  # just over the limit


# -- entry size ----------------------------------------------------------------------


def test_an_oversized_entry_is_refused_on_every_write_path(app, client, trainer, tmp_path):
    svc = app.extensions["kb"]
    head = svc.store.head()
    # the trainer's edit form
    page = trainer.get("/e/refund-status/edit").get_data(as_text=True)
    base = re.search(r'name="base_version" value="([^"]+)"', page).group(1)
    edit = trainer.post("/e/refund-status/edit", data={
        "csrf_token": csrf_from(page), "base_version": base, "reason": "paste",
        "title": "Refund status", "answer": BIG, "status": "published"})
    assert edit.status_code == 200 and "an entry is at most 64 KB" in edit.get_data(as_text=True)
    # the API, as fields and as a whole file
    put = trainer.put("/api/entries/refund-status", json={
        "base_version": base, "answer": BIG, "reason": "paste"})
    assert put.status_code in (400, 422) and "at most 64 KB" in put.get_json()["message"]
    whole = trainer.put("/api/entries/new-one", json={
        "base_version": None, "markdown": entry_text("New one", BIG), "reason": "paste"})
    assert whole.status_code in (400, 422) and "at most 64 KB" in whole.get_json()["message"]
    # a new entry as fields (it is given an owner and review date before it is saved)
    new = trainer.put("/api/entries/new-fields", json={
        "base_version": None, "title": "New fields", "answer": BIG, "reason": "paste"})
    assert new.status_code in (400, 422) and "at most 64 KB" in new.get_json()["message"]
    # a proposal, from the API and from the form
    proposal = client.post("/api/proposals", json={"title": "Huge", "answer": BIG,
                                                    "reason": "paste"})
    assert proposal.status_code == 422 and "at most 64 KB" in proposal.get_json()["message"]
    form = post_form(client, "/propose", {"title": "Huge", "answer": BIG, "reason": "paste"})
    assert "at most 64 KB" in form.get_data(as_text=True)
    # a spreadsheet row
    sheet_file = tmp_path / "big.csv"
    with open(sheet_file, "w", newline="") as handle:
        # each cell under 20,000 characters, the two together over 64 KB
        csv.writer(handle).writerows([["Complaint", "Answer", "Phone"],
                                      ["Huge", "€ " * 9_000, "€ " * 9_000],
                                      ["Small", "Fine.", ""]])
    report = import_sheet(svc.sheet, sheet_file, author=TARA, message="import")
    assert report.created == ["small"]
    assert "at most 64 KB" in report.skipped[0].reason
    # nothing of it reached the content, and nothing waits for review
    assert svc.store.history()[0].message == "import" and svc.store.head() != head
    assert svc.store.read("huge.md") is None and svc.store.read("new-one.md") is None
    assert P.queue(app.extensions["kb_db"]) == []


def test_an_oversized_file_pushed_from_outside_is_named_and_left_out(app, client):
    svc = app.extensions["kb"]
    # written below the sheet's checks, as a git push would
    svc.store.write({"pasted.md": entry_text("Pasted twice", "zanzibar " + BIG)},
                    message="outside", author=TARA)
    html = client.get("/").get_data(as_text=True)
    assert "pasted.md" in html and "an entry is at most 64 KB" in html
    assert client.get("/api/search?q=zanzibar").get_json()["total"] == 0
    assert client.get("/api/search?q=refund").get_json()["total"] >= 1


# -- proposals waiting per person ----------------------------------------------------


def test_one_person_has_at_most_20_proposals_waiting(app, client):
    db, sheet = app.extensions["kb_db"], app.extensions["kb"].sheet
    alice = get_user(db, "alice")
    for n in range(P.MAX_PENDING):
        P.create(db, sheet, alice, f"idea-{n}", entry_text(f"Idea {n}"), "r", None, True)
    refused = client.post("/api/proposals", json={"title": "One more", "answer": "A",
                                                   "reason": "r"})
    assert refused.status_code == 422
    assert "20 proposals waiting for review" in refused.get_json()["message"]
    # someone else still may; and once one is reviewed, so may she
    tara = get_user(db, "tara")
    P.create(db, sheet, tara, "tara-idea", entry_text("Tara idea"), "r", None, True)
    first = P.by_author(db, alice.id)[-1]
    P.reject(db, first.id, tara, "not needed")
    assert client.post("/api/proposals", json={"title": "One more", "answer": "A",
                                               "reason": "r"}).status_code == 201


# -- spreadsheets ----------------------------------------------------------------------


def _small_xlsx() -> bytes:
    book = Workbook()
    book.active.append(["Complaint", "Answer"])
    book.active.append(["Late parcel", "It is on its way."])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_an_xlsx_that_unpacks_to_too_much_is_refused_before_it_is_opened(tmp_path):
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(_small_xlsx())
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/padding.bin", bytes(51 * 1024 * 1024))
    assert path.stat().st_size < 1024 * 1024  # small on disk

    with pytest.raises(SpreadsheetError, match=r"bomb.xlsx unpacks to 51 MB; the limit is 50 MB"):
        read_rows(path)


def test_sheets_with_too_many_rows_are_refused(tmp_path):
    rows = [["Complaint", "Answer"]] + [[f"Complaint {n}", "Answer"] for n in range(MAX_ROWS + 20)]
    path = tmp_path / "long.csv"
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.raises(SpreadsheetError, match="long.csv has more than 20,000 rows"):
        read_rows(path)
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    for row in rows:
        sheet.append(row)
    book.save(tmp_path / "long.xlsx")
    with pytest.raises(SpreadsheetError, match="long.xlsx has more than 20,000 rows"):
        read_rows(tmp_path / "long.xlsx")
    # the limit itself is fine
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows[:MAX_ROWS + 1])
    assert len(read_rows(path)[1]) == MAX_ROWS
    # one row over, just under the table's own cap (header search rows): still refused
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows[:MAX_ROWS + 2])
    with pytest.raises(SpreadsheetError, match="more than 20,000 rows"):
        read_rows(path)


# -- reports a page at a time -------------------------------------------------------------


def _overdue_sheet(app, count: int) -> None:
    long_ago = dt.date.today() - dt.timedelta(days=400)
    app.extensions["kb"].sheet.write({
        f"old-{n:03}.md": entry_text(f"Old advice {n:03}", "Check it.", owner="tara",
                                     last_reviewed=(long_ago + dt.timedelta(days=n)).isoformat(),
                                     review_every_days=90)
        for n in range(count)}, message="old", author=TARA)


def test_review_due_is_paged_and_reads_only_its_page(app, trainer, monkeypatch):
    monkeypatch.setattr(reports, "REVIEW_PAGE", 4)
    _overdue_sheet(app, 10)
    sheet = app.extensions["kb"].sheet
    sheet._cache.clear()

    first = trainer.get("/review-due").get_data(as_text=True)

    assert "10 entries are overdue" in first and "Page 1 of 3" in first
    assert re.findall(r">Old advice (\d+)</a>", first) == ["000", "001", "002", "003"]
    assert len(sheet._cache) <= 4 + 1  # the page's entries (and the shared parts), not all
    last = trainer.get("/review-due?page=3").get_data(as_text=True)
    assert re.findall(r">Old advice (\d+)</a>", last) == ["008", "009"]
    assert "Page 3 of 3" in last and 'rel="prev"' in last and 'rel="next"' not in last
    mine = trainer.get("/review-due?mine=1&page=2").get_data(as_text=True)
    assert "10 entries are overdue" in mine and "page=3" in mine and "mine=1" in mine


def test_print_holds_at_most_the_limit_and_says_so(app, client, monkeypatch):
    monkeypatch.setattr(reports, "PRINT_LIMIT", 2)
    whole = client.get("/print").get_data(as_text=True)
    assert "This prints the first 2 of 3 entries." in whole
    assert len(re.findall(r'<article class="sheet-entry">', whole)) == 2
    one = client.get("/print?category=Returns and refunds").get_data(as_text=True)
    assert "Refund status" in one and "This prints the first" not in one
    tagged = client.get("/print?tag=colour").get_data(as_text=True)
    assert "Colour differs from the website" in tagged and "Refund status" not in tagged
