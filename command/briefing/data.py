"""What a briefing says, read from the database into plain dataclasses (no formatting here).

Counting rules (口径), the same for every format:

- Incidents belong to a period by `occurred_at`, local time Asia/Shanghai, `[start, end)`.
  接报 counts every stored report; 有效 leaves out those merged into another and false alarms.
- 办结 = verified, followed up or closed; the closing rate is 办结 / 有效 of the period's
  incidents as they stand when the brief is made. Handling time runs from `received_at` to the
  first 核查结案 (verified) of the incident.
- Major incidents: type `mass`, or people ≥ the mass-gathering threshold of the alert rules, or
  severity Ⅰ/Ⅱ.
- Overdue orders follow supervision (orders/supervision.py): a node misses its sign-off when
  it is still issued/delivered at `ack_by`, its completion when it is still open (not
  completed, returned or cancelled) at `due_by`. A miss belongs to the period its deadline falls
  in, and only deadlines that have passed count. A reissued node is judged on its current round.
- Alerts belong to the period they were raised in (a reopened alert counts from its reopening);
  how they ended is their status now.
- Satisfaction: the ratings of the period's incidents (回访, 1–5); satisfied = 4 or 5.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.alerts.models import alerts
from command.briefing.periods import Period, local_midnight
from command.errors import NotFound
from command.incidents.events import incident_events
from command.incidents.loop import SYSTEM
from command.incidents.models import incidents
from command.incidents.types import SEVERITY_LABELS, TYPE_LABELS
from command.incidents.workflow import STATE_LABELS
from command.orders.models import order_node_events, order_nodes, orders
from command.orders.service import NODE_STATE_LABELS
from command.units.models import units
from layers.theme import TYPE_CODES

CLOSED = ("verified", "followed_up", "closed")
VOID = ("merged", "false_alarm")
UNLOCATED = "县域外/未落图"
NUMERALS = {1: "Ⅰ", 2: "Ⅱ", 3: "Ⅲ", 4: "Ⅳ"}
LEVEL_LABELS = {"grid": "网格", "township": "乡镇(街道)", "county": "县级", "dept": "部门"}
PRIORITY_LABELS = {"urgent": "特急", "high": "紧急", "normal": "一般"}
RULE_LABELS = {"overdue": "指令逾期督办", "escalated": "逾期升级", "severity": "高等级事件",
               "mass_gathering": "群体性聚集", "spike": "异常激增", "repeat_place": "重复发生地",
               "feed_silence": "数据源中断", "matter_overdue": "事项办理督办",
               "repeat_party": "重复来访", "confirmation_window": "司法确认提醒"}
ALERT_LEVEL_LABELS = {"red": "红色", "orange": "橙色", "yellow": "黄色", "blue": "蓝色"}
ALERT_STATUS_LABELS = {"open": "待处置", "acknowledged": "已确认", "dismissed": "已排除",
                       "resolved": "已解除"}
_ACK_LEFT = ("acknowledged", "in_progress", "completed", "returned", "cancelled")
_DUE_LEFT = ("completed", "returned", "cancelled")
_BATCH = 500


@dataclass(frozen=True)
class Thresholds:
    """What counts as major, a repeat place, satisfied; how long lists get."""

    mass_people: int = 30
    repeat_types: tuple[str, ...] = ("dispute", "petition")
    repeat_count: int = 3
    satisfied_min: int = 4
    list_cap: int = 100
    hotspots: int = 10

    @classmethod
    def from_rules(cls, path=None, **overrides) -> Thresholds:
        """The alert rules' thresholds (alerts/defaults.toml, then the deployment's file at
        `path`): mass gathering and repeat place."""
        from alerts.config import load_config

        cfg = load_config(path or None)
        values = {"mass_people": cfg.mass_gathering.people,
                  "repeat_types": tuple(cfg.repeat_place.types),
                  "repeat_count": cfg.repeat_place.count}
        values.update(overrides)
        return cls(**values)


@dataclass
class Row:
    """One line of a comparison table: this period against the previous one."""

    code: str | None
    label: str
    current: int
    previous: int
    closed: int = 0

    @property
    def change(self) -> int:
        return self.current - self.previous


@dataclass
class NodeLine:
    """One order node with its timings (aware UTC datetimes)."""

    id: str
    depth: int
    target: str
    target_level: str | None
    state: str
    created_at: datetime
    ack_by: datetime
    due_by: datetime
    acked_at: datetime | None
    done_at: datetime | None  # completed, returned or cancelled
    acked_by: str | None
    result: str | None
    reason: str | None
    late_ack: timedelta | None  # how late the sign-off was (or is, still unsigned)
    late_due: timedelta | None

    @property
    def state_label(self) -> str:
        return NODE_STATE_LABELS.get(self.state, self.state)


@dataclass
class OrderLine:
    """An order and its nodes, top nodes first with their children after them (depth-first)."""

    id: str
    issued_at: datetime
    issued_by: str
    instruction: str
    priority: str
    nodes: list[NodeLine]


@dataclass
class MajorIncident:
    """A mass or Ⅰ/Ⅱ级 incident of the period with its orders and outcome."""

    id: str
    title: str
    type: str
    severity: int
    occurred_at: datetime
    township: str
    grid: str
    people: int | None
    status: str
    rating: int | None
    reasons: list[str]
    orders: list[OrderLine]


@dataclass
class OverdueItem:
    """One missed step of an order node: sign-off (签收) or completion (办结)."""

    node_id: str
    incident_id: str
    incident_title: str
    severity: int
    target: str
    step: str  # "ack" | "due"
    deadline: datetime
    done_at: datetime | None  # when it finally happened (None: still not)
    late: timedelta
    state: str

    @property
    def state_label(self) -> str:
        return NODE_STATE_LABELS.get(self.state, self.state)


@dataclass
class AlertStats:
    """Alerts raised in the period: by rule × level and rule × status."""

    total: int
    by_rule: dict[str, dict[str, int]]  # rule -> level -> count
    status_by_rule: dict[str, dict[str, int]]  # rule -> status -> count
    by_status: dict[str, int]
    by_level: dict[str, int]


@dataclass
class Place:
    """A grid with its township and how many incidents (of which types)."""

    grid_code: str
    grid: str
    township: str
    count: int
    types: dict[str, int]


@dataclass
class Satisfaction:
    """Follow-up ratings of the period's incidents."""

    count: int
    distribution: dict[int, int]
    satisfied: int

    @property
    def mean(self) -> float | None:
        if not self.count:
            return None
        return sum(r * n for r, n in self.distribution.items()) / self.count

    @property
    def share(self) -> float | None:
        return self.satisfied / self.count if self.count else None


