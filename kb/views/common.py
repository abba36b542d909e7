"""Helpers shared by the page, curation and API views."""

from __future__ import annotations

import logging

from flask import abort, make_response, render_template, request
from werkzeug.routing import IntegerConverter

from kb import priority
from kb.auth import database
from kb.checks import check_entry, rules_for
from kb.db import DOWN, MAX_ID
from kb.entry import EntryError
from kb.facts import contradictions
from kb.preview import Preview, preview_fields
from kb.services import services
from kb.store import StoreError
from kb.users import list_users

log = logging.getLogger("kb")


class IdConverter(IntegerConverter):
    """`<int:...>` in a route: a row id, so a number no database can hold is a 404
    like any other id that does not exist."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def unless_down(default, read, *args, **kwargs):
    """A read of the database that a page can do without (recent entries, counts,
    suggestions): while the database is down the page shows `default` instead, so
    signed-in people keep searching, reading and copying."""
    try:
        return read(*args, **kwargs)
    except DOWN as exc:
        log.warning("database unreachable, %s left out: %s", getattr(read, "__name__", read),
                    str(exc).splitlines()[0])
        return default


def search_as(person_id, text: str, **options):
    """The search index's answer, one search at a time per person (kb.priority); a
    person whose earlier search still holds their turn after a while gets 429."""
    try:
        with priority.share.slot(person_id):
            return services().index.search(text, **options)
    except priority.Busy:
        abort(429, description="Your earlier searches are still running; send one search "
                               "at a time.")


def load_entry(slug: str):
    """The entry for a route, or a 404 / clear error for a missing or broken file."""
    try:
        entry = services().sheet.entry(slug)
    except (EntryError, StoreError) as exc:
        abort(422, description=f"The entry file {slug}.md cannot be read: {exc}. "
                               "A trainer needs to fix the file.")
    if entry is not None and entry.status == "retired" and not request.path.startswith("/api/"):
        abort(make_response(retired_page(entry), 410))
    if entry is not None and entry.status == "retired":
        entry = None
    if entry is None:
        abort(404, description=f"There is no entry called '{slug}'. Search for it instead.")
    return entry


def retired_page(entry) -> str:
    """An old link to a retired entry: why it went, when, and what to use instead."""
    svc = services()
    path = f"{entry.slug}.md"
    last = next(iter(svc.store.history(path, limit=1)), None)
    replacement = None
    target = str(entry.extra.get("replaced_by") or "").strip()
    if target:
        try:
            found = svc.sheet.entry(target)
        except (EntryError, StoreError):
            found = None
        if found is not None and found.published:
            replacement = found
    similar = [h for h in svc.index.search(entry.title, limit=4).hits if h.slug != entry.slug]
    return render_template("retired.html", entry=entry, last=last, replacement=replacement,
                           similar=similar[:3])


def entry_findings(entry) -> list:
    """The answer checks for an entry, with the team's rules, placeholders and facts."""
    sheet = services().sheet
    facts = sheet.facts()
    return (check_entry(entry, rules_for(sheet), sheet.known_names()) +
            contradictions(entry, facts))


def form_preview(fields: dict[str, str]) -> Preview:
    """The preview and checks shown beside an entry form, for its fields as sent."""
    sheet = services().sheet
    return preview_fields(fields, rules_for(sheet), sheet.known_names(),
                          services().index.facets(), sheet.facts())


def form_choices() -> dict[str, list[str]]:
    """What the entry form offers to pick from: the sheet's categories and tags, and
    owners (those entries name, and the trainers). Read from the index: cheap."""
    svc = services()
    facets = svc.index.facets()
    owners = set(svc.index.owners())
    owners.update(u.username for u in list_users(database())
                  if u.can("trainer") and u.active)
    return {"categories": facets["categories"], "tags": facets["tags"],
            "owners": sorted(owners, key=str.lower)}


def index_state() -> str:
    """After a save (already in git): "current", or "catching up" while the
    search index is being rebuilt and does not show it yet."""
    return "catching up" if services().index.catching_up else "current"


def saved_note(done: str) -> str:
    """The message after a save, saying when search has not caught up yet."""
    if index_state() == "current":
        return done
    return f"{done} (Search is catching up and will find the change shortly.)"


def tell_trainers(proposal_id: int, again: bool = False) -> None:
    """After a proposal is committed: the trainers hear of it (and get an email). The
    proposal stands even if this fails, so a failure is logged, not shown."""
    from flask import current_app

    from kb import notifications as N
    from kb import proposals as P

    try:
        proposal = P.get(database(), proposal_id)
        N.proposal_arrived(database(), proposal, P.title_of(proposal),
                           current_app.extensions.get("kb_mail"),
                           current_app.config["BASE_URL"], again=again)
    except Exception as exc:  # noqa: BLE001
        logging.getLogger("kb.notifications").warning(
            "Could not tell the trainers of proposal #%s: %s: %s", proposal_id,
            type(exc).__name__, exc)


def chat_for(entry, values: dict, defaults: dict, labels: dict):
    """The entry's chat and SMS message for these values (None without a chat version)."""
    from kb.compose import compose_chat

    svc = services()
    return compose_chat(entry, svc.sheet.part("chat_greeting"), svc.sheet.part("chat_closing"),
                        values, defaults, labels, rules_for(svc.sheet).chat_limit)


def added_entries(slug: str) -> list:
    """The entries added to this one's reply ("and also…": ?and=a,b), in order, each
    once, at most MAX_TOGETHER in all; an unknown one is a 404 naming it."""
    from kb.compose import MAX_TOGETHER

    raw = request.args.get("and", "")
    slugs = [s for s in dict.fromkeys(raw.split(",")) if s and s != slug]
    return [load_entry(s) for s in slugs[:MAX_TOGETHER - 1]]
