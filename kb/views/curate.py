"""Keeping the sheet: proposals, review, direct edits, retiring, history, restore."""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from kb import notifications as N
from kb import proposals as P
from kb.attachments import (
    FILES_DIR,
    MAX_FILE_BYTES,
    MAX_FILES,
    AttachmentError,
    check_upload,
    files_of,
    safe_name,
)
from kb.auth import database, role_required
from kb.entry import (
    EntryError,
    entry_from_fields,
    fields_of,
    parse_entry,
    serialize_entry,
    slugify,
    update_text,
)
from kb.facts import TYPES as FACT_TYPES
from kb.history import compact, merge3, readable, restore, side_by_side, text_at
from kb.part_forms import (
    BLANK_ROWS,
    FIELDS,
    FORM_PARTS,
    RowError,
    rows_from_form,
    rows_of,
    text_of,
)
from kb.parts import FILES, check_part, errors_in, preview, reached_by
from kb.preview import TooLong, new_errors
from kb.services import services
from kb.sheet import SHORTHAND
from kb.store import ConflictError, StoreError, entry_path, is_entry_path, slug_of
from kb.users import person_of
from kb.views.common import (
    entry_findings,
    form_choices,
    form_preview,
    saved_note,
    tell_trainers,
)

bp = Blueprint("curate", __name__)
log = logging.getLogger("kb")

FIELD_NAMES = ("title", "phrasings", "tags", "category", "status", "owner", "last_reviewed",
               "review_every_days", "answer", "phone", "chat", "links")


def _form_fields() -> dict[str, str]:
    """The fields the form sent; those it does not show are kept from the entry."""
    return {k: request.form[k] for k in FIELD_NAMES if k in request.form}


def _form_page(template: str, fields: dict[str, str], **context):
    """An entry form page, with its lists to pick from and the preview and checks of
    the fields as they stand (so without JavaScript they show after a submit)."""
    try:
        pane = form_preview(fields)
    except TooLong:
        pane = form_preview({})
    return render_template(template, fields=fields, choices=form_choices(), preview=pane,
                           **context)


def _check_before_sending(entry, before) -> None:
    """Errors the checks find stop a proposal (the proposer sees them beside the form);
    warnings do not. Errors the entry already had are not the proposer's to fix."""
    added = new_errors(entry_findings(entry), entry_findings(before) if before else [])
    if added:
        first = added[0]
        more = f" (and {len(added) - 1} more, listed with the preview)" if len(added) > 1 else ""
        raise EntryError(f"Not sent yet: fix what the checks call an error first. "
                         f"{first.field.capitalize()}: {first.message}{more}")


def _sheet_entry(slug: str):
    try:
        return services().sheet.entry(slug)
    except EntryError:
        return None


def _entry_or_404(slug: str):
    try:
        found = services().sheet.entry(slug)
    except EntryError as exc:
        abort(422, description=f"{slug}.md cannot be read: {exc}.")
    if found is None:
        abort(404, description=f"There is no entry called '{slug}'.")
    return found


def _proposal_or_404(pid: int):
    try:
        return P.get(database(), pid)
    except P.NoSuchProposal as exc:
        abort(404, description=f"{exc} Open it from the review queue or your proposals.")


def _known_path(path: str) -> str:
    if is_entry_path(path) or path in FILES.values():
        return path
    abort(404, description=f"{path} is not a file of the sheet.")


def _label(path: str) -> str:
    """What a person calls the file: a shared part's name, an entry's title (as last
    written, for an entry deleted since), never its file name when avoidable."""
    for name, part in FILES.items():
        if part == path:
            return name.replace("_", " ").capitalize()
    if is_entry_path(path):
        store = services().store
        for revision in store.history(path, limit=20):
            if revision.version:
                try:
                    return parse_entry(slug_of(path), text_at(services().sheet, path,
                                                              revision.version)).title
                except (EntryError, StoreError):
                    continue
    return slug_of(path)


# -- proposals ------------------------------------------------------------------


