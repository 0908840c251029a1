"""Demo feeds: the history's model continued live, with a scripted situation now and then.

`cmdcenter demo` starts the server with one feed per township. On the first start it seeds
weeks of history (`command.demo.history`); the feeds then send what the same model draws for the
hours after that (`history.Model.arrivals`: same townships, rates, hour and weekday profile, type
and severity mix, repeat places and words), so a quiet hour stays quiet and the risk watch sees
ordinary traffic as ordinary. Every few minutes a `Story` adds a scripted situation that the
rules are meant to catch: a cluster of related reports in one grid (mass_gathering), a burst of
one type in one township (spike), a Ⅰ/Ⅱ级 emergency (severity), another dispute at a place that
keeps producing them (repeat_place). Every report goes through the township's feed over
Socket.IO, like any other.
"""

from __future__ import annotations

import logging
import math
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa

from alerts.stats import haversine_m
from command.clock import SHANGHAI
from command.demo.history import PREFIX, Arrival, Model, has_history, seed_history, stored_rate
from command.demo.simulate import Sender, Stats
from command.errors import DomainError
from command.feeds import service as feeds_service
from command.incidents.models import incidents
from command.units import service as units_service

log = logging.getLogger(__name__)

HISTORY_WEEKS = 6  # seeded on the first start, so baselines, trends and replay have a past
# Ordinary reports a day on a first start: six weeks of it seed in ~5-10 s on two cores, and
# daytime on a weekday brings a report every 2-3 minutes (the situations add as many again).
# Much more makes the repeat_place rule (3 disputes within 200 m in 30 days) fire on ordinary
# traffic in the dense urban grids.
PER_DAY = 240.0
HISTORY_MAX_PER_DAY = 1000.0  # a higher --rate is not matched by the seeded history (too slow)
SEED = 0  # the history's seed: the live stream continues the same places and draws
SITUATION_MINUTES = 10.0  # mean gap between scripted situations (each gap 0.8-1.2 × this)
FIRST_SITUATION = timedelta(seconds=40)  # so a visitor sees one at once
CATCH_UP = timedelta(hours=12)  # on a restart, the last hours not stored yet are sent at once
STEP = timedelta(seconds=30)  # how far ahead the stream is drawn
MAX_BEHIND = timedelta(minutes=10)  # further behind (a suspended machine): skip, don't burst
KINDS = ("gathering", "spike", "severity", "repeat")
RULE_OF = {"gathering": "mass_gathering", "spike": "spike", "severity": "severity",
           "repeat": "repeat_place"}

# --- scripted situations: the words ---------------------------------------------------------------

