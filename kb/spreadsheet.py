"""Import and export of the sheet as a spreadsheet (CSV or XLSX).

Teams keep their old cheat sheets in Excel, so the import is forgiving about
the shape of the file (header names, delimiter, encoding) and strict about the
content: every row either becomes an entry or is reported with its row number
and the reason. All rows land in one commit, so one import is one step in the
history and can be looked at, or undone, as a whole.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from kb.checks import check_entry, rules_for
from kb.entry import (
    SLUG_RE,
    STATUSES,
    Entry,
    EntryError,
    parse_entry,
    serialize_entry,
    slugify,
)
from kb.errors import KbError
from kb.sheet import Sheet
from kb.store import Person, entry_path, slug_of

MAX_FILE_BYTES = 20 * 1024 * 1024
# An .xlsx is a zip: a small file can unpack to gigabytes. A real cheat sheet of
# 20,000 complaints with long answers unpacks to well under this.
MAX_UNPACKED_BYTES = 50 * 1024 * 1024
MAX_ROWS = 20_000
MAX_ANSWER_CHARS = 20_000
MAX_COMPLAINT_CHARS = 300
_HEADER_SEARCH_ROWS = 10  # a title or a note above the header row is common in old sheets

# canonical column -> accepted header names, most specific first
ALIASES: dict[str, tuple[str, ...]] = {
    "complaint": ("complaint", "issue", "problem", "question", "customer says", "situation",
                  "title", "topic"),
    "answer": ("answer", "response", "reply", "solution", "what to say", "email"),
    "tags": ("tags", "tag", "keywords", "labels"),
    "category": ("category", "section", "group", "type"),
    "phrasings": ("phrasings", "customer words", "also said as", "variants"),
    "phone": ("phone", "on the phone", "talking points"),
    # written by export_sheet, so that an export imports back without losing anything
    "status": ("status",),
    "owner": ("owner",),
    "last_reviewed": ("last reviewed", "reviewed"),
    "slug": ("slug",),
}
REQUIRED = ("complaint", "answer")
EXPORT_COLUMNS = ("Complaint", "Answer", "Phone", "Phrasings", "Tags", "Category", "Status",
                  "Owner", "Last reviewed", "Slug")
# What Excel leaves in a cell when it took text starting with "-" or "=" for a formula.
_EXCEL_ERRORS = frozenset({"#NAME?", "#VALUE!", "#REF!", "#DIV/0!", "#N/A", "#NUM!", "#NULL!"})
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# A CSV cell starting with one of these is run as a formula by spreadsheet programs
# (=HYPERLINK(...), =cmd|...); OWASP's advice is to write it with a leading quote.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class SpreadsheetError(KbError):
    """A file that cannot be imported at all; the message says what to do."""


@dataclass(frozen=True)
class Skipped:
    row: int
    reason: str


@dataclass(frozen=True)
class Flagged:
    """A row imported (or, with `strict`, refused) although `kb check` calls it an error."""
    row: int
    title: str
    problems: tuple[str, ...]


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # with replace: entries not in the file
    flagged: list[Flagged] = field(default_factory=list)  # new or changed, with check errors
    commit: str | None = None

    def summary(self) -> str:
        done = len(self.created) + len(self.updated) + self.unchanged
        removed = f", {len(self.removed)} removed" if self.removed else ""
        flagged = ""
        if self.flagged:
            flagged = (f" {len(self.flagged)} of them {'has' if len(self.flagged) == 1 else 'have'}"
                       " check errors, listed by row: fix them in kb or in the file (kb check "
                       "lists them until then).")
        return (
            f"Imported {done} row{'' if done == 1 else 's'}: {len(self.created)} new, "
            f"{len(self.updated)} updated, {self.unchanged} unchanged, "
            f"{len(self.skipped)} skipped{removed}.{flagged}"
        )

    def row_lines(self) -> list[str]:
        """Each skipped row and each check error, in row order."""
        lines = [(s.row, f"row {s.row}: {s.reason}") for s in self.skipped]
        lines += [(f.row, f"row {f.row} ({f.title[:60]}): check error: {problem}")
                  for f in self.flagged for problem in f.problems]
        return [line for _, line in sorted(lines, key=lambda pair: pair[0])]


class ImportRefused(SpreadsheetError):
    """Nothing was imported; `report` holds the rows that say why."""

    def __init__(self, message: str, report: ImportReport):
        super().__init__(message)
        self.report = report


Rows = list[tuple[int, dict[str, str]]]


# -- reading ------------------------------------------------------------------------


def _norm(name: str) -> str:
    return re.sub(r"[\W_]+", "", name.casefold())


_ALIAS_RANK = {_norm(a): (col, rank) for col, names in ALIASES.items()
               for rank, a in enumerate(names)}


def _map_headers(headers: list[str]) -> dict[str, int]:
    """canonical column -> index in the row; the most specific name wins a tie."""
    best: dict[str, tuple[int, int]] = {}
    for i, header in enumerate(headers):
        hit = _ALIAS_RANK.get(_norm(header))
        if hit is None:
            continue
        col, rank = hit
        if col not in best or rank < best[col][0]:
            best[col] = (rank, i)
    return {col: i for col, (_, i) in best.items()}


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _missing_columns_error(name: str, headers: list[str]) -> SpreadsheetError:
    found = _map_headers(headers)
    missing = [c for c in REQUIRED if c not in found]
    seen = ", ".join(f"'{h}'" for h in headers if h.strip())
    accepted = "; ".join(
        f"{c.capitalize()}: " + ", ".join(n.capitalize() for n in ALIASES[c]) for c in missing
    )
    what = " and ".join(c.capitalize() for c in missing)
    plural = "s" if len(missing) > 1 else ""
    return SpreadsheetError(
        f"No {what} column{plural} found in {name}. The header row has: {seen}. "
        f"Rename the column{plural} to one of the accepted names ({accepted})."
    )


def _table_rows(name: str, table: Iterable[list[str]]) -> tuple[list[str], Rows]:
    """Find the header row, then map every non-blank row below it to canonical columns.
    Row numbers count every row from 1, blank ones too, as the spreadsheet shows them."""
    headers: list[str] | None = None
    first_headers: list[str] | None = None
    columns: dict[str, int] = {}
    rows: Rows = []
    looked = 0
    for number, cells in enumerate(table, start=1):
        if not any(c.strip() for c in cells):
            continue  # a fully blank row says nothing
        if headers is None:
            looked += 1
            columns = _map_headers(cells)
            if all(c in columns for c in REQUIRED):
                headers = [c.strip() for c in cells]
                continue
            if first_headers is None:
                first_headers = cells
            if looked >= _HEADER_SEARCH_ROWS:
                break
            continue
        rows.append((number, {
            col: (cells[i] if i < len(cells) else "") for col, i in columns.items()
        }))
    if first_headers is None and headers is None:
        raise SpreadsheetError(
            f"{name} is empty. It needs a header row with a Complaint and an Answer column, "
            "then one row per complaint."
        )
    if headers is None:
        raise _missing_columns_error(name, [c.strip() for c in first_headers or []])
    if len(rows) > MAX_ROWS:  # the table's own cap leaves room for title rows above
        raise _too_many_rows(name)
    return headers, rows


def _formula_like(text: str) -> bool:
    # Quotes already in front count too, so "'=x" exports as "''=x" and every text
    # reads back exactly as it was written.
    return text.lstrip("'").startswith(_FORMULA_STARTS)


def neutralise_cell(text: str) -> str:
    """A CSV cell no spreadsheet program will run as a formula."""
    return "'" + text if _formula_like(text) else text


def restore_cell(text: str) -> str:
    """The text `neutralise_cell` was given."""
    return text[1:] if text.startswith("'") and _formula_like(text) else text


def _decode(raw: bytes, name: str) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")  # Excel's "Unicode text" export
    if b"\x00" in raw[:4096]:
        raise SpreadsheetError(
            f"{name} is not a CSV or XLSX file. Save it from your spreadsheet program "
            "as CSV (comma separated) or as an Excel workbook (.xlsx)."
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel on Windows saves "CSV" in the ANSI code page; cp1252 covers Western Europe.
        return raw.decode("cp1252", errors="replace")


def _csv_table(text: str, name: str, delimiter: str) -> list[list[str]]:
    try:
        table = []
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if len(table) >= MAX_ROWS + _HEADER_SEARCH_ROWS:
                raise _too_many_rows(name)
            table.append([restore_cell(c) for c in row])
        return table
    except csv.Error as exc:
        raise SpreadsheetError(
            f"{name} is not readable as CSV ({exc}). Open it in your spreadsheet program and "
            "save it again as CSV, or as .xlsx."
        ) from None


def _read_csv(raw: bytes, name: str) -> tuple[list[str], Rows]:
    text = _decode(raw, name)
    # A long answer must reach the row checks (and be reported), not stop the whole file.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FILE_BYTES))
    try:
        sniffed = csv.Sniffer().sniff(text[:65536], delimiters=",;\t").delimiter
    except csv.Error:
        sniffed = ","
    # The sniffer guesses; the header row decides: the delimiter that yields both
    # required columns is the right one.
    first_error: SpreadsheetError | None = None
    for delimiter in dict.fromkeys([sniffed, ",", ";", "\t"]):
        try:
            return _table_rows(name, _csv_table(text, name, delimiter))
        except SpreadsheetError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def _too_many_rows(name: str) -> SpreadsheetError:
    return SpreadsheetError(
        f"{name} has more than {MAX_ROWS:,} rows, the most one import takes. Split it into "
        "smaller files and import them one after the other.")


def _check_unpacked_size(path: Path, name: str) -> None:
    """Refuse a workbook that would unpack to more than MAX_UNPACKED_BYTES, before
    openpyxl opens it. The sizes come from the zip's directory, and reading a member
    never yields more than its stated size, so they cannot understate it."""
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a readable zip: openpyxl's error below says so
    if total > MAX_UNPACKED_BYTES:
        raise SpreadsheetError(
            f"{name} unpacks to {total / 1024 / 1024:,.0f} MB; the limit is "
            f"{MAX_UNPACKED_BYTES // 1024 // 1024} MB. Save only the sheet with the complaints "
            "(no pictures or other sheets), or split it into smaller files.")


def _read_xlsx(path: Path, name: str) -> tuple[list[str], Rows]:
    from openpyxl import load_workbook

    _check_unpacked_size(path, name)
    try:
        with warnings.catch_warnings():
            # Real workbooks carry features openpyxl only warns about (data validation...).
            warnings.simplefilter("ignore")
            workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise SpreadsheetError(
            f"{name} is not a readable Excel workbook ({type(exc).__name__}: {exc}). "
            "Open it in your spreadsheet program and save it again as .xlsx or as CSV."
        ) from None
    try:
        if not workbook.worksheets:
            raise SpreadsheetError(f"{name} has no worksheets.")
        sheet = workbook.worksheets[0]
        # Some programs write a wrong size into the file; read every row regardless.
        sheet.reset_dimensions()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = []
            for row in sheet.iter_rows(values_only=True):
                if len(table) >= MAX_ROWS + _HEADER_SEARCH_ROWS:
                    raise _too_many_rows(name)
                table.append([_cell_text(v) for v in row])
    except SpreadsheetError:
        raise
    except Exception as exc:
        raise SpreadsheetError(
            f"{name} could not be read ({type(exc).__name__}: {exc}). Save it again as .xlsx "
            "or as CSV."
        ) from None
    finally:
        workbook.close()  # read-only mode keeps the file open until closed
    return _table_rows(name, table)


def check_path(path: str | os.PathLike[str]) -> None:
    """Refuse at once a name that is not a file, before an import opens the sheet."""
    path = Path(path)
    if path.is_dir():
        raise SpreadsheetError(f"{path} is a folder. Name the CSV or XLSX file to import.")
    if not path.exists():
        where = "" if path.is_absolute() else f" (a relative name starts in {Path.cwd()})"
        raise SpreadsheetError(f"There is no file {path}. Check the name and the folder{where}.")


def read_rows(path: str | os.PathLike[str]) -> tuple[list[str], Rows]:
    """The header row and the non-blank rows below it of a CSV or XLSX file.

    Each row is (row number as the spreadsheet shows it, canonical column -> text),
    for the columns recognised from the header (see ALIASES)."""
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpreadsheetError(
                f"{name} is {size / 1024 / 1024:.1f} MB; the limit is "
                f"{MAX_FILE_BYTES // 1024 // 1024} MB. Split it into smaller files and "
                "import them one after the other."
            )
        with open(path, "rb") as handle:
            head = handle.read(8)
            if head.startswith(b"PK\x03\x04"):  # a zip: what an .xlsx really is
                return _read_xlsx(path, name)
            if head.startswith(b"\xd0\xcf\x11\xe0"):
                raise SpreadsheetError(
                    f"{name} is an old-style Excel file (.xls) or a password-protected "
                    "workbook. Open it in Excel or LibreOffice and save it as .xlsx "
                    "(without a password) or as CSV."
                )
            if path.suffix.lower() in (".xlsx", ".xlsm"):
                raise SpreadsheetError(
                    f"{name} is named like an Excel workbook but is not one. Save it again "
                    "from your spreadsheet program as .xlsx or as CSV."
                )
            raw = head + handle.read()
    except OSError as exc:
        raise SpreadsheetError(
            f"Cannot read {path}: {exc.strerror or exc}. Check the file name and that you "
            "may read it."
        ) from None
    return _read_csv(raw, name)


# -- importing ------------------------------------------------------------------------


def _title_key(title: str) -> str:
    return " ".join(title.casefold().split())


def _split(text: str, pattern: str) -> tuple[str, ...]:
    parts = (" ".join(p.split()) for p in re.split(pattern, text))
    return tuple(dict.fromkeys(p for p in parts if p))


def _block(text: str) -> str:
    """A multi-line cell: Windows line ends gone, outer blank space trimmed."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


