"""Starting from the team's own sheet: `kb init --empty`, `kb import --replace`, and the
admin's first-visit choice on a sheet whose starter entries are untouched."""

from __future__ import annotations

import io
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb import create_app, starter
from kb.cli import main as kb_main
from kb.db import Database
from kb.search import SearchIndex
from kb.sheet import Sheet
from kb.spreadsheet import SpreadsheetError, import_sheet
from kb.store import ContentStore, read_seed_dir
from kb.users import create_user
from tests.conftest import ALICE, PASSWORD, STARTER, csrf_from, login, write_seed

TEAM_CSV = (
    "Complaint,Answer,Phrasings\n"
    "Refund status,\"Refunds reach your card within 5 working days.\",\n"
    "Router keeps dropping,\"Restart the router and tell me if the light turns red.\","
    "internet keeps cutting out; wifi drops every hour\n"
    "Technician did not show up,\"I'm sorry nobody came. I will book the first slot "
    "tomorrow.\",waited all day and nobody turned up\n"
)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), *args], check=True,
                          capture_output=True, text=True).stdout


def run_kb(tmp_path: Path, *args: str, ok: bool = True) -> str:
    env = {"KB_INSTANCE_DIR": str(tmp_path / "instance"), "KB_DATA_DIR": None,
           "KB_INDEX_DIR": None, "KB_DATABASE_URL": None, "KB_SEED_DIR": None}
    result = CliRunner().invoke(kb_main, list(args), env=env, catch_exceptions=False)
    assert (result.exit_code == 0) == ok, result.output
    return result.output


# -- kb init --empty -------------------------------------------------------------------------


def test_init_empty_keeps_only_the_shared_parts(tmp_path):
    out = run_kb(tmp_path, "init", "--empty")
    assert "(0 entries)" in out
    content = tmp_path / "instance" / "content"
    shared = {p for p in read_seed_dir(STARTER) if p.startswith("_sheet/")}
    assert set(git(content, "ls-tree", "-r", "--name-only", "main").split()) == shared
    assert {"_sheet/greeting.md", "_sheet/closing.md", "_sheet/phone_opening.md",
            "_sheet/synonyms.txt", "_sheet/placeholders.yml", "_sheet/checks.yml"} <= shared
    assert len(git(content, "rev-list", "main").split()) == 1

    # the empty sheet starts, searches and takes a team's file
    app = create_app({"INSTANCE_DIR": str(tmp_path / "instance"), "TESTING": True})
    try:
        assert app.extensions["kb"].index.search("refund").total == 0
        db = app.extensions["kb_db"]
        assert starter.choice(db) == "empty"
        assert not starter.should_offer(db, app.extensions["kb"].store, app.config["SEED_DIR"])
    finally:
        app.extensions["kb"].index.close()
        app.extensions["kb_db"].dispose()
    (tmp_path / "team.csv").write_text(TEAM_CSV)
    out = run_kb(tmp_path, "import", str(tmp_path / "team.csv"))
    assert "3 new" in out
    assert len(git(content, "ls-tree", "--name-only", "main").split()) == 3 + 1  # + _sheet


def test_init_empty_on_untouched_starter_removes_it_in_one_commit(tmp_path):
    run_kb(tmp_path, "init")
    content = tmp_path / "instance" / "content"
    seeded = git(content, "rev-parse", "main").strip()
    out = run_kb(tmp_path, "init", "--empty")
    assert "Removed the starter entries" in out and "(0 entries)" in out
    assert git(content, "rev-parse", "main^").strip() == seeded  # one commit on top
    assert git(content, "ls-tree", "--name-only", "main").split() == ["_sheet"]
    # history kept: the starter entries are still readable at the seed commit
    assert "title:" in git(content, "show", f"{seeded}:refund-status.md")


def test_init_empty_leaves_a_sheet_with_its_own_entries_alone(tmp_path):
    run_kb(tmp_path, "init")
    (tmp_path / "team.csv").write_text(TEAM_CSV)
    run_kb(tmp_path, "import", str(tmp_path / "team.csv"))
    content = tmp_path / "instance" / "content"
    before = git(content, "rev-parse", "main")
    out = run_kb(tmp_path, "init", "--empty", ok=False)
    assert "kb import --replace FILE" in out
    assert git(content, "rev-parse", "main") == before


# -- kb import --replace ----------------------------------------------------------------------


