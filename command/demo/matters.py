"""The demo's matters at the one window: ~90 days of them, written through the domain services.

`seed_matters` gives the demo county a window that has been working for three months, so the
queues, clocks, 督办, figures and related matters are alive at once:

- matters through every channel (来访 visit, 来电 phone, 来信 letter, 网上 online, 网格上报 grid,
  部门移交 referral, 数据接入 feed), with categories that fit the channel and the township (街道:
  物业, 消费, 交通, 劳资 …; 镇/乡: 宅基地, 山林, 邻里, 征地 …), zh-CN titles, summaries and
  requests, parties (persons with ID numbers and phones, organisations with 统一社会信用代码),
  amounts and risk;
- routes to departments, townships and grids with their tiers (a difficult one owned by a
  county leader, 包案), assisting units, returns with a reason and a new route, sign-offs,
  mediation sessions, every kind of outcome (agreed with terms, amount and a date to perform
  by; not agreed with where the parties were guided; withdrawn; petitions supported, partly
  supported, not supported; services; complaints substantiated or not), judicial
  confirmations (granted, refused, one pending), follow-ups and one unsatisfied follow-up that
  reopens its matter, grid workers' closures on the spot, a refusal (不予受理), a petition
  extended by 30 days, closing;
- still open at `now`: matters waiting in the window's queue (new, and one returned), matters
  near and past their legal limit, a petition past its 受理告知 limit, follow-ups due today, an
  agreement whose 30-day window for 司法确认 is nearly over;
- repeat parties: one person with six matters (and the neighbour in four of them), two with
  three, a company with three (by its credit code), one person also known by phone only
  ("possibly the same party").

Every step is the call the REST route makes (`matters.service.register` / `close`,
`incidents.service.ingest` for phones and feeds, `matters.handling.route` / `add_session` /
`outcome` / `confirm` / `followup` / `extend`, `orders.service.act` for sign-off, return and an
assist's progress, `incidents.loop.transition` to close), with `now` set to the step's moment,
so timelines, seqs, orders and nodes, audit and 督办 are what the product would have written.
All steps of all matters run in time order (seqs follow time), a transaction per stretch
between two runs of the legal clock's watch (`matters.clock.check`), which runs when a clock of
these matters reaches its warning share or its limit, and at `now`; the risk watch's
`repeat_party` rule is applied as each matter arrives (the live watch skips rows received long
ago). Other processes could see a story half told between two transactions, so the demo starts
its background jobs only after this (`cmdcenter seed-history --matters` is for a stopped
server). Difficult matters are owned by a stored county leader (the demo's `leader`, created
when there is none).

Identity numbers are fictitious: region code 999999 (`REGION`) — province code 99 is not
assigned in GB/T 2260 (province-level codes run 11–82), so no real person can carry one — with
real birth dates and right MOD 11-2 check characters; credit codes use the same region and a
right GB 11714 organisation-code check and GB 32100 check character.

Deterministic: everything is drawn from `random.Random` seeded by the seed. Idempotent: every
matter has a key (`demo-matter-NNN`: the window's Idempotency-Key, or the phone's or feed's
source id); a matter whose key is stored is skipped with all its steps, so a second run adds
nothing. Steps after `now` are not taken (the story is cut where `now` finds it).
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.demo.simulate import GIVEN, MOBILE_PREFIXES, SURNAMES
from command.incidents.models import incidents
from command.matters.identity import credit_check_character, fictitious_id_number
from command.matters.models import matters
from command.orders.models import order_nodes
from command.users.principal import Principal

log = logging.getLogger(__name__)

REGION = "999999"  # province 99 is not assigned in GB/T 2260: a fictitious region (see above)
KEY_PREFIX = "demo-matter-"
DAYS = 90  # how far back the window's matters go
RANDOM_MATTERS = 12  # drawn matters, besides the scripted ones that keep the queues alive
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
CLERKS = ("窗口·陈静", "窗口·刘晓燕", "窗口·王海涛")  # the window's clerks (desk)


# --- what matters are about ---------------------------------------------------------------------

@dataclass(frozen=True)
class _Kind:
    """A kind of matter: type, category, words, who is on the other side, where it goes."""

    type: str
    category: str
    title: str
    summary: str
    request: str
    respondent: str  # person | company | shop | hospital | government | none
    amount: tuple[float, float] | None
    channels: tuple[tuple[str, float], ...]
    urban: float  # weight in a 街道 (urban); rural weight is 1
    rural: float
    assist: tuple[str, ...] = ()  # who may assist (unit codes, or "township")


_KINDS: tuple[_Kind, ...] = (
    _Kind("dispute", "neighbour", "{village}{a}与邻居{b}因{thing}发生纠纷",
          "{village}村民{a}反映，邻居{b}{deed}，双方多次争吵，村调委会劝解未果。",
          "请求组织调解，要求{b}{fix}。", "person", None,
          (("visit", 3), ("phone", 2), ("grid", 4)), 0.4, 1.6),
    _Kind("dispute", "marriage_family", "{a}与{b}赡养纠纷",
          "{a}（{age}岁）反映其子女{b}等人对赡养费分担各执一词，已有{months}个月未支付赡养费。",
          "请求调解，明确子女每月赡养费的分担和支付方式。", "person", (6000, 36000),
          (("visit", 4), ("phone", 2), ("grid", 1)), 0.8, 1.2),
    _Kind("dispute", "labour", "{a}等{n}名工人与{org}劳资纠纷",
          "{a}等{n}名工人反映{org}拖欠{months}个月工资共计约{money}元，多次讨要未果。",
          "请求责令{org}支付拖欠工资{money}元。", "company", (20000, 300000),
          (("visit", 4), ("online", 2), ("letter", 1), ("referral", 2), ("feed", 1)), 1.4, 0.8,
          ("dept.justice", "township")),
    _Kind("dispute", "housing", "{village}{a}与{b}宅基地界址纠纷",
          "{village}村民{a}与{b}因翻建房屋时宅基地界址发生争议，对方墙基占用约{area}平方米。",
          "请求调解，确认宅基地界址，拆除越界墙基。", "person", None,
          (("visit", 3), ("grid", 2), ("letter", 1)), 0.2, 1.5, ("dept.resources",)),
    _Kind("dispute", "property_mgmt", "{xiaoqu}业主{a}与{org}物业服务纠纷",
          "{xiaoqu}业主{a}反映{org}{fee}，业主拒交物业费，物业公司停止门禁卡服务。",
          "请求调解，物业公司整改服务，双方协商物业费。", "company", (1500, 12000),
          (("phone", 3), ("online", 3), ("visit", 1), ("feed", 1)), 1.8, 0.2, ("township",)),
    _Kind("dispute", "medical", "{a}家属与{org}医疗纠纷",
          "{a}家属反映其在{org}住院手术后出现并发症，认为院方存在过错，双方就赔偿协商未果。",
          "请求医疗纠纷人民调解委员会调解，要求赔偿医疗费、误工费等{money}元。", "hospital",
          (30000, 260000), (("visit", 4), ("letter", 1), ("referral", 1)), 1.0, 0.7,
          ("dept.justice",)),
    _Kind("dispute", "contract", "{a}与{org}装修合同纠纷",
          "{a}反映{org}承接其住房装修后拖延工期、使用材料与合同约定不符，已付款{money}元。",
          "请求调解，要求对方返工整改或退还部分装修款。", "company", (10000, 120000),
          (("visit", 2), ("online", 2), ("phone", 1)), 1.2, 0.6),
    _Kind("dispute", "consumer", "{a}与{org}消费纠纷",
          "{a}反映在{org}购买的预付卡商家停业，余额{money}元无法退还。",
          "请求退还预付卡余额{money}元。", "shop", (800, 8000),
          (("phone", 4), ("online", 4)), 1.6, 0.4),
    _Kind("dispute", "traffic", "{a}与{b}交通事故赔偿纠纷",
          "{a}驾驶电动自行车与{b}驾驶的小型轿车在{road}发生碰撞，{a}受伤住院，交警已认定责任。",
          "请求调解，要求对方赔偿医疗费、误工费等{money}元。", "person", (8000, 90000),
          (("visit", 3), ("referral", 3)), 1.3, 0.8, ("dept.justice",)),
    _Kind("dispute", "forest_land", "{village}{a}与{b}山林界址纠纷",
          "{village}村民{a}与{b}因林地界址不清发生争执，对方在争议林地内砍伐杉木约{n}株。",
          "请求确认山林界址，对方赔偿林木损失。", "person", (3000, 40000),
          (("visit", 2), ("grid", 2)), 0.0, 1.2, ("township",)),
    _Kind("dispute", "land_acquisition", "{village}{a}等村民征地补偿纠纷",
          "{village}{a}等{n}户村民反映村集体土地征收后补偿款分配方案未经村民代表会议讨论，"
          "对分配比例有异议。", "请求公开补偿款分配明细，依法重新确定分配方案。", "government",
          (50000, 600000), (("visit", 2), ("letter", 2), ("referral", 1)), 0.3, 1.0,
          ("township", "dept.petition")),
    _Kind("petition", "labour", "{a}反映{org}拖欠工资问题",
          "信访人{a}反映其在{org}务工期间被拖欠工资{money}元，企业负责人失联。",
          "要求有关部门督促企业支付拖欠工资。", "company", (8000, 90000),
          (("letter", 3), ("visit", 3), ("online", 2)), 1.2, 0.8, ("dept.hrss",)),
    _Kind("petition", "land_acquisition", "{a}反映{village}征地安置问题",
          "信访人{a}反映{village}征地后其家庭安置面积认定有误，多次向村里反映未获解决。",
          "要求重新核定安置面积。", "government", None,
          (("letter", 3), ("visit", 3), ("referral", 1)), 0.3, 1.0, ("township",)),
    _Kind("petition", "other", "{a}反映低保资格认定问题",
          "信访人{a}反映其家庭因病致贫，申请最低生活保障被认定不符合条件，对认定结果有异议。",
          "要求重新审核低保申请。", "none", None,
          (("letter", 2), ("visit", 3), ("online", 2)), 1.0, 1.0, ("dept.civil",)),
    _Kind("complaint", "consumer", "投诉{org}销售过期食品",
          "{a}投诉在{org}购买的食品已过保质期，商家拒绝退换。",
          "要求查处并退还货款、依法赔偿。", "shop", (50, 2000),
          (("phone", 5), ("online", 4), ("grid", 1)), 1.5, 0.6),
    _Kind("complaint", "other", "投诉{xiaoqu}周边夜间施工噪音扰民",
          "{a}投诉{xiaoqu}附近工地连续多日夜间施工，噪音严重影响休息。",
          "要求查处违规夜间施工。", "company", None,
          (("phone", 4), ("online", 4), ("feed", 2)), 1.6, 0.3, ("dept.construction",)),
    _Kind("legal", "contract", "{a}咨询借款合同纠纷",
          "{a}咨询：借款给朋友{money}元，对方到期不还，手上只有微信转账记录。",
          "咨询如何维权及诉讼时效。", "none", (5000, 100000),
          (("visit", 4), ("phone", 3), ("online", 2)), 1.0, 1.0),
    _Kind("legal", "marriage_family", "{a}咨询离婚财产分割问题",
          "{a}咨询离婚时婚前按揭购买房屋的分割问题。", "咨询相关法律规定。", "none", None,
          (("visit", 4), ("phone", 3)), 1.0, 1.0),
    _Kind("psych", "marriage_family", "{a}家庭矛盾心理疏导",
          "{a}因家庭矛盾长期情绪低落、失眠，社区发现后转介至中心心理服务室。",
          "请求心理疏导。", "none", None, (("visit", 2), ("referral", 3), ("grid", 1)), 1.0, 1.0),
    _Kind("other", "other", "{village}{a}反映村道路灯损坏",
          "{village}村民{a}反映村道路灯损坏已有{months}个月，夜间出行不便。",
          "请求尽快维修路灯。", "none", None, (("phone", 3), ("grid", 3), ("online", 2)),
          0.6, 1.2),
)
_KIND = {(k.type, k.category): k for k in _KINDS}

_THINGS = (("排水沟", "在自家门前填埋排水沟，雨天污水倒灌邻家", "疏通排水沟并恢复原状"),
           ("围墙", "新砌围墙占用公共通道", "拆除占道部分围墙"),
           ("滴水檐", "翻建房屋后屋檐滴水落入邻家院内", "加装落水管"),
           ("竹林遮光", "屋后竹林遮挡邻家采光", "砍伐遮光竹子"),
           ("通行道路", "在共用通道堆放建材", "清理通道"))
_FEES = ("电梯长期故障无人维修", "小区公共收益不公开", "绿化养护不到位", "停车费上涨未经业主同意")
_XIAOQU = ("锦绣花园", "阳光小区", "翠苑小区", "滨江名苑", "学府华庭", "春晖苑", "丹桂园",
           "湖滨雅苑")
_ROADS = ("城关大道", "解放路", "人民路", "环城南路", "工业大道", "文化路")
_COMPANIES = {  # by category: who is on the other side
    "labour": ("鑫达电子有限公司", "恒丰纺织有限公司", "顺通物流有限公司", "永固五金制品有限公司",
               "华远汽配有限公司", "金诚家具有限公司", "宏盛建筑工程有限公司"),
    "contract": ("佳美装饰工程有限公司", "居然美家装饰设计有限公司", "匠心装饰工程有限公司"),
    "property_mgmt": ("安居物业服务有限公司", "宜家物业管理有限公司", "明珠物业服务有限公司"),
    "other": ("宏盛建筑工程有限公司", "城建市政工程有限公司", "华达建设集团有限公司"),
}
_SHOPS = {"complaint": ("惠民超市", "好又多便利店", "鲜多多生鲜店", "老街食品商行"),  # food sold
          "dispute": ("美佳健身会所", "优学教育培训中心", "丽人美容店", "飞扬游泳馆")}  # prepaid cards
_HOSPITALS = ("县人民医院", "县中医院", "县妇幼保健院")
_COURT = "县人民法院"

# outcome shares by type (results from matters.handling.RESULTS)
_RESULTS = {
    "dispute": (("agreed", 76), ("not_agreed", 16), ("withdrawn", 8)),
    "petition": (("supported", 34), ("partly_supported", 30), ("not_supported", 28),
                 ("withdrawn", 8)),
    "complaint": (("substantiated", 64), ("unsubstantiated", 31), ("withdrawn", 5)),
    "legal": (("served", 95), ("withdrawn", 5)),
    "psych": (("served", 95), ("withdrawn", 5)),
    "other": (("served", 70), ("agreed", 25), ("not_agreed", 5)),
}
_GUIDED = {"labour": "arbitration", "medical": "litigation", "traffic": "litigation",
           "contract": "litigation", "land_acquisition": "administrative_review"}
_NOTES = {
    "supported": "经核实，信访人反映情况属实，诉求合理，已督促责任单位落实并书面答复。",
    "partly_supported": "经调查核实，信访人部分诉求符合政策规定，已予解决；其余诉求已作政策解释。",
    "not_supported": "经调查核实，信访人诉求缺乏政策依据，已书面答复并告知复查途径。",
    "served": "已解答并告知相关法律规定和维权途径。",
    "substantiated": "经现场核查，投诉情况属实，已责令整改并依法处理。",
    "unsubstantiated": "经现场核查，未发现投诉所反映的问题，已向投诉人反馈。",
    "withdrawn": "申请人自愿撤回申请。",
    "not_agreed": "经多次调解，双方分歧较大，未能达成协议。",
}
_RETURNS = ("不属于本单位职责范围，请重新分流", "当事人住所地不在本辖区，请转属地办理",
            "事项涉及多个部门职能，建议由县级牵头")
_SESSION_NOTES = ("双方陈述事实和诉求，调解员释法明理，双方同意进一步协商。",
                  "调解员分别做双方工作，双方差距缩小，约定再次调解。",
                  "现场查看争议情况，听取村干部和邻居意见，提出调解方案。",
                  "背对背调解后面对面协商，双方基本接受调解方案。")
_PLACES = {"dept.justice": "县矛调中心人民调解室", "dept.hrss": "县劳动争议调解室",
           "dept.health": "县医疗纠纷人民调解委员会调解室", "dept.petition": "县矛调中心联合接访室",
           "dept.police": "县公安局交警大队事故调解室", "dept.resources": "县自然资源局会议室",
           "dept.construction": "县住建局物业纠纷调解室", "dept.market": "县市场监管局投诉调解室",
           "dept.civil": "县民政局会议室", "dept.court": "县人民法院诉调对接室",
           "dept.enforcement": "县综合执法局会议室"}


# --- people -------------------------------------------------------------------------------------

def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def _phone(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10 ** 8):08d}"


def org_code(body8: str) -> str:
    """A 9-character organisation code (GB 11714) with its check character."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    values = [int(c) if c.isdigit() else ord(c) - 55 for c in body8]
    check = 11 - sum(v * w for v, w in zip(values, weights)) % 11
    return body8 + ("X" if check == 10 else "0" if check == 11 else str(check))


