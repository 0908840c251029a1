"""The same person, the same dispute: matters related to a matter, and parties who keep coming.

- Same party: another matter has a party with the same ID number or credit code ("same_party");
  the same phone only is "possibly_same_party".
- Same place: a matter of the same category within 200 m in 90 days, exact positions only
  (a matter placed at its grid is not "at the same place" as anything).
- A party with ≥ 3 matters in 12 months (by ID number or credit code, never by phone) is a
  repeat party (重复来访): flagged on the record, and the risk watch raises `repeat_party`.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.clock import iso_shanghai
from command.incidents.models import incidents
from command.matters.models import matter_parties, matters

PLACE_METRES = 200.0
PLACE_DAYS = 90
REPEAT_MONTHS = 12
REPEAT_MIN = 3
_M_PER_DEG = 111_320.0


def _haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def party_keys(session: Session, incident_id: str) -> dict[str, list[tuple[str, str]]]:
    """{"same": [(column, value)…], "phone": [(column, value)…]} of a matter's parties."""
    rows = session.execute(sa.select(matter_parties.c.id_number_hash, matter_parties.c.credit_code,
                                     matter_parties.c.phone_hash)
                           .where(matter_parties.c.incident_id == incident_id)).all()
    same = [("id_number_hash", r.id_number_hash) for r in rows if r.id_number_hash] + \
        [("credit_code", r.credit_code) for r in rows if r.credit_code]
    phone = [("phone_hash", r.phone_hash) for r in rows if r.phone_hash]
    return {"same": same, "phone": phone}


def _matters_with(session: Session, keys: list[tuple[str, str]], exclude: str) -> set[str]:
    if not keys:
        return set()
    p = matter_parties.c
    clauses = [getattr(p, column) == value for column, value in keys]
    return set(session.execute(sa.select(p.incident_id).distinct().where(
        sa.or_(*clauses), p.incident_id != exclude)).scalars())


def related(session: Session, incident_id: str, *, where=None, limit: int = 50) -> list[dict]:
    """Other matters of the same party or at the same place, newest first, each with its
    reason (`same_party`, `possibly_same_party`, `same_place`). `where` narrows to what the
    reader may see."""
    keys = party_keys(session, incident_id)
    reasons: dict[str, str] = {}
    for other in _matters_with(session, keys["same"], incident_id):
        reasons[other] = "same_party"
    for other in _matters_with(session, keys["phone"], incident_id):
        reasons.setdefault(other, "possibly_same_party")
    me = session.execute(sa.select(incidents.c.lon, incidents.c.lat, incidents.c.category,
                                   incidents.c.approximate, incidents.c.received_at)
                         .where(incidents.c.id == incident_id)).one()
    if not me.approximate and me.category:
        dlat = PLACE_METRES / _M_PER_DEG
        dlon = dlat / max(math.cos(math.radians(me.lat)), 0.05)
        since = me.received_at - timedelta(days=PLACE_DAYS)
        near = session.execute(sa.select(incidents.c.id, incidents.c.lon, incidents.c.lat).where(
            incidents.c.case_no.isnot(None), incidents.c.id != incident_id,
            incidents.c.category == me.category, incidents.c.approximate.is_(False),
            incidents.c.lon.between(me.lon - dlon, me.lon + dlon),
            incidents.c.lat.between(me.lat - dlat, me.lat + dlat),
            incidents.c.received_at >= since,
            incidents.c.received_at <= me.received_at + timedelta(days=PLACE_DAYS))).all()
        for r in near:
            if _haversine_m(me.lon, me.lat, r.lon, r.lat) <= PLACE_METRES:
                reasons.setdefault(r.id, "same_place")
    if not reasons:
        return []
    stmt = (sa.select(incidents.c.id, incidents.c.case_no, incidents.c.title, incidents.c.type,
                      incidents.c.category, incidents.c.status, matters.c.registered_at)
            .join(matters, matters.c.incident_id == incidents.c.id)
            .where(incidents.c.id.in_(list(reasons)))
            .order_by(matters.c.registered_at.desc()).limit(limit))
    if where is not None:
        stmt = stmt.where(where)
    from command.incidents.types import TYPE_LABELS
    from command.incidents.workflow import STATE_LABELS
    from command.matters.categories import category_label

    return [{"case_no": r.case_no, "id": r.id, "title": r.title, "type": r.type,
             "type_label": TYPE_LABELS.get(r.type), "category": r.category,
             "category_label": category_label(r.category), "status": r.status,
             "status_label": STATE_LABELS.get(r.status),
             "registered_at": iso_shanghai(r.registered_at), "reason": reasons[r.id]}
            for r in session.execute(stmt)]


def repeat_counts(session: Session, incident_id: str, *, now: datetime,
                  months: int = REPEAT_MONTHS) -> list[dict]:
    """For each party of the matter known by ID number or credit code: how many matters it has
    in the last `months` months (this one included), with the key the alert is filed under."""
    since = now - timedelta(days=30.5 * months)
    p = matter_parties.c
    rows = session.execute(sa.select(p.position, p.name, p.role, p.kind, p.id_number_hash,
                                     p.credit_code)
                           .where(p.incident_id == incident_id).order_by(p.position)).all()
    out = []
    for r in rows:
        column, value = ("id_number_hash", r.id_number_hash) if r.id_number_hash else \
            ("credit_code", r.credit_code)
        if not value:
            continue
        found = session.execute(
            sa.select(incidents.c.id, incidents.c.case_no)
            .join(matter_parties, matter_parties.c.incident_id == incidents.c.id)
            .join(matters, matters.c.incident_id == incidents.c.id)
            .where(getattr(matter_parties.c, column) == value,
                   matters.c.registered_at >= since)
            .distinct()).all()
        out.append({"position": r.position, "name": r.name, "role": r.role, "kind": r.kind,
                    "key": ("id:" if column == "id_number_hash" else "org:") + value[:24],
                    "count": len(found), "incidents": [f.id for f in found],
                    "cases": sorted(f.case_no for f in found)})
    return out


def shown_name(name: str, kind: str) -> str:
    """How an alert names a party: a person 张三 → 张某 (not in full); an organisation in full."""
    if kind == "org":
        return name
    return (name[:1] + "某") if name else "某"
