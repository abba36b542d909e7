"""Who may use what: every route of the app against every role.

The table below names, for each endpoint, the least role that may use it
(None: everyone, signed in or not). A new route fails `test_every_route_is_in_the_table`
until it is added here with real requests, so no route ships without a role check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest

from kb import create_app
from kb.auth import public, role_required
from kb.proposals import create as create_proposal
from kb.users import create_user, get_user
from tests.conftest import PASSWORD, PEOPLE, TARA, csrf_from, entry_text, login, write_seed

ANON, AGENT, TRAINER, ADMIN = "anonymous", "agent", "trainer", "admin"
ROLES = (ANON, AGENT, TRAINER, ADMIN)
USER_OF = {AGENT: "alice", TRAINER: "tara", ADMIN: "adam"}
RANK = {ANON: 0, AGENT: 1, TRAINER: 2, ADMIN: 3}

# endpoint -> the least role that may use it; None is public
MIN_ROLE: dict[str, str | None] = {
    "pages.search": AGENT,
    "pages.entry": AGENT,
    "pages.eml": AGENT,
    "auth.login": None,
    "health.healthz": None,
    "health.readyz": None,
    "health.push_hook": None,
    "auth.logout": AGENT,
    "auth.profile": AGENT,
    "auth.users": ADMIN,
    "curate.propose_new": AGENT,
    "curate.suggest": AGENT,
    "curate.mine": AGENT,
    "curate.resubmit": AGENT,
    "curate.queue": TRAINER,
    "curate.review": TRAINER,
    "curate.edit": TRAINER,
    "curate.set_status": TRAINER,
    "curate.sheet_part": TRAINER,
    "curate.drop_shorthand": TRAINER,
    "curate.history": AGENT,
    "curate.diff": AGENT,
    "curate.version": AGENT,
    "curate.restore_version": TRAINER,
    "curate.changes": AGENT,
    "api.search": AGENT,
    "api.session_alive": AGENT,
    "api.entry": AGENT,
    "api.compose_entry": AGENT,
    "api.create_proposal": AGENT,
    "api.my_proposals": AGENT,
    "api.put_entry": TRAINER,
    "api.retire": TRAINER,
    "api.unretire": TRAINER,
    "api.restore_entry": TRAINER,
    "api.entry_history": AGENT,
    "api.entry_diff": AGENT,
    "api.event": AGENT,
    "api.favourite": AGENT,
    "api.entry_checks": AGENT,
    "api.check_sheet_part": TRAINER,
    "api.preview_entry": AGENT,
    "api.facts": AGENT,
    "api.outcome": AGENT,
    "api.put_file": TRAINER,
    "pages.file": AGENT,
    "reports.gaps": TRAINER,
    "reports.usage_report": TRAINER,
    "reports.review_due_list": AGENT,
    "reports.mark_reviewed": TRAINER,
    "reports.printable": AGENT,
    "reports.export": TRAINER,
    "reports.openapi": AGENT,
    "phrasings.suggestions": TRAINER,
    "phrasings.accept": TRAINER,
    "phrasings.dismiss": TRAINER,
    "phrasings.accept_many": TRAINER,
    "setup.start": ADMIN,
    "notices.index": AGENT,
    "notices.count": AGENT,
    "notices.open_one": AGENT,
    "notices.read_all": AGENT,
    "extension.page": AGENT,
    "extension.connect": AGENT,
    "extension.download": AGENT,
    "extension.page_values": ADMIN,
    "extension.fields": AGENT,
    "extension.page_value_rules": AGENT,
}


@dataclass(frozen=True)
class Case:
    """One real request to one route. `url` may use {pid}, {old}, {cur} (set up below)."""

    endpoint: str
    method: str
    url: str
    ok: int  # the status an allowed role gets for this (harmless) request
    form: dict = field(default_factory=dict)
    json: dict | None = None
    # role -> status, where the rule is more than the role (only the author may rework)
    special: dict = field(default_factory=dict)

    @property
    def api(self) -> bool:
        return self.url.startswith("/api/")

    def __str__(self) -> str:
        return f"{self.method} {self.endpoint}"


NOT_AUTHOR = {TRAINER: 403, ADMIN: 403}
HIST = "/history/refund-status.md"

CASES = [
    # pages for agents
    Case("pages.search", "GET", "/?q=refund", 200),
    Case("pages.entry", "GET", "/e/refund-status", 200),
    Case("pages.entry", "POST", "/e/refund-status", 200, form={"customer_name": "Ana"}),
    Case("pages.eml", "POST", "/e/refund-status/email.eml", 200,
         form={"customer_name": "Ana", "blanks": "1"}),
    # signing in and out, profile, users
    Case("auth.login", "GET", "/login", 200),
    Case("health.healthz", "GET", "/healthz", 200),
    Case("health.readyz", "GET", "/readyz", 200),
    Case("health.push_hook", "POST", "/api/hooks/push", 404, json={}),  # no KB_REMOTE here
    Case("auth.login", "POST", "/login", 302,
         form={"username": "alice", "password": PASSWORD}),
    Case("auth.logout", "POST", "/logout", 302),
    Case("auth.profile", "GET", "/profile", 200),
    Case("auth.profile", "POST", "/profile", 302, form={"action": ""}),
    Case("auth.users", "GET", "/admin/users", 200),
    Case("auth.users", "POST", "/admin/users", 302, form={"action": ""}),
    # proposals (an empty form is shown again with the reason it cannot be sent)
    Case("curate.propose_new", "GET", "/propose?phrasing=my+parcel+is+lost", 200),
    Case("curate.propose_new", "POST", "/propose", 200, form={"title": ""}),
    Case("curate.suggest", "GET", "/e/refund-status/suggest", 200),
    Case("curate.suggest", "POST", "/e/refund-status/suggest", 200, form={"title": ""}),
    Case("curate.mine", "GET", "/proposals", 200),
    Case("curate.resubmit", "GET", "/proposals/{pid}/resubmit", 200, special=NOT_AUTHOR),
    Case("curate.resubmit", "POST", "/proposals/{pid}/resubmit", 200, form={"title": ""},
         special=NOT_AUTHOR),
    # review and direct edits
    Case("curate.queue", "GET", "/review", 200),
    Case("curate.review", "GET", "/review/{pid}", 200),
    Case("curate.review", "POST", "/review/{pid}", 200, form={"action": ""}),
    Case("curate.edit", "GET", "/e/refund-status/edit", 200),
    Case("curate.edit", "POST", "/e/refund-status/edit", 200, form={"title": ""}),
    Case("curate.set_status", "POST", "/e/refund-status/status", 302,
         form={"status": "published", "reason": "still in use"}),
    Case("curate.sheet_part", "GET", "/sheet/greeting", 200),
    Case("curate.sheet_part", "POST", "/sheet/greeting", 200, form={"text": "Hi"}),
    Case("curate.sheet_part", "GET", "/sheet/shorthand", 200),
    # no shorthand named: refused, nothing written
    Case("curate.drop_shorthand", "POST", "/sheet/shorthand/drop", 400, form={"short": ""}),
    # history
    Case("curate.history", "GET", HIST, 200),
    Case("curate.diff", "GET", HIST + "/diff?a={old}&b={cur}", 200),
    Case("curate.version", "GET", HIST + "/at/{old}", 200),
    Case("curate.restore_version", "GET", HIST + "/restore?version={old}", 200),
    Case("curate.restore_version", "POST", HIST + "/restore", 302,
         form={"version": "{cur}", "reason": "matrix"}),
    Case("curate.changes", "GET", "/changes", 200),
    # the JSON API
    Case("api.search", "GET", "/api/search?q=refund", 200),
    Case("api.session_alive", "GET", "/api/session", 200),
    Case("api.entry", "GET", "/api/entries/refund-status", 200),
    Case("api.compose_entry", "POST", "/api/compose/refund-status", 200,
         json={"customer_name": "Ana"}),
    Case("api.create_proposal", "POST", "/api/proposals", 201,
         json={"title": "Parcel is lost", "answer": "We will look for it.",
               "reason": "asked on chat"}),
    Case("api.my_proposals", "GET", "/api/proposals", 200),
    Case("api.put_entry", "PUT", "/api/entries/refund-status", 409,
         json={"base_version": "0" * 40, "answer": "Changed.", "reason": "matrix"}),
    Case("api.retire", "POST", "/api/entries/wrong-colour/retire", 200,
         json={"reason": "old range"}),
    Case("api.unretire", "POST", "/api/entries/wrong-colour/unretire", 200, json={}),
    Case("api.restore_entry", "POST", "/api/entries/refund-status/restore", 200,
         json={"version": "{cur}"}),
    Case("api.entry_history", "GET", "/api/entries/refund-status/history", 200),
    Case("api.entry_diff", "GET", "/api/entries/refund-status/diff?from={old}&to={cur}", 200),
    Case("api.event", "POST", "/api/events", 201, json={"kind": "copy", "slug": "refund-status"}),
    Case("api.favourite", "POST", "/api/favourites/refund-status", 200, json={"on": True}),
    Case("api.entry_checks", "GET", "/api/entries/refund-status/checks", 200),
    Case("api.check_sheet_part", "POST", "/api/sheet/greeting/check", 200,
         json={"text": "Hi {{ customer_name }},"}),
    Case("api.preview_entry", "POST", "/api/preview-entry", 200, json={"answer": "Hello."}),
    Case("api.facts", "GET", "/api/facts", 200),
    Case("api.put_file", "PUT", "/api/files/x.pdf", 422, json={}),
    Case("pages.file", "GET", "/files/none.pdf", 404),
    Case("api.outcome", "POST", "/api/outcomes", 404, json={"copy": "00" * 8,
                                                           "signal": "wrong"}),
    Case("reports.openapi", "GET", "/api/openapi.json", 200),
    # keeping the sheet good
    Case("reports.gaps", "GET", "/gaps", 200),
    Case("reports.usage_report", "GET", "/usage", 200),
    Case("reports.review_due_list", "GET", "/review-due", 200),
    Case("reports.mark_reviewed", "POST", "/e/refund-status/reviewed", 302,
         form={"reason": "matrix"}),
    Case("reports.printable", "GET", "/print", 200),
    Case("reports.export", "GET", "/export.csv", 200),
    # learned customer wordings (nothing suggested here, so nothing is written)
    Case("phrasings.suggestions", "GET", "/phrasings", 200),
    Case("phrasings.accept", "POST", "/phrasings/accept", 302,
         form={"slug": "refund-status", "wording": "never searched"}),
    Case("phrasings.dismiss", "POST", "/phrasings/dismiss", 302, form={"slug": "refund-status"}),
    Case("phrasings.accept_many", "POST", "/phrasings/accept-many", 302,
         form={"pick": "refund-status\nnever searched"}),
    # the first-visit choice about the starter entries (no choice made: shown again)
    Case("setup.start", "GET", "/admin/start", 200),
    Case("setup.start", "POST", "/admin/start", 302, form={"action": ""}),
    # one's own notifications (nobody has one numbered 9999)
    Case("notices.index", "GET", "/notifications", 200),
    Case("notices.count", "GET", "/notifications/count", 200),
    Case("notices.open_one", "GET", "/notifications/9999", 404),
    Case("notices.read_all", "POST", "/notifications/read", 302),
    # the browser extension (a rule that cannot be used is refused and nothing is saved)
    Case("extension.page", "GET", "/extension", 200),
    Case("extension.connect", "POST", "/extension/connect", 200),
    Case("extension.download", "GET", "/extension.zip", 200),
    Case("extension.page_values", "GET", "/admin/page-values", 200),
    Case("extension.page_values", "POST", "/admin/page-values", 422,
         form={"text": "presets: [nope]"}),
    Case("extension.fields", "GET", "/api/entries/refund-status/fields", 200),
    Case("extension.page_value_rules", "GET", "/api/extension/page-values", 200),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One app for the whole matrix: the requests below leave the content as it was."""
    base = tmp_path_factory.mktemp("roles")
    seed = write_seed(base / "seed")
    app = create_app({"INSTANCE_DIR": str(base / "instance"), "SEED_DIR": str(seed),
                      "TESTING": True})
    db = app.extensions["kb_db"]
    for name, role in PEOPLE.items():
        create_user(db, name, PASSWORD, role=role, display_name=name.title() + " Example")
    svc = app.extensions["kb"]
    old = svc.store.version_of("refund-status.md")
    svc.sheet.write({"refund-status.md": entry_text(
        "Refund status", "Your refund was sent on {{ date }}.",
        phrasings=["where is my money"], tags="[refund]")}, message="Shorter", author=TARA)
    cur = svc.store.version_of("refund-status.md")
    proposal = create_proposal(db, svc.sheet, get_user(db, "alice"), "refund-status",
                               entry_text("Refund status", "Sent on {{ date }}."), "Shorter",
                               cur, False)
    yield app, {"pid": proposal.id, "old": old, "cur": cur}
    svc.index.close()
    db.dispose()


