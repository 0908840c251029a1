"""Plausible demo history: weeks of incidents before `now`, each taken through its closed loop.

`seed_history` fills the weeks before `now` with what a county center would have stored by then,
so that baselines, trends, hotspots, replay and the briefing show something on first start:
reports from every township at its own rate, quiet at night and busier on weekdays, in a type
mix that fits the domain; their timelines (受理 → 派遣/处置 → 反馈 → 核查结案 → 回访 → 归档, some
escalated, merged or false alarms); dispatch orders for the Ⅰ/Ⅱ级 and mass incidents and for a
share of the others, with their nodes signed off and completed at historical times (a few late,
a few returned); follow-up ratings; a few places that keep producing disputes or petitions and
two hotspot areas over the last week.

Decisions worth knowing:

- Every hour slot (China time) is drawn from its own generator seeded by (seed, hour), and its
  reports get source ids ``hist-YYYYMMDDHH-<township>-NNN``: the same hour always yields the
  same reports. A report whose source id is stored already (under any feed) is skipped with
  everything planned for it, so a second run adds nothing and a later run adds only new hours.
- Outcomes are planned in full and then cut at `now`: what would happen later has not happened
  yet, so the last day or two are partly open, in exactly the state the cut leaves them in. A
  report that would be received after `now` is not stored at all.
- Rows are bulk-inserted, not written through the services: a transition costs ~1 ms on SQLite
  and ~3 ms on PostgreSQL through `loop.transition`, so six weeks (~30,000 moves) would take a
  minute or more. Every planned move is checked with the rules the services apply
  (`workflow.check`, `workflow.check_data`, `workflow.escalation`, the order nodes'
  `STATE_ACTIONS`), and the rows mirror what `ingest`, `stage_transition`, `create_order`,
  `forward`, `act` and supervision's 督办 step write. Overdue alerts of late nodes go through
  `alerts.service` itself.
- Sequence numbers are reserved last in each transaction, in the fixed counter order ("seq",
  then "order_seq", then "alert_seq"), and handed out in the order of each row's latest change;
  rows wait under placeholder seqs until then. One transaction per week of history keeps a
  running server's writers from waiting long.
- The drawing needs only the units (`Model`, no database), so the demo's live feeds continue the
  history with `Model.arrivals`: the reports of the hours after `now`, received when the model
  says, under the same source ids a later seeding run would give them (and skip as stored).
- Nothing is published on the bus: history is not news. A running risk watch still reads the
  new rows by seq; it raises nothing for final incidents, only for the few still open.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import accumulate
from typing import Any, Callable

import numpy as np
import shapely
import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.alerts import service as alerts_service
from command.db import next_seq
from command.demo.simulate import (_FEES, _TOPICS, _WORDS, GIVEN, MOBILE_PREFIXES, SURNAMES,
                                   TEMPLATES, draw_people)
from command.errors import DomainError
from command.feeds import service as feeds_service
from command.feeds.models import feeds
from command.incidents import workflow
from command.incidents.events import incident_events
from command.incidents.loop import SYSTEM
from command.incidents.models import incidents
from command.incidents.schemas import fingerprint, validate
from command.matters import numbers
from command.matters.models import matters
from command.matters.rules import clock_fields
from command.orders import service as orders_service
from command.orders.models import order_node_events, order_nodes, orders
from command.orders.supervision import _MISSED, _late
from command.units import service as units_service

PREFIX = "hist-"  # source ids of seeded reports
MAX_WEEKS = 104
PER_DAY = 90.0  # county-wide reports per day, on average
MAX_PER_DAY = 5000.0
MAX_SEED = 2 ** 32 - 1
CHUNK_HOURS = 7 * 24  # hour slots per transaction
HISTORY_FEED_REASON = "history feed: holds seeded history, never reports"

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
_HOUR_S = 3600
_OFFSET_S = 8 * _HOUR_S

# --- the shape of a county's matters ----------------------------------------------------------

TYPES = ("dispute", "petition", "complaint", "legal", "psych", "emergency", "public_safety",
         "other", "mass")
TYPE_SHARES = (0.32, 0.16, 0.16, 0.10, 0.05, 0.065, 0.055, 0.087, 0.003)

# hour-of-day profiles (China time), scaled to a mean of 1 below
_PROFILES = {
    # disputes, complaints, other: people's day, a little into the evening
    "day": (0.12, 0.08, 0.05, 0.05, 0.06, 0.12, 0.30, 0.60, 1.10, 1.50, 1.60, 1.40,
            1.00, 1.10, 1.40, 1.50, 1.40, 1.30, 1.10, 1.00, 0.90, 0.70, 0.45, 0.25),
    # petitions, legal and psychological help: office hours of the window and the townships
    "office": (0.02, 0.01, 0.01, 0.01, 0.01, 0.02, 0.05, 0.20, 1.40, 2.00, 2.00, 1.60,
               0.60, 0.80, 1.80, 1.90, 1.70, 1.00, 0.30, 0.15, 0.10, 0.06, 0.04, 0.03),
    # emergencies and public safety: around the clock, evening peak (traffic, 夜宵摊)
    "clock": (0.45, 0.35, 0.30, 0.25, 0.25, 0.30, 0.50, 0.90, 1.20, 1.10, 1.00, 1.00,
              1.10, 1.00, 1.00, 1.10, 1.20, 1.40, 1.50, 1.40, 1.30, 1.10, 0.90, 0.70),
}
# weekday effect, Monday first, scaled to a mean of 1 below
_WEEKDAYS = {
    "day": (1.05, 1.00, 1.00, 1.00, 1.05, 0.95, 0.95),
    "office": (1.30, 1.20, 1.20, 1.20, 1.10, 0.45, 0.35),
    "clock": (1.00, 0.95, 0.95, 1.00, 1.05, 1.10, 1.00),
}
_PROFILE_OF = {"dispute": "day", "petition": "office", "complaint": "day", "legal": "office",
               "psych": "office", "emergency": "clock", "public_safety": "clock", "other": "day",
               "mass": "day"}

# severity shares (1 = Ⅰ级 … 4 = Ⅳ级) by type
_SEVERITY = {
    "dispute": ((4, 870), (3, 122), (2, 8)),
    "petition": ((4, 880), (3, 112), (2, 8)),
    "complaint": ((4, 920), (3, 77), (2, 3)),
    "legal": ((4, 975), (3, 25)),
    "psych": ((4, 950), (3, 50)),
    "emergency": ((4, 620), (3, 320), (2, 55), (1, 5)),
    "public_safety": ((4, 640), (3, 305), (2, 50), (1, 5)),
    "other": ((4, 960), (3, 40)),
    "mass": ((3, 700), (2, 270), (1, 30)),
}
# share of reports that get a second report of the same matter (merged into the first)
_DUPLICATE = {"emergency": 0.10, "public_safety": 0.07, "mass": 0.25, "dispute": 0.015,
              "complaint": 0.02, "petition": 0.01}
_FALSE_ALARM = {"emergency": 0.04, "public_safety": 0.04, "complaint": 0.03, "other": 0.03}
# share of reports of severity Ⅲ / Ⅳ that get a dispatch order (Ⅰ/Ⅱ级 and mass always do)
_ORDER_SHARE = {"emergency": (0.55, 0.12), "public_safety": (0.55, 0.12), "dispute": (0.20, 0.03),
                "petition": (0.20, 0.03), "complaint": (0.10, 0.02), "other": (0.05, 0.01),
                "legal": (0.0, 0.0), "psych": (0.05, 0.0)}
# median hours of handling (in_progress → responded) and the spread (lognormal sigma)
_HANDLING = {"dispute": (30, 0.8), "petition": (96, 0.6), "complaint": (20, 0.8),
             "legal": (0.6, 0.6), "psych": (40, 0.6), "emergency": (3, 0.7),
             "public_safety": (4, 0.7), "other": (20, 0.8), "mass": (8, 0.6)}
_MAX_HANDLING_H = 25 * 24
_RATINGS = {"default": (3, 4, 10, 30, 53), "petition": (6, 8, 16, 30, 40),
            "mass": (5, 8, 17, 35, 35)}

# stationed departments an order on each type may go to (only those stored are used)
_DEPTS_FOR = {
    "mass": ("dept.police", "dept.petition", "dept.hrss"),
    "emergency": ("dept.police", "dept.health", "dept.construction"),
    "public_safety": ("dept.police", "dept.market", "dept.health"),
    "dispute": ("dept.justice", "dept.hrss", "dept.resources", "dept.court"),
    "petition": ("dept.petition", "dept.civil", "dept.hrss"),
    "complaint": ("dept.enforcement", "dept.market"),
    "other": ("dept.civil", "dept.construction"),
    "legal": ("dept.justice",), "psych": ("dept.health",),
}

# --- texts ---------------------------------------------------------------------------------------

_INSTRUCTIONS = {
    "mass": ("立即到场稳控现场，做好政策解释和疏导，防止事态扩大，随时报告进展",
             "请属地和相关部门立即到场处置，依法维护秩序，稳控人员情绪"),
    "emergency": ("立即组织力量到场处置，核实人员伤亡和财产损失情况，及时报告",
                  "立即赶赴现场救援，做好群众疏散和现场管控"),
    "public_safety": ("立即到场处置，排除安全隐患，做好现场管控",
                      "请迅速核实情况，依法处置并报告结果"),
    "dispute": ("请属地牵头组织调解，依法依规化解矛盾，防止矛盾激化",
                "请会同相关部门联合调处，限期反馈调处结果"),
    "petition": ("请按信访工作程序依法办理，做好解释答复工作", "请核实信访诉求，依法依规限期答复"),
    "complaint": ("请核实举报情况，依法查处并反馈结果", "请到场核查，责令整改并反馈"),
    "legal": ("请安排法律服务人员跟进解答",),
    "psych": ("请安排心理咨询师跟进疏导，做好关爱帮扶",),
    "other": ("请核实情况并协调处理",),
}
_RESULTS = {
    "mass": ("现场秩序已恢复，人员已劝离，后续由乡镇（街道）跟进协调",
             "已组织双方协商，达成初步处理意见，聚集人员已疏散"),
    "emergency": ("险情已排除，伤员已送医救治，现场已清理", "已完成处置，无人员伤亡，道路已恢复通行",
                  "火情已扑灭，受灾群众已妥善安置"),
    "public_safety": ("隐患已排除，相关人员已依法处理", "已到场处置完毕，现场秩序正常"),
    "dispute": ("经调解双方达成协议，已签订人民调解协议书", "已组织调解，双方同意按调解方案履行",
                "调解未能达成一致，已引导当事人通过诉讼途径解决"),
    "petition": ("已书面答复信访人，信访人表示接受", "已约谈信访人，说明政策依据，诉求已按政策解决"),
    "complaint": ("经核实情况属实，已责令整改", "已依法查处，并向举报人反馈处理结果",
                  "经核实举报情况不属实，已向举报人说明"),
    "legal": ("已由值班律师解答，并告知维权途径", "已解答咨询，引导申请法律援助"),
    "psych": ("心理咨询师已上门疏导，当事人情绪稳定，纳入定期走访",),
    "other": ("已协调相关单位处理完毕", "已转交主管部门处理，并告知反映人"),
}
_WORK_NOTES = {
    "mass": "到场稳控，了解诉求", "emergency": "到场处置", "public_safety": "到场处置，设置警戒",
    "dispute": "组织双方当事人调解", "petition": "约访信访人，调查核实诉求",
    "complaint": "到场核查举报情况", "legal": "值班律师解答咨询", "psych": "心理咨询师介入疏导",
    "other": "联系相关单位处理",
}
_ACCEPT_NOTES = {"grid": "网格员受理，到场核实", "township": "乡镇（街道）受理",
                 "duty": "中心窗口受理"}
_COMMENTS = {5: "对处理结果很满意", 4: "基本满意", 3: "表示一般", 2: "不太满意，认为处理不够及时",
             1: "不满意，将持续关注"}
_PROGRESS = ("已到场，正在处置", "已联系当事人，正在核实情况", "正在协调相关方处理",
             "处置中，进展顺利")
_RETURNS = ("不属于本部门职责，请转交属地处理", "事项已由其他部门办理，申请退回",
            "情况不明，请补充当事人信息后重新下达")

# places that keep producing disputes or petitions (repeat_place), and last week's hotspots
_THEMES: dict[str, list[tuple[str, str, str]]] = {
    "homestead": [
        ("dispute", "{village}{name}与邻居宅基地界址纠纷再起",
         "{village}村民{name}与邻居{name2}的宅基地界址纠纷再次发生争执，此前已调解过{k}次，"
         "双方仍各执一词。网格员已到场劝解，建议{place}司法所再次组织调解。"),
        ("petition", "{name}反映宅基地界址调解结果未履行",
         "{village}村民{name}反映此前达成的宅基地界址调解协议对方未履行，要求{place}督促落实。"),
    ],
    "wages": [
        ("petition", "反映{company}拖欠工资问题（再次来访）",
         "{name}等{n}名工人再次来访，反映{company}拖欠工资约{money}万元至今未付，"
         "要求人社部门加快处理。"),
        ("dispute", "{company}工人与企业负责人因欠薪发生争执",
         "{company}{n}名工人与企业负责人因欠薪问题在厂区发生争执，网格员到场劝解，"
         "已通知人社部门劳动保障监察大队。"),
    ],
    "property": [
        ("dispute", "{xiaoqu}业主与物业公司矛盾再起",
         "{xiaoqu}多名业主因{fee}与物业公司再次发生争执，社区此前已多次协调，矛盾尚未化解。"),
        ("petition", "{xiaoqu}业主联名反映物业服务问题",
         "{xiaoqu}{n}户业主联名反映物业公司{fee}，要求街道和住建部门督促整改。"),
    ],
    "land": [
        ("petition", "反映{village}土地征收补偿分配问题",
         "{village}村民{name}反映本组土地征收补偿款分配方案不公开、不合理，要求公开明细。"),
        ("dispute", "{village}村民小组内部因补偿款分配发生矛盾",
         "{village}一村民小组内部因土地补偿款分配比例产生分歧，部分村民情绪激动，"
         "村调委会正在协调。"),
    ],
    "demolition": [
        ("petition", "{village}拆迁户反映安置补偿标准偏低",
         "{village}{n}户拆迁户反映安置补偿标准偏低、过渡费发放不及时，要求面见{place}领导。"),
        ("dispute", "{village}拆迁户与施工方发生争执",
         "{village}拆迁户认为补偿未到位，阻止施工方进场，双方发生争执，{place}干部已到场协调。"),
        ("complaint", "举报{village}拆迁工地夜间违规施工",
         "群众举报{village}拆迁工地夜间违规施工、扬尘严重，请求综合执法部门查处。"),
        ("mass", "{village}{n}余名拆迁户聚集反映补偿问题",
         "{village}{n}余名拆迁户聚集到{place}政府门口，反映安置补偿问题，要求面见领导。"
         "已安排接访，稳控现场秩序。"),
    ],
    "nightlife": [
        ("complaint", "{xiaoqu}周边夜宵摊噪音扰民",
         "{xiaoqu}居民投诉周边夜宵摊经营至凌晨，噪音和油烟扰民，要求综合执法部门整治。"),
        ("dispute", "{xiaoqu}居民与夜宵摊经营者发生争执",
         "{xiaoqu}居民与楼下夜宵摊经营者因噪音问题发生争执，社区和派出所已到场调解。"),
        ("public_safety", "{xiaoqu}附近夜宵摊酒后滋事",
         "{xiaoqu}附近夜宵摊有人酒后滋事，发生推搡，{injured}人受轻伤，派出所民警已到场控制。"),
    ],
}
_THEME_TYPES = {
    "homestead": ((0, 0.7), (1, 0.3)), "wages": ((0, 0.7), (1, 0.3)),
    "property": ((0, 0.7), (1, 0.3)), "land": ((0, 0.7), (1, 0.3)),
    "demolition": ((0, 0.42), (1, 0.38), (2, 0.15), (3, 0.05)),
    "nightlife": ((0, 0.55), (1, 0.3), (2, 0.15)),
}


# --- the summary ---------------------------------------------------------------------------------

@dataclass
class Summary:
    """What a seeding run did, for the person who ran it."""

    weeks: int
    seed: int
    start: datetime
    end: datetime
    added: int = 0
    skipped: int = 0
    statuses: Counter = field(default_factory=Counter)
    types: Counter = field(default_factory=Counter)
    events: int = 0
    orders: int = 0
    nodes: int = 0
    late_nodes: int = 0
    returned_nodes: int = 0
    ratings: list[int] = field(default_factory=list)
    feeds_created: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        span = (f"{self.start.astimezone(CHINA):%Y-%m-%d %H:%M} – "
                f"{self.end.astimezone(CHINA):%Y-%m-%d %H:%M}")
        days = max((self.end - self.start).total_seconds() / 86400, 1e-9)
        final = sum(self.statuses[s] for s in workflow.FINAL)
        out = [f"history of {_weeks(self.weeks)} ({span}, China time), seed {self.seed}",
               f"added {self.added} incidents"
               + (f" (~{self.added / days:.0f} a day)" if self.added else "")
               + f", skipped {self.skipped} already stored"]
        if self.added:
            out.append(f"{final} finished ({self.statuses['closed']} closed, "
                       f"{self.statuses['merged']} merged, {self.statuses['false_alarm']} false "
                       f"alarms), {self.added - final} still open; {self.events} timeline events")
            rated = len(self.ratings)
            mean = sum(self.ratings) / rated if rated else 0.0
            out.append(f"{self.orders} orders with {self.nodes} nodes ({self.late_nodes} overdue, "
                       f"{self.returned_nodes} returned); {rated} follow-up ratings "
                       f"(mean {mean:.1f})")
        if self.feeds_created:
            more = " …" if len(self.feeds_created) > 5 else ""
            names = ", ".join(self.feeds_created[:5]) + more
            out.append(f"created {len(self.feeds_created)} history feeds, disabled (they never "
                       f"report): {names}")
        out.append(f"took {self.seconds:.1f} s")
        return out


def _weeks(n: int) -> str:
    return f"{n} week" if n == 1 else f"{n} weeks"


# --- the entry points ----------------------------------------------------------------------------

def seed_history(core, *, weeks: int, now: datetime | None = None, seed: int = 0,
                 progress: Callable[[int, int], None] | None = None,
                 per_day: float = PER_DAY) -> Summary:
    """Fill the `weeks` weeks before `now` with plausible history; skip what is stored already.

    `progress(done, total)` is called with hour slots done after each transaction.
    Raises DomainError on bad arguments or when no unit has a polygon to place reports in.
    """
    weeks, seed, per_day = check_args(weeks=weeks, seed=seed, per_day=per_day)
    now = core.clock.now() if now is None else now
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise DomainError("invalid_field", "now: must be a timezone-aware time", "now")
    started = time.perf_counter()
    start = now - timedelta(weeks=weeks)
    summary = Summary(weeks=weeks, seed=seed, start=start, end=now)
    with core.write() as session, session.begin():
        world = _World(session, core, seed=seed, per_day=per_day, now=now, start=start)
        summary.feeds_created = world.feeds_created
        stored = set(session.execute(sa.select(incidents.c.source_id).where(
            incidents.c.source_id.like(PREFIX + "%"))).scalars())
    first, last = _hour_of(start), _hour_of(now)
    total = last - first + 1
    for chunk_start in range(first, last + 1, CHUNK_HOURS):
        hours = range(chunk_start, min(chunk_start + CHUNK_HOURS, last + 1))
        bundles, skipped = world.bundles(hours, stored)
        summary.skipped += skipped
        if bundles:
            with core.write() as session, session.begin():
                _write(session, bundles, summary, numbers.prefix(world.locator),
                       world.matter_rules)
        if progress is not None:
            progress(hours.stop - first, total)
    summary.seconds = time.perf_counter() - started
    return summary


def has_history(session: Session) -> bool:
    """Whether seeded history is stored already."""
    stmt = sa.select(incidents.c.id).where(incidents.c.source_id.like(PREFIX + "%")).limit(1)
    return session.execute(stmt).first() is not None


def stored_rate(session: Session, *, days: float = 28.0) -> float | None:
    """The `per_day` the stored history was drawn at, estimated from its last `days` days.

    Counts the model's own reports (not second reports, repeat places or hotspots) per day;
    None when less than a day of history is stored.
    """
    seeded = incidents.c.source_id.like(PREFIX + "%")
    first, last = session.execute(sa.select(sa.func.min(incidents.c.occurred_at),
                                            sa.func.max(incidents.c.occurred_at))
                                  .where(seeded)).one()
    if last is None:
        return None
    since = max(first, last - timedelta(days=days))
    span = (last - since).total_seconds() / 86400
    if span < 1.0:
        return None
    ids = session.execute(sa.select(incidents.c.source_id).where(
        seeded, incidents.c.occurred_at > since, incidents.c.occurred_at <= last)).scalars()
    # hist-YYYYMMDDHH-<township>-NNN; "…-r100" is a repeat place, "…-000d" a second report
    return sum(1 for i in ids if i.rsplit("-", 1)[-1].isdigit()) / span


def check_args(*, weeks: int, seed: int = 0, per_day: float = PER_DAY) -> tuple[int, int, float]:
    """Return the arguments of `seed_history` checked, or raise DomainError naming the bad one."""
    return (_whole(weeks, "weeks", 1, MAX_WEEKS), _whole(seed, "seed", 0, MAX_SEED),
            _number(per_day, "per_day", 1.0, MAX_PER_DAY))


def _whole(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DomainError("invalid_field", f"{name}: must be a whole number", name)
    if not low <= value <= high:
        raise DomainError("out_of_range", f"{name}: must be from {low} to {high}, got {value}",
                          name)
    return value


def _number(value, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DomainError("invalid_field", f"{name}: must be a number", name)
    if not low <= value <= high:
        raise DomainError("out_of_range", f"{name}: must be from {low:g} to {high:g}, got "
                                          f"{value:g}", name)
    return float(value)


# --- time ----------------------------------------------------------------------------------------

def _hour_of(at: datetime) -> int:
    """The China-time hour slot holding `at`, counted from the epoch."""
    return int((at.timestamp() + _OFFSET_S) // _HOUR_S)


def _hour_start(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * _HOUR_S - _OFFSET_S, timezone.utc)


def _after(rng: random.Random, median_minutes: float, sigma: float = 0.7,
           low: float = 0.2) -> timedelta:
    """A lognormal delay around `median_minutes`."""
    return timedelta(minutes=max(low, median_minutes * math.exp(rng.gauss(0.0, sigma))))


def _night(at: datetime) -> bool:
    hour = at.astimezone(CHINA).hour
    return hour >= 22 or hour < 7


def _office(at: datetime, rng: random.Random) -> datetime:
    """`at`, or the next office morning (08:00–18:00 China time) when it falls outside."""
    local = at.astimezone(CHINA)
    if 8 <= local.hour < 18:
        return at
    day = local.date() if local.hour < 8 else local.date() + timedelta(days=1)
    opening = datetime(day.year, day.month, day.day, 8, tzinfo=CHINA)
    return (opening + timedelta(minutes=rng.uniform(5, 100))).astimezone(timezone.utc)


def _hid(*parts) -> str:
    """A deterministic 32-character id."""
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()[:32]


def _unit_rng(seed: int, *parts) -> random.Random:
    return random.Random(":".join(map(str, (seed, *parts))))


def _person(rng: random.Random) -> str:
    given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(SURNAMES) + given


def _pick(rng: random.Random, pairs) -> Any:
    values, weights = zip(*pairs)
    return rng.choices(values, weights)[0]


# --- the world the history happens in ------------------------------------------------------------

@dataclass(frozen=True)
class _Actor:
    """Who makes a move: the name written to the timeline and the role the rules check."""

    name: str
    role: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name[:64])  # the `by` columns hold 64


@dataclass
class _Leaf:
    """A polygon reports are placed in: a grid, or a township without grids."""

    code: str
    name: str
    town: str
    geometry: Any
    weight: float
    village: str | None
    community: bool
    worker: _Actor | None = None

    def sample(self, rng: random.Random, around: tuple[float, float] | None = None,
               sigma_m: float = 0.0) -> tuple[float, float]:
        """A point inside the polygon (near `around` when given), rounded like feeds send it."""
        minx, miny, maxx, maxy = self.geometry.bounds
        for attempt in range(2000):
            if around is not None and attempt < 40:
                per_m = 1 / (111_320 * math.cos(math.radians(around[1])))
                lon = around[0] + rng.gauss(0, sigma_m) * per_m
                lat = around[1] + rng.gauss(0, sigma_m) / 110_540
            else:
                lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            lon, lat = round(lon, 6), round(lat, 6)
            if shapely.contains_xy(self.geometry, lon, lat):
                return lon, lat
        point = shapely.point_on_surface(self.geometry)  # a sliver: a sure point
        return point.x, point.y


@dataclass
class _Town:
    code: str
    name: str
    feed_id: int | None  # set by a seeding run; a model alone has no feeds
    per_day: float
    leaves: list[_Leaf]
    cum: list[float]
    staff: tuple[_Actor, ...]
    villages: tuple[str, ...]

    def leaf(self, rng: random.Random) -> _Leaf:
        return self.leaves[min(bisect_right(self.cum, rng.random() * self.cum[-1]),
                               len(self.leaves) - 1)]


@dataclass
class _Spot:
    """A repeat place (the whole history) or a hotspot (the last week), with its fixed words."""

    tag: str
    theme: str
    town: _Town
    leaf: _Leaf
    anchor: tuple[float, float]
    sigma_m: float
    words: dict
    per_day: float
    since: datetime | None = None  # hotspots: active from here, rising towards `now`
    burst: int | None = None  # an hour slot with a burst of reports (a spike to replay)


@dataclass
class _Draft:
    """One report as planned: everything about it comes from its own generator."""

    source_id: str
    town: _Town
    leaf: _Leaf
    type: str
    severity: int
    occurred: datetime
    rng: random.Random
    raw: dict
    duplicate_of: _Draft | None = None
    has_duplicate: bool = False
    received: datetime | None = None  # drawn once, by `Model._received`


@dataclass(frozen=True)
class Arrival:
    """One report as its township's feed sends it, and when it reaches the center."""

    received_at: datetime
    township: str  # the township whose feed sends it
    grid: str | None  # the grid its point lies in (None: a township without grids)
    raw: dict

    @property
    def source_id(self) -> str:
        return self.raw["id"]