# gatherings: where they happen ("village", "community" or "any"), the first report (a dispute)
# and what bystanders, staff and police report next ({n} grows from report to report). Only the
# first is a dispute: one gathering is not a place that keeps producing disputes (repeat_place).
_GATHERINGS = {
    "wages": ("any", (
        ("dispute", "{company}门口有工人聚集讨薪",
         "{company}门口聚集了约{n}名工人，反映被拖欠{months}个月工资约{money}万元，情绪激动。"
         "网格员已到场劝解，并报告{place}和人社部门。"),
        ("public_safety", "{company}门口聚集人员堵塞道路",
         "{company}门口聚集人员增至约{n}人，部分人员站到路中间，影响车辆通行，"
         "请求派出所到场维持秩序。"),
        ("complaint", "{company}门口有人拉横幅讨薪",
         "群众反映{company}门口有人拉横幅讨薪，围观群众较多，现场约{n}人。"),
        ("public_safety", "{company}讨薪人员与保安发生推搡",
         "{company}门口讨薪人员与厂方保安发生推搡，现场约{n}人，请求民警到场。"),
        ("other", "{company}门口聚集人员增多",
         "路过群众反映{company}门口聚集约{n}人，有人情绪激动，请相关部门关注。"),
    )),
    "construction": ("village", (
        ("dispute", "{village}村民阻拦施工车辆",
         "{village}约{n}名村民以补偿不到位为由阻拦施工车辆进场，双方发生争执。"
         "网格员已到场，正在报告{place}。"),
        ("public_safety", "{village}施工现场发生推搡",
         "{village}施工现场村民与施工人员发生推搡，现场约{n}人，请求派出所到场。"),
        ("complaint", "{village}施工现场聚集人员堵塞村道",
         "{village}村民反映施工现场聚集约{n}人，村道被堵，车辆无法通行。"),
        ("other", "{village}施工现场对峙持续",
         "{village}施工现场对峙仍在持续，聚集村民增至约{n}人，{place}干部已到场做解释工作。"),
    )),
    "property": ("community", (
        ("dispute", "{xiaoqu}业主聚集在物业服务中心",
         "{xiaoqu}约{n}名业主因{fee}聚集在物业服务中心，要求物业公司负责人出面答复，"
         "社区已到场协调。"),
        ("complaint", "{xiaoqu}业主集体投诉物业公司",
         "{xiaoqu}业主{name}反映物业公司{fee}，多名业主正在物业服务中心讨说法，现场约{n}人。"),
        ("public_safety", "{xiaoqu}聚集业主与保安发生争执",
         "{xiaoqu}聚集业主与物业保安发生争执，现场约{n}人，请求民警到场。"),
        ("other", "{xiaoqu}门口聚集人员增多",
         "{xiaoqu}居民反映小区门口聚集约{n}人，有人拉横幅，围观群众较多。"),
    )),
}
# bursts: one type from many places of one township within the hour
_BURSTS = {
    "water": ("complaint", (
        ("{xiaoqu}停水未提前通知",
         "{xiaoqu}居民反映小区突然停水，事先未接到通知，老人和孩子生活不便，请求供水公司尽快恢复。"),
        ("{village}自来水停水",
         "{village}村民反映自来水已停水一个多小时，请求核实原因并告知恢复时间。"),
        ("反映{place}多处停水", "{name}来电反映{place}多处停水，供水热线打不进，请求协调。"),
    )),
    "rain": ("emergency", (
        ("{village}低洼路段积水",
         "短时强降雨导致{village}低洼路段积水约{depth}厘米，车辆无法通行，网格员已设置警示。"),
        ("{road}积水严重", "{road}部分路段积水严重，有车辆熄火被困，请求排涝和交警到场。"),
        ("{village}农田和鱼塘被淹", "{village}暴雨后农田和鱼塘被淹，村民正在自救，请求{place}组织排涝。"),
        ("{xiaoqu}地下车库进水", "{xiaoqu}地下车库进水，部分车辆被淹，物业正在抽水，请求支援。"),
    )),
    "fraud": ("public_safety", (
        ("{village}老人接到冒充医保局的诈骗电话",
         "{village}多名老人接到冒充医保局工作人员的电话，称医保卡异常需转账，网格员已逐户提醒。"),
        ("{xiaoqu}居民遭遇刷单诈骗",
         "{xiaoqu}居民{name}反映被拉入刷单群，已转账{money}万元，派出所已受理。"),
        ("{name}举报冒充公检法诈骗",
         "{name}（{age}岁）接到冒充公检法的电话，要求转账“验资”，家属发现后报警。"),
    )),
}
# Ⅰ/Ⅱ级 emergencies: type, severity, who counts as the people involved, title, description
_EMERGENCIES = (
    ("emergency", 2, "injured", "{road}发生多车相撞事故",
     "{road}发生多车相撞交通事故，{injured}人受伤，其中2人伤势较重，交警、120、消防已赶赴现场，"
     "道路双向封闭。"),
    ("emergency", 1, "injured", "{company}厂房发生火灾，有人员被困",
     "{company}厂房发生火灾，火势较大，初步了解有{injured}人被困，消防救援队已出动，"
     "{place}正在组织疏散周边群众。"),
    ("public_safety", 2, "n", "{school}{n}名学生疑似食物中毒",
     "{school}{n}名学生午餐后陆续出现腹痛、呕吐症状，已送{hospital}救治，卫健、市场监管部门"
     "已赶赴现场。"),
    ("emergency", 2, "n", "{village}发生山体滑坡，民房受损",
     "强降雨后{village}后山发生山体滑坡，{injured}间民房受损，已转移群众{n}人，"
     "暂无人员伤亡报告。"),
    ("public_safety", 2, "injured", "{road}危化品运输车侧翻泄漏",
     "{road}一辆危化品运输车侧翻并发生泄漏，已封闭路段、疏散周边群众，应急管理、消防部门"
     "正在处置。"),
    ("emergency", 1, "injured", "{xiaoqu}发生燃气爆炸",
     "{xiaoqu}一住户家中发生燃气爆炸，{injured}人受伤，楼体部分受损，消防、120、燃气公司已到场，"
     "正在疏散楼内居民。"),
)
_GATHERING_RADIUS_M = 250.0  # from the spot: any two reports lie within the rule's 500 m


