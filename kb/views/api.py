"""The JSON API: search, read an entry, compose an email."""

from __future__ import annotations

import re
from dataclasses import asdict, replace

from flask import Blueprint, abort, jsonify, render_template, request
from flask_login import current_user

from kb import outcomes, usage
from kb import proposals as P
from kb.auth import database, role_required
from kb.compose import clean_values, compose, label_of, phone_script, together
from kb.db import as_id
from kb.entry import (
    SLUG_RE,
    EntryError,
    entry_from_fields,
    fields_of,
    parse_entry,
    serialize_entry,
    slugify,
    update_text,
    with_review_defaults,
)
from kb.history import restore, text_at, unified
from kb.parts import FILES, check_part, errors_in, preview
from kb.preview import TooLong
from kb.render import to_html
from kb.services import services
from kb.store import ConflictError, RemoteUnavailable, StoreError, entry_path
from kb.users import person_of
from kb.views.common import (
    added_entries,
    chat_for,
    entry_findings,
    form_preview,
    index_state,
    load_entry,
    search_as,
    tell_trainers,
)

bp = Blueprint("api", __name__)


@bp.before_request
def json_only_writes():
    """The API is exempt from form CSRF tokens, so every write must be JSON:
    a cross-site form cannot send application/json without a CORS preflight."""
    if request.method not in ("GET", "HEAD", "OPTIONS") and not request.is_json:
        # a file's bytes: types no cross-site form can send without a preflight either
        if request.endpoint == "api.put_file" and request.mimetype in FILE_BODIES:
            return None
        return _error(415, "Send JSON (Content-Type: application/json).")


FILE_BODIES = ("application/pdf", "image/png", "image/jpeg", "application/octet-stream")


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


@bp.get("/session")
@role_required("agent")
def session_alive():
    """Whether the sign-in still holds: pages ask before sending a long form."""
    return jsonify(username=current_user.username)


@bp.get("/search")
@role_required("agent")
def search():
    limit = _int_arg("limit", 10, 1, 50)
    query = request.args.get("q", "")
    results = search_as(
        current_user.id, query, limit=limit, tag=request.args.get("tag") or None,
        category=request.args.get("category") or None,
        typing=request.args.get("typing") == "1",
        as_typed=request.args.get("as_typed") == "1",
    )
    data = results.to_dict()
    data["search_id"] = usage.log_search(database(), current_user.id, query, results.words,
                                         results.total, as_id(request.args.get("after")))
    return jsonify(data)


VERSION_RE = re.compile(r"^[0-9a-f]{40,64}$")


@bp.post("/events")
@role_required("agent")
def event():
    """The browser reports a copy (the entry page logs its own views; the browser
    extension reports a view when the agent picks an entry in its panel)."""
    body = _json_body()
    slug = str(body.get("slug", ""))
    if body.get("kind") not in ("copy", "view") or not SLUG_RE.match(slug):
        abort(400, description="Send {kind: 'copy' or 'view', slug, version, search_id}.")
    search_id = body.get("search_id")
    version = str(body.get("version") or "") or None
    if version is not None and not VERSION_RE.match(version):
        abort(400, description="'version' is the entry's version id as the entry page "
                               "gives it (40-64 hexadecimal characters), or leave it out.")
    # a copy's key: what the page or the helpdesk says of it later (POST /api/outcomes)
    ref = outcomes.new_ref() if body["kind"] == "copy" else None
    usage.log_event(database(), current_user.id, body["kind"], slug, version,
                    as_id(search_id), ref)
    return jsonify(ok=True, copy=ref), 201


@bp.post("/outcomes")
@role_required("agent")
def outcome():
    """A copy did not help: the agent's one key, or a helpdesk's re-contact or escalation
    of the case, keyed by the copy it follows."""
    body = _json_body()
    try:
        done = outcomes.record(database(), body.get("copy"), body.get("signal"))
    except outcomes.OutcomeError as exc:
        return _error(exc.status, str(exc))
    return jsonify(done), 201