@dataclass
class PeriodBrief:
    """Everything a 情况报告 says about one period."""

    county: str
    period: Period
    generated_at: datetime
    as_of: datetime  # the end of what was counted: the period's end, or now when it runs on
    partial: bool
    previous: Period
    previous_end: datetime  # the compared span of the previous period ends here
    thresholds: Thresholds
    total: int
    previous_total: int
    merged: int
    false_alarm: int
    closed: int
    handling_count: int
    handling_hours: float | None
    by_type: list[Row]
    by_township: list[Row]
    by_severity: list[Row]
    trend: list[tuple[str, int]]
    majors: list[MajorIncident]
    majors_total: int
    majors_counts: dict[str, int]
    overdue: list[OverdueItem]
    overdue_counts: dict[str, int]
    alerts: AlertStats
    hotspots: list[Place]
    repeats: list[Place]
    satisfaction: Satisfaction
    # the center's figures of the matters (command.matters.stats.figures by lead unit, the same
    # function as GET /api/v1/stats/matters for these days), None where no matter exists
    matters: dict | None = None

    @property
    def valid(self) -> int:
        return self.total - self.merged - self.false_alarm

    @property
    def closing_rate(self) -> float | None:
        return self.closed / self.valid if self.valid else None


@dataclass
class TimelineLine:
    id: int
    at: datetime
    by: str
    from_state: str | None
    to_state: str
    note: str


@dataclass
class ProgressLine:
    """One line of an order node's history (sign-off, progress report, completion …)."""

    id: int
    at: datetime
    target: str
    state: str
    by: str
    note: str


@dataclass
class AlertLine:
    rule: str
    level: str
    status: str
    raised_at: datetime
    message: str


