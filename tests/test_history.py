"""Seeded demo history: plausible, placed in the stored units, consistent loops, idempotent."""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import geopandas as gpd
import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import box

from alerts.rules import window_counts
from command import config
from command.bus import InProcessBus
from command.clock import SHANGHAI, FixedClock
from command.core import Core
from command.demo.feeds import ensure_demo_history
from command.demo.history import MAX_WEEKS, PER_DAY, Model, has_history, seed_history, stored_rate
from command.errors import DomainError
from command.feeds import service as feeds
from command.feeds.models import feeds as feeds_table
from command.incidents import service as incidents_service
from command.incidents import workflow
from command.incidents.events import incident_events
from command.incidents.models import incidents
from command.orders import service as orders_service
from command.orders.models import order_node_events, order_nodes, orders
from command.units import service as units_service
from command.users.principal import Principal
from tests import servers

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # 10:00 on a Thursday in Shanghai
WEEKS = 6
FINAL = ("closed", "merged", "false_alarm")


def make_core(tmp_path, url=None, now=NOW) -> Core:
    return Core(config.load(data_dir=tmp_path / "data", database_url=url),
                clock=FixedClock(now), bus=InProcessBus())


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                              marks=pytest.mark.postgres)])
def seeded(request, tmp_path_factory):
    """Six weeks of history on a fresh database (shared by the read-only tests of a backend)."""
    url = schema = None
    if request.param == "postgres":
        base = request.getfixturevalue("postgres_server_url")
        schema = "t_" + uuid.uuid4().hex[:12]
        engine = sa.create_engine(base)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        engine.dispose()
        url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    core = make_core(tmp_path_factory.mktemp("hist"), url)
    summary = seed_history(core, weeks=WEEKS, now=NOW, seed=0)
    data = _read(core)
    yield core, summary, data
    core.close()
    if schema is not None:
        engine = sa.create_engine(base)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


def _read(core) -> dict:
    with core.read() as s:
        rows = [dict(r._mapping) for r in s.execute(sa.select(incidents))]
        events = defaultdict(list)
        for e in s.execute(sa.select(incident_events).order_by(incident_events.c.id)):
            events[e.incident_id].append(dict(e._mapping))
        nodes = [dict(r._mapping) for r in s.execute(sa.select(order_nodes))]
        history = defaultdict(list)
        for e in s.execute(sa.select(order_node_events).order_by(order_node_events.c.id)):
            history[e.node_id].append(dict(e._mapping))
        order_rows = [dict(r._mapping) for r in s.execute(sa.select(orders))]
    return {"rows": rows, "events": events, "nodes": nodes, "history": history,
            "orders": order_rows}


# --- plausible --------------------------------------------------------------------------------

def test_counts_and_mix_are_plausible(seeded):
    _core, summary, data = seeded
    rows = data["rows"]
    assert summary.added == len(rows) and summary.skipped == 0
    per_day = len(rows) / (WEEKS * 7)
    assert 60 <= per_day <= 120, per_day
    types = Counter(r["type"] for r in rows)
    assert types.most_common(1)[0][0] == "dispute"
    assert set(types) == set(workflow_types())
    assert types["petition"] > types["emergency"] and types["complaint"] > types["public_safety"]
    assert types["legal"] > types["mass"] and types["psych"] > types["mass"]
    assert 0 < types["mass"] < 0.015 * len(rows)
    severity = Counter(r["severity"] for r in rows)
    assert (severity[3] + severity[4]) / len(rows) > 0.97
    assert severity[4] > 3 * severity[3] > 3 * severity[2] and severity[1] <= severity[2]
    assert severity[1] <= 0.003 * len(rows)
    assert all(r["people"] >= 30 for r in rows if r["type"] == "mass")
    towns = Counter(r["township_code"] for r in rows)
    assert len(towns) == 13 and towns.most_common()[0][1] > 3 * towns.most_common()[-1][1]
    assert all(r["title"] and r["description"] for r in rows)
    assert sum("村" in r["title"] or "社区" in r["description"] or "村" in r["description"]
               for r in rows) > len(rows) / 4  # real place names of the demo county


def workflow_types():
    from command.incidents.types import TYPE_CODES
    return TYPE_CODES


def test_quiet_nights_busy_days_and_weekdays(seeded):
    rows = seeded[2]["rows"]
    local = [r["occurred_at"].astimezone(SHANGHAI) for r in rows]
    hours = Counter(t.hour for t in local)
    assert sum(hours[h] for h in (1, 2, 3, 4)) * 10 < sum(hours[h] for h in (9, 10, 15, 16))
    petitions = Counter(r["occurred_at"].astimezone(SHANGHAI).weekday() for r in rows
                        if r["type"] == "petition")
    assert petitions[0] > 1.5 * petitions[6]  # the petition window is quiet on Sunday