def credit_code(kind: str, number: int) -> str:
    """A fictitious 统一社会信用代码 in REGION: 91 company, 92 sole trader, 12 public
    institution (a hospital), 11 government organ; right check characters."""
    prefix = {"company": "91", "shop": "92", "hospital": "12", "government": "11"}[kind]
    first17 = prefix + REGION + org_code(f"{number % 10 ** 8:08d}")
    return first17 + credit_check_character(first17)


@dataclass
class _Person:
    name: str
    id_number: str
    phone: str
    address: str

    def party(self, role: str, *, with_id: bool = True) -> dict:
        out = {"role": role, "kind": "person", "name": self.name, "phone": self.phone,
               "address": self.address}
        if with_id:
            out["id_number"] = self.id_number
        return out


# --- the plan -----------------------------------------------------------------------------------

@dataclass
class _Matter:
    """One matter as planned: how it came in, what it is, its parties and its story."""

    key: str
    kind: _Kind
    channel: str
    town: str
    grid: str | None
    at: datetime
    words: dict
    parties: list[dict]
    # done | late | rerouted | queue | returned | running | near | overdue | notify_overdue
    # | followup_today | confirm_soon | confirm_pending | court_refused | reopen | difficult
    # | spot | refused | extend
    fate: str = "done"
    result: str | None = None
    case_no: str | None = None
    steps: list = field(default_factory=list)  # (at, name, kwargs)


