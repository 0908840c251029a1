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
from command.incidents.models import incidents
from command.incidents.schemas import (FieldReport, Report, field_only, fingerprint, mask_phone,
                                      validate)
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


@dataclass(frozen=True)
class Source:
    """Who sent reports: a feed (its id and name) or a signed-in user on a phone (their name).

    `(feed, id)` and `(user, id)` are each idempotent keys.
    """

    feed_id: int | None = None
    feed_name: str | None = None
    user: str | None = None

    @classmethod
    def of(cls, sender) -> "Source":
        """A Source for a Feed, or the Source itself."""
        if isinstance(sender, Source):
            return sender
        return cls(feed_id=sender.id, feed_name=sender.name)

    @property
    def key(self) -> tuple:
        """What requests are grouped and de-duplicated by."""
        return ("feed", self.feed_id) if self.user is None else ("user", self.user)

    @property
    def channel(self) -> str:
        return "feed" if self.user is None else "grid"


@dataclass
class Placed:
    report: Report
    lon: float
    lat: float
    fingerprint: str


def ingest(session: Session, feed, raws: list[Any], *, locator: Locator, now: datetime,
           max_future: timedelta = timedelta(minutes=5), keyring=None
           ) -> tuple[list[Outcome], list[dict]]:
    """Store the reports of a feed (or a user's phone: a Source with `user`) in the caller's
    transaction.

    Returns one outcome per report, in order, and the incidents that are new (to publish once the
    caller has committed). Sequence numbers are reserved last, so the counter lock is short.
    A phone's report may carry a matter's parties (stored with `keyring`) and its closure on
    the spot.
    """
    source = Source.of(feed)
    schema = FieldReport if source.user is not None else Report
    outcomes: list[Outcome] = [Outcome() for _ in raws]
    valid: dict[int, Report] = {}
    for i, raw in enumerate(raws):
        try:
            report = validate(raw, now=now, max_future=max_future, schema=schema)
            if field_only(report, "parties") and keyring is not None and any(
                    p.id_number or p.phone for p in report.parties):
                keyring.require()
            if report.grid is not None and not _is_grid(locator, report.grid):
                raise DomainError("invalid_field", f"grid: no grid with code {report.grid!r}", "grid")
            valid[i] = report
        except DomainError as err:
            outcomes[i].error = err
    placed = _convert(valid, locator)  # WGS-84 positions, vectorised per datum

    existing = _existing(session, source, [p.report.id for p in placed.values()])
    fresh: dict[int, Placed] = {}
    first_in_batch: dict[str, int] = {}  # source id -> index of its first new report
    repeats: dict[int, int] = {}  # index -> index of the same report earlier in this batch
    for i, p in placed.items():
        prior = existing.get(p.report.id)
        earlier = first_in_batch.get(p.report.id)
        if prior is not None:
            if prior["fingerprint"] == p.fingerprint:
                outcomes[i] = Outcome(incident=row_dict(prior, source.feed_name, locator),
                                      duplicate=True)
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

    created = _insert(session, source, fresh, locator=locator, now=now, keyring=keyring)
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


def _existing(session: Session, source: Source, source_ids: list[str]) -> dict[str, dict]:
    """Stored rows of this feed (or user) with these source ids, by source id."""
    found: dict[str, dict] = {}
    unique = list(dict.fromkeys(source_ids))
    mine = incidents.c.feed_id == source.feed_id if source.user is None else \
        incidents.c.reporter_user == source.user
    for start in range(0, len(unique), 500):
        stmt = sa.select(incidents).where(mine,
                                          incidents.c.source_id.in_(unique[start:start + 500]))
        found.update({row.source_id: dict(row._mapping) for row in session.execute(stmt)})
    return found


def _insert(session: Session, source: Source, fresh: dict[int, Placed], *, locator: Locator,
            now: datetime, keyring=None) -> dict[int, dict]:
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
        closure = field_only(r, "closure")
        rows.append({
            "id": uuid.uuid4().hex, "seq": None, "feed_id": source.feed_id, "source_id": r.id,
            "fingerprint": p.fingerprint, "type": r.type, "severity": r.severity,
            "title": r.title, "description": r.description or "", "people": r.people,
            "reporter": r.reporter, "phone": r.phone, "occurred_at": r.occurred,
            "received_at": now, "lon": p.lon, "lat": p.lat, "township_code": townships[j],
            "grid_code": grids[j], "outside": outside[j],
            "status": "closed" if closure else "reported",
            "channel": source.channel, "category": r.category, "case_no": None,
            "approximate": r.approximate, "reporter_user": source.user,
            "position": field_only(r, "position"), "accuracy_m": field_only(r, "accuracy_m"),
            "photo_count": 0,
        })
    insert_incidents(session, rows, locator=locator)
    if source.user is not None:
        from command.matters.service import record_field_matters

        record_field_matters(session, [(row, fresh[i].report) for i, row in zip(order, rows)],
                             user=source.user, keyring=keyring, now=now)
        _attach_waiting_photos(session, source.user, rows, now=now)
    return {i: row_dict(row, source.feed_name, locator) for i, row in zip(order, rows)}


