"""Handling a matter after the window: route it, mediate it under its legal clock, record the
outcome and the agreement, the judicial confirmation and the follow-up.

Routing is an order (kind `route`) through the order machinery: one node for the lead unit
(role `lead`) and one per assisting unit (`assist`), so departments, townships and grids keep
one work list, one `/field` push and one supervision. The matter's steps map onto the incident's
loop (every line below is a timeline line and a new seq):

    registered → accepted · routed → dispatched · signed off by the lead → in_progress ·
    outcome → responded · reviewed (the follow-up verifies it first) → verified ·
    followed up → followed_up · closed → closed
    the lead returns it: dispatched | in_progress → accepted (back in the window's queue)
    an unsatisfied follow-up reopens it: followed_up → in_progress

Lock order as everywhere: rows first, then seq, order_seq, alert_seq (Work.finish).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.alerts import service as alerts_service
from command.clock import SHANGHAI
from command.errors import DomainError, Forbidden
from command.incidents import loop, workflow
from command.incidents.models import incidents
from command.incidents.workflow import STATE_LABELS, TransitionError
from command.matters import rules as rules_mod
from command.matters.rules import clock_fields
from command.matters.models import matter_sessions, matters
from command.matters.service import _event, _matter_row, record, write_audit
from command.orders import service as orders
from command.orders.models import order_nodes
from command.orders.models import orders as orders_table
from command.orders.service import Changes, Work
from command.users.principal import Principal
from layers.locate import Locator

ROUTERS = ("desk", "duty", "leader", "admin")  # any matter; a township: its own, to its grids
WINDOW = ("desk", "duty")  # the window acts on every matter's steps
EXTENDERS = ("leader", "admin")  # a county leader extends a legal limit
ROUTABLE = ("reported", "accepted")  # and in_progress after a reopening, with no open route
ROUTE_ACK_HOURS = 24  # a route's lead and assists sign off within a day

RESULTS = {  # type -> the outcomes it may have (withdrawn: the applicant withdrew, any type)
    "dispute": ("agreed", "not_agreed", "withdrawn"),
    "petition": ("supported", "partly_supported", "not_supported", "withdrawn"),
    "legal": ("served", "withdrawn"),
    "psych": ("served", "withdrawn"),
    "complaint": ("substantiated", "unsubstantiated", "withdrawn"),
    "other": ("served", "agreed", "not_agreed", "withdrawn"),
}
RESULT_LABELS = {
    "agreed": "调解成功", "not_agreed": "调解不成", "withdrawn": "撤回", "supported": "支持",
    "partly_supported": "部分支持", "not_supported": "不支持", "served": "已服务",
    "substantiated": "属实", "unsubstantiated": "不属实",
}
RESOLVED = ("agreed", "supported", "partly_supported", "served", "substantiated")
GUIDED_TO = {"litigation": "诉讼", "arbitration": "仲裁", "petition": "信访",
             "administrative_review": "行政复议", "other": "其他"}
SATISFACTION = {"satisfied": ("满意", 5), "basic": ("基本满意", 4), "unsatisfied": ("不满意", 1)}
CONFIRMATION = {"requested": "已申请司法确认", "granted": "司法确认有效", "refused": "司法确认驳回"}


# --- small readers ----------------------------------------------------------------------------

def _text(body: dict, key: str, *, required: bool = False, limit: int = 5000) -> str | None:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise DomainError("missing_field", f"{key} is required", key)
        return None
    if not isinstance(value, str):
        raise DomainError("invalid_field", f"{key}: must be a string", key)
    if len(value) > limit:
        raise DomainError("out_of_range", f"{key} may be at most {limit} characters", key)
    return value.strip()


def _names(body: dict, key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or len(value) > 30 or not all(
            isinstance(v, str) and 0 < len(v.strip()) <= 100 for v in value):
        raise DomainError("invalid_field", f"{key}: a list of up to 30 names", key)
    return [v.strip() for v in value]


def _when(body: dict, key: str, default: datetime) -> datetime:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise DomainError("invalid_field", f"{key}: an ISO 8601 time", key)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DomainError("invalid_field", f"{key}: an ISO 8601 time, e.g. "
                                           "2026-11-26T09:30:00+08:00", key) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=SHANGHAI)


def _day(body: dict, key: str) -> date | None:
    value = body.get(key)
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError("invalid_field", f"{key}: a date, YYYY-MM-DD", key) from None


def _amount(body: dict, key: str):
    from decimal import Decimal

    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value \
            or not 0 <= value <= 10**12:
        raise DomainError("invalid_field", f"{key}: an amount in yuan, 0 or more", key)
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _object(raw) -> dict:
    if not isinstance(raw, dict):
        raise DomainError("invalid_field", "the body must be a JSON object")
    return raw


def _lead_node(session: Session, incident_id: str, *, open_only: bool = False):
    """The latest route's lead node (a mapping), or None."""
    stmt = (sa.select(order_nodes).join(orders_table, orders_table.c.id == order_nodes.c.order_id)
            .where(order_nodes.c.incident_id == incident_id, order_nodes.c.role == "lead")
            .order_by(order_nodes.c.created_at.desc(), order_nodes.c.seq.desc()))
    if open_only:
        stmt = stmt.where(order_nodes.c.state.in_(orders.OPEN))
    row = session.execute(stmt).first()
    return None if row is None else row._mapping


