"""The demo's story: ordinary traffic is the history's model continued (so the rules stay quiet
on it), and each scripted situation raises the alert it is there for.

Pure: the model is built from the demo county's polygons, time is a list of datetimes, and the
rules run in `alerts.stream.RuleStream`; nothing sleeps and no database is touched.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import shapely

from alerts.config import load_config
from alerts.rules import RULES, haversine_m, parse_time, window_end
from alerts.stream import RuleStream
from command.cli import _parser
from command.clock import SHANGHAI
from command.demo.feeds import KINDS, PER_DAY, Story
from command.demo.history import _PROFILE_OF, _PROFILES, _WEEKDAYS, TYPE_SHARES, TYPES, Model
from command.incidents.schemas import validate
from layers.demo import demo_county

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # 10:00 on a Thursday in Shanghai
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def county():
    return demo_county()


@pytest.fixture(scope="module")
def model(county):
    return Model(county, seed=0, per_day=PER_DAY, now=NOW)


@pytest.fixture(scope="module")
def history(model):
    """Four weeks (and the spike window's slack) of the model's reports before NOW, as the
    risk watch primes them; second reports are left out (the history merges them)."""
    return [_event(model, a) for a in model.arrivals(NOW - timedelta(weeks=4, hours=4), NOW)
            if not a.source_id.endswith("d")]


def _event(model: Model, a) -> dict:
    r = a.raw
    return {"id": r["id"], "type": r["type"], "severity": r["severity"], "people": r["people"],
            "occurred_at": parse_time(r["occurred_at"]), "lon": r["lon"], "lat": r["lat"],
            "township": {"code": a.township, "name": model.name(a.township)},
            "grid": None if a.grid is None else {"code": a.grid, "name": model.name(a.grid)},
            "feed": f"demo-{a.township}", "status": "reported", "received_at": a.received_at}


def _primed(history, now=NOW) -> RuleStream:
    stream = RuleStream(load_config(), started=now)
    for e in history:
        stream.add(e, now=now, evaluate=False)
    return stream


def _feed(stream: RuleStream, model: Model, arrivals) -> list:
    """Feed arrivals one by one at their receipt time (as the watch does); every proposal."""
    out = []
    for a in arrivals:
        outcome = stream.add(_event(model, a), now=a.received_at)
        out += [r.proposal for r in outcome.raises + stream.flush(a.received_at)]
    return out


def _base(arrivals):
    """The model's own reports: not second reports, repeat places or hotspots."""
    return [a for a in arrivals if a.source_id.rsplit("-", 1)[-1].isdigit()]


# --- ordinary traffic ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fortnight(model):
    return model.arrivals(NOW, NOW + 14 * DAY)


def test_ordinary_rate_is_the_history_rate(model, fortnight):
    per_day = len(_base(fortnight)) / 14
    assert abs(per_day / PER_DAY - 1) < 0.10, per_day
    everything = len(fortnight) / 14  # with second reports, repeat places and hotspots
    assert PER_DAY < everything < 1.25 * PER_DAY, everything
    times = [a.received_at for a in fortnight]
    assert times == sorted(times) and NOW <= times[0] and times[-1] < NOW + 14 * DAY
    assert len({a.source_id for a in fortnight}) == len(fortnight)


def test_ordinary_hours_follow_the_history_profile(fortnight):
    hours = Counter(parse_time(a.raw["occurred_at"]).astimezone(SHANGHAI).hour
                    for a in _base(fortnight))
    seen = np.array([hours[h] for h in range(24)], dtype=float)
    seen /= seen.sum()
    shares = np.array(TYPE_SHARES) / sum(TYPE_SHARES)
    expected = sum(s * np.array(_PROFILES[_PROFILE_OF[k]]) / np.mean(_PROFILES[_PROFILE_OF[k]])
                   * np.mean(np.array(_WEEKDAYS[_PROFILE_OF[k]])
                             / np.mean(_WEEKDAYS[_PROFILE_OF[k]]))
                   for k, s in zip(TYPES, shares))
    expected /= expected.sum()
    assert 0.5 * np.abs(seen - expected).sum() < 0.06  # total variation distance
    assert seen[1:6].sum() < 0.03 and seen[9:12].sum() > 0.2  # quiet nights, busy mornings


def test_ordinary_type_mix_is_the_history_mix(fortnight):
    base = _base(fortnight)
    kinds = Counter(a.raw["type"] for a in base)
    for kind, share in zip(TYPES, np.array(TYPE_SHARES) / sum(TYPE_SHARES)):
        assert abs(kinds[kind] / len(base) - share) < 0.025, (kind, kinds[kind] / len(base))
    severe = sum(a.raw["severity"] <= 2 for a in base) / len(base)
    assert 0.005 < severe < 0.03  # Ⅰ/Ⅱ级 stay rare: each one is news
    assert all(any("\u4e00" <= c <= "\u9fff" for c in a.raw["title"]) for a in base)


def test_reports_are_valid_and_lie_in_their_township(model, county, fortnight):
    polygons = county.set_index("code").geometry
    for a in fortnight[:400]:
        validate(a.raw, now=a.received_at)
        assert polygons[a.grid or a.township].buffer(1e-6).contains(
            shapely.Point(a.raw["lon"], a.raw["lat"]))
        assert parse_time(a.raw["occurred_at"]) <= a.received_at


def test_a_day_of_ordinary_traffic_raises_few_spikes(model, history):
    """Measured (seed 0, 240 a day, 13 townships × 9 types): spike alerts per day over the
    7 days after NOW were 0, 0, 0, 0, 1, 0, 0 (the old fixed-rate feeds at 0.5/s, ~180× this
    history's rate, raised one in almost every cell). Severity 2-6 a day and mass_gathering
    1-3 a day come from the model's own Ⅰ/Ⅱ级 reports and hotspots; repeat_place is noisier
    (20-35 new keys a day: dense urban grids, and a key that follows each neighbourhood's
    earliest report), which is the rule's business, not the stream's."""
    stream = _primed(history)
    story = Story(model, start=NOW, situations=False)
    daily: dict[str, list[int]] = {rule: [] for rule in RULES}
    t = NOW
    for _day in range(7):
        seen: set[str] = set()
        for _ in range(24 * 12):  # the demo's loop, in 5-minute steps
            t += timedelta(minutes=5)
            for p in _feed(stream, model, story.until(t)):
                seen.add(p.key)
        for rule in RULES:
            daily[rule].append(sum(key.split(":")[0] == rule for key in seen))
    print({rule: n for rule, n in daily.items() if any(n)})
    assert daily["spike"][0] <= 2 and sum(daily["spike"]) <= 5, daily["spike"]
    assert sum(daily["mass_gathering"]) <= 7 * 3, daily["mass_gathering"]


def test_the_ordinary_stream_is_the_history_continued(model):
    """Live arrivals are the model's: the same ids and content as it gives for those hours
    from any start, so a restart resends the same reports (acked as duplicates)."""
    later = Model(demo_county(), seed=0, per_day=PER_DAY, now=NOW)
    a = model.arrivals(NOW, NOW + timedelta(hours=6))
    b = [x for x in later.arrivals(NOW - timedelta(hours=2), NOW + timedelta(hours=6))
         if x.received_at >= NOW]
    assert [x.raw for x in a] == [x.raw for x in b]
    story = Story(model, start=NOW, situations=False, skip={a[0].source_id})
    told = story.until(NOW + timedelta(hours=1)) + story.until(NOW + timedelta(hours=6))
    assert [x.source_id for x in told] == [x.source_id for x in a[1:]]


# --- scripted situations ------------------------------------------------------------------------

STARTS = [NOW, NOW + timedelta(hours=5), NOW + timedelta(hours=17, minutes=55),  # 15:00, 03:55
          NOW + timedelta(days=2, hours=1, minutes=30)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("start", STARTS, ids=lambda t: f"{t.astimezone(SHANGHAI):%a%H%M}")
def test_each_situation_raises_its_alert(county, kind, start):
    model = Model(county, seed=0, per_day=PER_DAY, now=start)
    history = [_event(model, a) for a in model.arrivals(start - timedelta(weeks=4, hours=4), start)
               if not a.source_id.endswith("d")]
    for seed in range(2):
        story = Story(model, start=start, seed=seed)
        situation = story.situation(start + timedelta(minutes=1), kind)
        assert situation.kind == kind and situation.arrivals
        for a in situation.arrivals:
            validate(a.raw, now=a.received_at)
        raised = _feed(_primed(history, start), model, situation.arrivals)
        ids = {a.source_id for a in situation.arrivals}
        mine = [p for p in raised if p.rule == situation.rule and ids & set(p.incidents)]
        assert mine, (situation.summary, [p.message for p in raised])
        _check_shape(situation, mine[-1])


def _check_shape(situation, proposal) -> None:
    raws = [a.raw for a in situation.arrivals]
    occurred = [parse_time(r["occurred_at"]) for r in raws]
    if situation.kind == "gathering":
        assert 3 <= len(raws) <= 5 and len({a.grid for a in situation.arrivals}) == 1
        assert max(occurred) - min(occurred) < timedelta(minutes=10)
        assert all(haversine_m(p["lon"], p["lat"], q["lon"], q["lat"]) <= 500
                   for p in raws for q in raws)
        assert all(r["severity"] >= 3 and r["people"] < 30 for r in raws)  # the cluster tells
        assert sum(r["type"] in ("dispute", "petition") for r in raws) == 1  # not a repeat place
        assert proposal.data["reports"] >= 3
    elif situation.kind == "spike":
        assert len({r["type"] for r in raws}) == 1 and len(raws) >= 5
        assert len({window_end(t, load_config()) for t in occurred}) == 1  # one clock hour
        assert all(r["severity"] >= 3 for r in raws)
    elif situation.kind == "severity":
        assert len(raws) == 1 and raws[0]["severity"] <= 2
        assert proposal.level == ("red" if raws[0]["severity"] == 1 else "orange")
    else:
        assert len(raws) == 1 and raws[0]["type"] in ("dispute", "petition")
        assert proposal.data["count"] >= 3


def test_situations_come_now_and_then_the_first_at_once(model):
    story = Story(model, start=NOW, every_minutes=10.0)
    t, arrivals = NOW, []
    while t < NOW + timedelta(hours=4):
        t += timedelta(seconds=30)
        arrivals += story.until(t)
    told = story.told
    assert told[0].at - NOW <= timedelta(minutes=1)
    gaps = [(b.at - a.at).total_seconds() / 60 for a, b in zip(told, told[1:])]
    assert all(7.9 <= g <= 12.1 for g in gaps[:3]), gaps
    assert 20 <= len(told) <= 30
    assert [s.kind for s in told[:4]] == list(KINDS)
    for i in range(0, 20, 4):  # each round holds every kind
        assert sorted(s.kind for s in told[i:i + 4]) == sorted(KINDS)
    scripted = {a.source_id for s in told for a in s.arrivals if a.received_at < t}
    sent = [a.source_id for a in arrivals]
    assert scripted <= set(sent) and len(sent) == len(set(sent))
    assert [a.received_at for a in arrivals] == sorted(a.received_at for a in arrivals)
    ordinary = [x for x in sent if x not in scripted]
    assert ordinary == [a.source_id for a in model.arrivals(NOW, t)]


def test_no_situations_is_ordinary_traffic_only(model):
    story = Story(model, start=NOW, situations=False)
    arrivals = story.until(NOW + timedelta(hours=2))
    assert not story.told and all(a.source_id.startswith("hist-") for a in arrivals)


def test_the_demo_command_takes_the_story_options():
    args = _parser().parse_args(["demo", "--rate", "0.01", "--situations-every", "3",
                                 "--no-situations"])
    assert (args.rate, args.situations_every, args.no_situations) == (0.01, 3.0, True)
    args = _parser().parse_args(["demo"])
    assert (args.rate, args.situations_every, args.no_situations) == (None, 10.0, False)
    with pytest.raises(SystemExit):
        _parser().parse_args(["demo", "--rate", "-1"])
