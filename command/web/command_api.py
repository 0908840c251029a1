"""REST for commanding: incident detail and transitions, orders and their nodes, alerts.

Handlers unpack, call one service inside a transaction, publish the changes after commit and
map domain errors to statuses (401/403 from the auth layer, 404, 409 with `allowed`, 422).
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, request

from command.alerts import service as alerts_service
from command.errors import DomainError, NotFound
from command.incidents import loop, workflow
from command.orders import service as orders
from command.orders.service import Changes
from command.web.api import MAX_SEQ
from command.web.auth import require
from command.web.respond import error_response, json_response, not_found, read_object

command_api = Blueprint("command_api", __name__)
COMMANDERS = ("leader", "admin")


def core():
    """The Core of the running app."""
    return current_app.extensions["cmdcenter"]


def _body() -> dict:
    return read_object()


def _write(action):
    """Run `action(session, changes, locator, now)` in one transaction; publish after commit."""
    c = core()
    changes = Changes()
    try:
        with c.write() as session, session.begin():
            result = action(session, changes, c.units.current(session), c.clock.now())
    except NotFound as exc:
        return not_found(str(exc))
    except DomainError as err:
        return error_response(err)
    changes.publish(c.bus)
    return json_response(result)


def _read(action):
    c = core()
    try:
        with c.read() as session:
            return json_response(action(session, c.units.current(session)))
    except NotFound as exc:
        return not_found(str(exc))
    except DomainError as err:
        return error_response(err)


@command_api.get("/api/v1/incidents/<incident_id>")
@require()
def incident_detail(principal, incident_id):
    def detail(session, locator):
        incident = loop.get(session, incident_id, locator=locator)
        ordered = loop.ordered_units(session, incident_id)
        township, grid = incident["township"], incident["grid"]
        if not principal.sees_incident(township and township["code"], grid and grid["code"],
                                       ordered, type_code=incident["type"],
                                       reporter=incident["reporter_user"]):
            raise DomainError("forbidden", "this incident is outside your scope")
        return {**incident, "timeline": loop.timeline(session, incident_id),
                "orders": orders.order_tree(session, incident_id),
                "allowed": workflow.allowed(incident["status"], principal.role)}
    return _read(detail)


@command_api.post("/api/v1/incidents/<incident_id>/transition")
@require()
def incident_transition(principal, incident_id):
    def move(session, changes, locator, now):
        body = _body()
        incident = loop.transition(session, incident_id, to=body.text("to"), by=principal,
                                   note=body.text("note") or "", merged_into=body.text("merged_into"),
                                   rating=body.get("rating"), now=now, locator=locator)
        changes.incidents.append(incident)
        return incident
    return _write(move)


@command_api.post("/api/v1/orders")
@require(*COMMANDERS)
def create_order(principal):
    def issue(session, changes, locator, now):
        body = _body()
        return orders.create_order(
            session, incident_id=body.text("incident_id"), targets=body.texts("targets") or [],
            instruction=body.text("instruction"), priority=body.text("priority") or "normal",
            ack_minutes=body.get("ack_minutes"), due_minutes=body.get("due_minutes"),
            by=principal, now=now, locator=locator, limits=core().limits, changes=changes)
    return _write(issue)


@command_api.get("/api/v1/orders")
@require()
def list_orders(principal):
    open_only = request.args.get("open") in ("1", "true")
    return _read(lambda session, locator: orders.visible_nodes(
        session, by=principal, open_only=open_only, locator=locator))


@command_api.post("/api/v1/orders/<node_id>/forward")
@require()
def forward(principal, node_id):
    def run(session, changes, locator, now):
        body = _body()
        return orders.forward(session, node_id=node_id, targets=body.texts("targets") or [],
                              instruction=body.text("instruction"), by=principal, now=now,
                              locator=locator, changes=changes)
    return _write(run)


@command_api.post("/api/v1/orders/<node_id>/<action>")
@require()
def node_action(principal, node_id, action):
    if action not in ("ack", "progress", "complete", "return", "cancel", "reissue", "deliver"):
        return not_found(f"no action {action!r}")

    def run(session, changes, locator, now):
        body = _body()
        return orders.act(session, node_id=node_id, action=action, by=principal,
                          note=body.text("note"), result=body.text("result"),
                          reason=body.text("reason"), now=now, locator=locator, changes=changes,
                          action_id=body.text("action_id"), acted_at=body.when("acted_at"),
                          max_future=timedelta(
                              seconds=core().settings.future_tolerance_seconds))
    return _write(run)


@command_api.get("/api/v1/alerts")
@require()
def list_alerts(principal):
    status = request.args.get("status", "open")
    since = request.args.get("since")
    if status not in ("open", "all") or (since is not None and not (
            since.isascii() and since.isdigit() and int(since) <= MAX_SEQ)):
        return error_response(DomainError("invalid_field", "status=open|all, since=integer"))
    return _read(lambda session, locator: alerts_service.list_alerts(
        session, status, int(since) if since else None, by=principal))


@command_api.get("/api/v1/alerts/<alert_id>")
@require()
def alert_detail(principal, alert_id):
    def detail(session, locator):
        alert = alerts_service.get(session, alert_id)
        if principal.matters_only:
            named = alert["incidents"]
            if not named or alerts_service.matter_ids(session, named) != set(named):
                raise DomainError("forbidden", "this alert is outside your scope")
        elif not (principal.county_wide or principal.unit_code in alert["units"]):
            raise DomainError("forbidden", "this alert is outside your scope")
        return {**alert, "history": alerts_service.history(session, alert_id)}
    return _read(detail)


@command_api.post("/api/v1/alerts/<alert_id>/merge")
@require("duty", *COMMANDERS)
def alert_merge(principal, alert_id):
    from command.alerts.merge import merge

    def run(session, changes, locator, now):
        body = _body()
        alert, changed = merge(session, alert_id, into=body.text("into"), by=principal,
                               note=body.text("note"), now=now, locator=locator)
        changes.extend(changed)
        return alert
    return _write(run)


@command_api.post("/api/v1/alerts/<alert_id>/<action>")
@require()
def alert_action(principal, alert_id, action):
    if action not in ("ack", "dismiss"):
        return not_found(f"no action {action!r}")

    def run(session, changes, locator, now):
        alert = alerts_service.act(session, alert_id, action, principal, _body().text("note"),
                                   now=now)
        changes.alerts.append(alert)
        return alert
    return _write(run)