def _client(app, role: str):
    client = app.test_client()
    if role != ANON:
        assert login(client, USER_OF[role]).status_code == 302
    return client


def _expected(case: Case, role: str) -> int:
    need = MIN_ROLE[case.endpoint]
    if need is None:
        return case.ok
    if role == ANON:
        return 401 if case.api else 302
    if RANK[role] < RANK[need]:
        return 403
    return case.special.get(role, case.ok)


def _fill(value, ids: dict):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def test_every_route_is_in_the_table(world):
    app, _ = world
    endpoints = {r.endpoint for r in app.url_map.iter_rules()} - {"static"}
    assert endpoints - set(MIN_ROLE) == set(), "add the new routes to MIN_ROLE and CASES"
    assert set(MIN_ROLE) - endpoints == set(), "MIN_ROLE names routes the app no longer has"


def test_every_method_of_every_route_has_a_case(world):
    app, _ = world
    wanted = {(r.endpoint, m) for r in app.url_map.iter_rules() if r.endpoint != "static"
              for m in r.methods - {"HEAD", "OPTIONS"}}
    covered = {(c.endpoint, c.method) for c in CASES}
    assert wanted - covered == set(), "add a real request for these to CASES"
    assert covered - wanted == set()


def test_case_urls_reach_their_endpoint(world):
    app, ids = world
    adapter = app.url_map.bind("localhost")
    for case in CASES:
        path = urlsplit(_fill(case.url, ids)).path
        endpoint, _args = adapter.match(path, method=case.method)
        assert endpoint == case.endpoint, f"{case}: {path} goes to {endpoint}"


