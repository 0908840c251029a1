"""Alerts: one record per situation key, raised, updated while it lasts, acted on, resolved.

Like incidents, every change gets a new seq from its own counter ("alert_seq"); `stage_*`
functions change rows without it and `stamp` reserves the numbers last (see incidents/loop.py).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.alerts.models import LEVELS, alert_events, alerts
from command.clock import iso_shanghai
from command.db import next_seq
from command.errors import DomainError, Forbidden, NotFound
from command.incidents.workflow import TransitionError
from command.users.principal import Principal

LIVE = ("open", "acknowledged")  # the situation still lasts


def raise_or_update(session: Session, *, key: str, rule: str, level: str, units: list[str],
                    incidents: list[str], message: str, now: datetime,
                    expires_at: datetime | None = None, evidence: str | None = None) -> dict:
    """Raise the alert of `key`, or update it when it exists; never a second one."""
    alert_id = stage_raise(session, key=key, rule=rule, level=level, units=units,
                           incidents=incidents, message=message, now=now,
                           expires_at=expires_at, evidence=evidence)
    if alert_id is None:
        return _dict(_by_key(session, key))
    (changed,) = stamp(session, [alert_id])
    return changed


def stage_raise(session: Session, *, key: str, rule: str, level: str, units: list[str],
                incidents: list[str], message: str, now: datetime,
                expires_at: datetime | None = None, evidence: str | None = None) -> str | None:
    """Insert or update the alert of `key` without a seq; the id when it changed, else None.

    A resolved alert whose situation comes back is opened again, unless the incident that
    brought it back (`evidence`) is one the alert already counted: a replayed or re-read
    incident is no new evidence. An acknowledged or dismissed one is opened again only when
    its rule or level changes (the situation got worse). Every change is audited.
    """
    if level not in LEVELS:
        raise DomainError("invalid_field", f"level: one of {', '.join(LEVELS)}", "level")
    values = {"rule": rule, "level": level, "units": json.dumps(list(units)),
              "incidents": json.dumps(list(incidents)), "message": message}
    row = _by_key(session, key, missing_ok=True, lock=True)
    if row is None:
        alert_id = uuid.uuid4().hex
        session.execute(sa.insert(alerts).values(
            id=alert_id, seq=placeholder_seq(), key=key, status="open", raised_at=now,
            updated_at=now, expires_at=expires_at, **values))
        _audit(session, alert_id, "raised", now, level=level, status="open")
        return alert_id
    action = "updated"
    if row["status"] == "resolved":
        if evidence is not None and evidence in json.loads(row["incidents"]):
            return None
        values.update(status="open", raised_at=now, note=None, acted_by=None)
        action = "reopened"
    elif all(row[k] == v for k, v in values.items()) and row["expires_at"] == expires_at:
        return None
    elif row["status"] != "open" and (row["rule"], row["level"]) != (rule, level):
        values["status"] = "open"
        action = "reopened"
    session.execute(sa.update(alerts).where(alerts.c.id == row["id"])
                    .values(updated_at=now, expires_at=expires_at, **values))
    if action == "reopened" or row["level"] != level:
        # plain updates (one more incident, a new count) are not worth an audit line each
        _audit(session, row["id"], action, now, level=level,
               status=values.get("status", row["status"]))
    return row["id"]


def resolve(session: Session, key: str, now: datetime) -> dict | None:
    """Mark the alert of `key` resolved (its situation is over); None when nothing was live."""
    alert_id = stage_resolve(session, key, now)
    if alert_id is None:
        return None
    (changed,) = stamp(session, [alert_id])
    return changed


def stage_resolve(session: Session, key: str, now: datetime) -> str | None:
    """Resolve without a seq; the id when it changed, else None."""
    row = _by_key(session, key, missing_ok=True, lock=True)
    if row is None or row["status"] not in LIVE:
        return None
    session.execute(sa.update(alerts).where(alerts.c.id == row["id"])
                    .values(status="resolved", updated_at=now))
    _audit(session, row["id"], "resolved", now, level=row["level"], status="resolved")
    return row["id"]


def stage_expire(session: Session, now: datetime) -> list[str]:
    """Resolve the live alerts whose situation ran out (`expires_at` ≤ now); their ids."""
    rows = session.execute(sa.select(alerts.c.key).where(
        alerts.c.status.in_(LIVE), alerts.c.expires_at.is_not(None),
        alerts.c.expires_at <= now)).all()
    return [i for i in (stage_resolve(session, r.key, now) for r in rows) if i is not None]


def live_by_rule(session: Session, rule: str) -> list[dict]:
    """The live alerts of one rule."""
    rows = session.execute(sa.select(alerts).where(alerts.c.rule == rule,
                                                   alerts.c.status.in_(LIVE)))
    return [_dict(r._mapping) for r in rows]


def history(session: Session, alert_id: str) -> list[dict]:
    """The audit trail of an alert, oldest first."""
    rows = session.execute(sa.select(alert_events).where(alert_events.c.alert_id == alert_id)
                           .order_by(alert_events.c.id))
    return [{"at": iso_shanghai(r.at), "action": r.action, "by": r.by, "note": r.note,
             "level": r.level, "status": r.status} for r in rows]


def _audit(session: Session, alert_id: str, action: str, now: datetime, *, level: str,
           status: str, by: str | None = None, note: str | None = None) -> None:
    session.execute(sa.insert(alert_events).values(
        alert_id=alert_id, at=now, action=action, by=by, note=note, level=level, status=status))


def act(session: Session, alert_id: str, action: str, by: Principal, note: str | None = None, *,
        now: datetime) -> dict:
    """Acknowledge or dismiss an alert; repeating it, or acting on a resolved one, changes nothing."""
    row = _get_row(session, alert_id)
    if not (by.county_wide or (by.role == "township"
                               and by.unit_code in json.loads(row["units"]))):
        raise Forbidden(f"{by.name} may not act on alert {alert_id}")  # grids and depts see only
    if action not in ("ack", "dismiss"):
        raise TransitionError(f"no alert action {action!r}", ["ack", "dismiss"])
    target = {"ack": "acknowledged", "dismiss": "dismissed"}[action]
    note = (note or "").strip() or None
    if note is not None and len(note) > 2000:
        raise DomainError("invalid_field", "note: at most 2000 characters", "note")
    if action == "dismiss" and note is None:
        raise DomainError("invalid_field", "note: say why the alert is dismissed", "note")
    status = row["status"]
    if status == "resolved" or status == target or (status == "dismissed" and action == "ack"):
        return _dict(row)
    session.execute(sa.update(alerts).where(alerts.c.id == alert_id).values(
        status=target, updated_at=now, note=note, acted_by=by.name))
    _audit(session, alert_id, action, now, level=row["level"], status=target, by=by.name,
           note=note)
    (changed,) = stamp(session, [alert_id])
    return changed


def list_alerts(session: Session, status: str = "open", since_seq: int | None = None, *,
                by: Principal | None = None) -> list[dict]:
    """Alerts by seq: the live ones ("open": open or acknowledged) or all; `by` narrows to scope."""
    stmt = sa.select(alerts).order_by(alerts.c.seq)
    if status == "open":
        stmt = stmt.where(alerts.c.status.in_(LIVE))
    elif status != "all":
        raise DomainError("invalid_field", "status: 'open' or 'all'", "status")
    if since_seq is not None:
        stmt = stmt.where(alerts.c.seq > since_seq)
    out = [_dict(r._mapping) for r in session.execute(stmt)]
    if by is not None and by.matters_only:
        matters = matter_ids(session, [i for a in out for i in a["incidents"]])
        out = [a for a in out if a["incidents"] and all(i in matters for i in a["incidents"])]
    elif by is not None and not by.county_wide:
        out = [a for a in out if by.unit_code in a["units"]]
    return out


def matter_ids(session: Session, incident_ids: list[str]) -> set[str]:
    """Which of these incidents are matters (the window's clerk sees alerts about those)."""
    from command.incidents.models import incidents
    from command.matters.categories import MATTER_TYPES

    found: set[str] = set()
    unique = list(dict.fromkeys(incident_ids))
    for chunk in _chunks(unique):
        found.update(session.execute(sa.select(incidents.c.id).where(
            incidents.c.id.in_(chunk), incidents.c.type.in_(MATTER_TYPES))).scalars())
    return found


def get(session: Session, alert_id: str) -> dict:
    """One alert, or NotFound."""
    return _dict(_get_row(session, alert_id))


def get_by_key(session: Session, key: str) -> dict | None:
    """The alert of a situation key, or None."""
    row = _by_key(session, key, missing_ok=True)
    return None if row is None else _dict(row)


def stamp(session: Session, alert_ids: list[str]) -> list[dict]:
    """Give each staged alert a new seq (in the given order) and return their dicts."""
    ids = list(dict.fromkeys(alert_ids))
    if not ids:
        return []
    first = next_seq(session, len(ids), counter="alert_seq")
    session.execute(sa.update(alerts).where(alerts.c.id == sa.bindparam("_id"))
                    .values(seq=sa.bindparam("_seq")),
                    [{"_id": alert_id, "_seq": first + j} for j, alert_id in enumerate(ids)])
    found = {}
    for chunk in _chunks(ids):
        for row in session.execute(sa.select(alerts).where(alerts.c.id.in_(chunk))):
            found[row.id] = _dict(row._mapping)
    return [found[alert_id] for alert_id in ids]


def stage_raise_many(session: Session, proposals: list[dict], now: datetime) -> list[str]:
    """`stage_raise` for many situations at once (keys distinct): a few statements in all.

    Each proposal is a dict of stage_raise's keyword arguments but `now`. Returns the ids of
    the alerts that changed.
    """
    for p in proposals:
        if p["level"] not in LEVELS:
            raise DomainError("invalid_field", f"level: one of {', '.join(LEVELS)}", "level")
    rows = {}
    keys = [p["key"] for p in proposals]
    for chunk in _chunks(keys):
        stmt = sa.select(alerts).where(alerts.c.key.in_(chunk)).with_for_update()
        rows.update({r.key: r._mapping for r in session.execute(stmt)})
    inserts, updates, audits, changed = [], [], [], []
    for p in proposals:
        values = {"rule": p["rule"], "level": p["level"], "units": json.dumps(list(p["units"])),
                  "incidents": json.dumps(list(p["incidents"])), "message": p["message"]}
        expires_at, evidence = p.get("expires_at"), p.get("evidence")
        row = rows.get(p["key"])
        if row is None:
            alert_id = uuid.uuid4().hex
            inserts.append({"id": alert_id, "seq": placeholder_seq(), "key": p["key"],
                            "status": "open", "raised_at": now, "updated_at": now,
                            "expires_at": expires_at, "note": None, "acted_by": None, **values})
            audits.append((alert_id, "raised", p["level"], "open"))
            changed.append(alert_id)
            continue
        new = {"status": row["status"], "raised_at": row["raised_at"], "note": row["note"],
               "acted_by": row["acted_by"]}
        action = "updated"
        if row["status"] == "resolved":
            if evidence is not None and evidence in json.loads(row["incidents"]):
                continue
            new.update(status="open", raised_at=now, note=None, acted_by=None)
            action = "reopened"
        elif all(row[k] == v for k, v in values.items()) and row["expires_at"] == expires_at:
            continue
        elif row["status"] != "open" and (row["rule"], row["level"]) != (p["rule"], p["level"]):
            new["status"] = "open"
            action = "reopened"
        updates.append({"_id": row["id"], "updated_at": now, "expires_at": expires_at,
                        **values, **new})
        if action == "reopened" or row["level"] != p["level"]:
            audits.append((row["id"], action, p["level"], new["status"]))
        changed.append(row["id"])
    if inserts:
        session.execute(sa.insert(alerts), inserts)
    if updates:
        columns = [k for k in updates[0] if k != "_id"]
        session.execute(sa.update(alerts).where(alerts.c.id == sa.bindparam("_id"))
                        .values({k: sa.bindparam(k) for k in columns}), updates)
    if audits:
        session.execute(sa.insert(alert_events), [
            {"alert_id": a, "at": now, "action": action, "by": None, "note": None,
             "level": level, "status": status} for a, action, level, status in audits])
    return changed


def _chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def placeholder_seq() -> int:
    """A unique negative seq for a row inserted before its real seq is reserved."""
    return -(uuid.uuid4().int >> 66)


def _dict(row) -> dict:
    return {
        "id": row["id"], "seq": row["seq"], "key": row["key"], "rule": row["rule"],
        "level": row["level"], "units": json.loads(row["units"]),
        "incidents": json.loads(row["incidents"]), "message": row["message"],
        "status": row["status"], "raised_at": iso_shanghai(row["raised_at"]),
        "updated_at": iso_shanghai(row["updated_at"]), "acted_by": row["acted_by"],
        "note": row["note"],
        "expires_at": iso_shanghai(row["expires_at"]) if row["expires_at"] else None,
    }


def _by_key(session: Session, key: str, *, missing_ok: bool = False, lock: bool = False):
    stmt = sa.select(alerts).where(alerts.c.key == key)
    if lock:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).first()
    if row is None:
        if missing_ok:
            return None
        raise NotFound(f"no alert with key {key!r}")
    return row._mapping


def _get_row(session: Session, alert_id: str):
    row = session.execute(sa.select(alerts).where(alerts.c.id == alert_id)).first()
    if row is None:
        raise NotFound(f"no alert {alert_id!r}")
    return row._mapping


def stage_merged(session: Session, alert_id: str, *, by: Principal, into: str, note: str | None,
                 now: datetime) -> str:
    """Close a mass-gathering alert whose reports were merged into `into` (audited)."""
    row = _get_row(session, alert_id)
    session.execute(sa.update(alerts).where(alerts.c.id == alert_id).values(
        status="resolved", updated_at=now, note=note, acted_by=by.name))
    _audit(session, alert_id, "merged", now, level=row["level"], status="resolved", by=by.name,
           note=f"合并入事件 {into}" + (f"：{note}" if note else ""))
    return alert_id
