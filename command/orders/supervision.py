"""Supervision (督办): overdue order nodes raise alerts to the unit above, then escalate.

Two steps per node, each taken once (flags on the node, so a restart or a second runner changes
nothing):

- not signed off by `ack_by`: a 督办 alert (rule "overdue", orange; red for severity Ⅰ/Ⅱ) to the
  unit above (grid → its township; township or department → the county); past
  `escalate_after` × the allowed time it escalates (rule "escalated", red): a grid node the
  county sent straight to the grid gets a new node for its township, which takes the grid node
  under it; a grid node the township forwarded, a township node or a department node is
  escalated to the county by the alert alone.
- not completed by `due_by`: the same pair.

Signing off resolves the sign-off alert; completing, returning or cancelling resolves both.
Returned nodes wait for the node above and are not supervised. The nodes of a matter's route are
watched for sign-off only: the matter's lateness is its legal clock (command.matters.clock).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.alerts import service as alerts_service
from command.incidents.loop import SYSTEM
from command.incidents.models import incidents
from command.orders import service as orders
from command.orders.models import order_nodes
from command.orders.service import Changes, TimeLimits, Work
from command.units.models import units
from layers.locate import Locator

log = logging.getLogger(__name__)

_STEPS = {  # step -> (states it watches, deadline column, alerted flag, escalated flag, key)
    "ack": (orders.UNACKED, "ack_by", "ack_alerted", "ack_escalated", orders.ack_key),
    "due": (orders.UNACKED + orders.WORKING, "due_by", "due_alerted", "due_escalated",
            orders.due_key),
}
_MISSED = {"ack": "未按时签收", "due": "未按时办结"}


def check(session: Session, *, now: datetime, limits: TimeLimits, locator: Locator) -> Changes:
    """Take every supervision step that is due at `now`; return what changed."""
    n = order_nodes.c
    due_now = sa.or_(
        sa.and_(n.state.in_(orders.UNACKED), n.ack_by <= now, n.ack_escalated.is_(False)),
        sa.and_(n.state.in_(orders.UNACKED + orders.WORKING), n.due_by <= now,
                n.due_escalated.is_(False), n.role.is_(None)))
    stmt = (sa.select(order_nodes, incidents.c.title, incidents.c.severity)
            .join(incidents, incidents.c.id == n.incident_id)
            .where(due_now).order_by(n.created_at, n.id))
    work = Work()
    for row in session.execute(stmt).all():
        node = dict(row._mapping)
        for step in ("ack", "due"):
            _step(session, work, node, step, now=now, limits=limits, locator=locator)
    return work.finish(session, locator=locator)


def _step(session: Session, work: Work, node: dict, step: str, *, now: datetime,
          limits: TimeLimits, locator: Locator) -> None:
    states, deadline_col, alerted, escalated, key_of = _STEPS[step]
    if node["state"] not in states or node[escalated]:
        return
    if step == "due" and node["role"] is not None:
        return  # a route's lateness is its matter's legal clock (matter_overdue), not the node's
    deadline = node[deadline_col]
    if now < deadline:
        return
    allowed = deadline - node["created_at"]
    escalate_at = node["created_at"] + allowed * limits.escalate_after
    unit = _unit(session, locator, node["target_code"])
    above = _above(session, locator, unit)
    late = _late(now - deadline)
    flags: dict = {}
    if not node[alerted]:
        level = "red" if node["severity"] in (1, 2) else "orange"
        message = (f"督办：{unit['name']}{_MISSED[step]}「{node['title']}」的指令，"
                   f"已逾期{late}")
        work.alert(alerts_service.stage_raise(
            session, key=key_of(node["id"]), rule="overdue", level=level, units=[above["code"]],
            incidents=[node["incident_id"]], message=message, now=now))
        orders.add_history(session, node["id"], node["state"], by=SYSTEM, now=now,
                           note=f"督办：{_MISSED[step]}，已提醒{above['name']}")
        flags[alerted] = True
    if now >= escalate_at:
        to = _escalate(session, work, node, unit, above, now=now, limits=limits,
                       locator=locator)
        message = (f"升级：{unit['name']}{_MISSED[step]}「{node['title']}」的指令，"
                   f"已逾期{late}，已升级至{to['name']}")
        work.alert(alerts_service.stage_raise(
            session, key=key_of(node["id"]), rule="escalated", level="red", units=[to["code"]],
            incidents=[node["incident_id"]], message=message, now=now))
        orders.add_history(session, node["id"], node["state"], by=SYSTEM, now=now,
                           note=f"升级：{_MISSED[step]}，已升级至{to['name']}")
        flags[escalated] = True
    if flags:
        session.execute(sa.update(order_nodes).where(order_nodes.c.id == node["id"])
                        .values(**flags))
        node.update(flags)
        work.node(node["id"])


def _escalate(session: Session, work: Work, node: dict, unit: dict, above: dict, *,
              now: datetime, limits: TimeLimits, locator: Locator) -> dict:
    """Hand the node to the unit above; return the unit it went to.

    Only a grid node without a township node above it gets a new node: its township's, which
    takes the grid node as its child (so the grid's result still completes it). Everything else
    already has the unit above involved and goes to the county by the alert.
    """
    county = _county(session, locator, unit)
    if unit["level"] != "grid" or above["level"] != "township":
        return county
    parent_id = node["parent_id"]
    if parent_id is not None:
        parent = session.execute(sa.select(order_nodes.c.target_code, order_nodes.c.parent_id)
                                 .where(order_nodes.c.id == parent_id)).one()
        if parent.target_code == above["code"]:
            return county
    ack_minutes, due_minutes = limits.minutes(node["severity"])
    priority = "urgent" if node["priority"] == "urgent" else "high"
    new_id = orders.insert_node(
        session, order_id=node["order_id"], parent_id=parent_id, incident_id=node["incident_id"],
        target_code=above["code"], instruction=f"【升级督办】{unit['name']}逾期未办：{node['instruction']}",
        priority=priority, ack_by=now + timedelta(minutes=ack_minutes),
        due_by=max(node["due_by"], now + timedelta(minutes=due_minutes)), by=SYSTEM, now=now,
        note=f"由{unit['name']}的指令升级")
    session.execute(sa.update(order_nodes).where(order_nodes.c.id == node["id"])
                    .values(parent_id=new_id))
    node["parent_id"] = new_id
    work.node(new_id)
    return above


def make_job(core, limits: TimeLimits):
    """A scheduler job: one supervision pass in its own transaction, published after commit."""
    def supervise(now: datetime) -> None:
        with core.write() as session, session.begin():
            changes = check(session, now=now, limits=limits,
                            locator=core.units.current(session))
        if changes:
            try:
                changes.publish(core.bus)
            except Exception:  # committed already: screens catch up by seq
                log.exception("publishing supervision changes failed")
    return supervise


def _unit(session: Session, locator: Locator, code: str) -> dict:
    if locator.has(code):
        return locator.unit(code)
    row = session.execute(sa.select(units.c.code, units.c.name, units.c.level, units.c.parent)
                          .where(units.c.code == code)).first()
    return dict(row._mapping) if row else {"code": code, "name": code, "level": None,
                                           "parent": None}


def _above(session: Session, locator: Locator, unit: dict) -> dict:
    """The unit a node's target answers to: a grid's township, else the county."""
    if unit["level"] == "grid" and unit["parent"]:
        parent = _unit(session, locator, unit["parent"])
        if parent["level"] == "township":
            return parent
    return _county(session, locator, unit)


def _county(session: Session, locator: Locator, unit: dict) -> dict:
    """The county above a unit (its ancestors first, else any stored county unit)."""
    seen = set()
    current = unit
    while current and current.get("parent") and current["parent"] not in seen:
        seen.add(current["parent"])
        current = _unit(session, locator, current["parent"])
        if current["level"] == "county":
            return current
    row = session.execute(sa.select(units.c.code, units.c.name, units.c.level, units.c.parent)
                          .where(units.c.level == "county").order_by(units.c.code)).first()
    if row is not None:
        return dict(row._mapping)
    return {"code": "county", "name": "县指挥中心", "level": "county", "parent": None}


def _late(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes == 0:
        return "不足1分钟"  # found within its first minute late (supervision runs every 15 s)
    if minutes < 60:
        return f"{minutes}分钟"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}小时{minutes}分钟" if minutes else f"{hours}小时"