@dataclass
class Situation:
    """A scripted situation: what it is, where, its reports, and the rule meant to catch it."""

    kind: str
    at: datetime
    township: str
    arrivals: list[Arrival]
    summary: str

    @property
    def rule(self) -> str:
        return RULE_OF[self.kind]


class Story:
    """What the demo feeds send: the model's ordinary traffic and, now and then, a situation.

    Pure: give it the model and a start, ask `until(end)` for what arrives up to `end` (the
    caller keeps time). `skip` holds source ids stored already (sent before a restart).
    """

    def __init__(self, model: Model, *, start: datetime, seed: int = SEED,
                 situations: bool = True, every_minutes: float = SITUATION_MINUTES,
                 first_after: timedelta = FIRST_SITUATION, skip=()) -> None:
        self.model = model
        self.rng = random.Random(f"story:{seed}:{int(start.timestamp())}")
        self.cursor = start
        self.every = every_minutes
        self.next_at = start + first_after if situations else None
        self.skip = set(skip)
        self.told: list[Situation] = []
        self._pending: list[Arrival] = []
        self._kinds: list[str] = list(KINDS)
        self._repeat = 0
        self._stamp = f"{start.astimezone(SHANGHAI):%m%d%H%M%S}"

    def until(self, end: datetime) -> list[Arrival]:
        """What arrives from the last call up to `end`, in order: ordinary reports, situations."""
        if end <= self.cursor:
            return []
        out = [a for a in self.model.arrivals(self.cursor, end) if a.source_id not in self.skip]
        while self.next_at is not None and self.next_at < end:
            situation = self.situation(self.next_at)
            if situation is not None:
                self._pending.extend(situation.arrivals)
            self.next_at += timedelta(minutes=self.every * self.rng.uniform(0.8, 1.2))
        out += [a for a in self._pending if a.received_at < end]
        self._pending = [a for a in self._pending if a.received_at >= end]
        self.cursor = end
        return sorted(out, key=lambda a: (a.received_at, a.source_id))

    def resume(self, at: datetime) -> None:
        """Carry on from `at`, leaving out the ordinary traffic since the last call."""
        if at > self.cursor:
            self.cursor = at
            if self.next_at is not None and self.next_at < at:
                self.next_at = at + timedelta(minutes=self.every * self.rng.uniform(0.1, 0.5))

    def situation(self, at: datetime, kind: str | None = None) -> Situation | None:
        """Script the next situation (or one of `kind`) starting at `at`; None when the units
        offer no place for it."""
        if kind is None:
            if not self._kinds:  # a new round in a new order, never the same kind twice running
                last = self.told[-1].kind if self.told else None
                self._kinds = self.rng.sample(KINDS, len(KINDS))
                if self._kinds[0] == last:
                    self._kinds.append(self._kinds.pop(0))
            kind = self._kinds.pop(0)
        make = {"gathering": self._gathering, "spike": self._spike,
                "severity": self._severity, "repeat": self._repeat_place}[kind]
        situation = make(at, random.Random(self.rng.getrandbits(64)))
        if situation is not None:
            self.told.append(situation)
        return situation

    # --- the situations ---------------------------------------------------------------------------

    def _sid(self, kind: str, i: int) -> str:
        return f"story-{self._stamp}-{len(self.told):03d}-{kind}-{i}"

    def _town(self, rng: random.Random):
        towns = self.model.towns
        return rng.choices(towns, [t.per_day for t in towns])[0]

    def _gathering(self, at: datetime, rng: random.Random) -> Situation:
        town = self._town(rng)
        theme = rng.choice(sorted(_GATHERINGS))
        where, reports = _GATHERINGS[theme]
        liked = [leaf for leaf in town.leaves
                 if where == "any" or (leaf.village is not None) == (where == "village")]
        leaf = rng.choice(liked or town.leaves)
        anchor = leaf.sample(rng)
        words = self.model.words(leaf, rng)
        k = rng.randint(3, 5)
        n = rng.randint(8, 14)
        arrivals, t = [], at
        for i in range(k):
            kind, title, description = reports[0] if i == 0 else rng.choice(reports[1:])
            occurred = t - timedelta(seconds=rng.uniform(30, 120))
            raw = self.model.compose(
                kind, occurred, source_id=self._sid("gathering", i), rng=rng, leaf=leaf,
                near=anchor, sigma_m=60.0, text=(title, description), words={**words, "n": n},
                severity=rng.choice((4, 4, 3)), people=n if kind != "complaint" else 1)
            raw["lon"], raw["lat"] = _within(raw, anchor, _GATHERING_RADIUS_M)
            arrivals.append(Arrival(t, town.code, _grid(leaf, town), raw))
            t += timedelta(seconds=rng.uniform(35, 75))
            n = min(29, n + rng.randint(2, 6))  # ≥ 30 people would be a rule of its own
        summary = (f"mass_gathering: {k} related reports ({theme}) in {town.name} {leaf.name} "
                   f"within {(arrivals[-1].received_at - at).total_seconds() / 60:.0f} min")
        return Situation("gathering", at, town.code, arrivals, summary)

    def _spike(self, at: datetime, rng: random.Random) -> Situation:
        town = self._town(rng)
        theme = rng.choice(sorted(_BURSTS))
        kind, texts = _BURSTS[theme]
        hour_end = _hour_end(at)
        if hour_end - at < timedelta(minutes=12):  # keep the burst inside one clock hour
            at = hour_end + timedelta(minutes=1)
            hour_end = _hour_end(at)
        span = min(timedelta(minutes=20), hour_end - at - timedelta(minutes=2))
        mean = self.model.hourly_mean(town.code, kind, at)
        n = min(14, max(5, math.ceil(mean + 3 + 3 * math.sqrt(mean + 1))))
        offsets = sorted(rng.uniform(0, span.total_seconds()) for _ in range(n))
        arrivals, used = [], set()
        for i, offset in enumerate(offsets):
            occurred = at + timedelta(seconds=offset)
            for _ in range(6):  # from many grids: a burst, not a gathering
                leaf = town.leaf(rng)
                if leaf.code not in used:
                    break
            used.add(leaf.code)
            raw = self.model.compose(kind, occurred, source_id=self._sid("spike", i), rng=rng,
                                     leaf=leaf, text=rng.choice(texts),
                                     severity=rng.choice((4, 4, 3)))
            received = occurred + timedelta(seconds=rng.uniform(20, 150))
            arrivals.append(Arrival(received, town.code, _grid(leaf, town), raw))
        arrivals.sort(key=lambda a: a.received_at)
        summary = (f"spike: {n} {kind} reports ({theme}) in {town.name} within "
                   f"{span.total_seconds() / 60:.0f} min (about {mean:.1f} in an ordinary hour)")
        return Situation("spike", at, town.code, arrivals, summary)

    def _severity(self, at: datetime, rng: random.Random) -> Situation:
        town = self._town(rng)
        leaf = town.leaf(rng)
        kind, severity, who, title, description = rng.choice(_EMERGENCIES)
        words = {**self.model.words(leaf, rng), "n": rng.randint(8, 25),
                 "injured": rng.randint(2, 6)}
        raw = self.model.compose(kind, at - timedelta(seconds=rng.uniform(60, 300)),
                                 source_id=self._sid("severity", 0), rng=rng, leaf=leaf,
                                 text=(title, description), words=words, severity=severity,
                                 people=words[who])
        summary = f"severity: a {'Ⅰ' if severity == 1 else 'Ⅱ'}级 {kind} in {town.name} {leaf.name}"
        return Situation("severity", at, town.code,
                         [Arrival(at, town.code, _grid(leaf, town), raw)], summary)

    def _repeat_place(self, at: datetime, rng: random.Random) -> Situation | None:
        places = [s for s in self.model.spots if s.tag.startswith("r")]
        if not places:
            return None
        spot = places[self._repeat % len(places)]
        self._repeat += 1
        raw = self.model.spot_report(spot, at - timedelta(seconds=rng.uniform(60, 600)),
                                     source_id=self._sid("repeat", 0), rng=rng,
                                     kinds=("dispute", "petition"))
        summary = (f"repeat_place: another {raw['type']} at the {spot.theme} place in "
                   f"{spot.town.name} {spot.leaf.name}")
        return Situation("repeat", at, spot.town.code,
                         [Arrival(at, spot.town.code, _grid(spot.leaf, spot.town), raw)], summary)