def _attach_waiting_photos(session: Session, user: str, rows: list[dict], *,
                           now: datetime) -> None:
    """Photos a phone sent before its report: attach them now (in the report's own seq)."""
    from command.photos import service as photos

    for row in rows:
        for sha in photos.waiting_for(session, user, f"report:{row['source_id']}"):
            photos.attach_to_incident(session, row["id"], sha, by=user, now=now)
        found = photos.of_incidents(session, [row["id"]]).get(row["id"], [])
        row["photos"], row["photo_count"] = found, len(found)


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
        "reporter_user": row.get("reporter_user"), "position": row.get("position"),
        "accuracy_m": row.get("accuracy_m"), "photos": row.get("photos", []),
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
    mine = incidents.c.reporter_user == principal.name  # a user sees what they reported
    if principal.matters_only:
        return sa.or_(incidents.c.type.in_(MATTER_TYPES), mine)
    ordered = incidents.c.id.in_(sa.select(order_nodes.c.incident_id)
                                 .where(order_nodes.c.target_code == principal.unit_code))
    if principal.role == "township":
        return sa.or_(incidents.c.township_code == principal.unit_code, ordered, mine)
    if principal.role == "grid":
        return sa.or_(incidents.c.grid_code == principal.unit_code, ordered, mine)
    if principal.role == "dept":
        return sa.or_(ordered, mine)
    return mine


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
    rows = session.execute(stmt).all()
    items = with_photos(session, [(r._mapping, row_dict(r._mapping, r.feed_name, locator))
                                  for r in rows])
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
    rows = with_photos(session, [(r._mapping, row_dict(r._mapping, r.feed_name, locator))
                                 for r in session.execute(stmt)])
    rows.reverse()
    return rows


def with_photos(session: Session, pairs: list[tuple]) -> list[dict]:
    """The wire dicts of (row, dict) pairs, with the photos of the rows that have some."""
    ids = [row["id"] for row, _ in pairs if row.get("photo_count")]
    if ids:
        from command.photos import service as photos

        found = photos.of_incidents(session, ids)
        for row, item in pairs:
            if row.get("photo_count"):
                item["photos"] = found.get(row["id"], [])
    return [item for _, item in pairs]


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


def by_user_source(session: Session, user: str, source_id: str) -> str | None:
    """The id of the incident a user reported under their own id, if it has arrived."""
    return session.execute(sa.select(incidents.c.id).where(
        incidents.c.reporter_user == user, incidents.c.source_id == source_id)).scalar()


def mine(session: Session, user: str, *, limit: int, locator: Locator) -> list[dict]:
    """A user's own reports, newest first, each with its progress (the loop's moves) and the
    center's feedback (the notes of those moves)."""
    from command.feeds.models import feeds
    from command.incidents.events import incident_events

    stmt = (sa.select(incidents, feeds.c.name.label("feed_name"))
            .outerjoin(feeds, feeds.c.id == incidents.c.feed_id)
            .where(incidents.c.reporter_user == user)
            .order_by(incidents.c.received_at.desc(), incidents.c.seq.desc()).limit(limit))
    rows = session.execute(stmt).all()
    items = with_photos(session, [(r._mapping, row_dict(r._mapping, r.feed_name, locator))
                                  for r in rows])
    progress: dict[str, list[dict]] = {i["id"]: [] for i in items}
    ids = list(progress)
    for start in range(0, len(ids), 500):
        for e in session.execute(sa.select(incident_events)
                                 .where(incident_events.c.incident_id.in_(ids[start:start + 500]))
                                 .order_by(incident_events.c.id)):
            progress[e.incident_id].append({"at": iso_shanghai(e.at), "to": e.to_state,
                                            "to_label": STATE_LABELS.get(e.to_state, e.to_state),
                                            "note": e.note})
    for item in items:
        item["progress"] = progress[item["id"]]
    return items