class _RowProblem(Exception):
    """Why one row is skipped."""


def _checked_cells(cells: dict[str, str]) -> dict[str, str]:
    for col, value in cells.items():
        if value.strip() in _EXCEL_ERRORS:
            raise _RowProblem(
                f"the {col.replace('_', ' ')} cell shows the spreadsheet error "
                f"{value.strip()}: the text was turned into a formula (text starting with "
                "'-' or '=' does that in Excel). Fix the cell, or export to .xlsx and edit that."
            )
    title = " ".join(cells.get("complaint", "").split())
    answer = _block(cells.get("answer", ""))
    if not title and not answer:
        raise _RowProblem("the Complaint and Answer cells are empty")
    if not title:
        raise _RowProblem("the Complaint cell is empty")
    if not answer:
        raise _RowProblem(f"the Answer cell is empty (complaint '{title[:60]}')")
    if len(title) > MAX_COMPLAINT_CHARS:
        raise _RowProblem(
            f"the complaint is {len(title):,} characters; keep it under "
            f"{MAX_COMPLAINT_CHARS} and put the detail in the answer"
        )
    phone = _block(cells.get("phone", ""))
    for label, text in (("answer", answer), ("phone text", phone)):
        if len(text) > MAX_ANSWER_CHARS:
            raise _RowProblem(
                f"the {label} is {len(text):,} characters; the limit is {MAX_ANSWER_CHARS:,}"
            )
    return {**cells, "complaint": title, "answer": answer, "phone": phone}