def _within(raw: dict, anchor: tuple[float, float], radius_m: float) -> tuple[float, float]:
    """The report's point, or the spot itself when the draw fell further than `radius_m` away."""
    if haversine_m(raw["lon"], raw["lat"], anchor[0], anchor[1]) <= radius_m:
        return raw["lon"], raw["lat"]
    return anchor


def _grid(leaf, town) -> str | None:
    return leaf.code if leaf.code != town.code else None


def _hour_end(at: datetime) -> datetime:
    local = at.astimezone(SHANGHAI)
    return local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


# --- running it -----------------------------------------------------------------------------------

@dataclass
class DemoFeed:
    """A township's demo feed (its token stays inside; it is never printed)."""

    name: str
    unit_code: str
    token: str = field(repr=False)
    sender: Sender | None = None
    stats: Stats = field(default_factory=Stats)
    gone: bool = False  # refused (token revoked): nothing more is sent
    _tried: float = -math.inf

    def connect(self, url: str) -> bool:
        """Connect unless connected (or tried in the last few seconds)."""
        if self.sender is not None:
            return True
        if self.gone or time.monotonic() - self._tried < 5.0:
            return False
        self._tried = time.monotonic()
        self.stats = Stats()
        sender = Sender(url, self.token, self.stats, max_in_flight=256)
        if not sender.connect():
            log.warning("demo feed %s: %s", self.name, self.stats.reason)
            return False
        self.sender = sender
        return True

    def send(self, body, url: str, stop: threading.Event) -> None:
        """Send a report (or a list); one that cannot go now is dropped and counted."""
        if not self.connect(url):
            self.stats.errors += len(body) if isinstance(body, list) else 1
            return
        if not self.sender.send(body, stop) and not stop.is_set():
            self.gone = True
            log.warning("demo feed %s stopped: %s", self.name, self.stats.reason)

    def close(self) -> None:
        if self.sender is not None:
            self.sender.drain(2.0)
            self.sender.close()


