"""Matters: register at the window, read the record, list, search, correct, close, reveal.

A matter is an incident of a matter type (incidents.case_no) plus its `matters` record, its
parties and its own timeline lines (`matter_events`); the incident's state moves stay in the
incident timeline, and `record` shows both together. Parties' ID numbers and phones are stored
encrypted with the deployment's key (command.keys) and answered masked; `reveal` gives one in
full to the window and the unit handling the matter, and writes an audit line.

Every change stages rows and takes new sequence numbers last (loop.stamp), so a change of a
matter is a new `seq` of its incident like any other change, and screens see it live.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.clock import iso_shanghai
from command.errors import DomainError, Forbidden, NotFound
from command.incidents import loop
from command.incidents.events import incident_events
from command.incidents.models import incidents
from command.incidents.service import insert_incidents, row_dict
from command.incidents.workflow import STATE_LABELS, TransitionError
from command.keys import Keyring
from command.matters import identity, numbers, schemas
from command.matters import rules as rules_mod
from command.matters.categories import (CATEGORY_LABELS, KIND_LABELS, MATTER_TYPES, RISK_LABELS,
                                        ROLE_LABELS)
from command.matters.models import audit, matter_events, matter_parties, matters
from command.orders.service import Changes
from command.users.principal import Principal
from layers.crs import to_wgs84
from layers.locate import Locator

REGISTRARS = ("desk", "duty", "township")  # who registers at a window (a township: its own)
CLOSERS = REGISTRARS
CORRECTORS = REGISTRARS
REVEALERS = ("desk", "duty")  # and users of a unit holding an order node of the matter
SEARCH_LIMIT = 50
CLOSABLE = ("reported", "accepted")  # a closure is a system move from these states only


# --- registering --------------------------------------------------------------------------

def register(session: Session, raw: dict, *, by: Principal, keyring: Keyring, locator: Locator,
             now: datetime, idempotency_key: str | None = None,
             max_future: timedelta = timedelta(minutes=5), rules=None) -> tuple[dict, Changes]:
    """Register a matter; return its full record (numbers masked) and what to publish.

    With an `idempotency_key`, a retried request gets the record of the first one (and nothing
    to publish); the same key with another body is a conflict.
    """
    if by.role not in REGISTRARS:
        raise Forbidden(f"{by.name}: only the window (desk, duty) or a township registers matters")
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, ensure_ascii=False,
                                       default=str).encode()).hexdigest()
    if idempotency_key is not None:
        if not 1 <= len(idempotency_key) <= 128:
            raise DomainError("invalid_field", "Idempotency-Key: 1 to 128 characters",
                              "Idempotency-Key")
        earlier = session.execute(sa.select(matters.c.case_no, matters.c.request_digest).where(
            matters.c.registered_by == by.name,
            matters.c.idempotency_key == idempotency_key)).first()
        if earlier is not None:
            if earlier.request_digest != digest:
                raise DomainError("conflict", "this Idempotency-Key was used for another "
                                              "registration", "Idempotency-Key")
            return record(session, earlier.case_no, by=by, locator=locator, now=now,
                          rules=rules), Changes()
    reg = schemas.parse(schemas.Registration, raw, now=now, max_future=max_future)
    if reg.has_personal_numbers:
        keyring.require()
    lon, lat, township, grid, outside = _place(reg, locator)
    _check_township(by, township, reg)
    status = "closed" if reg.closure else "accepted"
    row = {
        "id": uuid.uuid4().hex, "seq": None, "feed_id": None, "source_id": None,
        "fingerprint": digest, "type": reg.type, "severity": reg.severity or 4,
        "title": reg.title, "description": reg.description or "", "people": reg.people,
        "reporter": None, "phone": None, "occurred_at": reg.occurred_at or now,
        "received_at": now, "lon": lon, "lat": lat, "township_code": township,
        "grid_code": grid, "outside": outside, "status": status, "level": "county"
        if by.role != "township" else "township", "channel": reg.channel or "visit",
        "category": reg.category, "case_no": None, "approximate": reg.lon is None,
    }
    insert_incidents(session, [row], locator=locator, records=False)
    case_no = row["case_no"]
    rules = rules or rules_mod.defaults()
    clock = {} if reg.closure == "not_accepted" else rules_mod.clock_fields(
        rules, type_code=reg.type, category=reg.category, registered_at=now, signed_at=None)
    numbers.insert_records(session, [row], **clock, summary=reg.summary, request=reg.request,
                           amount=reg.amount, risk=reg.risk, closure=reg.closure,
                           closure_note=reg.note if reg.closure else None,
                           closed_at=now if reg.closure else None, registered_by=by.name,
                           registered_unit=by.unit_code, idempotency_key=idempotency_key,
                           request_digest=digest,
                           concluded_at=now if reg.closure == "on_the_spot" else None)
    _insert_parties(session, row["id"], reg.parties, keyring)
    _event(session, row["id"], "register", by, now,
           f"{_channel_note(row['channel'])}登记，案号 {case_no}",
           {"parties": len(reg.parties)})
    if reg.closure:
        _close_lines(session, row["id"], "reported", reg.closure, reg.note, by, now)
    else:
        _state_line(session, row["id"], "reported", "accepted", by, now, "窗口登记受理")
    incident = row_dict(row, None, locator)
    return record(session, case_no, by=by, locator=locator, now=now, rules=rules), \
        Changes(incidents=[incident])


def _place(reg, locator: Locator) -> tuple[float, float, str | None, str | None, bool]:
    """(lon, lat, township, grid, outside) of a registration: a point, or its grid."""
    if reg.lon is None or reg.lat is None:
        if not (locator.has(reg.grid) and locator.unit(reg.grid)["level"] == "grid"):
            raise DomainError("invalid_field", f"grid: no grid with code {reg.grid!r}", "grid")
        lon, lat = locator.point_in(reg.grid)
        return lon, lat, locator.unit(reg.grid)["parent"], reg.grid, False
    lons, lats = to_wgs84(np.array([reg.lon]), np.array([reg.lat]), reg.crs)
    lon, lat = float(lons[0]), float(lats[0])
    found = locator.locate(np.array([lon]), np.array([lat]))
    return lon, lat, found.township[0], found.grid[0], bool(found.outside[0])


def _check_township(by: Principal, township: str | None, reg) -> None:
    if by.role == "township" and township != by.unit_code:
        field = "grid" if reg.lon is None else "lon"
        raise DomainError("out_of_range", f"{field}: a township registers matters of its own "
                                          f"township ({by.unit_code}) only", field)


def _insert_parties(session: Session, incident_id: str, parties, keyring: Keyring,
                    start: int = 0) -> None:
    rows = [_party_row(incident_id, start + k, p, keyring) for k, p in enumerate(parties)]
    if rows:
        session.execute(sa.insert(matter_parties), rows)


def _party_row(incident_id: str, position: int, p, keyring: Keyring) -> dict:
    row = {"incident_id": incident_id, "position": position, "role": p.role, "kind": p.kind,
           "name": p.name, "credit_code": p.credit_code, "address": p.address,
           "id_number_enc": None, "id_number_hash": None, "id_number_masked": None,
           "phone_enc": None, "phone_hash": None, "phone_masked": None}
    if p.id_number:
        row.update(id_number_enc=keyring.encrypt(p.id_number),
                   id_number_hash=keyring.index("id:" + p.id_number),
                   id_number_masked=identity.mask_id_number(p.id_number))
    if p.phone:
        digits = identity.normalise_phone(p.phone)
        row.update(phone_enc=keyring.encrypt(p.phone), phone_hash=keyring.index("tel:" + digits),
                   phone_masked=identity.mask_phone(p.phone))
    return row


def _channel_note(channel: str) -> str:
    from command.matters.categories import channel_label

    return channel_label(channel) or channel


def _event(session: Session, incident_id: str, kind: str, by: Principal | str, now: datetime,
           note: str = "", data: dict | None = None) -> None:
    session.execute(sa.insert(matter_events).values(
        incident_id=incident_id, at=now, by=by if isinstance(by, str) else by.name, kind=kind,
        note=note, data=json.dumps(data, ensure_ascii=False, default=str) if data else None))


def _state_line(session: Session, incident_id: str, from_state: str, to_state: str,
                by: Principal, now: datetime, note: str, data: dict | None = None) -> None:
    session.execute(sa.insert(incident_events).values(
        incident_id=incident_id, at=now, by=by.name, from_state=from_state, to_state=to_state,
        note=note, data=json.dumps(data, ensure_ascii=False) if data else None))


def _close_lines(session: Session, incident_id: str, from_state: str, closure: str, note: str,
                 by: Principal, now: datetime) -> None:
    label = schemas.CLOSURES[closure]
    _event(session, incident_id, "close", by, now, f"{label}：{note}", {"closure": closure})
    _state_line(session, incident_id, from_state, "closed", by, now, f"{label}：{note}",
                {"closure": closure})


def record_field_matters(session: Session, rows: list[tuple[dict, object]], *, user: str,
                         keyring: Keyring | None, now: datetime) -> None:
    """The matter side of reports from a phone: parties, the register line, a closure on the
    spot (the incident row was inserted closed already)."""
    for row, report in rows:
        if not row.get("case_no"):
            continue
        incident_id = row["id"]
        values = {"registered_by": user}
        closure = getattr(report, "closure", None)
        if closure:
            values.update(closure=closure, closure_note=report.note, closed_at=now,
                          concluded_at=now)
        session.execute(sa.update(matters).where(matters.c.incident_id == incident_id)
                        .values(**values))
        if getattr(report, "parties", None):
            _insert_parties(session, incident_id, report.parties, keyring)
        _event(session, incident_id, "register", user, now,
               f"网格上报登记，案号 {row['case_no']}", {"parties": len(report.parties or [])})
        if closure:
            label = schemas.CLOSURES[closure]
            _event(session, incident_id, "close", user, now, f"{label}：{report.note}",
                   {"closure": closure})
            session.execute(sa.insert(incident_events).values(
                incident_id=incident_id, at=now, by=user, from_state="reported",
                to_state="closed", note=f"{label}：{report.note}",
                data=json.dumps({"closure": closure}, ensure_ascii=False)))


# --- reading ------------------------------------------------------------------------------

def matter_ids(session: Session, incident_ids: list[str]) -> set[str]:
    """Which of these incidents are matters."""
    found: set[str] = set()
    unique = list(dict.fromkeys(incident_ids))
    for start in range(0, len(unique), 500):
        found.update(session.execute(sa.select(incidents.c.id).where(
            incidents.c.id.in_(unique[start:start + 500]),
            incidents.c.type.in_(MATTER_TYPES))).scalars())
    return found


def _matter_row(session: Session, case_no: str, *, lock: bool = False):
    stmt = (sa.select(matters, incidents.c.type, incidents.c.category, incidents.c.township_code,
                      incidents.c.grid_code, incidents.c.status, incidents.c.title,
                      incidents.c.reporter_user)
            .join(incidents, incidents.c.id == matters.c.incident_id)
            .where(matters.c.case_no == case_no))
    if lock:
        stmt = stmt.with_for_update(of=matters)
    row = session.execute(stmt).first()
    if row is None:
        raise NotFound(f"no matter {case_no!r}")
    return row._mapping


def _check_sees(session: Session, by: Principal, row) -> frozenset[str]:
    ordered = loop.ordered_units(session, row["incident_id"])
    if not by.sees_incident(row["township_code"], row["grid_code"], ordered,
                            type_code=row["type"], reporter=row["reporter_user"]):
        raise Forbidden("this matter is outside your scope")
    return ordered


def record(session: Session, case_no: str, *, by: Principal, locator: Locator,
           now: datetime | None = None, rules=None) -> dict:
    """The matter's full record as `by` may see it: the incident, the record, the parties
    (numbers masked, repeat parties flagged), its routes (the order tree), the clock, the
    sessions, outcome, confirmation and follow-up, related matters, and the timeline (state
    moves and the matter's own lines, oldest first)."""
    from command.incidents.service import scope_filter
    from command.matters import handling, related
    from command.matters import rules as rules_mod
    from command.matters.clock import matter_clock
    from command.orders.service import order_tree

    rules = rules or rules_mod.defaults()
    now = now or datetime.now(UTC)
    row = _matter_row(session, case_no)
    _check_sees(session, by, row)
    incident_id = row["incident_id"]
    incident = loop.get(session, incident_id, locator=locator)
    clock = matter_clock({**row, "status": incident["status"]}, now=now, rules=rules)
    the_parties = parties(session, incident_id)
    repeat = {p["position"]: p["count"] for p in related.repeat_counts(
        session, incident_id, now=now)}
    for k, party in enumerate(the_parties):
        party["matters_12m"] = repeat.get(k)
        party["repeat"] = repeat.get(k, 0) >= related.REPEAT_MIN
    confirmation_due = row["concluded_at"] + timedelta(days=rules.confirmation_days) \
        if row["result"] == "agreed" else None
    return {
        **incident,
        "summary": row["summary"], "request": row["request"],
        "amount": _money(row["amount"]), "risk": row["risk"],
        "risk_label": RISK_LABELS.get(row["risk"]) if row["risk"] else None,
        "parties": the_parties,
        "closure": row["closure"],
        "closure_label": schemas.CLOSURES.get(row["closure"]) if row["closure"] else None,
        "closure_note": row["closure_note"],
        "closed_at": _iso(row["closed_at"]),
        "registered_by": row["registered_by"], "registered_unit": row["registered_unit"],
        "registered_at": iso_shanghai(row["registered_at"]),
        "tier": row["tier"], "tier_label": rules_mod.TIERS.get(row["tier"]),
        "owner": row["owner"],
        "lead": _unit_ref(locator, row["lead_code"]),
        "routed_at": _iso(row["routed_at"]), "signed_at": _iso(row["signed_at"]),
        "orders": order_tree(session, incident_id),
        "suggested_route": dict(zip(("lead", "tier"), rules.suggest(
            incident["type"], incident["category"],
            township=row["township_code"], grid=row["grid_code"]))),
        "clock": {"state": clock.state, "state_label": CLOCK_LABELS[clock.state],
                  "limit_days": row["limit_days"], "extended_days": row["extended_days"] or 0,
                  "due_at": _iso(clock.due_at), "notify_due_at": _iso(row["notify_due_at"]),
                  "left_seconds": clock.left_seconds},
        "sessions": sessions(session, incident_id),
        "concluded_at": _iso(row["concluded_at"]),
        "outcome": None if row["result"] is None else {
            "result": row["result"], "result_label": handling.RESULT_LABELS[row["result"]],
            "resolved": row["result"] in handling.RESOLVED, "at": _iso(row["concluded_at"]),
            "terms": row["terms"], "amount": _money(row["agreed_amount"]),
            "perform_by": row["perform_by"].isoformat() if row["perform_by"] else None,
            "guided_to": row["guided_to"],
            "guided_to_label": handling.GUIDED_TO.get(row["guided_to"]),
            "note": row["outcome_note"],
            "agreement_url": f"/api/v1/matters/{case_no}/agreement"
            if row["result"] == "agreed" else None},
        "confirmation": None if row["result"] != "agreed" else {
            "state": row["confirmation"],
            "state_label": handling.CONFIRMATION.get(row["confirmation"]),
            "at": _iso(row["confirmation_at"]), "court": row["confirmation_court"],
            "apply_by": _iso(confirmation_due)},
        "followup": None if row["concluded_at"] is None else {
            "due_at": _iso(row["followup_due_at"]), "at": _iso(row["followed_up_at"]),
            "performed": row["performed"], "satisfaction": row["satisfaction"],
            "satisfaction_label": handling.SATISFACTION[row["satisfaction"]][0]
            if row["satisfaction"] else None},
        "reopened": row["reopened"] or 0,
        "related": related.related(session, incident_id, where=scope_filter(by)),
        "timeline": timeline(session, incident_id),
    }


CLOCK_LABELS = {"running": "办理中", "near": "即将到期", "overdue": "已逾期", "concluded": "已办结",
                "stopped": "不计时", "waiting": "待签收后计时"}


def _iso(value) -> str | None:
    return None if value is None else iso_shanghai(value)


def _unit_ref(locator: Locator, code: str | None) -> dict | None:
    if code is None:
        return None
    return {"code": code, "name": locator.unit(code)["name"] if locator.has(code) else code}


def sessions(session: Session, incident_id: str) -> list[dict]:
    """The mediation sessions, oldest first."""
    from command.matters.models import matter_sessions

    rows = session.execute(sa.select(matter_sessions)
                           .where(matter_sessions.c.incident_id == incident_id)
                           .order_by(matter_sessions.c.at, matter_sessions.c.id)).all()
    return [{"at": iso_shanghai(r.at), "place": r.place, "mediators": json.loads(r.mediators),
             "attendees": json.loads(r.attendees), "notes": r.notes, "by": r.by,
             "unit": r.unit_code} for r in rows]


def _money(value) -> float | None:
    return None if value is None else float(Decimal(value))


def parties(session: Session, incident_id: str) -> list[dict]:
    """The parties in order, numbers masked."""
    rows = session.execute(sa.select(matter_parties)
                           .where(matter_parties.c.incident_id == incident_id)
                           .order_by(matter_parties.c.position)).all()
    return [_party_dict(r._mapping) for r in rows]


def _party_dict(r) -> dict:
    return {"position": r["position"], "role": r["role"], "role_label": ROLE_LABELS.get(r["role"]), "kind": r["kind"],
            "kind_label": KIND_LABELS.get(r["kind"]), "name": r["name"],
            "id_number": r["id_number_masked"], "credit_code": r["credit_code"],
            "phone": r["phone_masked"], "address": r["address"]}


def timeline(session: Session, incident_id: str) -> list[dict]:
    """State moves and the matter's own lines, oldest first (a matter line before a state move
    made at the same moment)."""
    lines = [{"at": r.at, "order": (0, r.id), "by": r.by, "kind": r.kind, "note": r.note,
              "data": json.loads(r.data) if r.data else None}
             for r in session.execute(sa.select(matter_events)
                                      .where(matter_events.c.incident_id == incident_id))]
    lines += [{"at": r.at, "order": (1, r.id), "by": r.by, "kind": "state", "from": r.from_state,
               "to": r.to_state, "to_label": STATE_LABELS.get(r.to_state), "note": r.note,
               "data": json.loads(r.data) if r.data else None}
              for r in session.execute(sa.select(incident_events)
                                       .where(incident_events.c.incident_id == incident_id))]
    lines.sort(key=lambda line: (line["at"], line["order"]))
    for line in lines:
        line["at"] = iso_shanghai(line.pop("at"))
        line.pop("order")
    return lines


def listing(session: Session, *, by: Principal, locator: Locator, since: int, limit: int,
            status: str | None = None, category: str | None = None, channel: str | None = None,
            township: str | None = None) -> dict:
    """Matter changes after `since` that `by` may see, filtered, in the shape of incidents."""
    from command.incidents.service import since as incidents_since

    where = [incidents.c.type.in_(MATTER_TYPES)]
    if status:
        where.append(incidents.c.status.in_(status.split(",")))
    if category:
        where.append(incidents.c.category == category)
    if channel:
        where.append(incidents.c.channel == channel)
    if township:
        where.append(incidents.c.township_code == township)
    return incidents_since(session, since, limit=limit, locator=locator, principal=by,
                           where=sa.and_(*where))


def queue(session: Session, *, by: Principal, locator: Locator, limit: int = 300,
          states: tuple[str, ...] = ("reported", "accepted")) -> list[dict]:
    """The window's queue as `by` sees it: matters registered and not yet routed or closed,
    newest first."""
    from command.feeds.models import feeds
    from command.incidents.service import scope_filter

    stmt = (sa.select(incidents, feeds.c.name.label("feed_name"))
            .outerjoin(feeds, feeds.c.id == incidents.c.feed_id)
            .where(incidents.c.type.in_(MATTER_TYPES), incidents.c.status.in_(states))
            .order_by(incidents.c.received_at.desc(), incidents.c.seq.desc()).limit(limit))
    where = scope_filter(by)
    if where is not None:
        stmt = stmt.where(where)
    return [row_dict(r._mapping, r.feed_name, locator) for r in session.execute(stmt)]


def search(session: Session, query: dict, *, by: Principal, keyring: Keyring,
           locator: Locator) -> dict:
    """Matters of a party (by ID number, credit code or phone) or by words (case number,
    title, summary, party name), newest first, as `by` may see them."""
    from command.incidents.service import scope_filter

    keys = [k for k in ("id_number", "credit_code", "phone", "q") if query.get(k)]
    if len(keys) != 1 or not isinstance(query[keys[0]], str):
        raise DomainError("invalid_field", "give one of id_number, credit_code, phone or q "
                                           "(a string)")
    key, value = keys[0], query[keys[0]].strip()
    p = matter_parties
    stmt = (sa.select(incidents, matters.c.registered_at).join(
        matters, matters.c.incident_id == incidents.c.id))
    match_party = None
    if key == "id_number":
        keyring.require()
        value = identity.normalise_id_number(value)
        match_party = p.c.id_number_hash == keyring.index("id:" + value)
        reason = "same_party"
    elif key == "credit_code":
        match_party = p.c.credit_code == value.replace(" ", "").upper()
        reason = "same_party"
    elif key == "phone":
        keyring.require()
        match_party = p.c.phone_hash == keyring.index("tel:" + identity.normalise_phone(value))
        reason = "possibly_same_party"
    else:
        if len(value) > 100:
            raise DomainError("invalid_field", "q: at most 100 characters", "q")
        like = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        named = sa.select(p.c.incident_id).where(p.c.name.like(like, escape="\\"))
        stmt = stmt.where(sa.or_(incidents.c.case_no == value,
                                 incidents.c.title.like(like, escape="\\"),
                                 matters.c.summary.like(like, escape="\\"),
                                 incidents.c.id.in_(named)))
        reason = "words"
    if match_party is not None:
        stmt = stmt.where(incidents.c.id.in_(sa.select(p.c.incident_id).where(match_party)))
    where = scope_filter(by)
    if where is not None:
        stmt = stmt.where(where)
    rows = session.execute(stmt.order_by(matters.c.registered_at.desc())
                           .limit(SEARCH_LIMIT)).all()
    items = []
    for r in rows:
        item = row_dict(r._mapping, None, locator)
        item["registered_at"] = iso_shanghai(r.registered_at)
        item["reason"] = reason
        if match_party is not None:
            item["parties"] = [_party_dict(x._mapping) for x in session.execute(
                sa.select(p).where(p.c.incident_id == r.id, match_party)
                .order_by(p.c.position))]
        items.append(item)
    return {"items": items, "reason": reason}


# --- changing -----------------------------------------------------------------------------

def close(session: Session, case_no: str, raw: dict, *, by: Principal, locator: Locator,
          now: datetime) -> tuple[dict, Changes]:
    """Close a matter at the window: not accepted, or handled on the spot (from reported or
    accepted only); return its record and what to publish."""
    if by.role not in CLOSERS:
        raise Forbidden(f"{by.name}: only the window (desk, duty) or its township closes a matter")
    body = schemas.parse(schemas.Closure, raw)
    row = _matter_row(session, case_no, lock=True)
    _check_sees(session, by, row)
    _check_own_township(by, row)
    state = session.execute(sa.select(incidents.c.status).where(
        incidents.c.id == row["incident_id"]).with_for_update()).scalar_one()
    if state not in CLOSABLE:
        raise TransitionError(f"事项已「{STATE_LABELS.get(state, state)}」，窗口不能再直接办结", [])
    session.execute(sa.update(matters).where(matters.c.incident_id == row["incident_id"])
                    .values(closure=body.closure, closure_note=body.note, closed_at=now,
                            concluded_at=now if body.closure == "on_the_spot" else None))
    session.execute(sa.update(incidents).where(incidents.c.id == row["incident_id"])
                    .values(status="closed"))
    _close_lines(session, row["incident_id"], state, body.closure, body.note, by, now)
    from command.alerts import service as alerts_service
    from command.matters.handling import overdue_key

    changed = alerts_service.stage_resolve(session, overdue_key(case_no), now)
    (incident,) = loop.stamp(session, [row["incident_id"]], locator=locator)
    alerts = alerts_service.stamp(session, [changed] if changed else [])
    return record(session, case_no, by=by, locator=locator, now=now), \
        Changes(incidents=[incident], alerts=alerts)


def _check_own_township(by: Principal, row) -> None:
    if by.role == "township" and row["township_code"] != by.unit_code:
        raise Forbidden("a township acts on the matters of its own township only")


def reveal(session: Session, case_no: str, raw: dict, *, by: Principal, keyring: Keyring,
           now: datetime) -> dict:
    """One party's ID number or phone in full, for the window and the unit handling the
    matter, with an audit line; 403 for anyone else."""
    body = schemas.parse(schemas.Reveal, raw)
    row = _matter_row(session, case_no)
    ordered = loop.ordered_units(session, row["incident_id"])
    if not (by.role in REVEALERS or (by.unit_code is not None and by.unit_code in ordered)):
        raise Forbidden("only the window and the unit handling the matter may see the number "
                        "in full")
    keyring.require()
    party = session.execute(sa.select(matter_parties).where(
        matter_parties.c.incident_id == row["incident_id"],
        matter_parties.c.position == body.party)).first()
    if party is None:
        raise DomainError("out_of_range", f"party: the matter has no party {body.party}", "party")
    sealed = party._mapping[f"{body.field}_enc"]
    if sealed is None:
        raise DomainError("invalid_field", f"field: party {body.party} has no {body.field}",
                          "field")
    write_audit(session, by, now, "reveal", case_no, party=body.party, field=body.field,
                reason=body.reason)
    return {"party": body.party, "field": body.field, "value": keyring.decrypt(sealed)}


def write_audit(session: Session, by: Principal, now: datetime, action: str, subject: str, *,
                party: int | None = None, field: str | None = None,
                reason: str | None = None) -> None:
    """One line of the audit trail (who looked at or changed personal data, and why)."""
    session.execute(sa.insert(audit).values(at=now, by=by.name, action=action, subject=subject,
                                            party=party, field=field, reason=reason))


def audit_trail(session: Session, subject: str) -> dict:
    """The audit lines about one subject (a case number), oldest first."""
    rows = session.execute(sa.select(audit).where(audit.c.subject == subject)
                           .order_by(audit.c.id)).all()
    return {"items": [{"at": iso_shanghai(r.at), "by": r.by, "action": r.action,
                       "subject": r.subject, "party": r.party, "field": r.field,
                       "reason": r.reason} for r in rows]}


_CORRECTABLE = ("title", "channel", "occurred_at", "severity", "category", "description",
                "summary", "request", "people", "amount", "risk")
_ON_INCIDENT = ("title", "channel", "occurred_at", "severity", "category", "description",
                "people")


def correct(session: Session, case_no: str, raw: dict, *, by: Principal, keyring: Keyring,
            locator: Locator, now: datetime, rules=None) -> tuple[dict, Changes]:
    """Correct a registered matter: fields, the place, and parties (`parties`: a list of edits
    `{"party": i, field: value…}`, `{"party": i, "remove": true}` or `{"add": {party}}`).
    Each change is a timeline line with the old and the new value (numbers masked) and an
    audit line; the incident gets a new seq."""
    if by.role not in CORRECTORS:
        raise Forbidden(f"{by.name}: only the window (desk, duty) or its township corrects a "
                        "matter")
    if not isinstance(raw, dict):
        raise DomainError("invalid_field", "the body must be a JSON object")
    reason = raw.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
        raise DomainError("invalid_field", "reason: a text of at most 500 characters", "reason")
    known = set(_CORRECTABLE) | {"lon", "lat", "crs", "grid", "parties", "reason"}
    unknown = sorted(k for k in raw if k not in known)
    if unknown:
        raise DomainError("invalid_field", f"{unknown[0]}: cannot be corrected (fields: "
                                           f"{', '.join(sorted(known - {'reason'}))})", unknown[0])
    details = schemas.parse(schemas.Details, {k: v for k, v in raw.items() if k != "parties"},
                            now=now)
    row = _matter_row(session, case_no, lock=True)
    _check_sees(session, by, row)
    _check_own_township(by, row)
    incident_id = row["incident_id"]
    current = session.execute(sa.select(incidents).where(incidents.c.id == incident_id)
                              ).first()._mapping
    changes: list[tuple[str, object, object]] = []
    incident_values: dict = {}
    matter_values: dict = {}
    for name in _CORRECTABLE:
        if name not in raw:
            continue
        new = getattr(details, name)
        if name == "title" and not new:
            raise DomainError("missing_field", "title is required", "title")
        old = current[name] if name in _ON_INCIDENT else row[name]
        if name == "occurred_at" and new is None:
            raise DomainError("invalid_field", "occurred_at: a time is required", "occurred_at")
        if _same(old, new):
            continue
        (incident_values if name in _ON_INCIDENT else matter_values)[name] = new
        changes.append((name, _shown(old), _shown(new)))
    if any(k in raw for k in ("lon", "lat", "grid")):
        if details.grid is None and (details.lon is None or details.lat is None):
            raise DomainError("missing_field", "give lon and lat, or grid", "lon")
        lon, lat, township, grid, outside = _place(details, locator)
        _check_township(by, township, details)
        place = {"lon": lon, "lat": lat, "township_code": township, "grid_code": grid,
                 "outside": outside, "approximate": details.lon is None}
        old_place = f"{current['grid_code'] or '辖区外'}"
        new_place = f"{grid or '辖区外'}"
        incident_values.update(place)
        changes.append(("place", old_place + ("（网格概略位置）" if current["approximate"] else ""),
                        new_place + ("（网格概略位置）" if place["approximate"] else "")))
    party_changes = _correct_parties(session, incident_id, raw.get("parties"), keyring)
    changes += party_changes
    if not changes:
        return record(session, case_no, by=by, locator=locator, now=now, rules=rules), Changes()
    if "category" in incident_values and row["limit_days"] is not None \
            and row["concluded_at"] is None:  # another category, another legal limit
        rules = rules_mod.defaults() if rules is None else rules
        matter_values.update(rules_mod.clock_fields(
            rules, type_code=current["type"], category=incident_values["category"],
            registered_at=row["registered_at"], signed_at=row["signed_at"],
            extended_days=row["extended_days"] or 0))
    if incident_values:
        session.execute(sa.update(incidents).where(incidents.c.id == incident_id)
                        .values(**incident_values))
    if matter_values:
        session.execute(sa.update(matters).where(matters.c.incident_id == incident_id)
                        .values(**matter_values))
    for field, old, new in changes:
        _event(session, incident_id, "correct", by, now, f"更正 {field}：{old} → {new}"
               + (f"（{reason}）" if reason else ""), {"field": field, "old": old, "new": new})
        party = int(field.split("[")[1].split("]")[0]) if field.startswith("parties[") else None
        write_audit(session, by, now, "correct", case_no, party=party, field=field,
                    reason=reason)
    (incident,) = loop.stamp(session, [incident_id], locator=locator)
    return record(session, case_no, by=by, locator=locator, now=now, rules=rules), \
        Changes(incidents=[incident])


def _same(old, new) -> bool:
    if isinstance(old, datetime) and isinstance(new, datetime):
        return old == new
    if old is None or new is None:
        return old is None and new is None
    if isinstance(new, Decimal) or isinstance(old, Decimal):
        return Decimal(str(old)) == Decimal(str(new))
    return old == new


def _shown(value):
    if isinstance(value, datetime):
        return iso_shanghai(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


_PARTY_FIELDS = ("role", "kind", "name", "id_number", "credit_code", "phone", "address")


def _correct_parties(session: Session, incident_id: str, edits, keyring: Keyring
                     ) -> list[tuple[str, object, object]]:
    if edits is None:
        return []
    if not isinstance(edits, list):
        raise DomainError("invalid_field", "parties: a list of edits", "parties")
    rows = {r.position: r._mapping for r in session.execute(
        sa.select(matter_parties).where(matter_parties.c.incident_id == incident_id))}
    next_position = max(rows, default=-1) + 1
    changes = []
    for k, edit in enumerate(edits):
        where = f"parties[{k}]"
        if not isinstance(edit, dict):
            raise DomainError("invalid_field", f"{where}: an edit is an object", where)
        if "add" in edit:
            party = _parse_party(edit["add"], f"{where}.add")
            if party.id_number or party.phone:
                keyring.require()
            _insert_parties(session, incident_id, [party], keyring, start=next_position)
            changes.append((f"parties[{next_position}]", None, party.name))
            next_position += 1
            continue
        position = edit.get("party")
        if isinstance(position, bool) or not isinstance(position, int) or position not in rows:
            raise DomainError("out_of_range", f"{where}.party: no party with that number",
                              f"{where}.party")
        old = rows[position]
        if edit.get("remove") is True:
            session.execute(sa.delete(matter_parties).where(matter_parties.c.id == old["id"]))
            changes.append((f"parties[{position}]", old["name"], None))
            continue
        merged = {f: _plain(old, f) for f in _PARTY_FIELDS}
        touched = [f for f in _PARTY_FIELDS if f in edit]
        if not touched:
            raise DomainError("missing_field", f"{where}: name a field to change, remove or add",
                              where)
        for f in touched:
            merged[f] = edit[f]
        merged = {f: v for f, v in merged.items() if v is not ...}
        party = _parse_party(merged, where)
        values = {}
        for f in touched:
            new = getattr(party, f)
            if f in ("id_number", "phone"):
                if new:
                    keyring.require()
                fresh = _party_row(incident_id, position, party, keyring)
                values.update({f"{f}_enc": fresh[f"{f}_enc"], f"{f}_hash": fresh[f"{f}_hash"],
                               f"{f}_masked": fresh[f"{f}_masked"]})
                changes.append((f"parties[{position}].{f}", old[f"{f}_masked"],
                                fresh[f"{f}_masked"]))
            elif old[f] != new:
                values[f] = new
                changes.append((f"parties[{position}].{f}", old[f], new))
        if values:
            session.execute(sa.update(matter_parties).where(matter_parties.c.id == old["id"])
                            .values(**values))
    return changes


def _plain(row, field: str):
    """A stored party field for re-validation; sealed numbers are kept as they are (…)."""
    if field in ("id_number", "phone"):
        return ...
    return row[field]


def _parse_party(raw, where: str):
    try:
        return schemas.parse(schemas.Party, raw)
    except DomainError as err:
        err.field = f"{where}.{err.field}" if err.field else where
        err.message = f"{where}: {err.message}"
        raise



# --- work lists -------------------------------------------------------------------------------

def _compact(row, *, now: datetime, rules, locator: Locator, node=None) -> dict:
    """A matter as a work list shows it: what it is, where it stands, its clock."""
    from command.matters import handling
    from command.matters.clock import matter_clock
    from command.matters.rules import TIERS

    clock = matter_clock(row, now=now, rules=rules)
    return {
        "case_no": row["case_no"], "id": row["incident_id"], "title": row["title"],
        "type": row["type"], "category": row["category"],
        "category_label": CATEGORY_LABELS.get(row["category"]) if row["category"] else None,
        "status": row["status"], "status_label": STATE_LABELS.get(row["status"]),
        "registered_at": iso_shanghai(row["registered_at"]),
        "tier": row["tier"], "tier_label": TIERS.get(row["tier"]),
        "lead": _unit_ref(locator, row["lead_code"]),
        "township": _unit_ref(locator, row["township_code"]),
        "clock": {"state": clock.state, "state_label": CLOCK_LABELS[clock.state],
                  "due_at": _iso(clock.due_at), "left_seconds": clock.left_seconds},
        "result": row["result"],
        "result_label": handling.RESULT_LABELS.get(row["result"]) if row["result"] else None,
        "followup_due_at": _iso(row["followup_due_at"]),
        "followed_up_at": _iso(row["followed_up_at"]),
        "confirmation": row["confirmation"],
        "node": None if node is None else {"id": node["id"], "role": node["role"],
                                           "state": node["state"],
                                           "ack_by": iso_shanghai(node["ack_by"])},
    }


def _worklist_rows(session: Session, *where):
    stmt = (sa.select(matters, incidents.c.type, incidents.c.category, incidents.c.status,
                      incidents.c.title, incidents.c.township_code)
            .join(incidents, incidents.c.id == matters.c.incident_id).where(*where))
    return session.execute(stmt).mappings().all()


def worklist(session: Session, *, by: Principal, locator: Locator, now: datetime,
             rules=None, limit: int = 200) -> dict:
    """What a user has to do with matters.

    A unit (township, grid, department): the matters routed to it (as lead or assist) that are
    still open, or concluded and awaiting their follow-up or judicial confirmation, clock first.
    The window (desk, duty): matters returned by their lead, matters near or past their limit,
    follow-ups due by the end of today.
    """
    from command.clock import SHANGHAI
    from command.matters import rules as rules_mod
    from command.orders.models import order_nodes

    rules = rules or rules_mod.defaults()
    if by.role in ("desk", "duty", "leader", "admin"):
        returned = _worklist_rows(session, matters.c.lead_code.is_(None),
                                  matters.c.routed_at.isnot(None),
                                  incidents.c.status.in_(("reported", "accepted")))
        open_rows = _worklist_rows(session, matters.c.concluded_at.is_(None),
                                   matters.c.closure.is_(None), matters.c.due_at.isnot(None),
                                   incidents.c.status.notin_(("closed", "merged",
                                                              "false_alarm")))
        end_of_day = (now.astimezone(SHANGHAI).replace(hour=23, minute=59, second=59))
        due = _worklist_rows(session, matters.c.concluded_at.isnot(None),
                             matters.c.followed_up_at.is_(None),
                             matters.c.followup_due_at <= end_of_day,
                             incidents.c.status.in_(("responded", "verified")))
        compact = [_compact(r, now=now, rules=rules, locator=locator) for r in open_rows]
        near = sorted((m for m in compact if m["clock"]["state"] in ("near", "overdue")),
                      key=lambda m: m["clock"]["left_seconds"] or 0)
        return {"returned": [_compact(r, now=now, rules=rules, locator=locator)
                             for r in returned][:limit],
                "near": near[:limit],
                "followups_due": [_compact(r, now=now, rules=rules, locator=locator)
                                  for r in due][:limit]}
    if by.unit_code is None:
        return {"items": []}
    n = order_nodes.c
    nodes = session.execute(
        sa.select(order_nodes).where(n.target_code == by.unit_code, n.role.isnot(None),
                                     n.state.notin_(("cancelled",)))
        .order_by(n.created_at.desc()).limit(limit * 2)).mappings().all()
    latest: dict[str, dict] = {}
    for node in nodes:
        latest.setdefault(node["incident_id"], node)
    if not latest:
        return {"items": []}
    rows = _worklist_rows(session, matters.c.incident_id.in_(list(latest)))
    items = []
    for r in rows:
        node = latest[r["incident_id"]]
        if node["state"] == "returned":
            continue  # back at the window
        waiting = r["concluded_at"] is None or (
            node["role"] == "lead" and (r["followed_up_at"] is None or (
                r["result"] == "agreed" and r["confirmation"] is None)))
        if waiting and r["status"] not in ("closed", "merged", "false_alarm"):
            items.append(_compact(r, now=now, rules=rules, locator=locator, node=node))
    order = {"overdue": 0, "near": 1, "running": 2, "waiting": 3, "concluded": 4, "stopped": 5}
    items.sort(key=lambda m: (order[m["clock"]["state"]], m["clock"]["left_seconds"] or 0))
    return {"items": items[:limit]}
