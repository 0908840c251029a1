"""REST for risk analysis: township scores, hotspots, trends and replay (command.risk).

- GET /api/v1/risk: every township's score 0–100, its parts and the formula.
- GET /api/v1/hotspots?days=7&cell=1000: incidents per hexagon (GeoJSON).
- GET /api/v1/trends?span=24h|30d: counts by type per hour/day, this period and the one before.
- GET /api/v1/replay?from=ISO&to=ISO: a window's incidents (≤ 1 day) by occurred_at.

Any signed-in user; incidents are those the user may see (`scope_filter`). Scores compare
townships: county roles get all of them, township staff their own, others 403. Bad parameters
answer 422 with {code, message, field}.
"""

from __future__ import annotations

from flask import Blueprint, current_app, request

from command.errors import DomainError
from command.risk import replay as replays
from command.risk import service
from command.web.auth import require
from command.web.respond import error_response, json_response

risk_api = Blueprint("risk_api", __name__)


def _answer(action):
    """Run `action(session, core)` on a read session; map domain errors to their statuses."""
    core = current_app.extensions["cmdcenter"]
    try:
        with core.read() as session:
            return json_response(action(session, core))
    except DomainError as err:
        return error_response(err)


def _number(name: str, default, kind=int):
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise DomainError("invalid_field", f"{name}: {raw!r} is not a number", name) from None


@risk_api.get("/api/v1/risk")
@require()
def get_risk(principal):
    return _answer(lambda session, core: service.risk(
        session, now=core.clock.now(), locator=core.units.current(session), principal=principal))


@risk_api.get("/api/v1/hotspots")
@require()
def get_hotspots(principal):
    def run(session, core):
        days, cell = _number("days", 7), _number("cell", 1000.0, float)
        center = service.origin(session, core.units.current(session))
        return service.hotspots(session, now=core.clock.now(), days=days, cell_m=cell,
                                center=center, principal=principal)
    return _answer(run)


@risk_api.get("/api/v1/trends")
@require()
def get_trends(principal):
    return _answer(lambda session, core: service.trends(
        session, now=core.clock.now(), span=request.args.get("span", "24h"), principal=principal))


@risk_api.get("/api/v1/replay")
@require()
def get_replay(principal):
    def run(session, core):
        start, end = replays.parse_window(request.args.get("from"), request.args.get("to"),
                                          now=core.clock.now())
        return service.replay(session, start=start, end=end,
                              locator=core.units.current(session), principal=principal)
    return _answer(run)