def _optional_fields(cells: dict[str, str]) -> dict:
    """The fields a row sets besides title and answer; a blank cell sets nothing."""
    out: dict = {}
    if cells.get("phone"):
        out["phone"] = cells["phone"] + "\n"
    phrasings = _split(cells.get("phrasings", ""), r"[;|\r\n]+")
    if phrasings:
        out["phrasings"] = phrasings
    tags = _split(cells.get("tags", "").lower(), r"[,;]+")
    if tags:
        out["tags"] = tags
    if cells.get("category", "").strip():
        out["category"] = " ".join(cells["category"].split())
    status = cells.get("status", "").strip().lower()
    if status:
        if status not in STATUSES:
            raise _RowProblem(f"status '{status}' is not one of: {', '.join(STATUSES)}")
        out["status"] = status
    if cells.get("owner", "").strip():
        out["owner"] = cells["owner"].strip()
    reviewed = cells.get("last_reviewed", "").strip()
    if reviewed:
        try:
            out["last_reviewed"] = dt.date.fromisoformat(reviewed[:10])
        except ValueError:
            raise _RowProblem(
                f"last reviewed '{reviewed}' is not a date: write it as YYYY-MM-DD"
            ) from None
    return out


def _validated(entry: Entry) -> str:
    """The file text for `entry`, once it is known to read back as the same entry."""
    text = serialize_entry(entry)
    try:
        back = parse_entry(entry.slug, text)
    except EntryError as exc:
        raise _RowProblem(f"it would not make a valid entry: {exc}") from None
    if back.answer.strip() != entry.answer.strip() or back.phone.strip() != entry.phone.strip():
        raise _RowProblem(
            "the answer contains an '## On the phone' line; put the phone part in a Phone column"
        )
    return text