@dataclass
class IncidentBrief:
    """Everything a 专报 / 续报 says about one incident."""

    county: str
    generated_at: datetime
    id: str
    title: str
    type: str
    severity: int
    occurred_at: datetime
    received_at: datetime
    township: str
    grid: str
    lon: float
    lat: float
    people: int | None
    description: str
    status: str
    level: str
    merged_into: str | None
    rating: int | None
    orders: list[OrderLine]
    timeline: list[TimelineLine]
    progress: list[ProgressLine]
    alerts: list[AlertLine]
    major: bool
    number: int = 0  # 0 = 专报, n = 续报（第n次）
    previous_at: datetime | None = None
    changes: list[str] = field(default_factory=list)

    def snapshot(self) -> dict:
        """What this report said, in JSON terms, to find what changed by the next one."""
        return {
            "status": self.status, "severity": self.severity, "people": self.people,
            "level": self.level, "rating": self.rating, "merged_into": self.merged_into,
            "orders": [o.id for o in self.orders],
            "nodes": {n.id: n.state for o in self.orders for n in o.nodes},
            "last_event": max((t.id for t in self.timeline), default=0),
            "last_progress": max((p.id for p in self.progress), default=0),
        }


# --- the period brief ---------------------------------------------------------------------

def period_brief(session: Session, period: Period, *, now: datetime,
                 thresholds: Thresholds | None = None) -> PeriodBrief:
    """Read everything a 情况报告 of `period` says, as the database stands at `now`.

    The period's incidents are read in one pass (a few small columns each) and counted here;
    the previous period in one grouped query. A month of 100k incidents stays a few seconds.
    """
    th = thresholds or Thresholds.from_rules()
    start, end = period.start_utc, period.end_utc
    partial = end > now
    as_of = min(end, now)
    previous = period.previous()
    # a period still running is compared with the same span of the previous one
    previous_end = min(previous.end_utc, previous.start_utc + (as_of - start))
    names = _unit_names(session)
    scan = _scan(session, period, th)
    before = _previous(session, previous.start_utc, previous_end)
    prev_types, prev_towns, prev_sev = Counter(), Counter(), Counter()
    for (type_, town, sev), n in before.items():
        prev_types[type_] += n
        prev_towns[town] += n
        prev_sev[sev] += n

    type_codes = list(TYPE_CODES) + sorted(set(scan.types) - set(TYPE_CODES))
    by_type = [Row(c, TYPE_LABELS.get(c, c), scan.types[c], prev_types[c]) for c in type_codes]
    townships = [u for u in names.values() if u["level"] == "township"]
    town_codes = [u["code"] for u in sorted(townships, key=lambda u: u["code"])]
    town_codes += sorted(c for c in set(scan.towns) | set(prev_towns)
                         if c is not None and c not in town_codes)
    by_township = [Row(c, _name(names, c), scan.towns[c], prev_towns[c], scan.town_closed[c])
                   for c in town_codes]
    if scan.towns[None] or prev_towns[None]:
        by_township.append(Row(None, UNLOCATED, scan.towns[None], prev_towns[None],
                               scan.town_closed[None]))
    by_severity = [Row(str(s), f"{NUMERALS[s]}级（{SEVERITY_LABELS[s].split()[-1]}）",
                       scan.severity[s], prev_sev[s]) for s in (1, 2, 3, 4)]

    handling = _handling(session, scan)
    majors = _majors(session, scan, th, names)
    overdue, overdue_counts = _overdue(session, start, end, as_of, th, names)
    labels = _bucket_labels(period)
    # a running period shows its buckets up to now (and any later one that has reports)
    shown = 1 + max([i for i, (_, edge) in enumerate(labels) if edge < as_of or scan.buckets[i]],
                    default=-1)
    hot = sorted(scan.grids.items(), key=lambda kv: (-kv[1], kv[0]))[:th.hotspots]
    repeats = sorted(((g, n) for g, n in scan.repeat.items() if n >= th.repeat_count),
                     key=lambda kv: (-kv[1], kv[0]))
    return PeriodBrief(
        county=_county(names), period=period, generated_at=now, as_of=as_of, partial=partial,
        previous=previous, previous_end=previous_end, thresholds=th,
        total=scan.total, previous_total=sum(before.values()),
        merged=scan.status["merged"], false_alarm=scan.status["false_alarm"],
        closed=sum(scan.status[s] for s in CLOSED),
        handling_count=len(handling),
        handling_hours=(sum(handling) / len(handling) / 3600) if handling else None,
        by_type=by_type, by_township=by_township, by_severity=by_severity,
        trend=[(label, scan.buckets[i]) for i, (label, _) in enumerate(labels[:shown])],
        majors=majors, majors_total=len(scan.majors), majors_counts=dict(scan.major_counts),
        overdue=overdue, overdue_counts=overdue_counts,
        alerts=_alert_stats(session, start, end),
        hotspots=[_place(names, g, n, scan.grid_types[g]) for g, n in hot],
        repeats=[_place(names, g, n, scan.repeat_types[g]) for g, n in repeats],
        satisfaction=Satisfaction(
            count=sum(scan.ratings.values()),
            distribution={r: scan.ratings[r] for r in (1, 2, 3, 4, 5)},
            satisfied=sum(v for r, v in scan.ratings.items() if r >= th.satisfied_min)),
        matters=matter_figures(session, period, as_of=as_of, names=names),
    )


