"""Dispatch orders: issue to townships, grids and departments, forward down, sign off, report back.

An order is a tree of nodes, one per target unit. A node moves
`issued → delivered → acknowledged → in_progress → completed | returned`, or is `cancelled` by the
node above (the issuer's level); a returned node waits for the node above to `reissue` or cancel
it. A parent completes by itself when its children are done (completed or cancelled, at least one
completed); when every top node of an incident is done that way, the incident moves to
`responded`.

Every change gets a new seq: nodes from "order_seq", incidents from "seq", alerts from
"alert_seq". Functions stage their row changes in a `Work` and reserve the numbers last, in that
fixed order (see incidents/loop.py). What changed comes back as `Changes`, for the caller to
publish after commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.alerts import service as alerts_service
from command.clock import iso_shanghai
from command.db import next_seq
from command.errors import DomainError, Forbidden, NotFound
from command.incidents import loop
from command.incidents.loop import SYSTEM
from command.incidents.models import incidents
from command.incidents.workflow import TransitionError
from command.orders.models import order_node_events, order_nodes, orders
from command.units.models import units
from command.users.principal import Principal
from layers.locate import Locator

PRIORITIES = ("urgent", "high", "normal")
TARGET_LEVELS = ("township", "grid", "dept")
NODE_STATE_LABELS = {
    "issued": "已下达", "delivered": "已送达", "acknowledged": "已签收", "in_progress": "处置中",
    "completed": "已办结", "returned": "已退回", "cancelled": "已撤销",
}
UNACKED = ("issued", "delivered")
WORKING = ("acknowledged", "in_progress")
DONE = ("completed", "cancelled")
OPEN = UNACKED + WORKING + ("returned",)
ISSUERS = ("leader", "admin")  # who issues orders and stands above every top node

# actions the target unit takes, and those of the node above
TARGET_ACTIONS = ("deliver", "ack", "progress", "complete", "return")
ABOVE_ACTIONS = ("reissue", "cancel")
STATE_ACTIONS = {
    "issued": ("deliver", "ack", "return", "cancel"),
    "delivered": ("ack", "return", "cancel"),
    "acknowledged": ("progress", "complete", "return", "cancel"),
    "in_progress": ("progress", "complete", "return", "cancel"),
    "returned": ("reissue", "cancel"),
    "completed": (),
    "cancelled": (),
}
# a repeated action in these states changes nothing and answers the node as it is
NO_OPS = {"deliver": ("delivered", "acknowledged", "in_progress", "completed"),
          "ack": ("acknowledged", "in_progress", "completed")}
# incident states an order may be issued in, and the moves issuing makes
_DISPATCH_PATH = {"reported": ("accepted", "dispatched"), "accepted": ("dispatched",),
                  "escalated": ("dispatched",), "responded": ("in_progress",),
                  "dispatched": (), "in_progress": ()}

_SEVERITY_KEYS = {"1": 1, "2": 2, "3": 3, "4": 4, "Ⅰ": 1, "Ⅱ": 2, "Ⅲ": 3, "Ⅳ": 4,
                  "I": 1, "II": 2, "III": 3, "IV": 4}


@dataclass(frozen=True)
class TimeLimits:
    """Minutes to sign off and to complete, by severity (1 = Ⅰ … 4 = Ⅳ).

    Supervision alerts at the limit and escalates at `escalate_after` times the allowed time.

    >>> TimeLimits().minutes(2)
    (10, 120)
    >>> TimeLimits.from_dict({"Ⅰ": [3, 30], "escalate_after": 3}).minutes(1)
    (3, 30)
    """

    ack: dict = field(default_factory=lambda: {1: 5, 2: 10, 3: 30, 4: 60})
    due: dict = field(default_factory=lambda: {1: 60, 2: 120, 3: 480, 4: 1440})
    escalate_after: float = 2.0

    def minutes(self, severity: int) -> tuple[int, int]:
        """(sign-off minutes, completion minutes) for a severity; unknown ones count as Ⅳ."""
        sev = severity if severity in self.ack else 4
        return self.ack[sev], self.due[sev]

    @classmethod
    def from_dict(cls, raw: dict) -> TimeLimits:
        """Build from config: {"ack": {1: 5, …}, "due": {…}} and/or {"Ⅰ": [5, 60] | {"ack", "due"}}.

        Severity keys may be 1-4, "1"-"4", "Ⅰ"-"Ⅳ" or "I"-"IV"; missing ones keep the defaults.
        Raises ValueError on anything else.
        """
        base = cls()
        ack, due = dict(base.ack), dict(base.due)
        factor = float(raw.get("escalate_after", base.escalate_after))
        for key, value in raw.items():
            if key == "escalate_after":
                continue
            if key in ("ack", "due"):
                target = ack if key == "ack" else due
                for sev, minutes in dict(value).items():
                    target[_severity(sev)] = _minutes(minutes)
                continue
            sev = _severity(key)
            if isinstance(value, dict):
                ack[sev] = _minutes(value.get("ack", ack[sev]))
                due[sev] = _minutes(value.get("due", due[sev]))
            else:
                a, d = value
                ack[sev], due[sev] = _minutes(a), _minutes(d)
        if factor < 1:
            raise ValueError("escalate_after must be at least 1")
        return cls(ack=ack, due=due, escalate_after=factor)


def _severity(key) -> int:
    sev = _SEVERITY_KEYS.get(str(key).strip())
    if sev is None:
        raise ValueError(f"not a severity: {key!r} (use 1-4 or Ⅰ-Ⅳ)")
    return sev


def _minutes(value) -> int:
    minutes = int(value)
    if minutes <= 0:
        raise ValueError(f"time limits are positive minutes, got {value!r}")
    return minutes


@dataclass
class Changes:
    """What a call changed, as wire dicts with their new seqs: publish after commit."""

    nodes: list[dict] = field(default_factory=list)
    incidents: list[dict] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.nodes or self.incidents or self.alerts)

    def extend(self, other: Changes) -> None:
        """Add another call's changes."""
        self.nodes.extend(other.nodes)
        self.incidents.extend(other.incidents)
        self.alerts.extend(other.alerts)

    def publish(self, bus) -> None:
        """Publish on the bus topics "incidents", "orders" and "alerts" (after commit)."""
        for topic, items in (("incidents", self.incidents), ("orders", self.nodes),
                             ("alerts", self.alerts)):
            if items:
                bus.publish(topic, items)


