"""Risk analysis from the database: township scores, hotspots, trends and replay windows.

Every query selects by `occurred_at` (its index bounds the rows read) and aggregates in SQL, so
the cost follows the rows of the window, not the size of the table. Incidents are restricted to
what the reader may see with `command.incidents.service.scope_filter`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.alerts.models import alerts
from command.clock import iso_shanghai
from command.errors import DomainError, Forbidden
from command.incidents.models import incidents
from command.incidents.service import scope_filter
from command.incidents.types import TYPE_CODES, TYPE_LABELS
from command.incidents.workflow import STATE_LABELS
from command.orders.models import order_nodes
from command.risk import hotspots as hexes
from command.risk import replay as replays
from command.risk import score as scoring
from command.risk import trends as trending
from command.units.models import units
from layers.locate import Locator

MAX_HOTSPOT_DAYS = 30
SNAP = 10_000  # hotspot positions are grouped in SQL to 1e-4° (~10 m) before binning


def _scoped(stmt, principal):
    where = scope_filter(principal)
    return stmt if where is None else stmt.where(where)


def _sum(condition):
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def townships(session: Session) -> list[tuple[str, str]]:
    """(code, name) of every township, by code."""
    stmt = (sa.select(units.c.code, units.c.name).where(units.c.level == "township")
            .order_by(units.c.code))
    return [(r.code, r.name) for r in session.execute(stmt)]


# --- risk ---------------------------------------------------------------------------------------

def risk_inputs(session: Session, *, now: datetime, locator: Locator,
                weights: scoring.Weights = scoring.WEIGHTS) -> dict[str, scoring.RiskInputs]:
    """Each township's score inputs, counted in SQL (the same numbers as `score.collect`)."""
    w = weights
    i = incidents.c
    recent = now - timedelta(days=w.days)
    first = recent - timedelta(weeks=w.baseline_weeks)
    backlog_from = now - timedelta(days=w.backlog_days)
    backlog_to = now - timedelta(days=w.backlog_after_days)
    stmt = (sa.select(
        i.township_code, i.grid_code,
        _sum(i.occurred_at >= recent).label("recent"),
        _sum(sa.and_(i.occurred_at < recent, i.occurred_at >= first)).label("before"),
        _sum(sa.and_(i.occurred_at >= recent, i.severity <= 2)).label("major"),
        _sum(sa.and_(i.occurred_at >= recent, i.type == "mass")).label("mass"),
        _sum(sa.and_(i.occurred_at >= backlog_from, i.occurred_at < backlog_to,
                     i.status.not_in(scoring.RESOLVED))).label("backlog"))
        .where(i.occurred_at >= now - timedelta(days=w.history_days),
               i.township_code.is_not(None), i.status.not_in(scoring.NOT_COUNTED))
        .group_by(i.township_code, i.grid_code))
    counts: dict[str, dict] = {}
    for r in session.execute(stmt):
        c = counts.setdefault(r.township_code, {"alerts": {}, "repeat_places": 0})
        for key, value in (("incidents_7d", r.recent), ("incidents_prev_28d", r.before),
                           ("major_7d", r.major), ("mass_7d", r.mass), ("backlog", r.backlog)):
            c[key] = c.get(key, 0) + int(value)

    def township_of(code: str) -> str | None:
        if not locator.has(code):
            return None
        unit = locator.unit(code)
        return code if unit["level"] == "township" else (
            unit["parent"] if unit["level"] == "grid" else None)

    live = sa.select(alerts.c.rule, alerts.c.level, alerts.c.units).where(
        alerts.c.status.in_(scoring.LIVE_ALERTS),
        sa.or_(alerts.c.rule == "repeat_place", alerts.c.rule.not_in(w.alert_rules_elsewhere)))
    for r in session.execute(live):
        for township in {t for u in json.loads(r.units or "[]") if (t := township_of(u))}:
            c = counts.setdefault(township, {"alerts": {}, "repeat_places": 0})
            if r.rule == "repeat_place":  # the watch's own definition of a repeat place
                c["repeat_places"] += 1
            else:
                c["alerts"][r.level] = c["alerts"].get(r.level, 0) + 1

    n = order_nodes.c
    overdue = sa.or_(sa.and_(n.state.in_(scoring.NODE_UNACKED), n.ack_by <= now),
                     sa.and_(n.state.in_(scoring.NODE_UNACKED + scoring.NODE_WORKING),
                             n.due_by <= now))
    stmt = (sa.select(i.township_code, sa.func.count().label("open"), _sum(overdue).label("late"))
            .select_from(order_nodes.join(incidents, incidents.c.id == n.incident_id))
            .where(n.state.in_(scoring.NODE_OPEN), i.township_code.is_not(None))
            .group_by(i.township_code))
    for r in session.execute(stmt):
        c = counts.setdefault(r.township_code, {"alerts": {}, "repeat_places": 0})
        c["overdue_orders"] = int(r.late)
        c["open_orders"] = int(r.open) - int(r.late)
    return {code: scoring.RiskInputs(**c) for code, c in counts.items()}


