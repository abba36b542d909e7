"""The admin's first visit: keep the starter entries, or start from the team's own sheet."""

from __future__ import annotations

import tempfile
from pathlib import Path

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.utils import secure_filename

from kb import starter
from kb.auth import database, role_required
from kb.services import services
from kb.spreadsheet import ImportRefused, ImportReport, SpreadsheetError, import_sheet
from kb.store import StoreError
from kb.users import person_of

bp = Blueprint("setup", __name__)


def _start_empty(upload) -> None:
    """Remove the starter entries, or make the sheet exactly the uploaded file: one commit."""
    svc, seed = services(), current_app.config["SEED_DIR"]
    if upload is None or not upload.filename:
        starter.remove_starter(svc.sheet, seed, author=person_of(current_user))
        starter.record_choice(database(), "empty")
        flash("The starter entries are gone (their history stays). Add entries with "
              "“New entry”, or import a spreadsheet with `kb import FILE`.")
        return
    name = secure_filename(upload.filename) or "sheet.csv"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        upload.save(path)
        report = import_sheet(svc.sheet, path, author=person_of(current_user),
                              message=f"Start from our own sheet: {name}", replace_all=True)
    starter.record_choice(database(), "replace")
    flash(report.summary())
    _flash_rows(report)


def _flash_rows(report: ImportReport) -> None:
    lines = report.row_lines()
    for line in lines[:20]:
        flash(line[0].upper() + line[1:], "error")
    if len(lines) > 20:
        flash(f"… and {len(lines) - 20} more; `kb import FILE` on the server lists them all.",
              "error")


@bp.route("/admin/start", methods=["GET", "POST"])
@role_required("admin")
def start():
    svc, seed = services(), current_app.config["SEED_DIR"]
    offer = starter.starter_untouched(svc.store, seed)
    if request.method == "POST":
        action = request.form.get("action", "")
        if action == "keep":
            starter.record_choice(database(), "keep")
            flash("The starter entries stay. Edit or retire them like any other entry.")
            return redirect(url_for("pages.search"))
        if action != "empty":
            flash("Choose to keep the starter entries or to start empty.", "error")
            return redirect(url_for("setup.start"))
        if not offer:
            flash("The starter entries were already edited or removed, so nothing was done. "
                  "To replace the whole sheet with a spreadsheet, run `kb import --replace "
                  "FILE`.", "error")
            return redirect(url_for("setup.start"))
        try:
            _start_empty(request.files.get("file"))
        except ImportRefused as exc:  # it says nothing changed, and the rows say why
            flash(str(exc), "error")
            _flash_rows(exc.report)
            return redirect(url_for("setup.start"))
        except (SpreadsheetError, StoreError) as exc:
            flash(f"{exc} Nothing was changed.", "error")
            return redirect(url_for("setup.start"))
        return redirect(url_for("pages.search"))
    return render_template(
        "start.html", offer=offer, decided=starter.choice(database()),
        own=len(starter.own_entries(svc.store, seed)), entries=len(svc.store.entry_paths()))