class Work:
    """Ids of the incidents, nodes and alerts changed in this transaction, stamped at the end.

    `action_id`/`received_at`: a phone's action, written on the first history row it makes.
    """

    def __init__(self, action_id: str | None = None, received_at: datetime | None = None) -> None:
        self.incidents: dict[str, None] = {}
        self.nodes: dict[str, None] = {}
        self.alerts: dict[str, None] = {}
        self.action_id = action_id
        self.received_at = received_at

    def incident(self, incident_id: str) -> None:
        """Mark an incident changed."""
        self.incidents[incident_id] = None

    def node(self, node_id: str) -> None:
        """Mark a node changed."""
        self.nodes[node_id] = None

    def alert(self, alert_id: str | None) -> None:
        """Mark an alert changed (None: nothing changed)."""
        if alert_id is not None:
            self.alerts[alert_id] = None

    def finish(self, session: Session, *, locator: Locator) -> Changes:
        """Reserve seqs ("seq", then "order_seq", then "alert_seq") and read the dicts back."""
        found = loop.stamp(session, list(self.incidents), locator=locator)
        nodes = stamp_nodes(session, list(self.nodes))
        alerts = alerts_service.stamp(session, list(self.alerts))
        return Changes(nodes=nodes, incidents=found, alerts=alerts)


# --- issuing and forwarding ---------------------------------------------------------------