@bp.route("/propose", methods=["GET", "POST"])
@role_required("agent")
def propose_new():
    fields = {k: "" for k in FIELD_NAMES}
    phrasing = request.args.get("phrasing", "").strip()
    fields["phrasings"] = phrasing
    fields["title"] = phrasing[:1].upper() + phrasing[1:] if phrasing else ""
    error = None
    if request.method == "POST":
        fields = {k: "" for k in FIELD_NAMES} | _form_fields()
        slug = slugify(fields["title"])
        try:
            entry = entry_from_fields(slug, fields | {"status": "published"})
            _check_before_sending(entry, None)
            proposal = P.create(database(), services().sheet, current_user, slug,
                                serialize_entry(entry), request.form.get("reason", ""), None, True)
        except (EntryError, P.ProposalError) as exc:
            error = str(exc)
        else:
            tell_trainers(proposal.id)
            flash(f"Thank you. Proposal #{proposal.id} is waiting for a trainer.")
            return redirect(url_for("curate.mine"))
    return _form_page("propose.html", fields, error=error, entry=None,
                      base_version="", reason=request.form.get("reason", ""))


@bp.route("/e/<slug>/suggest", methods=["GET", "POST"])
@role_required("agent")
def suggest(slug: str):
    current = _entry_or_404(slug)
    fields, error = fields_of(current), None
    base_version = current.version
    if request.method == "POST":
        fields = _form_fields()
        base_version = request.form.get("base_version") or None
        try:
            entry = entry_from_fields(slug, fields, current)
            _check_before_sending(entry, current)
            proposal = P.create(database(), services().sheet, current_user, slug,
                                services().sheet.entry_text(entry), request.form.get("reason", ""),
                                base_version, False)
        except (EntryError, P.ProposalError) as exc:
            error = str(exc)
        else:
            tell_trainers(proposal.id)
            flash(f"Thank you. Proposal #{proposal.id} is waiting for a trainer.")
            return redirect(url_for("curate.mine"))
    return _form_page("propose.html", fields, error=error, entry=current,
                      base_version=base_version, reason=request.form.get("reason", ""))


@bp.get("/proposals")
@role_required("agent")
def mine():
    mine = P.by_author(database(), current_user.id)
    return render_template("proposals.html", proposals=mine, labels=P.LABELS,
                           titles={p.id: P.title_of(p) for p in mine})


@bp.route("/proposals/<int:pid>/resubmit", methods=["GET", "POST"])
@role_required("agent")
def resubmit(pid: int):
    proposal = _proposal_or_404(pid)
    if proposal.author_id != current_user.id:
        abort(403, description="Only the person who made a proposal can change it.")
    try:
        before = parse_entry(proposal.slug, proposal.text)
        fields = fields_of(before)
    except EntryError:
        before, fields = None, {k: "" for k in FIELD_NAMES}
    error = None
    if request.method == "POST":
        fields = _form_fields()
        try:
            entry = entry_from_fields(proposal.slug, fields, before)
            _check_before_sending(entry, _sheet_entry(proposal.slug))
            text = (services().sheet.entry_text(entry, proposal.text) if before
                    else serialize_entry(entry))
            P.resubmit(database(), services().sheet, pid, current_user, text,
                       request.form.get("reason", ""))
        except (EntryError, P.ProposalError) as exc:
            error = str(exc)
        else:
            tell_trainers(pid, again=True)
            flash(f"Proposal #{pid} is back in the review queue.")
            return redirect(url_for("curate.mine"))
    return _form_page("propose.html", fields, error=error, entry=None,
                      base_version=proposal.base_version or "", reason=proposal.reason,
                      resubmit=proposal)


# -- review -----------------------------------------------------------------------


@bp.get("/review")
@role_required("trainer")
def queue():
    sheet = services().sheet
    items = [(p, P.is_stale(sheet, p), P.title_of(p)) for p in P.queue(database())]
    return render_template("review_queue.html", items=items)


