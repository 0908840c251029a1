"""The event rules on constructed streams: severity, mass gathering, repeat place, feed silence."""

from datetime import datetime, timedelta, timezone

import pytest

from alerts.config import load_config
from alerts.rules import (
    feed_silence,
    mass_gathering,
    parse_time,
    repeat_place,
    severity,
)

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=CST)
CHENGGUAN = {"code": "330100001", "name": "城关街道"}
XIAOZHEN = {"code": "330100002", "name": "小镇"}
GRID = {"code": "330100001-01", "name": "城关一网格"}
LON, LAT = 120.1000, 30.2000


def ev(id, minutes=0.0, *, type="dispute", severity=4, people=None, dx_m=0.0, dy_m=0.0,
       township=CHENGGUAN, grid=GRID, iso=False, feed="hotline"):
    """Return an event `minutes` after T0, offset dx/dy metres east/north of (LON, LAT)."""
    at = T0 + timedelta(minutes=minutes)
    return {"id": id, "type": type, "severity": severity, "people": people,
            "occurred_at": at.isoformat() if iso else at,
            "lon": LON + dx_m / 96_300.0, "lat": LAT + dy_m / 111_200.0,
            "township": township, "grid": grid, "feed": feed}


@pytest.fixture(scope="module")
def cfg():
    return load_config()


# --- severity ---

@pytest.mark.parametrize(("level_no", "level"), [(1, "red"), (2, "orange"), (3, None), (4, None)])
def test_severity_levels(cfg, level_no, level):
    alert = severity(ev("E1", type="emergency", severity=level_no), cfg)
    assert (alert.level if alert else None) == level
    if alert:
        assert alert.key == "severity:E1" and alert.rule == "severity"
        assert alert.incidents == ("E1",) and alert.units == ("330100001", "330100001-01")
        assert "城关街道" in alert.message and "突发事件" in alert.message
        assert ("Ⅰ级" if level_no == 1 else "Ⅱ级") in alert.message


def test_severity_without_level_is_quiet(cfg):
    assert severity(ev("E1", severity=None), cfg) is None


# --- mass gathering ---

def test_many_people_in_one_report(cfg):
    alert = mass_gathering(ev("M1", type="petition", people=45), [], cfg)
    assert alert.level == "orange" and alert.key == "mass_gathering:M1"
    assert alert.incidents == ("M1",)
    assert "45 人" in alert.message and "30 人" in alert.message and "城关街道" in alert.message
    assert mass_gathering(ev("M2", people=150), [], cfg).level == "red"
    assert mass_gathering(ev("M3", people=29), [], cfg) is None
    assert mass_gathering(ev("M4", people=None), [], cfg) is None


def test_reports_clustered_in_space_and_time_form_one_group(cfg):
    recent = [ev("A", 0, type="complaint"), ev("B", 8, type="public_safety", dx_m=200, iso=True),
              ev("C", 12, type="petition", dy_m=-300),
              ev("far", 10, dx_m=2000), ev("old", -45), ev("later-far", 20, dy_m=900)]
    alert = mass_gathering(ev("D", 20, type="dispute", dx_m=100, dy_m=100), recent, cfg)
    assert alert is not None and alert.level == "orange"
    assert alert.incidents == ("A", "B", "C", "D")  # time order; far and old left out
    assert alert.key == "mass_gathering:A"
    assert "4 起" in alert.message and "城关街道" in alert.message
    assert "20 分钟" in alert.message and "14:00–14:20" in alert.message


def test_group_key_is_stable_while_the_group_grows(cfg):
    stream = [ev("A", 0), ev("B", 5, dx_m=100), ev("C", 9, dy_m=100), ev("D", 14, dx_m=-100)]
    keys = []
    for i in range(2, len(stream)):
        alert = mass_gathering(stream[i], stream[:i], cfg)
        keys.append(alert.key)
        assert len(alert.incidents) == i + 1
    assert keys == ["mass_gathering:A", "mass_gathering:A"]


def test_two_reports_or_spread_out_reports_stay_quiet(cfg):
    assert mass_gathering(ev("B", 5), [ev("A", 0)], cfg) is None
    spread = [ev("A", 0, dx_m=1200), ev("B", 5, dx_m=-1200), ev("C", -50), ev("D", 55)]
    assert mass_gathering(ev("E", 0), spread, cfg) is None


def test_cluster_with_a_big_report_takes_the_higher_level(cfg):
    alert = mass_gathering(ev("C", 10, people=120), [ev("A", 0), ev("B", 5)], cfg)
    assert alert.level == "red" and len(alert.incidents) == 3
    assert "120 人" in alert.message and "3 起" in alert.message


def test_events_without_coordinates_do_not_cluster(cfg):
    lost = dict(ev("X", 3), lon=None, lat=None)
    assert mass_gathering(lost, [ev("A", 0), ev("B", 1)], cfg) is None


# --- repeat place ---