def create_order(session: Session, *, incident_id: str, targets: list[str], instruction: str,
                 priority: str = "normal", ack_minutes: int | None = None,
                 due_minutes: int | None = None, by: Principal, now: datetime, locator: Locator,
                 limits: TimeLimits | None = None, changes: Changes | None = None) -> dict:
    """Issue an order on an incident to units of any level mix; return it with its nodes.

    The incident moves to `dispatched` (accepting it first if it was only reported; a responded
    one goes back to `in_progress`). Pass `changes` to collect what changed for publishing.
    """
    if by.role not in ISSUERS:
        raise Forbidden(f"{by.name}: only a leader issues orders")
    incident = session.execute(sa.select(incidents.c.status, incidents.c.severity)
                               .where(incidents.c.id == incident_id)).first()
    if incident is None:
        raise NotFound(f"no incident {incident_id!r}")
    if incident.status not in _DISPATCH_PATH:
        raise TransitionError(f"事件已{_status_label(incident.status)}，不能再下达指令", [])
    instruction = _text(instruction, "instruction")
    if priority not in PRIORITIES:
        raise DomainError("invalid_field", f"priority: one of {', '.join(PRIORITIES)}", "priority")
    codes = _targets(targets, locator, levels=TARGET_LEVELS, what="a township, grid or department")
    default_ack, default_due = (limits or TimeLimits()).minutes(incident.severity)
    ack = _limit(ack_minutes, default_ack, "ack_minutes")
    due = _limit(due_minutes, default_due, "due_minutes")
    if due < ack:
        raise DomainError("invalid_field", "due_minutes: cannot be shorter than ack_minutes",
                          "due_minutes")

    work = Work()
    order_id = issue_nodes(session, work, incident_id=incident_id,
                           targets=[(code, None) for code in codes], instruction=instruction,
                           priority=priority, ack_by=now + timedelta(minutes=ack),
                           due_by=now + timedelta(minutes=due), by=by.name, now=now)
    names = "、".join(locator.unit(c)["name"] for c in codes)
    for to in _DISPATCH_PATH[incident.status]:
        note = f"下达指令至{names}：{instruction}" if to != "accepted" else "下达指令时受理"
        loop.stage_transition(session, incident_id, to=to, by=by, note=note, now=now)
        work.incident(incident_id)
    done = work.finish(session, locator=locator)
    if changes is not None:
        changes.extend(done)
    return {**_order_dict(_order_row(session, order_id)), "nodes": done.nodes}


def issue_nodes(session: Session, work: Work, *, incident_id: str,
                targets: list[tuple[str, str | None]], instruction: str, priority: str,
                ack_by: datetime, due_by: datetime, by: str, now: datetime, kind: str = "order",
                tier: str | None = None, owner: str | None = None) -> str:
    """Insert an order and one top node per (unit code, role); return the order's id."""
    order_id = uuid.uuid4().hex
    session.execute(sa.insert(orders).values(id=order_id, incident_id=incident_id, issued_by=by,
                                             issued_at=now, instruction=instruction,
                                             priority=priority, kind=kind, tier=tier,
                                             owner=owner))
    for code, role in targets:
        work.node(insert_node(session, order_id=order_id, parent_id=None, incident_id=incident_id,
                              target_code=code, instruction=instruction, priority=priority,
                              ack_by=ack_by, due_by=due_by, by=by, now=now, role=role))
    return order_id


def forward(session: Session, *, node_id: str, targets: list[str], instruction: str | None = None,
            by: Principal, now: datetime, locator: Locator,
            changes: Changes | None = None) -> list[dict]:
    """Forward a township's node down to some of its grids; return the new child nodes.

    Only the township itself (or a leader) forwards; forwarding signs the node off if needed.
    """
    node = _node_row(session, node_id, lock=True)
    level = _level(session, locator, node["target_code"])
    if level != "township":
        raise Forbidden("only a township's order can be forwarded, and only to its grids")
    if not (by.role in ISSUERS or (by.role == "township" and by.unit_code == node["target_code"])):
        raise Forbidden(f"{by.name} may not forward an order of {node['target_code']}")
    if node["state"] not in UNACKED + WORKING:
        raise TransitionError(f"指令{NODE_STATE_LABELS[node['state']]}，不能转派",
                              _allowed_actions(session, node, by, locator))
    codes = _targets(targets, locator, levels=("grid",), parent=node["target_code"],
                     what=f"a grid of {node['target_code']}")
    instruction = _text(instruction, "instruction") if instruction else node["instruction"]
    work = Work()
    if node["state"] in UNACKED:
        _set_state(session, work, node_id, "acknowledged", by=by.name, now=now, note="转派即签收",
                   acked_by=by.name)
        work.alert(alerts_service.stage_resolve(session, ack_key(node_id), now))
    names = "、".join(locator.unit(c)["name"] for c in codes)
    _set_state(session, work, node_id, "in_progress", by=by.name, now=now, note=f"转派至{names}")
    ack_by = now + (node["ack_by"] - node["created_at"])
    due_by = max(node["due_by"], ack_by)
    children = [insert_node(session, order_id=node["order_id"], parent_id=node_id,
                            incident_id=node["incident_id"], target_code=code,
                            instruction=instruction, priority=node["priority"], ack_by=ack_by,
                            due_by=due_by, by=by.name, now=now) for code in codes]
    for child in children:
        work.node(child)
    done = work.finish(session, locator=locator)
    if changes is not None:
        changes.extend(done)
    return [n for n in done.nodes if n["id"] in children]