def _route_units(session: Session, incident_id: str) -> set[str]:
    """The units of every open node of the matter's routes (lead and assists)."""
    return set(session.execute(sa.select(order_nodes.c.target_code).where(
        order_nodes.c.incident_id == incident_id, order_nodes.c.role.isnot(None),
        order_nodes.c.state.notin_(("cancelled", "returned")))).scalars())


def _check_handler(session: Session, by: Principal, row, *, lead_only: bool = False) -> None:
    """The window, or a user of the lead unit (or, unless `lead_only`, an assisting unit)."""
    if by.role in WINDOW:
        return
    lead = _lead_node(session, row["incident_id"])
    if by.unit_code is not None and lead is not None and by.unit_code == lead["target_code"] \
            and lead["state"] not in ("cancelled", "returned"):
        return
    if not lead_only and by.unit_code in _route_units(session, row["incident_id"]):
        return
    raise Forbidden("only the window and the unit handling the matter record its steps")


def _status(session: Session, incident_id: str) -> str:
    return session.execute(sa.select(incidents.c.status).where(incidents.c.id == incident_id)
                           .with_for_update()).scalar_one()


def _moves(session: Session, work: Work, incident_id: str, path: tuple[str, ...], *,
           actor: str, now: datetime, note: str, rating: int | None = None) -> None:
    """Software moves along `path` (each a timeline line by `actor`)."""
    for to in path:
        loop.stage_transition(session, incident_id, to=to, by=None, note=note, now=now,
                              actor=actor, rating=rating if to == "followed_up" else None)
        work.incident(incident_id)


def _finish(session: Session, work: Work, case_no: str, *, by: Principal, locator: Locator,
            now: datetime, rules: rules_mod.MatterRules) -> tuple[dict, Changes]:
    row = _matter_row(session, case_no)
    work.incident(row["incident_id"])  # every step is a change of the matter: a new seq
    changes = work.finish(session, locator=locator)
    return record(session, case_no, by=by, locator=locator, now=now, rules=rules), changes


# --- routing ------------------------------------------------------------------------------------

def suggestion(session: Session, case_no: str, *, by: Principal,
               rules: rules_mod.MatterRules) -> dict:
    """What the routing table suggests for a matter: {"lead", "tier"}."""
    row = _matter_row(session, case_no)
    inc = session.execute(sa.select(incidents.c.type, incidents.c.category,
                                    incidents.c.township_code, incidents.c.grid_code)
                          .where(incidents.c.id == row["incident_id"])).one()
    lead, tier = rules.suggest(inc.type, inc.category, township=inc.township_code,
                               grid=inc.grid_code)
    return {"lead": lead, "tier": tier}


