"""The pages agents use: search, entry, compose."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user

from kb import phrasings, starter, usage
from kb.attachments import FILES_DIR, NAME_RE, files_of, mimetype_of
from kb.auth import database, role_required
from kb.compose import (
    PLACEHOLDER_NAME,
    compose,
    fallbacks_in,
    label_of,
    phone_script,
    placeholders_in,
    together,
)
from kb.db import as_id
from kb.entry import EntryError, entry_overdue
from kb.history import change_summary, side_by_side
from kb.render import to_html
from kb.services import services
from kb.views.common import added_entries, chat_for, load_entry, search_as, unless_down

bp = Blueprint("pages", __name__)

AGENT_FIELD = "agent_name"
BROWSE_ALL = 400  # list every title on the empty search page up to this many entries


def _values() -> dict[str, str]:
    """Placeholder values typed into the compose form. The form is POSTed, never sent
    by GET: what an agent types about a customer stays out of URLs, and so out of
    browser history, server logs and links passed around."""
    if request.method != "POST":
        return {}
    return {k: v for k, v in request.form.items()
            if v and PLACEHOLDER_NAME.fullmatch(k) and k not in ("csrf_token", "to", "blanks")}


def _titles(slugs: list[str]) -> list[dict]:
    """Slug and title of each entry that still exists and is published."""
    rows = []
    for slug in slugs:
        try:
            found = services().sheet.entry(slug)
        except EntryError:
            continue
        if found is not None and found.published:
            rows.append({"slug": slug, "title": found.title})
    return rows


@bp.get("/")
@role_required("agent")
def search():
    svc = services()
    query = request.args.get("q", "")
    tag = request.args.get("tag") or None
    category = request.args.get("category") or None
    results, search_id = None, None
    as_typed = request.args.get("as_typed") == "1"
    if query.strip() or tag or category:
        results = search_as(current_user.id, query, limit=20, tag=tag, category=category,
                            as_typed=as_typed)
        search_id = usage.log_search(database(), current_user.id, query, results.words,
                                     results.total)
    db = database()
    if results is None and unless_down(False, _offer_start, db):
        return redirect(url_for("setup.start"))
    browse, counts = None, None
    if results is None:  # the empty page: the whole sheet, or its categories when large
        svc.index.ensure_fresh()
        if svc.index.doc_count() <= BROWSE_ALL:
            browse = svc.index.browse()
        else:
            counts = svc.index.category_counts()
    return render_template(
        "search.html", query=query, results=results, tag=tag, category=category,
        as_typed=as_typed,
        facets=svc.index.facets(), browse=browse, category_counts=counts,
        problems=svc.index.problem_list(), search_id=search_id,
        meaning_error=svc.index.meaning.error if current_user.can("admin") else None,
        recent=_titles(unless_down([], usage.recent, db, current_user.id)),
        favourites=_titles(unless_down([], usage.favourites, db, current_user.id)),
    )


def _offer_start(db) -> bool:
    """The admin's first visit to a sheet still holding the untouched starter
    entries goes to the choice page, once per sign-in."""
    if not current_user.can("admin") or session.get("kb_start_offered"):
        return False
    session["kb_start_offered"] = True
    return starter.should_offer(db, services().store, current_app.config["SEED_DIR"])


def _form_fields(entry, svc, values: dict[str, str]):
    """The placeholders the compose form asks for, with labels and defaults."""
    known = svc.sheet.placeholders()
    defaults = svc.defaults()
    texts = (svc.sheet.part("greeting"), entry.answer, svc.sheet.part("closing"),
             svc.sheet.part("phone_opening"), entry.phone)
    if entry.chat:  # the chat version's own blanks, and its greeting's and closing's
        texts += (svc.sheet.part("chat_greeting"), entry.chat, svc.sheet.part("chat_closing"))
    facts = svc.sheet.facts()  # filled by the sheet, never asked
    names = [n for n in placeholders_in(*texts) if n not in facts]
    fallbacks = fallbacks_in(*texts)
    if AGENT_FIELD in names:  # the agent's own name goes last: it is usually remembered
        names = [n for n in names if n != AGENT_FIELD] + [AGENT_FIELD]
    fields = []
    for name in names:
        info = known.get(name, {})
        fields.append({
            "name": name,
            "label": info.get("label") or name.replace("_", " ").capitalize(),
            "example": info.get("example", ""),
            "value": values.get(name, defaults.get(name, "")),
            "known": name in known,
            "fallback": fallbacks.get(name, ""),
        })
    return fields


@bp.route("/e/<slug>", methods=["GET", "POST"])
@role_required("agent")
def entry(slug: str):
    """The entry; a POST (the compose form without JavaScript) shows it filled in."""
    svc = services()
    found = load_entry(slug)
    others = added_entries(slug)
    reply = together([found, *others])  # the entries of one reply ("and also…")
    values = svc.typed(_values())
    defaults, labels = svc.defaults(), svc.labels()  # each parses the sheet's parts
    email = compose(reply, svc.sheet.part("greeting"), svc.sheet.part("closing"), values,
                    defaults, labels)
    opening, points, _ = phone_script(svc.sheet.part("phone_opening"), reply, values,
                                      defaults, labels)
    chat = chat_for(reply, values, defaults, labels)
    overdue = entry_overdue(found)
    db = database()
    sid = as_id(request.args.get("sid"))
    if request.method == "GET":  # filling in the form is not another view
        usage.log_event(db, current_user.id, "view", slug, found.version, sid)
    learned = (unless_down([], phrasings.suggestions, db, svc.sheet, slug=slug)
               if current_user.can("trainer") else [])
    return render_template(
        "entry.html", entry=found, answer_html=to_html(found.answer), email=email,
        opening=opening, points=points, fields=_form_fields(reply, svc, values), overdue=overdue,
        others=others, together=[{"slug": e.slug, "version": e.version}
                                 for e in [found, *others]],
        query=request.args.get("q", ""), search_id=sid or "",
        changed=unless_down(None, _changed_since_copied, found),
        favourite=slug in unless_down([], usage.favourites, db, current_user.id),
        learned=learned, missing_labels=[label_of(n, labels) for n in email.missing],
        chat=chat, files=files_of(reply),
    )


def _changed_since_copied(entry):
    """What changed in the answer since this agent last copied it, or None."""
    copied = usage.last_copied_version(database(), current_user.id, entry.slug)
    if not copied or copied == entry.version:
        return None
    try:
        old = services().sheet.entry_at_version(entry.slug, copied)
        before = old.answer + "\nOn the phone:\n" + old.phone
    except (EntryError, KeyError, ValueError):
        before = ""
    after = entry.answer + "\nOn the phone:\n" + entry.phone
    if before == after:
        return None
    return {"rows": side_by_side(before, after), "summary": change_summary(before, after)}


@bp.get("/files/<name>")
@role_required("agent")
def file(name: str):
    """A file that goes with answers: always a download, never run by the browser."""
    if not NAME_RE.match(name):
        abort(404, description="There is no such file: pick it from the entry's page.")
    data = attachment_bytes(name)
    if data is None:
        abort(404, description=f"There is no file called {name}: pick it from the entry's "
                               "page.")
    return Response(data, mimetype=mimetype_of(name), headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox"})


def attachment_bytes(name: str) -> bytes | None:
    store = services().store
    version = store.version_of(FILES_DIR + name)
    return store.read_bytes(version) if version else None


@bp.post("/e/<slug>/email.eml")
@role_required("agent")
def eml(slug: str):
    """The email as a draft file, from the compose form's values (POSTed: see _values)."""
    svc = services()
    found = load_entry(slug)
    to = request.form.get("to", "")
    if "\r" in to or "\n" in to:
        abort(400, description="The To address cannot contain a line break. Type one "
                               "address, or leave it empty and fill it in your mail program.")
    reply = together([found, *added_entries(slug)])
    labels = svc.labels()
    email = compose(reply, svc.sheet.part("greeting"), svc.sheet.part("closing"),
                    svc.typed(_values()), svc.defaults(), labels)
    if email.missing and request.form.get("blanks") != "1":  # the rule Copy follows
        names = ", ".join(label_of(n, labels) for n in email.missing)
        abort(422, description=f"Not downloaded: fill {names} on the entry page first, "
                               "or choose “Download with blanks” there.")
    files = [(name, data, mimetype_of(name)) for name in files_of(reply)
             if (data := attachment_bytes(name)) is not None]
    return Response(
        email.to_eml(to=to, files=files), mimetype="message/rfc822",
        headers={"Content-Disposition": f'attachment; filename="{found.slug}.eml"'},
    )