# --- acting on a node ---------------------------------------------------------------------

def act(session: Session, *, node_id: str, action: str, by: Principal, note: str | None = None,
        result: str | None = None, reason: str | None = None, now: datetime, locator: Locator,
        changes: Changes | None = None, action_id: str | None = None,
        acted_at: datetime | None = None,
        max_future: timedelta = timedelta(minutes=5)) -> dict:
    """Take an action on a node and return it; a repeated ack or deliver changes nothing.

    Target unit: deliver, ack, progress, complete (needs `result`), return (needs `reason`).
    The node above (the issuer's level): cancel, reissue (a returned node).

    From a phone that may have been offline: `action_id` (its id for the action: the same id
    again answers the node as it is, nothing done twice) and `acted_at` (when it was done: the
    history and supervision's "on time" go by it).
    """
    node = _node_row(session, node_id, lock=True)
    if action not in TARGET_ACTIONS + ABOVE_ACTIONS:
        raise TransitionError(f"no order action {action!r}",
                              _allowed_actions(session, node, by, locator))
    if action_id is not None:
        if not isinstance(action_id, str) or not 1 <= len(action_id) <= 64:
            raise DomainError("invalid_field", "action_id: 1 to 64 characters", "action_id")
        done = session.execute(sa.select(order_node_events.c.node_id).where(
            order_node_events.c.action_id == action_id)).first()
        if done is not None:
            if done.node_id != node_id:
                raise DomainError("conflict", "action_id was used for another order node",
                                  "action_id")
            return get_node(session, node_id)
    if acted_at is not None:
        if acted_at - now > max_future:
            raise DomainError("future_time", f"acted_at {acted_at.isoformat()} is in the future",
                              "acted_at")
        if acted_at < node["created_at"] - max_future:
            raise DomainError("out_of_range", "acted_at: before the order was issued",
                              "acted_at")
        acted_at = max(acted_at, node["created_at"])  # a phone's clock a little behind
    target = _is_target(session, locator, by, node)
    above = _is_above(session, locator, by, node)
    if not (target or above or by.sees_node(node["target_code"],
                                            _parent_code(session, locator, node["target_code"]))):
        raise Forbidden(f"{by.name} may not see order node {node_id}")
    if action in TARGET_ACTIONS and not target:
        raise Forbidden(f"only {node['target_code']} itself may {action} this order")
    if action in ABOVE_ACTIONS and not above:
        raise Forbidden(f"only the unit that issued this order may {action} it")
    state = node["state"]
    if state in NO_OPS.get(action, ()):
        return get_node(session, node_id)
    incident_state = session.execute(sa.select(incidents.c.status).where(
        incidents.c.id == node["incident_id"])).scalar_one()
    if incident_state in ("closed", "merged", "false_alarm"):
        raise _conflict(session, node_id, f"事件已{_status_label(incident_state)}，指令不再办理",
                        [])
    if action not in STATE_ACTIONS[state]:
        raise _conflict(session, node_id,
                        f"指令{NODE_STATE_LABELS[state]}，不能{_ACTION_LABELS[action]}",
                        _allowed_actions(session, node, by, locator))
    if node["role"] == "lead" and action == "complete":
        raise _conflict(session, node_id, "主办单位办结事项请登记办理结果（调解结果）：POST "
                        "/api/v1/matters/{case_no}/outcome", ["ack", "return"])
    work = Work(action_id=action_id, received_at=now if acted_at is not None else None)
    now = acted_at or now
    if action == "deliver":
        _set_state(session, work, node_id, "delivered", by=by.name, now=now, note=note or "")
    elif action == "ack":
        _set_state(session, work, node_id, "acknowledged", by=by.name, now=now, note=note or "",
                   acked_by=by.name)
        work.alert(alerts_service.stage_resolve(session, ack_key(node_id), now))
    elif action == "progress":
        _set_state(session, work, node_id, "in_progress", by=by.name, now=now, note=note or "")
    elif action == "complete":
        result = _text(result, "result")
        _cancel_children(session, work, node_id, by=by.name, now=now, note="上级已办结，自动撤销")
        _set_state(session, work, node_id, "completed", by=by.name, now=now,
                   note=note or result, result=result)
        _closed(session, work, node_id, now)
    elif action == "return":
        reason = _text(reason, "reason")
        _set_state(session, work, node_id, "returned", by=by.name, now=now, note=reason,
                   reason=reason)
        _resolve_alerts(session, work, node_id, now)
    elif action == "cancel":
        _cancel_children(session, work, node_id, by=by.name, now=now, note="上级撤销")
        _set_state(session, work, node_id, "cancelled", by=by.name, now=now, note=note or "")
        _closed(session, work, node_id, now)
    elif action == "reissue":
        if node["role"] is not None:
            raise TransitionError("退回的分流事项回到受理窗口，由窗口重新分流", ["cancel"])
        span_ack = node["ack_by"] - node["created_at"]
        span_due = node["due_by"] - node["created_at"]
        _set_state(session, work, node_id, "issued", by=by.name, now=now, note=note or "重新下达",
                   reason=None, acked_by=None, created_at=now, ack_by=now + span_ack,
                   due_by=now + span_due, ack_alerted=False, ack_escalated=False,
                   due_alerted=False, due_escalated=False)
    if node["role"] == "lead" and action in ("ack", "return"):
        from command.matters import handling  # a route's lead moves its matter

        handling.after_lead(session, work, node, action, by=by, now=now,
                            reason=reason if action == "return" else None)
    done = work.finish(session, locator=locator)
    if changes is not None:
        changes.extend(done)
    return next(n for n in done.nodes if n["id"] == node_id)


