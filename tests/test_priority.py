"""Saves before searches: a search starting while a save runs in the process waits."""

from __future__ import annotations

import threading
import time

from kb.priority import WritesFirst


def hold(gate: WritesFirst) -> tuple[threading.Thread, threading.Event]:
    """A save under way in another thread until the returned event is set."""
    saving, release = threading.Event(), threading.Event()

    def save():
        with gate.writing():
            saving.set()
            release.wait(5)

    writer = threading.Thread(target=save)
    writer.start()
    saving.wait(5)
    return writer, release


def test_a_search_waits_for_a_save_under_way():
    gate = WritesFirst()
    order = []
    saving, release = threading.Event(), threading.Event()

    def save():
        with gate.writing():
            saving.set()
            release.wait(5)
            order.append("save done")

    def search():
        gate.wait(timeout=5)
        order.append("search ran")

    writer = threading.Thread(target=save)
    writer.start()
    saving.wait(5)
    reader = threading.Thread(target=search)
    reader.start()
    time.sleep(0.2)  # the search is parked, not running
    assert order == [] and gate.busy()
    release.set()
    writer.join(5)
    reader.join(5)
    assert order == ["save done", "search ran"]
    assert not gate.busy()


def test_the_saving_thread_itself_never_waits():
    gate = WritesFirst()
    with gate.writing():
        started = time.monotonic()
        gate.wait(timeout=60)  # a save that searches (an import, say) must not stall
        assert time.monotonic() - started < 30  # it did not sit out the timeout


def test_a_slow_save_holds_searches_back_only_so_long():
    gate = WritesFirst()
    writer, release = hold(gate)
    gate.wait(timeout=0.1)  # returns although the save still runs
    assert gate.busy()
    release.set()
    writer.join(5)


def test_a_search_waits_for_a_save_in_the_same_process(index):
    """The search index's lock lets a save that started meanwhile go first."""
    from kb.priority import gate

    finished = []
    writer, release = hold(gate)
    reader = threading.Thread(target=lambda: finished.append(index.search("refund").hits))
    reader.start()
    time.sleep(0.3)
    assert not finished  # parked behind the save
    release.set()
    writer.join(5)
    reader.join(5)
    assert finished and finished[0]  # and then answered in full


def test_one_person_gets_one_search_at_a_time_and_others_are_served(app, client, trainer):
    """While a person's search runs (held here), their next one waits and is then
    refused with 429; another person's search is served meanwhile."""
    import threading

    from kb import priority
    from kb.users import get_user

    alice = get_user(app.extensions["kb_db"], "alice").id
    held, release = threading.Event(), threading.Event()

    def hold_alices_slot():
        with priority.share.slot(alice):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_alices_slot)
    holder.start()
    held.wait(10)
    old_wait = priority.SHARE_WAIT
    priority.SHARE_WAIT = 0.2
    try:
        busy = client.get("/api/search?q=refund")
        assert busy.status_code == 429 and "one search at a time" in busy.get_json()["message"]
        assert client.get("/?q=refund").status_code == 429
        assert trainer.get("/api/search?q=refund").status_code == 200  # someone else
    finally:
        priority.SHARE_WAIT = old_wait
        release.set()
        holder.join()
    assert client.get("/api/search?q=refund").status_code == 200  # her turn again
    assert priority.share._slots == {}  # nothing kept per person once idle
