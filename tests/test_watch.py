"""The risk watch on a real database (SQLite and PostgreSQL) with a fixed clock: rules run as
incidents arrive, one alert per situation, resolution, audit, restarts and the silence timer."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from alerts.config import load_config
from command import config
from command.alerts import service as alerts
from command.alerts.models import alert_events
from command.alerts.watch import CURSOR, UPDATE_GAP, RiskWatch
from command.bus import InProcessBus
from command.clock import SHANGHAI, FixedClock
from command.core import Core
from command.db import get_meta
from command.feeds import service as feeds
from tests import test_loop
from tests.test_loop import DUTY, LEADER, move

core = test_loop.core
NOW = test_loop.NOW  # 2026-11-26 10:00 China time
_ids = itertools.count(1)


def feed(core, name="watch-feed", unit="DEMO-T01"):
    with core.write() as s, s.begin():
        if name in {f.name for f in feeds.get_all(s)}:
            return feeds.get(s, name=name)
        found, _ = feeds.create(s, name=name, unit_code=unit, now=NOW)
    return found


def report(core, f, *, minutes=-5, grid="DEMO-T01-G01", type="dispute", severity=4,
           people=None, lon=None, lat=None, id=None):
    body = {"id": id or f"w-{next(_ids)}", "type": type, "severity": severity,
            "occurred_at": (core.clock.now() + timedelta(minutes=minutes)).astimezone(SHANGHAI).isoformat(),
            "title": "测试事件"}
    if lon is not None:
        body.update(lon=lon, lat=lat)
    else:
        body["grid"] = grid
    if people is not None:
        body["people"] = people
    (out,) = core.ingest.submit(f, body)
    assert out.error is None, out.error
    return out.incident


def live(core, rule=None):
    with core.read() as s:
        return [a for a in alerts.list_alerts(s) if rule is None or a["rule"] == rule]


def test_severity_alert_once_per_incident_and_resolved_when_closed(core):
    watch = RiskWatch(core)
    watch(NOW)  # primes: nothing stored is news
    f = feed(core)
    inc = report(core, f, severity=1)
    report(core, f, severity=4)
    watch(NOW)
    (alert,) = live(core, "severity")
    assert alert["level"] == "red" and alert["incidents"] == [inc["id"]]
    assert "Ⅰ级" in alert["message"] and alert["units"] == ["DEMO-T01", "DEMO-T01-G01"]
    watch(NOW)  # nothing new: nothing changes
    assert live(core, "severity") == [alert]
    for to in ("accepted", "false_alarm"):
        move(core, inc["id"], to, DUTY)
    watch(NOW)
    assert live(core, "severity") == []
    with core.read() as s:
        (gone,) = [a for a in alerts.list_alerts(s, "all") if a["rule"] == "severity"]
        assert gone["status"] == "resolved"
        assert [h["action"] for h in alerts.history(s, gone["id"])] == ["raised", "resolved"]


def test_mass_gathering_grows_one_alert_and_merge_offer(core):
    watch = RiskWatch(core)
    watch(NOW)
    f = feed(core)
    lon, lat = _grid_point(core)
    first = report(core, f, lon=lon, lat=lat, minutes=-20)
    report(core, f, lon=lon + 0.001, lat=lat, minutes=-15, type="public_safety")
    watch(NOW)
    assert live(core, "mass_gathering") == []  # two reports are not a gathering
    report(core, f, lon=lon, lat=lat + 0.001, minutes=-10, type="complaint")
    watch(NOW)
    (alert,) = live(core, "mass_gathering")
    assert len(alert["incidents"]) == 3 and alert["incidents"][0] == first["id"]
    assert "3 起" in alert["message"] and "合并" in alert["message"]
    report(core, f, lon=lon - 0.001, lat=lat, minutes=-2)
    watch(NOW)
    # a routine update (same level) waits for its gap: no stream of rewrites under a storm
    (held,) = live(core, "mass_gathering")
    assert held["seq"] == alert["seq"] and len(held["incidents"]) == 3
    watch(NOW + UPDATE_GAP)  # the timer's next pass sends it, with nothing new arriving
    (grown,) = live(core, "mass_gathering")
    assert grown["id"] == alert["id"] and len(grown["incidents"]) == 4
    assert "4 起" in grown["message"] and grown["seq"] > alert["seq"]


def test_spike_on_a_cell_with_a_quiet_baseline(core):
    watch = RiskWatch(core)
    watch(NOW)
    f = feed(core)
    for k in range(3):  # one a week at this hour, the weeks before
        report(core, f, minutes=-5 - 7 * 24 * 60 * (k + 1), type="petition")
    watch(NOW)
    assert live(core, "spike") == []
    for k in range(6):
        report(core, f, minutes=-50 + k, type="petition",
               grid=f"DEMO-T01-G0{1 + k % 3}")
    watch(NOW)
    (alert,) = live(core, "spike")
    assert alert["units"] == ["DEMO-T01"] and len(alert["incidents"]) == 6
    assert "信访" in alert["message"] and "6 起" in alert["message"]
    assert alert["expires_at"] == "2026-11-26T11:00:00+08:00"  # the window ends 10:00 + 1 h
    watch(NOW + timedelta(minutes=61))  # the situation ran out
    assert live(core, "spike") == []


def test_repeat_place_counts_one_spot_over_days(core):
    watch = RiskWatch(core)
    watch(NOW)
    f = feed(core)
    lon, lat = core.locator().point_in("DEMO-T02-G01")
    for day in (20, 9):
        report(core, f, minutes=-day * 24 * 60, lon=lon, lat=lat, type="dispute")
    watch(NOW)
    assert live(core, "repeat_place") == []
    report(core, f, lon=lon, lat=lat, type="petition")
    report(core, f, lon=lon, lat=lat, type="emergency")  # not a dispute/petition
    watch(NOW)
    (alert,) = live(core, "repeat_place")
    assert alert["level"] == "yellow" and len(alert["incidents"]) == 3
    assert "DEMO-T02-G01" in alert["units"] and "200米范围内" in alert["message"]
    # the oldest leaves the 30 days 10 days from now: the situation ends then
    assert alert["expires_at"] == (NOW + timedelta(days=10)).astimezone(SHANGHAI).isoformat()


def test_grid_placed_reports_take_no_part_in_distance_rules(core):
    """Placed only at their grid (approximate), reports neither make a repeat place nor a
    gathering, however many there are (requirement of the one-window issue)."""
    watch = RiskWatch(core)
    watch(NOW)
    f = feed(core)
    for day in (20, 9, 0):
        report(core, f, minutes=-day * 24 * 60 - 5, grid="DEMO-T02-G01", type="dispute")
    for _ in range(4):
        report(core, f, grid="DEMO-T02-G01", type="emergency")
    watch(NOW)
    assert live(core, "repeat_place") == [] and live(core, "mass_gathering") == []


def test_restart_loses_nothing_and_raises_nothing_twice(core):
    watch = RiskWatch(core)
    watch(NOW)
    f = feed(core)
    report(core, f, severity=2)
    watch(NOW)
    (alert,) = live(core)
    seq = alert["seq"]
    late = report(core, f, severity=1)  # arrives while no watch runs
    again = RiskWatch(core)  # a new process: primes from the database, cursor from meta
    again(NOW)
    rules = sorted((a["level"], a["incidents"][0]) for a in live(core))
    assert rules == [("orange", alert["incidents"][0]), ("red", late["id"])]
    assert [a for a in live(core) if a["id"] == alert["id"]][0]["seq"] == seq
    with core.read() as s:
        assert int(get_meta(s, CURSOR)) >= late["seq"]


def test_resolved_alert_not_reopened_by_a_replayed_incident(core):
    watch = RiskWatch(core)
    watch(NOW)
    f = feed(core)
    inc = report(core, f, severity=1)
    watch(NOW)
    (alert,) = live(core)
    with core.write() as s, s.begin():
        alerts.resolve(s, alert["key"], NOW)
    move(core, inc["id"], "accepted", DUTY)  # the incident changes: the watch sees it again
    RiskWatch(core)(NOW)  # a fresh stream: the incident looks new to it
    assert live(core) == []


def test_ack_and_dismiss_are_audited_and_dismiss_needs_a_note(core):
    watch = RiskWatch(core)
    watch(NOW)
    report(core, feed(core), severity=1)
    watch(NOW)
    (alert,) = live(core)
    assert "duty" in DUTY.name
    with core.write() as s, s.begin():
        with pytest.raises(alerts.DomainError):
            alerts.act(s, alert["id"], "dismiss", DUTY, "  ", now=NOW)
        alerts.act(s, alert["id"], "ack", DUTY, "已电话核实", now=NOW)
        alerts.act(s, alert["id"], "dismiss", LEADER, "已处置完毕，无需跟进", now=NOW)
    with core.read() as s:
        trail = alerts.history(s, alert["id"])
    assert [(h["action"], h["by"], h["status"]) for h in trail] == [
        ("raised", None, "open"), ("ack", DUTY.name, "acknowledged"),
        ("dismiss", LEADER.name, "dismissed")]
    assert trail[1]["note"] == "已电话核实"


def test_feed_silence_raised_by_the_timer_and_ended_by_the_next_report(core):
    f = feed(core, "regular")
    for k in range(30):
        core.clock._at = NOW - timedelta(minutes=10 * (30 - k))
        report(core, f, minutes=0)
    core.clock._at = NOW
    watch = RiskWatch(core)
    watch(NOW - timedelta(hours=2))  # the watch has run since before the silence
    assert live(core, "feed_silence") == []
    later = NOW + timedelta(minutes=25)
    watch.tick(later)  # quiet 35 min; usual ≤ 10 min × 2, floor 10 min → alert
    (alert,) = live(core, "feed_silence")
    assert alert["level"] == "blue" and "regular" in alert["message"]
    core.clock._at = later
    report(core, f, minutes=0)
    watch(later)
    assert live(core, "feed_silence") == []


def test_watch_downtime_is_not_a_feed_silence(core):
    f = feed(core, "regular2")
    for k in range(30):
        core.clock._at = NOW - timedelta(minutes=10 * (30 - k))
        report(core, f, minutes=0)
    core.clock._at = NOW + timedelta(hours=5)
    RiskWatch(core)(NOW + timedelta(hours=5))  # the server was down for hours: give feeds time
    assert live(core, "feed_silence") == []


def _grid_point(core):
    with core.read() as s:
        return core.units.current(s).point_in("DEMO-T03-G01")


def test_history_written_in_bulk_is_baseline_not_news(core):
    """Rows received long ago (seed-history, an import) join the baselines and raise nothing."""
    watch = RiskWatch(core)
    watch(NOW)
    f = feed(core)
    core.clock._at = NOW - timedelta(days=2)
    old = report(core, f, severity=1)  # received two days ago, stored after the watch's cursor
    core.clock._at = NOW
    watch(NOW)
    assert live(core) == [] and old["id"] in watch.stream.events
