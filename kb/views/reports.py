"""Keeping the sheet good: gaps, usage, review dates, the printable sheet, exports."""

from __future__ import annotations

import datetime as dt
import functools
import tempfile
from dataclasses import replace
from pathlib import Path

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user

from kb import gaps as kb_gaps
from kb import outcomes, usage
from kb.auth import database, role_required, safe_next
from kb.compose import render_filled
from kb.entry import EntryError, review_due
from kb.history import entries_older_than, made_by, when
from kb.openapi import spec
from kb.services import services
from kb.store import ConflictError, entry_path
from kb.users import person_of

bp = Blueprint("reports", __name__)

REVIEW_PAGE = 100  # overdue entries per page of /review-due
PRINT_LIMIT = 500  # entries on one printed sheet (about 250 pages); pick a category for more


@bp.get("/gaps")
@role_required("trainer")
def gaps():
    days = request.args.get("days", "90")
    days_n = int(days) if days.isdigit() and 0 < int(days) <= 3650 else 90
    index, store = services().index, services().sheet.store

    @functools.lru_cache(maxsize=4096)  # both uses below ask for the same queries
    def top(query: str) -> list[str]:
        return [h.slug for h in index.search(query, limit=3).hits]

    found = kb_gaps.gaps(database(), days=days_n, same_need=kb_gaps.same_need_or_found(top))
    _mark_answered_since(found, top, store)
    return render_template("gaps.html", gaps=found, days=days_n,
                           totals=usage.search_counts(database()))


def _mark_answered_since(found: list, top, store) -> None:
    """A gap whose words now find first an entry written or changed after its last
    search was probably answered since: say which, instead of "Write an entry"."""
    firsts = {}
    for gap in found:
        slugs = top(gap.queries[0])
        if slugs:
            firsts[id(gap)] = slugs[0]
    versions = {slug: store.version_of(entry_path(slug)) for slug in set(firsts.values())}
    made = made_by(store, versions.values())
    for gap in found:
        slug = firsts.get(id(gap))
        revision = made.get(versions.get(slug) or "")
        if revision is not None and gap.last is not None and when(revision) > gap.last:
            gap.answered_by = slug


@bp.get("/usage")
@role_required("trainer")
def usage_report():
    entries, _ = services().sheet.entries()
    store = services().sheet.store
    published = [e for e in entries if e.published]
    recent = usage.usage(database(), days=90)
    ever = usage.usage(database())
    rows = []
    for e in published:
        r, a = recent.get(e.slug), ever.get(e.slug)
        bad90 = sum(outcomes.not_helped(c) for c in r.by_version.values()) if r else 0
        rows.append({
            "entry": e, "views90": r.views if r else 0, "copies90": r.copies if r else 0,
            "bad90": bad90,
            "rate90": bad90 / r.copies if r and r.copies else None,
            "views": a.views if a else 0, "copies": a.copies if a else 0,
            "last_used": a.last_used if a else None,
            "by_version": a.by_version if a else {},
        })
    rows.sort(key=lambda x: (-(x["copies90"] + x["views90"]), x["entry"].title.lower()))
    # only entries that were on the sheet the whole window can have gone unused in it
    old_enough = entries_older_than(store, usage_window_start())
    unused = [x for x in rows if x["views90"] + x["copies90"] == 0
              and entry_path(x["entry"].slug) in old_enough]
    made = made_by(store, {v for x in rows for v in x["by_version"]})
    # entries that help less since their last change: what changed is the first suspect
    rising = [(x, rise) for x in rows
              if (rise := outcomes.rose(x["entry"].slug, x["entry"].version, x["by_version"]))]
    # the most used entries agents in chat and SMS must still copy the email of
    no_chat = [x for x in rows if not x["entry"].chat and x["copies90"] + x["views90"]][:20]
    return render_template("usage.html", rows=rows, unused=unused, made=made, no_chat=no_chat,
                           rising=rising, not_helped=outcomes.not_helped)


def usage_window_start() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=90)