@bp.route("/review/<int:pid>", methods=["GET", "POST"])
@role_required("trainer")
def review(pid: int):
    sheet = services().sheet
    proposal = _proposal_or_404(pid)
    path = entry_path(proposal.slug)
    error = None
    try:
        proposed = parse_entry(proposal.slug, proposal.text)
    except EntryError as exc:
        proposed = None
        error = f"The proposed file cannot be read: {exc}. Edit the file itself below."
    fields = fields_of(proposed) if proposed else None
    raw = proposal.text
    if request.method == "POST":
        action = request.form.get("action")
        raw = request.form.get("text", proposal.text).replace("\r\n", "\n")
        if fields is not None:
            fields = fields | _form_fields()
        comment = request.form.get("comment", "")
        try:
            if action == "approve":
                edited = reviewed_text(proposal.slug, proposal.text, proposed, fields, raw)
                P.approve(database(), sheet, pid, current_user, text=edited,
                          over_version=request.form.get("over_version") or None,
                          comment=comment)
                # what the trainer typed differs from what was proposed: approved with changes
                changed = edited.strip() != proposal.text.replace("\r\n", "\n").strip()
                _tell_proposer(pid, N.CHANGED if changed else N.APPROVED)
                flash(saved_note(f"Approved #{pid}: it is live now."))
                return redirect(url_for("curate.queue"))
            if action == "reject":
                P.reject(database(), pid, current_user, comment)
                _tell_proposer(pid, N.REJECTED)
                flash(f"Rejected #{pid}.")
                return redirect(url_for("curate.queue"))
            if action == "send_back":
                P.send_back(database(), pid, current_user, comment)
                _tell_proposer(pid, N.SENT_BACK)
                flash(f"Sent #{pid} back to {proposal.author.name}.")
                return redirect(url_for("curate.queue"))
            error = "Choose approve, reject or send back."
        except (P.ProposalError, EntryError) as exc:
            error = str(exc)
    base_text = text_at(sheet, path, proposal.base_version)
    current_version = sheet.store.version_of(path)
    current_text = text_at(sheet, path, current_version)
    stale = current_version != proposal.base_version
    try:  # the form's fields, or else the file as written if it can be read
        pane = form_preview(fields if fields is not None
                            else fields_of(parse_entry(proposal.slug, raw)))
    except (EntryError, TooLong):
        pane = None
    return render_template(
        "review.html", proposal=proposal, labels=P.LABELS, error=error, proposed=proposed,
        fields=fields, choices=form_choices(), preview=pane, raw=raw,
        raw_open=proposed is None or raw != proposal.text,
        comment=request.form.get("comment", ""),
        stale=stale, current_version=current_version,
        diff=compact(side_by_side(readable(path, current_text if not stale else base_text),
                                  readable(path, proposal.text))),
        their_diff=side_by_side(readable(path, base_text),
                                readable(path, current_text)) if stale else None,
        mine_vs_current=side_by_side(readable(path, current_text),
                                     readable(path, proposal.text)) if stale else None,
    )


def _tell_proposer(pid: int, outcome: str) -> None:
    """After the review is committed: the proposer hears of it (and gets an email).
    The review stands even if this fails, so a failure is logged, not shown."""
    try:
        proposal = P.get(database(), pid)
        N.proposal_reviewed(database(), proposal, outcome, P.title_of(proposal), current_user,
                            current_app.extensions.get("kb_mail"),
                            current_app.config["BASE_URL"])
    except Exception as exc:  # noqa: BLE001
        log.warning("Could not notify the proposer of #%s: %s: %s", pid,
                    type(exc).__name__, exc)


def reviewed_text(slug: str, text: str, proposed, fields: dict[str, str] | None,
                  raw: str) -> str:
    """What approving writes: the proposal with the trainer's changes. From the form,
    only the fields that changed are rewritten (the rest of the file stays as the
    proposer wrote it); a change to the file itself is taken as written. Both at once
    is refused, since one would silently undo the other."""
    raw_changed = raw != text
    if proposed is None or fields is None:
        return raw
    unchanged = fields_of(entry_from_fields(slug, fields_of(proposed), proposed))
    edited = entry_from_fields(slug, fields, proposed)
    form_changed = fields_of(edited) != unchanged
    if raw_changed and form_changed:
        raise EntryError("You changed both the form and the file itself. Keep one: undo the "
                         "form changes, or start again from the proposal and use one of them.")
    if raw_changed:
        return raw
    return update_text(text, proposed, edited) if form_changed else text


# -- direct edits by trainers -----------------------------------------------------------


@bp.route("/e/<slug>/edit", methods=["GET", "POST"])
@role_required("trainer")
def edit(slug: str):
    current = _entry_or_404(slug)
    fields, error = fields_of(current), None
    base_version = current.version
    if request.method == "POST":
        fields = _form_fields()
        base_version = request.form.get("base_version") or None
        reason = request.form.get("reason", "")
        try:
            entry = entry_from_fields(slug, fields, current)
            entry, uploads = _with_files(entry, current)
            sheet = services().sheet
            # the entry and the files it names: one commit
            sheet.write({entry_path(slug): sheet.entry_text(entry), **uploads}, message=reason,
                        author=person_of(current_user),
                        expected={entry_path(slug): base_version})
        except AttachmentError as exc:
            error = str(exc)
        except ConflictError as exc:
            return _conflict(entry_path(slug), exc, services().sheet.entry_text(entry), reason)
        except (EntryError, StoreError) as exc:
            error = str(exc)
        else:
            flash(saved_note("Saved. Agents see the new answer now."))
            return redirect(url_for("pages.entry", slug=slug))
    return _form_page("edit.html", fields, error=error, entry=current,
                      base_version=base_version, reason=request.form.get("reason", ""),
                      entry_files=files_of(current))