def route(session: Session, case_no: str, raw, *, by: Principal, locator: Locator,
          now: datetime, rules: rules_mod.MatterRules) -> tuple[dict, Changes]:
    """Route a matter to its lead unit and assisting units (an order of kind `route`)."""
    body = _object(raw)
    row = _matter_row(session, case_no, lock=True)
    incident_id = row["incident_id"]
    if by.role not in ROUTERS and not (by.role == "township"
                                       and row["township_code"] == by.unit_code):
        raise Forbidden("the window, the county's commanders or the matter's own township routes "
                        "a matter")
    lead = _text(body, "lead", required=True, limit=64)
    assist = body.get("assist") or []
    if not isinstance(assist, list) or not all(isinstance(a, str) for a in assist):
        raise DomainError("invalid_field", "assist: a list of unit codes", "assist")
    assist = list(dict.fromkeys(a.strip() for a in assist if a.strip() and a.strip() != lead))
    levels = ("grid",) if by.role == "township" else orders.TARGET_LEVELS
    parent = by.unit_code if by.role == "township" else None
    what = f"a grid of {by.unit_code}" if parent else "a township, grid or department"
    orders._targets([lead], locator, levels=levels, parent=parent, what=what)
    if assist:
        orders._targets(assist, locator, levels=levels, parent=parent, what=what)
    inc = session.execute(sa.select(incidents).where(incidents.c.id == incident_id)).one()
    suggested_lead, suggested_tier = rules.suggest(inc.type, inc.category,
                                                   township=inc.township_code, grid=inc.grid_code)
    tier = _text(body, "tier", limit=12) or suggested_tier
    if tier not in rules_mod.TIERS:
        raise DomainError("invalid_field", f"tier: one of {', '.join(rules_mod.TIERS)}", "tier")
    owner = _text(body, "owner", limit=64)
    if tier == "difficult":
        if owner is None:
            raise DomainError("missing_field", "owner: a difficult matter needs the county "
                                               "leader who owns it (包案)", "owner")
        _check_leader(session, owner)
    note = _text(body, "note", limit=2000)
    status = inc.status
    open_route = session.execute(sa.select(order_nodes.c.id).where(
        order_nodes.c.incident_id == incident_id, order_nodes.c.role.isnot(None),
        order_nodes.c.state.in_(orders.UNACKED + orders.WORKING))).first()
    if row["closure"] or status not in (*ROUTABLE, "in_progress") or \
            (status == "in_progress" and open_route is not None) or \
            (status in ROUTABLE and open_route is not None):
        raise TransitionError(f"事项已「{STATE_LABELS.get(status, status)}」"
                              f"{'且已分流' if open_route is not None else ''}，不能再分流", [])
    work = Work()
    _cancel_route_nodes(session, work, incident_id, by=by.name, now=now,
                        note="重新分流，原分流撤销")
    names = "、".join(locator.unit(c)["name"] for c in [lead, *assist])
    instruction = note or f"请主办{locator.unit(lead)['name']}依法调处" + \
        (f"，{ '、'.join(locator.unit(c)['name'] for c in assist)}协办" if assist else "")
    due = row["due_at"] or (now + timedelta(days=rules.limit_days(inc.type, inc.category)))
    orders.issue_nodes(session, work, incident_id=incident_id,
                       targets=[(lead, "lead"), *[(c, "assist") for c in assist]],
                       instruction=instruction, priority="normal",
                       ack_by=now + timedelta(hours=ROUTE_ACK_HOURS), due_by=max(due, now),
                       by=by.name, now=now, kind="route", tier=tier, owner=owner)
    path = {"reported": ("accepted", "dispatched"), "accepted": ("dispatched",),
            "in_progress": ()}[status]
    _moves(session, work, incident_id, path, actor=by.name, now=now,
           note=f"分流交办：{names}（{rules_mod.TIERS[tier]}）")
    values = {"tier": tier, "owner": owner, "lead_code": lead, "routed_at": now}
    if row["limit_days"] is None:
        values.update(clock_fields(rules, type_code=inc.type, category=inc.category,
                                   registered_at=row["registered_at"], signed_at=None))
    session.execute(sa.update(matters).where(matters.c.incident_id == incident_id).values(**values))
    _event(session, incident_id, "route", by, now,
           f"分流交办：主办 {locator.unit(lead)['name']}"
           + (f"，协办 {'、'.join(locator.unit(c)['name'] for c in assist)}" if assist else "")
           + f"（{rules_mod.TIERS[tier]}{'，包案领导 ' + owner if owner else ''}）",
           {"lead": lead, "assist": assist, "tier": tier, "owner": owner,
            "suggested": {"lead": suggested_lead, "tier": suggested_tier}})
    return _finish(session, work, case_no, by=by, locator=locator, now=now, rules=rules)


