"""The spike rule: fires on a spike, stays quiet on noise, keeps its stated false-alarm rate."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from alerts.config import load_config
from alerts.rules import false_alarm_rate_per_cell_day, spike, window_counts

CST = timezone(timedelta(hours=8))
END = datetime(2026, 3, 2, 15, 0, tzinfo=CST)
CHENGGUAN = {"code": "330100001", "name": "城关街道"}


@pytest.fixture(scope="module")
def cfg():
    return load_config()


def fire(count, baseline, cfg, **kw):
    return spike(count, baseline, cfg, township=CHENGGUAN, type_label="dispute",
                 window_label="近1小时", **kw)


def test_spike_fires_with_its_numbers(cfg):
    alert = fire(9, [1, 2, 1, 2], cfg, incidents=["a", "b"])
    assert alert is not None and alert.rule == "spike" and alert.level == "yellow"
    assert alert.key == "spike:330100001:dispute" and alert.units == ("330100001",)
    assert alert.incidents == ("a", "b")
    assert alert.message.startswith("近1小时 城关街道 矛盾纠纷 9 起，近28天同时段均值 1.5 起")
    assert "苗头性" in alert.message


def test_label_or_code_give_the_same_key(cfg):
    by_label = spike(9, [1, 2, 1, 2], cfg, township="330100001", type_label="矛盾纠纷",
                     window_label="近1小时")
    assert by_label.key == "spike:330100001:dispute" and "矛盾纠纷 9 起" in by_label.message


def test_normal_counts_stay_quiet(cfg):
    for count in range(6):
        assert fire(count, [2, 3, 2, 1], cfg) is None
    assert fire(30, [28, 31, 25, 30], cfg) is None


def test_zero_baseline_does_not_explode(cfg):
    assert fire(1, [0, 0, 0, 0], cfg) is None
    assert fire(3, [0, 0, 0, 0], cfg) is None   # p ≈ 2.7e-3, just above α ≈ 2.1e-3
    alert = fire(4, [0, 0, 0, 0], cfg)
    assert alert is not None and "4 起" in alert.message and "均值 0.0 起" in alert.message


def test_min_count_guards_tiny_counts():
    cfg = load_config(overrides={"spike": {"min_count": 5}})
    assert fire(4, [0, 0, 0, 0], cfg) is None
    assert fire(5, [0, 0, 0, 0], cfg) is not None


def test_extreme_is_red(cfg):
    alert = fire(25, [1, 2, 1, 2], cfg)
    assert alert.level == "red" and "25 起" in alert.message


def test_consecutive_high_windows_are_a_trend(cfg):
    high = (7, [1, 2, 1, 2])
    alert = fire(9, [1, 2, 1, 2], cfg, previous=[high, high, (1, [1, 2, 1, 2])])
    assert alert.level == "orange" and "趋势性" in alert.message and "连续 3 个" in alert.message
    broken = fire(9, [1, 2, 1, 2], cfg, previous=[high, (1, [1, 2, 1, 2]), high])
    assert broken.level == "yellow"


def test_stated_rate_and_alpha():
    cfg = load_config()
    assert false_alarm_rate_per_cell_day(cfg) == pytest.approx(0.05)
    assert cfg.spike.alpha == pytest.approx(0.05 / 24)
    half = load_config(overrides={"spike": {"window_minutes": 30,
                                            "false_alarm_per_cell_day": 0.02}})
    assert false_alarm_rate_per_cell_day(half) == pytest.approx(0.02)
    assert half.spike.alpha == pytest.approx(0.02 / 48)


def test_window_counts_same_hour_of_week():
    def e(id, at, type="dispute", town="T1"):
        return {"id": id, "type": type, "occurred_at": at.isoformat(),
                "township": {"code": town, "name": town}}
    week = timedelta(days=7)
    events = [
        e(1, END), e(2, END - timedelta(minutes=59)),            # now (end inclusive)
        e(3, END - timedelta(minutes=60)),                        # just outside (start exclusive)
        e(4, END - timedelta(minutes=5), type="petition"),        # other type
        e(5, END - timedelta(minutes=5), town="T2"),              # other township
        e(6, END - week - timedelta(minutes=10)),                 # 1 week back
        e(7, END - 2 * week), e(8, END - 2 * week - timedelta(minutes=30)),
        e(9, END - 4 * week - timedelta(minutes=1)),              # 4 weeks back
        e(10, END - 5 * week),                                    # beyond the baseline
        e(11, END - week - timedelta(hours=3)),                   # right week, wrong hour
        e(12, END + timedelta(minutes=1)),                        # future
    ]
    now, base = window_counts(events, township="T1", type="dispute", end=END,
                              window=timedelta(hours=1), weeks=4)
    assert (now, base) == (2, [1, 2, 0, 1])


def _firing_thresholds(cfg, max_sum):
    """Return, per baseline sum, the smallest count that spike() alerts on."""
    out = []
    for s in range(max_sum + 1):
        c = 0
        while fire(c, [s] + [0] * (cfg.spike.weeks - 1), cfg) is None:
            c += 1
        out.append(c)
    return np.array(out)


@pytest.mark.parametrize("rate", [0.1, 0.5, 1.0, 3.0, 8.0, "diurnal"])
def test_false_alarms_on_a_steady_poisson_stream_stay_within_the_stated_rate(cfg, rate):
    """Simulate 20,000 cell-days of a steady stream, 24 hourly windows each, against 4 weeks."""
    rng = np.random.default_rng(20260302)
    days, weeks = 20_000, cfg.spike.weeks
    per_hour = (np.full(24, rate) if rate != "diurnal"   # quiet nights, busy afternoons
                else 2.0 * (1.1 + np.sin(np.linspace(-np.pi / 2, 3 * np.pi / 2, 24))))
    now = rng.poisson(per_hour, size=(days, 24))
    baseline_sum = rng.poisson(per_hour * weeks, size=(days, 24))  # sum of 4 past weeks
    thresholds = _firing_thresholds(cfg, int(baseline_sum.max()))
    alarms = now >= thresholds[baseline_sum]
    per_cell_day = alarms.sum() / days
    stated = false_alarm_rate_per_cell_day(cfg)
    assert per_cell_day <= 1.5 * stated, f"{per_cell_day:.4f} false alarms per cell-day"


def test_the_simulation_detects_a_real_tripling(cfg):
    """The same machinery is not merely quiet: a tripled rate is caught most days."""
    rng = np.random.default_rng(7)
    days, weeks = 2_000, cfg.spike.weeks
    now = rng.poisson(3.0 * 3, size=(days, 24))
    baseline_sum = rng.poisson(3.0 * weeks, size=(days, 24))
    thresholds = _firing_thresholds(cfg, int(baseline_sum.max()))
    caught = (now >= thresholds[baseline_sum]).any(axis=1).mean()
    assert caught > 0.9


def test_window_end_aligns_to_china_clock(cfg):
    from alerts.rules import window_end
    assert window_end("2026-03-02T14:20:00+08:00", cfg) == END
    assert window_end("2026-03-02T06:59:59Z", cfg) == END        # 14:59:59 in China
    assert window_end(END, cfg) == END                            # (start, end]: closes 14–15
    half = load_config(overrides={"spike": {"window_minutes": 30}})
    assert window_end("2026-03-02T14:31:00+08:00", half) == END


def test_on_arrival_evaluation_of_the_aligned_window_fires_once_the_count_crosses(cfg):
    """Arrivals in one window: quiet until the count so far crosses the threshold, then firing."""
    from alerts.rules import window_end
    base = [1, 2, 1, 2]
    events = []
    verdicts = []
    for minute in range(0, 60, 6):   # ten arrivals in 14:00–15:00
        at = END - timedelta(minutes=60) + timedelta(minutes=minute, seconds=30)
        events.append({"id": f"e{minute}", "type": "dispute", "occurred_at": at,
                       "township": CHENGGUAN})
        now, _ = window_counts(events, township=CHENGGUAN["code"], type="dispute",
                               end=window_end(at, cfg), window=timedelta(hours=1), weeks=4)
        verdicts.append(fire(now, base, cfg) is not None)
    first = verdicts.index(True)
    assert not any(verdicts[:first]) and all(verdicts[first:])
    assert 3 <= first + 1 <= 9   # it takes a handful above the mean of 1.5, not one or all ten