class _Names:
    """The unit names as the figures ask for them (a Locator's has/unit)."""

    def __init__(self, names: dict[str, dict]) -> None:
        self._names = names

    def has(self, code: str) -> bool:
        return code in self._names

    def unit(self, code: str) -> dict:
        return self._names[code]


def matter_figures(session: Session, period: Period, *, as_of: datetime,
                   names: dict[str, dict]) -> dict:
    """The matters' figures of the period's days (a running period: up to today), by lead
    unit, against the same number of days before (command.matters.stats, as the API)."""
    from command.matters import stats

    last = min(period.last_day, stats.local_day(as_of))
    return stats.figures(session, stats.DayRange(period.start, max(last, period.start)),
                         by="dept", locator=_Names(names))


@dataclass
class _Scan:
    """Counts of one pass over the period's incidents."""

    total: int = 0
    types: Counter = field(default_factory=Counter)
    towns: Counter = field(default_factory=Counter)
    town_closed: Counter = field(default_factory=Counter)
    severity: Counter = field(default_factory=Counter)
    status: Counter = field(default_factory=Counter)
    ratings: Counter = field(default_factory=Counter)
    buckets: Counter = field(default_factory=Counter)
    grids: Counter = field(default_factory=Counter)
    grid_types: dict = field(default_factory=lambda: defaultdict(Counter))
    repeat: Counter = field(default_factory=Counter)
    repeat_types: dict = field(default_factory=lambda: defaultdict(Counter))
    majors: list = field(default_factory=list)  # (severity, occurred epoch, id)
    major_counts: Counter = field(default_factory=lambda: Counter(
        {"severity_1": 0, "severity_2": 0, "mass": 0, "people": 0}))
    received: dict = field(default_factory=dict)  # id -> received epoch, of 办结 incidents


def _epoch(session: Session, column):
    """Seconds since 1970 of a UTC datetime column, computed by the database (a float)."""
    if session.get_bind().dialect.name == "sqlite":
        return (sa.func.julianday(column) - 2440587.5) * 86400.0
    return sa.func.extract("epoch", column)


def _bucket_labels(period: Period) -> list[tuple[str, datetime]]:
    """(label, start) of each trend bucket: hours of a day, days of a week or month."""
    if period.kind == "day":
        return [(f"{h}时", period.start_utc + timedelta(hours=h)) for h in range(24)]
    return [(f"{d.month}/{d.day}", local_midnight(d)) for d in period.days()]


def _scan(session: Session, period: Period, th: Thresholds) -> _Scan:
    i = incidents.c
    edges = [edge for _, edge in _bucket_labels(period)][1:]
    bucket = sa.case(*[(i.occurred_at < edge, k) for k, edge in enumerate(edges)],
                     else_=len(edges))
    stmt = (sa.select(i.id, i.type, i.township_code, i.grid_code, i.severity, i.status,
                      i.rating, i.people, bucket, _epoch(session, i.occurred_at),
                      _epoch(session, i.received_at))
            .where(_in(period.start_utc, period.end_utc)))
    out = _Scan()
    repeat_types = set(th.repeat_types)
    for (id_, type_, town, grid, sev, status, rating, people, b, occurred,
         received) in session.execute(stmt):
        out.total += 1
        out.types[type_] += 1
        out.towns[town] += 1
        out.severity[sev] += 1
        out.status[status] += 1
        out.buckets[int(b)] += 1
        if status in CLOSED:
            out.town_closed[town] += 1
            out.received[id_] = float(received)
        if rating is not None:
            out.ratings[int(rating)] += 1
        if grid is not None:
            out.grids[grid] += 1
            out.grid_types[grid][type_] += 1
            if type_ in repeat_types:
                out.repeat[grid] += 1
                out.repeat_types[grid][type_] += 1
        crowd = people is not None and people >= th.mass_people
        if sev <= 2 or type_ == "mass" or crowd:
            out.majors.append((sev, float(occurred), id_))
            out.major_counts["severity_1"] += sev == 1
            out.major_counts["severity_2"] += sev == 2
            out.major_counts["mass"] += type_ == "mass"
            out.major_counts["people"] += crowd
    return out


