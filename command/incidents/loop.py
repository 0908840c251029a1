"""Move an incident through its closed loop: scope, legality, the timeline and a new seq.

Sequence numbers are reserved last: `stage_transition` changes the row and writes the timeline
without touching the counter, `stamp` then gives every staged incident its new seq. Services
that change incidents together with order nodes or alerts stage everything first and stamp the
counters in one fixed order (incidents "seq", then "order_seq", then "alert_seq"), so two
transactions never wait on each other's counters in opposite order.
"""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.clock import iso_shanghai
from command.db import next_seq
from command.errors import DomainError, Forbidden, NotFound
from command.incidents import workflow
from command.incidents.events import incident_events
from command.incidents.models import incidents
from command.incidents.service import row_dict
from command.orders.models import order_nodes
from command.users.principal import Principal
from layers.locate import Locator

SYSTEM = "system"  # the `by` of moves the software makes itself (e.g. all orders completed)



def get(session: Session, incident_id: str, *, locator: Locator) -> dict:
    """The incident's wire dict, or NotFound."""
    return incident_dict(_row(session, incident_id), locator, session)


def transition(session: Session, incident_id: str, *, to: str, by: Principal, note: str = "",
               merged_into: str | None = None, rating: int | None = None, now: datetime,
               locator: Locator) -> dict:
    """Move an incident to `to` as `by`; return the incident with its new seq."""
    stage_transition(session, incident_id, to=to, by=by, note=note, merged_into=merged_into,
                     rating=rating, now=now)
    (changed,) = stamp(session, [incident_id], locator=locator)
    return changed


def stage_transition(session: Session, incident_id: str, *, to: str, by: Principal | None,
                     note: str = "", merged_into: str | None = None, rating: int | None = None,
                     now: datetime, actor: str | None = None) -> str:
    """Check and apply a move without a new seq (call `stamp` last); return the old state.

    `by=None` is the software itself: only the graph is checked, not roles or scope; `actor`
    names on the timeline the person whose action made the software move (default: system).
    """
    row = _row(session, incident_id, lock=True)
    state = row["status"]
    data: dict = {}
    if by is None:
        if to not in workflow.successors(state):
            raise workflow.TransitionError(
                f"事件不能从「{workflow.STATE_LABELS.get(state, state)}」自动转为「{to}」",
                workflow.successors(state))
    else:
        if not by.sees_incident(row["township_code"], row["grid_code"],
                                ordered_units(session, incident_id), type_code=row["type"]):
            raise Forbidden(f"{by.name} may not act on incident {incident_id}")
        workflow.check(state, to, by.role)
        if state == "escalated" and to == "accepted" and by.role == "township" \
                and row["level"] != "township":
            raise workflow.TransitionError("事件已上报县级，由县级受理", [])
    workflow.check_data(to, rating=rating, merged_into=merged_into)
    values: dict = {"status": to}
    if to == "merged":
        _check_merge_target(session, incident_id, merged_into)
        values["merged_into"] = data["merged_into"] = merged_into
    if to == "followed_up":
        values["rating"] = data["rating"] = rating
    if to == "escalated":
        # the software escalates from the level that holds the incident now
        role = by.role if by is not None else workflow.ROLE_LEVEL.get(row["level"], "grid")
        start, end = workflow.escalation(row["level"], role)
        values["level"] = end
        data.update({"from": start, "to": end})
    session.execute(sa.update(incidents).where(incidents.c.id == incident_id).values(**values))
    session.execute(sa.insert(incident_events).values(
        incident_id=incident_id, at=now, by=by.name if by is not None else (actor or SYSTEM),
        from_state=state, to_state=to, note=note or "",
        data=json.dumps(data, ensure_ascii=False) if data else None))
    return state


def stamp(session: Session, incident_ids: list[str], *, locator: Locator) -> list[dict]:
    """Give each staged incident a new seq (in the given order) and return their dicts."""
    ids = list(dict.fromkeys(incident_ids))
    if not ids:
        return []
    first = next_seq(session, len(ids), counter="seq")
    for j, incident_id in enumerate(ids):
        session.execute(sa.update(incidents).where(incidents.c.id == incident_id)
                        .values(seq=first + j))
    return [get(session, incident_id, locator=locator) for incident_id in ids]


def timeline(session: Session, incident_id: str) -> list[dict]:
    """The incident's state changes, oldest first: {at, by, from, to, note, data}."""
    _row(session, incident_id)
    stmt = (sa.select(incident_events).where(incident_events.c.incident_id == incident_id)
            .order_by(incident_events.c.id))
    return [{"at": iso_shanghai(r.at), "by": r.by, "from": r.from_state, "to": r.to_state,
             "note": r.note, "data": json.loads(r.data) if r.data else None}
            for r in session.execute(stmt)]


def ordered_units(session: Session, incident_id: str) -> frozenset[str]:
    """The units holding an order node of this incident."""
    stmt = sa.select(order_nodes.c.target_code).where(order_nodes.c.incident_id == incident_id)
    return frozenset(session.execute(stmt).scalars())


def incident_dict(row, locator: Locator, session: Session | None = None) -> dict:
    """The wire dict of an incident row joined with its feed name, loop fields included."""
    item = row_dict(row, row["feed_name"], locator)
    if session is not None and row.get("photo_count"):
        from command.photos import service as photos

        item["photos"] = photos.of_incidents(session, [row["id"]]).get(row["id"], [])
    return item


def _row(session: Session, incident_id: str, *, lock: bool = False):
    from command.feeds.models import feeds

    stmt = (sa.select(incidents, feeds.c.name.label("feed_name"))
            .outerjoin(feeds, feeds.c.id == incidents.c.feed_id)
            .where(incidents.c.id == incident_id))
    if lock:
        stmt = stmt.with_for_update(of=incidents)
    row = session.execute(stmt).first()
    if row is None:
        raise NotFound(f"no incident {incident_id!r}")
    return row._mapping


def _check_merge_target(session: Session, incident_id: str, target: str) -> None:
    if target == incident_id:
        raise DomainError("invalid_field", "merged_into: an incident cannot merge into itself",
                          "merged_into")
    status = session.execute(sa.select(incidents.c.status).where(incidents.c.id == target)
                             ).scalar_one_or_none()
    if status is None:
        raise DomainError("invalid_field", f"merged_into: no incident {target!r}", "merged_into")
    if status in ("merged", "false_alarm"):
        raise DomainError("invalid_field",
                          f"merged_into: incident {target!r} is {status} itself", "merged_into")
