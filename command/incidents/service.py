"""Incidents: validate, locate and store reports idempotently; list changes by sequence number."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.clock import iso_shanghai
from command.db import next_seq
from command.errors import DomainError
from command.feeds.service import Feed
from command.incidents.models import incidents
from command.incidents.schemas import Report, fingerprint, mask_phone, validate
from command.incidents.types import TYPE_LABELS
from command.incidents.workflow import STATE_LABELS
from command.matters.categories import MATTER_TYPES, category_label, channel_label
from layers.crs import to_wgs84
from layers.locate import Locator


@dataclass
class Outcome:
    """What happened to one report: stored, a duplicate, or refused with an error."""

    incident: dict | None = None
    duplicate: bool = False
    error: DomainError | None = None

    def as_ack(self) -> dict:
        """The wire form of the outcome."""
        if self.error is not None:
            return {"ok": False, "error": self.error.as_dict()}
        return {"ok": True, "incident": self.incident, "duplicate": self.duplicate}


@dataclass
class Placed:
    report: Report
    lon: float
    lat: float
    fingerprint: str


def ingest(session: Session, feed: Feed, raws: list[Any], *, locator: Locator, now: datetime,
           max_future: timedelta = timedelta(minutes=5)) -> tuple[list[Outcome], list[dict]]:
    """Store a feed's reports in the caller's transaction.

    Returns one outcome per report, in order, and the incidents that are new (to publish once the
    caller has committed). Sequence numbers are reserved last, so the counter lock is short.
    """
    outcomes: list[Outcome] = [Outcome() for _ in raws]
    valid: dict[int, Report] = {}
    for i, raw in enumerate(raws):
        try:
            report = validate(raw, now=now, max_future=max_future)
            if report.grid is not None and not _is_grid(locator, report.grid):
                raise DomainError("invalid_field", f"grid: no grid with code {report.grid!r}", "grid")
            valid[i] = report
        except DomainError as err:
            outcomes[i].error = err
    placed = _convert(valid, locator)  # WGS-84 positions, vectorised per datum

    existing = _existing(session, feed.id, [p.report.id for p in placed.values()])
    fresh: dict[int, Placed] = {}
    first_in_batch: dict[str, int] = {}  # source id -> index of its first new report
    repeats: dict[int, int] = {}  # index -> index of the same report earlier in this batch
    for i, p in placed.items():
        prior = existing.get(p.report.id)
        earlier = first_in_batch.get(p.report.id)
        if prior is not None:
            if prior["fingerprint"] == p.fingerprint:
                outcomes[i] = Outcome(incident=row_dict(prior, feed.name, locator), duplicate=True)
            else:
                outcomes[i].error = _conflict(p.report.id)
        elif earlier is not None:
            if placed[earlier].fingerprint == p.fingerprint:
                repeats[i] = earlier
            else:
                outcomes[i].error = _conflict(p.report.id)
        else:
            first_in_batch[p.report.id] = i
            fresh[i] = p

    created = _insert(session, feed, fresh, locator=locator, now=now)
    for i, incident in created.items():
        outcomes[i].incident = incident
    for i, earlier in repeats.items():
        outcomes[i] = Outcome(incident=created[earlier], duplicate=True)
    return outcomes, sorted(created.values(), key=lambda incident: incident["seq"])


def _conflict(source_id: str) -> DomainError:
    return DomainError("conflict",
                       f"id {source_id!r} was already reported with different content; "
                       "the first report stays", "id")


def _convert(reports: dict[int, Report], locator: Locator) -> dict[int, Placed]:
    """Turn every report's position into WGS-84 (grid-only reports get a point inside the grid)."""
    out: dict[int, Placed] = {}
    by_crs: dict[str, list[int]] = {}
    for i, r in reports.items():
        if r.lon is None or r.lat is None:
            lon, lat = locator.point_in(r.grid)
            out[i] = Placed(r, lon, lat, fingerprint(r, lon, lat))
        else:
            by_crs.setdefault(r.crs, []).append(i)
    for crs, idx in by_crs.items():
        lons = np.array([reports[i].lon for i in idx], dtype=float)
        lats = np.array([reports[i].lat for i in idx], dtype=float)
        lons, lats = to_wgs84(lons, lats, crs)
        for i, lon, lat in zip(idx, lons.tolist(), lats.tolist()):
            out[i] = Placed(reports[i], lon, lat, fingerprint(reports[i], lon, lat))
    return out