def risk(session: Session, *, now: datetime, locator: Locator, principal,
         weights: scoring.Weights = scoring.WEIGHTS) -> dict:
    """Every township's risk score with its parts; a township user gets their own only."""
    shown = townships(session)
    if principal is not None and not principal.county_wide:
        if principal.role != "township":
            raise Forbidden("risk scores are for county roles and township staff")
        shown = [(code, name) for code, name in shown if code == principal.unit_code]
    inputs = risk_inputs(session, now=now, locator=locator, weights=weights)
    rows = []
    for code, name in shown:
        x = inputs.get(code, scoring.RiskInputs())
        s = scoring.score(x, weights)
        rows.append({"code": code, "name": name, **s.as_dict(),
                     "inputs": {"incidents_7d": x.incidents_7d,
                                "weekly_mean": round(x.weekly_mean(weights), 2),
                                "major_7d": x.major_7d, "mass_7d": x.mass_7d,
                                "alerts": dict(x.alerts), "repeat_places": x.repeat_places,
                                "open_orders": x.open_orders,
                                "overdue_orders": x.overdue_orders, "backlog": x.backlog}})
    return {"as_of": iso_shanghai(now), "formula": scoring.formula(weights),
            "bands": [{"min": lo, "level": level, "label": f"{colour} · {meaning}"}
                      for lo, level, colour, meaning in scoring.BANDS],
            "townships": rows}


# --- hotspots -----------------------------------------------------------------------------------

def origin(session: Session, locator: Locator) -> tuple[float, float]:
    """A fixed point of the county (its representative point) that centres the hexagon grid."""
    for level in ("county", "township"):
        code = session.execute(sa.select(units.c.code).where(units.c.level == level)
                               .order_by(units.c.code).limit(1)).scalar()
        if code is not None and locator.has(code):
            try:
                return locator.point_in(code)
            except (KeyError, AttributeError, TypeError):
                continue
    return (0.0, 0.0)


def hotspots(session: Session, *, now: datetime, days: int, cell_m: float,
             center: tuple[float, float], principal) -> dict:
    """The last `days` days of incidents counted per hexagon of `cell_m` metres."""
    if not 1 <= days <= MAX_HOTSPOT_DAYS:
        raise DomainError("out_of_range", f"days: 1 … {MAX_HOTSPOT_DAYS}", "days")
    if not hexes.MIN_CELL_M <= cell_m <= hexes.MAX_CELL_M:
        raise DomainError("out_of_range",
                          f"cell: {hexes.MIN_CELL_M:g} … {hexes.MAX_CELL_M:g} metres", "cell")
    i = incidents.c
    x = sa.func.round(i.lon * SNAP).label("x")
    y = sa.func.round(i.lat * SNAP).label("y")
    since = now - timedelta(days=days)
    stmt = _scoped(sa.select(x, y, i.type, sa.func.count().label("n"))
                   .where(i.occurred_at >= since, i.status.not_in(scoring.NOT_COUNTED))
                   .group_by(x, y, i.type), principal)
    rows = session.execute(stmt).all()
    lon = np.array([float(r.x) / SNAP for r in rows])
    lat = np.array([float(r.y) / SNAP for r in rows])
    bins = hexes.hexbin(lon, lat, cell_m=cell_m, origin=center,
                        weights=[int(r.n) for r in rows], groups=[r.type for r in rows])
    geojson = hexes.to_geojson(bins)
    return {"as_of": iso_shanghai(now), "since": iso_shanghai(since), "days": days,
            "cell_m": cell_m, "origin": list(center), "count": int(bins.count.sum()),
            "max": int(bins.count.max()) if len(bins) else 0, "hexagons": len(bins),
            "geojson": geojson}


