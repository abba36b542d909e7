"""The signed-in person's notifications: the list, opening one, marking all read."""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, url_for
from flask_login import current_user

from kb import notifications as N
from kb.auth import database, role_required, safe_next
from kb.proposals import pending_count

bp = Blueprint("notices", __name__)


@bp.get("/notifications/count")
@role_required("agent")
def count():
    """The header's badges, asked for by an open page every so often, so a trainer sees
    a proposal arrive without reloading: unread notifications, and (trainers) the
    proposals waiting for review."""
    review = pending_count(database()) if current_user.can("trainer") else None
    return jsonify(unread=N.unread_count(database(), current_user.id), review=review)


@bp.get("/notifications")
@role_required("agent")
def index():
    rows = N.list_for(database(), current_user.id)
    return render_template("notifications.html", rows=rows, page_size=N.PAGE)


@bp.get("/notifications/<int:nid>")
@role_required("agent")
def open_one(nid: int):
    # A GET that marks read: it only touches the person's own row and loses nothing,
    # and a plain link opens in a new tab like any other.
    row = N.mark_read(database(), current_user.id, nid)
    if row is None:
        abort(404, description="You have no notification with that number. Open your "
                               "notifications list and pick one there.")
    return redirect(safe_next(row.link) if row.link else url_for("notices.index"))


@bp.post("/notifications/read")
@role_required("agent")
def read_all():
    done = N.mark_all_read(database(), current_user.id)
    flash(f"Marked {done} notification{'s' if done != 1 else ''} read." if done
          else "Nothing was unread.")
    return redirect(url_for("notices.index"))