@bp.post("/favourites/<slug>")
@role_required("agent")
def favourite(slug: str):
    body = _json_body()
    load_entry(slug)
    on = bool(body.get("on", True))
    usage.set_favourite(database(), current_user.id, slug, on)
    return jsonify(slug=slug, favourite=on)


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
    values = request.get_json(silent=True)
    if values is None:
        return _error(400, "The body is not valid JSON.")
    if not isinstance(values, dict):
        return _error(400, "Send an object of placeholder names and values.")
    values = values.get("values", values) if isinstance(values.get("values"), dict) else values
    found = together([load_entry(slug), *added_entries(slug)])  # ?and=: one reply
    svc = services()
    values = svc.typed(clean_values(values))
    defaults, labels = svc.defaults(), svc.labels()
    email = compose(found, svc.sheet.part("greeting"), svc.sheet.part("closing"), values,
                    defaults, labels)
    data = email.to_dict()
    data["mailto"] = email.mailto()
    data["missing_labels"] = [label_of(n, labels) for n in email.missing]
    opening, points, _ = phone_script(svc.sheet.part("phone_opening"), found, values,
                                      defaults, labels)
    data["phone_opening_html"], data["phone_html"] = str(opening), str(points)
    chat = chat_for(found, values, defaults, labels)  # every channel: email, phone, chat and SMS
    data["chat"] = chat.to_dict() if chat else None
    if chat:
        data["chat"]["missing_labels"] = [label_of(n, labels) for n in chat.missing]
    return jsonify(data)


# -- changing the sheet -------------------------------------------------------------


def _json_body() -> dict:
    if not request.is_json:
        abort(415, description="Send JSON (Content-Type: application/json).")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="Send a JSON object.")
    return body


def _text(body: dict, name: str) -> str | None:
    """A field that must be a string (or absent / null); anything else is a 400."""
    value = body.get(name)
    if value is None or isinstance(value, str):
        return value
    abort(400, description=f"'{name}' must be a string, not {type(value).__name__}.")


def _entry_text(slug: str, body: dict, base=None) -> str:
    """The entry file from either `markdown` (the whole file) or entry fields."""
    if isinstance(body.get("markdown"), str):
        text = body["markdown"]
        try:
            parse_entry(slug, text)
        except EntryError as exc:
            abort(422, description=f"The entry cannot be saved: {exc}.")
        return text
    fields = {}
    for key in ("title", "category", "status", "owner", "last_reviewed", "answer", "phone",
                "chat"):
        if _text(body, key) is not None:
            fields[key] = body[key]
        elif base is not None:
            fields[key] = fields_of(base)[key]
    for key in ("phrasings", "tags"):
        value = body.get(key)
        if isinstance(value, list):
            fields[key] = ("\n" if key == "phrasings" else ",").join(str(v) for v in value)
        elif base is not None:
            fields[key] = fields_of(base)[key]
    if body.get("review_every_days") is not None:
        fields["review_every_days"] = str(body["review_every_days"])
    if isinstance(body.get("links"), list):  # [{label, url}]: the links that go with it
        fields["links"] = "\n".join(f"{str(i.get('label') or '')} | {i.get('url')}"
                                    if isinstance(i, dict) else str(i)
                                    for i in body["links"])
    try:
        entry = entry_from_fields(slug, fields, base)
        if base is None:
            return serialize_entry(entry)
        return services().sheet.entry_text(entry)  # only what changed; formatting kept
    except EntryError as exc:
        abort(422, description=f"The entry cannot be saved: {exc}.")


def _current(slug: str):
    try:
        return services().sheet.entry(slug)
    except EntryError:
        return None


