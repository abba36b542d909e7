"""The search index is derived data: an empty sheet, a deleted or unusable index
folder never stop the app, never fail a save that reached git."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb import create_app
from kb.cli import main
from tests.conftest import SMALL_SHEET, login

SHARED_ONLY = {k: v for k, v in SMALL_SHEET.items() if k.startswith("_sheet/")}


def _seed(folder: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


def test_an_empty_sheet_starts(tmp_path):
    seed = _seed(tmp_path / "seed", SHARED_ONLY)
    env = {"KB_INSTANCE_DIR": str(tmp_path / "inst"), "KB_SEED_DIR": str(seed)}
    result = CliRunner().invoke(main, ["init"], env=env)
    assert result.exit_code == 0, result.output
    assert "(0 entries)" in result.output
    app = create_app({"INSTANCE_DIR": str(tmp_path / "inst"), "SEED_DIR": str(seed),
                      "TESTING": True})
    try:
        client = app.test_client()
        login(client, "admin", app.config.get("KB_FIRST_ADMIN_PASSWORD") or "x")
        from kb.users import create_user
        create_user(app.extensions["kb_db"], "alice", "correct-horse-1", role="agent")
        client = app.test_client()
        login(client, "alice", "correct-horse-1")
        reply = client.get("/api/search?q=refund")
        assert reply.status_code == 200 and reply.get_json()["results"] == []
        assert client.get("/?q=refund").status_code == 200
        assert client.get("/").status_code == 200
    finally:
        app.extensions["kb"].index.close()
        app.extensions["kb_db"].dispose()


def _index(app):
    return app.extensions["kb"].index


def test_index_deleted_while_running_is_rebuilt_and_search_goes_on(app, client, trainer):
    index = _index(app)
    shutil.rmtree(index.dir)
    reply = client.get("/api/search?q=where+is+my+money")
    assert reply.status_code == 200
    assert reply.get_json()["results"][0]["slug"] == "refund-status"  # the plain scan
    assert client.get("/?q=refund").status_code == 200
    assert client.get("/").status_code == 200
    assert index.wait_until_recovered()
    assert (index.dir / "kb-state.json").is_file()
    reply = client.get("/api/search?q=where+is+my+money").get_json()
    assert "index" not in reply and reply["results"][0]["slug"] == "refund-status"


def _save(trainer, text: str):
    base = trainer.get("/api/entries/refund-status").get_json()["version"]
    return trainer.put("/api/entries/refund-status", json={
        "base_version": base, "reason": "new words", "title": "Refund status",
        "answer": text})


def test_a_save_that_reached_git_succeeds_when_the_index_cannot_be_written(app, client,
                                                                          trainer):
    index = _index(app)
    index.retry_seconds = 3600  # no second attempt during the test
    shutil.rmtree(index.dir)
    index.dir.write_text("not a folder")  # neither the old index nor a new one can live here
    reply = _save(trainer, "Your refund of {{ amount }} left us on Tuesday via pelican.")
    assert reply.status_code == 200, reply.get_data(as_text=True)
    body = reply.get_json()
    assert body["commit"] == app.extensions["kb"].store.head()
    assert body["index"] == "catching up"
    assert "pelican" in app.extensions["kb"].store.read("refund-status.md").text
    index.wait_until_recovered()
    assert index.error  # the rebuild failed: the folder is still a file
    reply = client.get("/api/search?q=where+is+my+money")
    assert reply.status_code == 200 and reply.get_json()["index"] == "rebuilding"
    assert reply.get_json()["results"][0]["slug"] == "refund-status"
    assert client.get("/").status_code == 200
    # once the folder can be written again, the next try rebuilds it
    index.dir.unlink()
    index.retry_seconds = 0
    client.get("/api/search?q=refund")
    assert index.wait_until_recovered()
    found = client.get("/api/search?q=pelican").get_json()
    assert [r["slug"] for r in found["results"]] == ["refund-status"]


def test_the_app_starts_when_the_index_cannot_be_opened_or_rebuilt(tmp_path):
    seed = _seed(tmp_path / "seed", SMALL_SHEET)
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "index").write_text("not a folder")
    app = create_app({"INSTANCE_DIR": str(tmp_path / "instance"), "SEED_DIR": str(seed),
                      "TESTING": True})
    try:
        index = _index(app)
        index.retry_seconds = 3600
        index.wait_until_recovered()
        assert index.error
        from kb.users import create_user
        create_user(app.extensions["kb_db"], "alice", "correct-horse-1", role="agent")
        client = app.test_client()
        login(client, "alice", "correct-horse-1")
        reply = client.get("/api/search?q=box+smashed")
        assert reply.status_code == 200
        assert reply.get_json()["results"][0]["slug"] == "item-arrived-damaged"
    finally:
        _index(app).close()
        app.extensions["kb_db"].dispose()


def test_the_edit_form_says_search_is_catching_up(app, trainer):
    from kb.entry import fields_of
    from tests.conftest import post_form

    index = _index(app)
    index.retry_seconds = 3600
    shutil.rmtree(index.dir)
    index.dir.write_text("not a folder")
    entry = app.extensions["kb"].sheet.entry("refund-status")
    fields = dict(fields_of(entry), answer="Sent by pelican.", reason="x",
                  base_version=entry.version)
    reply = post_form(trainer, "/e/refund-status/edit", fields)
    assert reply.status_code == 302
    with trainer.session_transaction() as session:
        messages = [m for _, m in session.get("_flashes", [])]
    assert any("catching up" in m for m in messages), messages
    index.wait_until_recovered()


# whoosh leaves a damaged table-of-contents file open when it fails to read it
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_index_damaged_while_running_is_rebuilt(app, client, trainer):
    index = _index(app)
    for path in index.dir.iterdir():
        if path.name != "kb-state.json":
            path.write_bytes(b"\x00garbage" * 64)
    for query in ("where is my money", "box smashed", "refund"):
        reply = client.get("/api/search", query_string={"q": query})
        assert reply.status_code == 200, reply.get_data(as_text=True)
    assert client.get("/").status_code == 200
    reply = _save(trainer, "Your refund left us on Tuesday by carrier pigeon.")
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert reply.get_json()["commit"] == app.extensions["kb"].store.head()
    assert index.wait_until_recovered()
    found = client.get("/api/search?q=pigeon").get_json()
    assert [r["slug"] for r in found["results"]] == ["refund-status"]


def _stuck_rebuilding(app):
    """The index folder cannot be written: search goes on by the plain scan."""
    index = _index(app)
    index.retry_seconds = 3600  # no second attempt during the test
    shutil.rmtree(index.dir)
    index.dir.write_text("not a folder")
    index.search("refund")  # notices, and the background rebuild fails
    index.wait_until_recovered()
    assert index.search("screens").rebuilding
    return index


def _shown(page: str, element_id: str) -> bool:
    tag = re.search(f'<p id="{element_id}"[^>]*>', page).group(0)
    return not re.search(r"\shidden\b", tag)


def test_no_new_entry_is_offered_while_the_index_is_rebuilt(app, client):
    page = client.get("/?q=pelican+feathers").get_data(as_text=True)
    assert _shown(page, "propose") and not _shown(page, "index-rebuilding")  # a real miss
    _stuck_rebuilding(app)
    # "screens" is in an answer: the full index finds it, the plain scan does not
    reply = client.get("/api/search?q=screens").get_json()
    assert reply["index"] == "rebuilding" and reply["results"] == []
    for query in ("screens", "pelican+feathers", "refund"):
        page = client.get(f"/?q={query}").get_data(as_text=True)
        assert not _shown(page, "propose"), query
        assert _shown(page, "index-rebuilding"), query
