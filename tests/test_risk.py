"""Risk analysis: the score's properties, hexagon counts, trend buckets, replay windows (pure), and
the four endpoints on a real app over SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import shapely
import sqlalchemy as sa

from command import config
from command.alerts import service as alerts_service
from command.bus import InProcessBus
from command.clock import SHANGHAI, FixedClock
from command.core import Core
from command.errors import DomainError
from command.feeds import service as feeds
from command.incidents import workflow
from command.incidents.models import incidents
from command.orders import service as orders_service
from command.risk import hotspots, replay, score, service, trends
from command.users import service as users
from command.users.principal import Principal

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
LEADER = Principal("lead", "leader")

# --- the score: pure ------------------------------------------------------------------------------

COUNTS = ("incidents_7d", "major_7d", "mass_7d", "repeat_places", "open_orders", "overdue_orders",
          "backlog")


def random_inputs(rng: random.Random) -> score.RiskInputs:
    levels = {lvl: rng.choice((0, 0, 1, 2, 5)) for lvl in ("red", "orange", "yellow", "blue")}
    return score.RiskInputs(
        incidents_7d=rng.randint(0, 60), incidents_prev_28d=rng.randint(0, 200),
        major_7d=rng.randint(0, 5), mass_7d=rng.randint(0, 5), alerts=levels,
        repeat_places=rng.randint(0, 4), open_orders=rng.randint(0, 30),
        overdue_orders=rng.randint(0, 5), backlog=rng.randint(0, 20))


def test_a_quiet_township_scores_zero():
    s = score.score(score.RiskInputs())
    assert s.score == 0 and s.level == "blue"
    assert all(p.points == 0 for p in s.parts)
    # a steady township (as many incidents as its own baseline) is quiet too
    assert score.score(score.RiskInputs(incidents_7d=10, incidents_prev_28d=40)).score == 0


def test_the_score_is_bounded_and_reaches_100_only_when_every_part_is_full():
    rng = random.Random(1)
    for _ in range(2000):
        s = score.score(random_inputs(rng))
        assert 0 <= s.score <= 100
        assert all(0 <= p.points <= p.cap for p in s.parts)
        assert math.isclose(s.score, min(100, sum(p.points for p in s.parts)), abs_tol=0.051)
    full = score.RiskInputs(incidents_7d=1000, major_7d=100, mass_7d=100, alerts={"red": 50},
                            repeat_places=50, overdue_orders=50, backlog=500)
    assert score.score(full).score == 100
    assert sum(p.cap for p in score.score(full).parts) == 100


@pytest.mark.parametrize("name", COUNTS)
def test_the_score_never_falls_when_a_count_rises(name):
    rng = random.Random(name)
    for _ in range(300):
        x = random_inputs(rng)
        more = dataclasses.replace(x, **{name: getattr(x, name) + rng.randint(1, 5)})
        assert score.score(more).score >= score.score(x).score
    # and it does rise from a quiet township
    assert score.score(dataclasses.replace(score.RiskInputs(), **{name: 1})).score > 0


@pytest.mark.parametrize("level", ["red", "orange", "yellow", "blue"])
def test_more_alerts_never_lower_the_score_and_red_weighs_most(level):
    rng = random.Random(level)
    for _ in range(300):
        x = random_inputs(rng)
        alerts = dict(x.alerts)
        alerts[level] = alerts.get(level, 0) + 1
        assert score.score(dataclasses.replace(x, alerts=alerts)).score >= score.score(x).score
    one = {lvl: score.score(score.RiskInputs(alerts={lvl: 1})).score
           for lvl in ("red", "orange", "yellow", "blue")}
    assert one["red"] > one["orange"] > one["yellow"] > one["blue"] > 0


def test_a_higher_baseline_never_raises_the_score():
    rng = random.Random(9)
    for _ in range(300):
        x = random_inputs(rng)
        calmer = dataclasses.replace(x, incidents_prev_28d=x.incidents_prev_28d + rng.randint(1, 9))
        assert score.score(calmer).score <= score.score(x).score


def test_surge_is_relative_to_the_townships_own_baseline_with_a_floor():
    w = score.WEIGHTS
    # doubling its own weekly mean of 20 gives the whole 25 points, +50 % gives half
    double = score.RiskInputs(incidents_7d=40, incidents_prev_28d=80)
    assert score.score(double).score == w.surge_max
    assert score.score(score.RiskInputs(incidents_7d=30, incidents_prev_28d=80)).score == 12.5
    # from nothing, two incidents are a rise of 2 over the floor of 5: 40 %
    assert score.score(score.RiskInputs(incidents_7d=2)).score == 10.0


def test_parts_say_why_in_chinese():
    s = score.score(score.RiskInputs(incidents_7d=12, incidents_prev_28d=24, major_7d=2,
                                     alerts={"red": 1, "yellow": 2}, overdue_orders=1))
    parts = {p.key: p for p in s.parts}
    assert parts["surge"].detail == "近7天 12 起，前4周平均每7天 6.0 起，增加 100%"
    assert parts["major"].points == 16 and parts["major"].detail == "近7天 2 起"
    assert parts["alerts"].detail == "红色 1 条、黄色 2 条" and parts["alerts"].points == 14
    assert parts["orders"].points == 3
    assert s.score == 25 + 16 + 14 + 3 and (s.level, s.level_label) == ("orange", "橙色 · 较大风险")
    assert s.as_dict()["components"][0]["key"] == "surge"


def test_bands_and_formula():
    assert [score.band(v)[0] for v in (0, 24.9, 25, 50, 74.9, 75, 100)] == [
        "blue", "blue", "yellow", "orange", "orange", "red", "red"]
    lines = score.formula()
    assert lines[0].startswith("风险指数 0–100")
    assert any("每起 8 分，上限 20" in line for line in lines)
    with pytest.raises(ValueError):
        score.Weights(major_max=30)  # the caps would add up to 110


def test_state_names_are_the_incident_loops():
    assert set(score.NOT_COUNTED) <= set(workflow.STATES)
    assert set(score.RESOLVED) <= set(workflow.STATES)
    assert set(score.NODE_OPEN) == set(orders_service.OPEN)
    assert set(score.NODE_UNACKED) == set(orders_service.UNACKED)
    assert set(score.LIVE_ALERTS) == set(alerts_service.LIVE)


def _row(days_ago: float, township="T1", grid="T1-G1", type="dispute", severity=4,
         status="reported"):
    return {"township_code": township, "grid_code": grid, "type": type, "severity": severity,
            "status": status, "occurred_at": NOW - timedelta(days=days_ago)}


def test_collect_counts_windows_from_plain_rows():
    rows = [
        _row(0), _row(6.99, severity=2), _row(1, type="mass", severity=1),  # recent
        _row(7.01), _row(34.9),  # the 4 weeks before
        _row(35.1),  # too old for anything
        _row(1, status="false_alarm"), _row(2, status="merged"),  # not incidents
        _row(5, status="closed"),  # counts, but is no backlog
        _row(2, township=None),  # outside every township
        _row(3.5, township="T2", grid="T2-G1"), _row(2.9, township="T2", grid="T2-G1"),
    ]
    got = score.collect(rows, now=NOW)
    assert set(got) == {"T1", "T2"}
    t1 = got["T1"]
    assert (t1.incidents_7d, t1.incidents_prev_28d, t1.major_7d, t1.mass_7d) == (4, 2, 2, 1)
    # backlog: 3 to 30 days old, not closed: 5 (closed), 6.99, 7.01 -> the two open ones
    assert t1.backlog == 2
    # repeat places come from the watch's live repeat_place alerts, not from raw counts
    assert t1.repeat_places == 0
    assert got["T2"].repeat_places == 0 and got["T2"].backlog == 1
    spots = [{"rule": "repeat_place", "level": "yellow", "status": "open",
              "units": ["T1", "T1-G1"]},
             {"rule": "repeat_place", "level": "yellow", "status": "resolved", "units": ["T1"]}]
    with_alerts = score.collect(rows, now=NOW, alerts=spots,
                                township_of=lambda code: code.split("-")[0])
    assert with_alerts["T1"].repeat_places == 1 and with_alerts["T1"].alerts == {}


def test_collect_alerts_by_township_and_orders_by_deadline():
    townships = {"T1": "T1", "T1-G1": "T1", "T2": "T2", "DEMO": None}
    alerts = [
        {"rule": "spike", "level": "red", "status": "open", "units": ["T1-G1", "T1"]},  # once
        {"rule": "mass_gathering", "level": "orange", "status": "acknowledged",
         "units": ["T2", "DEMO"]},
        {"rule": "spike", "level": "yellow", "status": "resolved", "units": ["T1"]},
        {"rule": "severity", "level": "red", "status": "open", "units": ["T1"]},  # = major
        {"rule": "overdue", "level": "orange", "status": "open", "units": ["T1"]},  # = orders
    ]
    hour = timedelta(hours=1)
    nodes = [
        {"township_code": "T1", "state": "issued", "ack_by": NOW - hour, "due_by": NOW + hour},
        {"township_code": "T1", "state": "in_progress", "ack_by": NOW - hour, "due_by": NOW - hour},
        {"township_code": "T1", "state": "acknowledged", "ack_by": NOW - hour,
         "due_by": NOW + hour},
        {"township_code": "T1", "state": "completed", "ack_by": NOW - hour, "due_by": NOW - hour},
    ]
    got = score.collect([], now=NOW, alerts=alerts, nodes=nodes, township_of=townships.get)
    assert dict(got["T1"].alerts) == {"red": 1} and dict(got["T2"].alerts) == {"orange": 1}
    assert (got["T1"].open_orders, got["T1"].overdue_orders) == (1, 2)
    ranked = score.rank(got, ["T1", "T2", "T3"])
    assert list(ranked) == ["T1", "T2", "T3"] and ranked["T3"].score == 0


# --- hotspots: pure -------------------------------------------------------------------------------

ORIGIN = (120.225, 30.05)


def lonlat(x, y):
    lon, lat = hotspots.unproject([x], [y], ORIGIN)
    return float(lon[0]), float(lat[0])


def test_points_of_one_place_share_a_hexagon_and_far_points_do_not():
    a = lonlat(0, 0)
    b = lonlat(150, 120)  # same hexagon (1 km across)
    c = lonlat(3000, 0)  # three hexagons east
    bins = hotspots.hexbin([a[0], b[0], c[0]], [a[1], b[1], c[1]], cell_m=1000, origin=ORIGIN,
                           groups=["dispute", "mass", "dispute"])
    assert bins.count.tolist() == [2.0, 1.0]
    assert [(int(q), int(r)) for q, r in zip(bins.q, bins.r)] == [(0, 0), (3, 0)]
    assert bins.groups["mass"].tolist() == [1.0, 0.0]
    assert bins.groups["dispute"].tolist() == [1.0, 1.0]


def test_every_point_lies_in_its_hexagon_and_totals_are_kept():
    rng = random.Random(4)
    pts = [lonlat(rng.uniform(-20_000, 20_000), rng.uniform(-15_000, 15_000)) for _ in range(3000)]
    lon, lat = [p[0] for p in pts], [p[1] for p in pts]
    weights = [rng.randint(1, 3) for _ in pts]
    bins = hotspots.hexbin(lon, lat, cell_m=1500, origin=ORIGIN, weights=weights)
    assert bins.count.sum() == sum(weights)
    assert list(bins.count) == sorted(bins.count, reverse=True)
    fc = hotspots.to_geojson(bins)
    polys = {f["id"]: shapely.geometry.shape(f["geometry"]) for f in fc["features"]}
    x, y = hotspots.project(lon, lat, ORIGIN)
    q, r = hotspots.hex_index(x, y, 1500)
    for k in range(0, 3000, 7):
        poly = polys[f"{q[k]}:{r[k]}"]
        assert poly.buffer(1e-6).contains(shapely.Point(lon[k], lat[k]))
    assert sum(f["properties"]["count"] for f in fc["features"]) == sum(weights)


def test_hexagons_have_the_stated_size_in_metres():
    xs, ys = hotspots.hex_corners([0, 5], [0, -3], 1000)
    for k in range(2):
        area = shapely.Polygon(list(zip(xs[k], ys[k]))).area
        assert area == pytest.approx(math.sqrt(3) / 2 * 1000 ** 2)
    cx, cy = hotspots.hex_center([0, 1], [0, 0], 1000)
    assert math.hypot(cx[1] - cx[0], cy[1] - cy[0]) == pytest.approx(1000)


def test_hexbin_edge_cases():
    assert len(hotspots.hexbin([], [], cell_m=1000, origin=ORIGIN)) == 0
    assert hotspots.to_geojson(hotspots.hexbin([], [], cell_m=1000, origin=ORIGIN)) == {
        "type": "FeatureCollection", "features": []}
    nan = hotspots.hexbin([float("nan"), 120.2], [30.0, 30.0], cell_m=1000, origin=ORIGIN)
    assert nan.count.tolist() == [1.0]
    with pytest.raises(ValueError):
        hotspots.hexbin([120.2], [30.0], cell_m=10, origin=ORIGIN)


# --- trends and replay: pure ----------------------------------------------------------------------

def test_trend_windows_follow_shanghai_hours_and_days():
    late = datetime(2026, 11, 26, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai
    day = trends.window(late, "30d")
    assert day.start == datetime(2026, 10, 28, tzinfo=SHANGHAI)
    assert day.end == datetime(2026, 11, 27, tzinfo=SHANGHAI)
    assert day.labels()[0] == "10/28" and day.labels()[-1] == "11/26"
    assert day.index(datetime(2026, 11, 26, 16, 0, tzinfo=UTC)) is None  # the next day
    assert day.index(datetime(2026, 11, 25, 16, 0, tzinfo=UTC)) == (0, 29)  # 00:00 today
    assert day.index(datetime(2026, 11, 25, 15, 59, tzinfo=UTC)) == (0, 28)
    assert day.index(datetime(2026, 9, 27, 16, 0, tzinfo=UTC)) == (1, 0)  # 9/28 00:00
    assert day.index(datetime(2026, 9, 27, 15, 59, tzinfo=UTC)) is None
    hour = trends.window(late, "24h")
    assert hour.start == datetime(2026, 11, 26, 0, 0, tzinfo=SHANGHAI)
    assert hour.labels() == [f"{h}时" for h in range(24)]
    with pytest.raises(DomainError) as err:
        trends.window(late, "7d")
    assert err.value.http_status == 422


def test_trend_series_by_type_this_period_against_the_last():
    win = trends.window(NOW, "24h")  # 11:00 yesterday … 11:00 today (Shanghai)
    at = win.start.astimezone(UTC)
    rows = [{"occurred_at": at + timedelta(minutes=5), "type": "dispute"},
            {"occurred_at": at + timedelta(hours=23, minutes=30), "type": "mass"},
            {"occurred_at": at - timedelta(minutes=1), "type": "dispute"},  # previous, last hour
            {"occurred_at": at - timedelta(hours=24), "type": "nonsense"},  # previous, first hour
            {"occurred_at": at - timedelta(hours=25), "type": "dispute"}]  # too old
    counts = trends.count_rows(rows, win)
    out = trends.series(counts, win, ["dispute", "mass", "other"], previous_to_date=1,
                        labels={"dispute": "矛盾纠纷"})
    assert out["current"]["dispute"][0] == 1 and out["current"]["mass"][23] == 1
    assert out["previous"]["dispute"][23] == 1 and out["previous"]["other"][0] == 1
    assert out["sum"] == {"current": 2, "previous": 2, "previous_to_date": 1, "change": 1.0}
    assert out["by_type"][0] == {"type": "dispute", "label": "矛盾纠纷", "current": 1, "previous": 1}
    assert out["labels"][0] == "11时" and out["buckets"][0] == "2026-11-25T11:00:00+08:00"


def test_replay_windows_are_checked():
    start, end = replay.parse_window("2026-11-25T14:00:00+08:00", "2026-11-26T14:00:00+08:00",
                                     now=NOW)
    assert end - start == timedelta(days=1)
    naive, _ = replay.parse_window("2026-11-25 14:00", "2026-11-25T15:00Z", now=NOW)
    assert naive.utcoffset() == timedelta(hours=8) and naive.hour == 14
    bad = [(None, "2026-11-25T15:00"), ("yesterday", "2026-11-25T15:00"),
           ("2026-11-25T15:00", "2026-11-25T15:00"), ("2026-11-24T14:00", "2026-11-25T14:01"),
           ("2026-11-27T00:00", "2026-11-27T01:00")]
    for a, b in bad:
        with pytest.raises(DomainError) as err:
            replay.parse_window(a, b, now=NOW)
        assert err.value.http_status == 422, (a, b)
    items = [{"occurred_at": 2, "seq": 1}, {"occurred_at": 1, "seq": 9},
             {"occurred_at": 2, "seq": 0}]
    assert [i["seq"] for i in replay.in_order(items)] == [9, 0, 1]


# --- the endpoints on a real app ------------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def core(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    c = Core(config.load(data_dir=tmp_path / "data", database_url=url, rate_burst=100_000),
             clock=FixedClock(NOW), bus=InProcessBus())
    yield c
    c.close()


class Api:
    """A Flask app with the auth layer and the risk blueprint around a Core; tokens per role."""

    def __init__(self, core: Core) -> None:
        from flask import Flask

        from command.web import auth
        from command.web.risk_api import risk_api

        server = Flask("risk-test")
        server.extensions["cmdcenter"] = core
        auth.init_app(server, secret_key="test", session_days=1)
        server.register_blueprint(risk_api)
        self.client = server.test_client()
        self.core = core
        self.tokens: dict[str, str] = {}
        with core.write() as s, s.begin():
            self.feed, _ = feeds.create(s, name="risk-test", unit_code="DEMO", now=NOW)
            for name, role, unit in (("duty", "duty", None), ("t01", "township", "DEMO-T01"),
                                     ("g01", "grid", "DEMO-T01-G01")):
                users.create(s, name=name, role=role, unit_code=unit, password=None, now=NOW)
                self.tokens[name] = users.issue_token(s, name=name)

    def get(self, path: str, who: str | None = "duty"):
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.client.get(path, headers=headers)

    def ok(self, path: str, who: str = "duty"):
        r = self.get(path, who)
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json()

    def report(self, when: datetime, grid: str = "DEMO-T01-G01", type: str = "dispute",
               severity: int = 4, lonlat: tuple[float, float] | None = None) -> dict:
        raw = {"id": uuid.uuid4().hex, "type": type, "title": f"{type} {when:%H:%M}",
               "severity": severity, "occurred_at": when.isoformat()}
        if lonlat is None:
            raw["grid"] = grid
        else:
            raw["lon"], raw["lat"] = lonlat
        (out,) = self.core.ingest.submit(self.feed, raw)
        assert out.error is None, out.error
        return out.incident


@pytest.fixture
def api(core):
    return Api(core)


def test_endpoints_need_a_user_and_answer_422_for_bad_parameters(api):
    for path in ("/api/v1/risk", "/api/v1/hotspots", "/api/v1/trends",
                 "/api/v1/replay?from=2026-11-25T10:00&to=2026-11-25T11:00"):
        assert api.get(path, None).status_code == 401
    bad = ["/api/v1/hotspots?days=0", "/api/v1/hotspots?days=31", "/api/v1/hotspots?days=x",
           "/api/v1/hotspots?cell=5", "/api/v1/trends?span=7d", "/api/v1/replay",
           "/api/v1/replay?from=2026-11-25T10:00", "/api/v1/replay?from=x&to=y",
           "/api/v1/replay?from=2026-11-24T10:00&to=2026-11-25T10:01",
           "/api/v1/replay?from=2026-11-25T11:00&to=2026-11-25T10:00"]
    for path in bad:
        r = api.get(path)
        assert r.status_code == 422, path
        error = r.get_json()["error"]
        assert error["code"] in ("invalid_field", "out_of_range", "missing_field")
        assert error["field"]
    assert api.get("/api/v1/risk", "g01").status_code == 403


def test_risk_scores_every_township_and_explains_it(api):
    core = api.core
    for k in range(6):  # a surge in DEMO-T01: nothing before, six disputes this week
        api.report(NOW - timedelta(hours=10 * k + 1))
    api.report(NOW - timedelta(days=2), severity=2, type="mass")
    api.report(NOW - timedelta(days=20), grid="DEMO-T02-G01")
    late = api.report(NOW - timedelta(days=1))
    with core.write() as s, s.begin():
        locator = core.units.current(s)
        orders_service.create_order(s, incident_id=late["id"], targets=["DEMO-T01"],
                                    instruction="到场", by=LEADER, now=NOW - timedelta(hours=5),
                                    locator=locator, ack_minutes=10, due_minutes=60)
        alerts_service.raise_or_update(s, key="spike:T01", rule="spike", level="orange",
                                       units=["DEMO-T01-G02"], incidents=[], message="增多",
                                       now=NOW)
        alerts_service.raise_or_update(s, key="repeat_place:x", rule="repeat_place",
                                       level="yellow", units=["DEMO-T01", "DEMO-T01-G01"],
                                       incidents=[], message="重复", now=NOW)
    body = api.ok("/api/v1/risk")
    by_code = {t["code"]: t for t in body["townships"]}
    assert len(by_code) == 13 and body["formula"][0].startswith("风险指数")
    t01 = by_code["DEMO-T01"]
    parts = {p["key"]: p for p in t01["components"]}
    assert parts["surge"]["points"] == 25  # 8 this week against none before
    assert parts["major"]["points"] == 8 and parts["mass"]["points"] == 5
    assert parts["alerts"]["points"] == 5 and "橙色 1 条" in parts["alerts"]["detail"]
    assert parts["orders"]["points"] == 3 and "超时 1 条" in parts["orders"]["detail"]
    assert parts["repeat"]["points"] == 4  # one live repeat_place alert in DEMO-T01
    assert t01["score"] == sum(p["points"] for p in t01["components"])
    assert t01["inputs"]["incidents_7d"] == 8 and t01["inputs"]["overdue_orders"] == 1
    # only an old incident: no surge, but it is still open after 20 days (backlog)
    assert by_code["DEMO-T02"]["score"] == 0.5
    assert [p["key"] for p in by_code["DEMO-T02"]["components"] if p["points"]] == ["backlog"]
    assert by_code["DEMO-T03"]["score"] == 0 and by_code["DEMO-T03"]["level"] == "blue"
    # a township user sees their own township only
    own = api.ok("/api/v1/risk", "t01")["townships"]
    assert [t["code"] for t in own] == ["DEMO-T01"] and own[0]["score"] == t01["score"]


def test_sql_inputs_equal_the_pure_count_of_the_same_rows(api):
    rng = random.Random(5)
    grids = ["DEMO-T01-G01", "DEMO-T01-G02", "DEMO-T02-G01", "DEMO-T03-G01"]
    made = [api.report(NOW - timedelta(hours=rng.uniform(0, 40 * 24)), grid=rng.choice(grids),
                       type=rng.choice(["dispute", "petition", "mass", "emergency"]),
                       severity=rng.choice([1, 2, 3, 4, 4, 4])) for _ in range(150)]
    with api.core.write() as s, s.begin():  # some are settled, some are false alarms
        for inc in made[::9]:
            s.execute(sa.update(incidents).where(incidents.c.id == inc["id"])
                      .values(status=rng.choice(["closed", "false_alarm", "verified"])))
    with api.core.read() as s:
        rows = [dict(r._mapping) for r in s.execute(sa.select(incidents))]
        locator = api.core.units.current(s)
        got = service.risk_inputs(s, now=NOW, locator=locator)
    assert got == score.collect(rows, now=NOW)


def test_hotspots_count_the_last_days_in_hexagons(api):
    with api.core.read() as s:
        origin = service.origin(s, api.core.units.current(s))
    cx, cy = hotspots.hex_center([-3], [1], 1000)  # a hexagon near the county's centre

    def near(dx, dy):
        lon, lat = hotspots.unproject(cx + dx, cy + dy, origin)
        return float(lon[0]), float(lat[0])

    lon, lat = near(0, 0)
    for hours in (1, 5, 30, 100):
        api.report(NOW - timedelta(hours=hours), lonlat=(lon, lat))
    api.report(NOW - timedelta(hours=2), type="mass", lonlat=near(120, -80))  # same hexagon
    api.report(NOW - timedelta(hours=3), lonlat=near(5000, 0))  # five hexagons east
    api.report(NOW - timedelta(days=8), lonlat=near(5000, 0))  # too old
    body = api.ok("/api/v1/hotspots?days=7")
    assert (body["count"], body["hexagons"], body["max"], body["cell_m"]) == (6, 2, 5, 1000)
    top = body["geojson"]["features"][0]
    assert top["properties"]["count"] == 5
    assert top["properties"]["by_type"] == {"dispute": 4, "mass": 1}
    assert shapely.geometry.shape(top["geometry"]).contains(shapely.Point(lon, lat))
    assert api.ok("/api/v1/hotspots?days=1&cell=500")["count"] == 4
    # a township user counts what they may see: DEMO-T01's incidents only
    assert api.ok("/api/v1/hotspots", "t01")["count"] <= body["count"]


def test_trends_count_by_type_per_hour_and_day(api):
    win = trends.window(NOW, "24h")
    start = win.start.astimezone(UTC)
    api.report(start + timedelta(minutes=1))  # first hour
    api.report(start + timedelta(hours=23), type="mass")  # the running hour (10:00, now)
    api.report(start - timedelta(minutes=1), grid="DEMO-T02-G01")  # previous, last hour
    api.report(start - timedelta(hours=23, minutes=59))  # previous, second hour
    api.report(start - timedelta(hours=30))  # before both: only in the 30-day view
    body = api.ok("/api/v1/trends?span=24h")
    assert body["labels"][0] == "11时" and body["unit"] == "hour"
    assert body["current"]["dispute"][0] == 1 and body["current"]["mass"][23] == 1
    assert body["previous"]["dispute"][23] == 1 and body["previous"]["dispute"][0] == 1
    assert body["sum"]["current"] == 2 and body["sum"]["previous"] == 2
    # so far into the period: until 10:00 yesterday there was one
    assert body["sum"]["previous_to_date"] == 1 and body["sum"]["change"] == 1.0
    days = api.ok("/api/v1/trends?span=30d")
    assert days["labels"][-1] == "11/26" and sum(days["total"]["current"]) == 5
    assert days["total"]["current"][-3:] == [2, 2, 1]  # 11/24, 11/25, today
    # scope: a township user counts their own township's incidents
    own = api.ok("/api/v1/trends?span=24h", "t01")
    assert own["sum"]["current"] == 2 and own["sum"]["previous"] == 1


def test_replay_lists_a_window_in_the_order_things_happened(api):
    base = NOW - timedelta(hours=3)
    made = [api.report(base + timedelta(minutes=m), grid=g)
            for m, g in ((50, "DEMO-T01-G01"), (10, "DEMO-T02-G01"), (30, "DEMO-T01-G01"),
                         (0, "DEMO-T01-G02"), (60, "DEMO-T01-G01"))]
    frm, to = base.astimezone(SHANGHAI), (base + timedelta(hours=1)).astimezone(SHANGHAI)
    path = f"/api/v1/replay?from={frm.isoformat()}&to={to.isoformat()}".replace("+", "%2B")
    body = api.ok(path)
    assert body["count"] == 4 and not body["truncated"]  # `to` is excluded
    times = [i["occurred_at"] for i in body["items"]]
    assert times == sorted(times)
    assert [i["id"] for i in body["items"]] == [made[3]["id"], made[1]["id"], made[2]["id"],
                                                made[0]["id"]]
    item = body["items"][0]
    assert item["township"]["name"] and "phone" not in item and "reporter" not in item
    own = api.ok(path, "g01")
    assert [i["id"] for i in own["items"]] == [made[2]["id"], made[0]["id"]]
    # a naive time is Shanghai time
    naive = api.ok(f"/api/v1/replay?from={frm:%Y-%m-%dT%H:%M}&to={to:%Y-%m-%dT%H:%M}")
    assert naive["count"] == 4


def test_risk_json_is_plain(api):
    api.report(NOW - timedelta(hours=1))
    text = api.get("/api/v1/risk").get_data(as_text=True)
    assert "风险指数" in text  # UTF-8, not \\u escapes
    assert json.loads(text)["as_of"] == "2026-11-26T10:00:00+08:00"


def test_the_docstring_examples_hold():
    import doctest

    for module in (score, hotspots, trends, replay):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__
