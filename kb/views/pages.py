"""The pages agents use: search, entry, compose."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, render_template, request, url_for

from kb.app import services
from kb.auth import role_required
from kb.compose import compose, phone_script, placeholders_in
from kb.render import to_html
from kb.views.api import load_entry

bp = Blueprint("pages", __name__)

AGENT_FIELD = "agent_name"


def _values() -> dict[str, str]:
    """Placeholder values from the query string (the compose form submits by GET)."""
    return {k: v for k, v in request.args.items() if v and k not in ("q", "slug", "to")}


@bp.get("/")
@role_required("agent")
def search():
    svc = services()
    query = request.args.get("q", "")
    tag = request.args.get("tag") or None
    category = request.args.get("category") or None
    results = None
    if query.strip() or tag or category:
        results = svc.index.search(query, limit=20, tag=tag, category=category)
    return render_template(
        "search.html", query=query, results=results, tag=tag, category=category,
        facets=svc.index.facets(), browse=None if results else svc.index.browse(),
        problems=svc.index.problem_list(),
    )


def _form_fields(entry, svc):
    """The placeholders the compose form asks for, with labels and defaults."""
    known = svc.sheet.placeholders()
    defaults = svc.defaults()
    names = placeholders_in(svc.sheet.part("greeting"), entry.answer, svc.sheet.part("closing"),
                            svc.sheet.part("phone_opening"), entry.phone)
    if AGENT_FIELD in names:  # the agent's own name goes last: it is usually remembered
        names = [n for n in names if n != AGENT_FIELD] + [AGENT_FIELD]
    fields = []
    for name in names:
        info = known.get(name, {})
        fields.append({
            "name": name,
            "label": info.get("label") or name.replace("_", " ").capitalize(),
            "example": info.get("example", ""),
            "value": request.args.get(name, defaults.get(name, "")),
            "known": name in known,
        })
    return fields


@bp.get("/e/<slug>")
@role_required("agent")
def entry(slug: str):
    svc = services()
    found = load_entry(slug)
    values = _values()
    email = compose(found, svc.sheet.part("greeting"), svc.sheet.part("closing"), values,
                    svc.defaults())
    opening, points, _ = phone_script(svc.sheet.part("phone_opening"), found, values,
                                      svc.defaults())
    overdue = None
    if found.last_reviewed and found.review_every_days:
        due = found.last_reviewed + dt.timedelta(days=found.review_every_days)
        overdue = due if due < dt.date.today() else None
    return render_template(
        "entry.html", entry=found, answer_html=to_html(found.answer), email=email,
        opening=opening, points=points, fields=_form_fields(found, svc), overdue=overdue,
        query=request.args.get("q", ""),
        eml_url=url_for("pages.eml", slug=found.slug, **values),
    )


@bp.get("/e/<slug>/email.eml")
@role_required("agent")
def eml(slug: str):
    svc = services()
    found = load_entry(slug)
    email = compose(found, svc.sheet.part("greeting"), svc.sheet.part("closing"), _values(),
                    svc.defaults())
    return Response(
        email.to_eml(to=request.args.get("to", "")), mimetype="message/rfc822",
        headers={"Content-Disposition": f'attachment; filename="{found.slug}.eml"'},
    )
