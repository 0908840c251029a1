"""The one window under a county's years of matters: registration and ID search with 1M stored.

`python -m bench.matters [--count N] [--db sqlite|postgres|both]` bulk-loads N matters (default
1,000,000; two parties each, ID numbers and phones encrypted and indexed like the window stores
them) into a fresh database, starts a real `cmdcenter serve` on it and times, over REST:

- registration (POST /api/v1/matters with two parties: validation, encryption, case number,
  insert, publish), target p99 ≤ 200 ms;
- search by ID number (POST /api/v1/matters/search), target p99 ≤ 50 ms;
- registration → the matter on a /live screen, p99 (the wall shows it "within a second").

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
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import requests
import sqlalchemy as sa

from bench.server import BenchServer

COUNT = 1_000_000
SAMPLES = 300
TARGET_REGISTER_P99_MS = 200.0
TARGET_SEARCH_P99_MS = 50.0
TARGET_LIVE_P99_MS = 1000.0
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
BATCH = 20_000


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def bulk_load(core, count: int, *, seed: int = 7) -> list[str]:
    """Write `count` matters (with two parties each) straight into the tables; return a sample
    of the ID numbers stored (for searching)."""
    from command.db import counters, set_meta
    from command.incidents.models import incidents
    from command.matters.categories import CATEGORY_LABELS
    from command.matters.identity import fictitious_id_number, mask_id_number, mask_phone
    from command.matters.models import matter_parties, matters

    rng = random.Random(seed)
    ring = core.keyring
    locator = core.locator()
    grids = [c for c in locator._units if locator.unit(c)["level"] == "grid"]
    points = {g: locator.point_in(g) for g in grids}
    cats = list(CATEGORY_LABELS)
    start = datetime(2022, 1, 1, tzinfo=UTC)
    span = (datetime(2026, 11, 1, tzinfo=UTC) - start).total_seconds()
    sample: list[str] = []
    per_year: dict[int, int] = {}
    seq = 0
    made = 0
    started = time.monotonic()
    while made < count:
        n = min(BATCH, count - made)
        times = sorted(start + timedelta(seconds=rng.random() * span) for _ in range(n))
        inc_rows, matter_rows, party_rows = [], [], []
        for k, at in enumerate(times):
            year = (at + timedelta(hours=8)).year
            per_year[year] = per_year.get(year, 0) + 1
            case_no = f"DEMO-{year}-{per_year[year]:06d}" if per_year[year] < 10**6 else \
                f"DEMO-{year}-{per_year[year]}"
            seq += 1
            grid = rng.choice(grids)
            lon, lat = points[grid]
            incident_id = uuid.uuid4().hex
            inc_rows.append({
                "id": incident_id, "seq": seq, "feed_id": None, "source_id": case_no,
                "fingerprint": "bulk", "type": "dispute", "severity": 4, "title": "历史事项",
                "description": "", "people": 2, "reporter": None, "phone": None,
                "occurred_at": at, "received_at": at, "lon": lon, "lat": lat,
                "township_code": locator.unit(grid)["parent"], "grid_code": grid,
                "outside": False, "status": "closed", "merged_into": None, "rating": None,
                "level": "county", "channel": "visit", "category": rng.choice(cats),
                "case_no": case_no, "approximate": True})
            matter_rows.append({"incident_id": incident_id, "case_no": case_no,
                                "registered_at": at, "registered_by": "bulk"})
            j = made + k  # one person per matter: a unique (birth date, sequence) pair
            idn = fictitious_id_number("999999", date(1950, 1, 1) + timedelta(days=j % 18_000),
                                       j // 18_000)
            phone = f"13{(made + k) % 10**9:09d}"
            if len(sample) < 2000 and rng.random() < 0.01:
                sample.append(idn)
            party_rows.append({
                "incident_id": incident_id, "position": 0, "role": "applicant",
                "kind": "person", "name": "历史当事人", "credit_code": None, "address": None,
                "id_number_enc": ring.encrypt(idn), "id_number_hash": ring.index("id:" + idn),
                "id_number_masked": mask_id_number(idn), "phone_enc": ring.encrypt(phone),
                "phone_hash": ring.index("tel:" + phone), "phone_masked": mask_phone(phone)})
            party_rows.append({
                "incident_id": incident_id, "position": 1, "role": "respondent",
                "kind": "org", "name": "某公司", "credit_code": None, "address": None,
                "id_number_enc": None, "id_number_hash": None, "id_number_masked": None,
                "phone_enc": None, "phone_hash": None, "phone_masked": None})
        with core.write() as s, s.begin():
            s.execute(sa.insert(incidents), inc_rows)
            s.execute(sa.insert(matters), matter_rows)
            s.execute(sa.insert(matter_parties), party_rows)
        made += n
        if made % 100_000 == 0 or made == count:
            print(f"bench: loaded {made:,} matters ({time.monotonic() - started:.0f} s)",
                  flush=True)
    with core.write() as s, s.begin():
        s.execute(sa.update(counters).where(counters.c.name == "seq").values(value=seq))
        for year, n in per_year.items():
            name = f"case:{year}"
            if s.execute(sa.select(counters.c.name).where(counters.c.name == name)).first():
                s.execute(sa.update(counters).where(counters.c.name == name).values(value=n))
            else:
                s.execute(sa.insert(counters).values(name=name, value=n))
        set_meta(s, "bench_matters", str(count))
    if core.engine.dialect.name == "postgresql":
        with core.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    return sample


def _registration(i: int) -> dict:
    from command.matters.identity import fictitious_id_number

    idn = fictitious_id_number("999998", date(1980, 1, 1) + timedelta(days=i), i % 1000)
    return {"type": "dispute", "category": "labour", "title": f"讨要工资 {i}",
            "grid": "DEMO-T01-G01", "summary": "务工工资未结清", "request": "支付工资",
            "people": 2, "amount": 8000,
            "parties": [{"role": "applicant", "kind": "person", "name": "申请人",
                         "id_number": idn, "phone": f"139{i:08d}"},
                        {"role": "respondent", "kind": "org", "name": "某公司",
                         "credit_code": "91350100M000100Y43"}]}


def measure(url: str, token: str, reader: str, ids: list[str], samples: int = SAMPLES) -> dict:
    """Time registrations, ID searches and registration → /live over REST and Socket.IO."""
    import socketio

    seen: dict[str, float] = {}
    arrived = threading.Event()
    live = socketio.Client(reconnection=False)

    def on_incidents(items):
        now = time.perf_counter()
        for item in items:
            if item.get("case_no"):
                seen.setdefault(item["case_no"], now)
        arrived.set()
    live.on("incidents", on_incidents, namespace="/live")
    live.connect(url, namespaces=["/live"], auth={"token": reader}, transports=["websocket"])
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    register_ms, sent = [], {}
    for i in range(samples):
        body = _registration(i)
        t0 = time.perf_counter()
        r = http.post(url + "/api/v1/matters", json=body, timeout=60)
        register_ms.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        sent[r.json()["case_no"]] = t0
    deadline = time.monotonic() + 10
    while len([c for c in sent if c in seen]) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.05)
    live.disconnect()
    live_ms = [(seen[c] - t0) * 1000 for c, t0 in sent.items() if c in seen]
    search_ms, found = [], 0
    for idn in (ids * (samples // max(len(ids), 1) + 1))[:samples]:
        t0 = time.perf_counter()
        r = http.post(url + "/api/v1/matters/search", json={"id_number": idn}, timeout=60)
        search_ms.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        found += bool(r.json()["items"])
    return {"register_p50": statistics.median(register_ms), "register_p99": _pct(register_ms, 99),
            "search_p50": statistics.median(search_ms), "search_p99": _pct(search_ms, 99),
            "searches": len(search_ms), "found": found, "registered": len(sent),
            "live_p50": statistics.median(live_ms) if live_ms else float("nan"),
            "live_p99": _pct(live_ms, 99) if live_ms else float("nan"), "live_seen": len(live_ms)}


def run(kind: str, count: int, tmp: Path) -> dict:
    """Load `count` matters into a fresh `kind` database and measure; the figures."""
    from command import config
    from command.bus import InProcessBus
    from command.core import Core

    env: dict[str, str] = {}
    drop = None
    data = tmp / kind / "data"
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
        ids = bulk_load(core, count)
        load_s = time.monotonic() - t0
        core.close()
        server = BenchServer(data, env)
        server.start(timeout=300)
        try:
            token = server.add_user_token("bench-desk", "desk")
            reader = server.add_user_token("bench-wall", "duty")
            out = measure(server.url, token, reader, ids)
        finally:
            server.stop()
        out.update(kind=kind, count=count, load_s=load_s)
        return out
    finally:
        if drop:
            drop()


def rows(results: list[dict]) -> list[tuple[str, str, str, bool]]:
    """Table rows for `python -m bench`."""
    out = []
    for r in results:
        where = f"{r['kind']}, {r['count']:,} matters"
        out.append((f"matter registration p99 (ms), {where}",
                    f"{r['register_p99']:.1f}  [p50 {r['register_p50']:.1f}; "
                    f"{r['registered']} registered; load {r['load_s']:.0f} s]",
                    f"≤ {TARGET_REGISTER_P99_MS:g}", r["register_p99"] <= TARGET_REGISTER_P99_MS))
        out.append((f"search by ID number p99 (ms), {where}",
                    f"{r['search_p99']:.1f}  [p50 {r['search_p50']:.1f}; "
                    f"{r['found']}/{r['searches']} found]",
                    f"≤ {TARGET_SEARCH_P99_MS:g}",
                    r["search_p99"] <= TARGET_SEARCH_P99_MS and r["found"] == r["searches"]))
        out.append((f"registration → /live p99 (ms), {where}",
                    f"{r['live_p99']:.1f}  [p50 {r['live_p50']:.1f}; "
                    f"{r['live_seen']}/{r['registered']} seen]",
                    f"≤ {TARGET_LIVE_P99_MS:g}",
                    r["live_p99"] <= TARGET_LIVE_P99_MS and r["live_seen"] == r["registered"]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.matters",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args(argv)
    from bench.__main__ import _table

    tmp = Path(tempfile.mkdtemp(prefix="cmdcenter-bench-matters-"))
    kinds = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    results = [run(kind, args.count, tmp) for kind in kinds]
    table = rows(results)
    print()
    _table(table)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(r[3] for r in table) else 1


if __name__ == "__main__":
    sys.exit(main())