def _conflict(session: Session, node_id: str, message: str, allowed: list[str]
              ) -> TransitionError:
    """409 with the node as it is (a phone that acted offline shows why)."""
    err = TransitionError(message, allowed)
    err.node = get_node(session, node_id)
    return err


_ACTION_LABELS = {"deliver": "送达", "ack": "签收", "progress": "报告进展", "complete": "办结",
                  "return": "退回", "cancel": "撤销", "reissue": "重新下达"}


def _closed(session: Session, work: Work, node_id: str, now: datetime) -> None:
    """After a node completed or was cancelled: its alerts end, its parent may complete."""
    _resolve_alerts(session, work, node_id, now)
    node = _node_row(session, node_id)
    parent_id = node["parent_id"]
    if parent_id is None:
        _maybe_responded(session, work, node["incident_id"], now)
        return
    parent = _node_row(session, parent_id, lock=True)
    if parent["state"] not in UNACKED + WORKING:
        return
    kids = session.execute(sa.select(order_nodes.c.target_code, order_nodes.c.state,
                                     order_nodes.c.result)
                           .where(order_nodes.c.parent_id == parent_id)
                           .order_by(order_nodes.c.created_at, order_nodes.c.id)).all()
    if all(k.state in DONE for k in kids) and any(k.state == "completed" for k in kids):
        names = _unit_info(session, [k.target_code for k in kids])
        result = "；".join(f"{names.get(k.target_code, {}).get('name', k.target_code)}：{k.result}"
                          for k in kids if k.state == "completed")
        _set_state(session, work, parent_id, "completed", by=SYSTEM, now=now,
                   note="下级全部办结，自动办结", result=result)
        _closed(session, work, parent_id, now)


def _maybe_responded(session: Session, work: Work, incident_id: str, now: datetime) -> None:
    """Move the incident to `responded` when all its top nodes are done, one completed."""
    tops = session.execute(sa.select(order_nodes.c.state).where(
        order_nodes.c.incident_id == incident_id, order_nodes.c.parent_id.is_(None))).scalars().all()
    if not (tops and all(s in DONE for s in tops) and "completed" in tops):
        return
    status = session.execute(sa.select(incidents.c.status).where(incidents.c.id == incident_id)
                             ).scalar_one()
    if status in ("dispatched", "in_progress"):
        loop.stage_transition(session, incident_id, to="responded", by=None,
                              note="全部指令已办结，自动反馈", now=now)
        work.incident(incident_id)


def _cancel_children(session: Session, work: Work, node_id: str, *, by: str, now: datetime,
                     note: str) -> None:
    kids = session.execute(sa.select(order_nodes.c.id, order_nodes.c.state)
                           .where(order_nodes.c.parent_id == node_id)).all()
    for kid in kids:
        if kid.state in OPEN:
            _cancel_children(session, work, kid.id, by=by, now=now, note=note)
            _set_state(session, work, kid.id, "cancelled", by=by, now=now, note=note)
            _resolve_alerts(session, work, kid.id, now)


