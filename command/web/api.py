"""REST: POST /api/v1/reports, GET /api/v1/incidents, GET /api/v1/units, GET /healthz."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, request

from command.errors import DomainError
from command.feeds import service as feeds_service
from command.incidents import service as incidents_service
from command.units import service as units_service
from command.web.auth import bearer_token, current, require
from layers.figures import units_geojson

api = Blueprint("api", __name__)

DEFAULT_LIMIT = 500
MAX_LIMIT = 5000


def core():
    """The Core of the running app."""
    return current_app.extensions["cmdcenter"]


def _json(payload, status: int = 200) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), status=status,
                    mimetype="application/json")


def _error(err: DomainError) -> Response:
    return _json({"ok": False, "error": err.as_dict()}, err.http_status)


@api.post("/api/v1/reports")
def post_reports():
    c = core()
    try:
        with c.read() as session:
            feed = feeds_service.authenticate(session, bearer_token())
        if (request.content_length or 0) > c.settings.max_message_bytes:
            raise DomainError("too_large", "request body is larger than the maximum of "
                                           f"{c.settings.max_message_bytes} bytes")
        try:
            body = json.loads(request.get_data(cache=False) or b"")
        except (ValueError, UnicodeDecodeError) as exc:
            raise DomainError("invalid_json", f"body is not valid JSON: {exc}") from None
        outcomes = c.ingest.submit(feed, body)
    except DomainError as err:
        return _error(err)
    if isinstance(body, list):
        return _json([o.as_ack() for o in outcomes])
    outcome = outcomes[0]
    return _json(outcome.as_ack(), outcome.error.http_status if outcome.error else 200)


@api.get("/api/v1/incidents")
@require()
def get_incidents(principal):
    try:
        since = int(request.args.get("since", 0))
        limit = int(request.args.get("limit", DEFAULT_LIMIT))
    except ValueError:
        return _error(DomainError("invalid_field", "since and limit must be integers"))
    if since < 0 or not 1 <= limit <= MAX_LIMIT:
        return _error(DomainError("out_of_range", f"since ≥ 0 and 1 ≤ limit ≤ {MAX_LIMIT}"))
    c = core()
    with c.read() as session:
        return _json(incidents_service.since(session, since, limit=limit,
                                             locator=c.units.current(session),
                                             principal=principal))


@api.get("/api/v1/units")
def get_units():
    """Every signed-in user and every feed (to name grids in reports) may read the units."""
    c = core()
    with c.read() as session:
        if current() is None:
            try:
                feeds_service.authenticate(session, bearer_token())
            except DomainError:
                return _error(DomainError("unauthorized", "sign in, or send a user or feed token"))
        if request.args.get("geometry") in ("1", "true"):
            return _json(units_geojson(units_service.load_gdf(session), None))
        return _json(units_service.get_all(session))


@api.get("/healthz")
def healthz():
    c = core()
    with c.read() as session:
        units = units_service.count(session)
    return _json({"ok": True, "units": units})