def test_everything_lies_in_the_weeks_before_now(seeded):
    data = seeded[2]
    start = NOW - timedelta(weeks=WEEKS)
    for r in data["rows"]:
        assert start < r["occurred_at"] <= r["received_at"] <= NOW
        assert r["source_id"].startswith("hist-")
    assert all(e["at"] <= NOW for evs in data["events"].values() for e in evs)
    assert all(e["at"] <= NOW for evs in data["history"].values() for e in evs)
    assert all(o["issued_at"] <= NOW for o in data["orders"])
    # and they fill it: every day has reports
    days = {r["occurred_at"].astimezone(SHANGHAI).date() for r in data["rows"]}
    assert len(days) == WEEKS * 7 + 1  # the first and the last day are partial


def test_points_lie_in_their_stored_grid(seeded):
    core, _summary, data = seeded
    with core.read() as s:
        gdf = units_service.load_gdf(s)
    geoms = dict(zip(gdf["code"], gdf.geometry))
    parents = dict(zip(gdf["code"], gdf["parent"]))
    for r in data["rows"]:
        assert r["grid_code"] is not None and not r["outside"]
        assert parents[r["grid_code"]] == r["township_code"]
        assert shapely.intersects_xy(geoms[r["grid_code"]], r["lon"], r["lat"]), r["source_id"]


# --- the loop -----------------------------------------------------------------------------------

def test_timelines_lead_to_each_status_in_time_order(seeded):
    data = seeded[2]
    by_id = {r["id"]: r for r in data["rows"]}
    statuses = Counter()
    for r in data["rows"]:
        events = data["events"][r["id"]]
        state, at, level = "reported", r["received_at"], "grid"
        for e in events:
            assert e["from_state"] == state, (r["source_id"], events)
            assert e["to_state"] in workflow.successors(state)
            assert e["at"] >= at
            state, at = e["to_state"], e["at"]
            if e["to_state"] == "escalated":
                level = json.loads(e["data"])["to"]
        assert state == r["status"] and level == r["level"]
        statuses[state] += 1
        path = [e["to_state"] for e in events]
        if r["status"] == "closed":
            assert {"accepted", "responded", "verified"} <= set(path)
            assert path.index("responded") < path.index("verified") < path.index("closed")
        if r["status"] == "merged":
            target = by_id[r["merged_into"]]
            assert target["status"] not in ("merged", "false_alarm")
            assert json.loads(events[-1]["data"]) == {"merged_into": target["id"]}
        follow = [e for e in events if e["to_state"] == "followed_up"]
        if r["rating"] is not None:
            assert r["status"] in ("followed_up", "closed") and 1 <= r["rating"] <= 5
            assert json.loads(follow[-1]["data"]) == {"rating": r["rating"]}
        else:
            assert not follow
    rows = len(data["rows"])
    assert statuses["closed"] > 0.75 * rows
    assert 0 < statuses["merged"] < 0.05 * rows and 0 < statuses["false_alarm"] < 0.05 * rows
    assert statuses["escalated"] + sum(r["level"] != "grid" for r in data["rows"]) > 0


def test_old_incidents_are_finished_and_the_last_days_partly_open(seeded):
    rows = seeded[2]["rows"]
    old = [r for r in rows if r["occurred_at"] < NOW - timedelta(days=14)]
    recent = [r for r in rows if r["occurred_at"] > NOW - timedelta(days=1)]
    assert sum(r["status"] in FINAL for r in old) > 0.99 * len(old)
    open_recent = sum(r["status"] not in FINAL for r in recent)
    assert 0.3 * len(recent) < open_recent < len(recent)
    assert any(r["status"] in ("reported", "accepted", "dispatched") for r in recent)


def test_ratings_are_mostly_good(seeded):
    ratings = Counter(r["rating"] for r in seeded[2]["rows"] if r["rating"] is not None)
    total = sum(ratings.values())
    assert total > 0.5 * len(seeded[2]["rows"])
    assert (ratings[4] + ratings[5]) / total > 0.7 and ratings[1] > 0