def test_replace_import_makes_the_sheet_exactly_the_file_in_one_commit(tmp_path, store, index):
    sheet = index.sheet
    before = store.head()
    path = tmp_path / "team.csv"
    path.write_text(TEAM_CSV)

    report = import_sheet(sheet, path, author=ALICE, message="Our sheet", replace_all=True)

    assert sorted(report.removed) == ["item-arrived-damaged", "wrong-colour"]
    assert report.updated == ["refund-status"] and len(report.created) == 2
    assert "2 removed" in report.summary()
    assert store.history()[0].commit == report.commit == store.head()
    assert store.history()[1].commit == before  # one commit, on top of the old history
    assert sorted(store.entry_paths()) == [
        "refund-status.md", "router-keeps-dropping.md", "technician-did-not-show-up.md"]
    assert store.read("_sheet/greeting.md") is not None  # shared parts stay
    # each entry is what its row says: the old phrasings of refund-status are gone
    assert sheet.entry("refund-status").phrasings == ()
    # history kept: the removed entry's versions are still there
    gone = store.history("item-arrived-damaged.md")
    assert gone[0].commit == report.commit and gone[0].version is None
    assert store.read("item-arrived-damaged.md", before) is not None
    # the index followed inside the same write
    assert "item-arrived-damaged" not in [h.slug for h in index.search("box smashed").hits]
    assert index.search("waited all day and nobody turned up").hits[0].slug == \
        "technician-did-not-show-up"


def test_replace_import_of_a_file_with_no_usable_row_changes_nothing(tmp_path, store, index):
    before = store.head()
    path = tmp_path / "bad.csv"
    path.write_text("Complaint,Answer\nLate parcel,\n,No complaint\n")
    with pytest.raises(SpreadsheetError, match="left as it is"):
        import_sheet(index.sheet, path, author=ALICE, message="Our sheet", replace_all=True)
    assert store.head() == before and len(store.entry_paths()) == 3


def test_cli_import_replace(tmp_path):
    run_kb(tmp_path, "init")
    (tmp_path / "team.csv").write_text(TEAM_CSV)
    out = run_kb(tmp_path, "import", "--replace", str(tmp_path / "team.csv"))
    assert "3 removed" not in out and "removed" in out
    content = tmp_path / "instance" / "content"
    assert git(content, "log", "-1", "--format=%s", "main").strip() == \
        "Replace the sheet with team.csv"
    names = git(content, "ls-tree", "--name-only", "main").split()
    assert sorted(names) == ["_sheet", "refund-status.md", "router-keeps-dropping.md",
                             "technician-did-not-show-up.md"]
    db = Database(f"sqlite:///{tmp_path / 'instance' / 'kb.sqlite'}")
    assert starter.choice(db) == "replace"
    db.dispose()


# -- the admin's first visit ------------------------------------------------------------------


def test_starter_untouched_until_an_entry_is_edited(store, sheet, tmp_path):
    # the store fixture was made from SMALL_SHEET: that is its seed
    seed = write_seed(tmp_path / "seed")
    assert starter.starter_untouched(store, seed)
    sheet.write({"late.md": "---\ntitle: Late\n---\nSoon.\n"}, message="add", author=ALICE)
    assert starter.starter_untouched(store, seed)  # added entries beside them do not count
    assert starter.own_entries(store, seed) == ["late.md"]
    sheet.write({"refund-status.md": "---\ntitle: Refund status\n---\nSent.\n"},
                message="edit", author=ALICE)
    assert not starter.starter_untouched(store, seed)


def _admin(app):
    client = app.test_client()
    assert login(client, "adam").status_code == 302
    return client


def test_first_visit_offers_the_choice_to_admins_only(app, client, trainer):
    admin = _admin(app)
    first = admin.get("/")
    assert first.status_code == 302 and first.headers["Location"] == "/admin/start"
    page = admin.get("/admin/start").get_data(as_text=True)
    assert "Keep the starter entries" in page and "Start empty" in page
    assert admin.get("/").status_code == 200  # offered once per sign-in
    assert client.get("/").status_code == 200 and trainer.get("/").status_code == 200
    assert client.get("/admin/start").status_code == 403
    assert trainer.post("/admin/start", data={
        "action": "empty", "csrf_token": csrf_from(trainer.get("/").get_data(as_text=True))
    }).status_code == 403
    # no CSRF token, no change
    head = app.extensions["kb"].store.head()
    assert admin.post("/admin/start", data={"action": "empty"}).status_code == 400
    assert app.extensions["kb"].store.head() == head