@bp.post("/proposals")
@role_required("agent")
def create_proposal():
    body = _json_body()
    slug = _text(body, "slug") or slugify(_text(body, "title") or "")
    if not SLUG_RE.match(slug):
        abort(400, description="Give a 'title' (or a 'slug' of lowercase letters, digits, -).")
    base = _current(slug)
    is_new = services().store.version_of(entry_path(slug)) is None
    text = _entry_text(slug, body, base)
    try:
        proposal = P.create(database(), services().sheet, current_user, slug, text,
                            _text(body, "reason") or "",
                            _text(body, "base_version") if "base_version" in body
                            else base.version if base else None, is_new)
    except P.ProposalError as exc:
        abort(422, description=str(exc))
    tell_trainers(proposal.id)
    return jsonify(id=proposal.id, slug=slug, status=proposal.status, is_new=is_new), 201


@bp.get("/proposals")
@role_required("agent")
def my_proposals():
    rows = P.by_author(database(), current_user.id)
    return jsonify(proposals=[{
        "id": p.id, "slug": p.slug, "status": p.status, "reason": p.reason,
        "review_comment": p.review_comment, "commit": p.commit} for p in rows])


@bp.put("/entries/<slug>")
@role_required("trainer")
def put_entry(slug: str):
    body = _json_body()
    if not SLUG_RE.match(slug):
        abort(400, description="A slug is lowercase letters, digits and dashes.")
    if "base_version" not in body:
        abort(400, description="Send 'base_version': the version your edit started from "
                               "(null for a new entry).")
    base_version = _text(body, "base_version")
    base = _current(slug)
    text = _entry_text(slug, body, base)
    if base is None:  # a new entry is owned and dated, so it falls due for review
        try:
            entry = parse_entry(slug, text)
            text = update_text(text, entry, with_review_defaults(entry, current_user.username))
        except EntryError as exc:  # too big, or not an entry: as for an existing one
            abort(422, description=str(exc))
    path = entry_path(slug)
    try:
        commit = services().sheet.write(
            {path: text}, message=_text(body, "reason") or "",
            author=person_of(current_user), expected={path: base_version})
    except ConflictError as exc:
        current = services().store.read(path)
        return jsonify(
            error="Conflict", message=str(exc),
            current={"version": exc.current, "markdown": current.text if current else None},
            yours={"base_version": exc.based_on, "markdown": text},
        ), 409
    except RemoteUnavailable as exc:
        abort(503, description=str(exc))
    except StoreError as exc:
        abort(400, description=str(exc))
    return jsonify(slug=slug, commit=commit, version=services().store.version_of(path),
                   index=index_state())


@bp.post("/entries/<slug>/retire")
@role_required("trainer")
def retire(slug: str):
    return _set_status(slug, "retired")


@bp.post("/entries/<slug>/unretire")
@role_required("trainer")
def unretire(slug: str):
    return _set_status(slug, "published")


def _set_status(slug: str, status: str):
    body = _json_body()
    found = _current(slug)
    if found is None:
        abort(404, description=f"There is no entry called '{slug}'.")
    reason = " ".join(str(body.get("reason") or "").split())
    if status == "retired" and not reason:  # agents lose the entry at once: say why
        return _error(422, "Say why the entry is retired: send a 'reason' (it goes into "
                           "the history).")
    reason = reason or "Bring this entry back"
    commit = services().sheet.save_entry(
        replace(found, status=status), message=reason, author=person_of(current_user),
        based_on=found.version)
    return jsonify(slug=slug, status=status, commit=commit)


@bp.post("/entries/<slug>/restore")
@role_required("trainer")
def restore_entry(slug: str):
    body = _json_body()
    version = str(body.get("version", ""))
    path = entry_path(slug)
    try:
        commit = restore(services().sheet, path, version,
                         str(body.get("reason") or f"Restore the version {version[:7]}"),
                         person_of(current_user))
    except StoreError as exc:
        abort(404 if "no version" in str(exc) else 409, description=str(exc))
    return jsonify(slug=slug, commit=commit, version=services().store.version_of(path),
                   index=index_state())