def _is_grid(locator: Locator, code: str) -> bool:
    return locator.has(code) and locator.unit(code)["level"] == "grid"


def _existing(session: Session, feed_id: int, source_ids: list[str]) -> dict[str, dict]:
    """Stored rows of this feed with these source ids, by source id."""
    found: dict[str, dict] = {}
    unique = list(dict.fromkeys(source_ids))
    for start in range(0, len(unique), 500):
        stmt = sa.select(incidents).where(incidents.c.feed_id == feed_id,
                                          incidents.c.source_id.in_(unique[start:start + 500]))
        found.update({row.source_id: dict(row._mapping) for row in session.execute(stmt)})
    return found


def _insert(session: Session, feed: Feed, fresh: dict[int, Placed], *, locator: Locator,
            now: datetime) -> dict[int, dict]:
    if not fresh:
        return {}
    order = sorted(fresh)
    items = [fresh[i] for i in order]
    free = [j for j, p in enumerate(items) if p.report.lon is not None and p.report.lat is not None]
    townships: list = [None] * len(items)
    grids: list = [None] * len(items)
    outside = [False] * len(items)
    if free:
        found = locator.locate(np.array([items[j].lon for j in free]),
                               np.array([items[j].lat for j in free]))
        for k, j in enumerate(free):
            townships[j], grids[j], outside[j] = found.township[k], found.grid[k], bool(found.outside[k])
    for j, p in enumerate(items):
        if p.report.lon is None or p.report.lat is None:  # grid-only report: the grid itself
            grids[j] = p.report.grid
            townships[j] = locator.unit(p.report.grid)["parent"]

    rows = []
    for j, p in enumerate(items):
        r = p.report
        rows.append({
            "id": uuid.uuid4().hex, "seq": None, "feed_id": feed.id, "source_id": r.id,
            "fingerprint": p.fingerprint, "type": r.type, "severity": r.severity,
            "title": r.title, "description": r.description or "", "people": r.people,
            "reporter": r.reporter, "phone": r.phone, "occurred_at": r.occurred,
            "received_at": now, "lon": p.lon, "lat": p.lat, "township_code": townships[j],
            "grid_code": grids[j], "outside": outside[j], "status": "reported",
            "channel": "feed", "category": r.category, "case_no": None,
            "approximate": r.approximate,
        })
    insert_incidents(session, rows, locator=locator)
    return {i: row_dict(row, feed.name, locator) for i, row in zip(order, rows)}


def insert_incidents(session: Session, rows: list[dict], *, locator: Locator,
                     records: bool = True) -> None:
    """Insert new incident rows: matters get their case numbers (and, with `records`, their
    bare matter records), then every row its seq (reserved last: the counter stays locked until
    commit). A row without a `source_id` takes its case number (or id) as one."""
    from command.matters import numbers

    numbers.register_new(session, rows, prefix=numbers.prefix(locator))
    first = next_seq(session, len(rows))
    for j, row in enumerate(rows):
        row["seq"] = first + j
        if row.get("source_id") is None:
            row["source_id"] = row.get("case_no") or row["id"]
    session.execute(sa.insert(incidents), rows)
    if records:
        numbers.insert_records(session, rows)


def row_dict(row: dict, feed_name: str | None, locator: Locator) -> dict:
    """The wire form of an incident from a mapping of its columns (phone masked)."""
    category = row.get("category")
    return {
        "id": row["id"], "seq": row["seq"], "feed": feed_name, "source_id": row["source_id"],
        "type": row["type"], "type_label": TYPE_LABELS.get(row["type"], row["type"]),
        "severity": row["severity"], "title": row["title"], "description": row["description"],
        "people": row["people"], "reporter": row["reporter"], "phone": mask_phone(row["phone"]),
        "occurred_at": iso_shanghai(row["occurred_at"]),
        "received_at": iso_shanghai(row["received_at"]),
        "lon": row["lon"], "lat": row["lat"],
        "township": _unit_ref(locator, row["township_code"]),
        "grid": _unit_ref(locator, row["grid_code"]),
        "outside": bool(row["outside"]), "status": row["status"],
        "status_label": STATE_LABELS.get(row["status"], row["status"]),
        "level": row.get("level") or "grid", "merged_into": row.get("merged_into"),
        "rating": row.get("rating"),
        "case_no": row.get("case_no"), "channel": row.get("channel") or "feed",
        "channel_label": channel_label(row.get("channel") or "feed"),
        "category": category, "category_label": category_label(category),
        "approximate": bool(row.get("approximate")),
    }