# reports reach the center at most this long after their hour slot begins (receipt delays are
# lognormal around 3 minutes, duplicates follow within 40 minutes): `arrivals` looks back so far
_LOOKBACK = timedelta(hours=4)
_SLOTS_KEPT = 48


class Model:
    """The shape of a county's matters, drawn hour by hour from the units alone (no database).

    `seed_history` stores what the model draws for the weeks before `now`; a live feed continues
    it with `arrivals`: the same townships and rates, hour and weekday profiles, type and
    severity mix, repeat places, hotspots and words, and the same reports under the same source
    ids for the same hour. After `now` a hotspot keeps the rate it had reached at `now`.
    `compose` and `spot_report` write further reports in the model's words (scripted
    situations). Raises DomainError when no unit has a polygon to place reports in.
    """

    def __init__(self, gdf, *, seed: int = 0, per_day: float = PER_DAY, now: datetime) -> None:
        if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
            gdf = gdf.to_crs(4326)
        self.seed, self.now, self.per_day = seed, now, per_day
        self.towns = self._towns(gdf, per_day)
        self.by_code = {t.code: t for t in self.towns}
        self.leaves = {leaf.code: leaf for t in self.towns for leaf in t.leaves}
        self.spots = self._spots()
        shares = np.array(TYPE_SHARES) / sum(TYPE_SHARES)
        self._rates = np.array([t.per_day for t in self.towns])[:, None] * shares[None, :]
        self._hour_w = np.array([_scaled(_PROFILES[_PROFILE_OF[k]]) for k in TYPES])  # (K, 24)
        self._day_w = np.array([_scaled(_WEEKDAYS[_PROFILE_OF[k]]) for k in TYPES])  # (K, 7)
        self._day_factors: dict[int, np.ndarray] = {}
        self._slots: dict[int, list[_Draft]] = {}

    # --- units -----------------------------------------------------------------------------------

    def _towns(self, gdf, per_day: float) -> list[_Town]:
        seed = self.seed
        rows = {r.code: r for r in gdf.itertuples() if r.level in ("township", "grid")}
        townships = {c: r for c, r in rows.items() if r.level == "township"}
        groups: dict[str, list] = {}
        for r in rows.values():
            if r.level == "grid" and r.geometry is not None and not r.geometry.is_empty:
                groups.setdefault(r.parent if r.parent in townships else r.code, []).append(r)
        for code, r in townships.items():
            if code not in groups and r.geometry is not None and not r.geometry.is_empty:
                groups[code] = [r]  # a township without grids: its own polygon
        if not groups:
            raise DomainError("invalid_field", "no township or grid polygons are stored to place "
                                               "history in: import boundaries first")
        towns = []
        for code in sorted(groups):
            head = townships.get(code) or rows[code]
            name = str(head.name)
            rng = _unit_rng(seed, "town", code)
            urban = name.endswith("街道")
            grids = [r for r in groups[code] if r.level == "grid"]
            size = len(grids) if grids else math.sqrt(max(head.geometry.area, 1e-6) * 1e4)
            weight = size * (2.5 if urban else 1.0) * math.exp(rng.gauss(0.0, 0.45))
            staff = tuple(_Actor(f"{name}·{_person(rng)}", "township") for _ in range(2))
            leaves = []
            for r in sorted(groups[code], key=lambda r: r.code):
                lrng = _unit_rng(seed, "leaf", r.code)
                shapely.prepare(r.geometry)
                label = str(r.name)
                community = "社区" in label
                village = label.removesuffix("网格") if label.endswith("村网格") else None
                worker = (_Actor(f"{label}·{_person(lrng)}", "grid")
                          if r.level == "grid" else None)
                leaves.append(_Leaf(r.code, label, code, r.geometry,
                                    math.exp(lrng.gauss(0.0, 0.5)) * (1.6 if community else 1.0),
                                    village, community, worker))
            villages = tuple(leaf.village for leaf in leaves if leaf.village)
            towns.append(_Town(code, name, None, weight, leaves,
                               list(accumulate(leaf.weight for leaf in leaves)), staff, villages))
        total = sum(t.per_day for t in towns)
        for t in towns:
            t.per_day = per_day * t.per_day / total
        return towns

    def _spots(self) -> list[_Spot]:
        """Four repeat places over the whole history and two hotspots over the last week."""
        rng = _unit_rng(self.seed, "spots")
        towns = sorted(self.towns, key=lambda t: -t.per_day)
        leaves = [leaf for t in towns for leaf in t.leaves]
        spots: list[_Spot] = []
        used: set[str] = set()

        def choose(prefer) -> _Leaf | None:
            pool = [leaf for leaf in leaves if leaf.code not in used]
            liked = [leaf for leaf in pool if prefer(leaf)] or pool
            if not liked:
                return None
            leaf = liked[min(len(liked) - 1, int(rng.random() ** 2 * len(liked)))]
            used.add(leaf.code)
            return leaf

        plans = (("r1", "homestead", lambda leaf: leaf.village is not None, 0.30, 60, None),
                 ("r2", "wages", lambda leaf: not leaf.community, 0.22, 80, None),
                 ("r3", "property", lambda leaf: leaf.community, 0.30, 60, None),
                 ("r4", "land", lambda leaf: leaf.village is not None, 0.20, 80, None),
                 ("h1", "demolition", lambda leaf: leaf.village is not None, 5.0, 220, 9),
                 ("h2", "nightlife", lambda leaf: leaf.community, 4.0, 180, 7))
        for tag, theme, prefer, per_day, sigma, days in plans:
            leaf = choose(prefer)
            if leaf is None:
                break
            town = self.by_code[leaf.town]
            words = _words(rng, town, leaf)
            since = None if days is None else self.now - timedelta(days=days)
            burst = None
            if tag == "h1":  # a gathering two days ago, mid-afternoon
                day = (self.now.astimezone(CHINA) - timedelta(days=2)).date()
                burst = _hour_of(datetime(day.year, day.month, day.day, 15, tzinfo=CHINA))
            spots.append(_Spot(tag, theme, town, leaf, leaf.sample(rng), sigma, words, per_day,
                               since, burst))
        return spots

    # --- drawing reports -------------------------------------------------------------------------

    def _day_factor(self, day: int) -> np.ndarray:
        """Per township, how busy this local day is (a gamma factor: counts are overdispersed)."""
        factors = self._day_factors.get(day)
        if factors is None:
            rng = np.random.default_rng([self.seed, 1, day])
            factors = rng.gamma(12.0, 1 / 12.0, size=len(self.towns))
            self._day_factors[day] = factors
        return factors

    def _lam(self, hour: int) -> np.ndarray:
        """The expected count per township × type (TYPES order) of one hour slot."""
        local = _hour_start(hour).astimezone(CHINA)
        factors = self._day_factor(hour // 24)
        return (self._rates * factors[:, None] * self._hour_w[None, :, local.hour]
                * self._day_w[None, :, local.weekday()] / 24.0)

    def hourly_mean(self, township: str, kind: str, at: datetime) -> float:
        """How many reports of `kind` the township is expected to send in the hour holding `at`
        (repeat places and hotspots left out)."""
        ti = next(i for i, t in enumerate(self.towns) if t.code == township)
        return float(self._lam(_hour_of(at))[ti, TYPES.index(kind)])

    def drafts(self, hour: int) -> list[_Draft]:
        """Every report of one hour slot: the base process, then repeat places and hotspots."""
        at = _hour_start(hour)
        local = at.astimezone(CHINA)
        stamp = f"{local:%Y%m%d%H}"
        rng = np.random.default_rng([self.seed, 2, hour])
        lam = self._lam(hour)
        counts = rng.poisson(lam)
        out: list[_Draft] = []
        for ti, town in enumerate(self.towns):
            n = 0
            for ki, kind in enumerate(TYPES):
                for _ in range(int(counts[ti, ki])):
                    r = random.Random(int(rng.integers(2 ** 63)))
                    out.append(self._draft(f"{PREFIX}{stamp}-{town.code}-{n:03d}", town,
                                           town.leaf(r), kind, at, r))
                    n += 1
        for spot in self.spots:
            lam_spot = self._spot_rate(spot, at, local)
            for i in range(int(rng.poisson(lam_spot)) if lam_spot > 0 else 0):
                r = random.Random(int(rng.integers(2 ** 63)))
                out.append(self._spot_draft(spot, f"{PREFIX}{stamp}-{spot.town.code}-{spot.tag}"
                                                  f"{i:02d}", at, hour, r))
        return out

    def _spot_rate(self, spot: _Spot, at: datetime, local: datetime) -> float:
        weights = _PROFILES["office" if spot.theme in ("wages", "land") else "day"]
        if spot.theme == "nightlife":
            weights = _PROFILES["clock"]
        rate = spot.per_day * _scaled(weights)[local.hour] / 24.0
        if spot.since is not None:
            if at < spot.since:
                return 0.0
            rise = min(1.0, (at - spot.since) / (self.now - spot.since))
            rate *= 0.3 + 1.4 * rise
        if spot.burst is not None and _hour_of(at) == spot.burst:
            rate += 6.0
        return rate

    def _draft(self, source_id: str, town: _Town, leaf: _Leaf, kind: str, hour_at: datetime,
               rng: random.Random) -> _Draft:
        occurred = hour_at + timedelta(seconds=rng.randrange(_HOUR_S))
        severity = _pick(rng, _SEVERITY[kind])
        words = _words(rng, town, leaf)
        people = draw_people(rng, kind, words)
        title, description = rng.choice(TEMPLATES[kind])
        lon, lat = leaf.sample(rng)
        raw = _raw(rng, source_id, kind, occurred, lon, lat, title.format(**words),
                   description.format(**words), severity, people)
        return _Draft(source_id, town, leaf, kind, severity, occurred, rng, raw,
                      has_duplicate=rng.random() < _DUPLICATE.get(kind, 0.0))

    def _spot_draft(self, spot: _Spot, source_id: str, hour_at: datetime, hour: int,
                    rng: random.Random) -> _Draft:
        occurred = hour_at + timedelta(seconds=rng.randrange(_HOUR_S))
        choices = _THEME_TYPES[spot.theme]
        if spot.burst == hour and spot.theme == "demolition":
            choices = ((0, 0.45), (1, 0.35), (3, 0.20))  # the gathering: petitions, a mass incident
        kind, title, description = _THEMES[spot.theme][_pick(rng, choices)]
        words = {**spot.words, "name": _person(rng), "name2": _person(rng),
                 "k": rng.randint(2, 5), "injured": rng.randint(1, 3)}
        people = draw_people(rng, kind, words)
        severity = _pick(rng, _SEVERITY[kind])
        lon, lat = spot.leaf.sample(rng, spot.anchor, spot.sigma_m)
        raw = _raw(rng, source_id, kind, occurred, lon, lat, title.format(**words),
                   description.format(**words), severity, people)
        return _Draft(source_id, spot.town, spot.leaf, kind, severity, occurred, rng, raw)

    def _duplicate(self, d: _Draft) -> _Draft:
        """A second report of the same matter a little later, by someone else, nearby."""
        rng = random.Random(f"{d.source_id}:duplicate")
        occurred = d.occurred + timedelta(seconds=rng.randrange(5 * 60, 40 * 60))
        lon, lat = d.leaf.sample(rng, (d.raw["lon"], d.raw["lat"]), 40)
        raw = _raw(rng, d.source_id + "d", d.type, occurred, lon, lat, d.raw["title"],
                   d.raw["description"], d.severity, d.raw.get("people"))
        return _Draft(d.source_id + "d", d.town, d.leaf, d.type, d.severity, occurred, rng, raw,
                      duplicate_of=d)

    def with_duplicates(self, hour: int) -> list[_Draft]:
        """The reports of one hour slot, each followed by its second report when it has one."""
        out = []
        for d in self.drafts(hour):
            out.append(d)
            if d.has_duplicate:
                out.append(self._duplicate(d))
        return out

    @staticmethod
    def _received(d: _Draft) -> datetime:
        """When the report reaches the center (drawn from its generator once, then kept)."""
        if d.received is None:
            d.received = d.occurred + _after(d.rng, 3.0, 0.8, 0.3)
        return d.received

    # --- live ------------------------------------------------------------------------------------

    def arrivals(self, start: datetime, end: datetime) -> list[Arrival]:
        """The reports received in [start, end), in the order they arrive (duplicates included).

        The same as the history stores for those hours (it cuts at receipt, like this).
        """
        out = []
        for hour in range(_hour_of(start - _LOOKBACK), _hour_of(end) + 1):
            for d in self._slot(hour):
                if start <= d.received < end:
                    out.append(self._arrival(d))
        out.sort(key=lambda a: (a.received_at, a.source_id))
        return out

    def _slot(self, hour: int) -> list[_Draft]:
        drafts = self._slots.get(hour)
        if drafts is None:
            drafts = self.with_duplicates(hour)
            for d in drafts:
                self._received(d)
            if len(self._slots) >= _SLOTS_KEPT:
                self._slots.pop(min(self._slots))
            self._slots[hour] = drafts
        return drafts

    @staticmethod
    def _arrival(d: _Draft) -> Arrival:
        grid = d.leaf.code if d.leaf.code != d.town.code else None
        return Arrival(d.received, d.town.code, grid, d.raw)

    def name(self, code: str) -> str:
        """The name of a township or grid of the model (the code when unknown)."""
        if code in self.by_code:
            return self.by_code[code].name
        leaf = self.leaves.get(code)
        return leaf.name if leaf is not None else code

    def words(self, leaf: _Leaf, rng: random.Random) -> dict:
        """Fillers for report templates in `leaf` (its village, the township's name …)."""
        return _words(rng, self.by_code[leaf.town], leaf)

    def compose(self, kind: str, occurred: datetime, *, source_id: str, rng: random.Random,
                leaf: _Leaf, near: tuple[float, float] | None = None, sigma_m: float = 0.0,
                text: tuple[str, str] | None = None, words: dict | None = None,
                severity: int | None = None, people: int | None = None) -> dict:
        """One report in `leaf` as a feed sends it, in the model's words and mixes unless given.

        `text` is a (title, description) pair of format strings over the template fillers
        (`{village}`, `{xiaoqu}`, `{company}`, `{name}`, `{n}`, `{place}` …); `words` fixes some
        fillers (a story told across several reports); `near` places the point around a spot.
        """
        town = self.by_code[leaf.town]
        filled = {**_words(rng, town, leaf), "k": rng.randint(2, 5), **(words or {})}
        drawn = draw_people(rng, kind, filled)
        title, description = text or rng.choice(TEMPLATES[kind])
        lon, lat = leaf.sample(rng, near, sigma_m) if near is not None else leaf.sample(rng)
        return _raw(rng, source_id, kind, occurred, lon, lat, title.format(**filled),
                    description.format(**filled),
                    _pick(rng, _SEVERITY[kind]) if severity is None else severity,
                    drawn if people is None else people)

    def spot_report(self, spot: _Spot, occurred: datetime, *, source_id: str,
                    rng: random.Random, kinds: tuple[str, ...] | None = None) -> dict:
        """Another report at a repeat place or hotspot, in its theme's words (of `kinds` only,
        when given and the theme has them)."""
        choices = [(i, w) for i, w in _THEME_TYPES[spot.theme]
                   if kinds is None or _THEMES[spot.theme][i][0] in kinds] \
            or list(_THEME_TYPES[spot.theme])
        kind, title, description = _THEMES[spot.theme][_pick(rng, choices)]
        words = {**spot.words, "name": _person(rng), "name2": _person(rng),
                 "k": rng.randint(2, 5), "injured": rng.randint(1, 3)}
        return self.compose(kind, occurred, source_id=source_id, rng=rng, leaf=spot.leaf,
                            near=spot.anchor, sigma_m=spot.sigma_m, text=(title, description),
                            words=words)


class _World(Model):
    """The model with the units, feeds and people of one seeding run."""

    def __init__(self, session: Session, core, *, seed: int, per_day: float, now: datetime,
                 start: datetime) -> None:
        gdf = units_service.load_gdf(session)
        super().__init__(gdf, seed=seed, per_day=per_day, now=now)
        self.start = start
        self.limits = core.limits
        self.matter_rules = core.matter_rules
        self.locator = core.units.current(session)
        self.depts = {r.code: r.name for r in gdf.itertuples() if r.level == "dept"}
        counties = gdf[gdf["level"] == "county"].sort_values("code")
        self.county = ({"code": counties.iloc[0]["code"], "name": counties.iloc[0]["name"]}
                       if len(counties) else {"code": "county", "name": "县指挥中心"})
        rng = _unit_rng(seed, "people")
        self.duty = tuple(_Actor("值班员" + _person(rng), "duty") for _ in range(6))
        self.leaders = tuple(_Actor("指挥长" + _person(rng), "leader") for _ in range(3))
        self.dept_staff = {code: _Actor(f"{name}·{_person(_unit_rng(seed, 'dept', code))}", "dept")
                           for code, name in self.depts.items()}
        feed_ids, self.feeds_created = self._feeds(session, [t.code for t in self.towns], now)
        for t in self.towns:
            t.feed_id = feed_ids[t.code]

    def _feeds(self, session: Session, codes: list[str],
               now: datetime) -> tuple[dict[str, int], list[str]]:
        """The feed each township's history arrives through: its own, else a disabled one."""
        found: dict[str, tuple] = {}
        for r in session.execute(sa.select(feeds.c.id, feeds.c.unit_code, feeds.c.revoked_at,
                                           feeds.c.disabled_reason).order_by(feeds.c.id)):
            rank = (r.revoked_at is not None or r.disabled_reason is not None, r.id)
            if r.unit_code in codes and (r.unit_code not in found or rank < found[r.unit_code]):
                found[r.unit_code] = rank
        ids = {code: rank[1] for code, rank in found.items()}
        created = []
        for code in codes:
            if code in ids:
                continue
            name = f"history-{code}"
            try:
                feed = feeds_service.get(session, name=name)
            except feeds_service.NotFound:
                feed, _token = feeds_service.create(session, name=name, unit_code=code, now=now)
                session.execute(sa.update(feeds).where(feeds.c.id == feed.id)
                                .values(disabled_reason=HISTORY_FEED_REASON))
                created.append(name)
            ids[code] = feed.id
        return ids, created

    # --- from drafts to rows ---------------------------------------------------------------------

    def bundles(self, hours: range, stored: set[str]) -> tuple[list[_Bundle], int]:
        """The rows of these hour slots that are not stored yet, and how many were skipped."""
        drafts = [d for hour in hours for d in self.with_duplicates(hour)]
        drafts = [d for d in drafts if self.start < d.occurred <= self.now]
        skipped = sum(d.source_id in stored for d in drafts)
        fresh = [d for d in drafts if d.source_id not in stored]
        if not fresh:
            return [], skipped
        reports = [validate(d.raw, now=self.now) for d in fresh]
        found = self.locator.locate(np.array([r.lon for r in reports]),
                                    np.array([r.lat for r in reports]))
        rows: dict[str, dict] = {}
        for j, (d, report) in enumerate(zip(fresh, reports)):
            received = self._received(d)
            if received > self.now:
                continue  # not received yet: a live feed will bring it
            rows[d.source_id] = {
                "id": _hid("hist", d.source_id), "seq": None, "feed_id": d.town.feed_id,
                "source_id": d.source_id,
                "fingerprint": fingerprint(report, report.lon, report.lat),
                "type": report.type, "severity": report.severity, "title": report.title,
                "description": report.description or "", "people": report.people,
                "reporter": report.reporter, "phone": report.phone,
                "occurred_at": report.occurred, "received_at": received,
                "lon": report.lon, "lat": report.lat, "township_code": found.township[j],
                "grid_code": found.grid[j], "outside": bool(found.outside[j]),
                "status": "reported", "merged_into": None, "rating": None, "level": "grid",
            }
        out = []
        for d in fresh:
            row = rows.get(d.source_id)
            if row is None:
                continue
            original = None
            if d.duplicate_of is not None:
                original = rows.get(d.duplicate_of.source_id)
                if original is None and d.duplicate_of.source_id in stored:
                    original = {"id": _hid("hist", d.duplicate_of.source_id),
                                "received_at": d.duplicate_of.occurred}
                if original is None:
                    continue  # its first report is not there: nothing to merge into
            out.append(_Plan(self, d, row).run(original))
        return out, skipped

    # --- who acts --------------------------------------------------------------------------------

    def duty_at(self, at: datetime) -> _Actor:
        """The duty officer of the shift holding `at`: four take the day (08–20), two the night."""
        local = at.astimezone(CHINA)
        day = local.toordinal() - (1 if local.hour < 8 else 0)  # a night shift spans midnight
        return self.duty[day % 4] if 8 <= local.hour < 20 else self.duty[4 + day % 2]

    def leader_at(self, at: datetime) -> _Actor:
        """The leader on call that day."""
        return self.leaders[at.astimezone(CHINA).toordinal() % len(self.leaders)]

    def staff(self, town: str | None, rng: random.Random) -> _Actor | None:
        t = self.by_code.get(town) if town else None
        return rng.choice(t.staff) if t is not None and self._is(town, "township") else None

    def worker(self, grid: str | None) -> _Actor | None:
        leaf = self.leaves.get(grid) if grid else None
        return leaf.worker if leaf is not None else None

    def _is(self, code: str | None, level: str) -> bool:
        return code is not None and self.locator.has(code) and \
            self.locator.unit(code)["level"] == level

    def above(self, code: str) -> dict:
        """The unit a node's target answers to (as supervision finds it): a grid's township, else
        the county."""
        unit = self.locator.unit(code) if self.locator.has(code) else None
        if unit is not None and unit["level"] == "grid" and self._is(unit["parent"], "township"):
            return self.locator.unit(unit["parent"])
        return self.county

    def name(self, code: str) -> str:
        if code in self.depts:
            return self.depts[code]
        return self.locator.unit(code)["name"] if self.locator.has(code) else code


def _scaled(weights) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.mean()


def _words(rng: random.Random, town: _Town, leaf: _Leaf) -> dict:
    """Fillers for the report templates, with the real place names where the units have them."""
    words = {
        **{key: rng.choice(values) for key, values in _WORDS.items()},
        "place": town.name, "name": _person(rng), "name2": _person(rng),
        "n": rng.randint(3, 40), "money": rng.choice((1.2, 3.5, 8, 12.6, 25, 46, 80, 120)),
        "months": rng.randint(2, 14), "age": rng.randint(62, 91), "injured": rng.randint(1, 4),
        "depth": rng.randint(20, 80), "fee": rng.choice(_FEES), "topic": rng.choice(_TOPICS),
    }
    if leaf.village:
        words["village"] = leaf.village
    elif town.villages:
        words["village"] = rng.choice(town.villages)
    return words


def _raw(rng: random.Random, source_id: str, kind: str, occurred: datetime, lon: float,
         lat: float, title: str, description: str, severity: int, people: int | None) -> dict:
    """The report as a township feed would have sent it."""
    raw = {"id": source_id, "type": kind,
           "occurred_at": occurred.astimezone(CHINA).isoformat(timespec="seconds"),
           "lon": lon, "lat": lat, "title": title[:200], "description": description,
           "severity": severity, "people": people}
    if kind not in ("emergency", "public_safety") or rng.random() < 0.6:
        roll = rng.random()
        if roll < 0.35:
            reporter = rng.choice(SURNAMES) + rng.choice(("先生", "女士"))
        elif roll < 0.6:
            reporter = "网格员" + _person(rng)
        else:
            reporter = _person(rng)
        raw["reporter"] = reporter
        raw["phone"] = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10 ** 8):08d}"
    return raw