def test_repeat_disputes_in_one_grid():
    cfg = load_config(overrides={"repeat_place": {"match": "grid"}})
    history = [ev("P1", -60 * 24 * 20, type="petition", dx_m=900),   # same grid, far apart
               ev("D1", -60 * 24 * 5), ev("X1", -60 * 24 * 3, type="complaint"),
               ev("D0", -60 * 24 * 40)]                                # too old
    alert = repeat_place(ev("D2", 0), history, cfg)
    assert alert is not None and alert.level == "yellow"
    assert alert.key == "repeat_place:grid:330100001-01"
    assert alert.incidents == ("P1", "D1", "D2")
    assert "3 次" in alert.message and "城关一网格" in alert.message and "30天" in alert.message
    assert "信访诉求 1 起" in alert.message and "矛盾纠纷 2 起" in alert.message


def test_repeat_place_by_default_is_the_same_spot_not_the_whole_grid(cfg):
    history = [ev("P1", -60 * 24 * 20, type="petition", dx_m=900), ev("D1", -60 * 24 * 5)]
    assert cfg.repeat_place.match == "radius"
    assert repeat_place(ev("D2", 0), history, cfg) is None  # P1 is 900 m away in the grid
    near = [ev("P1", -60 * 24 * 20, type="petition", dx_m=120), ev("D1", -60 * 24 * 5)]
    alert = repeat_place(ev("D2", 0), near, cfg)
    assert alert is not None and alert.key == "repeat_place:P1" and "200米范围内" in alert.message


def test_repeat_place_by_distance_across_grids(cfg):
    other_grid = {"code": "330100002-07", "name": "小镇七网格"}
    history = [ev("D1", -60 * 24 * 4, grid=other_grid, township=XIAOZHEN, dx_m=150),
               ev("D2", -60 * 24 * 2, grid=None, dy_m=-100)]
    alert = repeat_place(ev("D3", 0, grid=None), history, cfg)
    assert alert is not None and alert.key == "repeat_place:D1"
    assert set(alert.units) >= {"330100001", "330100002"}


def test_repeat_place_quiet_cases(cfg):
    two = [ev("D1", -600)]
    assert repeat_place(ev("D2", 0), two, cfg) is None
    assert repeat_place(ev("C1", 0, type="complaint"), [ev("D1", -1), ev("D2", -2)], cfg) is None
    elsewhere = [ev("D1", -600, grid={"code": "G9", "name": "九"}, dx_m=5000),
                 ev("D2", -300, grid={"code": "G9", "name": "九"}, dx_m=5000)]
    assert repeat_place(ev("D3", 0), elsewhere, cfg) is None


def test_repeat_place_orange_when_many(cfg):
    history = [ev(f"D{i}", -60 * 24 * i) for i in range(1, 6)]
    alert = repeat_place(ev("D0", 0), history, cfg)
    assert alert.level == "orange" and "6 次" in alert.message


def test_reports_of_one_occasion_are_not_repeats(cfg):
    """Three neighbours reporting one quarrel within the hour is one occasion, not three."""
    same_evening = [ev("D1", -30), ev("D2", -10, type="petition")]
    assert repeat_place(ev("D3", 0), same_evening, cfg) is None
    later = [*same_evening, ev("D4", -60 * 24 * 3), ev("D5", -60 * 24 * 9)]
    alert = repeat_place(ev("D3", 0), later, cfg)
    assert alert is not None and "3 次、5 起" in alert.message


# --- feed silence ---

def test_regular_feed_quiet_too_long(cfg):
    now = T0
    gaps = {"hotline": [60.0] * 200 + [300.0] * 2, "video": [30.0] * 100}
    last = {"hotline": now - timedelta(minutes=25), "video": now - timedelta(seconds=40)}
    alerts = feed_silence(last, gaps, now, cfg)
    assert [a.key for a in alerts] == ["feed_silence:hotline"]
    alert = alerts[0]
    # q99 of the gaps is 60 s; × 2 = 2 min, under the 10-minute floor
    assert alert.level == "blue" and alert.rule == "feed_silence"
    assert "25 分钟" in alert.message and "10 分钟" in alert.message and "hotline" in alert.message


def test_feed_silence_turns_yellow_when_much_longer(cfg):
    last = {"sensor": T0 - timedelta(hours=2)}
    alert = feed_silence(last, {"sensor": [600.0] * 50}, T0, cfg)[0]
    # threshold max(600 × 2, 600) = 20 min; 2 h > 3 × 20 min
    assert alert.level == "yellow" and "2.0 小时" in alert.message and "20 分钟" in alert.message


def test_feed_silence_quiet_cases(cfg):
    last = {"new": T0 - timedelta(days=1), "slow": T0 - timedelta(hours=5),
            "busy": T0 - timedelta(minutes=9)}
    gaps = {"new": [60.0] * 5,                         # too few gaps to be called regular
            "slow": [3600.0 * 4] * 100 + [3600.0 * 3] * 10,  # usual gap 4 h: 5 h is fine
            "busy": [60.0] * 100}                       # 9 min is under the 10-min floor
    assert feed_silence(last, gaps, T0, cfg) == []


def test_iso_strings_and_naive_times():
    assert parse_time("2026-03-02T14:00:00+08:00") == T0
    assert parse_time("2026-03-02T06:00:00Z") == T0
    with pytest.raises(ValueError):
        parse_time("2026-03-02T14:00:00")
