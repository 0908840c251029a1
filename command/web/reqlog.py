"""Request ids and one log line per request or Socket.IO event.

The id comes from `X-Request-ID` when it is a plain token (nginx passes its own on), else one is
made; it is answered in `X-Request-ID` and carried by every line logged while the request is
handled. The line names the path without the query string (a search may hold a phone number).
Static files are logged at DEBUG, everything else at INFO.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid

from flask import g, request

from command.errors import HTTP_STATUS
from command.ops import logs

log = logging.getLogger("cmdcenter.http")
sio_log = logging.getLogger("cmdcenter.socketio")

HEADER = "X-Request-ID"
_ENVIRON_KEY = "cmdcenter.request_id"
_VALID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_STATIC = ("/assets/", "/_dash-component-suites/", "/_favicon")


def request_id(environ: dict) -> str:
    """This request's (or Socket.IO connection's) id, made once and kept in its environ."""
    known = environ.get(_ENVIRON_KEY)
    if known is None:
        given = environ.get("HTTP_X_REQUEST_ID", "")
        known = given if _VALID.fullmatch(given) else uuid.uuid4().hex
        environ[_ENVIRON_KEY] = known
    return known


def _start() -> None:
    g.log_started = time.perf_counter()
    g.log_token = logs.context.set({"request_id": request_id(request.environ),
                                    "path": request.path})


def _finish(response):
    fields = logs.context.get() or {}
    started = g.get("log_started")
    if started is None:  # refused before our own hook ran
        return response
    response.headers[HEADER] = fields.get("request_id", "")
    principal = g.get("principal")
    level = logging.DEBUG if request.path.startswith(_STATIC) else logging.INFO
    log.log(level, "%s %s", request.method, request.path, extra={
        "status": response.status_code, "user": principal.name if principal else None,
        "feed": g.get("log_feed"),
        "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
    return response


def _teardown(_exc=None) -> None:
    token = g.pop("log_token", None)
    if token is not None:
        logs.context.reset(token)


def set_feed(name: str) -> None:
    """Name the feed of this request in its log lines (REST ingest)."""
    g.log_feed = name
    fields = logs.context.get()
    if fields is not None:
        fields["feed"] = name


def install(server) -> None:
    """Give every request an id and a log line (the first before-request hook)."""
    server.before_request_funcs.setdefault(None, []).insert(0, _start)
    server.after_request(_finish)
    server.teardown_request(_teardown)


@contextlib.contextmanager
def socket_event(namespace: str, event: str, environ: dict | None, identity):
    """Log context for one Socket.IO event, and one line when it has been handled.

    `identity()` gives (user, feed) of the connection (called before and after the handler:
    a connect knows them only after). Yields a dict: put the answer under "ack" (an error ack
    gives the line the error's status) or set "refused" (a refused connect: 401).
    """
    user, feed = identity()
    fields = {"request_id": request_id(environ) if environ is not None else None,
              "path": namespace, "user": user, "feed": feed}
    token = logs.context.set(fields)
    started = time.perf_counter()
    outcome: dict = {}
    status = 500
    try:
        yield outcome
        ack = outcome.get("ack")
        status = 200
        if outcome.get("refused"):
            status = 401
        elif isinstance(ack, dict) and ack.get("ok") is False:
            status = HTTP_STATUS.get((ack.get("error") or {}).get("code"), 400)
    finally:
        after_user, after_feed = identity()
        fields.update(user=fields["user"] or after_user, feed=fields["feed"] or after_feed)
        sio_log.info("%s %s", event, namespace, extra={
            "status": status, "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
        logs.context.reset(token)
