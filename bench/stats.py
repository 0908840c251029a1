"""The center's figures over a year of 200k matters, and routing a matter, on SQLite and
PostgreSQL.

`python -m bench.stats [--count N] [--db sqlite|postgres|both]` bulk-loads N matters a year
(default 200,000) for two years — the year measured and the year before it, which the figures
compare against — with every outcome, leads, follow-ups and legal limits, into a fresh
database, then:

- times the figures of the last 365 days (`command.matters.stats.figures`, by department,
  township, category and channel; each the median of five warm runs, and the slowest run of
  all), target ≤ 2 s;
- starts a real `cmdcenter serve` on that database and times the same through
  `GET /api/v1/stats/matters?by=township` (and `&format=xlsx`);
- registers matters at the window and routes each (`POST /api/v1/matters/{case_no}/route`,
  a lead and an assisting unit), target p99 ≤ 200 ms.

PostgreSQL uses CMDCENTER_DATABASE_URL's server (default postgresql://postgres@127.0.0.1/test)
with a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import requests
import sqlalchemy as sa

from bench.server import BenchServer

COUNT = 200_000
ROUTES = 200
TARGET_FIGURES_S = 2.0
TARGET_ROUTE_P99_MS = 200.0
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
BATCH = 20_000
END = date(2026, 11, 30)  # the last local day of the year measured
OUTCOMES = {  # type -> (result, weight)
    "dispute": (("agreed", 70), ("not_agreed", 18), ("withdrawn", 12)),
    "petition": (("supported", 30), ("partly_supported", 25), ("not_supported", 35),
                 ("withdrawn", 10)),
    "complaint": (("substantiated", 55), ("unsubstantiated", 40), ("withdrawn", 5)),
    "legal": (("served", 95), ("withdrawn", 5)),
}
TYPES = (("dispute", 60), ("petition", 15), ("complaint", 12), ("legal", 13))
CHANNELS = (("visit", 45), ("phone", 20), ("online", 15), ("letter", 5), ("grid", 10),
            ("referral", 5))
LIMITS = {"dispute": 30, "petition": 60, "complaint": 30, "legal": 30}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def _pick(rng: random.Random, table):
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def bulk_load(core, per_year: int, *, seed: int = 11) -> int:
    """Write `per_year` matters a year for two years straight into the tables (no parties);
    return how many."""
    from command.db import counters
    from command.incidents.models import incidents
    from command.matters.categories import CATEGORY_LABELS
    from command.matters.models import matters

    rng = random.Random(seed)
    locator = core.locator()
    grids = [c for c in locator._units if locator.unit(c)["level"] == "grid"]
    townships = sorted({locator.unit(g)["parent"] for g in grids})
    depts = [c for c in locator._units if locator.unit(c)["level"] == "dept"]
    points = {g: locator.point_in(g) for g in grids}
    cats = list(CATEGORY_LABELS)
    end = datetime(END.year, END.month, END.day, 16, 0, tzinfo=UTC)  # local midnight after END
    start = end - timedelta(days=730)
    span = (end - start).total_seconds()
    total = 2 * per_year
    seq, made, numbers = 0, 0, {}
    started = time.monotonic()
    while made < total:
        n = min(BATCH, total - made)
        inc_rows, matter_rows = [], []
        for at in sorted(start + timedelta(seconds=rng.random() * span) for _ in range(n)):
            year = (at + timedelta(hours=8)).year
            numbers[year] = numbers.get(year, 0) + 1
            case_no = f"DEMO-{year}-{numbers[year]:06d}"
            seq += 1
            grid = rng.choice(grids)
            lon, lat = points[grid]
            kind = _pick(rng, TYPES)
            category = rng.choice(cats) if kind == "dispute" else None
            limit = 15 if category == "labour" else LIMITS[kind]
            incident_id = uuid.uuid4().hex
            closure = result = satisfaction = concluded = lead = None
            due = at + timedelta(days=limit)
            status = "closed"
            roll = rng.random()
            if roll < 0.03:
                closure, due, status = "not_accepted", None, "closed"
            elif roll < 0.15:
                closure, concluded = "on_the_spot", at + timedelta(minutes=rng.randint(5, 90))
            else:
                lead = rng.choice(depts if rng.random() < 0.55 else townships)
                took = timedelta(days=rng.expovariate(1 / (limit * 0.45)))
                if at + took < end and rng.random() < 0.97:
                    concluded = at + took
                    result = _pick(rng, OUTCOMES[kind])
                    if rng.random() < 0.8:
                        satisfaction = rng.choices(("satisfied", "basic", "unsatisfied"),
                                                   weights=(80, 15, 5))[0]
                else:
                    status = "in_progress"
            inc_rows.append({
                "id": incident_id, "seq": seq, "feed_id": None, "source_id": case_no,
                "fingerprint": "bench", "type": kind, "severity": 4, "title": "历史事项",
                "description": "", "people": 2, "reporter": None, "phone": None,
                "occurred_at": at, "received_at": at, "lon": lon, "lat": lat,
                "township_code": locator.unit(grid)["parent"], "grid_code": grid,
                "outside": False, "status": status, "merged_into": None, "rating": None,
                "level": "county", "channel": _pick(rng, CHANNELS), "category": category,
                "case_no": case_no, "approximate": True, "photo_count": 0})
            matter_rows.append({
                "incident_id": incident_id, "case_no": case_no, "registered_at": at,
                "registered_by": "bench", "closure": closure,
                "closed_at": at if closure else None, "lead_code": lead,
                "limit_days": None if closure == "not_accepted" else limit, "due_at": due,
                "concluded_at": concluded, "result": result, "satisfaction": satisfaction,
                "followed_up_at": concluded + timedelta(days=7) if satisfaction else None})
        with core.write() as s, s.begin():
            s.execute(sa.insert(incidents), inc_rows)
            s.execute(sa.insert(matters), matter_rows)
        made += n
        if made % 100_000 == 0 or made == total:
            print(f"bench: loaded {made:,} matters ({time.monotonic() - started:.0f} s)",
                  flush=True)
    with core.write() as s, s.begin():
        s.execute(sa.update(counters).where(counters.c.name == "seq").values(value=seq))
        for year, n in numbers.items():
            name = f"case:{year}"
            if s.execute(sa.select(counters.c.name).where(counters.c.name == name)).first():
                s.execute(sa.update(counters).where(counters.c.name == name).values(value=n))
            else:
                s.execute(sa.insert(counters).values(name=name, value=n))
    if core.engine.dialect.name == "postgresql":
        with core.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    else:
        with core.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    return total


def time_figures(core, *, runs: int = 5) -> dict:
    """The median of `runs` warm runs of the year's figures for each `by` (seconds), and the
    slowest run of all (`slowest`)."""
    from command.matters import stats

    year = stats.DayRange(END - timedelta(days=364), END)
    out, registered = {}, None
    with core.read() as s:
        locator = core.units.current(s)
        for by in stats.BY:
            stats.figures(s, year, by=by, locator=locator)  # warm the caches
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                fig = stats.figures(s, year, by=by, locator=locator)
                times.append(time.perf_counter() - t0)
            out[by] = statistics.median(times)
            out["slowest"] = max(out.get("slowest", 0.0), *times)
            registered = fig["total"]["registered"] + fig["total"]["not_accepted"]
    out["registered"] = registered
    return out


def measure_server(url: str, desk: str, duty: str, routes: int = ROUTES) -> dict:
    """The figures over REST, then registering and routing matters at the window."""
    from command.matters import stats

    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {duty}"
    year = stats.DayRange(END - timedelta(days=364), END)
    query = f"/api/v1/stats/matters?from={year.start}&to={year.end}&by=township"
    http.get(url + query, timeout=120).raise_for_status()
    rest, xlsx = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        http.get(url + query, timeout=120).raise_for_status()
        rest.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        http.get(url + query + "&format=xlsx", timeout=120).raise_for_status()
        xlsx.append(time.perf_counter() - t0)
    window = requests.Session()
    window.headers["Authorization"] = f"Bearer {desk}"
    route_ms = []
    for i in range(routes):
        r = window.post(url + "/api/v1/matters", timeout=60, json={
            "type": "dispute", "category": "labour", "title": f"讨要工资 {i}",
            "grid": "DEMO-T01-G01", "channel": "visit"})
        r.raise_for_status()
        case_no = r.json()["case_no"]
        t0 = time.perf_counter()
        r = window.post(url + f"/api/v1/matters/{case_no}/route", timeout=60,
                        json={"lead": "dept.hrss", "assist": ["DEMO-T01"], "tier": "complex"})
        route_ms.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    return {"rest_s": statistics.median(rest), "xlsx_s": statistics.median(xlsx), "route_p50": statistics.median(route_ms),
            "route_p99": _pct(route_ms, 99), "routes": len(route_ms)}


def run(kind: str, per_year: int, tmp: Path) -> dict:
    """Load two years of `per_year` matters into a fresh `kind` database and measure."""
    from command import config
    from command.bus import InProcessBus
    from command.core import Core

    env: dict[str, str] = {}
    drop = None
    data = tmp / f"stats-{kind}" / "data"
    if kind == "postgres":
        server_url = os.environ.get("CMDCENTER_DATABASE_URL") or DEFAULT_PG
        schema = "bench_" + uuid.uuid4().hex[:10]
        engine = sa.create_engine(config.load(database_url=server_url).db_url)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        env["CMDCENTER_DATABASE_URL"] = f"{server_url}?options=-csearch_path%3D{schema}"

        def drop():
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            engine.dispose()
    try:
        settings = config.load(data_dir=str(data), database_url=env.get("CMDCENTER_DATABASE_URL"))
        core = Core(settings, bus=InProcessBus())
        t0 = time.monotonic()
        loaded = bulk_load(core, per_year)
        load_s = time.monotonic() - t0
        out = time_figures(core)
        core.close()
        server = BenchServer(data, env)
        server.start(timeout=300)
        try:
            out.update(measure_server(server.url, server.add_user_token("bench-desk", "desk"),
                                      server.add_user_token("bench-duty", "duty")))
        finally:
            server.stop()
        out.update(kind=kind, per_year=per_year, loaded=loaded, load_s=load_s)
        return out
    finally:
        if drop:
            drop()


def ok_figures(r: dict) -> bool:
    return max(r[by] for by in ("dept", "township", "category", "channel", "rest_s")) \
        <= TARGET_FIGURES_S


def rows(results: list[dict]) -> list[tuple[str, str, str, bool]]:
    """Table rows for `python -m bench`."""
    out = []
    for r in results:
        where = f"{r['kind']}, {r['per_year']:,} matters a year"
        out.append((f"a year's figures, slowest by= (s, median of 5), {where}",
                    f"{max(r[b] for b in ('dept', 'township', 'category', 'channel')):.2f}  "
                    f"[dept {r['dept']:.2f} · township {r['township']:.2f} · category "
                    f"{r['category']:.2f} · channel {r['channel']:.2f}; slowest run "
                    f"{r['slowest']:.2f}; REST {r['rest_s']:.2f}, "
                    f"xlsx {r['xlsx_s']:.2f}; {r['registered']:,} registered in the year; "
                    f"load {r['load_s']:.0f} s]",
                    f"≤ {TARGET_FIGURES_S:g}", ok_figures(r)))
        out.append((f"routing a matter p99 (ms), {where}",
                    f"{r['route_p99']:.1f}  [p50 {r['route_p50']:.1f}; {r['routes']} routed]",
                    f"≤ {TARGET_ROUTE_P99_MS:g}", r["route_p99"] <= TARGET_ROUTE_P99_MS))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stats",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=COUNT, help="matters a year (two years)")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args(argv)
    kinds = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    tmp = Path(tempfile.mkdtemp(prefix="cmdcenter-bench-stats-"))
    try:
        table = rows([run(kind, args.count, tmp) for kind in kinds])
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    from bench.__main__ import _table

    _table(table)
    return 0 if all(r[3] for r in table) else 1


if __name__ == "__main__":
    sys.exit(main())