def _with_files(entry, current) -> tuple:
    """The files the edit form keeps and adds: the entry naming them, and the uploads
    to write beside it (checked by content and size)."""
    from dataclasses import replace

    if "keep_file" not in request.form and "upload" not in request.files \
            and not files_of(current):
        return entry, {}
    kept = [f for f in request.form.getlist("keep_file") if f in files_of(current)]
    uploads = {}
    for upload in request.files.getlist("upload"):
        try:  # a large upload waits in a temporary file: closed whatever happens
            if not upload or not upload.filename:
                continue
            name = safe_name(upload.filename)
            data = upload.read(MAX_FILE_BYTES + 1)
        finally:
            upload.close()
        check_upload(name, data)
        uploads[FILES_DIR + name] = data
        kept.append(name)
    kept = list(dict.fromkeys(kept))
    if len(kept) > MAX_FILES:
        raise AttachmentError(f"An answer carries at most {MAX_FILES} files; take some out.")
    extra = dict(entry.extra)
    if kept:
        extra["files"] = kept
    else:
        extra.pop("files", None)
    return replace(entry, extra=extra), uploads


def _conflict(path: str, exc: ConflictError, mine: str, reason: str):
    """Not saved: who saved meanwhile and what; "apply my change on top" when the two
    changes touch different lines."""
    sheet = services().sheet
    theirs = text_at(sheet, path, exc.current)
    base = text_at(sheet, path, exc.based_on)
    merged = merge3(base, theirs, mine) if exc.current else None
    merged_fields = None
    if merged is not None and is_entry_path(path):
        try:
            merged_fields = fields_of(parse_entry(slug_of(path), merged))
        except EntryError:
            merged = None
    history = sheet.store.history(path, limit=5)
    return render_template(
        "conflict.html", path=path, label=_label(path), mine=mine, theirs=theirs,
        current_version=exc.current, reason=reason, latest=history[0] if history else None,
        back_url=url_for("curate.edit", slug=slug_of(path)) if is_entry_path(path)
        else request.path, action=request.path,
        their_changes=compact(side_by_side(readable(path, base), readable(path, theirs))),
        diff=compact(side_by_side(readable(path, theirs), readable(path, mine))),
        merged=merged, merged_fields=merged_fields,
        merged_diff=compact(side_by_side(readable(path, theirs), readable(path, merged)))
        if merged is not None else None,
        history=history,
    ), 409


@bp.post("/e/<slug>/status")
@role_required("trainer")
def set_status(slug: str):
    current = _entry_or_404(slug)
    status = request.form.get("status")
    if status not in ("published", "retired"):
        abort(400, description="Status must be published or retired.")
    reason = " ".join(request.form.get("reason", "").split())
    if status == "retired" and not reason:  # agents lose the entry at once: say why
        flash("Not retired: say why in a few words (it goes into the history), then "
              "retire it.", "error")
        return redirect(url_for("curate.history", path=entry_path(slug)) + "#retire")
    if status == current.status:
        flash("It is retired already." if status == "retired" else "It is in the sheet already.")
        return redirect(url_for("curate.history", path=entry_path(slug)))
    reason = reason or "Bring this entry back"
    from dataclasses import replace

    extra = dict(current.extra)
    extra.pop("replaced_by", None)
    target = request.form.get("replaced_by", "").strip().removeprefix("/e/").strip("/")
    if status == "retired" and target:
        try:
            found = services().sheet.entry(target)
        except EntryError:
            found = None
        if found is None or not found.published or target == slug:
            flash(f"There is no published entry '{target}' to point to; nothing was changed.",
                  "error")
            return redirect(url_for("curate.history", path=entry_path(slug)))
        extra["replaced_by"] = target
    try:
        services().sheet.save_entry(replace(current, status=status, extra=extra), message=reason,
                                    author=person_of(current_user),
                                    based_on=request.form.get("base_version") or current.version)
    except ConflictError:
        flash("The entry changed meanwhile; look at it again before retiring.", "error")
    else:
        flash("Retired: gone from search, kept in history." if status == "retired"
              else "Back in the sheet.")
    return redirect(url_for("curate.history", path=entry_path(slug)))