def _resolve_alerts(session: Session, work: Work, node_id: str, now: datetime) -> None:
    for key in (ack_key(node_id), due_key(node_id)):
        work.alert(alerts_service.stage_resolve(session, key, now))


def ack_key(node_id: str) -> str:
    """The alert key of a node overdue for sign-off."""
    return f"overdue:ack:{node_id}"


def due_key(node_id: str) -> str:
    """The alert key of a node overdue for completion."""
    return f"overdue:due:{node_id}"


# --- reading ------------------------------------------------------------------------------

def get_node(session: Session, node_id: str) -> dict:
    """One node as its wire dict, or NotFound."""
    return node_dicts(session, [_node_row(session, node_id)])[0]


def visible_nodes(session: Session, *, by: Principal, open_only: bool = False,
                  since_seq: int | None = None, locator: Locator | None = None) -> list[dict]:
    """The nodes `by` may see, by seq: a grid or dept its own, a township its own and its grids'."""
    stmt = sa.select(order_nodes).order_by(order_nodes.c.seq)
    if by.matters_only:
        from command.matters.categories import MATTER_TYPES

        stmt = stmt.where(order_nodes.c.incident_id.in_(
            sa.select(incidents.c.id).where(incidents.c.type.in_(MATTER_TYPES))))
    elif not by.county_wide:
        if by.unit_code is None:
            return []
        codes = [by.unit_code]
        if by.role == "township":
            codes += session.execute(sa.select(units.c.code).where(
                units.c.parent == by.unit_code, units.c.level == "grid")).scalars().all()
        stmt = stmt.where(order_nodes.c.target_code.in_(codes))
    if open_only:
        stmt = stmt.where(order_nodes.c.state.in_(OPEN))
    if since_seq is not None:
        stmt = stmt.where(order_nodes.c.seq > since_seq)
    return node_dicts(session, [r._mapping for r in session.execute(stmt)])


def deliver(session: Session, *, node_ids: list[str], by: Principal, now: datetime,
            locator: Locator, changes: Changes | None = None) -> list[str]:
    """Record that `by`'s client received these nodes; return the ids it applied to.

    Nodes that are not addressed to `by`, or are past `issued`, are skipped silently: a receipt
    is a fact about delivery, not a request that can fail.
    """
    done = []
    for node_id in node_ids:
        try:
            act(session, node_id=node_id, action="deliver", by=by, now=now, locator=locator,
                changes=changes)
            done.append(node_id)
        except (DomainError, NotFound):
            continue
    return done


def units_with_orders(session: Session, incident_ids: list[str]) -> dict[str, tuple[str, ...]]:
    """For each incident id, the units holding an order node of it (for routing live changes)."""
    out: dict[str, set[str]] = {}
    unique = list(dict.fromkeys(incident_ids))
    for start in range(0, len(unique), 500):
        stmt = (sa.select(order_nodes.c.incident_id, order_nodes.c.target_code).distinct()
                .where(order_nodes.c.incident_id.in_(unique[start:start + 500])))
        for incident_id, code in session.execute(stmt):
            out.setdefault(incident_id, set()).add(code)
    return {key: tuple(sorted(codes)) for key, codes in out.items()}


def nodes_for_unit(session: Session, unit_code: str, open_only: bool = True) -> list[dict]:
    """The nodes addressed to one unit, by seq."""
    stmt = (sa.select(order_nodes).where(order_nodes.c.target_code == unit_code)
            .order_by(order_nodes.c.seq))
    if open_only:
        stmt = stmt.where(order_nodes.c.state.in_(OPEN))
    return node_dicts(session, [r._mapping for r in session.execute(stmt)])


def order_tree(session: Session, incident_id: str) -> list[dict]:
    """The incident's orders, oldest first, each with `nodes`: top nodes with nested `children`."""
    if session.execute(sa.select(incidents.c.id).where(incidents.c.id == incident_id)).first() \
            is None:
        raise NotFound(f"no incident {incident_id!r}")
    order_rows = session.execute(sa.select(orders).where(orders.c.incident_id == incident_id)
                                 .order_by(orders.c.issued_at, orders.c.id)).all()
    node_rows = session.execute(sa.select(order_nodes)
                                .where(order_nodes.c.incident_id == incident_id)
                                .order_by(order_nodes.c.created_at, order_nodes.c.seq)).all()
    flat = node_dicts(session, [r._mapping for r in node_rows])
    by_id = {n["id"]: {**n, "children": []} for n in flat}
    tops: dict[str, list[dict]] = {r.id: [] for r in order_rows}
    for n in by_id.values():
        if n["parent_id"] in by_id:
            by_id[n["parent_id"]]["children"].append(n)
        else:
            tops.setdefault(n["order_id"], []).append(n)
    return [{**_order_dict(r._mapping), "nodes": tops[r.id]} for r in order_rows]