def _check_leader(session: Session, name: str) -> None:
    from command.users.models import users

    role = session.execute(sa.select(users.c.role).where(users.c.name == name,
                                                         users.c.disabled_at.is_(None))
                           ).scalar_one_or_none()
    if role != "leader":
        raise DomainError("invalid_field", f"owner: {name!r} is not a county leader (指挥长)",
                          "owner")


def _cancel_route_nodes(session: Session, work: Work, incident_id: str, *, by: str,
                        now: datetime, note: str, keep: str | None = None) -> None:
    """Cancel the open (and returned) nodes of the matter's routes, except `keep`."""
    rows = session.execute(sa.select(order_nodes.c.id).where(
        order_nodes.c.incident_id == incident_id, order_nodes.c.role.isnot(None),
        order_nodes.c.state.in_(orders.OPEN))).scalars().all()
    for node_id in rows:
        if node_id == keep:
            continue
        orders._cancel_children(session, work, node_id, by=by, now=now, note=note)
        orders._set_state(session, work, node_id, "cancelled", by=by, now=now, note=note)
        orders._resolve_alerts(session, work, node_id, now)


def after_lead(session: Session, work: Work, node, action: str, *, by: Principal,
               now: datetime, reason: str | None) -> None:
    """The lead of a route signed off (the matter is being handled) or returned it (back to
    the window's queue, the route's other nodes cancelled, an audit line)."""
    incident_id = node["incident_id"]
    row = session.execute(sa.select(matters, incidents.c.type, incidents.c.status,
                                     incidents.c.category)
                          .join(incidents, incidents.c.id == matters.c.incident_id)
                          .where(matters.c.incident_id == incident_id)).first()
    if row is None:
        return
    row = row._mapping
    if action == "ack":
        values = {}
        if row["signed_at"] is None:
            values["signed_at"] = now
            if row["type"] == "petition":  # 受理告知 done; the days of 办理 start now
                values.update(notified_at=now, due_at=rules_mod.deadline(
                    now, row["limit_days"] or 60, row["extended_days"] or 0))
        if values:
            session.execute(sa.update(matters).where(matters.c.incident_id == incident_id)
                            .values(**values))
        if row["status"] == "dispatched":
            _moves(session, work, incident_id, ("in_progress",), actor=by.name, now=now,
                   note="主办单位签收")
        _event(session, incident_id, "sign_off", by, now, "主办单位签收")
    elif action == "return":
        _cancel_route_nodes(session, work, incident_id, by=by.name, now=now,
                            note="主办退回，自动撤销", keep=node["id"])
        if row["status"] in ("dispatched", "in_progress"):
            _moves(session, work, incident_id, ("accepted",), actor=by.name, now=now,
                   note=f"主办单位退回：{reason}，回到受理窗口")
        session.execute(sa.update(matters).where(matters.c.incident_id == incident_id)
                        .values(lead_code=None))
        _event(session, incident_id, "return", by, now, f"主办单位退回：{reason}",
               {"unit": node["target_code"]})
        write_audit(session, by, now, "return", row["case_no"], reason=reason)
    work.incident(incident_id)