# --- planning one incident ------------------------------------------------------------------------

@dataclass
class _Move:
    at: datetime
    by: str
    frm: str
    to: str
    note: str
    data: dict | None
    level: str


class _Track:
    """An incident's loop as planned; every move is checked like `loop.stage_transition` does."""

    def __init__(self, received: datetime) -> None:
        self.state, self.level, self.t = "reported", "grid", received
        self.moves: list[_Move] = []

    def move(self, to: str, actor: _Actor | None, at: datetime, note: str = "", *,
             rating: int | None = None, merged_into: str | None = None) -> datetime:
        at = max(at, self.t)
        if actor is None:
            if to not in workflow.successors(self.state):
                raise workflow.TransitionError(f"no automatic move {self.state} → {to}", [])
        else:
            workflow.check(self.state, to, actor.role)
            if self.state == "escalated" and to == "accepted" and actor.role == "township" \
                    and self.level != "township":
                raise workflow.TransitionError("事件已上报县级，由县级受理", [])
        workflow.check_data(to, rating=rating, merged_into=merged_into)
        data: dict = {}
        if to == "merged":
            data["merged_into"] = merged_into
        if to == "followed_up":
            data["rating"] = rating
        if to == "escalated":
            role = actor.role if actor is not None else workflow.ROLE_LEVEL.get(self.level, "grid")
            start, end = workflow.escalation(self.level, role)
            self.level = end
            data.update({"from": start, "to": end})
        self.moves.append(_Move(at, actor.name if actor is not None else SYSTEM, self.state, to,
                                note, data or None, self.level))
        self.state, self.t = to, at
        return at


