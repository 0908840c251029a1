"""The rules fed one arrival at a time (alerts.stream): the same answers as the pure rules, a
burst costs one proposal per situation, and the stated spike false-alarm rate holds on the
incremental path too."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from alerts.config import load_config
from alerts.rules import false_alarm_rate_per_cell_day
from alerts.stream import RuleStream

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=CST)


@pytest.fixture(scope="module")
def cfg():
    return load_config()


def event(i, at, *, township="T1", type="dispute", lon=120.0, lat=30.0, severity=4,
          people=None, grid="T1-G1"):
    return {"id": str(i), "type": type, "severity": severity, "people": people,
            "occurred_at": at, "received_at": at, "lon": lon, "lat": lat,
            "township": {"code": township, "name": f"{township}镇"},
            "grid": {"code": grid, "name": f"{grid}网格"} if grid else None,
            "feed": "f", "status": "reported"}


def test_steady_poisson_stream_keeps_the_stated_false_alarm_rate(cfg):
    """40 township × type cells at 1.5 an hour: 4 weeks to learn, then 14 days counted."""
    rng = np.random.default_rng(20261126)
    stream = RuleStream(cfg, started=T0)
    cells = [(f"T{k // 4}", ("dispute", "petition", "complaint", "legal")[k % 4])
             for k in range(40)]
    days, learn = 42, 28
    alarms: set = set()
    n = 0
    for hour in range(days * 24):
        start = T0 + timedelta(hours=hour)
        arrivals = []
        for township, type_code in cells:
            for _ in range(rng.poisson(1.5)):
                at = start + timedelta(seconds=float(rng.uniform(0, 3599)))
                arrivals.append(event(n, at, township=township, type=type_code,
                                      lon=120 + rng.uniform(0, 0.5), lat=30 + rng.uniform(0, 0.5),
                                      grid=None))
                n += 1
        arrivals.sort(key=lambda e: e["occurred_at"])
        for e in arrivals:
            stream.add(e, now=e["occurred_at"], evaluate=hour >= learn * 24)
            for r in stream.flush(e["occurred_at"]):
                if r.proposal.rule == "spike":
                    alarms.add((r.proposal.key, r.expires_at))  # one per cell and window
    cell_days = len(cells) * (days - learn)
    rate = len(alarms) / cell_days
    stated = false_alarm_rate_per_cell_day(cfg)
    assert stated == pytest.approx(0.05)
    assert rate <= stated, f"{len(alarms)} false alarms in {cell_days} cell-days"


def test_a_burst_into_one_place_makes_one_proposal_per_situation(cfg):
    stream = RuleStream(cfg, started=T0)
    now = T0 + timedelta(days=30, hours=10)
    for i in range(400):  # a crowd reporting from one square within 20 minutes
        at = now - timedelta(minutes=20) + timedelta(seconds=3 * i)
        stream.add(event(i, at, lon=120 + 0.00001 * (i % 7), lat=30.0), now=now)
    out = stream.flush(now)
    rules = sorted(r.proposal.rule for r in out)
    assert rules == ["mass_gathering", "spike"]  # one occasion: not a repeat place
    (mass,) = [r.proposal for r in out if r.proposal.rule == "mass_gathering"]
    assert mass.data["reports"] == 400 and len(mass.incidents) == 400
    assert stream.flush(now) == []  # nothing new: nothing proposed


def test_a_gathering_grows_under_one_key_across_flushes(cfg):
    stream = RuleStream(cfg, started=T0)
    now = T0 + timedelta(hours=10)
    keys = set()
    for i in range(6):
        at = now - timedelta(minutes=12 - 2 * i)
        stream.add(event(i, at, type=("dispute", "emergency")[i % 2],
                         lon=120 + 0.0004 * i), now=now)
        keys |= {r.proposal.key for r in stream.flush(now) if r.proposal.rule == "mass_gathering"}
    assert keys == {"mass_gathering:0"}


def test_final_or_dropped_incidents_raise_nothing(cfg):
    stream = RuleStream(cfg, started=T0)
    now = T0 + timedelta(hours=10)
    closed = {**event("c", now, severity=1), "status": "closed"}
    merged = {**event("m", now, severity=1), "status": "merged"}
    assert stream.add(closed, now=now).raises == [] and "c" in stream.events
    assert stream.add(merged, now=now).raises == [] and "m" not in stream.events
    assert [r.proposal.rule for r in stream.add(event("s", now, severity=2), now=now).raises] \
        == ["severity"]
