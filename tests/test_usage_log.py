"""The usage log's batched writer, on a real SQLite database."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from kb.db import Database, Event, SearchLog
from kb.usage_log import UsageLog


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'kb.sqlite'}")
    yield database
    database.dispose()


def count(db: Database, table) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(table))


def test_searches_wait_in_memory_until_the_batch_is_written(db):
    log = UsageLog(db, interval=3600)  # no timed flush in this test
    ids = [log.search(7, f"query{n}x", [f"w{n}"], 1) for n in range(50)]
    log.event(7, "view", "refund-status", "v1", ids[-1])
    assert count(db, SearchLog) == 0 and count(db, Event) == 0  # no commit per keystroke
    assert log.flush() == 51
    assert count(db, SearchLog) == 50 and count(db, Event) == 1
    log.close()


def test_a_clean_shutdown_loses_nothing(db, tmp_path):
    log = db.usage_log
    log.interval = 3600
    for n in range(120):
        sid = log.search(n % 5, f"words{n:03d}x", ["w"], 0)
        log.event(n % 5, "copy", "refund-status", "v1", sid)
    db.dispose()  # what a server does when it stops
    again = Database(f"sqlite:///{tmp_path / 'kb.sqlite'}")
    try:
        assert count(again, SearchLog) == 120 and count(again, Event) == 120
    finally:
        again.dispose()


def test_keystrokes_of_one_query_are_one_row_and_an_open_starts_a_new_one(db):
    log = UsageLog(db, interval=3600)
    typed = [log.search(1, "box smashed"[:end], ["box"], 3) for end in range(3, 12)]
    assert len(set(typed)) == 1
    assert log.search(1, "box sma", ["box"], 3) == typed[0]  # trimmed back: same search
    assert log.search(2, "box smashed", ["box"], 3) != typed[0]  # someone else
    log.event(1, "view", "item-arrived-damaged", "v1", typed[0])
    assert log.search(1, "box smashed again", ["box"], 3) != typed[0]
    log.flush()
    with db.session() as s:
        row = s.get(SearchLog, typed[0])
        assert (row.query, row.opened_slug) == ("box sma", "item-arrived-damaged")
    log.close()


def test_an_open_written_before_its_search_keeps_both(db):
    """The search and the open of its result may be served by two processes."""
    searching, opening = UsageLog(db, interval=3600), UsageLog(db, interval=3600)
    sid = searching.search(4, "wrong shade", ["shade", "wrong"], 2)
    opening.event(4, "copy", "wrong-colour", "v1", sid)
    opening.flush()
    searching.flush()
    with db.session() as s:
        row = s.get(SearchLog, sid)
        assert (row.query, row.opened_slug, row.copied) == ("wrong shade", "wrong-colour", True)
    other = UsageLog(db, interval=3600).search(4, "another", [], 0)
    assert other != sid  # two processes never hand out the same id
    searching.close()
    opening.close()


def test_keystrokes_answered_by_two_processes_are_one_search(db):
    """Two server processes take turns answering one agent's keystrokes; the page
    names the search its words continue, so the log holds one row, the last words."""
    first, second = UsageLog(db, interval=3600), UsageLog(db, interval=3600)
    sid = first.search(1, "box", ["box"], 3)
    assert second.search(1, "box sma", ["box"], 3, after=sid) == sid
    assert first.search(1, "box smash", ["box", "smash"], 2, after=sid) == sid
    assert second.search(1, "box smashed", ["box", "smash"], 2, after=sid) == sid
    second.flush()  # the newest keystroke reaches the database first ...
    first.flush()   # ... and an older one written later does not undo it
    with db.session() as s:
        rows = list(s.scalars(select(SearchLog)))
    assert [(r.id, r.query) for r in rows] == [(sid, "box smashed")]
    # without the page's word, each process would have counted its own search
    alone = UsageLog(db, interval=3600)
    assert alone.search(1, "box smashed again", ["box"], 3) != sid
    for log in (first, second, alone):
        log.close()


def test_an_opened_search_is_not_continued(db):
    log = UsageLog(db, interval=3600)
    sid = log.search(1, "refund", ["refund"], 2)
    log.event(1, "view", "refund-status", "v1", sid)
    assert log.search(1, "refund late", ["refund", "late"], 2, after=sid) != sid
    log.close()