@dataclass
class _Node:
    """An order node as planned: its actions in time order, replayed up to `now` for the row."""

    id: str
    order_id: str
    parent_id: str | None
    incident_id: str
    target: str
    instruction: str
    priority: str
    created_at: datetime
    ack_by: datetime
    due_by: datetime
    severity: int
    title: str
    actions: list = field(default_factory=list)  # (at, state, by, note, values)
    state: str = "issued"

    def act(self, at: datetime, state: str, by: str, note: str = "", **values) -> datetime:
        """Apply one planned action, checked against the node's state machine."""
        action = _ACTION_OF[state]
        if by != SYSTEM and action not in orders_service.STATE_ACTIONS[self.state]:
            raise workflow.TransitionError(f"node {self.state}: no {action}", [])
        if by == SYSTEM and not (state == "completed" and self.state in orders_service.WORKING):
            raise workflow.TransitionError(f"node {self.state}: no automatic {state}", [])
        at = max(at, self.actions[-1][0]) if self.actions else at
        self.actions.append((at, state, by, note, values))
        self.state = state
        return at

    def state_at(self, at: datetime) -> str:
        state = "issued"
        for a in self.actions:
            if a[0] > at:
                break
            state = a[1]
        return state


_ACTION_OF = {"issued": "reissue", "delivered": "deliver", "acknowledged": "ack",
              "in_progress": "progress", "completed": "complete", "returned": "return",
              "cancelled": "cancel"}