def import_sheet(
    sheet: Sheet,
    path: str | os.PathLike[str],
    *,
    author: Person,
    message: str,
    progress: Callable[[Iterable], Iterable] | None = None,
    replace_all: bool = False,
    strict: bool = False,
) -> ImportReport:
    """Create or update one entry per row, all in one commit.

    A row whose complaint is already in the sheet (same slug, or the same title
    ignoring case) updates that entry; cells left blank keep what the entry had.
    With `replace_all` the sheet becomes exactly the file: each entry is what its
    row says, and every entry the file does not name is deleted in the same
    commit (its history stays in git). A new or changed row that `kb check` would
    call an error is imported and listed in `flagged`; with `strict` it stops the
    whole import. Raises ImportRefused (nothing written) when no row can be
    imported or `strict` refuses, SpreadsheetError if the file cannot be read at
    all, StoreError (a ConflictError) if an entry was edited by someone else
    meanwhile."""
    name = Path(path).name
    _headers, rows = read_rows(path)
    if not rows:
        raise SpreadsheetError(
            f"{name} has a header row but no rows under it, so nothing was imported. Add "
            "one row per complaint below the header and import it again.")
    rules, known = rules_for(sheet), sheet.known_names()
    head = sheet.store.head()  # every version below is read at this commit
    entries, problems = sheet.entries(head)
    by_slug = {e.slug: e for e in entries}
    by_title: dict[str, Entry] = {}
    for e in entries:
        by_title.setdefault(_title_key(e.title), e)
    broken = {slug_of(p.path): p.message for p in problems}
    # "billing" in the file joins the sheet's "Billing" instead of starting a second one
    categories = {c.casefold(): c for c in (e.category for e in entries) if c}

    report = ImportReport()
    changes: dict[str, str | None] = {}
    expected: dict[str, str | None] = {}
    seen_title: dict[str, int] = {}
    seen_slug: dict[str, int] = {}
    for number, raw_cells in progress(rows) if progress else rows:
        try:
            cells = _checked_cells(raw_cells)
            title = cells["complaint"]
            fields = _optional_fields(cells)
            if "category" in fields:
                fields["category"] = categories.get(fields["category"].casefold(),
                                                    fields["category"])
            key = _title_key(title)
            if key in seen_title:
                raise _RowProblem(f"the same complaint as row {seen_title[key]} ('{title[:60]}')")
            given_slug = cells.get("slug", "").strip().lower()
            given_slug = given_slug if SLUG_RE.match(given_slug) else ""
            # A complaint with no Latin letters or digits slugifies to the fallback
            # "entry"; matching on that would merge unrelated complaints.
            own_slug = slugify(title) if re.search(r"[a-z0-9]", title.lower()) else ""
            # the export's Slug column first (the title may have been edited), then the
            # title, then the slug the title makes
            current = by_slug.get(given_slug) or by_title.get(key) or by_slug.get(own_slug)
            slug = current.slug if current else (given_slug or own_slug)
            if current is None and slug in broken and not replace_all:
                raise _RowProblem(
                    f"it would replace {entry_path(slug)}, which cannot be read "
                    f"({broken[slug]}); fix or delete that file first"
                )
            if not slug:
                slug = _free_slug("entry", set(by_slug) | set(broken) | set(seen_slug))
            if slug in seen_slug:
                raise _RowProblem(
                    f"the same complaint as row {seen_slug[slug]}: both would be the entry "
                    f"'{slug}'"
                )
            base = current or Entry(slug=slug, title=title, answer="", status="published")
            if replace_all and current is not None:
                # what the row says, nothing left over; fields a spreadsheet cannot hold stay
                base = replace(current, phone="", phrasings=(), tags=(), category="",
                               status="published", owner="", last_reviewed=None)
            entry = replace(base, title=title, answer=cells["answer"] + "\n", **fields)
            text = _validated(entry)
        except _RowProblem as problem:
            report.skipped.append(Skipped(number, str(problem)))
            continue
        seen_title[key] = seen_slug[slug] = number
        if current is not None and text == serialize_entry(current):
            report.unchanged += 1
            continue
        errors = _check_errors(entry, rules, known)
        if errors:
            report.flagged.append(Flagged(number, title, errors))
        path_ = entry_path(slug)
        changes[path_] = text
        # Someone saving one of these entries during the import wins; the import stops.
        expected[path_] = current.version if current else sheet.store.version_of(path_, head)
        (report.updated if current else report.created).append(slug)
    if not seen_slug:
        raise ImportRefused(
            f"No row of {name} could be imported, so the sheet was left as it is. Fix the "
            "rows listed and import the file again.", report)
    if strict and report.flagged:
        count = len(report.flagged)
        raise ImportRefused(
            f"{count} row{'' if count == 1 else 's'} of {name} {'has' if count == 1 else 'have'}"
            " check errors (listed by row), so nothing was imported. Fix them and import "
            "again, or import without --strict and fix them in kb.", report)
    if replace_all:
        for gone in sorted((set(by_slug) | set(broken)) - set(seen_slug)):
            changes[entry_path(gone)] = None
            expected[entry_path(gone)] = sheet.store.version_of(entry_path(gone), head)
            report.removed.append(gone)
    if changes:
        report.commit = sheet.write(changes, message=message, author=author, expected=expected)
    return report


