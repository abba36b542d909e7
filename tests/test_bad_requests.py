"""Odd ids, odd parameters and odd bodies on every route, as every role: the answer
is a page or a 4xx with a message, never a server error.

The walk takes the routes from the app's own url_map, so a route added later is
walked too without anyone listing it here."""

from __future__ import annotations

import itertools
import re

import pytest

from kb import create_app
from kb.proposals import create as create_proposal
from kb.users import create_user, get_user
from tests.conftest import PASSWORD, PEOPLE, TARA, entry_text, login, post_form, write_seed

HUGE = "99999999999999999999"  # past SQLite's 64-bit integers
MARK = "\u2063kb0\u2063"
# what each kind of URL part is tried with
PART_VALUES = {
    "int": ["0", "9999", HUGE],
    "default": ["no-such-entry", "refund-status", "x" * 300, MARK],
    "path": ["no-such.md", "refund-status.md", "_sheet/greeting.md", "../../etc/passwd"],
}
QUERIES = [
    "",
    "?_method=POST",
    "?" + "&".join(f"{k}={v}" for k, v in {
        "q": "%00%0d%0a", "tag": "%0d%0a", "category": MARK, "limit": HUGE, "sid": HUGE,
        "to": "ana@example.com%0d%0aBcc:%20x@example.com", "from": "zz", "a": "zz", "b": "0" * 40,
        "days": HUGE, "next": "//evil.example", "mine": "1", "version": HUGE, "page": HUGE,
        "customer_name": MARK, "amount": "%0a" * 3, "typing": "1"}.items()),
    "?limit=-5&page=-1&sid=-1&days=0&q=" + "x" * 3000,
]
FORM = {
    "title": "Two\nlines", "answer": "Answer " + MARK, "phone": "- x", "phrasings": "a\nb",
    "tags": "x", "category": "c", "status": "bogus", "owner": "o", "last_reviewed": "9999-12-31",
    "review_every_days": HUGE, "reason": "r", "base_version": "zz", "over_version": "zz",
    "text": "---\ntitle: [\n---\n", "comment": "c", "version": HUGE, "token_id": HUGE,
    "username": "nobody-here", "role": "god", "display_name": "d", "email": "e",
    "to": "ana@example.com\r\nBcc: eve@example.com",
    "current": "x", "new": "y", "confirm": "z", "label": "l", "back": "//evil.example",
}
ACTIONS = ["approve", "reject", "send_back", "profile", "password", "token", "revoke",
           "create", "role", "email", "disable", "enable", "reset", "bogus"]
BODIES = [
    {}, [], "text", 5, None,
    {"slug": 5, "base_version": 7, "title": ["x"], "answer": {"a": 1}, "phrasings": "one",
     "tags": [1, None], "review_every_days": HUGE, "last_reviewed": "9999-99-99", "version": 5,
     "reason": ["r"], "kind": "copy", "search_id": HUGE, "on": "x", "markdown": 5,
     "values": [], "status": 3},
    {"slug": ["a"], "base_version": {"x": 1}, "title": "Two\nlines", "answer": "A " + MARK,
     "reason": "r", "version": "zz", "kind": "copy", "search_id": -1, "values": {"x": [1]},
     "markdown": "---\ntitle: x\n---\n" + MARK},
]
WITH_ACTIONS = {"auth.profile", "auth.users", "curate.review"}
SKIP = {"auth.logout", "auth.login", "static"}  # signing out would end the walk's session


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad")
    seed = write_seed(base / "seed")
    app = create_app({"INSTANCE_DIR": str(base / "instance"), "SEED_DIR": str(seed),
                      "TESTING": True, "WTF_CSRF_ENABLED": False})
    db = app.extensions["kb_db"]
    for name, role in PEOPLE.items():
        create_user(db, name, PASSWORD, role=role, display_name=name.title() + " Example")
    svc = app.extensions["kb"]
    create_proposal(db, svc.sheet, get_user(db, "alice"), "refund-status",
                    entry_text("Refund status", "Sent on {{ date }}."), "Shorter",
                    svc.store.version_of("refund-status.md"), False)
    yield app
    svc.index.close()
    db.dispose()


def _urls(rule) -> list[str]:
    names = list(rule.arguments)
    choices = []
    for name in names:
        kind = type(rule._converters[name]).__name__.replace("Converter", "").lower()
        kind = {"integer": "int", "unicode": "default", "string": "default"}.get(kind, kind)
        choices.append(PART_VALUES.get(kind, PART_VALUES["default"]))
    urls = []
    for combo in itertools.product(*choices):
        path = rule.rule
        for name, value in zip(names, combo, strict=True):
            path = re.sub(r"<(?:[^:<>]+:)?" + name + ">", value, path)
        urls.append(path)
    return urls