@dataclass
class _Bundle:
    """The rows of one incident as they stand at `now`."""

    incident: dict
    events: list[dict]
    orders: list[dict]
    nodes: list[dict]
    node_events: list[dict]
    alerts: list[tuple]  # (at, "raise" | "resolve", key, kwargs)
    last: datetime
    late: int = 0
    returned: int = 0


class _Plan:
    """Plans one incident from its report to its end, then cuts it at `now`."""

    def __init__(self, world: _World, draft: _Draft, row: dict) -> None:
        self.w, self.d, self.row, self.rng = world, draft, row, draft.rng
        self.track = _Track(row["received_at"])
        self.orders: list[dict] = []
        self.nodes: list[_Node] = []
        self.alerts: list[tuple] = []

    def run(self, original: dict | None) -> _Bundle:
        """Plan the whole loop and return the rows it leaves at `now`."""
        row, rng, tr = self.row, self.rng, self.track
        if original is not None:  # a second report of the same matter: the duty officer merges it
            at = max(row["received_at"], original["received_at"]) + _after(rng, 8, 0.6)
            tr.move("merged", self.w.duty_at(at), at, "与同一事件的先前上报重复，合并办理",
                    merged_into=original["id"])
        elif self._wants_order():
            at = tr.t + _after(rng, 4 if self._major() else 15, 0.6)
            if self._major() or rng.random() < 0.7:
                tr.move("accepted", self.w.duty_at(at), at, "值班员受理，报指挥长")
                at += _after(rng, 6 if self._major() else 25, 0.6)
            if not self._order(at):
                self._local(forbid_order=True)
        else:
            self._local()
        return self._cut()

    def _major(self) -> bool:
        return self.row["severity"] <= 2 or self.row["type"] == "mass"

    def _wants_order(self) -> bool:
        if self._major():
            return True
        share3, share4 = _ORDER_SHARE.get(self.row["type"], (0.0, 0.0))
        return self.rng.random() < (share3 if self.row["severity"] == 3 else share4)

    # --- handled locally --------------------------------------------------------------------------

    def _handler(self) -> _Actor:
        row, rng, w = self.row, self.rng, self.w
        grid = w.worker(row["grid_code"])
        town = w.staff(row["township_code"], rng)
        roll = rng.random()
        if row["type"] in ("legal", "psych"):
            choice = "duty" if roll < 0.4 else ("township" if roll < 0.7 else "grid")
        else:
            choice = "grid" if roll < 0.65 else "township"
        if choice == "grid" and grid is None:
            choice = "township"
        if choice == "township" and town is None:
            choice = "grid" if grid is not None else "duty"
        return {"grid": grid, "township": town}.get(choice) or w.duty_at(self.track.t)

    def _local(self, forbid_order: bool = False) -> None:
        row, rng, tr, w = self.row, self.rng, self.track, self.w
        kind = row["type"]
        handler = self._handler()
        t = tr.t
        if tr.state == "reported":
            wait = {"grid": 12, "township": 25}.get(handler.role, 5) * (2.5 if _night(t) else 1)
            t = tr.move("accepted", handler, t + _after(rng, wait, 0.8),
                        _ACCEPT_NOTES.get(handler.role, _ACCEPT_NOTES["duty"]))
        if rng.random() < _FALSE_ALARM.get(kind, 0.005) and not self.d.has_duplicate:
            at = t + _after(rng, 35, 0.7)
            tr.move("false_alarm", w.duty_at(at), at, "经现场核实，系误报")
            return
        if kind in ("dispute", "petition") and handler.role in workflow.LOCAL \
                and rng.random() < 0.09:
            if handler.role == "grid" and w.staff(row["township_code"], rng) is not None:
                t = tr.move("escalated", handler, _office(t + _after(rng, 300, 0.8), rng),
                            "调解未果，上报乡镇（街道）")
                handler = w.staff(row["township_code"], rng)
                t = tr.move("accepted", handler, _office(t + _after(rng, 120, 0.8), rng),
                            "乡镇（街道）受理，组织联合调处")
            if handler.role == "township" and not forbid_order and rng.random() < 0.3:
                t = tr.move("escalated", handler, _office(t + _after(rng, 600, 0.8), rng),
                            "涉及多个部门，上报县级协调")
                if self._order(_office(t + _after(rng, 90, 0.6), rng)):
                    return
                at = _office(t + _after(rng, 60, 0.6), rng)
                handler = w.duty_at(at)
                t = tr.move("accepted", handler, at, "县级受理")
        t = tr.move("in_progress", handler, t + _after(rng, 25, 0.9), _WORK_NOTES[kind])
        t = tr.move("responded", handler, t + self._handling(), rng.choice(_RESULTS[kind]))
        self._finish(t, handler)

    def _handling(self, factor: float = 1.0) -> timedelta:
        median_h, sigma = _HANDLING[self.row["type"]]
        hours = min(median_h * math.exp(self.rng.gauss(0.0, sigma)), _MAX_HANDLING_H)
        return timedelta(hours=max(hours * factor, 0.1))

    def _finish(self, t: datetime, responder: _Actor) -> None:
        """Verify (sometimes sending back first), follow up with a rating, close."""
        rng, tr, w = self.rng, self.track, self.w
        if rng.random() < 0.04:
            at = _office(t + _after(rng, 240, 0.8), rng)
            t = tr.move("in_progress", w.duty_at(at), at, "核查发现处置不到位，退回继续处置")
            t = tr.move("responded", responder, t + self._handling(0.4),
                        rng.choice(_RESULTS[self.row["type"]]))
        at = t + _after(rng, 90 if self._major() else 240, 0.8)
        at = at if self._major() else _office(at, rng)
        checker = w.leader_at(at) if self._major() else w.duty_at(at)
        t = tr.move("verified", checker, at, rng.choice(("核查属实，同意结案", "经电话核实，处置到位")))
        if rng.random() < 0.82:
            rating = _pick(rng, zip((1, 2, 3, 4, 5), _RATINGS.get(self.row["type"],
                                                                  _RATINGS["default"])))
            at = _office(t + _after(rng, 1800, 0.6), rng)
            t = tr.move("followed_up", w.duty_at(at), at,
                        f"回访当事人：{_COMMENTS[rating]}（{rating}分）", rating=rating)
        at = _office(t + _after(rng, 180, 0.8), rng)
        tr.move("closed", w.duty_at(at), at, "结案归档")

    # --- dispatch orders --------------------------------------------------------------------------

    def _targets(self) -> list[str]:
        row, rng, w = self.row, self.rng, self.w
        out = []
        if w._is(row["township_code"], "township"):
            out.append(row["township_code"])
        elif w._is(row["grid_code"], "grid"):
            out.append(row["grid_code"])
        depts = [c for c in _DEPTS_FOR.get(row["type"], ()) if c in w.depts]
        k = min(len(depts), 2 if self._major() else (1 if rng.random() < 0.5 else 0))
        if not out:
            k = max(k, min(1, len(depts)))
        return out + rng.sample(depts, k)

    def _order(self, at: datetime) -> bool:
        """Issue an order as `create_order` does and plan its nodes; False when none can go out."""
        row, rng, tr, w = self.row, self.rng, self.track, self.w
        targets = self._targets()
        if not targets or tr.state not in ("reported", "accepted", "escalated"):
            return False
        at = max(at, tr.t)
        leader = w.leader_at(at)
        instruction = rng.choice(_INSTRUCTIONS[row["type"]])
        names = "、".join(w.name(c) for c in targets)
        path = ("accepted", "dispatched") if tr.state == "reported" else ("dispatched",)
        for to in path:
            note = f"下达指令至{names}：{instruction}" if to != "accepted" else "下达指令时受理"
            tr.move(to, leader, at, note)
        severity = row["severity"]
        priority = "urgent" if severity <= 2 or row["type"] == "mass" else \
            ("high" if severity == 3 else "normal")
        order_id = _hid("hist-order", row["id"], len(self.orders))
        self.orders.append({"id": order_id, "incident_id": row["id"], "issued_by": leader.name,
                            "issued_at": at, "instruction": instruction, "priority": priority})
        ack_m, due_m = self.w.limits.minutes(severity)
        ends = []
        has_town = any(w._is(c, "township") for c in targets)
        for code in targets:
            node = self._node(order_id, None, code, instruction, priority, at,
                              at + timedelta(minutes=ack_m), at + timedelta(minutes=due_m),
                              leader.name)
            may_return = code in w.depts and has_town
            ends.append(self._work(node, leader, may_return=may_return))
        completed = [end for end, ok in ends if ok]
        done = max(end for end, _ok in ends)
        town_node = next((n for n in self.nodes if n.parent_id is None and w._is(n.target,
                                                                              "township")), None)
        if town_node is not None and rng.random() < 0.4:
            acked = next((a[0] for a in town_node.actions if a[1] == "acknowledged"), None)
            staff = w.staff(town_node.target, rng)
            if acked is not None and staff is not None and row["township_code"] == town_node.target:
                move_at = acked + _after(rng, 5, 0.6)
                if move_at < done - timedelta(minutes=1):
                    tr.move("in_progress", staff, move_at, "乡镇（街道）已到场处置")
        if completed:
            t = tr.move("responded", None, done, "全部指令已办结，自动反馈")
            responder = w.staff(row["township_code"], rng) or w.duty_at(t)
            self._finish(t, responder)
        return True

    def _node(self, order_id: str, parent_id: str | None, code: str, instruction: str,
              priority: str, at: datetime, ack_by: datetime, due_by: datetime, by: str) -> _Node:
        node = _Node(_hid("hist-node", order_id, len(self.nodes)), order_id, parent_id,
                     self.row["id"], code, instruction, priority, at, ack_by, due_by,
                     self.row["severity"], self.row["title"])
        node.actions.append((at, "issued", by, "", {}))
        self.nodes.append(node)
        return node

    def _actor(self, code: str) -> _Actor:
        w = self.w
        if code in w.dept_staff:
            return w.dept_staff[code]
        if w._is(code, "township"):
            return w.staff(code, self.rng)
        return w.worker(code) or _Actor(w.name(code), "grid")

    def _work(self, node: _Node, above: _Actor, *, may_return: bool = False,
              cap: datetime | None = None) -> tuple[datetime, bool]:
        """Plan a node from issue to its end as its target works it; (end time, completed)."""
        rng, w = self.rng, self.w
        target = self._actor(node.target)
        ack_span, due_span = node.ack_by - node.created_at, node.due_by - node.created_at
        factor = w.limits.escalate_after
        created = node.created_at
        receipt = timedelta(seconds=min(90.0, ack_span.total_seconds() * 0.15))
        t = node.act(created + receipt * rng.uniform(0.05, 1.0), "delivered", target.name)
        if may_return and rng.random() < 0.08:
            # sent back before its sign-off limit: supervision only watches the phase after
            reason = rng.choice(_RETURNS)
            t = node.act(max(created + ack_span * rng.uniform(0.2, 0.8), t), "returned",
                         target.name, reason, reason=reason)
            t += _after(rng, 15, 0.5)
            if rng.random() < 0.5:
                node.act(t, "cancelled", above.name, "退回理由成立，撤销该指令")
                return t, False
            created = t
            node.act(t, "issued", above.name, "重新下达", reason=None, acked_by=None,
                     created_at=t, ack_by=t + ack_span, due_by=t + due_span)
            t = node.act(t + receipt * rng.uniform(0.05, 1.0), "delivered", target.name)
        # supervision escalates at `factor` times the allowed time: the plan stays below it
        latest_ack = created + ack_span * factor - timedelta(minutes=0.5)
        latest_due = created + due_span * factor - timedelta(minutes=1)
        if cap is not None:
            latest_due = min(latest_due, cap)
        if factor > 1.1 and rng.random() < 0.03:
            ack = created + ack_span * (1 + rng.uniform(0.05, min(0.8, factor - 1.05)))
        else:
            ack = created + ack_span * rng.betavariate(1.5, 3.0)
        ack = min(max(ack, t + timedelta(seconds=20)), latest_ack)
        forward = self.row["grid_code"]
        if w._is(node.target, "township") and node.parent_id is None and forward \
                and w._is(forward, "grid") and w.locator.unit(forward)["parent"] == node.target \
                and rng.random() < 0.6:
            return self._forward(node, target, ack, forward, latest_due)
        ack = node.act(ack, "acknowledged", target.name, "", acked_by=target.name)
        if factor > 1.1 and rng.random() < 0.05:
            done = created + due_span * (1 + rng.uniform(0.05, min(0.8, factor - 1.05)))
        else:
            done = ack + (created + due_span - ack) * rng.betavariate(2.0, 2.5)
        done = max(min(done, latest_due), ack + timedelta(minutes=1))
        node.act(ack + (done - ack) * rng.uniform(0.2, 0.6), "in_progress", target.name,
                 rng.choice(_PROGRESS))
        result = rng.choice(_RESULTS[self.row["type"]])
        return node.act(done, "completed", target.name, result, result=result), True

    def _forward(self, node: _Node, township: _Actor, at: datetime, grid: str,
                 latest_due: datetime) -> tuple[datetime, bool]:
        """The township hands its node down to the incident's grid, as `forward` does."""
        name = self.w.name(grid)
        at = node.act(at, "acknowledged", township.name, "转派即签收", acked_by=township.name)
        node.act(at, "in_progress", township.name, f"转派至{name}")
        ack_by = at + (node.ack_by - node.created_at)
        child = self._node(node.order_id, node.id, grid, node.instruction, node.priority, at,
                           ack_by, max(node.due_by, ack_by), township.name)
        end, ok = self._work(child, township, cap=latest_due)
        result = next(a[4]["result"] for a in child.actions if a[1] == "completed")
        node.act(end, "completed", SYSTEM, "下级全部办结，自动办结", result=f"{name}：{result}")
        return end, ok

    def _supervise(self, node: _Node) -> None:
        """Add supervision's 督办 marks where the plan misses a deadline (as `supervision.check`)."""
        w = self.w
        start = max(i for i, a in enumerate(node.actions) if a[1] == "issued")
        values = {"created_at": node.created_at, "ack_by": node.ack_by, "due_by": node.due_by}
        for a in node.actions[:start + 1]:
            values.update({k: v for k, v in a[4].items() if k in values})
        phase = node.actions[start + 1:]
        unit = {"name": w.name(node.target)}
        above = w.above(node.target)
        steps = (("ack", values["ack_by"], orders_service.UNACKED, orders_service.ack_key),
                 ("due", values["due_by"], orders_service.UNACKED + orders_service.WORKING,
                  orders_service.due_key))
        marks = []
        for step, deadline, watched, key_of in steps:
            leave = next((a[0] for a in phase if a[1] not in watched), None)
            at = deadline + timedelta(seconds=self.rng.uniform(1, 15))
            if at > w.now or (leave is not None and leave <= at):
                continue
            key = key_of(node.id)
            level = "red" if node.severity in (1, 2) else "orange"
            message = (f"督办：{unit['name']}{_MISSED[step]}「{node.title}」的指令，"
                       f"已逾期{_late(at - deadline)}")
            self.alerts.append((at, "raise", key, {
                "rule": "overdue", "level": level, "units": [above["code"]],
                "incidents": [node.incident_id], "message": message}))
            if leave is not None:
                self.alerts.append((leave, "resolve", key, {}))
            marks.append((at, node.state_at(at), SYSTEM,
                           f"督办：{_MISSED[step]}，已提醒{above['name']}",
                           {f"{step}_alerted": True}))
        if marks:
            node.actions = sorted(node.actions + marks, key=lambda a: a[0])

    # --- the cut at `now` -------------------------------------------------------------------------

    def _cut(self) -> _Bundle:
        now, row = self.w.now, dict(self.row)
        kept = [m for m in self.track.moves if m.at <= now]
        for m in kept:
            row["status"], row["level"] = m.to, m.level
            if m.to == "merged":
                row["merged_into"] = m.data["merged_into"]
            if m.to == "followed_up":
                row["rating"] = m.data["rating"]
        events = [{"incident_id": row["id"], "at": m.at, "by": m.by, "from_state": m.frm,
                   "to_state": m.to, "note": m.note,
                   "data": json.dumps(m.data, ensure_ascii=False) if m.data else None}
                  for m in kept]
        last = kept[-1].at if kept else row["received_at"]
        bundle = _Bundle(row, events, [o for o in self.orders if o["issued_at"] <= now], [], [],
                         [], last)
        for node in self.nodes:
            self._supervise(node)
            actions = [a for a in node.actions if a[0] <= now]
            if not actions:
                continue
            values = {"state": "issued", "acked_by": None, "result": None, "reason": None,
                      "created_at": node.created_at, "ack_by": node.ack_by, "due_by": node.due_by,
                      "ack_alerted": False, "ack_escalated": False, "due_alerted": False,
                      "due_escalated": False}
            for at, state, _by, _note, updates in actions:
                values["state"] = state
                values.update(updates)
                if state == "issued" and "created_at" in updates:  # reissued: marks reset
                    values.update(ack_alerted=False, due_alerted=False)
            bundle.nodes.append({"id": node.id, "seq": None, "order_id": node.order_id,
                                 "parent_id": node.parent_id, "incident_id": node.incident_id,
                                 "target_code": node.target, "instruction": node.instruction,
                                 "priority": node.priority, **values, "_last": actions[-1][0]})
            bundle.node_events += [{"node_id": node.id, "state": state, "by": by, "at": at,
                                    "note": note} for at, state, by, note, _u in actions]
            bundle.late += bool(values["ack_alerted"] or values["due_alerted"])
            bundle.returned += any(a[1] == "returned" for a in actions)
        bundle.alerts = [a for a in self.alerts if a[0] <= now]
        return bundle


