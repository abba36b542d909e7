"""For the load balancer and the git server: liveness, readiness, the push webhook."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request

from kb.auth import database, public
from kb.remote import check_hook_secret
from kb.services import services
from kb.store import RemoteUnavailable

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
def healthz():
    """The process is up and answering."""
    return jsonify(status="ok")


def readiness() -> tuple[bool, dict]:
    """Ready when the index is at the head this node last saw on the remote (or at
    the clone's head without one) and the database answers; degraded (still serving)
    when only the database is away. A node that cannot reach the remote stays ready:
    it serves searches from what it has and refuses saves. Returns whether the node
    serves, and the report."""
    svc = services()
    svc.index.ensure_fresh()  # another process of this node may have moved the clone
    index_at = svc.index.commit
    head = svc.store.head()
    report: dict = {"index": index_at, "content": head, "database": database().reachable()}
    ready = report["database"] and index_at == head
    if svc.remote is not None:
        report["remote"] = svc.remote.status()
        if svc.remote.error is None:
            ready = ready and svc.remote.head in (None, index_at)
    report["ready"] = bool(ready)
    # Without the database a node still serves searches, entries and copies to people
    # signed in: degraded, not down, or a database outage would empty every node at once.
    serving = ready or (not report["database"] and index_at == head)
    report["status"] = "ready" if ready else "degraded" if serving else "not ready"
    return bool(serving), report


@bp.get("/readyz")
@public
def readyz():
    serving, report = readiness()
    return jsonify(report), 200 if serving else 503


@bp.post("/api/hooks/push")
@public
def push_hook():
    """A git server calls this after a push: fetch now instead of within the second."""
    remote = services().remote
    if remote is None:
        abort(404, description="This node has no shared remote (KB_REMOTE).")
    secret = current_app.config.get("HOOK_SECRET", "")
    if not check_hook_secret(secret, request.get_data(), request.headers):
        abort(403, description="Wrong or missing hook secret (KB_HOOK_SECRET)." if secret
              else "Set KB_HOOK_SECRET on every node to accept the push webhook.")
    try:
        remote.catch_up(services())
    except RemoteUnavailable as exc:
        return jsonify(error="Service Unavailable", message=str(exc)), 503
    return jsonify(head=services().store.head(), index=services().index.commit)
