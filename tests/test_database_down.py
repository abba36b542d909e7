"""PostgreSQL down under a running node: signed-in people keep searching, reading and
copying; writes that need the database are refused with a clear message; usage waits in
memory and is written when the database is back; /readyz says degraded."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from kb import create_app
from kb.db import Event, SearchLog
from kb.users import create_user
from tests.conftest import PASSWORD, login, write_seed
from tests.pgcluster import PgCluster, pg_bin_dir


@pytest.fixture
def own_cluster():
    """A PostgreSQL of this test's own: it is stopped and started under the app."""
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (scripts/test.sh installs it)")
    cluster = PgCluster(bin_dir)
    cluster.start()
    yield cluster
    cluster.stop()


def test_reading_and_copying_go_on_while_postgresql_is_down(tmp_path, own_cluster):
    url = own_cluster.fresh_database()
    app = create_app({"INSTANCE_DIR": str(tmp_path / "instance"), "TESTING": True,
                      "SEED_DIR": str(write_seed(tmp_path / "seed")), "DATABASE_URL": url})
    db = app.extensions["kb_db"]
    try:
        create_user(db, "alice", PASSWORD, role="agent")
        agent = app.test_client()
        assert login(agent, "alice").status_code == 302
        assert agent.get("/?q=refund").status_code == 200
        db.usage_log.flush()

        own_cluster.pause()
        for path in ["/?q=refund", "/api/search?q=box+smashed", "/e/refund-status", "/"]:
            assert agent.get(path).status_code == 200, path
        composed = agent.post("/api/compose/refund-status", json={"customer_name": "Ana"})
        assert composed.status_code == 200 and "Ana" in composed.get_json()["text"]
        copied = agent.post("/api/events", json={"kind": "copy", "slug": "refund-status"})
        assert copied.status_code == 201
        refused = agent.post("/api/proposals", json={
            "title": "Parcel stuck at customs", "answer": "We are on it.", "reason": "new"})
        assert refused.status_code == 503
        assert "database" in refused.get_json()["message"]
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 200 and ready.get_json()["status"] == "degraded"
        with pytest.raises(Exception):  # noqa: B017 - the batch cannot be written yet
            db.usage_log.flush()
        assert db.usage_log.pending() > 0  # kept, not dropped

        own_cluster.resume()
        db.usage_log.flush()
        assert db.usage_log.pending() == 0
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(Event).where(
                Event.kind == "copy")) == 1
            # the search made while it was down, too
            assert s.scalar(select(func.count()).select_from(SearchLog).where(
                SearchLog.query == "box smashed")) == 1
        assert app.test_client().get("/readyz").get_json()["ready"] is True
    finally:
        app.extensions["kb"].index.close()
        db.dispose()