@dataclass
class Demo:
    """The running demo feeds: ordinary traffic at `per_day`, situations unless switched off."""

    feeds: list[DemoFeed]
    per_day: float
    history_per_day: float | None
    situations: bool
    every_minutes: float
    story: Story | None = None
    thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def lines(self) -> list[str]:
        """What to tell the person who started the demo."""
        if not self.feeds:
            return ["cmdcenter: no township polygons: demo feeds not started"]
        what = (f"a scripted situation every ~{self.every_minutes:g} min, the first in "
                f"~{FIRST_SITUATION.total_seconds():.0f} s" if self.situations
                else "no scripted situations")
        out = [f"cmdcenter: demo feeds running ({len(self.feeds)} townships; ordinary traffic "
               f"~{self.per_day:.0f} reports a day ({self.per_day / 86400:.4f}/s) drawn from "
               f"the history's model; {what})"]
        hist = self.history_per_day
        if hist is not None and abs(self.per_day / hist - 1) > 0.25:
            out.append(f"cmdcenter: note: the stored history has ~{hist:.0f} reports a day; at "
                       f"~{self.per_day:.0f} the spike rule will call the difference a spike")
        return out

    def close(self) -> None:
        """Stop the stream and close the feeds' connections."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join(5.0)
        for feed in self.feeds:
            feed.close()


def start_demo_feeds(core, url: str, *, rate: float | None = None, seed: int = SEED,
                     situations: bool = True, every_minutes: float = SITUATION_MINUTES,
                     history_weeks: int = HISTORY_WEEKS) -> Demo:
    """Register (or re-key) a feed per township and start the demo's stream through them.

    `rate` is ordinary traffic in reports/s; by default the stored history's rate, or
    `PER_DAY` a day on a first start, when `history_weeks` of history are seeded at that rate
    first (one line printed about it; 0: none). The stream waits until the server accepts
    connections, sends at once what the last hours lack (after a restart), then follows the
    model's clock.
    """
    now = core.clock.now()
    with core.read() as session:
        gdf = units_service.load_gdf(session)
    try:  # the townships the model draws reports for (their feeds carry history and stream)
        codes = [t.code for t in Model(gdf, seed=seed, per_day=PER_DAY, now=now).towns]
    except DomainError:
        log.warning("no township polygons: demo feeds not started")
        return Demo([], 0.0, None, situations, every_minutes)
    feeds = []
    with core.write() as session, session.begin():
        for code in codes:
            name = f"demo-{code}"
            feeds.append(DemoFeed(name, code, _feed_token(session, name, code, core)))
    per_day = None if rate is None else rate * 86400.0
    seeded = None
    if history_weeks:
        seeded = min(per_day or PER_DAY, HISTORY_MAX_PER_DAY)
        line = ensure_demo_history(core, weeks=history_weeks, per_day=seeded, seed=seed, now=now)
        if line:
            print(line, flush=True)
        else:
            seeded = None
        line = ensure_demo_matters(core, seed=seed, now=now)
        if line:
            print(line, flush=True)
    with core.read() as session:
        history = seeded or stored_rate(session)
        skip = set(session.execute(sa.select(incidents.c.source_id).where(
            incidents.c.source_id.like(PREFIX + "%"),
            incidents.c.occurred_at >= now - CATCH_UP - timedelta(hours=5))).scalars())
    per_day = per_day or history or PER_DAY
    model = Model(gdf, seed=seed, per_day=per_day, now=now)
    demo = Demo(feeds, per_day, history, situations, every_minutes)
    demo.thread = threading.Thread(target=_run, args=(demo, _local(url), core.clock, model, skip),
                                   name="demo-feeds", daemon=True)
    demo.thread.start()
    return demo


def ensure_demo_history(core, *, weeks: int = HISTORY_WEEKS, per_day: float = PER_DAY,
                        seed: int = SEED, now: datetime | None = None) -> str | None:
    """Seed `weeks` of history when none is stored yet; the line to print about it, else None."""
    with core.read() as session:
        if has_history(session):
            return None
    summary = seed_history(core, weeks=weeks, per_day=per_day, seed=seed, now=now)
    span = f"{weeks} week" if weeks == 1 else f"{weeks} weeks"
    return (f"cmdcenter: demo history seeded: {summary.added} incidents and {summary.orders} "
            f"orders over the last {span} at ~{per_day:.0f} reports a day "
            f"({summary.seconds:.1f} s)")


def ensure_demo_matters(core, *, seed: int = SEED, now: datetime | None = None) -> str | None:
    """The window's matters of the last 90 days (command.demo.matters), those not stored yet;
    the line to print about it, else None."""
    from command.demo.matters import seed_matters

    summary = seed_matters(core, seed=seed, now=now)
    for problem in summary.failed:
        log.warning("demo matters: %s", problem)
    return summary.line() if summary.added else None


def _run(demo: Demo, url: str, clock, model: Model, skip: set[str]) -> None:
    """The stream's thread: catch up, then send each report when the model says it arrives."""
    stop = demo.stop
    if not _wait_for(url, stop):
        return
    feeds = {f.unit_code: f for f in demo.feeds}
    start = clock.now()
    catch_up = [a for a in model.arrivals(start - CATCH_UP, start) if a.source_id not in skip]
    for code, feed in feeds.items():
        batch = [a.raw for a in catch_up if a.township == code]
        if batch:
            feed.send(batch, url, stop)
        else:
            feed.connect(url)
    if catch_up:
        print(f"cmdcenter: demo feeds sent {len(catch_up)} reports of the last "
              f"{CATCH_UP.total_seconds() / 3600:g} h that were not stored yet", flush=True)
    story = demo.story = Story(model, start=start, situations=demo.situations,
                               every_minutes=demo.every_minutes, skip=skip)
    told = 0
    while not stop.is_set():
        if clock.now() - story.cursor > MAX_BEHIND:
            log.warning("demo feeds fell behind (was the machine asleep?): carrying on from now")
            story.resume(clock.now())
        end = max(clock.now(), story.cursor) + STEP
        due = story.until(end)
        for situation in story.told[told:]:
            print(f"cmdcenter: demo situation at {situation.at.astimezone(SHANGHAI):%H:%M:%S}: "
                  f"{situation.summary}", flush=True)
        told = len(story.told)
        for arrival in due:
            if not _sleep_until(clock, arrival.received_at, stop):
                return
            feed = feeds.get(arrival.township)
            if feed is not None:
                feed.send(arrival.raw, url, stop)
        if not _sleep_until(clock, end, stop):
            return


