"""Alert rules: pure functions from incident events (plain dicts) to alert proposals.

An event is a dict shaped like the incident JSON: ``id``, ``type``, ``severity`` (1 = Ⅰ级),
``people``, ``occurred_at`` (aware datetime or ISO string), ``lon``/``lat`` (WGS-84),
``township``/``grid`` (``{code, name}`` or None) and ``feed``. A rule returns an
:class:`AlertProposal` (or None); the caller raises it once per ``key`` and updates it while
the same key keeps coming back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from alerts.config import RulesConfig
from alerts.stats import haversine_m, negbin_sf, poisson_sf, quantile
from layers.theme import TYPE_LABELS

Event = Mapping[str, Any]

SEVERITY_NAMES = {1: "Ⅰ级（特别重大）", 2: "Ⅱ级（重大）", 3: "Ⅲ级（较大）", 4: "Ⅳ级（一般）"}
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")  # clock times in messages; no DST
RULES = ("severity", "mass_gathering", "spike", "repeat_place", "feed_silence")
_LEVEL_RANK = {"red": 0, "orange": 1, "yellow": 2, "blue": 3}


@dataclass(frozen=True)
class AlertProposal:
    """What a rule proposes: the caller deduplicates on ``key`` and stores the alert."""

    key: str
    rule: str
    level: str
    units: tuple[str, ...]
    incidents: tuple[str, ...]
    message: str
    data: dict[str, Any] = field(default_factory=dict, compare=False)  # the numbers behind it


# --- severity ---------------------------------------------------------------------------------

def severity(event: Event, cfg: RulesConfig) -> AlertProposal | None:
    """Propose red for a Ⅰ级 and orange for a Ⅱ级 incident, None otherwise."""
    level_no = event.get("severity")
    if level_no is None:
        return None
    level_no = int(level_no)
    if level_no <= cfg.severity.red_max:
        level = "red"
    elif level_no <= cfg.severity.orange_max:
        level = "orange"
    else:
        return None
    name = SEVERITY_NAMES.get(level_no, f"{level_no}级")
    message = f"{_place(event)} 发生{name}{_type_label(event.get('type'))}，须立即报告并处置"
    return AlertProposal(key=f"severity:{event['id']}", rule="severity", level=level,
                         units=_units(event), incidents=(str(event["id"]),), message=message,
                         data={"severity": level_no})


# --- mass gathering ---------------------------------------------------------------------------

def mass_gathering(event: Event, recent: Iterable[Event],
                   cfg: RulesConfig) -> AlertProposal | None:
    """Propose a potential 群体性事件: many people in one report, or reports clustered nearby."""
    mg = cfg.mass_gathering
    at = parse_time(event["occurred_at"])
    span = timedelta(minutes=mg.minutes)
    group = [event]
    if _has_point(event):
        seen = {event["id"]}
        for other in recent:
            if other["id"] in seen or not _has_point(other):
                continue
            if abs(parse_time(other["occurred_at"]) - at) > span:
                continue
            if haversine_m(event["lon"], event["lat"], other["lon"], other["lat"]) <= mg.radius_m:
                group.append(other)
                seen.add(other["id"])
    if len(group) < mg.reports:
        group = [event]  # only the big report itself; nearby single reports are not grouped
    return mass_proposal(group, cfg)


def mass_proposal(group: Sequence[Event], cfg: RulesConfig, *,
                  key: str | None = None) -> AlertProposal | None:
    """Propose the alert of a group of related reports (or one big report); None when neither
    the group is large enough nor anyone reports enough people.

    Also used to describe a group that grew over several arrivals (``key`` then keeps the
    alert the group already has).
    """
    mg = cfg.mass_gathering
    group = sorted(group, key=lambda e: (parse_time(e["occurred_at"]), str(e["id"])))
    people = max((int(e["people"]) for e in group if e.get("people") is not None), default=0)
    clustered = len(group) >= mg.reports
    if people >= mg.people_red:
        level = "red"
    elif people >= mg.people:
        level = "orange"
    elif clustered:
        level = mg.cluster_level
    else:
        return None
    if clustered and _LEVEL_RANK[mg.cluster_level] < _LEVEL_RANK[level]:
        level = mg.cluster_level
    first, last = parse_time(group[0]["occurred_at"]), parse_time(group[-1]["occurred_at"])
    place = _place(_most_common_place(group))
    parts = []
    if clustered:
        minutes = round((last - first).total_seconds() / 60)
        parts.append(f"{place} {mg.radius_m:g}米范围内 {minutes} 分钟内"
                     f"（{_hm(first)}–{_hm(last)}）收到相关报告 {len(group)} 起"
                     f"（阈值 {mg.reports} 起/{mg.minutes:g} 分钟）")
    if people >= mg.people:
        where = "" if clustered else f"{place} "
        parts.append(f"{where}报告现场约 {people} 人（阈值 {mg.people} 人）")
    message = "，".join(parts) + "，疑似群体性事件" + (
        "，请研判是否合并为一起事件" if clustered else "，请研判")
    units = tuple(dict.fromkeys(u for e in group for u in _units(e)))
    return AlertProposal(
        key=key or f"mass_gathering:{group[0]['id']}", rule="mass_gathering", level=level,
        units=units, incidents=tuple(str(e["id"]) for e in group), message=message,
        data={"reports": len(group), "people": people, "first": first, "last": last})


# --- spike ------------------------------------------------------------------------------------

def spike(count_now: int, baseline: Sequence[int], cfg: RulesConfig, *,
          township: Mapping[str, str] | str, type_label: str, window_label: str,
          previous: Sequence[tuple[int, Sequence[int]]] = (),
          incidents: Sequence[str] = ()) -> AlertProposal | None:
    """Propose a 苗头性/趋势性 warning when a window's count is improbably high for its baseline.

    ``baseline`` holds the counts of the same window in each of the past weeks (same hour of
    week); ``previous`` the (count, baseline) of the windows just before, most recent first,
    used to call a run of high windows a trend. ``type_label`` is a type code or label.
    """
    sp = cfg.spike
    p = spike_p_value(count_now, baseline, cfg)
    if count_now < sp.min_count or p >= sp.alpha:
        return None
    streak = 1
    for count, base in previous:
        if spike_p_value(count, base, cfg) >= sp.trend_p:
            break
        streak += 1
    if p < sp.alpha / sp.red_factor:
        level, kind = "red", "异常激增"
    elif streak >= sp.trend_windows:
        level, kind = "orange", "趋势性"
    else:
        level, kind = "yellow", "苗头性"
    code, name = (township, township) if isinstance(township, str) else (
        township["code"], township.get("name") or township["code"])
    type_code = _type_code(type_label)
    mean = sum(baseline) / len(baseline) if baseline else 0.0
    days = len(baseline) * 7
    message = (f"{window_label} {name} {TYPE_LABELS.get(type_code, type_label)} {count_now} 起，"
               f"近{days}天同时段均值 {mean:.1f} 起（{kind}，p={p:.1e}"
               + (f"，连续 {streak} 个时段偏高" if streak > 1 else "") + "）")
    return AlertProposal(key=f"spike:{code}:{type_code}", rule="spike", level=level,
                         units=(code,), incidents=tuple(str(i) for i in incidents),
                         message=message,
                         data={"count": count_now, "baseline_mean": mean, "p": p,
                               "alpha": sp.alpha, "streak": streak})


def spike_p_value(count: int, baseline: Sequence[int], cfg: RulesConfig) -> float:
    """Return P(X ≥ count) under the cell's baseline rate (prior-smoothed mean of past weeks).

    The rate is (Σ baseline + prior_count) / (weeks + prior_weeks). With ``method = "negbin"``
    the tail is the gamma-Poisson predictive one (the Poisson tail averaged over the rate's
    posterior given the baseline), which counts the uncertainty of a rate learnt from a few
    weeks; ``"poisson"`` plugs the mean in, and with 4 weeks of baseline that roughly doubles
    the false-alarm rate over the stated one.
    """
    sp = cfg.spike
    shape = sum(baseline) + sp.prior_count
    rate = len(baseline) + sp.prior_weeks
    if rate <= 0:
        return 1.0  # no baseline and no prior weight: nothing to compare against, stay quiet
    if sp.method == "poisson":
        return poisson_sf(count, shape / rate)
    return negbin_sf(count, shape, rate)


def false_alarm_rate_per_cell_day(cfg: RulesConfig) -> float:
    """Return the stated bound on spike false alarms per township × type cell per day.

    Each of the day's ``1440 / window_minutes`` windows is tested at α = target / windows,
    so by the union bound a steady cell raises at most ``target`` false alarms a day (fewer
    in practice: counts are discrete, so each test's real size is below α).
    """
    return cfg.spike.alpha * cfg.spike.windows_per_day


def window_end(at: datetime | str, cfg: RulesConfig) -> datetime:
    """Return the end of the day-aligned spike window (China time) that contains ``at``.

    Evaluate the spike rule on arrival against this fixed window, not a trailing one: the
    count so far only grows, so the window alerts exactly when the full-window test would,
    as early as the count crosses, and the stated false-alarm rate holds. A trailing window
    re-tested at every arrival is a scan over the day and alarms several times as often.

    >>> from alerts.config import load_config
    >>> window_end("2026-03-02T14:20:00+08:00", load_config()).isoformat()
    '2026-03-02T15:00:00+08:00'
    """
    local = parse_time(at).astimezone(CHINA)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    step = timedelta(minutes=cfg.spike.window_minutes)
    whole, rest = divmod(local - midnight, step)
    # windows are (start, end], so an event exactly on a boundary closes the earlier window
    return midnight + (whole + (1 if rest else 0)) * step


def window_counts(events: Iterable[Event], *, township: str, type: str, end: datetime,
                  window: timedelta, weeks: int) -> tuple[int, list[int]]:
    """Count a cell's events in (end − window, end] and in the same window 1…weeks weeks back.

    ``end`` is usually :func:`window_end` of the arriving event (the window is then partly in
    the future, which is fine: the count so far is compared against whole past windows).
    """
    end = parse_time(end)
    week = timedelta(days=7)
    now, base = 0, [0] * weeks
    horizon = end - weeks * week - window
    for e in events:
        if e.get("type") != type or (e.get("township") or {}).get("code") != township:
            continue
        at = parse_time(e["occurred_at"])
        if at <= horizon or at > end:
            continue
        lag = end - at  # in [0, weeks·week + window)
        w, offset = divmod(lag, week)
        if offset < window:
            if w == 0:
                now += 1
            elif w <= weeks:
                base[w - 1] += 1
    return now, base


# --- repeat place -----------------------------------------------------------------------------

def repeat_place(event: Event, history: Iterable[Event],
                 cfg: RulesConfig) -> AlertProposal | None:
    """Propose an alert when one grid (or a small radius) keeps producing disputes/petitions."""
    rp = cfg.repeat_place
    if event.get("type") not in rp.types:
        return None
    at = parse_time(event["occurred_at"])
    since = at - timedelta(days=rp.days)
    grid = (event.get("grid") or {}).get("code")
    by_grid, by_radius = rp.match in ("grid", "both"), rp.match in ("radius", "both")
    same = [event]
    seen = {event["id"]}
    for other in history:
        if other["id"] in seen or other.get("type") not in rp.types:
            continue
        if not since < parse_time(other["occurred_at"]) <= at:
            continue
        other_grid = (other.get("grid") or {}).get("code")
        near = (by_grid and grid is not None and other_grid == grid) or (
            by_radius and _has_point(event) and _has_point(other)
            and haversine_m(event["lon"], event["lat"], other["lon"], other["lat"]) <= rp.radius_m)
        if near:
            same.append(other)
            seen.add(other["id"])
    if len(same) < rp.count:
        return None
    same.sort(key=lambda e: (parse_time(e["occurred_at"]), str(e["id"])))
    # reports close together in time are one occasion (one quarrel reported by three
    # neighbours, a gathering), not a place where trouble keeps coming back
    occasions = occasion_count(same, rp.occasion_hours)
    if occasions < rp.count:
        return None
    level = "orange" if occasions >= rp.count_orange else "yellow"
    if by_grid and grid is not None:
        place, key = ((event.get("grid") or {}).get("name") or grid), f"repeat_place:grid:{grid}"
    else:
        place, key = f"{_place(event)} {rp.radius_m:g}米范围内", f"repeat_place:{same[0]['id']}"
    by_type = {t: sum(1 for e in same if e.get("type") == t) for t in rp.types}
    detail = "、".join(f"{TYPE_LABELS.get(t, t)} {n} 起" for t, n in by_type.items() if n)
    times = f"{occasions} 次" + (f"、{len(same)} 起" if len(same) != occasions else "")
    message = (f"近{rp.days:g}天 {place} 反复发生矛盾纠纷/信访 {times}（{detail}；"
               f"阈值 {rp.count} 次），请排查根源、源头化解")
    units = tuple(dict.fromkeys(u for e in same for u in _units(e)))
    return AlertProposal(key=key, rule="repeat_place", level=level, units=units,
                         incidents=tuple(str(e["id"]) for e in same), message=message,
                         data={"count": len(same), "occasions": occasions,
                               "by_type": by_type})


def occasion_count(events: Sequence[Event], hours: float) -> int:
    """How many separate occasions time-sorted events make: a new one starts after a quiet
    gap of more than `hours` since the previous event."""
    count, last = 0, None
    for e in events:
        at = parse_time(e["occurred_at"])
        if last is None or (at - last).total_seconds() > hours * 3600:
            count += 1
        last = at
    return count


# --- feed silence -----------------------------------------------------------------------------

def feed_silence(last_seen: Mapping[str, datetime], intervals: Mapping[str, Sequence[float]],
                 now: datetime, cfg: RulesConfig) -> list[AlertProposal]:
    """Propose a data-gap alert for each regular feed that has been quiet for longer than usual."""
    fs = cfg.feed_silence
    now = parse_time(now)
    out = []
    for feed, seen in sorted(last_seen.items()):
        gaps = intervals.get(feed) or ()
        if len(gaps) < fs.min_gaps:
            continue  # not enough history to call it regular
        usual = quantile(gaps, fs.quantile)
        threshold = max(usual * fs.factor, fs.floor_seconds)
        quiet = (now - parse_time(seen)).total_seconds()
        if quiet <= threshold:
            continue
        level = "yellow" if quiet > threshold * fs.yellow_factor else "blue"
        message = (f"数据源 {feed} 已 {_duration(quiet)} 无数据"
                   f"（最后一条 {_hm(parse_time(seen))}），"
                   f"平时 {fs.quantile:.0%} 的间隔不超过 {_duration(usual)}，"
                   f"告警阈值 {_duration(threshold)}，疑似数据中断")
        out.append(AlertProposal(key=f"feed_silence:{feed}", rule="feed_silence", level=level,
                                 units=(), incidents=(), message=message,
                                 data={"quiet_s": quiet, "usual_s": usual,
                                       "threshold_s": threshold}))
    return out


# --- helpers ----------------------------------------------------------------------------------

def parse_time(value: datetime | str) -> datetime:
    """Return an aware datetime from a datetime or an ISO 8601 string with an offset."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"time without a UTC offset: {value!r}")
    return value


def _has_point(event: Event) -> bool:
    return event.get("lon") is not None and event.get("lat") is not None


def _units(event: Event) -> tuple[str, ...]:
    return tuple(u["code"] for u in (event.get("township"), event.get("grid")) if u)


def _place(event: Event) -> str:
    for key in ("township", "grid"):
        unit = event.get(key)
        if unit:
            return unit.get("name") or unit["code"]
    if _has_point(event):
        return f"({event['lon']:.4f}, {event['lat']:.4f})"
    return "未定位地点"


def _most_common_place(group: Sequence[Event]) -> Event:
    counts: dict[str, int] = {}
    for e in group:
        if e.get("township"):
            counts[e["township"]["code"]] = counts.get(e["township"]["code"], 0) + 1
    if not counts:
        return group[0]
    best = max(counts, key=lambda c: counts[c])
    return next(e for e in group if e.get("township") and e["township"]["code"] == best)


def _type_code(value: str | None) -> str:
    if value in TYPE_LABELS:
        return value
    for code, label in TYPE_LABELS.items():
        if label == value:
            return code
    return value or "other"


def _type_label(value: str | None) -> str:
    return TYPE_LABELS.get(_type_code(value), "事件")


def _hm(at: datetime) -> str:
    return at.astimezone(CHINA).strftime("%H:%M")


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} 分钟"
    return f"{seconds / 3600:.1f} 小时"