@dataclass
class Summary:
    """What `seed_matters` did."""

    planned: int = 0
    added: int = 0
    skipped: int = 0
    steps: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        """One line for the console."""
        return (f"cmdcenter: demo matters at the window: {self.added} added ({self.steps} steps), "
                f"{self.skipped} stored already ({self.seconds:.1f} s)")


class _World:
    """Units, people and actors of one seeding run (all drawn from the seed)."""

    def __init__(self, session: Session, locator, *, seed: int) -> None:
        from command.units import service as units_service

        self.locator = locator
        gdf = units_service.load_gdf(session)
        self.depts = {r.code: str(r.name) for r in gdf.itertuples() if r.level == "dept"}
        towns = sorted((r.code, str(r.name)) for r in gdf.itertuples() if r.level == "township")
        self.towns = [c for c, _n in towns]
        self.town_name = dict(towns)
        self.grids: dict[str, list[tuple[str, str]]] = {}
        self.geoms = {}
        for r in gdf.itertuples():
            if r.level == "grid" and r.parent in self.town_name:
                self.grids.setdefault(r.parent, []).append((r.code, str(r.name)))
                self.geoms[r.code] = r.geometry
        for v in self.grids.values():
            v.sort()
        rng = random.Random(f"{seed}:matters:people")
        self.dept_staff = {c: Principal(f"{n}·{_name(rng)}", "dept", c)
                           for c, n in sorted(self.depts.items())}
        self.town_staff = {c: Principal(f"{n}·{_name(rng)}", "township", c)
                           for c, n in towns}
        self.workers = {g: Principal(f"{n}·{_name(rng)}", "grid", g)
                        for gs in self.grids.values() for g, n in gs}
        self.clerks = tuple(Principal(n, "desk") for n in CLERKS)

    def actor(self, code: str) -> Principal:
        """The user who acts for a department, township or grid."""
        if code in self.dept_staff:
            return self.dept_staff[code]
        if code in self.town_staff:
            return self.town_staff[code]
        return self.workers[code]

    def name(self, code: str) -> str:
        """A unit's name."""
        return self.depts.get(code) or self.locator.unit(code)["name"]

    def village(self, grid: str | None, town: str) -> str:
        """The village or community of a grid (the township's name without one)."""
        if grid is None:
            return self.town_name[town]
        label = dict(self.grids[town])[grid]
        return label.removesuffix("网格")

    def point(self, grid: str, rng: random.Random) -> tuple[float, float]:
        """A measured point inside the grid (as a phone's GPS gives it)."""
        import shapely

        geom = self.geoms[grid]
        minx, miny, maxx, maxy = geom.bounds
        for _ in range(200):
            lon, lat = round(rng.uniform(minx, maxx), 6), round(rng.uniform(miny, maxy), 6)
            if shapely.contains_xy(geom, lon, lat):
                return lon, lat
        p = shapely.point_on_surface(geom)
        return p.x, p.y


def _pick(rng: random.Random, pairs) -> Any:
    values, weights = zip(*pairs)
    return rng.choices(values, weights)[0]


def _office(at: datetime, rng: random.Random) -> datetime:
    """`at`, or the next working morning (08:30–17:30 China time, Monday to Friday)."""
    local = at.astimezone(CHINA)
    if local.weekday() < 5 and 8 <= local.hour < 17:
        return at
    day = local.date() if local.hour < 8 else local.date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 8, 30, tzinfo=CHINA) + \
        timedelta(minutes=rng.uniform(0, 120))


def _hours(rng: random.Random, median: float, sigma: float = 0.6) -> timedelta:
    return timedelta(hours=max(0.1, median * math.exp(rng.gauss(0.0, sigma))))