def test_first_visit_start_empty_and_import_a_file(app):
    svc = app.extensions["kb"]
    before = svc.store.head()
    admin = _admin(app)
    token = csrf_from(admin.get("/admin/start").get_data(as_text=True))
    response = admin.post("/admin/start", data={
        "action": "empty", "csrf_token": token,
        "file": (io.BytesIO(TEAM_CSV.encode()), "team sheet.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert sorted(svc.store.entry_paths()) == [
        "refund-status.md", "router-keeps-dropping.md", "technician-did-not-show-up.md"]
    latest = svc.store.history()[0]
    assert svc.store.history()[1].commit == before
    assert latest.author.name == "Adam Example"
    assert latest.message == "Start from our own sheet: team_sheet.csv"
    assert "2 removed" in admin.get("/").get_data(as_text=True)
    # chosen: a new sign-in goes straight to search
    again = _admin(app)
    assert again.get("/").status_code == 200
    assert "nothing to choose" in again.get("/admin/start").get_data(as_text=True)


def test_first_visit_keep(app):
    admin = _admin(app)
    token = csrf_from(admin.get("/admin/start").get_data(as_text=True))
    head = app.extensions["kb"].store.head()
    assert admin.post("/admin/start", data={"action": "keep", "csrf_token": token}) \
        .status_code == 302
    assert app.extensions["kb"].store.head() == head
    assert _admin(app).get("/").status_code == 200


def test_first_visit_start_empty_without_a_file(app):
    admin = _admin(app)
    token = csrf_from(admin.get("/admin/start").get_data(as_text=True))
    admin.post("/admin/start", data={"action": "empty", "csrf_token": token})
    svc = app.extensions["kb"]
    assert svc.store.entry_paths() == []
    assert svc.index.doc_count() == 0
    assert admin.get("/?q=refund").status_code == 200


def test_no_choice_on_a_sheet_that_is_not_the_starter(tmp_path):
    store = ContentStore.create(tmp_path / "content", {
        "own.md": "---\ntitle: Own entry\n---\nOurs.\n"}, "start")
    index = SearchIndex(tmp_path / "index", Sheet(store))
    index.open()
    index.close()
    app = create_app({"INSTANCE_DIR": str(tmp_path / "instance"), "TESTING": True,
                      "DATA_DIR": str(tmp_path / "content"),
                      "INDEX_DIR": str(tmp_path / "index")})
    try:
        create_user(app.extensions["kb_db"], "adam", PASSWORD, role="admin")
        assert _admin(app).get("/").status_code == 200
    finally:
        app.extensions["kb"].index.close()
        app.extensions["kb_db"].dispose()


def test_start_empty_upload_drops_the_removed_categories_and_tags_from_the_lists(app):
    admin = _admin(app)
    token = csrf_from(admin.get("/admin/start").get_data(as_text=True))
    upload = ("Complaint,Answer,Category,Tags\n"
              "Router keeps dropping,Restart the router.,Internet,\"wifi, router\"\n")
    admin.post("/admin/start", data={
        "action": "empty", "csrf_token": token,
        "file": (io.BytesIO(upload.encode()), "team.csv")}, content_type="multipart/form-data")

    # without `kb reindex`: the search page's category list and tag links
    page = admin.get("/").get_data(as_text=True)
    assert '<option value="Internet"' in page and 'href="/?tag=wifi"' in page
    for gone in ("Orders and delivery", "Returns and refunds"):
        assert f'<option value="{gone}"' not in page
    for gone in ("refund", "damaged", "delivery", "colour"):
        assert f'href="/?tag={gone}"' not in page
    index = app.extensions["kb"].index
    assert index.facets() == {"categories": ["Internet"], "tags": ["router", "wifi"]}
    assert index.category_counts() == {"Internet": 1}


def test_lists_follow_an_edit_that_moves_an_entry_to_another_category(store, index):
    sheet = index.sheet
    entry = sheet.entry("refund-status")
    sheet.save_entry(replace(entry, category="Billing", tags=("billing",)),
                     message="move", author=ALICE)
    assert index.facets()["categories"] == ["Billing", "Orders and delivery"]
    assert "refund" not in index.facets()["tags"] and "billing" in index.facets()["tags"]
    assert index.category_counts() == {"Billing": 1, "Orders and delivery": 2}
    sheet.write({"wrong-colour.md": None, "item-arrived-damaged.md": None},
                message="remove", author=ALICE)
    assert index.facets() == {"categories": ["Billing"], "tags": ["billing"]}
    assert index.category_counts() == {"Billing": 1}


def test_start_empty_upload_names_rows_with_check_errors(app):
    admin = _admin(app)
    token = csrf_from(admin.get("/admin/start").get_data(as_text=True))
    upload = ("Complaint,Answer\n"
              "Parcel late,It will be with you on Friday.\n"
              "Box smashed,Please calm down. We will send a new one.\n"
              "Rude driver,\n")
    admin.post("/admin/start", data={
        "action": "empty", "csrf_token": token,
        "file": (io.BytesIO(upload.encode()), "team.csv")}, content_type="multipart/form-data")

    page = admin.get("/").get_data(as_text=True)
    assert "1 of them has check errors" in page
    assert "Row 3 (Box smashed): check error: tone in the answer: “calm down”" in page
    assert "Row 4: the Answer cell is empty" in page
    assert sorted(app.extensions["kb"].store.entry_paths()) == ["box-smashed.md",
                                                                "parcel-late.md"]