# --- handling steps -------------------------------------------------------------------------------

def add_session(session: Session, case_no: str, raw, *, by: Principal, locator: Locator,
                now: datetime, rules: rules_mod.MatterRules) -> tuple[dict, Changes]:
    """Record a mediation session (调解记录): when, where, the mediators, who attended, notes."""
    body = _object(raw)
    row = _matter_row(session, case_no, lock=True)
    _check_handler(session, by, row)
    if row["status"] in workflow.FINAL or row["closure"]:
        raise TransitionError(f"事项已「{STATE_LABELS.get(row['status'])}」，不能再登记调解", [])
    at = _when(body, "at", now)
    if at - now > timedelta(days=1):
        raise DomainError("future_time", "at: a session that has taken place", "at")
    mediators = _names(body, "mediators")
    if not mediators:
        raise DomainError("missing_field", "mediators: who mediated (names)", "mediators")
    attendees = _names(body, "attendees")
    place = _text(body, "place", limit=200)
    notes = _text(body, "notes")
    session.execute(sa.insert(matter_sessions).values(
        incident_id=row["incident_id"], at=at, place=place,
        mediators=json.dumps(mediators, ensure_ascii=False),
        attendees=json.dumps(attendees, ensure_ascii=False), notes=notes, by=by.name,
        unit_code=by.unit_code, recorded_at=now))
    _event(session, row["incident_id"], "session", by, now,
           f"调解：{'、'.join(mediators)}主持" + (f"，地点 {place}" if place else ""),
           {"at": at.isoformat(), "attendees": len(attendees)})
    return _finish(session, Work(), case_no, by=by, locator=locator, now=now, rules=rules)


def outcome(session: Session, case_no: str, raw, *, by: Principal, locator: Locator,
            now: datetime, rules: rules_mod.MatterRules) -> tuple[dict, Changes]:
    """Record the outcome: the matter is concluded, the lead's node completes (signed off
    first if needed), the route's other open nodes are cancelled, the incident responds."""
    body = _object(raw)
    row = _matter_row(session, case_no, lock=True)
    _check_handler(session, by, row, lead_only=True)
    incident_id = row["incident_id"]
    status = _status(session, incident_id)
    if row["closure"] or status not in ("accepted", "dispatched", "in_progress"):
        raise TransitionError(f"事项已「{STATE_LABELS.get(status, status)}」，不能登记办理结果", [])
    result = _text(body, "result", required=True, limit=24)
    allowed = RESULTS.get(row["type"], RESULTS["other"])
    if result not in allowed:
        raise DomainError("invalid_field", f"result: for this matter one of {', '.join(allowed)}",
                          "result")
    values = {"result": result, "concluded_at": now, "outcome_note": _text(body, "note"),
              "followup_due_at": now + timedelta(days=rules.followup_days),
              "terms": None, "agreed_amount": None, "perform_by": None, "guided_to": None}
    if result == "agreed":
        values.update(terms=_text(body, "terms", required=True), agreed_amount=_amount(body, "amount"),
                      perform_by=_day(body, "perform_by"))
    if result == "not_agreed":
        guided = _text(body, "guided_to", required=True, limit=24)
        if guided not in GUIDED_TO:
            raise DomainError("invalid_field", f"guided_to: one of {', '.join(GUIDED_TO)}",
                              "guided_to")
        values["guided_to"] = guided
    label = RESULT_LABELS[result]
    work = Work()
    lead = _lead_node(session, incident_id, open_only=True)
    if lead is not None:
        if lead["state"] in orders.UNACKED:
            orders._set_state(session, work, lead["id"], "acknowledged", by=by.name, now=now,
                              note="登记办理结果即签收", acked_by=by.name)
            work.alert(alerts_service.stage_resolve(session, orders.ack_key(lead["id"]), now))
            after_lead(session, work, lead, "ack", by=by, now=now, reason=None)
            status = _status(session, incident_id)
        _cancel_route_nodes(session, work, incident_id, by=by.name, now=now,
                            note="主办已办结，自动撤销", keep=lead["id"])
        orders._set_state(session, work, lead["id"], "completed", by=by.name, now=now,
                          note=label, result=label)
        orders._closed(session, work, lead["id"], now)
        status = _status(session, incident_id)
    if status in ("accepted", "dispatched", "in_progress"):  # handled at the window itself
        path = {"accepted": ("in_progress", "responded"), "dispatched": ("responded",),
                "in_progress": ("responded",)}[status]
        _moves(session, work, incident_id, path, actor=by.name, now=now, note=f"办理结果：{label}")
    session.execute(sa.update(matters).where(matters.c.incident_id == incident_id).values(**values))
    work.alert(alerts_service.stage_resolve(session, overdue_key(case_no), now))
    _event(session, incident_id, "outcome", by, now, f"办理结果：{label}"
           + (f"，引导{GUIDED_TO[values['guided_to']]}" if values["guided_to"] else ""),
           {"result": result, "amount": float(values["agreed_amount"])
            if values["agreed_amount"] is not None else None,
            "perform_by": values["perform_by"].isoformat() if values["perform_by"] else None})
    return _finish(session, work, case_no, by=by, locator=locator, now=now, rules=rules)