def _previous(session: Session, start: datetime, end: datetime) -> dict:
    i = incidents.c
    stmt = (sa.select(i.type, i.township_code, i.severity, sa.func.count())
            .where(_in(start, end)).group_by(i.type, i.township_code, i.severity))
    return {(t, town, sev): n for t, town, sev, n in session.execute(stmt)}


def _in(start: datetime, end: datetime):
    return sa.and_(incidents.c.occurred_at >= start, incidents.c.occurred_at < end)


def _place(names: dict, grid: str, count: int, types: Counter) -> Place:
    unit = names.get(grid) or {}
    return Place(grid_code=grid, grid=_name(names, grid), township=_name(names, unit.get("parent")),
                 count=count, types=dict(sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))))


def _unit_names(session: Session) -> dict[str, dict]:
    stmt = sa.select(units.c.code, units.c.name, units.c.level, units.c.parent)
    return {r.code: dict(r._mapping) for r in session.execute(stmt)}


def _name(names: dict[str, dict], code: str | None) -> str:
    if code is None:
        return "—"
    unit = names.get(code)
    return unit["name"] if unit else code


def _county(names: dict[str, dict]) -> str:
    counties = sorted((u for u in names.values() if u["level"] == "county"),
                      key=lambda u: u["code"])
    return counties[0]["name"] if counties else ""


def _handling(session: Session, scan: _Scan) -> list[float]:
    """Seconds from receipt to the first 核查结案, for each verified incident of the period."""
    if not scan.received:
        return []
    e = incident_events.c
    # the first 核查结案 of each; no GROUP BY: the database would sort every id to find it
    stmt = sa.select(e.incident_id, _epoch(session, e.at)).where(
        e.to_state == "verified", e.at >= _earliest(scan))
    first: dict[str, float] = {}
    for incident_id, at in session.execute(stmt):
        if incident_id in scan.received and (incident_id not in first
                                             or at < first[incident_id]):
            first[incident_id] = float(at)
    return [max(0.0, at - scan.received[i]) for i, at in first.items()]


def _earliest(scan: _Scan) -> datetime:
    """No incident of the scan can have been verified before it was received."""
    return datetime.fromtimestamp(min(scan.received.values()), timezone.utc) - timedelta(seconds=1)


def _reasons(row, th: Thresholds) -> list[str]:
    out = []
    if row["severity"] in (1, 2):
        out.append(f"{NUMERALS[row['severity']]}级")
    if row["type"] == "mass":
        out.append("群体性事件")
    if row["people"] is not None and row["people"] >= th.mass_people:
        out.append(f"涉及{row['people']}人")
    return out


def _majors(session: Session, scan: _Scan, th: Thresholds, names: dict
            ) -> list[MajorIncident]:
    """The first `list_cap` major incidents by severity and time, with their orders."""
    ids = [id_ for _, _, id_ in sorted(scan.majors)[:th.list_cap]]
    rows: dict[str, dict] = {}
    for k in range(0, len(ids), _BATCH):
        for r in session.execute(sa.select(incidents).where(incidents.c.id.in_(ids[k:k + _BATCH]))):
            rows[r.id] = r._mapping
    trees = _order_lines(session, ids, names, as_of=None)
    return [MajorIncident(
        id=r["id"], title=r["title"], type=r["type"], severity=r["severity"],
        occurred_at=r["occurred_at"], township=_name(names, r["township_code"]),
        grid=_name(names, r["grid_code"]), people=r["people"], status=r["status"],
        rating=r["rating"], reasons=_reasons(r, th), orders=trees.get(r["id"], []))
        for r in (rows[i] for i in ids)]