def node_dicts(session: Session, rows: list) -> list[dict]:
    """Wire dicts of node rows (mappings), with target unit and history, in the given order."""
    if not rows:
        return []
    info = _unit_info(session, [r["target_code"] for r in rows])
    history: dict[str, list[dict]] = {r["id"]: [] for r in rows}
    ids = list(history)
    for start in range(0, len(ids), 500):
        stmt = (sa.select(order_node_events)
                .where(order_node_events.c.node_id.in_(ids[start:start + 500]))
                .order_by(order_node_events.c.id))
        for e in session.execute(stmt):
            history[e.node_id].append({"state": e.state, "by": e.by, "at": iso_shanghai(e.at),
                                       "note": e.note,
                                       "received_at": e.received_at and iso_shanghai(e.received_at)})
    return [_node_dict(r, info.get(r["target_code"]), history[r["id"]]) for r in rows]


def _node_dict(row, unit: dict | None, history: list[dict]) -> dict:
    code = row["target_code"]
    return {
        "id": row["id"], "order_id": row["order_id"], "parent_id": row["parent_id"],
        "incident_id": row["incident_id"],
        "target": {"code": code, "name": unit["name"] if unit else code,
                   "level": unit["level"] if unit else None},
        "state": row["state"], "state_label": NODE_STATE_LABELS.get(row["state"], row["state"]),
        "instruction": row["instruction"], "priority": row["priority"],
        "ack_by": iso_shanghai(row["ack_by"]), "due_by": iso_shanghai(row["due_by"]),
        "acked_by": row["acked_by"], "result": row["result"], "reason": row["reason"],
        "seq": row["seq"], "created_at": iso_shanghai(row["created_at"]),
        "supervision": {k: bool(row[k]) for k in ("ack_alerted", "ack_escalated", "due_alerted",
                                                  "due_escalated")},
        "role": row.get("role"), "history": history,
    }


def _order_dict(row) -> dict:
    return {"id": row["id"], "incident_id": row["incident_id"], "issued_by": row["issued_by"],
            "issued_at": iso_shanghai(row["issued_at"]), "instruction": row["instruction"],
            "priority": row["priority"], "kind": row.get("kind") or "order",
            "tier": row.get("tier"), "owner": row.get("owner")}


# --- building blocks (also used by supervision) -------------------------------------------

def insert_node(session: Session, *, order_id: str, parent_id: str | None, incident_id: str,
                target_code: str, instruction: str, priority: str, ack_by: datetime,
                due_by: datetime, by: str, now: datetime, note: str = "",
                role: str | None = None) -> str:
    """Insert an `issued` node with its first history row (seq comes from `stamp_nodes`)."""
    node_id = uuid.uuid4().hex
    session.execute(sa.insert(order_nodes).values(
        id=node_id, seq=alerts_service.placeholder_seq(), order_id=order_id, parent_id=parent_id,
        incident_id=incident_id, target_code=target_code, state="issued",
        instruction=instruction, priority=priority, ack_by=ack_by, due_by=due_by,
        created_at=now, ack_alerted=False, ack_escalated=False, due_alerted=False,
        due_escalated=False, role=role))
    add_history(session, node_id, "issued", by=by, now=now, note=note)
    return node_id


def add_history(session: Session, node_id: str, state: str, *, by: str, now: datetime,
                note: str = "", action_id: str | None = None,
                received_at: datetime | None = None) -> None:
    """Append one row to a node's history."""
    session.execute(sa.insert(order_node_events).values(
        node_id=node_id, state=state, by=by, at=now, note=note or "", action_id=action_id,
        received_at=received_at))


