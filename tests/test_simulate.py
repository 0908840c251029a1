"""The feed simulator: realistic, valid-by-default reports, and a real run against a server."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pytest
import shapely

from command.errors import DomainError
from command.incidents.schemas import validate
from command.demo.simulate import TYPE_WEIGHTS, Area, ReportFactory, Stats, run
from layers.demo import demo_county

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def county():
    return demo_county()


@pytest.fixture(scope="module")
def reports(county):
    return ReportFactory(county, seed=42).batch(5000, now=NOW)


def test_reports_are_valid_inside_the_county_and_plausible(county, reports):
    outline = county[county.level == "county"].geometry.iloc[0]
    kinds, severities, errors = Counter(), Counter(), Counter()
    for raw in reports:
        try:
            report = validate(raw, now=NOW)
        except DomainError as err:
            errors[err.code] += 1
            continue
        kinds[report.type] += 1
        severities[report.severity] += 1
        assert shapely.contains_xy(outline, report.lon, report.lat)
        assert report.title and report.description
        assert 0 <= (NOW - report.occurred).total_seconds() <= 15 * 60
        if report.type == "mass":
            assert 30 <= report.people <= 300 and report.severity in (2, 3)
        if report.phone:
            assert len(report.phone) == 11 and report.phone.startswith("1")
    valid = sum(kinds.values())
    assert 0.005 <= sum(errors.values()) / len(reports) <= 0.02  # ~1 % malformed
    assert set(kinds) == set(TYPE_WEIGHTS)
    assert kinds["dispute"] > kinds["complaint"] > kinds["emergency"] > kinds["mass"]
    assert kinds["petition"] > kinds["legal"]
    assert severities[4] / valid > 0.75 and severities[3] > severities[2] > severities[1]
    ids = [r["id"] for r in reports]
    assert 0.005 <= 1 - len(set(ids)) / len(ids) <= 0.02  # ~1 % resends of an earlier report


def test_resends_repeat_an_earlier_report_exactly(reports):
    first: dict[str, dict] = {}
    resent = 0
    for raw in reports:
        if raw["id"] in first:
            assert raw == first[raw["id"]]
            resent += 1
        first.setdefault(raw["id"], raw)
    assert resent > 0


def test_a_seed_makes_the_same_reports(county):
    a = ReportFactory(county, seed=7).batch(200, now=NOW)
    b = ReportFactory(county, seed=7).batch(200, now=NOW)
    c = ReportFactory(county, seed=8).batch(200, now=NOW)
    assert a == b
    assert a != c


def test_areas_without_polygons_report_by_grid_code():
    factory = ReportFactory([Area("DEMO-T01-G01", "东关社区网格")], seed=1, malformed=0,
                            resend=0)
    report = factory.next(now=NOW)
    assert report["grid"] == "DEMO-T01-G01" and "lon" not in report
    validate(report, now=NOW)


def test_summary_reads_as_one_line():
    stats = Stats(connected=True, sent=100, accepted=97, duplicates=1)
    stats.rejected.update({"missing_field": 1, "out_of_range": 1})
    assert stats.summary() == ("sent 100, accepted 97, duplicates 1, rejected 2 "
                               "(missing_field 1, out_of_range 1)")


def test_run_sends_to_a_real_server(server):
    token = server.add_feed("sim-test", "DEMO-T01")
    stats = run(server.url, token, rate=100, count=50, seed=3)
    assert stats.connected, stats.reason
    assert stats.sent == 50 and stats.errors == 0
    assert stats.accepted >= 45
    assert stats.accepted + stats.duplicates + sum(stats.rejected.values()) == 50
    body = server.get("/api/v1/incidents", params={"since": 0, "limit": 500},
                        timeout=10).json()
    mine = [i for i in body["items"] if i["feed"] == "sim-test"]
    assert len(mine) == stats.accepted
    assert all(i["township"] is not None and not i["outside"] for i in mine)


def test_a_bad_token_is_refused_with_a_reason(server):
    stats = run(server.url, "cf_not-a-token", count=5)
    assert stats.connected is False
    assert stats.reason and "refused" in stats.reason
    assert stats.summary().startswith("not connected: refused")