@bp.route("/sheet/<name>", methods=["GET", "POST"])
@role_required("trainer")
def sheet_part(name: str):
    """A shared part: checked and previewed as it is typed; a part with an error is
    not saved (the text stays in the form with the reason)."""
    if name not in FILES:
        abort(404, description=f"There is no part called {name}.")
    path = FILES[name]
    sheet = services().sheet
    found = sheet.store.read(path)
    text = found.text if found else ""
    base_version = found.version if found else ""
    error, status = None, 200
    rows = None  # the form's rows as posted, kept when they cannot be saved
    if request.method == "POST":
        text = request.form.get("text", "").replace("\r\n", "\n")
        base_version = request.form.get("base_version") or None
        reason = request.form.get("reason", "")
        # the rows, unless the file itself was edited (the same rule as an entry's form)
        original = request.form.get("original", "").replace("\r\n", "\n")
        if name in FORM_PARTS and request.form.get("rows") == "1" and text == original:
            rows = rows_from_form(name, request.form)
            try:
                text = text_of(name, original, rows)
            except RowError as exc:
                return _part_page(name, path, original, base_version, str(exc), [], rows), 422
    findings = check_part(name, text, sheet)
    if request.method == "POST" and request.form.get("action") != "preview":  # preview: no save
        if errors_in(findings):
            n = errors_in(findings)
            error = (f"Not saved: {n} error{'s' if n != 1 else ''} below. Fix "
                     f"{'them' if n != 1 else 'it'} and save again; your text is kept.")
            status = 422
        else:
            # a fact's change reaches entries: those, as they read before the save
            reached = reached_by(sheet, text) if name == "facts" else []
            try:
                commit = sheet.write({path: text.rstrip() + "\n"}, message=reason,
                                     author=person_of(current_user),
                                     expected={path: base_version})
            except ConflictError as exc:
                return _conflict(path, exc, text, reason)
            except StoreError as exc:
                error = str(exc)
            else:
                warnings = len(findings)
                flash(f"Saved the {name.replace('_', ' ')}."
                      + (f" {warnings} warning{'s' if warnings != 1 else ''} below."
                         if warnings else ""))
                if reached and request.form.get("ask_owners"):
                    _ask_owners(reached, reason, commit)
                return redirect(url_for("curate.sheet_part", name=name))
    return _part_page(name, path, text, base_version, error, findings), status


def _ask_owners(entries: list, reason: str, commit: str | None) -> None:
    """The owners of entries a fact's change reached are asked to read them again."""
    told = N.ask_owners(database(), entries, "A fact your entries use has changed",
                        f"{current_user.name} changed the sheet's facts ({reason}). Read "
                        "these entries again: do they still say the right thing?",
                        key=f"facts:{commit}", mailer=current_app.extensions.get("kb_mail"),
                        base_url=current_app.config["BASE_URL"])
    flash(f"Asked {told} owner{'s' if told != 1 else ''} to read the {len(entries)} "
          f"entr{'ies' if len(entries) != 1 else 'y'} again." if told else
          "None of those entries has an owner who is a person here to ask.")


def _part_page(name: str, path: str, text: str, base_version, error, findings, rows=None):
    sheet = services().sheet
    shown = preview(name, text, sheet, services().defaults(), current_user.name,
                    services().index.derived_shorthand() if name == "shorthand" else None)
    if name in FORM_PARTS and rows is None:
        rows = rows_of(name, text)
    if rows is not None:
        rows = rows + [dict.fromkeys(FIELDS[name], "") | {"line": ""}] * BLANK_ROWS
    return render_template("sheet_part.html", name=name, path=path, text=text,
                           base_version=base_version, error=error, parts=FILES,
                           findings=findings, preview=shown, rows=rows, fact_types=FACT_TYPES)


