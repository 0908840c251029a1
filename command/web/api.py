"""REST: POST /api/v1/reports, GET /api/v1/incidents, GET /api/v1/units, GET /healthz."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from command.errors import DomainError
from command.feeds import service as feeds_service
from command.incidents import service as incidents_service
from command.units import service as units_service
from command.web import reqlog
from command.web.auth import bearer_token, current, require
from command.web.respond import error_response, json_response, read_json
from layers.figures import units_geojson

api = Blueprint("api", __name__)

DEFAULT_LIMIT = 500
MAX_LIMIT = 5000
MAX_SEQ = 2**63 - 1


def core():
    """The Core of the running app."""
    return current_app.extensions["cmdcenter"]


@api.post("/api/v1/reports")
def post_reports():
    c = core()
    try:
        with c.read() as session:
            feed = feeds_service.authenticate(session, bearer_token())
        reqlog.set_feed(feed.name)
        body = read_json()
        outcomes = c.ingest.submit(feed, body)
    except DomainError as err:
        return error_response(err)
    if isinstance(body, list):
        return json_response([o.as_ack() for o in outcomes])
    outcome = outcomes[0]
    return json_response(outcome.as_ack(), outcome.error.http_status if outcome.error else 200)


def seq_and_limit(default_limit: int = DEFAULT_LIMIT, max_limit: int = MAX_LIMIT) -> tuple[int, int]:
    """`since` and `limit` of a listing's query string, checked."""
    try:
        since = int(request.args.get("since", 0))
        limit = int(request.args.get("limit", default_limit))
    except ValueError:
        raise DomainError("invalid_field", "since and limit must be integers") from None
    if not 0 <= since <= MAX_SEQ or not 1 <= limit <= max_limit:
        raise DomainError("out_of_range", f"0 ≤ since ≤ {MAX_SEQ} and 1 ≤ limit ≤ {max_limit}")
    return since, limit


@api.get("/api/v1/incidents")
@require()
def get_incidents(principal):
    try:
        since, limit = seq_and_limit()
    except DomainError as err:
        return error_response(err)
    c = core()
    with c.read() as session:
        return json_response(incidents_service.since(session, since, limit=limit,
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
                return error_response(DomainError("unauthorized",
                                                  "sign in, or send a user or feed token"))
        if request.args.get("geometry") in ("1", "true"):
            return json_response(units_geojson(units_service.load_gdf(session), None))
        return json_response(units_service.get_all(session))


@api.get("/healthz")
def healthz():
    c = core()
    with c.read() as session:
        units = units_service.count(session)
    return json_response({"ok": True, "units": units})