def confirm(session: Session, case_no: str, raw, *, by: Principal, locator: Locator,
            now: datetime, rules: rules_mod.MatterRules) -> tuple[dict, Changes]:
    """Record the judicial confirmation (司法确认) of an agreement: requested, granted, refused."""
    body = _object(raw)
    row = _matter_row(session, case_no, lock=True)
    _check_handler(session, by, row)
    if row["result"] != "agreed":
        raise TransitionError("只有调解成功达成协议的事项才能申请司法确认", [])
    state = _text(body, "state", required=True, limit=12)
    if state not in CONFIRMATION:
        raise DomainError("invalid_field", f"state: one of {', '.join(CONFIRMATION)}", "state")
    at = _when(body, "at", now)
    court = _text(body, "court", required=state == "requested" and not row["confirmation_court"],
                  limit=100) or row["confirmation_court"]
    session.execute(sa.update(matters).where(matters.c.incident_id == row["incident_id"])
                    .values(confirmation=state, confirmation_at=at, confirmation_court=court))
    work = Work()
    work.alert(alerts_service.stage_resolve(session, confirmation_key(case_no), now))
    _event(session, row["incident_id"], "confirmation", by, now,
           f"{CONFIRMATION[state]}" + (f"（{court}）" if court else ""), {"state": state})
    return _finish(session, work, case_no, by=by, locator=locator, now=now, rules=rules)


def followup(session: Session, case_no: str, raw, *, by: Principal, locator: Locator,
             now: datetime, rules: rules_mod.MatterRules) -> tuple[dict, Changes]:
    """Record the follow-up visit (回访): was it performed, how satisfied; verify a responded
    matter first; the incident's rating follows; an unsatisfied answer reopens it."""
    body = _object(raw)
    row = _matter_row(session, case_no, lock=True)
    _check_handler(session, by, row)
    performed = body.get("performed")
    if not isinstance(performed, bool):
        raise DomainError("missing_field" if performed is None else "invalid_field",
                          "performed: true or false (was the outcome carried out?)", "performed")
    satisfaction = _text(body, "satisfaction", required=True, limit=12)
    if satisfaction not in SATISFACTION:
        raise DomainError("invalid_field", f"satisfaction: one of {', '.join(SATISFACTION)}",
                          "satisfaction")
    note = _text(body, "note", limit=2000)
    incident_id = row["incident_id"]
    status = _status(session, incident_id)
    if row["concluded_at"] is None or status not in ("responded", "verified"):
        raise TransitionError(f"事项「{STATE_LABELS.get(status, status)}」，尚无办理结果可回访", [])
    label, rating = SATISFACTION[satisfaction]
    work = Work()
    path = ("verified", "followed_up") if status == "responded" else ("followed_up",)
    for to in path:
        loop.stage_transition(session, incident_id, to=to, by=None, now=now, actor=by.name,
                              note="回访前核查办理结果" if to == "verified" else f"回访：{label}"
                              + (f"；{note}" if note else ""),
                              rating=rating if to == "followed_up" else None)
    values = {"followed_up_at": now, "performed": performed, "satisfaction": satisfaction}
    _event(session, incident_id, "followup", by, now,
           f"回访：{label}，{'已' if performed else '未'}履行" + (f"；{note}" if note else ""),
           {"performed": performed, "satisfaction": satisfaction})
    if satisfaction == "unsatisfied":
        loop.stage_transition(session, incident_id, to="in_progress", by=None, now=now,
                              actor=by.name, note="回访不满意，重新办理")
        values["reopened"] = (row["reopened"] or 0) + 1
        _event(session, incident_id, "reopen", by, now, "回访不满意，重新办理")
    session.execute(sa.update(matters).where(matters.c.incident_id == incident_id).values(**values))
    work.incident(incident_id)
    return _finish(session, work, case_no, by=by, locator=locator, now=now, rules=rules)