@bp.post("/sheet/shorthand/drop")
@role_required("trainer")
def drop_shorthand():
    """One click on the shorthand page: a shorthand kb worked out is not what agents
    mean; a line `short =` in shorthand.txt drops it (one commit, undone by history)."""
    short = " ".join(request.form.get("short", "").lower().split())
    if not short or " " in short or "=" in short or "#" in short or len(short) > 20:
        abort(400, description="Name one shorthand, a single word, to drop.")
    sheet = services().sheet
    found = sheet.store.read(SHORTHAND)
    text = (found.text if found else "").rstrip("\n")
    try:
        sheet.write({SHORTHAND: (text + "\n" if text else "") + f"{short} =\n"},
                    message=f"Drop the shorthand “{short}”: not what agents mean by it",
                    author=person_of(current_user),
                    expected={SHORTHAND: found.version if found else None})
    except ConflictError:
        flash("The shorthand list changed meanwhile; nothing was dropped. Try again.")
    except StoreError as exc:
        flash(f"Nothing was dropped: {exc}", "error")
    else:
        flash(f"Dropped “{short}”: search no longer reads it as shorthand.")
    return redirect(url_for("curate.sheet_part", name="shorthand"))


# -- history ------------------------------------------------------------------------


@bp.get("/history/<path:path>")
@role_required("agent")
def history(path: str):
    path = _known_path(path)
    store = services().store
    revisions = store.history(path)
    current = store.version_of(path)
    slug = slug_of(path) if is_entry_path(path) else None
    try:
        found = services().sheet.entry(slug) if slug and current else None
    except EntryError:
        found = None
    return render_template("history.html", path=path, label=_label(path), revisions=revisions,
                           current=current, slug=slug if found is not None else None,
                           status=found.status if found is not None else None)


@bp.get("/history/<path:path>/diff")
@role_required("agent")
def diff(path: str):
    path = _known_path(path)
    sheet = services().sheet
    a, b = request.args.get("a", ""), request.args.get("b", "")
    try:
        old, new = text_at(sheet, path, a), text_at(sheet, path, b)
    except StoreError as exc:
        abort(404, description=str(exc))
    made = {r.version: r for r in services().store.history(path, limit=1000) if r.version}
    return render_template("diff.html", path=path, label=_label(path), a=a, b=b,
                           rows=side_by_side(readable(path, old), readable(path, new)),
                           a_made=made.get(a), b_made=made.get(b))


@bp.get("/history/<path:path>/at/<version>")
@role_required("agent")
def version(path: str, version: str):
    path = _known_path(path)
    try:
        text = text_at(services().sheet, path, version)
    except StoreError as exc:
        abort(404, description=str(exc))
    made = next((r for r in services().store.history(path, limit=1000)
                 if r.version == version), None)
    return render_template("version.html", path=path, label=_label(path), version=version,
                           text=readable(path, text), made=made)


@bp.route("/history/<path:path>/restore", methods=["GET", "POST"])
@role_required("trainer")
def restore_version(path: str):
    path = _known_path(path)
    if request.method == "GET":  # ask first, showing exactly what will change
        return _confirm_restore(path, request.args.get("version", ""))
    version = request.form.get("version", "")
    try:
        restore(services().sheet, path, version, request.form.get("reason", "")
                or f"Restore the version {version[:7]}", person_of(current_user))
    except ConflictError:
        flash("It changed while you were looking; check the history again.", "error")
    except StoreError as exc:
        flash(str(exc), "error")
    else:
        flash("Restored that version as a new version.")
    return redirect(url_for("curate.history", path=path))


def _confirm_restore(path: str, version: str):
    sheet = services().sheet
    revisions = sheet.store.history(path)
    chosen = next((r for r in revisions if r.version == version), None)
    if chosen is None or not version:
        abort(404, description=f"There is no version {version[:7]} of {path} to restore.")
    current = sheet.store.version_of(path)
    return render_template(
        "restore.html", path=path, label=_label(path), version=version, chosen=chosen,
        current=current, rows=side_by_side(readable(path, text_at(sheet, path, current)),
                                           readable(path, text_at(sheet, path, version))),
        latest=revisions[0] if revisions else None)


@bp.get("/changes")
@role_required("agent")
def changes():
    store = services().store
    rows = []
    for rev in store.history(limit=100):
        parent = None
        commit = store.repo[rev.commit.encode()]
        if commit.parents:
            parent = commit.parents[0].decode()
        rows.append((rev, store.changes_between(parent, rev.commit)))
    return render_template("changes.html", rows=rows, is_entry_path=is_entry_path,
                           slug_of=slug_of)