def _requests(rule, signed_in: bool):
    """(method, url, keyword arguments) for one route."""
    for url in _urls(rule) if signed_in else _urls(rule)[:1]:
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if not signed_in:  # every one of these is sent to sign in first
                yield method, url + QUERIES[2], {"data": FORM} if method != "GET" else {}
            elif method == "GET":
                for query in QUERIES:
                    yield method, url + query, {}
            elif url.startswith("/api/"):
                for body in BODIES:
                    yield method, url, {"json": body}
                yield method, url, {"data": "{not json", "content_type": "application/json"}
                yield method, url, {"data": {"x": "1"}}
            else:
                yield method, url, {"data": {}}
                # only the forms with several buttons read "action"
                for action in ACTIONS if rule.endpoint in WITH_ACTIONS else ["bogus"]:
                    yield method, url + "?_method=PUT", {"data": {**FORM, "action": action}}


@pytest.mark.parametrize("role", ["anonymous", "alice", "tara", "adam"])
def test_no_route_answers_a_server_error(world, role):
    app = world
    client = app.test_client()
    if role != "anonymous":
        assert login(client, role).status_code == 302
    failures = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP:
            continue
        for method, url, kwargs in _requests(rule, role != "anonymous"):
            try:
                response = client.open(url, method=method, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every failure is reported
                failures.append(f"{method} {url[:120]}: {type(exc).__name__}: {exc}"[:300])
                continue
            if response.status_code >= 500:
                failures.append(f"{method} {url[:120]}: {response.status_code}")
            elif response.status_code >= 400 and url.startswith("/api/"):
                if not (response.is_json and response.get_json().get("message")):
                    failures.append(f"{method} {url[:120]}: {response.status_code} no message")
    assert not failures, "\n".join(dict.fromkeys(failures))


NO_PROPOSAL = "There is no proposal"
NOT_FOUND = "was not found on the server"  # an id no database can hold matches no route


@pytest.mark.parametrize("url, status, message", [
    ("/review/9999", 404, NO_PROPOSAL), ("/review/0", 404, NOT_FOUND),
    (f"/review/{HUGE}", 404, NOT_FOUND),
    ("/proposals/9999/resubmit", 404, NO_PROPOSAL), ("/proposals/0/resubmit", 404, NOT_FOUND),
    (f"/proposals/{HUGE}/resubmit", 404, NOT_FOUND),
    ("/e/refund-status?_method=POST", 200, "Refund status"),
    (f"/e/refund-status?sid={HUGE}", 200, "Refund status"),
])
def test_the_reported_urls(app, trainer, url, status, message):
    response = trainer.get(url)
    assert response.status_code == status
    assert message in response.get_data(as_text=True)


def test_an_eml_to_address_with_a_line_break_is_a_400(client):
    response = post_form(client, "/e/refund-status/email.eml",
                         {"to": "ana@example.com\r\nBcc: eve@example.com"},
                         page_url="/e/refund-status")
    assert response.status_code == 400
    assert "cannot contain a line break" in response.get_data(as_text=True)


def test_a_title_with_a_line_break_makes_a_valid_subject(app, client):
    import email
    import email.policy

    app.extensions["kb"].sheet.write({"two-lines.md": entry_text('"Two\\nlines\\r\\nhere"')},
                                     message="odd title", author=TARA)
    response = post_form(client, "/e/two-lines/email.eml", {"blanks": "1"},
                         page_url="/e/two-lines")
    assert response.status_code == 200
    msg = email.message_from_bytes(response.data, policy=email.policy.default)
    assert msg["Subject"] == "Re: Two lines here"
    composed = client.post("/api/compose/two-lines", json={}).get_json()
    assert composed["subject"] == "Re: Two lines here"


@pytest.mark.parametrize("body", [
    {"slug": 5, "answer": "A", "reason": "r"},
    {"slug": ["refund-status"], "answer": "A", "reason": "r"},
    {"title": "New one", "answer": "A", "reason": "r", "base_version": 7},
    {"title": {"x": 1}, "answer": "A", "reason": "r"},
])
def test_api_fields_of_the_wrong_type_are_a_400_that_names_them(client, body):
    response = client.post("/api/proposals", json=body)
    assert response.status_code == 400
    assert "must be a string" in response.get_json()["message"]


def test_put_with_a_non_string_base_version_is_a_400(trainer):
    response = trainer.put("/api/entries/refund-status", json={"base_version": 12,
                                                                "answer": "x", "reason": "r"})
    assert response.status_code == 400 and "'base_version' must be a string" in \
        response.get_json()["message"]