def reopen(session: Session, case_no: str, raw, *, by: Principal, locator: Locator,
           now: datetime, rules: rules_mod.MatterRules) -> tuple[dict, Changes]:
    """Reopen a followed-up matter for review (the window and the county roles)."""
    body = _object(raw)
    row = _matter_row(session, case_no, lock=True)
    if by.role not in workflow.COUNTY:
        raise Forbidden("the window and the county's roles reopen a matter")
    note = _text(body, "note", required=True, limit=2000)
    work = Work()
    loop.stage_transition(session, row["incident_id"], to="in_progress", by=by, now=now,
                          note=f"重新办理：{note}")
    session.execute(sa.update(matters).where(matters.c.incident_id == row["incident_id"])
                    .values(reopened=(row["reopened"] or 0) + 1))
    _event(session, row["incident_id"], "reopen", by, now, f"重新办理：{note}")
    work.incident(row["incident_id"])
    return _finish(session, work, case_no, by=by, locator=locator, now=now, rules=rules)


def extend(session: Session, case_no: str, raw, *, by: Principal, locator: Locator,
           now: datetime, rules: rules_mod.MatterRules) -> tuple[dict, Changes]:
    """A county leader extends the legal limit (a petition: once, by at most 30 days)."""
    body = _object(raw)
    if by.role not in EXTENDERS:
        raise Forbidden("a county leader extends a matter's time limit")
    row = _matter_row(session, case_no, lock=True)
    days = body.get("days")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
        raise DomainError("invalid_field", "days: a whole number of days from 1 to 365", "days")
    reason = _text(body, "reason", required=True, limit=2000)
    if row["concluded_at"] is not None or row["closure"]:
        raise TransitionError("事项已办结，无需延期", [])
    if row["type"] == "petition":
        if row["extensions"]:
            raise TransitionError("信访事项只能延期一次", [])
        if days > rules.petition_extension_days:
            raise DomainError("out_of_range", f"days: a petition is extended by at most "
                                              f"{rules.petition_extension_days} days", "days")
    extended = (row["extended_days"] or 0) + days
    values = {"extended_days": extended, "extensions": (row["extensions"] or 0) + 1}
    if row["due_at"] is not None:
        values["due_at"] = row["due_at"] + timedelta(days=days)
    session.execute(sa.update(matters).where(matters.c.incident_id == row["incident_id"])
                    .values(**values))
    _event(session, row["incident_id"], "extend", by, now, f"延期 {days} 天：{reason}",
           {"days": days})
    return _finish(session, Work(), case_no, by=by, locator=locator, now=now, rules=rules)


def overdue_key(case_no: str) -> str:
    """The alert key of a matter's legal clock."""
    return f"matter_overdue:{case_no}"


def confirmation_key(case_no: str) -> str:
    """The alert key of an agreement's 30-day window for judicial confirmation."""
    return f"confirmation:{case_no}"