@bp.get("/entries/<slug>/history")
@role_required("agent")
def entry_history(slug: str):
    path = entry_path(slug)
    revisions = services().store.history(path)
    if not revisions:
        abort(404, description=f"There is no entry called '{slug}'.")
    return jsonify(slug=slug, versions=[{
        "commit": r.commit, "version": r.version, "time": r.time, "message": r.message,
        "author": r.author.name, "author_email": r.author.email,
        "committer": r.committer.name} for r in revisions])


@bp.get("/entries/<slug>/diff")
@role_required("agent")
def entry_diff(slug: str):
    path = entry_path(slug)
    a, b = request.args.get("from", ""), request.args.get("to", "")
    if not b:
        b = services().store.version_of(path) or ""
    try:
        old, new = text_at(services().sheet, path, a), text_at(services().sheet, path, b)
    except StoreError as exc:
        abort(404, description=str(exc))
    return jsonify(slug=slug, **{"from": a, "to": b}, diff=unified(old, new, a[:7], b[:7]))


@bp.get("/entries/<slug>/checks")
@role_required("agent")
def entry_checks(slug: str):
    found = load_entry(slug)
    findings = entry_findings(found)
    return jsonify(slug=slug, findings=[asdict(f) for f in findings],
                   errors=sum(f.level == "error" for f in findings))


@bp.put("/files/<name>")
@role_required("trainer")
def put_file(name: str):
    """A file that goes with answers (the request body is the file), as one commit;
    an entry names it in `files:` to carry it. Checked by content and size."""
    from kb.attachments import FILES_DIR, MAX_FILE_BYTES, NAME_RE, AttachmentError, check_upload

    if not NAME_RE.match(name):
        abort(400, description="Name the file in lowercase, ending .pdf, .png or .jpg "
                               "(returns-form.pdf).")
    data = request.get_data(cache=False)
    try:
        check_upload(name, data)
    except AttachmentError as exc:
        return _error(413 if len(data) > MAX_FILE_BYTES else 422, str(exc))
    reason = request.headers.get("X-KB-Reason") or f"Add the file {name}"
    commit = services().sheet.write({FILES_DIR + name: data}, message=reason,
                                    author=person_of(current_user))
    return jsonify(name=name, commit=commit, url=f"/files/{name}"), 201


@bp.get("/facts")
@role_required("agent")
def facts():
    """The sheet's facts: the team's policy values every answer is filled with."""
    return jsonify(facts=[{"name": f.name, "label": f.label, "type": f.type, "value": f.value}
                          for f in services().sheet.facts().values()])


@bp.post("/sheet/<name>/check")
@role_required("trainer")
def check_sheet_part(name: str):
    """A shared part as typed, not saved: its findings and how agents would see it."""
    body = _json_body()
    text = _text(body, "text")
    if text is None:
        abort(400, description="Send {\"text\": \"...\"}: the part as it would be saved.")
    if name not in FILES:
        abort(404, description=f"There is no part called {name}; the parts are "
                               f"{', '.join(FILES)}.")
    svc = services()
    text = text.replace("\r\n", "\n")
    findings = check_part(name, text, svc.sheet)
    shown = preview(name, text, svc.sheet, svc.defaults(), current_user.name,
                    svc.index.derived_shorthand() if name == "shorthand" else None)
    return jsonify(
        name=name, findings=[asdict(f) for f in findings], errors=errors_in(findings),
        warnings=len(findings) - errors_in(findings),
        checks_html=render_template("_part_checks.html", findings=findings),
        preview_html=render_template("_part_preview.html", preview=shown))


@bp.post("/preview-entry")
@role_required("agent")
def preview_entry():
    """The edit form's live preview: the answer and talking points as agents will see
    them (sanitised, placeholders marked) and the answer checks, for unsaved text."""
    body = _json_body()
    fields = {k: _text(body, k) or "" for k in ("title", "answer", "phone", "category", "tags")}
    try:
        return jsonify(form_preview(fields).to_dict())
    except TooLong as exc:
        return _error(413, str(exc))
