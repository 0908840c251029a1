"""The township risk score (风险指数), 0–100: a small weighted sum that explains itself.

Seven components. Each earns points for its count, up to a cap; the caps add up to 100:

=========  ===========================================================  =================  ====
key        component                                                    points             cap
=========  ===========================================================  =================  ====
surge      事件增幅: incidents of the last 7 days above the township's    25 × rise /        25
           own weekly mean of the 4 weeks before                        max(mean, 5)
major      Ⅰ/Ⅱ级 incidents, last 7 days                                  8 each             20
mass       群体性事件, last 7 days                                        5 each             15
alerts     live alerts naming the township or one of its grids, except  red 8, orange 5,   15
           those counted above or below (Ⅰ/Ⅱ级, repeat place, 督办)      yellow 3, blue 1
repeat     repeat places: live `repeat_place` alerts of the risk watch  4 each             10
           (≥ 3 occasions of disputes/petitions at one spot in 30 days)
orders     dispatch-order nodes on its incidents still open / overdue   0.5 / 3 each       10
backlog    unresolved: incidents of the last 30 days older than 3 days  0.5 each            5
=========  ===========================================================  =================  ====

So the score is bounded (0 ≤ score ≤ 100), never falls when one count rises (monotone), and a
township where nothing happened scores 0. The floor of 5 in `surge` keeps small numbers calm:
going from 0 to 2 incidents a week is a 40 % rise, not an infinite one. Merged and false-alarm
incidents are not counted. Colour bands follow the four warning colours: ≥ 75 红, ≥ 50 橙,
≥ 25 黄, below 蓝.

Everything here is pure: `collect` turns plain rows into `RiskInputs` per township (the database
path in `service` computes the same inputs with SQL aggregates), `score` turns inputs into a
`RiskScore` whose parts say why.

>>> score(RiskInputs()).score
0.0
>>> s = score(RiskInputs(incidents_7d=10, incidents_prev_28d=20, major_7d=1))
>>> [(p.key, p.points) for p in s.parts if p.points]
[('surge', 25.0), ('major', 8.0)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# incidents that are not incidents: duplicates merged into another, and false alarms
NOT_COUNTED = ("merged", "false_alarm")
# an incident in one of these states is no longer a backlog item
RESOLVED = ("verified", "followed_up", "closed", "merged", "false_alarm")
# order-node states (command.orders.service): open, waiting for sign-off, being worked on
NODE_OPEN = ("issued", "delivered", "acknowledged", "in_progress", "returned")
NODE_UNACKED = ("issued", "delivered")
NODE_WORKING = ("acknowledged", "in_progress")
LIVE_ALERTS = ("open", "acknowledged")

ALERT_LEVEL_LABELS = {"red": "红色", "orange": "橙色", "yellow": "黄色", "blue": "蓝色"}
# (lowest score, level, colour name, meaning), highest band first
BANDS = ((75.0, "red", "红色", "重大风险"), (50.0, "orange", "橙色", "较大风险"),
         (25.0, "yellow", "黄色", "一般风险"), (0.0, "blue", "蓝色", "低风险"))


@dataclass(frozen=True)
class Weights:
    """Points per count and caps; the caps must add up to 100 (the score's maximum)."""

    days: int = 7                  # the recent window
    baseline_weeks: int = 4        # the township's own baseline before it
    surge_max: float = 25.0        # points for a rise of 100 % or more over the weekly mean
    surge_floor: float = 5.0       # a weekly mean below this counts as this
    major_each: float = 8.0        # per Ⅰ/Ⅱ级 incident
    major_max: float = 20.0
    mass_each: float = 5.0         # per 群体性事件
    mass_max: float = 15.0
    alert_each: tuple[tuple[str, float], ...] = (("red", 8.0), ("orange", 5.0), ("yellow", 3.0),
                                                 ("blue", 1.0))
    alert_max: float = 15.0
    # alerts of these rules are already counted by another component: major, repeat, orders
    alert_rules_elsewhere: tuple[str, ...] = ("severity", "repeat_place", "overdue", "escalated")
    repeat_days: int = 30          # the repeat-place rule's defaults (alerts/defaults.toml)
    repeat_count: int = 3
    repeat_types: tuple[str, ...] = ("dispute", "petition")
    repeat_each: float = 4.0       # per repeat place
    repeat_max: float = 10.0
    open_order_each: float = 0.5   # per open order node
    overdue_order_each: float = 3.0  # per overdue order node (instead of the 0.5)
    orders_max: float = 10.0
    backlog_days: int = 30         # unresolved incidents of this many days …
    backlog_after_days: int = 3    # … that are older than this
    backlog_each: float = 0.5
    backlog_max: float = 5.0

    def __post_init__(self) -> None:
        caps = (self.surge_max + self.major_max + self.mass_max + self.alert_max
                + self.repeat_max + self.orders_max + self.backlog_max)
        if abs(caps - 100.0) > 1e-9:
            raise ValueError(f"the caps add up to {caps:g}, not 100")
        if min(self.surge_floor, self.days, self.baseline_weeks) <= 0:
            raise ValueError("surge_floor, days and baseline_weeks must be positive")

    @property
    def history_days(self) -> int:
        """How far back the score looks."""
        return max(self.days * (1 + self.baseline_weeks), self.repeat_days, self.backlog_days)


WEIGHTS = Weights()


@dataclass(frozen=True)
class RiskInputs:
    """The counts behind one township's score."""

    incidents_7d: int = 0          # incidents of the recent window (`Weights.days`)
    incidents_prev_28d: int = 0    # incidents of the `baseline_weeks` weeks before it
    major_7d: int = 0              # of those recent ones: Ⅰ/Ⅱ级
    mass_7d: int = 0               # of those recent ones: 群体性事件
    alerts: Mapping[str, int] = field(default_factory=dict)  # live alerts by level
    repeat_places: int = 0
    open_orders: int = 0           # open order nodes that are not overdue
    overdue_orders: int = 0
    backlog: int = 0

    def weekly_mean(self, weights: Weights = WEIGHTS) -> float:
        """The baseline: incidents per recent window in the weeks before."""
        return self.incidents_prev_28d * weights.days / (7 * weights.baseline_weeks)


@dataclass(frozen=True)
class Part:
    """One component: its points, its cap and a sentence that says why."""

    key: str
    label: str
    points: float
    cap: float
    detail: str

    def as_dict(self) -> dict:
        """The wire form."""
        return {"key": self.key, "label": self.label, "points": self.points, "max": self.cap,
                "detail": self.detail}


@dataclass(frozen=True)
class RiskScore:
    """A township's score, its colour band and the parts it is made of."""

    score: float
    level: str
    level_label: str
    parts: tuple[Part, ...]

    def as_dict(self) -> dict:
        """The wire form."""
        return {"score": self.score, "level": self.level, "level_label": self.level_label,
                "components": [p.as_dict() for p in self.parts]}


def _capped(points: float, cap: float) -> float:
    return round(min(max(points, 0.0), cap), 1)


def band(value: float) -> tuple[str, str]:
    """The warning colour of a score and its label, e.g. ('orange', '橙色 · 较大风险').

    >>> band(80.0)
    ('red', '红色 · 重大风险')
    >>> band(0)
    ('blue', '蓝色 · 低风险')
    """
    for lowest, level, colour, meaning in BANDS:
        if value >= lowest:
            return level, f"{colour} · {meaning}"
    return BANDS[-1][1], f"{BANDS[-1][2]} · {BANDS[-1][3]}"


def score(x: RiskInputs, weights: Weights = WEIGHTS) -> RiskScore:
    """Score one township's inputs (see the module docstring for the formula)."""
    w = weights
    mean = x.weekly_mean(w)
    rise = max(0.0, x.incidents_7d - mean)
    ratio = rise / max(mean, w.surge_floor)
    surge_detail = (f"近{w.days}天 {x.incidents_7d} 起，前{w.baseline_weeks}周平均每{w.days}天 "
                    f"{mean:.1f} 起")
    surge_detail += f"，增加 {ratio:.0%}" if rise > 0 else "，未增加"
    alert_points = sum(dict(w.alert_each).get(level, 0.0) * n for level, n in x.alerts.items())
    alert_text = "、".join(f"{ALERT_LEVEL_LABELS.get(level, level)} {n} 条"
                          for level, _ in w.alert_each if (n := x.alerts.get(level, 0)))
    parts = (
        Part("surge", "事件增幅", _capped(w.surge_max * ratio, w.surge_max), w.surge_max,
             surge_detail),
        Part("major", "Ⅰ/Ⅱ级事件", _capped(w.major_each * x.major_7d, w.major_max), w.major_max,
             f"近{w.days}天 {x.major_7d} 起"),
        Part("mass", "群体性事件", _capped(w.mass_each * x.mass_7d, w.mass_max), w.mass_max,
             f"近{w.days}天 {x.mass_7d} 起"),
        Part("alerts", "未解除预警", _capped(alert_points, w.alert_max), w.alert_max,
             alert_text or "无"),
        Part("repeat", "重复发生点位",
             _capped(w.repeat_each * x.repeat_places, w.repeat_max), w.repeat_max,
             f"{x.repeat_places} 处重复发生点位（未解除预警）"),
        Part("orders", "指令未办结",
             _capped(w.open_order_each * x.open_orders + w.overdue_order_each * x.overdue_orders,
                     w.orders_max), w.orders_max,
             f"在办 {x.open_orders} 条，超时 {x.overdue_orders} 条"),
        Part("backlog", "积压未结", _capped(w.backlog_each * x.backlog, w.backlog_max),
             w.backlog_max,
             f"{x.backlog} 起超过{w.backlog_after_days}天未办结"),
    )
    total = round(min(100.0, sum(p.points for p in parts)), 1)
    level, label = band(total)
    return RiskScore(total, level, label, parts)


def formula(weights: Weights = WEIGHTS) -> list[str]:
    """The formula in Chinese, one line per component, for the wall's legend."""
    w = weights
    alerts = "、".join(f"{ALERT_LEVEL_LABELS[level][:1]}{points:g}"
                      for level, points in w.alert_each)
    return [
        "风险指数 0–100 = 下列七项得分之和（每项有上限，合计 100）",
        f"事件增幅：近{w.days}天事件数比前{w.baseline_weeks}周同期平均多出的比例 × {w.surge_max:g}"
        f"（平均数不足 {w.surge_floor:g} 按 {w.surge_floor:g} 计），上限 {w.surge_max:g}",
        f"Ⅰ/Ⅱ级事件：近{w.days}天每起 {w.major_each:g} 分，上限 {w.major_max:g}",
        f"群体性事件：近{w.days}天每起 {w.mass_each:g} 分，上限 {w.mass_max:g}",
        f"未解除预警：每条 {alerts} 分，上限 {w.alert_max:g}"
        "（Ⅰ/Ⅱ级、重复点位、督办预警已在他项计分）",
        f"重复发生点位：未解除的「重复发生」预警（同一地点近{w.repeat_days}天矛盾纠纷/信访 "
        f"发生 ≥ {w.repeat_count} 次），每处 {w.repeat_each:g} 分，上限 {w.repeat_max:g}",
        f"指令未办结：在办每条 {w.open_order_each:g} 分、超时每条 {w.overdue_order_each:g} 分，"
        f"上限 {w.orders_max:g}",
        f"积压未结：近{w.backlog_days}天超过{w.backlog_after_days}天未办结的事件每起 "
        f"{w.backlog_each:g} 分，上限 {w.backlog_max:g}",
        "不计合并和误报的事件",
    ]


# --- from plain rows --------------------------------------------------------------------------

def _code(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return value.get("code")
    return value


def node_overdue(state: str, ack_by: datetime, due_by: datetime, now: datetime) -> bool:
    """Whether an order node missed its sign-off or completion deadline (as supervision sees it).

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> node_overdue("delivered", t, t + timedelta(hours=1), t)
    True
    >>> node_overdue("acknowledged", t, t + timedelta(hours=1), t)
    False
    """
    return ((state in NODE_UNACKED and ack_by <= now)
            or (state in NODE_UNACKED + NODE_WORKING and due_by <= now))


def collect(incidents: Iterable[Mapping], *, now: datetime,
            alerts: Iterable[Mapping] = (), nodes: Iterable[Mapping] = (),
            township_of: Callable[[str], str | None] = lambda code: None,
            weights: Weights = WEIGHTS) -> dict[str, RiskInputs]:
    """Count each township's inputs from plain rows; townships without any are left out.

    `incidents`: mappings with `township_code` (or `township` as {code}), `grid_code` (or
    `grid`), `type`, `severity`, `status` and an aware `occurred_at`. `alerts`: `rule`, `level`,
    `status` and `units` (unit codes). `nodes`: order nodes with `township_code` (their
    incident's), `state`, `ack_by` and `due_by`. `township_of(code)` names the township of a grid
    code (a township code answers itself) for the units of an alert.
    """
    w = weights
    recent = now - timedelta(days=w.days)
    first = recent - timedelta(weeks=w.baseline_weeks)
    backlog_from = now - timedelta(days=w.backlog_days)
    backlog_to = now - timedelta(days=w.backlog_after_days)
    counts: dict[str, dict[str, Any]] = {}

    def row(code: str) -> dict[str, Any]:
        return counts.setdefault(code, {"alerts": {}})

    for i in incidents:
        township = _code(i.get("township_code", i.get("township")))
        if township is None or i.get("status") in NOT_COUNTED:
            continue
        at = i["occurred_at"]
        c = row(township)
        if at >= recent:
            c["incidents_7d"] = c.get("incidents_7d", 0) + 1
            c["major_7d"] = c.get("major_7d", 0) + (int(i.get("severity") or 4) <= 2)
            c["mass_7d"] = c.get("mass_7d", 0) + (i.get("type") == "mass")
        elif at >= first:
            c["incidents_prev_28d"] = c.get("incidents_prev_28d", 0) + 1
        if backlog_from <= at < backlog_to and i.get("status") not in RESOLVED:
            c["backlog"] = c.get("backlog", 0) + 1
    for a in alerts:
        if a.get("status") not in LIVE_ALERTS:
            continue
        if a.get("rule") == "repeat_place":  # the watch's own definition of a repeat place
            for township in {t for u in a.get("units") or () if (t := township_of(u))}:
                c = row(township)
                c["repeat_places"] = c.get("repeat_places", 0) + 1
            continue
        if a.get("rule") in w.alert_rules_elsewhere:
            continue
        for township in {t for u in a.get("units") or () if (t := township_of(u))}:
            levels = row(township)["alerts"]
            levels[a["level"]] = levels.get(a["level"], 0) + 1
    for n in nodes:
        township = _code(n.get("township_code"))
        if township is None or n.get("state") not in NODE_OPEN:
            continue
        key = ("overdue_orders" if node_overdue(n["state"], n["ack_by"], n["due_by"], now)
               else "open_orders")
        c = row(township)
        c[key] = c.get(key, 0) + 1
    out = {}
    for township, c in counts.items():
        out[township] = RiskInputs(**c)
    return out


def rank(inputs: Mapping[str, RiskInputs], townships: Iterable[str],
         weights: Weights = WEIGHTS) -> dict[str, RiskScore]:
    """Score every township of `townships` (the quiet ones too), in the given order."""
    return {code: score(inputs.get(code, RiskInputs()), weights) for code in townships}