class _Planner:
    """Draws the matters and their stories."""

    def __init__(self, world: _World, *, seed: int, now: datetime, rules) -> None:
        self.w, self.now, self.rules = world, now, rules
        self.rng = random.Random(f"{seed}:matters")
        self.start = now - timedelta(days=DAYS)
        self.matters: list[_Matter] = []
        self._people = 0
        self.leaders: tuple[str, ...] = ()

    # --- parties --------------------------------------------------------------------------------

    def person(self, town: str, grid: str | None, rng: random.Random) -> _Person:
        """Someone living in the grid (or township), with a fictitious ID number."""
        self._people += 1
        born = date(rng.randint(1948, 1996), rng.randint(1, 12), rng.randint(1, 28))
        number = fictitious_id_number(REGION, born, self._people)
        place = self.w.village(grid, town)
        address = f"{self.w.town_name[town]}{place}{rng.randint(1, 12)}组{rng.randint(1, 88)}号" \
            if "村" in place else f"{self.w.town_name[town]}{rng.choice(_XIAOQU)}" \
            f"{rng.randint(1, 30)}幢{rng.randint(101, 1802)}室"
        return _Person(_name(rng), number, _phone(rng), address)

    def org(self, kind: str, rng: random.Random, town: str, category: str = "labour",
            type_code: str = "dispute") -> dict:
        """An organisation on the other side, as a respondent party with its credit code."""
        names = {"company": _COMPANIES.get(category, _COMPANIES["labour"]),
                 "shop": _SHOPS.get(type_code, _SHOPS["dispute"]), "hospital": _HOSPITALS}.get(kind)
        if kind == "government":
            name = f"{self.w.town_name[town]}人民政府"
        else:
            name = rng.choice(names)
            if kind == "shop":
                name = f"{self.w.town_name[town]}{name}"
            elif kind == "company":
                name = "县" + name
        return {"role": "respondent", "kind": "org", "name": name,
                # one organisation, one code: the same name is the same party wherever it appears
                "credit_code": credit_code(kind, int(hashlib.sha1(name.encode()).hexdigest(), 16)),
                "address": f"{self.w.town_name[town]}"}

    # --- drawing matters ------------------------------------------------------------------------

    def _place(self, kind: _Kind, rng: random.Random) -> tuple[str, str | None]:
        weights = [kind.urban if self.w.town_name[t].endswith("街道") else kind.rural
                   for t in self.w.towns]
        if not any(weights):
            weights = [1.0] * len(self.w.towns)
        town = rng.choices(self.w.towns, weights)[0]
        grids = self.w.grids.get(town) or []
        return town, (rng.choice(grids)[0] if grids else None)

    def _words(self, kind: _Kind, rng: random.Random, town: str, grid: str | None,
               applicant: str, respondent: str) -> dict:
        thing = rng.choice(_THINGS)
        low, high = kind.amount or (0, 0)
        money = int(round(rng.uniform(low, high), -2)) if kind.amount else 0
        return {"a": applicant, "b": respondent, "village": self.w.village(grid, town),
                "thing": thing[0], "deed": thing[1], "fix": thing[2], "n": rng.randint(3, 28),
                "months": rng.randint(2, 9), "money": money, "area": rng.randint(3, 25),
                "age": rng.randint(68, 89), "xiaoqu": rng.choice(_XIAOQU),
                "road": rng.choice(_ROADS), "fee": rng.choice(_FEES), "org": respondent}

    def draw(self, kind: _Kind, at: datetime, rng: random.Random, *, channel: str | None = None,
             applicant: _Person | None = None, respondent: dict | None = None,
             town: str | None = None, grid: str | None = None, fate: str = "done",
             with_id: bool | None = None) -> _Matter:
        """One matter of `kind` (its place, channel and parties drawn unless given)."""
        if town is None:
            town, grid = self._place(kind, rng)
        channel = channel or _pick(rng, kind.channels)
        if channel == "grid" and grid is None:
            channel = "visit"
        applicant = applicant or self.person(town, grid, rng)
        if with_id is None:  # on the phone people seldom give their ID number
            with_id = channel != "phone" or rng.random() < 0.3
        parties = [applicant.party("applicant", with_id=with_id)]
        other = applicant.name
        if respondent is not None:
            parties.append(respondent)
            other = respondent["name"]
        elif kind.respondent == "person":
            p = self.person(town, grid, rng)
            parties.append(p.party("respondent", with_id=rng.random() < 0.7))
            other = p.name
        elif kind.respondent != "none":
            org = self.org(kind.respondent, rng, town, kind.category, kind.type)
            parties.append(org)
            other = org["name"]
        words = self._words(kind, rng, town, grid, applicant.name, other)
        m = _Matter(f"{KEY_PREFIX}{len(self.matters):03d}", kind, channel, town, grid, at, words,
                    parties, fate)
        self.matters.append(m)
        return m

    def plan(self) -> list[_Matter]:
        """Every matter of the period with its story, in the order of their keys."""
        rng = self.rng
        span = (self.now - self.start).total_seconds()
        # the ordinary flow: random kinds and moments over the period, at office-ish hours
        weights = [(k, 3.0 if k.type == "dispute" else 2.0 if k.type == "petition" else 1.5)
                   for k in _KINDS]
        for _ in range(RANDOM_MATTERS):
            kind = _pick(rng, weights)
            at = self.start + timedelta(seconds=rng.uniform(0, span * 0.95))
            m = self.draw(kind, at, rng)
            if m.channel not in ("phone", "online", "feed"):  # people come in office hours
                moved = _office(at, rng)
                m.at = moved if moved < self.now - timedelta(days=1) else at
            if m.channel == "grid" and kind.type in ("dispute", "other") and rng.random() < 0.3:
                m.fate = "spot"
        self._scripted()
        for m in self.matters:
            self._story(m, random.Random(f"{m.key}:{rng.random()}"))
        return self.matters

    def _ago(self, days: float, hours: float = 0.0) -> datetime:
        """A moment this long before now, a few minutes either way; a day or more back, in the
        office hours of that day (or the evening before: at most 16 hours earlier)."""
        if not days:
            return self.now - timedelta(hours=hours)
        at = self.now - timedelta(days=days, hours=hours, minutes=self.rng.uniform(-20, 20))
        local = at.astimezone(CHINA)
        if 8 <= local.hour < 17:
            return at
        day = local.date() if local.hour >= 17 else local.date() - timedelta(days=1)
        return datetime(day.year, day.month, day.day, 16, tzinfo=CHINA) + \
            timedelta(minutes=self.rng.uniform(0, 55))

    def _scripted(self) -> None:
        """The matters that keep the queues, clocks and related matters alive."""
        rng, k = self.rng, _KIND
        # repeat parties: 胡 six matters (orange), two with three (yellow), a company with three
        town = next((t for t in self.w.towns if not self.w.town_name[t].endswith("街道")),
                    self.w.towns[0])
        grid = (self.w.grids.get(town) or [(None, None)])[0][0]
        hu = self.person(town, grid, rng)
        neighbour = self.person(town, grid, rng)
        respondent = neighbour.party("respondent")
        for days, kind, channel, fate in (
                (84, k["dispute", "housing"], "visit", "done"),
                (66, k["petition", "land_acquisition"], "letter", "done"),
                (47, k["dispute", "neighbour"], "grid", "done"),
                (31, k["dispute", "housing"], "phone", "done"),
                (19, k["petition", "land_acquisition"], "visit", "done"),
                (4, k["dispute", "housing"], "referral", "running")):
            self.draw(kind, _office(self._ago(days), rng), rng, channel=channel, applicant=hu,
                      respondent=respondent if kind.type == "dispute" else None, town=town,
                      grid=grid, fate=fate, with_id=True)
        urban = next((t for t in self.w.towns if self.w.town_name[t].endswith("街道")),
                     self.w.towns[-1])
        ugrid = (self.w.grids.get(urban) or [(None, None)])[0][0]
        li = self.person(urban, ugrid, rng)
        for days, kind, channel in ((70, k["dispute", "marriage_family"], "visit"),
                                    (52, k["legal", "marriage_family"], "visit"),
                                    (23, k["psych", "marriage_family"], "referral"),
                                    (12, k["legal", "contract"], "phone")):
            # the last by phone, without her ID number: "possibly the same party" only
            self.draw(kind, _office(self._ago(days), rng), rng, channel=channel, applicant=li,
                      town=urban, grid=ugrid, with_id=channel != "phone")
        company = self.org("company", rng, urban)
        for days, kind, channel in ((80, k["dispute", "labour"], "visit"),
                                    (44, k["petition", "labour"], "letter"),
                                    (9, k["dispute", "labour"], "online")):
            self.draw(kind, _office(self._ago(days), rng), rng, channel=channel,
                      respondent=company, town=urban, grid=ugrid)
        zhao = self.person(urban, ugrid, rng)
        for days, kind, channel in ((75, k["complaint", "consumer"], "online"),
                                    (38, k["dispute", "consumer"], "phone"),
                                    (15, k["complaint", "other"], "online")):
            self.draw(kind, self._ago(days, rng.uniform(0, 8)), rng, channel=channel,
                      applicant=zhao, town=urban, grid=ugrid, with_id=True)
        # still open at now; what came in the last hours came by phone or online at night
        local = self.now.astimezone(CHINA)
        night = not (local.weekday() < 5 and 8 <= local.hour < 19)
        self.draw(k["dispute", "neighbour"], self._ago(0, 0.6), rng,
                  channel="online" if night else "visit", fate="queue")
        self.draw(k["legal", "contract"], self._ago(0, 1.5), rng, channel="phone", fate="queue")
        self.draw(k["dispute", "traffic"], self._ago(0, 2.5), rng,
                  channel="online" if night else "referral", fate="queue")
        self.draw(k["dispute", "contract"], self._ago(2), rng, channel="online", fate="returned")
        self.draw(k["dispute", "neighbour"], self._ago(26, 2), rng, channel="visit", fate="near")
        self.draw(k["dispute", "labour"], self._ago(13, 1), rng, channel="visit", fate="near")
        self.draw(k["dispute", "marriage_family"], self._ago(36), rng, channel="visit",
                  fate="overdue")
        self.draw(k["complaint", "other"], self._ago(33), rng, channel="phone", fate="overdue")
        self.draw(k["petition", "other"], self._ago(17), rng, channel="letter",
                  fate="notify_overdue")
        self.draw(k["petition", "other"], self._ago(58), rng, channel="visit", fate="extend")
        self.draw(k["dispute", "property_mgmt"], self._ago(9, 2), rng, channel="online",
                  fate="followup_today")
        self.draw(k["dispute", "medical"], self._ago(10, 3), rng, channel="visit",
                  fate="followup_today")
        self.draw(k["dispute", "traffic"], self._ago(34), rng, channel="referral",
                  fate="confirm_soon")
        self.draw(k["dispute", "contract"], self._ago(75), rng, channel="visit", fate="reopen")
        self.draw(k["dispute", "neighbour"], self._ago(55), rng, channel="phone", fate="late")
        self.draw(k["dispute", "property_mgmt"], self._ago(46), rng, channel="online",
                  fate="rerouted")
        self.draw(k["dispute", "housing"], self._ago(78), rng, channel="visit",
                  fate="court_refused")
        self.draw(k["dispute", "labour"], self._ago(24), rng, channel="visit",
                  fate="confirm_pending")
        self.draw(k["dispute", "land_acquisition"], _office(self._ago(40), rng), rng,
                  channel="visit", fate="difficult")
        self.draw(k["legal", "contract"], self._ago(20, 3), rng, channel="visit", fate="spot")
        self.draw(k["dispute", "neighbour"], self._ago(10, 3), rng, channel="grid", fate="spot")
        self.draw(k["other", "other"], self._ago(5, 4), rng, channel="grid", fate="spot")
        self.draw(k["petition", "other"], self._ago(27), rng, channel="visit", fate="refused")
        # every outcome at least once, through the feed channel too
        for (t, c), result, channel in ((("dispute", "labour"), "not_agreed", "feed"),
                                        (("dispute", "contract"), "withdrawn", "online"),
                                        (("petition", "labour"), "supported", "letter"),
                                        (("petition", "other"), "partly_supported", "visit"),
                                        (("petition", "other"), "not_supported", "online"),
                                        (("complaint", "consumer"), "substantiated", "phone"),
                                        (("complaint", "other"), "unsubstantiated", "feed"),
                                        (("psych", "marriage_family"), "served", "visit"),
                                        (("dispute", "property_mgmt"), "agreed", "feed")):
            m = self.draw(k[t, c], _office(self._ago(rng.uniform(30, 80)), rng), rng,
                          channel=channel)
            m.result = result

    # --- stories --------------------------------------------------------------------------------

    def _route_plan(self, m: _Matter, rng: random.Random, *, avoid: str | None = None) -> dict:
        kind = m.kind
        lead, tier = self.rules.suggest(kind.type, kind.category, township=m.town, grid=m.grid)
        if lead not in self.w.depts and not self.w.locator.has(lead or ""):
            lead = m.town
        if lead == avoid:  # returned: the window tries the township, else the type's department
            default = self.rules.routing_types.get(kind.type, ("township", "simple"))[0]
            lead = m.town if avoid in self.w.depts else \
                (default if default in self.w.depts else "dept.justice")
        if kind.type == "petition" and kind.category == "labour" and rng.random() < 0.5:
            lead = "dept.hrss" if "dept.hrss" in self.w.depts else lead
        if m.channel == "grid" and tier == "simple" and m.grid and rng.random() < 0.5:
            lead = m.grid
        assist = []
        if kind.assist and (tier != "simple" or m.fate == "difficult") and rng.random() < 0.45:
            a = rng.choice(kind.assist)
            a = m.town if a == "township" else a
            if a != lead and (a in self.w.depts or self.w.locator.has(a)):
                assist.append(a)
        owner = None
        if m.fate == "difficult" or (tier == "difficult" and self.leaders):
            tier = "difficult"
            owner = rng.choice(self.leaders) if self.leaders else None
            if owner is None:
                tier = "complex"
            if kind.assist and not assist:
                a = m.town if kind.assist[0] == "township" else kind.assist[0]
                if a != lead:
                    assist.append(a)
        return {"lead": lead, "assist": assist, "tier": tier, "owner": owner}

    @staticmethod
    def _assists(steps: list, assists: list[str], start: datetime, end: datetime,
                 rng: random.Random) -> None:
        """Each assisting unit signs off and reports its part before the lead concludes."""
        def within(at: datetime, latest: datetime) -> datetime:
            moved = _office(at, rng)
            return moved if moved <= latest else at

        for a in assists:
            ack = within(start + (end - start) * rng.uniform(0.05, 0.3), end - (end - start) / 2)
            steps.append((ack, "ack", {"unit": a}))
            steps.append((within(ack + (end - ack) * rng.uniform(0.2, 0.6),
                                 end - (end - ack) / 10), "progress",
                          {"unit": a, "note": "协办单位已派员参与调查核实，提出处理意见"}))

    def _story(self, m: _Matter, rng: random.Random) -> None:
        """Plan the matter's steps from its intake to where its fate leaves it."""
        kind, steps = m.kind, m.steps
        # stories told in full keep office hours; those that must stand just so at `now` (a
        # limit nearly reached, a follow-up due today) keep their exact offsets
        office = m.fate in ("done", "late", "rerouted", "reopen", "difficult", "extend", "spot",
                            "refused", "court_refused")
        last = [m.at]

        def step(at: datetime, name: str, args: dict | None = None, *,
                 exact: bool = False) -> datetime:
            if not exact:
                moved = _office(at, rng)
                at = moved if office or moved < self.now - timedelta(hours=1) else at
            at = max(at, last[0] + timedelta(minutes=rng.uniform(3, 15))) if steps else at
            last[0] = at
            steps.append((at, name, args or {}))
            return at

        intake = {"grid": "field", "feed": "feed"}.get(m.channel, "register")
        if m.fate in ("spot", "refused"):
            closure = "on_the_spot" if m.fate == "spot" else "not_accepted"
            step(m.at, "register" if m.fate == "refused" else intake, {"closure": closure},
                 exact=True)
            return
        t = step(m.at, intake, exact=True)
        if m.fate == "queue":
            return
        first = self._route_plan(m, rng)
        t = step(t + _hours(rng, 1.5 if intake == "register" else 4), "route", first)
        lead = first["lead"]
        if m.fate in ("returned", "rerouted") or (m.fate == "done" and rng.random() < 0.06):
            t = step(t + _hours(rng, 6), "return", {"unit": lead, "reason": rng.choice(_RETURNS)})
            if m.fate == "returned":
                return
            first = self._route_plan(m, rng, avoid=lead)
            t = step(t + _hours(rng, 2), "route", first)
            lead = first["lead"]
        if m.fate == "notify_overdue":
            return  # the lead has not signed off: the petition's 受理告知 runs out
        t = signed = step(t + _hours(rng, 5), "ack", {"unit": lead})
        limit = self.rules.limit_days(kind.type, kind.category)
        clock_start = signed if kind.type == "petition" else m.at
        if m.fate in ("near", "overdue", "running", "extend"):  # still being handled at now
            self._assists(steps, first["assist"], t, self.now - timedelta(hours=3), rng)
            if m.fate == "extend":
                step(clock_start + timedelta(days=limit * 0.5), "session", {"unit": lead})
                step(clock_start + timedelta(days=limit * 0.8), "extend",
                     {"days": 30, "reason": "需会同民政部门入户核查家庭收入和财产状况，申请延期办理"})
                return
            for j in range(1 if m.fate == "running" else 2):
                step(min(t + _hours(rng, 30 * (j + 1)), self.now - timedelta(hours=2)),
                     "session", {"unit": lead})
            return
        if m.fate == "followup_today":  # its follow-up falls due today
            out = self.now - timedelta(days=7, hours=rng.uniform(0.5, 3))
        elif m.fate == "confirm_soon":  # its 30 days for judicial confirmation nearly over
            out = self.now - timedelta(days=26, hours=rng.uniform(1, 3))
        elif m.fate == "confirm_pending":
            out = self._ago(14, 3)
        else:
            share = rng.betavariate(2.2, 3.0)
            if rng.random() < 0.06 or m.fate == "late":
                share = rng.uniform(1.05, 1.25)  # concluded late: 督办 first
            if kind.type in ("legal", "psych"):
                share *= 0.3
            out = _office(clock_start + timedelta(days=max(limit * share, 0.2)), rng)
        out = max(out, t + timedelta(hours=2))
        self._assists(steps, first["assist"], t, out, rng)
        sessions = 0
        if kind.type in ("dispute", "other", "psych"):
            sessions = rng.choice((1, 1, 1, 2, 2, 3))
        elif kind.type == "petition":
            sessions = rng.choice((0, 0, 1))
        for j in range(sessions):
            step(min(t + (out - t) * (j + 1) / (sessions + 1), out - timedelta(hours=1)),
                 "session", {"unit": lead})
        result = m.result or _pick(rng, _RESULTS[kind.type])
        if m.fate in ("confirm_soon", "confirm_pending", "reopen", "court_refused") or (
                m.fate == "followup_today" and kind.type == "dispute"):
            result = "agreed"
        out = step(out, "outcome", {"unit": lead, "result": result}, exact=not office)
        if m.fate == "followup_today":
            return
        if m.fate in ("confirm_soon", "confirm_pending"):  # followed up; not yet sent to the
            step(out + timedelta(days=7, hours=2), "followup",  # court, or the court deciding
                 {"satisfaction": "satisfied", "performed": True})
            if m.fate == "confirm_pending":
                step(self.now - timedelta(days=4, hours=5), "confirm", {"state": "requested"})
            return
        if result == "agreed" and m.fate != "reopen" and (
                rng.random() < 0.3 or m.fate == "court_refused"):
            asked = step(out + timedelta(days=rng.uniform(2, 12)), "confirm",
                         {"state": "requested"})
            refused = m.fate == "court_refused" or rng.random() < 0.05
            step(asked + timedelta(days=rng.uniform(3, 15)), "confirm",
                 {"state": "refused" if refused else "granted"})
        if m.fate == "done" and rng.random() < 0.08:
            return  # never followed up: the matter stays responded
        follow_at = out + timedelta(days=rng.uniform(5, 11))
        if m.fate == "reopen":
            t = step(follow_at, "followup", {"satisfaction": "unsatisfied", "performed": False})
            again = self._route_plan(m, rng)
            t = step(t + _hours(rng, 20), "route",
                     {**again, "note": "回访不满意，重新交办，督促履行调解协议"})
            t = step(t + _hours(rng, 4), "ack", {"unit": again["lead"]})
            t = step(t + timedelta(days=rng.uniform(2, 5)), "session", {"unit": again["lead"]})
            t = step(t + timedelta(days=1), "outcome", {"unit": again["lead"], "result": "agreed"})
            t = step(t + timedelta(days=rng.uniform(5, 8)), "followup",
                     {"satisfaction": "satisfied", "performed": True})
        else:
            satisfaction = _pick(rng, (("satisfied", 80), ("basic", 17)))
            if result in ("not_supported", "not_agreed", "unsubstantiated"):
                satisfaction = _pick(rng, (("satisfied", 45), ("basic", 55)))
            t = step(follow_at, "followup", {"satisfaction": satisfaction,
                                             "performed": result != "not_agreed"})
        step(t + _hours(rng, 24), "close")