def _check_errors(entry: Entry, rules, known: set[str] | None) -> tuple[str, ...]:
    """What `kb check` would call an error in this entry, one line each (retired
    entries are not checked, as there)."""
    if entry.status == "retired":
        return ()
    return tuple(f.describe() for f in check_entry(entry, rules, known, errors_only=True))


def _free_slug(stem: str, taken: set[str]) -> str:
    n, slug = 1, stem
    while slug in taken:
        n += 1
        slug = f"{stem}-{n}"
    return slug


# -- exporting ------------------------------------------------------------------------


def _export_row(entry: Entry) -> list:
    return [
        entry.title, entry.answer.strip(), entry.phone.strip(), "; ".join(entry.phrasings),
        ", ".join(entry.tags), entry.category, entry.status, entry.owner,
        entry.last_reviewed, entry.slug,
    ]


def _write_csv(handle, rows: list[list]) -> None:
    # Excel reads a UTF-8 file without a byte-order mark as the local code page,
    # which garbles accents; the mark costs nothing to other readers.
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    writer = csv.writer(text)
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([v.isoformat() if isinstance(v, dt.date)
                         else neutralise_cell(v) if isinstance(v, str) else v for v in row])
    text.flush()
    text.detach()


def _write_xlsx(handle, rows: list[list]) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font

    # Write-only mode streams rows out: a 10,000-entry sheet in seconds, not minutes.
    workbook = Workbook(write_only=True)
    ws = workbook.create_sheet("Cheat sheet")
    widths = (40, 80, 60, 40, 24, 24, 11, 16, 13, 30)
    for letter, width in zip("ABCDEFGHIJ", widths, strict=True):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "B2"
    bold, wrap = Font(bold=True), Alignment(wrap_text=True, vertical="top")

    def cell(value, **style):
        if isinstance(value, str):
            value = _CONTROL_CHARS.sub("", value)
        out = WriteOnlyCell(ws, value=value)
        if isinstance(value, str):
            out.data_type = "s"  # text starting with "=" stays text, not a formula
        elif isinstance(value, dt.date):
            out.number_format = "yyyy-mm-dd"
        for name, spec in style.items():
            setattr(out, name, spec)
        return out

    ws.append([cell(name, font=bold) for name in EXPORT_COLUMNS])
    for values in rows:
        ws.append([cell(v, alignment=wrap) if v is not None else None for v in values])
    workbook.save(handle)


def export_sheet(sheet: Sheet, path: str | os.PathLike[str]) -> int:
    """Write every readable entry to `path`: XLSX if it ends in .xlsx, else CSV.
    Returns the number of entries written."""
    path = Path(path)
    entries, _problems = sheet.entries()
    rows = [_export_row(e) for e in entries]
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so a failed export never leaves half a file.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if path.suffix.lower() == ".xlsx":
                _write_xlsx(handle, rows)
            else:
                _write_csv(handle, rows)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; an export is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(rows)


__all__ = ["Flagged", "ImportRefused", "ImportReport", "Skipped", "SpreadsheetError",
           "check_path", "export_sheet", "import_sheet", "read_rows"]