def test_orders_for_major_and_mass_incidents_with_nodes_in_time_order(seeded):
    data = seeded[2]
    ordered = {o["incident_id"] for o in data["orders"]}
    for r in data["rows"]:
        path = [e["to_state"] for e in data["events"][r["id"]]]
        if (r["severity"] <= 2 or r["type"] == "mass") and r["status"] != "merged" \
                and "accepted" in path:
            assert r["id"] in ordered, r["source_id"]
        if r["id"] in ordered:
            assert "dispatched" in path
    minor = sum(1 for r in data["rows"] if r["id"] in ordered and r["severity"] >= 3
                and r["type"] != "mass")
    assert minor > 50  # a share of the others too
    nodes = {n["id"]: n for n in data["nodes"]}
    late = returned = 0
    for n in data["nodes"]:
        history = data["history"][n["id"]]
        assert history[0]["state"] == "issued"
        assert [h["at"] for h in history] == sorted(h["at"] for h in history)
        assert history[-1]["state"] == n["state"]
        assert history[0]["at"] <= n["created_at"] <= n["ack_by"] <= n["due_by"]
        states = [h["state"] for h in history]
        if n["state"] == "completed":
            assert n["result"] and "acknowledged" in states and n["acked_by"]
        issues = [i for i, h in enumerate(history)
                  if h["state"] == "issued" and not h["note"].startswith("督办")]
        phase = history[issues[-1]:]  # after the last (re)issue
        acked = next((h["at"] for h in phase if h["state"] == "acknowledged"), None)
        if acked is not None and acked > n["ack_by"]:
            assert n["ack_alerted"] and any(h["note"].startswith("督办：未按时签收") for h in phase)
        done = next((h["at"] for h in phase if h["state"] == "completed"), None)
        if done is not None and done > n["due_by"]:
            late += 1
            assert n["due_alerted"] and any(h["note"].startswith("督办：未按时办结") for h in phase)
        if not (n["ack_alerted"] or n["due_alerted"]):
            assert not any(h["note"].startswith("督办") for h in history)
        returned += "returned" in states
        if n["parent_id"] is not None:
            assert nodes[n["parent_id"]]["target_code"] == \
                next(r["township_code"] for r in data["rows"] if r["id"] == n["incident_id"])
    assert 0 < late < 0.15 * len(data["nodes"]) and returned > 0
    assert all(n["state"] in orders_service.DONE for n in data["nodes"]
               if n["created_at"] < NOW - timedelta(days=3))


def test_seqs_are_unique_and_the_latest_changes_come_last(seeded):
    data = seeded[2]
    seqs = [r["seq"] for r in data["rows"]]
    assert len(set(seqs)) == len(seqs) and min(seqs) >= 1
    node_seqs = [n["seq"] for n in data["nodes"]]
    assert len(set(node_seqs)) == len(node_seqs) and min(node_seqs) >= 1
    last = max(data["rows"], key=lambda r: r["seq"])
    assert last["occurred_at"] > NOW - timedelta(days=7)


# --- what the consumers need ------------------------------------------------------------------

def test_spike_baseline_is_non_zero_for_busy_cells(seeded):
    rows = seeded[2]["rows"]
    events = [{"type": r["type"], "township": {"code": r["township_code"]},
               "occurred_at": r["occurred_at"]} for r in rows]
    busiest = Counter(r["township_code"] for r in rows).most_common(1)[0][0]
    for kind in ("dispute", "petition"):
        day, night = [], []
        for back in range(1, 8):  # every hour-of-week of the last week, against 4 weeks before
            d = (NOW.astimezone(SHANGHAI) - timedelta(days=back)).date()
            for hour in range(24):
                end = datetime(d.year, d.month, d.day, hour, tzinfo=SHANGHAI)
                _n, base = window_counts(events, township=busiest, type=kind, end=end,
                                         window=timedelta(hours=1), weeks=4)
                if d.weekday() < 5 and 10 <= hour <= 18:
                    day.append(sum(base))
                elif 1 <= hour <= 5:
                    night.append(sum(base))
        assert sum(b > 0 for b in day) > 0.6 * len(day), (kind, day)
        assert sum(day) / len(day) > 0.8 and sum(day) / len(day) > 5 * sum(night) / len(night)


