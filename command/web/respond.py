"""Answers and bodies at the HTTP edge: JSON answers, strict bodies, errors in one shape.

Every REST answer that is not a success is `{"ok": false, "error": {"code", "message"[,
"field"]}}` with its status, whatever failed: a domain rule, a body over the size limit (however
it is framed: the body is read with a cap, never whole first), JSON too deep to decode, a URL
with a NUL in it, an unknown path or method, or a bug (logged, answered 500 `internal`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Response, request
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge

from command import payload
from command.errors import DomainError, NotFound

log = logging.getLogger(__name__)

# paths answered in JSON, also when Flask or Werkzeug refuse the request themselves
JSON_PREFIXES = ("/api/", "/_dash-", "/healthz", "/readyz", "/metrics")
_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "too_large",
               415: "bad_request", 429: "rate_limited"}


def json_response(body: Any, status: int = 200) -> Response:
    """A compact UTF-8 JSON answer."""
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status=status,
                    mimetype="application/json")


def error_response(err: DomainError, **extra) -> Response:
    """The error shape of the protocol, with the error's status (and `allowed` when it has it)."""
    body = {"ok": False, "error": err.as_dict(), **extra}
    if getattr(err, "allowed", None) is not None:
        body["allowed"] = err.allowed
    if getattr(err, "node", None) is not None:
        body["node"] = err.node
    return json_response(body, err.http_status)


def not_found(message: str) -> Response:
    """404 in the error shape."""
    return error_response(DomainError("not_found", message))


def read_json() -> Any:
    """The request body as JSON, read with the size cap; DomainError when it is not JSON we take.

    Flask's MAX_CONTENT_LENGTH (set by `install`) makes Werkzeug refuse a longer body, with or
    without Content-Length, before it is held whole: that surfaces as 413 `too_large`.
    """
    data = _body_bytes()
    if not data:
        return None
    try:
        return payload.loads(data)
    except payload.PayloadError as exc:
        raise exc.as_domain() from None


def _body_bytes() -> bytes:
    """The body, never more than the cap: Werkzeug checks a Content-Length against
    MAX_CONTENT_LENGTH, and a chunked body is read here up to one byte past the cap."""
    limit = request.max_content_length
    raw = request.environ.get("wsgi.input")
    try:
        if request.content_length is not None or limit is None or raw is None \
                or "wsgi.input_terminated" not in request.environ:
            return request.get_data(cache=True)
        chunks, size = [], 0
        while size <= limit:
            chunk = raw.read(min(1 << 16, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (OSError, ValueError) as exc:  # a broken chunk header, a connection cut mid-body
        raise BadRequest(f"the body could not be read: {exc}") from None
    if size > limit:
        raise RequestEntityTooLarge()
    data = b"".join(chunks)
    request._cached_data = data  # later readers (get_data, get_json) see the same bytes
    return data


class Body(dict):
    """A request's JSON object, with typed reads that refuse the wrong type by field name."""

    def text(self, key: str) -> str | None:
        """A string field (None when absent or null)."""
        value = self.get(key)
        if value is not None and not isinstance(value, str):
            raise DomainError("invalid_field", f"{key}: must be a string", key)
        return value

    def when(self, key: str):
        """An ISO 8601 time (no zone: Asia/Shanghai), or None when absent."""
        from datetime import datetime

        from command.clock import SHANGHAI

        value = self.text(key)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise DomainError("invalid_field", f"{key}: an ISO 8601 time", key) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=SHANGHAI)

    def texts(self, key: str) -> list[str] | None:
        """A list of strings (None when absent or null)."""
        value = self.get(key)
        if value is not None and (not isinstance(value, list)
                                  or not all(isinstance(v, str) for v in value)):
            raise DomainError("invalid_field", f"{key}: must be a list of strings", key)
        return value


def read_object() -> Body:
    """The body as a JSON object (empty body: {}), every string storable."""
    body = read_json()
    if body is None:
        return Body()
    if not isinstance(body, dict):
        raise DomainError("invalid_field", "body must be a JSON object")
    payload.check_text(body)
    return Body(body)


def _wants_json() -> bool:
    return request.path.startswith(JSON_PREFIXES)


def _http_error(exc: HTTPException):
    if not _wants_json():
        return exc
    code = _HTTP_CODES.get(exc.code or 400, "bad_request")
    if isinstance(exc, RequestEntityTooLarge) or exc.code == 413:
        limit = request.max_content_length
        message = f"request body is larger than the maximum of {limit} bytes"
    elif code == "bad_request":
        message = exc.description if isinstance(exc.description, str) and \
            exc.description.startswith("the body") else \
            "the request could not be read (truncated body or bad framing)"
    else:
        message = exc.description or exc.name
    response = json_response({"ok": False, "error": {"code": code, "message": message}},
                             exc.code or 400)
    if exc.code == 405 and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _unexpected(exc: Exception):
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    if isinstance(exc, NotFound):
        return not_found(str(exc))
    if isinstance(exc, DomainError):
        return error_response(exc)
    log.exception("unexpected error on %s %s", request.method, request.path)
    return json_response({"ok": False, "error": {
        "code": "internal", "message": "the server failed on this request; it was logged"}}, 500)


def _check_url():
    """Unknown API paths are 404 in JSON (not the pages' catch-all); a NUL in the path or query
    (%00) would reach the database: refuse it here."""
    rule = request.url_rule
    if request.path.startswith("/api/") and rule is not None \
            and not rule.rule.startswith("/api/"):
        return not_found(f"no endpoint {request.path}")
    if not payload.clean_text(request.path) or any(
            not payload.clean_text(k) or not payload.clean_text(v)
            for k, v in request.args.items(multi=True)):
        return error_response(DomainError("invalid_field", "the URL may not contain NUL"))
    return None


def guard_dash_callbacks(app) -> None:
    """Dash answers its callback requests itself and fails with a 500 on a body that is not one
    (deep JSON, no `output`, an output no callback has): check the body first, answer 4xx."""
    server = app.server
    for rule in server.url_map.iter_rules():
        if rule.rule.endswith("/_dash-update-component"):
            server.view_functions[rule.endpoint] = _checked_dispatch(
                server.view_functions[rule.endpoint], app)


def _checked_dispatch(view, app):
    def dispatch(*args, **kwargs):
        try:
            body = read_json()
            payload.check_text(body)
        except DomainError as err:
            return error_response(err)
        lists = ("inputs", "state", "changedPropIds")
        if not isinstance(body, dict) or not isinstance(body.get("output"), str) \
                or body["output"] not in app.callback_map \
                or any(not isinstance(body.get(key, []), list) for key in lists):
            return error_response(DomainError(
                "invalid_field", "not a callback request of this app (output, inputs, state)"))
        try:
            return view(*args, **kwargs)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            log.warning("a callback request did not fit its callback", exc_info=True)
            return error_response(DomainError(
                "invalid_field", f"the request does not fit the callback {body['output']}: "
                                 f"{type(exc).__name__}"))
    return dispatch


def install(server, *, max_bytes: int) -> None:
    """Cap every body at `max_bytes`, answer errors in the protocol's shape."""
    server.config["MAX_CONTENT_LENGTH"] = max_bytes
    server.register_error_handler(HTTPException, _http_error)
    server.register_error_handler(Exception, _unexpected)
    server.before_request_funcs.setdefault(None, []).insert(0, _check_url)
