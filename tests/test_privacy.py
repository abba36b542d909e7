"""Data at rest: private files and folders; the search log keeps no customer details
and nothing older than its retention period."""

from __future__ import annotations

import datetime as dt
import stat

from sqlalchemy import select

from kb import create_app
from kb.db import SearchLog, utcnow
from kb.usage import SearchLogKeeper, log_search, mask_private, purge_searches
from tests.conftest import write_seed


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _seed(base):
    seed = write_seed(base / "seed")
    return seed


def test_instance_folder_and_its_files_are_for_the_owner_only(tmp_path):
    inst = tmp_path / "instance"
    app = create_app({"INSTANCE_DIR": str(inst), "SEED_DIR": str(_seed(tmp_path)),
                      "TESTING": True})
    try:
        assert _mode(inst) == 0o700
        assert _mode(inst / "kb.sqlite") == 0o600
        assert _mode(inst / "secret_key") == 0o600
        for folder in (inst / "content", inst / "index"):
            assert _mode(folder) & 0o007 == 0, folder
    finally:
        app.extensions["kb"].index.close()
        app.extensions["kb_db"].dispose()


def test_an_existing_world_readable_instance_is_closed(tmp_path):
    inst = tmp_path / "instance"
    app = create_app({"INSTANCE_DIR": str(inst), "SEED_DIR": str(_seed(tmp_path)),
                      "TESTING": True})
    app.extensions["kb"].index.close()
    app.extensions["kb_db"].dispose()
    inst.chmod(0o755)  # as an older kb left it
    (inst / "kb.sqlite").chmod(0o644)
    app = create_app({"INSTANCE_DIR": str(inst), "SEED_DIR": str(tmp_path / "seed"),
                      "TESTING": True})
    try:
        assert _mode(inst) == 0o700 and _mode(inst / "kb.sqlite") == 0o600
    finally:
        app.extensions["kb"].index.close()
        app.extensions["kb_db"].dispose()


def test_customer_details_are_masked_before_the_search_is_logged(app, client):
    client.get("/api/search?q=refund+for+ana.perez@example.com")
    client.get("/?q=call+back+%2B44+20+7946+0958")
    client.get("/api/search?q=order+123456789+missing")
    app.extensions["kb_db"].usage_log.flush()
    with app.extensions["kb_db"].session() as s:
        rows = list(s.scalars(select(SearchLog).order_by(SearchLog.id)))
    stored = " | ".join(f"{r.query} / {r.words}" for r in rows)
    for secret in ("ana", "perez", "example", "7946", "0958", "123456789"):
        assert secret not in stored, stored
    assert [r.query for r in rows] == ["refund for [email]", "call back [phone]",
                                       "order [number] missing"]
    assert "refund" in rows[0].words


def test_card_numbers_read_out_emails_postcodes_and_codes_are_masked(app, client):
    for query in ["card 4111/1111/1111/1111 declined", "card 4111_1111_1111_1111 declined",
                  "email john dot doe at gmail dot com", "moved to SW1A 1AA",
                  "order A1B2C3D4E5F6 missing"]:
        client.get("/api/search", query_string={"q": query})
        client.get("/api/search?q=x")  # a new search each time
    app.extensions["kb_db"].usage_log.flush()
    with app.extensions["kb_db"].session() as s:
        stored = " | ".join(f"{r.query} / {r.words}" for r in s.scalars(select(SearchLog)))
    for secret in ("4111", "john", "doe", "gmail", "sw1a", "1aa", "SW1A", "a1b2c3d4e5f6",
                   "A1B2C3D4E5F6"):
        assert secret not in stored, stored
    for kept in ("declined", "missing", "moved", "email"):
        assert kept in stored


def test_masking_keeps_ordinary_words_and_short_numbers():
    assert mask_private("box smashed 2 items, size 10")[0] == "box smashed 2 items, size 10"
    assert mask_private("(555) 123-4567 and 98765432")[0] == "[phone] and [number]"
    for ordinary in ["economy 7 meter e7 wrong", "smets2 meter", "16-25 railcard",
                     "sat at home all day", "refund 3/4 items", "bill up 20 at the shop"]:
        assert mask_private(ordinary)[0] == ordinary, ordinary


def test_old_searches_are_purged_at_start_and_once_a_day(app):
    db = app.extensions["kb_db"]
    log_search(db, 1, "old words", ["old", "word"], 0)
    log_search(db, 2, "fresh words", ["fresh", "word"], 0)
    db.usage_log.flush()
    with db.session() as s:
        old = s.scalar(select(SearchLog).where(SearchLog.query == "old words"))
        old.at = utcnow() - dt.timedelta(days=91)
        s.commit()
    assert purge_searches(db, 90) == 1
    with db.session() as s:
        assert [r.query for r in s.scalars(select(SearchLog))] == ["fresh words"]

    keeper = SearchLogKeeper(db, 30)
    log_search(db, 3, "older than thirty", ["older"], 0)
    db.usage_log.flush()
    with db.session() as s:
        row = s.scalar(select(SearchLog).where(SearchLog.query == "older than thirty"))
        row.at = utcnow() - dt.timedelta(days=31)
        s.commit()
    keeper.purge_if_due()
    keeper.purge_if_due()  # the second call the same day does nothing
    with db.session() as s:
        assert [r.query for r in s.scalars(select(SearchLog))] == ["fresh words"]


def test_the_app_purges_at_start_with_the_configured_retention(tmp_path):
    base = tmp_path
    config = {"INSTANCE_DIR": str(base / "instance"), "SEED_DIR": str(_seed(base)),
              "TESTING": True, "SEARCH_LOG_DAYS": 7}
    app = create_app(config)
    db = app.extensions["kb_db"]
    log_search(db, 1, "last week", ["week"], 0)
    db.usage_log.flush()
    with db.session() as s:
        row = s.scalar(select(SearchLog))
        row.at = utcnow() - dt.timedelta(days=8)
        s.commit()
    app.extensions["kb"].index.close()
    db.dispose()
    again = create_app(config)
    try:
        with again.extensions["kb_db"].session() as s:
            assert s.scalar(select(SearchLog)) is None
    finally:
        again.extensions["kb"].index.close()
        again.extensions["kb_db"].dispose()