def _events_by_node(session: Session, node_ids: list[str]) -> dict[str, list]:
    out: dict[str, list] = {n: [] for n in node_ids}
    for k in range(0, len(node_ids), _BATCH):
        stmt = (sa.select(order_node_events)
                .where(order_node_events.c.node_id.in_(node_ids[k:k + _BATCH]))
                .order_by(order_node_events.c.id))
        for e in session.execute(stmt):
            out[e.node_id].append(e)
    return out


def _round(events: list) -> list:
    """The events of the node's current round: from its last (re)issue by a person on.

    Supervision writes history lines in the current state (e.g. "issued" by the system) and an
    escalation's new node starts with an "issued" line by the system; neither starts a round.
    """
    start = 0
    for k, e in enumerate(events):
        if e.state == "issued" and (k == 0 or e.by != SYSTEM):
            start = k
    return events[start:]


def _first(events: list, states: tuple[str, ...]) -> datetime | None:
    return next((e.at for e in events if e.state in states), None)


def node_timing(node, events: list, as_of: datetime | None
                ) -> tuple[datetime | None, datetime | None, timedelta | None, timedelta | None]:
    """(signed off at, left the open states at, how late the sign-off, how late completion).

    Lateness is None when the step was on time, or its deadline has not passed by `as_of`
    (None: the deadline has passed when the step is still open).
    """
    current = _round(events)
    acked = _first(current, _ACK_LEFT)
    done = _first(current, _DUE_LEFT)
    return (acked, done, _late(node["ack_by"], acked, as_of),
            _late(node["due_by"], done, as_of))


def _late(deadline: datetime, happened: datetime | None, as_of: datetime | None
          ) -> timedelta | None:
    if happened is not None:
        return happened - deadline if happened > deadline else None
    if as_of is not None and deadline <= as_of:
        return as_of - deadline
    return None


def _order_lines(session: Session, incident_ids: list[str], names: dict,
                 as_of: datetime | None) -> dict[str, list[OrderLine]]:
    """The orders of these incidents, oldest first, with their nodes depth-first."""
    if not incident_ids:
        return {}
    order_rows, node_rows = [], []
    for k in range(0, len(incident_ids), _BATCH):
        part = incident_ids[k:k + _BATCH]
        order_rows += [r._mapping for r in session.execute(
            sa.select(orders).where(orders.c.incident_id.in_(part)))]
        node_rows += [r._mapping for r in session.execute(
            sa.select(order_nodes).where(order_nodes.c.incident_id.in_(part)))]
    events = _events_by_node(session, [n["id"] for n in node_rows])
    kids: dict[str | None, list] = {}
    for n in sorted(node_rows, key=lambda n: (n["created_at"], n["seq"])):
        kids.setdefault(n["parent_id"], []).append(n)
    by_id = {n["id"]: n for n in node_rows}

    def walk(node, depth: int, out: list[NodeLine]) -> None:
        acked, done, late_ack, late_due = node_timing(node, events[node["id"]], as_of)
        unit = names.get(node["target_code"])
        out.append(NodeLine(
            id=node["id"], depth=depth, target=_name(names, node["target_code"]),
            target_level=unit["level"] if unit else None, state=node["state"],
            created_at=node["created_at"], ack_by=node["ack_by"], due_by=node["due_by"],
            acked_at=acked, done_at=done, acked_by=node["acked_by"], result=node["result"],
            reason=node["reason"], late_ack=late_ack, late_due=late_due))
        for kid in kids.get(node["id"], []):
            walk(kid, depth + 1, out)

    result: dict[str, list[OrderLine]] = {}
    for o in sorted(order_rows, key=lambda o: (o["issued_at"], o["id"])):
        lines: list[NodeLine] = []
        # top nodes of this order: no parent, or a parent outside it (escalation moves parents)
        for n in sorted((n for n in node_rows if n["order_id"] == o["id"]
                         and (n["parent_id"] is None or n["parent_id"] not in by_id)),
                        key=lambda n: (n["created_at"], n["seq"])):
            walk(n, 0, lines)
        result.setdefault(o["incident_id"], []).append(OrderLine(
            id=o["id"], issued_at=o["issued_at"], issued_by=o["issued_by"],
            instruction=o["instruction"], priority=o["priority"], nodes=lines))
    return result