def stamp_nodes(session: Session, node_ids: list[str]) -> list[dict]:
    """Give each changed node a new "order_seq" (in the given order) and return their dicts."""
    ids = list(dict.fromkeys(node_ids))
    if not ids:
        return []
    first = next_seq(session, len(ids), counter="order_seq")
    for j, node_id in enumerate(ids):
        session.execute(sa.update(order_nodes).where(order_nodes.c.id == node_id)
                        .values(seq=first + j))
    rows = {r.id: r._mapping for r in session.execute(
        sa.select(order_nodes).where(order_nodes.c.id.in_(ids)))}
    return node_dicts(session, [rows[i] for i in ids])


def _set_state(session: Session, work: Work, node_id: str, state: str, *, by: str,
               now: datetime, note: str = "", **values) -> None:
    session.execute(sa.update(order_nodes).where(order_nodes.c.id == node_id)
                    .values(state=state, **values))
    add_history(session, node_id, state, by=by, now=now, note=note, action_id=work.action_id,
                received_at=work.received_at)
    work.action_id = None  # one action, one id: later rows of the call are its consequences
    work.node(node_id)


def _node_row(session: Session, node_id: str, *, lock: bool = False):
    stmt = sa.select(order_nodes).where(order_nodes.c.id == node_id)
    if lock:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).first()
    if row is None:
        raise NotFound(f"no order node {node_id!r}")
    return row._mapping


def _order_row(session: Session, order_id: str):
    return session.execute(sa.select(orders).where(orders.c.id == order_id)).first()._mapping


def _unit_info(session: Session, codes: list[str]) -> dict[str, dict]:
    unique = list(dict.fromkeys(codes))
    stmt = sa.select(units.c.code, units.c.name, units.c.level, units.c.parent).where(
        units.c.code.in_(unique))
    return {r.code: dict(r._mapping) for r in session.execute(stmt)}


def _unit(session: Session, locator: Locator | None, code: str) -> dict | None:
    if locator is not None and locator.has(code):
        return locator.unit(code)
    return _unit_info(session, [code]).get(code)


def _level(session: Session, locator: Locator | None, code: str) -> str | None:
    unit = _unit(session, locator, code)
    return unit["level"] if unit else None


def _parent_code(session: Session, locator: Locator | None, code: str) -> str | None:
    unit = _unit(session, locator, code)
    return unit["parent"] if unit else None


def _is_target(session: Session, locator: Locator, by: Principal, node) -> bool:
    """Whether `by` acts for the node's target unit."""
    return by.unit_code == node["target_code"] and \
        by.role == _level(session, locator, node["target_code"]) and by.role in TARGET_LEVELS


def _is_above(session: Session, locator: Locator, by: Principal, node) -> bool:
    """Whether `by` stands for the node above (the one that issued or forwarded this node)."""
    if by.role in ISSUERS:
        return True
    if node["parent_id"] is None:
        return False
    parent = _node_row(session, node["parent_id"])
    return by.unit_code == parent["target_code"] and \
        by.role == _level(session, locator, parent["target_code"])


def _allowed_actions(session: Session, node, by: Principal, locator: Locator) -> list[str]:
    """The actions `by` may take on the node in its current state."""
    mine = ()
    if _is_target(session, locator, by, node):
        mine += TARGET_ACTIONS
    if _is_above(session, locator, by, node):
        mine += ABOVE_ACTIONS
    return [a for a in STATE_ACTIONS[node["state"]] if a in mine]


def _targets(targets, locator: Locator, *, levels: tuple[str, ...], what: str,
             parent: str | None = None) -> list[str]:
    if isinstance(targets, str) or not isinstance(targets, (list, tuple)) or not targets:
        raise DomainError("missing_field", "targets: give a list of unit codes", "targets")
    codes = list(dict.fromkeys(str(t).strip() for t in targets))
    bad = [c for c in codes if not locator.has(c) or locator.unit(c)["level"] not in levels
           or (parent is not None and locator.unit(c)["parent"] != parent)]
    if bad:
        raise DomainError("invalid_field", f"targets: not {what}: {', '.join(bad)}", "targets")
    return codes


def _text(value, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DomainError("missing_field", f"{name}: must not be empty", name)
    return value.strip()


MAX_MINUTES = 366 * 24 * 60  # a year


def _limit(value, default: int, name: str) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_MINUTES:
        raise DomainError("invalid_field", f"{name}: a whole number of minutes from 1 to "
                                           f"{MAX_MINUTES}", name)
    return value


def _status_label(status: str) -> str:
    from command.incidents.workflow import STATE_LABELS

    return STATE_LABELS.get(status, status)
