"""The JSON API: search, read an entry, compose an email."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request

from kb.app import services
from kb.auth import role_required
from kb.compose import compose, phone_script
from kb.entry import EntryError
from kb.render import to_html
from kb.store import StoreError

bp = Blueprint("api", __name__)


def _error(status: int, message: str):
    response = jsonify(error=status, message=message)
    response.status_code = status
    return response


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, "")
    if not raw:
        return default
    try:
        return max(low, min(high, int(raw)))
    except ValueError:
        abort(400, description=f"'{name}' must be a whole number between {low} and {high}.")


def load_entry(slug: str):
    """The entry for a route, or a 404 / clear error for a missing or broken file."""
    try:
        entry = services().sheet.entry(slug)
    except (EntryError, StoreError) as exc:
        abort(422, description=f"The entry file {slug}.md cannot be read: {exc}. "
                               "A trainer needs to fix the file.")
    if entry is None or entry.status == "retired":
        abort(404, description=f"There is no entry called '{slug}'. Search for it instead.")
    return entry


@bp.get("/search")
@role_required("agent")
def search():
    limit = _int_arg("limit", 10, 1, 50)
    results = services().index.search(
        request.args.get("q", ""), limit=limit, tag=request.args.get("tag") or None,
        category=request.args.get("category") or None,
        typing=request.args.get("typing") == "1",
    )
    return jsonify(results.to_dict())


@bp.get("/entries/<slug>")
@role_required("agent")
def entry(slug: str):
    found = load_entry(slug)
    data = found.to_dict()
    data["answer_html"] = str(to_html(found.answer))
    data["phone_html"] = str(to_html(found.phone))
    return jsonify(data)


@bp.post("/compose/<slug>")
@role_required("agent")
def compose_entry(slug: str):
    if not request.is_json:
        return _error(415, "Send the placeholder values as JSON "
                           "(Content-Type: application/json), e.g. {\"customer_name\": \"Ana\"}.")
    values = request.get_json(silent=True)
    if values is None:
        return _error(400, "The body is not valid JSON.")
    if not isinstance(values, dict):
        return _error(400, "Send an object of placeholder names and values.")
    values = values.get("values", values) if isinstance(values.get("values"), dict) else values
    found = load_entry(slug)
    svc = services()
    email = compose(found, svc.sheet.part("greeting"), svc.sheet.part("closing"), values,
                    svc.defaults())
    data = email.to_dict()
    data["mailto"] = email.mailto()
    opening, points, _ = phone_script(svc.sheet.part("phone_opening"), found, values,
                                      svc.defaults())
    data["phone_opening_html"], data["phone_html"] = str(opening), str(points)
    return jsonify(data)