def test_hotspots_and_repeat_places_stand_out(seeded):
    rows = seeded[2]["rows"]
    week = Counter(r["grid_code"] for r in rows if r["occurred_at"] > NOW - timedelta(days=7))
    counts = sorted(week.values())
    assert week.most_common(1)[0][1] > 4 * counts[len(counts) // 2]
    disputes = Counter(r["grid_code"] for r in rows if r["type"] in ("dispute", "petition")
                       and r["occurred_at"] > NOW - timedelta(days=30))
    assert disputes.most_common(1)[0][1] >= 10


def test_the_wall_and_the_desk_open_with_a_day_not_the_history(seeded):
    core = seeded[0]
    with core.read() as s:
        locator = core.units.current(s)
        day = incidents_service.recent(s, after=NOW - timedelta(hours=24), locator=locator)
        open_nodes = orders_service.visible_nodes(s, by=Principal("lead", "leader"),
                                                  open_only=True, locator=locator)
    assert 40 < len(day) < 250
    assert len(open_nodes) < 60


# --- idempotent, deterministic ----------------------------------------------------------------

def test_a_second_run_adds_nothing(seeded):
    core, summary, data = seeded
    again = seed_history(core, weeks=WEEKS, now=NOW, seed=0)
    assert again.added == 0 and again.skipped == summary.added
    assert len(_read(core)["rows"]) == len(data["rows"])
    with core.read() as s:
        assert has_history(s)


def test_the_model_alone_draws_what_the_history_stored_and_rates_it(seeded):
    """`Model.arrivals` (the live demo stream) gives exactly the stored reports for past hours:
    the stream after `now` is the history continued."""
    core, _summary, data = seeded
    with core.read() as s:
        model = Model(units_service.load_gdf(s), seed=0, per_day=PER_DAY, now=NOW)
        assert abs(stored_rate(s) / PER_DAY - 1) < 0.06
    start = NOW - timedelta(days=3)
    drawn = {a.source_id: a for a in model.arrivals(start, NOW)}
    stored = {r["source_id"]: r for r in data["rows"] if r["received_at"] >= start}
    assert drawn.keys() == stored.keys() and len(drawn) > 200
    for source_id, row in stored.items():
        a = drawn[source_id]
        assert (a.raw["title"], a.raw["lon"], a.raw["lat"], a.received_at) == \
            (row["title"], row["lon"], row["lat"], row["received_at"])
        assert (a.township, a.grid) == (row["township_code"], row["grid_code"])
    after = model.arrivals(NOW, NOW + timedelta(hours=3))
    assert after and not {a.source_id for a in after} & {r["source_id"] for r in data["rows"]}


def _fingerprint(core) -> list[tuple]:
    data = _read(core)
    out = []
    for r in sorted(data["rows"], key=lambda r: r["source_id"]):
        out.append((r["id"], r["source_id"], r["type"], r["severity"], r["title"], r["lon"],
                    r["lat"], r["occurred_at"], r["received_at"], r["status"], r["rating"],
                    tuple((e["at"], e["by"], e["to_state"], e["note"])
                          for e in data["events"][r["id"]])))
    return out


def test_the_same_seed_gives_the_same_history(tmp_path):
    a, b, c = (make_core(tmp_path / name) for name in "abc")
    try:
        for core, seed in ((a, 7), (b, 7), (c, 8)):
            seed_history(core, weeks=1, now=NOW, seed=seed)
        assert _fingerprint(a) == _fingerprint(b)
        assert _fingerprint(a) != _fingerprint(c)
    finally:
        for core in (a, b, c):
            core.close()


def test_a_later_run_adds_only_the_new_hours(tmp_path):
    core = make_core(tmp_path)
    try:
        first = seed_history(core, weeks=1, now=NOW)
        later = seed_history(core, weeks=1, now=NOW + timedelta(hours=6))
        assert 0 < later.added < first.added / 4
        assert later.skipped > 0.7 * first.added
        rows = _read(core)["rows"]
        assert len({r["source_id"] for r in rows}) == len(rows)
    finally:
        core.close()


# --- feeds, seqs, other units ------------------------------------------------------------------

def test_stored_township_feeds_are_used_and_seqs_follow_what_exists(tmp_path):
    core = make_core(tmp_path)
    try:
        with core.write() as s, s.begin():
            feed, _token = feeds.create(s, name="城关街道平台", unit_code="DEMO-T01", now=NOW)
        (out,) = core.ingest.submit(feed, {"id": "live-1", "type": "dispute", "title": "邻里纠纷",
                                           "occurred_at": "2026-11-26T09:30:00+08:00",
                                           "grid": "DEMO-T01-G01"})
        before = out.incident["seq"]
        summary = seed_history(core, weeks=1, now=NOW)
        assert len(summary.feeds_created) == 12 and "history-DEMO-T01" not in summary.feeds_created
        rows = _read(core)["rows"]
        seeded = [r for r in rows if r["source_id"].startswith("hist-")]
        assert min(r["seq"] for r in seeded) > before
        assert {r["feed_id"] for r in seeded if r["township_code"] == "DEMO-T01"} == {feed.id}
        with core.read() as s:
            history_feeds = s.execute(sa.select(feeds_table).where(
                feeds_table.c.name.like("history-%"))).all()
        assert len(history_feeds) == 12
        assert all(f.disabled_reason and f.unit_code.startswith("DEMO-T") for f in history_feeds)
    finally:
        core.close()


def test_imported_boundaries_without_grids(tmp_path):
    core = make_core(tmp_path)
    towns = gpd.GeoDataFrame(
        {"code": ["330100001", "330100002"], "name": ["东镇", "西镇"], "level": "township",
         "parent": [None, None]},
        geometry=[box(120.0, 29.9, 120.2, 30.2), box(120.2, 29.9, 120.45, 30.2)],
        crs="EPSG:4326")
    try:
        with core.write() as s, s.begin():
            units_service.replace_all(s, towns, source="import")
        summary = seed_history(core, weeks=1, now=NOW, per_day=40)
        rows = _read(core)["rows"]
        assert summary.added == len(rows) and 150 < len(rows) < 450
        assert {r["township_code"] for r in rows} == {"330100001", "330100002"}
        for r in rows:
            geom = towns.geometry[0] if r["township_code"] == "330100001" else towns.geometry[1]
            assert shapely.intersects_xy(geom, r["lon"], r["lat"]) and r["grid_code"] is None
    finally:
        core.close()


def test_no_polygons_is_a_clear_error(tmp_path):
    core = make_core(tmp_path)
    try:
        with core.write() as s, s.begin():
            units_service.replace_all(s, gpd.GeoDataFrame(
                {"code": ["T"], "name": ["某镇"], "level": ["township"], "parent": [None]},
                geometry=[None], crs="EPSG:4326"), source="import")
        with pytest.raises(DomainError, match="no township or grid polygons"):
            seed_history(core, weeks=1, now=NOW)
    finally:
        core.close()


@pytest.mark.parametrize("kwargs, needle", [
    ({"weeks": 0}, "weeks: must be from 1 to 104"),
    ({"weeks": MAX_WEEKS + 1}, "weeks: must be from 1 to 104"),
    ({"weeks": "6"}, "weeks: must be a whole number"),
    ({"weeks": True}, "weeks: must be a whole number"),
    ({"weeks": 1, "seed": -1}, "seed: must be from 0"),
    ({"weeks": 1, "per_day": 0}, "per_day: must be from 1"),
    ({"weeks": 1, "now": datetime(2026, 11, 26)}, "now: must be a timezone-aware time"),
])
def test_bad_arguments(tmp_path, kwargs, needle):
    core = make_core(tmp_path)
    try:
        with pytest.raises(DomainError, match=needle):
            seed_history(core, **kwargs)
        with core.read() as s:
            assert not has_history(s)
    finally:
        core.close()


def test_demo_seeds_on_first_start_only(tmp_path):
    core = make_core(tmp_path)
    try:
        line = ensure_demo_history(core, weeks=1)
        assert line.startswith("cmdcenter: demo history seeded:") and "last 1 week " in line
        assert ensure_demo_history(core, weeks=1) is None
    finally:
        core.close()


# --- the command line ---------------------------------------------------------------------------

def test_cli_seeds_and_a_second_run_skips(tmp_path):
    out = servers.cli("seed-history", "--weeks", "1", "--seed", "3", data_dir=tmp_path)
    added = int(out.stdout.split("added ")[1].split()[0])
    assert 400 < added < 900 and "history of 1 week " in out.stdout
    again = servers.cli("seed-history", "--weeks", "1", "--seed", "3", data_dir=tmp_path)
    assert "added 0 incidents" in again.stdout
    assert int(again.stdout.split("skipped ")[1].split()[0]) >= added - 5


@pytest.mark.postgres
def test_cli_honours_the_database_url(tmp_path, postgres_url):
    out = servers.cli("seed-history", "--weeks", "1", data_dir=tmp_path,
                      env={"CMDCENTER_DATABASE_URL": postgres_url})
    added = int(out.stdout.split("added ")[1].split()[0])
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(sa.select(sa.func.count()).select_from(incidents)).scalar()
    finally:
        engine.dispose()
    assert stored == added > 0
    assert not (tmp_path / "cmdcenter.sqlite3").exists()


@pytest.mark.parametrize("args, needle", [
    (("--weeks", "0"), "weeks: must be from 1 to 104, got 0"),
    (("--weeks", "abc"), "weeks: must be a number, got 'abc'"),
    (("--seed", "x"), "seed: must be a number"),
    (("--per-day", "0"), "per_day: must be from 1"),
])
def test_cli_mistakes_get_one_clear_line(tmp_path, args, needle):
    out = servers.cli("seed-history", *args, data_dir=tmp_path / "data", check=False)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cmdcenter: error:") and needle in lines[0]
    assert not (tmp_path / "data").exists()  # nothing was touched