# --- running the steps --------------------------------------------------------------------------

class _Runner:
    """Takes each planned step through the service the REST route calls."""

    def __init__(self, core, world: _World, *, now: datetime) -> None:
        from alerts.config import load_config

        self.core, self.w, self.now = core, world, now
        self.rules = core.matter_rules
        self.cfg = load_config(core.settings.alert_rules or None)
        self.feeds: dict[str, Any] = {}
        self.leader = "leader"  # the county leader who extends limits (set by seed_matters)

    def run(self, session: Session, m: _Matter, name: str, at: datetime, args: dict) -> None:
        """Take one step of a story at its moment."""
        getattr(self, "_" + name)(session, m, at, **args)

    # --- intake ---------------------------------------------------------------------------------

    def _raw(self, m: _Matter) -> dict:
        """What the window (or a phone, or a feed) sends for the matter."""
        k, w = m.kind, m.words
        raw = {"type": k.type, "category": k.category, "title": k.title.format(**w)[:200],
               "summary": k.summary.format(**w), "request": k.request.format(**w),
               "description": k.summary.format(**w),
               "occurred_at": (m.at - timedelta(days=1)).astimezone(CHINA).isoformat(),
               "severity": 4, "people": max(2, len(m.parties))}
        if k.amount:
            raw["amount"] = w["money"]
        raw["risk"] = "high" if k.category in ("land_acquisition", "labour") and w["n"] > 15 \
            else "medium" if k.type in ("petition",) or k.category in ("medical", "labour") \
            else "low"
        return raw

    def _register(self, session: Session, m: _Matter, at: datetime,
                  closure: str | None = None) -> None:
        from command.matters import service

        raw = {**self._raw(m), "channel": m.channel, "parties": m.parties}
        raw["grid"] = m.grid if m.grid else None
        if m.grid is None:
            lon, lat = self.w.locator.point_in(m.town)
            raw.update(lon=lon, lat=lat)
        if closure == "on_the_spot":
            raw.update(closure=closure, note="值班律师当场解答，告知维权途径，当事人表示满意")
        elif closure == "not_accepted":
            raw.update(closure=closure,
                       note="该诉求已由行政复议程序作出决定，不再重复受理，已告知当事人")
        record, _changes = service.register(
            session, raw, by=self._clerk(m), keyring=self.core.keyring, locator=self.w.locator,
            now=at, idempotency_key=m.key, rules=self.rules)
        m.case_no = record["case_no"]
        self._repeat(session, record["id"], at, m)

    def _field(self, session: Session, m: _Matter, at: datetime,
               closure: str | None = None) -> None:
        from command.incidents.service import Source

        rng = random.Random(m.key)
        lon, lat = self.w.point(m.grid, rng)
        raw = {**self._raw(m), "id": m.key, "lon": lon, "lat": lat, "position": "gps",
               "accuracy_m": round(rng.uniform(4, 25), 1), "parties": m.parties,
               "reporter": m.parties[0]["name"]}
        for key in ("summary", "request", "amount", "risk"):
            raw.pop(key, None)
        if closure:
            raw.update(closure=closure, note="网格员到场调解，双方当场达成一致，矛盾已化解")
        self._ingest(session, m, at, Source(user=self.w.workers[m.grid].name), raw)

    def _feed(self, session: Session, m: _Matter, at: datetime) -> None:
        raw = {**self._raw(m), "id": m.key, "reporter": m.parties[0]["name"],
               "phone": m.parties[0].get("phone")}
        if m.grid:
            raw["lon"], raw["lat"] = self.w.point(m.grid, random.Random(m.key))
        else:
            raw["lon"], raw["lat"] = self.w.locator.point_in(m.town)
        for key in ("summary", "request", "amount", "risk"):
            raw.pop(key, None)
        self._ingest(session, m, at, self._feed_of(session, m.town, at), raw)

    def _ingest(self, session: Session, m: _Matter, at: datetime, source, raw: dict) -> None:
        from command.incidents import service as incidents_service

        outcomes, _new = incidents_service.ingest(session, source, [raw], locator=self.w.locator,
                                                  now=at, keyring=self.core.keyring)
        if outcomes[0].error is not None:
            raise outcomes[0].error
        m.case_no = outcomes[0].incident["case_no"]
        self._repeat(session, outcomes[0].incident["id"], at, m)

    def _feed_of(self, session: Session, town: str, at: datetime):
        """The township's feed (its own, else a disabled history feed, as seed-history does)."""
        from command.demo.history import HISTORY_FEED_REASON
        from command.feeds import service as feeds_service
        from command.feeds.models import feeds

        if town in self.feeds:
            return self.feeds[town]
        rows = session.execute(sa.select(feeds.c.name, feeds.c.revoked_at,
                                         feeds.c.disabled_reason)
                               .where(feeds.c.unit_code == town).order_by(feeds.c.id)).all()
        rows.sort(key=lambda r: r.revoked_at is not None or r.disabled_reason is not None)
        if rows:
            feed = feeds_service.get(session, name=rows[0].name)
        else:
            feed, _token = feeds_service.create(session, name=f"history-{town}", unit_code=town,
                                                now=at)
            session.execute(sa.update(feeds).where(feeds.c.id == feed.id)
                            .values(disabled_reason=HISTORY_FEED_REASON))
        self.feeds[town] = feed
        return feed

    def _repeat(self, session: Session, incident_id: str, at: datetime, m: _Matter) -> None:
        """The risk watch's repeat_party rule on an arriving matter (as `RiskWatch` applies it:
        the live watch does not evaluate rows received long before it reads them)."""
        from alerts import rules
        from command.alerts import service as alerts_service
        from command.matters import numbers, related
        from command.matters.categories import ROLE_LABELS
        from command.orders.service import Work

        county = numbers.prefix(self.w.locator)
        work = Work()
        for party in related.repeat_counts(session, incident_id, now=at,
                                           months=self.cfg.repeat_party.months):
            proposal = rules.repeat_party(
                key=f"repeat_party:{party['key']}", count=party["count"],
                who=related.shown_name(party["name"], party["kind"]),
                role_label=ROLE_LABELS.get(party["role"], party["role"]), cases=party["cases"],
                incidents=party["incidents"], units=[county, m.town], cfg=self.cfg)
            if proposal is not None:
                work.alert(alerts_service.stage_raise(
                    session, key=proposal.key, rule=proposal.rule, level=proposal.level,
                    units=list(proposal.units), incidents=list(proposal.incidents),
                    message=proposal.message, now=at, evidence=incident_id))
        work.finish(session, locator=self.w.locator)

    # --- handling -------------------------------------------------------------------------------

    def _clerk(self, m: _Matter) -> Principal:
        return self.w.clerks[int(m.key[-3:]) % len(self.w.clerks)]

    def _call(self, fn: Callable, session: Session, m: _Matter, at: datetime, body: dict,
              by: Principal) -> dict:
        record, _changes = fn(session, m.case_no, body, by=by, locator=self.w.locator, now=at,
                              rules=self.rules)
        return record

    def _route(self, session: Session, m: _Matter, at: datetime, lead: str, assist: list,
               tier: str, owner: str | None, note: str | None = None) -> None:
        from command.matters import handling

        body = {"lead": lead, "assist": assist, "tier": tier}
        if owner:
            body["owner"] = owner
        if note:
            body["note"] = note
        self._call(handling.route, session, m, at, body, self._clerk(m))

    def _node(self, session: Session, m: _Matter, unit: str) -> str:
        incident_id = session.execute(sa.select(matters.c.incident_id).where(
            matters.c.case_no == m.case_no)).scalar_one()
        return session.execute(
            sa.select(order_nodes.c.id).where(order_nodes.c.incident_id == incident_id,
                                              order_nodes.c.target_code == unit,
                                              order_nodes.c.role.isnot(None))
            .order_by(order_nodes.c.created_at.desc())).scalars().first()

    def _act(self, session: Session, m: _Matter, at: datetime, unit: str, action: str,
             **kwargs) -> None:
        from command.orders import service as orders_service

        orders_service.act(session, node_id=self._node(session, m, unit), action=action,
                           by=self.w.actor(unit), now=at, locator=self.w.locator, **kwargs)

    def _ack(self, session: Session, m: _Matter, at: datetime, unit: str) -> None:
        self._act(session, m, at, unit, "ack", note="已签收，安排专人办理")

    def _return(self, session: Session, m: _Matter, at: datetime, unit: str,
                reason: str) -> None:
        self._act(session, m, at, unit, "return", reason=reason)

    def _progress(self, session: Session, m: _Matter, at: datetime, unit: str,
                  note: str) -> None:
        self._act(session, m, at, unit, "progress", note=note)

    def _session(self, session: Session, m: _Matter, at: datetime, unit: str) -> None:
        from command.matters import handling

        rng = random.Random(f"{m.key}:{at.isoformat()}")
        actor = self.w.actor(unit)
        place = _PLACES.get(unit) or (f"{self.w.name(unit)}调解室" if unit in self.w.town_staff
                                      else f"{self.w.village(m.grid, m.town)}村（社区）调解室")
        mediator = actor.name.split("·")[-1]
        names = [p["name"] for p in m.parties]
        body = {"at": (at - timedelta(hours=rng.uniform(0.5, 2))).isoformat(), "place": place,
                "mediators": [mediator] + ([_name(rng)] if rng.random() < 0.5 else []),
                "attendees": names, "notes": rng.choice(_SESSION_NOTES)}
        self._call(handling.add_session, session, m, at, body, actor)

    def _outcome(self, session: Session, m: _Matter, at: datetime, unit: str,
                 result: str) -> None:
        from command.matters import handling

        body: dict = {"result": result}
        w, k = m.words, m.kind
        if result == "agreed":
            names = [p["name"] for p in m.parties]
            other = names[1] if len(names) > 1 else "对方"
            amount = int(round((w["money"] or 0) * random.Random(m.key).uniform(0.55, 1.0), -2))
            perform = (at + timedelta(days=15 if amount else 10)).astimezone(CHINA).date()
            if amount:
                terms = (f"一、{other}自愿于{perform:%Y年%m月%d日}前一次性支付{names[0]}{amount}元；"
                         f"二、款项付清后，双方就本纠纷再无其他争议。")
                body["amount"] = amount
            else:
                terms = (f"一、{other}于{perform:%Y年%m月%d日}前{w['fix']}；"
                         f"二、双方互谅互让，今后和睦相处，不再因此事发生争执。")
            body.update(terms=terms, perform_by=perform.isoformat(),
                        note="经调解，双方自愿达成协议，签订人民调解协议书")
        elif result == "not_agreed":
            body.update(guided_to=_GUIDED.get(k.category, "litigation"), note=_NOTES[result])
        else:
            body["note"] = _NOTES[result]
        self._call(handling.outcome, session, m, at, body, self.w.actor(unit))

    def _confirm(self, session: Session, m: _Matter, at: datetime, state: str) -> None:
        from command.matters import handling

        body = {"state": state, "at": at.isoformat(), "court": _COURT}
        self._call(handling.confirm, session, m, at, body, self._clerk(m))

    def _followup(self, session: Session, m: _Matter, at: datetime, satisfaction: str,
                  performed: bool) -> None:
        from command.matters import handling

        notes = {"satisfied": "当事人对办理结果表示满意", "basic": "当事人表示基本满意",
                 "unsatisfied": "当事人反映对方未按协议履行，要求继续督促"}
        body = {"performed": performed, "satisfaction": satisfaction,
                "note": notes[satisfaction]}
        self._call(handling.followup, session, m, at, body, self._clerk(m))

    def _extend(self, session: Session, m: _Matter, at: datetime, days: int,
                reason: str) -> None:
        from command.matters import handling

        leader = Principal(self.leader, "leader")
        self._call(handling.extend, session, m, at, {"days": days, "reason": reason}, leader)

    def _close(self, session: Session, m: _Matter, at: datetime) -> None:
        from command.incidents import loop

        incident_id = session.execute(sa.select(matters.c.incident_id).where(
            matters.c.case_no == m.case_no)).scalar_one()
        loop.transition(session, incident_id, to="closed", by=self._clerk(m), note="结案归档",
                        now=at, locator=self.w.locator)