def test_every_view_says_which_role_it_needs(world):
    app, _ = world
    for endpoint, view in app.view_functions.items():
        if endpoint == "static":
            continue
        assert hasattr(view, "required_role"), f"{endpoint} has no @role_required or @public"
        assert view.required_role == MIN_ROLE[endpoint], endpoint


def test_the_decorators_set_required_role():
    def view():
        return "ok"

    assert role_required("trainer")(view).required_role == "trainer"
    assert public(view).required_role is None


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_route_by_role(world, case: Case, role: str):
    app, ids = world
    client = _client(app, role)
    url = _fill(case.url, ids)
    kwargs = {}
    if case.json is not None:
        kwargs["json"] = _fill(case.json, ids)
    elif case.method != "GET":
        # the session's CSRF token is the same on every page: take it from the sign-in page
        token = csrf_from(client.get("/login").get_data(as_text=True))
        kwargs["data"] = {"csrf_token": token, **_fill(case.form, ids)}
    response = client.open(url, method=case.method, **kwargs)
    expected = _expected(case, role)
    assert response.status_code == expected, response.get_data(as_text=True)[:500]
    if expected == 302 and role == ANON and MIN_ROLE[case.endpoint] is not None:
        target = urlsplit(response.headers["Location"])
        assert target.path == "/login"
        assert parse_qs(target.query)["next"] == [url.rstrip("?")]  # back here after
    if case.api and expected in (401, 403):
        assert response.is_json and response.get_json()["message"]
    if expected == 403 and not case.api:
        assert "Ask an admin" in response.get_data(as_text=True) or \
            case.special.get(role) == 403


def test_logout_signs_out(app, client):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/").status_code == 302