def _sleep_until(clock, at: datetime, stop: threading.Event) -> bool:
    """Wait until `at` on `clock`; False when stopped meanwhile."""
    delay = (at - clock.now()).total_seconds()
    return not stop.wait(delay) if delay > 0 else not stop.is_set()


def _feed_token(session, name: str, unit_code: str, core) -> str:
    """A fresh token for the demo feed `name`, creating the feed when needed."""
    try:
        feed = feeds_service.get(session, name=name)
    except feeds_service.NotFound:
        _, token = feeds_service.create(session, name=name, unit_code=unit_code,
                                        now=core.clock.now())
        return token
    if feed.unit_code != unit_code or feed.disabled_reason:
        feeds_service.rebind(session, name=name, unit_code=unit_code)
    return feeds_service.rotate_token(session, name=name)


def _wait_for(url: str, stop: threading.Event, timeout: float = 120.0) -> bool:
    """Wait until something accepts TCP connections at `url`'s host and port."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            stop.wait(0.2)
    return False


def _local(url: str) -> str:
    """The URL a local client uses: a wildcard listen address becomes loopback."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):
        loopback = "[::1]" if host == "::" else "127.0.0.1"
        netloc = loopback + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


DEMO_USERS = (  # name, role, unit
    ("duty", "duty", None), ("leader", "leader", None), ("admin", "admin", None),
    ("township", "township", "DEMO-T01"), ("grid", "grid", "DEMO-T01-G01"),
    ("police", "dept", "dept.police"), ("desk", "desk", None),
)


def ensure_demo_users(core) -> list[tuple[str, str, str | None, str]]:
    """Create (or reset the password of) one demo user per role; return name, role, unit, password."""
    import secrets as _secrets

    from command.errors import NotFound
    from command.users import service as users_service

    out = []
    with core.write() as session, session.begin():
        for name, role, unit in DEMO_USERS:
            password = _secrets.token_urlsafe(9)
            try:
                users_service.get(session, name=name)
                users_service.set_password(session, name=name, password=password)
            except NotFound:
                users_service.create(session, name=name, role=role, unit_code=unit,
                                     password=password, now=core.clock.now())
            out.append((name, role, unit, password))
    return out