# --- writing -------------------------------------------------------------------------------------

def _clock_matters(session: Session, rows: list[dict], rules) -> None:
    """Give the matters among `rows` the clock fields `matters.clock` fills in for matters that
    came in through a feed (one statement, instead of a row at a time on the watch's first
    passes)."""
    clocked = []
    for r in rows:
        if r.get("case_no"):
            fields = clock_fields(rules, type_code=r["type"], category=r.get("category"),
                                  registered_at=r["received_at"], signed_at=None)
            clocked.append({"b_id": r["id"], **{f"b_{k}": v for k, v in fields.items()}})
    if clocked:
        session.execute(sa.update(matters).where(matters.c.incident_id == sa.bindparam("b_id"))
                        .values(limit_days=sa.bindparam("b_limit_days"),
                                due_at=sa.bindparam("b_due_at"),
                                notify_due_at=sa.bindparam("b_notify_due_at")), clocked)


def _write(session: Session, bundles: list[_Bundle], summary: Summary, prefix: str,
           rules=None) -> None:
    """Insert the bundles under placeholder seqs, then reserve the real ones (seq, order_seq,
    alert_seq) in the order of each row's latest change. Matters get their case numbers
    first (case counters are locked before seq, as everywhere)."""
    rows = [b.incident for b in bundles]
    numbers.register_new(session, rows, prefix=prefix)
    for row in rows:
        row["seq"] = alerts_service.placeholder_seq()
    session.execute(sa.insert(incidents), rows)
    numbers.insert_records(session, rows)
    if rules is not None:  # the legal clocks the clock watch would fill in (matters.clock)
        _clock_matters(session, rows, rules)
    events = sorted((e for b in bundles for e in b.events), key=lambda e: e["at"])
    if events:
        session.execute(sa.insert(incident_events), events)
    order_rows = [o for b in bundles for o in b.orders]
    if order_rows:
        session.execute(sa.insert(orders), order_rows)
    nodes = [n for b in bundles for n in b.nodes]
    if nodes:
        for n in nodes:
            n["seq"] = alerts_service.placeholder_seq()
        session.execute(sa.insert(order_nodes), [{k: v for k, v in n.items() if k != "_last"}
                                                 for n in nodes])
        node_events = sorted((e for b in bundles for e in b.node_events), key=lambda e: e["at"])
        session.execute(sa.insert(order_node_events), node_events)
    alert_ids: dict[str, None] = {}
    for at, action, key, kwargs in sorted((a for b in bundles for a in b.alerts),
                                          key=lambda a: a[0]):
        if action == "raise":
            changed = alerts_service.stage_raise(session, key=key, now=at, **kwargs)
        else:
            changed = alerts_service.stage_resolve(session, key, at)
        if changed is not None:
            alert_ids[changed] = None

    by_change = sorted(bundles, key=lambda b: (b.last, b.incident["source_id"]))
    first = next_seq(session, len(by_change))
    session.execute(sa.update(incidents).where(incidents.c.id == sa.bindparam("b_id"))
                    .values(seq=sa.bindparam("b_seq")),
                    [{"b_id": b.incident["id"], "b_seq": first + j}
                     for j, b in enumerate(by_change)])
    if nodes:
        nodes.sort(key=lambda n: (n["_last"], n["id"]))
        first = next_seq(session, len(nodes), counter="order_seq")
        session.execute(sa.update(order_nodes).where(order_nodes.c.id == sa.bindparam("b_id"))
                        .values(seq=sa.bindparam("b_seq")),
                        [{"b_id": n["id"], "b_seq": first + j} for j, n in enumerate(nodes)])
    if alert_ids:
        alerts_service.stamp(session, list(alert_ids))

    summary.added += len(rows)
    summary.statuses.update(r["status"] for r in rows)
    summary.types.update(r["type"] for r in rows)
    summary.events += len(events)
    summary.orders += len(order_rows)
    summary.nodes += len(nodes)
    summary.late_nodes += sum(b.late for b in bundles)
    summary.returned_nodes += sum(b.returned for b in bundles)
    summary.ratings += [r["rating"] for r in rows if r["rating"] is not None]


__all__ = ["seed_history", "has_history", "check_args", "Summary", "PREFIX", "MAX_WEEKS",
           "PER_DAY"]