# --- repeat party -----------------------------------------------------------------------------

def repeat_party(*, key: str, count: int, who: str, role_label: str, cases: Sequence[str],
                 incidents: Sequence[str], units: Sequence[str],
                 cfg: RulesConfig) -> AlertProposal | None:
    """A party who brought ≥ `count` matters in the configured months (重复来访): yellow, orange
    at `count_orange`. `who` is how the message names the person (never an ID number).

    >>> from alerts.config import load_config
    >>> p = repeat_party(key="repeat_party:id:ab", count=3, who="张某", role_label="申请人",
    ...                  cases=["DEMO-2026-000001", "DEMO-2026-000007", "DEMO-2026-000009"],
    ...                  incidents=["a", "b", "c"], units=["DEMO"], cfg=load_config())
    >>> p.level, p.message
    ('yellow', '重复来访：张某（申请人）12个月内已登记3件事项：DEMO-2026-000001、DEMO-2026-000007、DEMO-2026-000009')
    """
    rp = cfg.repeat_party
    if count < rp.count:
        return None
    shown = list(cases)[-5:]
    more = f"等{count}件" if count > len(shown) else ""
    return AlertProposal(
        key=key, rule="repeat_party", level="orange" if count >= rp.count_orange else "yellow",
        units=tuple(units), incidents=tuple(incidents),
        message=(f"重复来访：{who}（{role_label}）{rp.months}个月内已登记{count}件事项："
                 f"{'、'.join(shown)}{more}"),
        data={"count": count})