def _unit_ref(locator: Locator, code: str | None) -> dict | None:
    if code is None:
        return None
    try:
        return {"code": code, "name": locator.unit(code)["name"]}
    except KeyError:
        return {"code": code, "name": code}


def scope_filter(principal):
    """A WHERE clause restricting incidents to what `principal` may see (None: everything)."""
    from command.orders.models import order_nodes

    if principal is None or principal.county_wide:
        return None
    if principal.matters_only:
        return incidents.c.type.in_(MATTER_TYPES)
    ordered = incidents.c.id.in_(sa.select(order_nodes.c.incident_id)
                                 .where(order_nodes.c.target_code == principal.unit_code))
    if principal.role == "township":
        return sa.or_(incidents.c.township_code == principal.unit_code, ordered)
    if principal.role == "grid":
        return sa.or_(incidents.c.grid_code == principal.unit_code, ordered)
    if principal.role == "dept":
        return ordered
    return sa.false()


def since(session: Session, seq: int, *, limit: int, locator: Locator, principal=None,
          where=None) -> dict:
    """The changes after `seq` that `principal` may see (and `where` keeps), ascending, at
    most `limit`.

    `last_seq` is how far the reader has examined: with a scope, changes it may not see are
    skipped, so a screen never waits for a number it will not be shown.
    """
    from command.db import last_seq
    from command.feeds.models import feeds

    examined = last_seq(session)  # read first: every seq up to it is committed
    stmt = (sa.select(incidents, feeds.c.name.label("feed_name"))
            .outerjoin(feeds, feeds.c.id == incidents.c.feed_id)
            .where(incidents.c.seq > seq, incidents.c.seq <= examined)
            .order_by(incidents.c.seq).limit(limit))
    scope = scope_filter(principal)
    if where is not None:
        scope = where if scope is None else sa.and_(scope, where)
    where = scope
    if where is not None:
        stmt = stmt.where(where)
    items = [row_dict(r._mapping, r.feed_name, locator) for r in session.execute(stmt)]
    if len(items) == limit:
        return {"items": items, "last_seq": items[-1]["seq"]}
    return {"items": items, "last_seq": max(examined, seq) if where is not None or items else seq}


def recent(session: Session, *, after: datetime, locator: Locator, limit: int = 20000,
           principal=None) -> list[dict]:
    """Incidents that occurred after `after`, oldest first (a screen's opening state)."""
    from command.feeds.models import feeds

    stmt = (sa.select(incidents, feeds.c.name.label("feed_name"))
            .outerjoin(feeds, feeds.c.id == incidents.c.feed_id)
            .where(incidents.c.occurred_at >= after)
            .order_by(incidents.c.occurred_at.desc()).limit(limit))
    where = scope_filter(principal)
    if where is not None:
        stmt = stmt.where(where)
    rows = [row_dict(r._mapping, r.feed_name, locator) for r in session.execute(stmt)]
    rows.reverse()
    return rows


def relocate_all(session: Session, *, locator: Locator) -> int:
    """Locate every stored incident again (after a boundary import); return how many changed.

    Each changed incident gets a new sequence number so that screens pick up the change.
    """
    rows = session.execute(sa.select(incidents.c.id, incidents.c.lon, incidents.c.lat,
                                      incidents.c.township_code, incidents.c.grid_code,
                                      incidents.c.outside).order_by(incidents.c.seq)).all()
    if not rows:
        return 0
    found = locator.locate(np.array([r.lon for r in rows]), np.array([r.lat for r in rows]))
    changed = []
    for k, r in enumerate(rows):
        new = (found.township[k], found.grid[k], bool(found.outside[k]))
        if new != (r.township_code, r.grid_code, bool(r.outside)):
            changed.append((r.id, new))
    if changed:
        first = next_seq(session, len(changed))
        for j, (incident_id, (township, grid, out)) in enumerate(changed):
            session.execute(sa.update(incidents).where(incidents.c.id == incident_id).values(
                township_code=township, grid_code=grid, outside=out, seq=first + j))
    return len(changed)