def _overdue(session: Session, start: datetime, end: datetime, as_of: datetime,
             th: Thresholds, names: dict) -> tuple[list[OverdueItem], dict[str, int]]:
    """Missed sign-offs and completions whose deadline fell in the period (and has passed)."""
    n = order_nodes.c
    last = min(end, as_of)

    def due(col):
        return sa.and_(col >= start, col < end, col <= last)

    stmt = (sa.select(order_nodes, incidents.c.title, incidents.c.severity)
            .join(incidents, incidents.c.id == n.incident_id)
            .where(sa.or_(due(n.ack_by), due(n.due_by))))
    rows = [r._mapping for r in session.execute(stmt)]
    events = _events_by_node(session, [r["id"] for r in rows])
    items: list[OverdueItem] = []
    for r in rows:
        acked, done, _, _ = node_timing(r, events[r["id"]], as_of)
        for step, deadline, happened in (("ack", r["ack_by"], acked), ("due", r["due_by"], done)):
            if not (start <= deadline < end and deadline <= last):
                continue
            if happened is not None and happened <= deadline:
                continue
            late = (happened if happened is not None else as_of) - deadline
            items.append(OverdueItem(
                node_id=r["id"], incident_id=r["incident_id"], incident_title=r["title"],
                severity=r["severity"], target=_name(names, r["target_code"]), step=step,
                deadline=deadline, done_at=happened, late=late, state=r["state"]))
    items.sort(key=lambda x: (x.deadline, x.node_id, x.step))
    counts = {"ack": sum(1 for x in items if x.step == "ack"),
              "due": sum(1 for x in items if x.step == "due"),
              "still_open": sum(1 for x in items if x.done_at is None),
              "nodes": len({x.node_id for x in items})}
    return items[:th.list_cap], counts


def _alert_stats(session: Session, start: datetime, end: datetime) -> AlertStats:
    a = alerts.c
    stmt = (sa.select(a.rule, a.level, a.status, sa.func.count())
            .where(a.raised_at >= start, a.raised_at < end)
            .group_by(a.rule, a.level, a.status))
    by_rule: dict[str, dict[str, int]] = {}
    status_by_rule: dict[str, dict[str, int]] = {}
    by_status: dict[str, int] = {}
    by_level: dict[str, int] = {}
    total = 0
    for rule, level, status, count in session.execute(stmt):
        total += count
        by_rule.setdefault(rule, {}).setdefault(level, 0)
        by_rule[rule][level] += count
        status_by_rule.setdefault(rule, {}).setdefault(status, 0)
        status_by_rule[rule][status] += count
        by_status[status] = by_status.get(status, 0) + count
        by_level[level] = by_level.get(level, 0) + count
    return AlertStats(total=total, by_rule=by_rule, status_by_rule=status_by_rule,
                      by_status=by_status, by_level=by_level)


# --- the incident brief -------------------------------------------------------------------

def incident_brief(session: Session, incident_id: str, *, now: datetime,
                   thresholds: Thresholds | None = None) -> IncidentBrief:
    """Read what a 专报 / 续报 of one incident says, or NotFound."""
    th = thresholds or Thresholds.from_rules()
    row = session.execute(sa.select(incidents).where(incidents.c.id == incident_id)).first()
    if row is None:
        raise NotFound(f"no incident {incident_id!r}")
    r = row._mapping
    names = _unit_names(session)
    order_lines = _order_lines(session, [incident_id], names, as_of=now).get(incident_id, [])
    timeline = [TimelineLine(id=e.id, at=e.at, by=e.by, from_state=e.from_state,
                             to_state=e.to_state, note=e.note or "")
                for e in session.execute(sa.select(incident_events)
                                         .where(incident_events.c.incident_id == incident_id)
                                         .order_by(incident_events.c.id))]
    targets = {n.id: n.target for o in order_lines for n in o.nodes}
    progress = []
    node_ids = list(targets)
    for node_id, evs in _events_by_node(session, node_ids).items():
        progress += [ProgressLine(id=e.id, at=e.at, target=targets[node_id], state=e.state,
                                  by=e.by, note=e.note or "") for e in evs]
    progress.sort(key=lambda p: p.id)
    related = session.execute(sa.select(alerts).where(alerts.c.incidents.like(
        f'%"{incident_id}"%')).order_by(alerts.c.raised_at, alerts.c.id))
    alert_lines = [AlertLine(rule=a.rule, level=a.level, status=a.status, raised_at=a.raised_at,
                             message=a.message) for a in related]
    return IncidentBrief(
        county=_county(names), generated_at=now, id=r["id"], title=r["title"], type=r["type"],
        severity=r["severity"], occurred_at=r["occurred_at"], received_at=r["received_at"],
        township=_name(names, r["township_code"]) if r["township_code"] else UNLOCATED,
        grid=_name(names, r["grid_code"]), lon=r["lon"], lat=r["lat"], people=r["people"],
        description=r["description"] or "", status=r["status"], level=r["level"] or "grid",
        merged_into=r["merged_into"], rating=r["rating"], orders=order_lines,
        timeline=timeline, progress=progress, alerts=alert_lines,
        major=bool(_reasons(r, th)))


