"""The browser extension: its download, connecting it, the page-value rules, and the
two API calls only it needs (an entry's fields, the rules)."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from kb.auth import database, role_required
from kb.compose import fallbacks_in, label_of, placeholders_in
from kb.extension import (
    PAGE_VALUES,
    PRESETS,
    RulesError,
    build_zip,
    parse_rules,
    rules_text,
    sites_for_extension,
)
from kb.services import services
from kb.store import ConflictError, StoreError
from kb.users import create_token, person_of
from kb.views.common import load_entry

bp = Blueprint("extension", __name__)

TOKEN_LABEL = "Browser extension"


def _kb_url() -> str:
    """The address agents open kb at: the configured one, else the one this agent used
    to download (their own browser sent it, so it reaches this kb for them)."""
    return current_app.config.get("BASE_URL") or request.host_url


@bp.get("/extension")
@role_required("agent")
def page():
    return render_template("extension.html", token=None, kb_url=_kb_url().rstrip("/"))


@bp.post("/extension/connect")
@role_required("agent")
def connect():
    """One click: a token that lives as long as this sign-in, handed to the extension
    by its own script on this page (it takes it only from the kb it was set up for)."""
    token = create_token(database(), current_user.username, TOKEN_LABEL, with_session=True)
    return render_template("extension.html", token=token, kb_url=_kb_url().rstrip("/"))


@bp.get("/extension.zip")
@role_required("agent")
def download():
    return Response(build_zip(_kb_url()), mimetype="application/zip", headers={
        "Content-Disposition": 'attachment; filename="kb-extension.zip"',
        "Cache-Control": "no-store"})


@bp.route("/admin/page-values", methods=["GET", "POST"])
@role_required("admin")
def page_values():
    """Where helpdesk pages show the values entries ask for: the rules file, checked
    before it is saved (a file that cannot be used keeps the form as typed)."""
    store = services().store
    text, version = rules_text(store)
    error, status = None, 200
    if request.method == "POST":
        text = request.form.get("text", "").replace("\r\n", "\n")
        version = request.form.get("base_version") or None
        try:
            parse_rules(text)
            services().sheet.write(
                {PAGE_VALUES: text.rstrip() + "\n"},
                message=request.form.get("reason") or "Page values for the browser extension",
                author=person_of(current_user), expected={PAGE_VALUES: version})
        except RulesError as exc:
            error, status = f"Not saved: {exc} Your text is kept below.", 422
        except ConflictError:
            error = ("Not saved: someone saved these rules meanwhile. Copy your text, reload "
                     "the page and apply your change to theirs.")
            status = 409
        except StoreError as exc:
            error, status = f"Not saved: {exc}", 503
        else:
            flash("Saved. The extension follows the new rules the next time an agent picks "
                  "an entry.")
            return redirect(url_for("extension.page_values"))
    return render_template("page_values.html", text=text, version=version or "", error=error,
                           presets=PRESETS), status


# -- the API calls the extension makes besides search, compose and events ---------------


@bp.get("/api/entries/<slug>/fields")
@role_required("agent")
def fields(slug: str):
    """What the panel asks before composing: the placeholders of the email (or, with
    ?channel=chat and an entry that has one, of the chat message) in order, with the
    sheet's label, an example, the value it starts from (the agent's own name, the
    company) and the fallback that stands in when left empty. The sheet's facts are
    not fields: they are filled in by kb and never asked."""
    entry = load_entry(slug)
    svc = services()
    if request.args.get("channel") == "chat" and entry.chat:
        channel = "chat"
        texts = (svc.sheet.part("chat_greeting"), entry.chat, svc.sheet.part("chat_closing"))
    else:
        channel = "email"
        texts = (svc.sheet.part("greeting"), entry.answer, svc.sheet.part("closing"),
                 entry.title)
    known, labels, defaults = svc.sheet.placeholders(), svc.labels(), svc.defaults()
    facts, fallbacks = svc.sheet.facts(), fallbacks_in(*texts)
    return jsonify(slug=entry.slug, title=entry.title, version=entry.version, channel=channel,
                   fields=[{
        "name": name, "label": label_of(name, labels),
        "example": str(known.get(name, {}).get("example") or ""),
        "value": defaults.get(name, ""), "fallback": fallbacks.get(name, ""),
    } for name in placeholders_in(*texts) if name not in facts])


@bp.get("/api/extension/page-values")
@role_required("agent")
def page_value_rules():
    return jsonify(sites=sites_for_extension(services().store))