# --- the entry point ----------------------------------------------------------------------------

def _watch_moments(plan: list[_Matter], rules, now: datetime) -> list[datetime]:
    """When the legal clock's watch has something to raise in these stories before `now`: a
    clock reaching its warning share or its limit before the matter concludes (its 督办 is
    raised then and resolved by the outcome). At most one a day (the day's last: a watch a
    little late, never early); the watch at `now` raises what is open then, the reminders of
    judicial confirmation's 30-day window included (past ones would have expired by now)."""
    found: dict[date, datetime] = {}
    warn = 1 - rules.warn_share
    for m in plan:
        k = m.kind
        points: list[tuple[datetime, float, datetime | None]] = []
        ends = next((at for at, name, _a in m.steps if name == "outcome"), None)
        signed = next((at for at, name, _a in m.steps if name == "ack"), None)
        if k.type == "petition":
            points.append((m.at, rules.notify_days, signed or ends))
            if signed is not None:
                extra = 30 if any(name == "extend" for _t, name, _a in m.steps) else 0
                points.append((signed, rules.limit_days(k.type, k.category) + extra, ends))
        elif m.fate not in ("spot", "refused"):
            points.append((m.at, rules.limit_days(k.type, k.category), ends))
        for start, days, stop in points:
            for share in (warn, 1.0):
                at = start + timedelta(days=days * share, minutes=5)
                if at < now and (stop is None or at < stop):
                    day = at.astimezone(CHINA).date()
                    found[day] = max(found.get(day, at), at)
    return sorted(found.values())