def changes_since(brief: IncidentBrief, before: dict) -> list[str]:
    """What changed between an earlier report's snapshot and this one, in Chinese lines."""
    out: list[str] = []
    now = brief.snapshot()
    if before.get("status") != now["status"]:
        out.append(f"事件状态由「{_state(before.get('status'))}」变为「{_state(now['status'])}」。")
    if before.get("severity") != now["severity"]:
        out.append(f"事件等级由{_sev(before.get('severity'))}调整为{_sev(now['severity'])}。")
    if before.get("people") != now["people"]:
        out.append(f"涉及人数由{_people(before.get('people'))}变为{_people(now['people'])}。")
    if before.get("level") != now["level"]:
        out.append(f"办理层级由{LEVEL_LABELS.get(before.get('level'), '—')}"
                   f"调整为{LEVEL_LABELS.get(now['level'], now['level'])}。")
    if before.get("rating") != now["rating"] and now["rating"] is not None:
        out.append(f"已完成回访，满意度 {now['rating']} 分。")
    if before.get("merged_into") != now["merged_into"] and now["merged_into"]:
        out.append(f"已并入事件 {now['merged_into']}。")
    old_orders = set(before.get("orders") or [])
    for o in brief.orders:
        if o.id not in old_orders:
            targets = "、".join(n.target for n in o.nodes if n.depth == 0)
            out.append(f"新下达指令：{o.instruction}（承办：{targets or '—'}）。")
    old_nodes = before.get("nodes") or {}
    for o in brief.orders:
        for n in o.nodes:
            if o.id in old_orders and n.id not in old_nodes:
                out.append(f"新增承办单位：{n.target}（{n.state_label}）。")
    # then what happened since, in time order: the incident's moves and the orders' history
    lines: list[tuple[datetime, int, str]] = []
    last_event = before.get("last_event") or 0
    for t in brief.timeline:
        if t.id > last_event:
            lines.append((t.at, 0, f"{_hm(t.at)} {t.by}：{_state(t.from_state)} → "
                                   f"{_state(t.to_state)}" + (f"（{t.note}）" if t.note else "")
                          + "。"))
    last_progress = before.get("last_progress") or 0
    for p in brief.progress:
        if p.id > last_progress:
            lines.append((p.at, 1, f"{_hm(p.at)} {p.target}{NODE_STATE_LABELS.get(p.state, p.state)}"
                                   f"（{p.by}）" + (f"：{p.note}" if p.note else "") + "。"))
    out += [text for _, _, text in sorted(lines, key=lambda x: (x[0], x[1]))]
    return out


def _state(state: str | None) -> str:
    return STATE_LABELS.get(state, state or "—")


def _sev(sev) -> str:
    return f"{NUMERALS.get(sev, '?')}级" if sev else "—"


def _people(n) -> str:
    return f"{n} 人" if n is not None else "未报"


def _hm(at: datetime) -> str:
    from command.clock import SHANGHAI

    return at.astimezone(SHANGHAI).strftime("%m-%d %H:%M")


def snapshot_json(snapshot: dict) -> str:
    """The stored form of a snapshot."""
    return json.dumps(snapshot, ensure_ascii=False, sort_keys=True)
