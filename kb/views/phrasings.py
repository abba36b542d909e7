"""Trainers review the wordings agents typed to find entries: accept or dismiss."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from kb import phrasings as P
from kb.auth import database, role_required, safe_next
from kb.services import services
from kb.store import ConflictError, StoreError
from kb.users import person_of

bp = Blueprint("phrasings", __name__)


@bp.get("/phrasings")
@role_required("trainer")
def suggestions():
    least = request.args.get("min", "")
    least_n = int(least) if least.isdigit() and 0 < int(least) <= 1000 else P.MIN_TIMES
    rows = P.suggestions(database(), services().sheet, min_times=least_n)
    return render_template("phrasings.html", rows=rows, min_times=least_n, days=P.DAYS)


def _back():
    back = request.form.get("back")
    return redirect(safe_next(back) if back else url_for("phrasings.suggestions"))


@bp.post("/phrasings/accept")
@role_required("trainer")
def accept():
    slug, wording = request.form.get("slug", ""), request.form.get("wording", "")
    try:
        commit = P.accept(database(), services().sheet, slug, wording,
                          committer=person_of(current_user), user_id=current_user.id)
    except ConflictError:
        flash("The entry changed meanwhile; look at it again and accept once more.", "error")
    except (P.PhrasingError, StoreError) as exc:
        flash(str(exc), "error")
    else:
        word = P.normalize(wording)
        flash(f"Added “{word}” to the customer phrasings." if commit
              else f"The entry already had “{word}”.")
    return _back()


@bp.post("/phrasings/accept-many")
@role_required("trainer")
def accept_many():
    """The ticked wordings, to one entry or several, added in one commit."""
    picks = [tuple(p.split("\n", 1)) for p in request.form.getlist("pick") if "\n" in p]
    if not picks:
        flash("Tick the wordings to add first.", "error")
        return _back()
    try:
        commit, added, skipped = P.accept_many(database(), services().sheet, picks,
                                        committer=person_of(current_user),
                                        user_id=current_user.id)
    except ConflictError:
        flash("An entry changed meanwhile; nothing was added. Look again and add once more.",
              "error")
    except StoreError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Added {len(added)} wording{'' if len(added) == 1 else 's'} in one commit."
              if commit else "Nothing new to add: the entries had those words already.")
        for why in skipped:
            flash(f"Not added: {why}.", "error")
    return _back()


@bp.post("/phrasings/dismiss")
@role_required("trainer")
def dismiss():
    try:
        P.dismiss(database(), request.form.get("slug", ""), request.form.get("wording", ""),
                  user_id=current_user.id)
    except P.PhrasingError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Dismissed “{P.normalize(request.form.get('wording', ''))}”; "
              "it will not be suggested again.")
    return _back()
