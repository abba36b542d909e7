"""Search by meaning: the model beside the index finds what words cannot, keeps up
with every save and outside push, and its absence leaves word search as it was."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace

import pytest

from kb.meaning import Meaning, shared
from kb.search import SearchIndex
from kb.sheet import Sheet
from tests.conftest import TARA, entry_text, write_seed

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git CLI")

NO_SHOW = entry_text("Technician did not show up for the installation appointment",
                     "Sorry the engineer missed the visit; the first free slot is booked.")
PARAPHRASE = "nobody turned out to fit it"  # not one of its words is in the sheet


def slugs(results) -> list[str]:
    return [h.slug for h in results.hits]


def test_the_model_ships_inside_its_package_and_loads_offline():
    model = shared()
    assert model.available, model.error
    vectors = model.embed(["parcel arrived broken", "box came smashed", "forgot my password"])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_meaning_finds_a_paraphrase_that_words_cannot(index, sheet, tmp_path):
    sheet.write({"no-show.md": NO_SHOW}, message="Add", author=TARA)
    words = SearchIndex(tmp_path / "words", sheet, Meaning(enabled=False))
    words.open()
    assert "no-show" not in slugs(words.search(PARAPHRASE))
    words.close()
    assert slugs(index.search(PARAPHRASE))[0] == "no-show"


def test_an_edit_is_findable_by_meaning_when_the_save_returns(index, sheet):
    from dataclasses import replace

    sheet.write({"no-show.md": entry_text("Gift wrapping options", "We wrap in paper.")},
                message="Add", author=TARA)
    assert "no-show" not in slugs(index.search(PARAPHRASE))[:1]
    entry = sheet.entry("no-show")
    sheet.save_entry(replace(entry, title="Technician did not show up for the "
                                          "installation appointment",
                             answer="Sorry the engineer missed the visit; the first "
                                    "free slot is booked."),
                     message="Rewrite", author=TARA)
    assert slugs(index.search(PARAPHRASE))[0] == "no-show"


@needs_git
def test_index_and_vectors_catch_up_after_a_push_from_outside(index, store, tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(store.path), str(clone)], check=True)
    (clone / "no-show.md").write_text(NO_SHOW)
    for args in (["add", "no-show.md"],
                 ["-c", "user.name=Dev", "-c", "user.email=dev@example.com",
                  "commit", "-qm", "from a clone"],
                 ["push", "-q", "origin", "HEAD:main"]):
        subprocess.run(["git", "-C", str(clone), *args], check=True, capture_output=True)
    assert slugs(index.search(PARAPHRASE))[0] == "no-show"  # by meaning
    assert slugs(index.search("technician"))[0] == "no-show"  # by words
    # and a fresh process opening the index finds it caught up, vectors and all
    again = SearchIndex(index.dir, Sheet(store))
    assert again.open() == "current"
    assert slugs(again.search(PARAPHRASE))[0] == "no-show"
    again.close()


def test_without_the_model_word_search_works_and_says_why(sheet, tmp_path):
    broken = Meaning(model_dir=tmp_path / "no-model-here")
    assert not broken.available and "could not be loaded" in broken.error
    ix = SearchIndex(tmp_path / "ix", sheet, broken)
    ix.open()
    assert slugs(ix.search("box smashed"))[0] == "item-arrived-damaged"
    assert ix.search(PARAPHRASE).hits == []
    ix.close()
    # the model back: the index built without vectors is rebuilt with them
    ix = SearchIndex(tmp_path / "ix", sheet)
    assert ix.open() == "rebuilt"
    ix.close()


def test_a_match_on_a_common_word_alone_is_not_confident(starter_index):
    hits = starter_index.search("box came smashed").hits
    assert hits[0].slug == "item-arrived-damaged" and hits[0].confident
    weaker = [h for h in hits if not h.confident]
    assert weaker, "nothing under 'more results'"
    assert "cannot-log-in" not in [h.slug for h in hits if h.confident]
    # the confident ones come first
    flags = [h.confident for h in hits]
    assert flags == sorted(flags, reverse=True)


def test_a_likeness_alone_is_never_a_confident_answer(starter_index, client):
    """No word of "wobbly table" is in the starter sheet; what meaning brings up is a
    guess: behind "More results", the page saying nothing matches and offering a new
    entry."""
    import re

    from tests.conftest import login

    results = starter_index.search("wobbly table")
    assert results.hits and not any(h.confident for h in results.hits)
    assert not results.sure
    login(client, "alice")
    html = client.get("/?q=wobbly+table").get_data(as_text=True)
    for shown in ("no-results", "propose"):
        tag = re.search(rf'<p id="{shown}"[^>]*>', html).group(0)
        assert "hidden" not in tag, f"#{shown} is hidden"


def test_the_page_puts_weaker_matches_behind_more_results(client):
    from tests.conftest import login

    login(client, "alice")
    data = client.get("/api/search?q=box+came+smashed").get_json()
    assert all("confident" in r for r in data["results"])
    html = client.get("/?q=box+came+smashed").get_data(as_text=True)
    confident, _, more = html.partition('id="more-results"')
    assert "Item arrived damaged" in confident and "More results" in more


def test_the_admin_sees_why_meaning_is_off(tmp_path):
    from click.testing import CliRunner

    from kb import create_app
    from kb.cli import main
    from kb.users import create_user
    from tests.conftest import PASSWORD, login

    seed = write_seed(tmp_path / "seed")
    settings = {"INSTANCE_DIR": str(tmp_path / "instance"), "SEED_DIR": str(seed),
                "TESTING": True, "MEANING_DIR": str(tmp_path / "no-model-here")}
    app = create_app(settings)
    db = app.extensions["kb_db"]
    create_user(db, "adam", PASSWORD, role="admin")
    create_user(db, "alice", PASSWORD, role="agent")
    with app.test_client() as client:
        login(client, "adam")
        html = client.get("/?q=box+smashed").get_data(as_text=True)
        assert "Search by meaning is off" in html and "could not be loaded" in html
        assert "Item arrived damaged" in html  # words still find it
    with app.test_client() as client:
        login(client, "alice")
        assert "Search by meaning is off" not in client.get("/").get_data(as_text=True)
    app.extensions["kb"].index.close()
    db.dispose()
    result = CliRunner().invoke(main, [
        "--data-dir", str(tmp_path / "content2"), "--index-dir", str(tmp_path / "index2"),
        "init"], env={"KB_INSTANCE_DIR": str(tmp_path / "instance2"),
                      "KB_MEANING_DIR": str(tmp_path / "no-model-here")})
    assert result.exit_code == 0, result.output
    assert "could not be loaded" in result.output  # stderr, shown with the output




def test_a_likeness_never_outranks_the_entry_holding_every_typed_word(tmp_path, monkeypatch):
    """A made-up word (an order code, a product name) means little to the model, so
    entries 'alike' to it are noise: the one entry that holds it comes first, however
    much the likeness weighs (on 10,000 entries the default weight was enough)."""
    from kb.search import fusion
    from kb.store import ContentStore

    monkeypatch.setattr(fusion, "MEANING_WEIGHT", 1000.0)
    monkeypatch.setattr(fusion, "MEANING_FLOOR", 0.0)
    from scripts.corpus import Corpus, build_files

    files = build_files(Corpus(seed=3), 300)
    sheet = Sheet(ContentStore.create(tmp_path / "content", files, "Start", author=TARA))
    index = SearchIndex(tmp_path / "index", sheet)
    index.open()
    misses = []
    for n, code in enumerate(["qzuwmftlgx", "vobrekanuti", "plorastiemk"]):
        slug = sorted(f for f in files if "/" not in f)[n * 100].removesuffix(".md")
        entry = sheet.entry(slug)
        sheet.save_entry(replace(entry, answer=entry.answer.rstrip() + f" Ask about {code}.\n"),
                         message="Code", author=TARA)
        index.catch_up()
        if slugs(index.search(code))[:1] != [slug]:
            misses.append(code)
    index.close()
    assert not misses