# --- trends -------------------------------------------------------------------------------------

def _epoch(session: Session, column):
    """Whole seconds since 1970 of a UTC timestamp column, in this database's dialect."""
    if session.get_bind().dialect.name == "sqlite":
        return sa.cast(sa.func.strftime("%s", column), sa.BigInteger)
    return sa.cast(sa.func.floor(sa.extract("epoch", column)), sa.BigInteger)


def trends(session: Session, *, now: datetime, span: str, principal) -> dict:
    """Counts by type per bucket for the current and the previous period (see `trends`)."""
    win = trending.window(now, span)
    i = incidents.c
    step = int(win.step.total_seconds())
    start = int(win.previous_start.timestamp())
    bucket = ((_epoch(session, i.occurred_at) - start) // step).label("bucket")
    counted = sa.and_(i.occurred_at >= win.previous_start, i.occurred_at < win.end,
                      i.status.not_in(scoring.NOT_COUNTED))
    stmt = _scoped(sa.select(bucket, i.type, sa.func.count().label("n")).where(counted)
                   .group_by(bucket, i.type), principal)
    counts = []
    for r in session.execute(stmt):
        k = int(r.bucket)
        if 0 <= k < 2 * win.n:
            counts.append((0, k - win.n, r.type, r.n) if k >= win.n else (1, k, r.type, r.n))
    to_date = session.execute(_scoped(
        sa.select(sa.func.count()).where(i.occurred_at >= win.previous_start,
                                         i.occurred_at < win.previous_cut,
                                         i.status.not_in(scoring.NOT_COUNTED)),
        principal)).scalar_one()
    return trending.series(counts, win, TYPE_CODES, previous_to_date=int(to_date),
                           labels=TYPE_LABELS)


# --- replay -------------------------------------------------------------------------------------

def replay(session: Session, *, start: datetime, end: datetime, locator: Locator, principal,
           limit: int = replays.MAX_ITEMS) -> dict:
    """The incidents that occurred in [start, end), by occurred_at then seq, at most `limit`."""
    i = incidents.c
    stmt = _scoped(sa.select(i.id, i.seq, i.type, i.severity, i.title, i.occurred_at, i.lon,
                             i.lat, i.township_code, i.grid_code, i.outside, i.status)
                   .where(i.occurred_at >= start, i.occurred_at < end)
                   .order_by(i.occurred_at, i.seq).limit(limit + 1), principal)
    rows = session.execute(stmt).all()
    items = [_replay_item(r._mapping, locator) for r in rows[:limit]]
    return {"from": iso_shanghai(start), "to": iso_shanghai(end), "count": len(items),
            "truncated": len(rows) > limit, "items": items}


def _unit_ref(locator: Locator, code: str | None) -> dict | None:
    if code is None:
        return None
    return {"code": code, "name": locator.unit(code)["name"] if locator.has(code) else code}


def _replay_item(row, locator: Locator) -> dict:
    return {
        "id": row["id"], "seq": row["seq"], "type": row["type"],
        "type_label": TYPE_LABELS.get(row["type"], row["type"]), "severity": row["severity"],
        "title": row["title"], "occurred_at": iso_shanghai(row["occurred_at"]),
        "lon": row["lon"], "lat": row["lat"],
        "township": _unit_ref(locator, row["township_code"]),
        "grid": _unit_ref(locator, row["grid_code"]), "outside": bool(row["outside"]),
        "status": row["status"], "status_label": STATE_LABELS.get(row["status"], row["status"]),
    }
