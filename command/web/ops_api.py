"""GET /readyz (the database and Redis answer) and GET /metrics (Prometheus, this process)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from command.web.auth import bearer_token
from command.web.respond import json_response

ops_api = Blueprint("ops_api", __name__)


def core():
    """The Core of the running app."""
    return current_app.extensions["cmdcenter"]


@ops_api.get("/readyz")
def readyz():
    ready, checks = current_app.extensions["cmdcenter.readiness"].check()
    return json_response({"ok": ready, "checks": checks}, 200 if ready else 503)


def tcp_peer() -> str | None:
    """The address of the TCP peer: never X-Forwarded-For, also behind a ProxyFix."""
    environ = request.environ
    original = environ.get("werkzeug.proxy_fix.orig") or {}
    return original.get("REMOTE_ADDR") or environ.get("REMOTE_ADDR")


@ops_api.get("/metrics")
def metrics():
    access = current_app.extensions["cmdcenter.metrics_access"]
    if not access.permits(bearer_token(), tcp_peer()):
        why = ("metrics are readable with CMDCENTER_METRICS_TOKEN or from CMDCENTER_METRICS_ALLOW"
               if access.configured else "metrics are off: set CMDCENTER_METRICS_TOKEN or "
                                         "CMDCENTER_METRICS_ALLOW")
        return json_response({"ok": False, "error": {"code": "forbidden", "message": why}}, 403)
    from command.ops.metrics import CONTENT_TYPE

    return Response(core().metrics.exposition(), mimetype=None, content_type=CONTENT_TYPE)