def stored_keys(session: Session) -> set[str]:
    """The keys of the demo's matters stored already (the window's and the phones'/feeds')."""
    like = KEY_PREFIX + "%"
    keys = set(session.execute(sa.select(matters.c.idempotency_key).where(
        matters.c.idempotency_key.like(like))).scalars())
    keys |= set(session.execute(sa.select(incidents.c.source_id).where(
        incidents.c.source_id.like(like))).scalars())
    return keys


def _leaders(session: Session, now: datetime) -> tuple[str, ...]:
    """The county leaders who own difficult matters (包案): the stored ones, else the demo's."""
    from command.users import service as users_service
    from command.users.models import users

    names = tuple(session.execute(sa.select(users.c.name).where(
        users.c.role == "leader", users.c.disabled_at.is_(None)).order_by(users.c.name)
    ).scalars())
    if names:
        return names
    import secrets

    users_service.create(session, name="leader", role="leader", unit_code=None,
                         password=secrets.token_urlsafe(12), now=now)
    return ("leader",)


def seed_matters(core, *, now: datetime | None = None, seed: int = 0,
                 strict: bool = False) -> Summary:
    """Write the demo's matters of the `DAYS` days before `now` (skip those stored already).

    A step the services refuse is logged and ends that matter's story (`strict`: raised).
    """
    from command.matters import clock

    started = time.perf_counter()
    now = core.clock.now() if now is None else now
    summary = Summary()
    with core.write() as session, session.begin():
        locator = core.units.current(session)
        world = _World(session, locator, seed=seed)
        if not world.towns:
            return summary
        stored = stored_keys(session)
        leaders = _leaders(session, now)
    planner = _Planner(world, seed=seed, now=now, rules=core.matter_rules)
    planner.leaders = leaders
    plan = planner.plan()
    summary.planned = len(plan)
    todo = [m for m in plan if m.key not in stored]
    summary.skipped = len(plan) - len(todo)
    if not todo:
        summary.seconds = time.perf_counter() - started
        return summary
    runner = _Runner(core, world, now=now)
    runner.leader = leaders[0]
    steps = sorted(((at, j, m, name, args) for m in todo for j, (at, name, args)
                    in enumerate(m.steps) if at <= now),
                   key=lambda s: (s[0], s[2].key, s[1]))
    # the legal clock's watch runs when a clock of these matters reaches its warning share or
    # its limit, or an agreement's window for judicial confirmation does (the scheduler would
    # notice within its period), and at now; one transaction per watch
    moments = _watch_moments(todo, core.matter_rules, now) + [now]
    broken: set[str] = set()
    i = 0
    for morning in moments:
        with core.write() as session, session.begin():
            while i < len(steps) and steps[i][0] <= morning:
                at, _j, m, name, args = steps[i]
                i += 1
                if m.key in broken:
                    continue
                try:
                    with session.begin_nested():
                        runner.run(session, m, name, at, args)
                    summary.steps += 1
                except Exception as exc:  # noqa: BLE001 - one refused step ends one story
                    if strict:
                        raise
                    broken.add(m.key)
                    summary.failed.append(f"{m.key} {name}: {exc}")
                    log.warning("demo matter %s: step %s refused: %s", m.key, name, exc)
            clock.check(session, now=morning, rules=core.matter_rules, locator=world.locator)
    summary.added = len({m.key for m in todo if m.case_no})
    summary.seconds = time.perf_counter() - started
    return summary


__all__ = ["seed_matters", "stored_keys", "credit_code", "org_code", "REGION", "KEY_PREFIX",
           "DAYS", "Summary"]