@bp.get("/review-due")
@role_required("agent")
def review_due_list():
    """Overdue entries, a page at a time, earliest first and grouped by owner; then
    those due within 30 days. Read from the search index, not from every file, so
    a sheet of any size answers at once."""
    svc = services()
    mine = request.args.get("mine") == "1"
    owners = (current_user.username, current_user.name) if mine else ()
    page = _page_number()
    today = dt.date.today()
    slugs, count = svc.index.due_between(None, today, owners=owners,
                                         offset=(page - 1) * REVIEW_PAGE, limit=REVIEW_PAGE)
    by_owner: dict[str, list] = {}
    for e in _entries(slugs):
        by_owner.setdefault(e.owner or "(no owner)", []).append(
            {"entry": e, "since": review_due(e).isoformat()})
    soon, soon_count = svc.index.due_between(today, today + dt.timedelta(days=31),
                                             owners=owners, limit=REVIEW_PAGE)
    return render_template("review_due.html", by_owner=by_owner, mine=mine, count=count,
                           upcoming=_entries(soon), upcoming_count=soon_count,
                           review_due=review_due, page=page,
                           pages=max(1, -(-count // REVIEW_PAGE)))


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return max(1, min(int(raw), 1_000_000)) if raw.isascii() and raw.isdigit() else 1


def _entries(slugs: list[str]) -> list:
    """The entries of a page of slugs, skipping any that went away meanwhile."""
    out = []
    for slug in slugs:
        try:
            found = services().sheet.entry(slug)
        except EntryError:
            continue
        if found is not None and found.published and review_due(found) is not None:
            out.append(found)
    return out


@bp.post("/e/<slug>/reviewed")
@role_required("trainer")
def mark_reviewed(slug: str):
    sheet = services().sheet
    found = sheet.entry(slug)
    if found is None:
        abort(404, description=f"There is no entry called '{slug}'.")
    note = request.form.get("reason", "").strip()
    try:
        sheet.save_entry(replace(found, last_reviewed=dt.date.today()),
                         message=f"Reviewed: {note}" if note else "Reviewed: still correct",
                         author=person_of(current_user),
                         based_on=request.form.get("base_version") or found.version)
    except ConflictError:
        flash("The entry changed meanwhile; read it again before marking it reviewed.", "error")
    else:
        flash(f"Marked “{found.title}” as reviewed today.")
    return redirect(safe_next(request.form.get("back")) if request.form.get("back")
                    else url_for("reports.review_due_list"))


@bp.get("/print")
@role_required("agent")
def printable():
    """The sheet to print: one category or tag, or the whole sheet, at most
    PRINT_LIMIT entries (a note says so when there are more)."""
    svc = services()
    category = request.args.get("category") or None
    tag = request.args.get("tag") or None
    slugs, total = svc.index.published_slugs(category=category, tag=tag, limit=PRINT_LIMIT)
    chosen = []
    for slug in slugs:
        try:
            found = svc.sheet.entry(slug)
        except EntryError:
            continue
        if found is not None and found.published:
            chosen.append(found)
    chosen.sort(key=lambda e: (e.category.lower(), e.title.lower()))
    categories = svc.index.facets()["categories"]
    sheet = svc.sheet
    values = svc.defaults()  # company name and the printing agent's own name

    labels = svc.labels()

    def render(text: str):  # other placeholders: readable cues, blanks to fill by hand
        return render_filled(text, values, labels)

    return render_template(
        "print.html", entries=chosen, category=category, tag=tag, categories=categories,
        total=total, limit=PRINT_LIMIT,
        render=render, greeting=render(sheet.part("greeting")),
        closing=render(sheet.part("closing")), opening=render(sheet.part("phone_opening")),
        today=dt.date.today())


@bp.get("/export.<fmt>")
@role_required("trainer")
def export(fmt: str):
    from kb.spreadsheet import export_sheet

    if fmt not in ("csv", "xlsx"):
        abort(404, description="Export as .csv or .xlsx.")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"cheat-sheet.{fmt}"
        export_sheet(services().sheet, path)
        data = path.read_bytes()
    import io

    mimetype = "text/csv" if fmt == "csv" else (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=True,
                     download_name=f"cheat-sheet-{dt.date.today().isoformat()}.{fmt}")


@bp.get("/api/openapi.json")
@role_required("agent")
def openapi():
    return jsonify(spec())
