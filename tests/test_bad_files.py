"""Bad entry files pushed from outside with the git CLI, and bad values through
every write path: one file is named with its problem, the rest keeps working."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli import main
from kb.entry import EntryError, parse_entry
from kb.search import SearchIndex
from kb.sheet import Sheet
from kb.store import ContentStore
from tests.conftest import SMALL_SHEET, TARA, entry_text, login, post_form

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git CLI not installed")

GOOD = "---\ntitle: Parcel {}\n---\nAn answer.\n"

BAD_FILES = {
    "infinite-interval": (b"---\ntitle: Bad one\nreview_every_days: .inf\n---\nAnswer.\n",
                          "review_every_days"),
    "month-13": (b"---\ntitle: Bad one\nlast_reviewed: 2024-13-45\n---\nAnswer.\n",
                 "last_reviewed"),
    "far-future": (b"---\ntitle: Bad one\nlast_reviewed: 9999-12-31\nreview_every_days: 30\n"
                   b"---\nAnswer.\n", "last_reviewed"),
    "huge-interval": (b"---\ntitle: Bad one\nlast_reviewed: 2024-01-01\n"
                      b"review_every_days: 999999999999999999999999999999\n---\nAnswer.\n",
                      "review_every_days"),
    "deep-nesting": (b"---\ntitle: Bad one\nphrasings: " + b"[" * 200 + b"]" * 200
                     + b"\n---\nAnswer.\n", "front matter"),
    "deep-extra": (b"---\ntitle: Bad one\nnotes: " + b"[" * 50 + b"]" * 50
                   + b"\n---\nAnswer.\n", "nested"),
    "title-list": (b"---\ntitle: [a, b]\n---\nAnswer.\n", "title"),
    "category-map": (b"---\ntitle: Bad one\ncategory: {a: 1}\n---\nAnswer.\n", "category"),
    "not-utf8": ("---\ntitle: Caf\u00e9 bad one\n---\nAnswer.\n".encode("latin-1"), "UTF-8"),
    "alias": (b"---\ntitle: Bad one\ntags: &t [a]\nphrasings: *t\n---\nAnswer.\n", "alias"),
    "long-int": (b"---\ntitle: Bad one\nowner: " + b"9" * 5000 + b"\n---\nAnswer.\n",
                 "front matter"),
}


def git(repo: Path, *args: str, data: bytes | None = None) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=Outside",
                           "-c", "user.email=outside@example.com", *args], input=data,
                          check=True, capture_output=True).stdout.decode()


def push(content: Path, tmp_path: Path, files: dict[str, bytes | None],
         gitlinks: tuple[str, ...] = ()) -> None:
    """Commit `files` (None deletes) and gitlinks in a clone, and push them back."""
    clone = tmp_path / "clone"
    if clone.exists():
        git(clone, "pull", "-q", "origin", "main")
    else:
        subprocess.run(["git", "clone", "-q", str(content), str(clone)], check=True)
    for name, data in files.items():
        if data is None:
            git(clone, "rm", "-q", name)
        else:
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            (clone / name).write_bytes(data)
            git(clone, "add", name)
    for name in gitlinks:
        git(clone, "update-index", "--add", "--cacheinfo", f"160000,{'ab' * 20},{name}")
    git(clone, "commit", "-qm", "from outside")
    git(clone, "push", "-q", "origin", "HEAD:main")


def content_of(app) -> Path:
    return Path(app.extensions["kb"].store.path)


def _everything_answers(app, bad: str) -> None:
    agent, trainer = app.test_client(), app.test_client()
    login(agent, "alice"), login(trainer, "tara")
    page = agent.get("/?q=where+is+my+money")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Refund status" in html
    assert f"{bad}.md" in html  # named, with its problem, where problems are shown
    api = agent.get("/api/search?q=box+smashed")
    assert api.status_code == 200, api.get_data(as_text=True)
    assert api.get_json()["results"][0]["slug"] == "item-arrived-damaged"
    assert agent.get("/").status_code == 200
    assert agent.get("/review-due").status_code == 200
    assert agent.get("/print").status_code == 200
    assert agent.get("/e/refund-status").status_code == 200
    assert agent.get(f"/e/{bad}").status_code in (200, 404, 422)
    assert trainer.get("/usage").status_code == 200


def test_bad_files_pushed_with_git_are_named_and_the_rest_works(app, tmp_path):
    push(content_of(app), tmp_path, {f"{name}.md": data for name, (data, _) in BAD_FILES.items()})
    for name in BAD_FILES:
        _everything_answers(app, name)
    problems = {p.path: p.message for p in app.extensions["kb"].index.problem_list()}
    for name, (_, word) in BAD_FILES.items():
        assert word.lower() in problems[f"{name}.md"].lower(), (name, problems)
    # removing the files heals, without a reindex
    push(content_of(app), tmp_path, {f"{name}.md": None for name in BAD_FILES})
    client = app.test_client()
    login(client, "alice")
    html = client.get("/?q=refund").get_data(as_text=True)
    assert ".md</code>" not in html
    assert not app.extensions["kb"].index.problem_list()


@pytest.mark.parametrize("name", ["infinite-interval", "far-future"])
def test_one_bad_file_pushed_alone(app, tmp_path, name):
    push(content_of(app), tmp_path, {f"{name}.md": BAD_FILES[name][0]})
    _everything_answers(app, name)
    push(content_of(app), tmp_path, {f"{name}.md": None})
    client = app.test_client()
    login(client, "alice")
    assert f"{name}.md" not in client.get("/").get_data(as_text=True)
    assert not app.extensions["kb"].index.problem_list()


def test_a_gitlink_is_named_and_the_rest_works(app, tmp_path):
    push(content_of(app), tmp_path, {}, gitlinks=("submodule.md",))
    _everything_answers(app, "submodule")
    problems = {p.path: p.message for p in app.extensions["kb"].index.problem_list()}
    assert "submodule" in problems["submodule.md"]


def test_an_out_of_range_value_keeps_the_entry_in_search(app, tmp_path):
    data, _ = BAD_FILES["huge-interval"]
    push(content_of(app), tmp_path, {"huge-interval.md": data.replace(b"Bad one",
                                                                      b"Warehouse strike")})
    client = app.test_client()
    login(client, "alice")
    found = client.get("/api/search?q=warehouse+strike").get_json()["results"]
    assert found[0]["slug"] == "huge-interval"
    assert client.get("/e/huge-interval").status_code == 200


def test_an_entry_pushed_into_a_folder_is_named_until_moved_to_the_top(app, tmp_path):
    refund = entry_text("Refund to a closed card", "We send it to your new card.",
                        phrasings=["my card was cancelled"]).encode()
    push(content_of(app), tmp_path, {
        "billing/closed-card.md": refund,
        "docs/notes.md": b"# Notes for trainers\n",  # no front matter: not an entry
        "_sheet/extra/ideas.md": GOOD.format("idea").encode(),  # shared parts' folder
    })
    client = app.test_client()
    login(client, "alice")
    html = client.get("/").get_data(as_text=True)
    assert "billing/closed-card.md" in html and "top folder only" in html
    problems = {p.path: p.message for p in app.extensions["kb"].index.problem_list()}
    assert list(problems) == ["billing/closed-card.md"]
    assert "git mv billing/closed-card.md closed-card.md" in problems["billing/closed-card.md"]
    assert client.get("/api/search?q=cancelled+card").get_json()["total"] == 0

    # moved to the top (as the message says): it is an entry, and the notice is gone
    clone = tmp_path / "clone"
    git(clone, "mv", "billing/closed-card.md", "closed-card.md")
    git(clone, "commit", "-qm", "move to the top")
    git(clone, "push", "-q", "origin", "HEAD:main")
    found = client.get("/api/search?q=cancelled+card").get_json()["results"]
    assert found[0]["slug"] == "closed-card"
    assert not app.extensions["kb"].index.problem_list()
    assert "billing/closed-card.md" not in client.get("/").get_data(as_text=True)


def test_check_and_reindex_name_an_entry_in_a_folder(tmp_path):
    ContentStore.create(tmp_path / "content", SMALL_SHEET, "Start", author=TARA)
    push(tmp_path / "content", tmp_path, {"billing/closed-card.md": GOOD.format("x").encode()})
    result = _cli(tmp_path, "check")
    assert result.exit_code == 1, result.output
    assert "[error] billing/closed-card.md: entries are read from the top folder only" \
        in result.output
    result = _cli(tmp_path, "reindex")
    assert result.exit_code == 0, result.output
    assert "Indexed 3 entries" in result.output
    assert "needs fixing: billing/closed-card.md" in result.output
    assert "git mv billing/closed-card.md closed-card.md" in result.output


def _cli(tmp_path: Path, *args: str):
    env = {"KB_INSTANCE_DIR": str(tmp_path / "inst")}
    return CliRunner().invoke(main, ["--data-dir", str(tmp_path / "content"), "--index-dir",
                                     str(tmp_path / "index"), *args], env=env)


def test_reindex_and_start_up_name_the_bad_file(tmp_path):
    ContentStore.create(tmp_path / "content", SMALL_SHEET, "Start", author=TARA)
    push(tmp_path / "content", tmp_path, {"bad.md": BAD_FILES["infinite-interval"][0],
                                          "other.md": GOOD.format("lost").encode()})
    result = _cli(tmp_path, "reindex")
    assert result.exit_code == 0, result.output
    assert "Indexed 5 entries" in result.output
    assert "bad.md" in result.output and "review_every_days" in result.output
    shutil.rmtree(tmp_path / "index")
    result = _cli(tmp_path, "init")
    assert result.exit_code == 0, result.output
    assert "bad.md" in result.output


def test_serve_starts_and_names_the_bad_file(tmp_path):
    """`kb serve` in a real process: it starts, says which file is bad, and answers."""
    import os
    import signal
    import socket
    import sys

    ContentStore.create(tmp_path / "content", SMALL_SHEET, "Start", author=TARA)
    push(tmp_path / "content", tmp_path, {"bad.md": BAD_FILES["infinite-interval"][0]})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, KB_INSTANCE_DIR=str(tmp_path / "inst"),
               KB_DATA_DIR=str(tmp_path / "content"), KB_INDEX_DIR=str(tmp_path / "index"))
    proc = subprocess.Popen([sys.executable, "-m", "kb.cli", "serve", "--port", str(port)],
                            env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "kb is running" in line:
                break
        output = "".join(lines)
        assert "kb is running" in output, output
        assert "bad.md" in output and "review_every_days" in output
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        proc.stderr.close()


# -- values refused on every write path ------------------------------------------------

BAD_VALUES = [
    ("review_every_days", "999999999", "review_every_days"),
    ("review_every_days", "9" * 30, "review_every_days"),
    ("last_reviewed", "9999-12-31", "last_reviewed"),
    ("last_reviewed", "2024-13-45", "last_reviewed"),
]


@pytest.mark.parametrize("key,value,word", BAD_VALUES)
def test_parse_refuses_out_of_range_values(key, value, word):
    with pytest.raises(EntryError, match=word):
        parse_entry("x", f"---\ntitle: X\n{key}: {value}\n---\nAnswer.\n")
    lenient = parse_entry("x", f"---\ntitle: X\n{key}: {value}\n---\nAnswer.\n", lenient=True)
    assert getattr(lenient, key) is None and word in lenient.warnings[0]


def test_api_save_refuses_bad_values(app):
    trainer = app.test_client()
    login(trainer, "tara")
    base = trainer.get("/api/entries/refund-status").get_json()["version"]
    for (key, value, word), body in [(bad, body) for bad in BAD_VALUES for body in ("f", "m")]:
        body = {key: value} if body == "f" else {
            "markdown": entry_text("Refund status", **{key: value})}
        reply = trainer.put("/api/entries/refund-status",
                            json={"base_version": base, "reason": "x", **body})
        assert reply.status_code == 422, reply.get_data(as_text=True)
        assert word in reply.get_json()["message"]
    assert app.extensions["kb"].store.version_of("refund-status.md") == base


def test_edit_form_refuses_bad_values(app):
    from kb.entry import fields_of

    trainer = app.test_client()
    login(trainer, "tara")
    sheet = app.extensions["kb"].sheet
    entry = sheet.entry("refund-status")
    for key, value, word in BAD_VALUES:
        fields = dict(fields_of(entry), **{key: value}, reason="x", base_version=entry.version)
        reply = post_form(trainer, "/e/refund-status/edit", fields)
        assert reply.status_code in (200, 400, 422)
        assert word.replace("_", " ") in reply.get_data(as_text=True).replace("_", " ")
    assert sheet.entry("refund-status").version == entry.version


def test_a_proposal_with_bad_values_is_refused(app):
    agent = app.test_client()
    login(agent, "alice")
    for key, value, word in BAD_VALUES:
        reply = agent.post("/api/proposals", json={
            "markdown": entry_text("Lost parcel", **{key: value}), "reason": "new",
            "title": "Lost parcel"})
        assert reply.status_code == 422 and word in reply.get_json()["message"]


def test_a_stored_proposal_with_a_bad_value_is_refused_at_approval(app):
    """A proposal saved before values were checked cannot reach the sheet either."""
    from kb import proposals as P
    from kb.db import Proposal, User

    db = app.extensions["kb_db"]
    with db.session() as s:
        alice = s.query(User).filter_by(username="alice").one()
        s.add(Proposal(slug="lost-parcel", is_new=True, base_version=None, reason="new",
                       text=entry_text("Lost parcel", review_every_days=999999999),
                       author_id=alice.id))
        s.commit()
        pid = s.query(Proposal).filter_by(slug="lost-parcel").one().id
    with db.session() as s:
        tara = s.query(User).filter_by(username="tara").one()
    with pytest.raises(Exception, match="review_every_days"):
        P.approve(db, app.extensions["kb"].sheet, pid, tara)
    assert app.extensions["kb"].store.version_of("lost-parcel.md") is None


def test_import_refuses_bad_values(app, tmp_path):
    from kb.spreadsheet import import_sheet

    csv = tmp_path / "sheet.csv"
    csv.write_text("Complaint,Answer,Last reviewed\n"
                   "Late parcel,It is on its way.,9999-12-31\n"
                   "Slow parcel,It is coming.,2024-01-01\n")
    report = import_sheet(app.extensions["kb"].sheet, csv, author=TARA, message="import")
    reasons = " ".join(s.reason for s in report.skipped)
    assert len(report.skipped) == 1, reasons
    assert "last_reviewed" in reasons
    assert app.extensions["kb"].store.version_of("late-parcel.md") is None
    assert app.extensions["kb"].store.version_of("slow-parcel.md") is not None


def test_sheet_write_refuses_a_bad_entry_file(sheet):
    with pytest.raises(EntryError, match="review_every_days"):
        sheet.write({"x.md": "---\ntitle: X\nreview_every_days: .inf\n---\nA.\n"},
                    message="x", author=TARA)


# -- YAML aliases ------------------------------------------------------------------------

LAUGHS = "---\ntitle: Laughs\na: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
    f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
) + "phrasings: *i\n---\nAnswer.\n"


def test_a_billion_laughs_proposal_is_refused(app):
    assert len(LAUGHS.encode()) < 600
    agent = app.test_client()
    login(agent, "alice")
    reply = agent.post("/api/proposals", json={"markdown": LAUGHS, "reason": "x",
                                                 "title": "Laughs"})
    assert reply.status_code == 422
    assert "alias" in reply.get_json()["message"]


def test_aliases_are_refused_in_shared_files_too(tmp_path):
    from kb.sheet import parse_placeholders

    assert parse_placeholders("a: &x {label: A}\nb: *x\n") == {}


def test_index_survives_a_bad_file_written_straight_into_the_store(tmp_path):
    """Below the sheet's checks (as a push would): the index names it and goes on."""
    store = ContentStore.create(tmp_path / "content", SMALL_SHEET, "Start", author=TARA)
    store.write({"bad.md": BAD_FILES["infinite-interval"][0].decode()}, message="x", author=TARA)
    index = SearchIndex(tmp_path / "index", Sheet(store))
    assert index.open() == "rebuilt"
    assert "bad.md" in {p.path for p in index.problem_list()}
    assert index.search("refund").hits
    index.close()


def test_placeholders_with_aliases_and_text_that_is_not_text_are_refused(sheet):
    with pytest.raises(EntryError, match="alias"):
        sheet.write({"_sheet/placeholders.yml": "a: &x {label: A}\nb: *x\n"}, message="x",
                    author=TARA)
    with pytest.raises(EntryError, match="not text"):
        sheet.write({"x.md": "---\ntitle: X\n---\nA lone \ud800 surrogate.\n"}, message="x",
                    author=TARA)
    assert sheet.store.version_of("x.md") is None


def test_api_refuses_a_title_that_is_not_text(app):
    trainer = app.test_client()
    login(trainer, "tara")
    base = trainer.get("/api/entries/refund-status").get_json()["version"]
    body = '{"base_version": "BASE", "reason": "x", "title": "A \\ud800"}'
    reply = trainer.put("/api/entries/refund-status", data=body.replace("BASE", base),
                        content_type="application/json")
    assert reply.status_code == 422 and "not text" in reply.get_json()["message"]
