"""Briefing generation time: the month brief over a month of 100k incidents, in every format.

A fresh SQLite data dir (or ``--database-url``) gets the demo county and, bulk-inserted, two
months of synthetic incidents (the month briefed and the one before, for the comparison) with
their timelines, orders, order history and alerts, shaped like a busy county: 2 % Ⅰ/Ⅱ级, 1 %
mass, 60 % verified, half of those rated, orders on every major incident, a tenth of the nodes
late. Then, timed separately: reading the brief (``data.period_brief``), drawing the charts,
and composing + rendering each format. ``python -m bench.brief`` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

MONTH = "2026-10"
INCIDENTS = 100_000
TARGET_S = 20.0  # per format, data + charts + render
FORMATS = ("md", "html", "pdf", "docx")
_TYPES = (("dispute", 40), ("petition", 15), ("complaint", 15), ("legal", 8), ("psych", 4),
          ("emergency", 6), ("public_safety", 6), ("mass", 1), ("other", 5))
_CHUNK = 10_000


def run(n: int = INCIDENTS, *, month: str = MONTH, database_url: str | None = None,
        previous: bool = True, formats=FORMATS, keep: bool = False) -> dict:
    """Seed two months, time the month brief per format; the figures."""
    from command import config
    from command.briefing import charts, compose, data, periods, render
    from command.bus import InProcessBus
    from command.clock import FixedClock
    from command.core import Core

    tmp = Path(tempfile.mkdtemp(prefix="cmdcenter-brief-bench-"))
    period = periods.parse("month", month, now=datetime.now(timezone.utc))
    now = period.end_utc + timedelta(hours=10)
    core = Core(config.load(data_dir=tmp / "data", database_url=database_url),
                clock=FixedClock(now), bus=InProcessBus())
    out: dict = {"incidents": n, "month": period.key, "formats": {}, "error": None}
    try:
        started = time.perf_counter()
        counts = seed(core, period, n, previous=previous)
        out["seed_s"] = time.perf_counter() - started
        out.update(counts)

        started = time.perf_counter()
        with core.read() as session:
            brief = data.period_brief(session, period, now=now)
        out["data_s"] = time.perf_counter() - started
        out["total"] = brief.total
        started = time.perf_counter()
        images = charts.period_charts(brief)
        out["charts_s"] = time.perf_counter() - started
        for fmt in formats:
            if fmt == "pdf" and render.find_browser() is None:
                out["formats"][fmt] = None  # no Chromium here
                continue
            started = time.perf_counter()
            content = render.render(compose.period_doc(brief, images), fmt)
            out["formats"][fmt] = time.perf_counter() - started
            out.setdefault("bytes", {})[fmt] = len(content)
    except Exception as exc:  # noqa: BLE001 - the bench prints it in its table
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        core.close()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def total_s(result: dict, fmt: str) -> float | None:
    """Seconds to make one format from scratch: read + charts + compose and render."""
    seconds = result["formats"].get(fmt)
    if seconds is None:
        return None
    return result["data_s"] + result["charts_s"] + seconds


def ok(result: dict) -> bool:
    """Every format made (PDF may be missing for want of Chromium) within the target."""
    if result["error"]:
        return False
    return all(total_s(result, f) is None or total_s(result, f) <= TARGET_S
               for f in result["formats"])


def summary(result: dict) -> str:
    """One table cell: per-format totals, then what they are made of."""
    if result["error"]:
        return result["error"]
    cells = []
    for fmt in result["formats"]:
        t = total_s(result, fmt)
        cells.append(f"{fmt} {t:.1f}" if t is not None else f"{fmt} —")
    return (" · ".join(cells) + f"  [read {result['data_s']:.1f} s + charts "
            f"{result['charts_s']:.1f} s; {result['incidents']:,} incidents in "
            f"{result['month']}, seeded in {result['seed_s']:.0f} s]")


# --- synthetic data ---------------------------------------------------------------------------

def seed(core, period, n: int, *, previous: bool = True) -> dict:
    """Bulk-insert `n` incidents in `period` (and `n` in the one before) with their history."""
    import sqlalchemy as sa

    from command.alerts.models import alerts
    from command.db import counters
    from command.feeds.models import feeds
    from command.incidents.events import incident_events
    from command.incidents.models import incidents
    from command.orders.models import order_node_events, order_nodes, orders
    from command.units import service as units_service

    rng = random.Random(20261001)
    with core.read() as session:
        unit_rows = units_service.get_all(session)
    grids = [(u["code"], u["parent"]) for u in unit_rows if u["level"] == "grid"]
    townships = [u["code"] for u in unit_rows if u["level"] == "township"]
    # a few busy grids: incidents cluster, as they do
    weights = [rng.paretovariate(1.2) for _ in grids]
    types = [t for t, _ in _TYPES]
    type_weights = [w for _, w in _TYPES]
    stats = {"orders": 0, "nodes": 0, "alerts": 0}
    seq = 0
    with core.write() as session, session.begin():
        feed_id = session.execute(sa.insert(feeds).values(
            name="bench", unit_code="DEMO", token_hash=uuid.uuid4().hex,
            created_at=period.start_utc - timedelta(days=60)).returning(feeds.c.id)).scalar_one()
    spans = [period.previous()] if previous else []
    for span in spans + [period]:
        start, seconds = span.start_utc, (span.end_utc - span.start_utc).total_seconds()
        # reports arrive in time order, so rows lie on disk roughly in occurred_at order
        offsets = sorted(rng.random() * seconds for _ in range(n))
        for first in range(0, n, _CHUNK):
            rows, events, order_rows, node_rows, node_events = [], [], [], [], []
            for k in range(first, min(n, first + _CHUNK)):
                seq += 1
                occurred = start + timedelta(seconds=offsets[k])
                received = occurred + timedelta(seconds=rng.randint(5, 600))
                grid, town = rng.choices(grids, weights)[0]
                type_ = rng.choices(types, type_weights)[0]
                severity = rng.choices((1, 2, 3, 4), (0.3, 1.7, 10, 88))[0]
                people = rng.choice((None, None, 1, 2, 3, 5, 8)) if type_ != "mass" \
                    else rng.randint(20, 200)
                roll = rng.random()
                status = ("closed" if roll < 0.45 else "followed_up" if roll < 0.55 else
                          "verified" if roll < 0.6 else "merged" if roll < 0.61 else
                          "false_alarm" if roll < 0.63 else
                          rng.choice(("reported", "accepted", "dispatched", "in_progress")))
                rating = rng.choices((1, 2, 3, 4, 5), (3, 5, 12, 30, 50))[0] \
                    if status in ("followed_up", "closed") and rng.random() < 0.8 else None
                iid = uuid.uuid4().hex
                rows.append({
                    "id": iid, "seq": seq, "feed_id": feed_id, "source_id": f"b-{seq}",
                    "fingerprint": iid, "type": type_, "severity": severity,
                    "title": f"{type_} {seq}", "description": "", "people": people,
                    "reporter": None, "phone": None, "occurred_at": occurred,
                    "received_at": received, "lon": 120.2, "lat": 30.05,
                    "township_code": town, "grid_code": grid, "outside": False,
                    "status": status, "merged_into": None, "rating": rating, "level": "grid"})
                if status in ("verified", "followed_up", "closed"):
                    events.append({"incident_id": iid, "by": "bench", "from_state": "responded",
                                   "to_state": "verified", "note": "",
                                   "at": received + timedelta(minutes=rng.randint(30, 4000)),
                                   "data": None})
                if severity <= 2 or type_ == "mass" or (people or 0) >= 30:
                    _orders(rng, iid, received, severity, grid, town, townships, order_rows,
                            node_rows, node_events)
            with core.write() as session, session.begin():
                session.execute(sa.insert(incidents), rows)
                if events:
                    session.execute(sa.insert(incident_events), events)
                if order_rows:
                    session.execute(sa.insert(orders), order_rows)
                    session.execute(sa.insert(order_nodes), node_rows)
                    session.execute(sa.insert(order_node_events), node_events)
            stats["orders"] += len(order_rows)
            stats["nodes"] += len(node_rows)
        alert_rows = _alerts(rng, span, max(1, n // 50))
        with core.write() as session, session.begin():
            session.execute(sa.insert(alerts), alert_rows)
        stats["alerts"] += len(alert_rows)
    with core.write() as session, session.begin():
        session.execute(sa.update(counters).where(counters.c.name == "seq").values(value=seq))
    return stats


def _orders(rng, incident_id, received, severity, grid, town, townships, order_rows, node_rows,
            node_events) -> None:
    order_id = uuid.uuid4().hex
    issued = received + timedelta(minutes=rng.randint(1, 20))
    order_rows.append({"id": order_id, "incident_id": incident_id, "issued_by": "bench-leader",
                       "issued_at": issued, "instruction": "立即到场调处", "priority": "urgent"})
    ack_min, due_min = {1: (5, 60), 2: (10, 120), 3: (30, 480), 4: (60, 1440)}[severity]
    targets = [town, "dept.police"] if rng.random() < 0.5 else [town]
    for target in targets:
        node_id = uuid.uuid4().hex
        late_ack = rng.random() < 0.1
        late_due = rng.random() < 0.1
        acked = issued + timedelta(minutes=ack_min * (rng.uniform(1.1, 3) if late_ack
                                                      else rng.uniform(0.1, 0.9)))
        done = issued + timedelta(minutes=due_min * (rng.uniform(1.1, 3) if late_due
                                                     else rng.uniform(0.3, 0.95)))
        done = max(done, acked + timedelta(minutes=1))
        node_rows.append({
            "id": node_id, "seq": -(uuid.uuid4().int >> 66), "order_id": order_id,
            "parent_id": None, "incident_id": incident_id, "target_code": target,
            "state": "completed", "instruction": "立即到场调处", "priority": "urgent",
            "ack_by": issued + timedelta(minutes=ack_min),
            "due_by": issued + timedelta(minutes=due_min), "acked_by": "bench",
            "result": "已处置", "reason": None, "created_at": issued, "ack_alerted": late_ack,
            "ack_escalated": False, "due_alerted": late_due, "due_escalated": False})
        for state, at in (("issued", issued), ("acknowledged", acked), ("completed", done)):
            node_events.append({"node_id": node_id, "state": state, "by": "bench", "at": at,
                                "note": ""})


def _alerts(rng, span, n: int) -> list[dict]:
    start, seconds = span.start_utc, (span.end_utc - span.start_utc).total_seconds()
    rules = ("overdue", "escalated", "severity", "mass_gathering", "spike", "repeat_place",
             "feed_silence")
    rows = []
    for _ in range(n):
        raised = start + timedelta(seconds=rng.random() * seconds)
        rows.append({
            "id": uuid.uuid4().hex, "seq": -(uuid.uuid4().int >> 66), "key": uuid.uuid4().hex,
            "rule": rng.choice(rules), "level": rng.choice(("red", "orange", "yellow", "blue")),
            "units": json.dumps(["DEMO"]), "incidents": "[]", "message": "bench",
            "status": rng.choice(("open", "acknowledged", "dismissed", "resolved", "resolved")),
            "raised_at": raised, "updated_at": raised, "note": None, "acted_by": None})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.brief", description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=INCIDENTS)
    parser.add_argument("--month", default=MONTH)
    parser.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir")
    args = parser.parse_args(argv)
    result = run(args.incidents, month=args.month, database_url=args.database_url,
                 keep=args.keep)
    print(summary(result))
    print(json.dumps({k: v for k, v in result.items()}, ensure_ascii=False, default=str))
    return 0 if ok(result) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
