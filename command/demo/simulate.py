"""A feed simulator: realistic reports for the demo county, sent over Socket.IO at a steady rate.

`ReportFactory` makes reports (types in plausible proportions, Chinese titles and descriptions,
points inside township polygons, a little noise: ~1 % resends and ~1 % malformed reports).
`run` connects to a server as a feed and sends them, counting what the acks say.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import shapely

from command.clock import SHANGHAI

log = logging.getLogger(__name__)

# Shares per type (out of 1000): disputes and petitions lead, mass incidents are rare.
TYPE_WEIGHTS = {
    "dispute": 330, "petition": 210, "complaint": 160, "legal": 90, "psych": 50,
    "emergency": 55, "public_safety": 55, "other": 42, "mass": 8,
}

# Severity shares (1 = Ⅰ级 most severe … 4 = Ⅳ级 一般) by type.
_SEVERITY = {
    "default": ((4, 880), (3, 100), (2, 18), (1, 2)),
    "consult": ((4, 970), (3, 30)),
    "urgent": ((4, 620), (3, 290), (2, 80), (1, 10)),
    "mass": ((3, 700), (2, 300)),
}
_SEVERITY_OF = {"emergency": "urgent", "public_safety": "urgent", "mass": "mass",
                "legal": "consult", "psych": "consult"}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁沈任姚卢傅钟姜崔谭廖范汪陆金石戴贾韦夏邱方侯邹熊孟秦白江阎薛尹段雷黎史龙陶贺顾毛郝龚邵万钱严覃武"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文海燕春梅晓东雪林波斌宇浩凯俊鹏飞玲琳欣怡子涵晨阳佳慧"
MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151",
                   "152", "153", "155", "157", "158", "159", "166", "173", "177", "180", "181",
                   "182", "183", "186", "187", "188", "189", "191", "198", "199")

# Fillers for the templates below.
_WORDS = {
    "village": ("青山村", "白溪村", "桃源村", "杨家村", "柳塘村", "松岭村", "竹园村", "梅坞村",
                "金桥村", "石塘村", "龙湾村", "凤林村", "马岙村", "黄畈村", "高田村", "新埠村"),
    "xiaoqu": ("锦绣花园", "阳光小区", "翠苑小区", "滨江名苑", "金桥新村", "学府华庭", "春晖苑",
               "丹桂园", "望江府", "紫荆花园", "湖滨雅苑", "和平小区"),
    "company": ("某电子厂", "某纺织公司", "某建筑工地", "某服装厂", "某物流公司", "某五金厂",
                "某装修公司", "某食品厂", "某汽配厂", "某家具厂"),
    "road": ("城关大道", "解放路", "人民路", "环城南路", "S203省道", "G104国道", "滨江路",
             "工业大道", "文化路", "新华路"),
    "hospital": ("县人民医院", "县中医院", "乡镇卫生院", "县妇幼保健院"),
    "school": ("县第一中学", "实验小学", "城关中学", "镇中心小学", "职业技术学校"),
}

# type -> [(title, description)]; {place} is the township, the other fields come from _WORDS
# and a few numbers drawn per report.
TEMPLATES: dict[str, list[tuple[str, str]]] = {
    "dispute": [
        ("{village}两户村民因宅基地界址发生纠纷",
         "{village}村民{name}与邻居{name2}因宅基地界址问题多次发生口角，双方情绪激动。"
         "网格员已到场劝解，建议{place}司法所组织调解。"),
        ("{village}邻里因排水沟堵塞产生矛盾",
         "邻居在自家门前填埋排水沟，雨天污水倒灌{name}家中，双方多次协商未果，请求村调委会调处。"),
        ("{company}拖欠{n}名工人工资约{money}万元",
         "{n}名务工人员反映{company}拖欠{months}个月工资共约{money}万元，负责人联系不上。"
         "已告知人社部门劳动保障监察大队介入，并引导通过法律援助维权。"),
        ("{village}村民对征地拆迁补偿标准有异议",
         "{village}部分村民认为征地拆迁补偿标准偏低，安置方案不透明，要求公开补偿明细。"
         "{place}已安排专人解释政策，拟组织会商。"),
        ("{xiaoqu}业主与物业公司因{fee}发生争执",
         "{xiaoqu}多名业主反映物业公司{fee}，双方在物业服务中心发生争执，"
         "社区已介入协调，建议住建部门指导。"),
        ("夫妻因离婚财产分割发生矛盾",
         "{name}与配偶因离婚财产分割及子女抚养问题长期争吵，一方情绪激动，"
         "请求{place}人民调解委员会调解，必要时引导诉讼。"),
        ("子女赡养老人纠纷",
         "{village}一名{age}岁老人反映子女互相推诿、不履行赡养义务，网格员已走访，拟召集家庭成员调解。"),
        ("患者家属对{hospital}诊疗结果不满",
         "患者家属{n}人在{hospital}门诊大厅聚集，对诊疗结果有异议，要求赔偿。"
         "医调委已到场，引导通过医疗纠纷调解程序解决。"),
        ("两村因山林权属边界发生争议",
         "{village}与相邻村因一片山林权属边界存在争议，双方村民在山上发生推搡。"
         "{place}自然资源所调取确权资料，组织双方现场勘界。"),
        ("土地流转合同租金未按期支付",
         "{village}{n}户村民反映承包大户未按合同支付土地流转租金约{money}万元，请求协调。"),
        ("{xiaoqu}楼上漏水引发邻里纠纷",
         "{xiaoqu}楼上住户卫生间漏水致楼下天花板受损，双方对维修费用分担有分歧，社区调解员正在协调。"),
    ],
    "petition": [
        ("反映低保资格认定问题",
         "{name}来访反映家庭困难，申请低保未获批准，对认定结果有异议，要求重新核查。"),
        ("反映征地补偿款未足额发放",
         "{village}村民{name}反映本组征地补偿款未足额发放到户，要求公开账目。"),
        ("反映安置房交付延期",
         "{village}拆迁户代表反映安置房交付已延期{months}个月，过渡费发放不及时，要求明确交房时间。"),
        ("反映农村道路损坏未修复",
         "{village}村民反映村道路面严重破损，雨天无法通行，多次反映未解决。"),
        ("反映养老保险待遇核定问题",
         "{name}（{age}岁）反映养老保险缴费年限核定有误，影响待遇领取，要求人社部门复核。"),
        ("联名信访反映厂房噪音扰民",
         "{village}{n}名村民联名反映附近厂房夜间生产噪音扰民，影响休息，要求环保部门查处。"),
        ("反映拖欠工程款问题",
         "包工头{name}反映某工程项目拖欠工程款约{money}万元，导致无法支付工人工资。"),
        ("反映历史遗留土地确权问题",
         "{village}村民{name}反映其家庭承包地确权面积与实际不符，要求重新测量。"),
    ],
    "complaint": [
        ("投诉餐饮店油烟扰民",
         "{xiaoqu}居民投诉楼下餐饮店油烟直排，影响生活，要求综合执法部门处理。"),
        ("举报违法建房",
         "群众举报{village}有村民未经审批在耕地上建房，已拍照取证，请求核查。"),
        ("投诉夜间施工噪音",
         "{xiaoqu}附近工地夜间22时后仍在施工，噪音扰民，居民要求依法查处。"),
        ("举报非法采砂",
         "群众举报有人夜间在溪道内非法采砂，破坏河道，请求水利和公安部门联合查处。"),
        ("投诉小区垃圾清运不及时",
         "{xiaoqu}业主投诉垃圾清运不及时，异味严重，社区已联系环卫处理。"),
        ("举报超市销售过期食品",
         "{name}举报{place}某超市销售过期食品，已保留购物小票，请求市场监管部门查处。"),
        ("投诉校外培训机构退费难",
         "多名家长投诉某校外培训机构停业后拒不退费，涉及金额约{money}万元。"),
        ("举报电信诈骗线索",
         "{name}举报接到冒充客服的诈骗电话，提供了对方号码和收款账户，请求公安机关核查。"),
    ],
    "legal": [
        ("咨询{topic}相关法律问题",
         "{name}来电咨询{topic}相关法律规定，值班律师已解答，并告知可申请法律援助。"),
    ],
    "psych": [
        ("群众情绪低落需心理疏导",
         "{name}因家庭变故情绪低落，多次表示生活没有希望，网格员请求心理服务站跟进疏导。"),
        ("涉访人员情绪激动需心理干预",
         "一名长期信访人员在接访时情绪激动，心理咨询师已介入疏导，建议持续关注。"),
        ("学生考试压力大需心理辅导",
         "家长反映{school}一名学生考试压力大、失眠焦虑，请求心理健康服务。"),
        ("独居老人心理关爱",
         "{village}一名{age}岁独居老人长期孤独抑郁，网格员申请纳入心理关爱对象定期走访。"),
    ],
    "emergency": [
        ("{road}发生两车相撞交通事故",
         "{road}与乡道交叉口发生两车相撞事故，{injured}人受伤，交警、120已赶赴现场，道路部分拥堵。"),
        ("{village}一民房起火",
         "{village}一处民房发生火灾，火势较大，消防救援队已出动，正在疏散周边群众，暂无人员被困报告。"),
        ("暴雨致{village}道路积水",
         "持续强降雨导致{village}低洼路段积水约{depth}厘米，部分农田被淹，{place}已组织人员巡查转移。"),
        ("{village}后山发生小型山体滑坡",
         "强降雨后{village}后山发生小型山体滑坡，堵塞村道，已设置警戒，转移受威胁群众{n}人。"),
        ("{xiaoqu}发生燃气泄漏",
         "{xiaoqu}一住户家中燃气泄漏，已关闭总阀、疏散楼内居民，燃气公司抢修人员已到场。"),
        ("{xiaoqu}电梯困人",
         "{xiaoqu}一部电梯故障停在两层之间，{injured}人被困，维保单位和消防已到场救援。"),
        ("溪边发生溺水险情",
         "{village}溪边有人落水，周边群众已施救，120正在赶来。"),
    ],
    "public_safety": [
        ("{school}疑似食物中毒",
         "{school}{n}名学生午餐后出现腹痛、呕吐症状，已送{hospital}救治，市场监管、卫健部门赶赴调查。"),
        ("{road}危化品运输车辆泄漏",
         "{road}一辆危化品运输车辆发生少量泄漏，已封闭路段，应急管理和消防部门正在处置。"),
        ("{xiaoqu}发生高空抛物",
         "{xiaoqu}有人从高层抛下物品，险些砸中行人，已报警，社区正在排查。"),
        ("夜宵摊酒后滋事",
         "{place}一夜宵摊有人酒后滋事，发生打斗，{injured}人受轻伤，派出所民警已到场控制。"),
        ("老人疑遭电信诈骗",
         "{village}一名{age}岁老人疑被冒充公检法诈骗，已转账{money}万元，派出所已受理并紧急止付。"),
        ("{village}发现走失老人",
         "{village}网格员发现一名神志不清的走失老人，已联系派出所查找家属。"),
    ],
    "mass": [
        ("{n}余名工人聚集讨薪",
         "{company}{n}余名工人在厂门口聚集，讨要拖欠工资约{money}万元，情绪激动。"
         "{place}和人社、公安部门已到场稳控，正在与企业负责人协商。"),
        ("群众聚集上访反映征地补偿",
         "{village}{n}余名村民聚集到{place}政府，反映征地补偿款问题，要求面见领导。"
         "已安排接访，稳控现场秩序。"),
        ("业主聚集维权要求交房",
         "{xiaoqu}{n}余名业主在售楼处聚集维权，要求开发商按期交房，已有人员拉横幅。"),
        ("村民阻挠项目施工",
         "{village}{n}余名村民以补偿不到位为由阻挠项目施工，现场对峙，派出所和{place}干部已到场。"),
    ],
    "other": [
        ("{road}路灯损坏",
         "{road}一段路灯连续多日不亮，夜间通行存在安全隐患，请求维修。"),
        ("流浪人员需救助",
         "{place}车站附近有一名流浪人员露宿，天气转冷，请求民政部门救助。"),
        ("{xiaoqu}窨井盖缺失",
         "{xiaoqu}门口窨井盖缺失，存在安全隐患，已临时设置警示。"),
        ("{village}流浪犬伤人隐患",
         "{village}有多条流浪犬出没，已有村民被追咬，请求处理。"),
    ],
}
_FEES = ("物业费上涨", "电梯长期故障未修", "停车位收费", "公共收益分配不公开", "绿化被改作停车场")
_TOPICS = ("离婚财产分割", "工伤认定", "遗产继承", "民间借贷", "劳动合同解除", "交通事故赔偿",
           "房屋租赁", "土地承包经营权")

# How far back `occurred_at` lies, in seconds (a few seconds to a quarter of an hour).
AGE_RANGE = (5.0, 900.0)


@dataclass(frozen=True)
class Area:
    """Where reports can come from: a polygon (or, without one, a grid code the server places)."""

    code: str
    name: str
    geometry: Any = None
    weight: float = 1.0
    villages: tuple[str, ...] = ()  # village/community names inside, for the texts


class ReportFactory:
    """Makes realistic reports inside some areas; deterministic for a given seed and `now`.

    Parameters
    ----------
    areas : list of Area, a GeoDataFrame of units, or a GeoJSON FeatureCollection
        Townships are used when present (else grids, else whatever is given).
    seed : int, optional
        Seed for the random generator; None draws one.
    id_prefix : str, optional
        Prefix of the report ids; default derived from the random generator.
    malformed, resend : float
        Shares of malformed reports and of resends of an earlier report.

    Examples
    --------
    >>> f = ReportFactory([Area("T", "某镇", shapely.box(120, 30, 120.1, 30.1))], seed=1,
    ...                   malformed=0, resend=0)
    >>> r = f.next(now=datetime(2026, 1, 1, tzinfo=timezone.utc))
    >>> 120 <= r["lon"] <= 120.1 and r["type"] in TYPE_WEIGHTS
    True
    """

    def __init__(self, areas, *, seed: int | None = None, id_prefix: str | None = None,
                 malformed: float = 0.01, resend: float = 0.01, clock=None) -> None:
        self.areas = areas_from(areas)
        if not self.areas:
            raise ValueError("a ReportFactory needs at least one area")
        self.rng = random.Random(seed)
        self.id_prefix = id_prefix or f"sim-{self.rng.getrandbits(32):08x}"
        self.malformed = malformed
        self.resend = resend
        self._clock = clock
        self._n = 0
        self._recent: deque[dict] = deque(maxlen=50)
        self._types = list(TYPE_WEIGHTS)
        self._type_cum = _cumulative(TYPE_WEIGHTS.values())
        self._area_cum = _cumulative(a.weight for a in self.areas)
        for a in self.areas:
            if a.geometry is not None:
                shapely.prepare(a.geometry)

    def next(self, *, now: datetime | None = None, age: float | None = None) -> dict:
        """Return the next report (now and then a resend or a malformed one)."""
        roll = self.rng.random()
        if roll < self.resend and self._recent:
            return dict(self.rng.choice(self._recent))
        now = now or self._now()
        report = self._report(now, age)
        if roll > 1.0 - self.malformed:
            return self._break(report, now)
        self._recent.append(report)
        return dict(report)

    def batch(self, n: int, *, now: datetime | None = None,
              ages: tuple[float, float] | None = None) -> list[dict]:
        """Return `n` reports; `ages` (seconds) spreads their occurred_at over a longer past."""
        now = now or self._now()
        return [self.next(now=now, age=None if ages is None else self.rng.uniform(*ages))
                for _ in range(n)]

    # --- building blocks ---------------------------------------------------------------------

    def _now(self) -> datetime:
        return self._clock.now() if self._clock is not None else datetime.now(timezone.utc)

    def _report(self, now: datetime, age: float | None) -> dict:
        rng = self.rng
        self._n += 1
        kind = self._types[_pick(rng, self._type_cum)]
        area = self.areas[_pick(rng, self._area_cum)]
        words = self._words(area)
        people = self._people(kind, words)
        title, description = rng.choice(TEMPLATES[kind])
        levels, weights = zip(*_SEVERITY[_SEVERITY_OF.get(kind, "default")])
        severity = rng.choices(levels, weights)[0]
        if age is None:
            age = rng.uniform(*AGE_RANGE)
        occurred = (now - timedelta(seconds=age)).astimezone(SHANGHAI)
        report: dict[str, Any] = {
            "id": f"{self.id_prefix}-{self._n:07d}",
            "type": kind if rng.random() < 0.7 else _label(kind),
            "occurred_at": occurred.isoformat(timespec="seconds"),
            "title": title.format(**words)[:200],
            "description": description.format(**words),
            "severity": severity,
            "people": people,
        }
        if rng.random() < 0.1:  # some feeds send local time without a zone (= Asia/Shanghai)
            report["occurred_at"] = occurred.replace(tzinfo=None).isoformat(timespec="seconds")
        if area.geometry is not None:
            report["lon"], report["lat"] = self._point(area.geometry)
        else:
            report["grid"] = area.code
        if kind not in ("emergency", "public_safety") or rng.random() < 0.6:
            report["reporter"] = self._reporter()
            report["phone"] = self._phone()
        return report

    def _words(self, area: Area) -> dict:
        rng = self.rng
        n = rng.randint(3, 40)
        words = {
            **{key: rng.choice(values) for key, values in _WORDS.items()},
            "place": area.name, "name": self._name(), "name2": self._name(), "n": n,
            "money": rng.choice((1.2, 3.5, 8, 12.6, 25, 46, 80, 120)), "months": rng.randint(2, 14),
            "age": rng.randint(62, 91), "injured": rng.randint(1, 4), "depth": rng.randint(20, 80),
            "fee": rng.choice(_FEES), "topic": rng.choice(_TOPICS),
        }
        if area.villages:
            words["village"] = rng.choice(area.villages)
        return words

    def _people(self, kind: str, words: dict) -> int:
        return draw_people(self.rng, kind, words)

    def _point(self, geometry) -> tuple[float, float]:
        minx, miny, maxx, maxy = geometry.bounds
        for _ in range(10_000):
            lon, lat = self.rng.uniform(minx, maxx), self.rng.uniform(miny, maxy)
            if shapely.contains_xy(geometry, lon, lat):
                return round(lon, 6), round(lat, 6)
        point = shapely.point_on_surface(geometry)  # a sliver: fall back to a sure point
        return round(point.x, 6), round(point.y, 6)

    def _name(self) -> str:
        rng = self.rng
        given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
        return rng.choice(SURNAMES) + given

    def _reporter(self) -> str:
        rng = self.rng
        roll = rng.random()
        surname = rng.choice(SURNAMES)
        if roll < 0.35:
            return surname + rng.choice(("先生", "女士"))
        if roll < 0.6:
            return "网格员" + self._name()
        if roll < 0.7:
            return surname + "某"
        return self._name()

    def _phone(self) -> str:
        return self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10 ** 8):08d}"

    def _break(self, report: dict, now: datetime) -> dict:
        """Make a report the server must refuse (missing title, severity 7, unknown type …)."""
        bad = dict(report)
        how = self.rng.randrange(7)
        if how == 0:
            del bad["title"]
        elif how == 1:
            bad["severity"] = 7
        elif how == 2:
            bad["type"] = "天气预报"
        elif how == 3:
            bad["occurred_at"] = "昨天下午三点"
        elif how == 4:
            bad["people"] = -3
        elif how == 5:
            bad.pop("lat", None)
            bad.pop("grid", None)
            bad.setdefault("lon", 120.2)
        else:
            bad["occurred_at"] = (now + timedelta(days=1)).astimezone(SHANGHAI).isoformat(
                timespec="seconds")
        return bad


def _cumulative(weights: Iterable[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += float(w)
        out.append(total)
    return out


def _pick(rng: random.Random, cumulative: list[float]) -> int:
    x = rng.random() * cumulative[-1]
    lo, hi = 0, len(cumulative) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] > x:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _label(kind: str) -> str:
    from command.incidents.types import TYPE_LABELS

    return TYPE_LABELS[kind]


def areas_from(source) -> list[Area]:
    """Areas from a list of Area, a GeoDataFrame of units or a GeoJSON FeatureCollection."""
    if isinstance(source, dict) and source.get("type") == "FeatureCollection":
        rows = [{**(f.get("properties") or {}), "geometry": shapely.geometry.shape(f["geometry"])}
                for f in source.get("features", []) if f.get("geometry")]
    elif hasattr(source, "geometry") and hasattr(source, "itertuples"):  # a GeoDataFrame
        if source.crs is not None and source.crs.to_epsg() != 4326:
            source = source.to_crs(4326)
        rows = [{"code": r.code, "name": r.name, "level": getattr(r, "level", None),
                 "parent": getattr(r, "parent", None), "geometry": r.geometry}
                for r in source.itertuples(index=False)]
    else:
        return [a if isinstance(a, Area) else Area(**a) for a in source]
    for level in ("township", "grid", "county", None):
        chosen = [r for r in rows if level is None or r.get("level") == level]
        chosen = [r for r in chosen if r["geometry"] is not None and not r["geometry"].is_empty]
        if chosen:
            break
    villages: dict[str, list[str]] = {}
    for r in rows:
        name = str(r.get("name") or "")
        if r.get("level") == "grid" and r.get("parent") and name.endswith("村网格"):
            villages.setdefault(str(r["parent"]), []).append(name.removesuffix("网格"))
    # Urban streets (街道) see more matters per km² than rural towns.
    return [Area(str(r["code"]), str(r.get("name") or r["code"]), r["geometry"],
                 r["geometry"].area * (3.0 if str(r.get("name", "")).endswith("街道") else 1.0),
                 tuple(villages.get(str(r["code"]), ())))
            for r in chosen]


# --- sending --------------------------------------------------------------------------------------

@dataclass
class Stats:
    """What the server answered while a simulator ran."""

    connected: bool = False
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter = field(default_factory=Counter)
    errors: int = 0  # reports without an answer (connection lost, timeout)
    reason: str | None = None

    def count(self, ack: Any, n: int = 1) -> None:
        """Tally an ack (one object, a list of them, or one error for a whole list of `n`)."""
        if isinstance(ack, list):
            for item in ack:
                self.count(item)
            return
        if not isinstance(ack, dict):
            self.errors += n
        elif ack.get("ok"):
            if ack.get("duplicate"):
                self.duplicates += n
            else:
                self.accepted += n
        else:
            self.rejected[(ack.get("error") or {}).get("code", "unknown")] += n

    def summary(self) -> str:
        """One line, e.g. 'sent 100, accepted 97, duplicates 1, rejected 2 (missing_field 1, …)'."""
        if not self.connected:
            return f"not connected: {self.reason or 'unknown reason'}"
        total = sum(self.rejected.values())
        line = f"sent {self.sent}, accepted {self.accepted}, duplicates {self.duplicates}, " \
               f"rejected {total}"
        if total:
            line += " (" + ", ".join(f"{code} {n}" for code, n in sorted(self.rejected.items())) + ")"
        if self.errors:
            line += f", unanswered {self.errors}"
        if self.reason:
            line += f"; {self.reason}"
        return line


class Sender:
    """One Socket.IO feed connection with a bounded number of unanswered emits (`run` paces
    it; the demo sends on its own schedule)."""

    def __init__(self, url: str, token: str, stats: Stats, max_in_flight: int) -> None:
        import socketio

        self.stats = stats
        self.max_in_flight = max_in_flight
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.5,
                                   reconnection_delay_max=5, handle_sigint=False)
        self._url = url
        self._token = token
        self._lock = threading.Condition()
        self._pending: dict[int, int] = {}  # emit number -> reports in it
        self._next = 0
        self._refused: str | None = None
        self.sio.on("connect_error", self._on_connect_error, namespace="/feed")
        self.sio.on("disconnect", self._on_disconnect, namespace="/feed")

    def connect(self, timeout: float = 10.0) -> bool:
        import socketio

        try:
            self.sio.connect(self._url, namespaces=["/feed"], transports=["websocket"],
                             auth={"token": self._token}, wait_timeout=timeout)
        except socketio.exceptions.ConnectionError as exc:
            if self.sio.failed_namespaces and self._refused:  # the server said no
                self.stats.reason = self._refused
            else:
                self._refused = None
                self.stats.reason = f"cannot connect to {self._url}: {exc}"
            self.close()
            return False
        self.stats.connected = True
        return True

    def _on_connect_error(self, data=None) -> None:
        if not isinstance(data, dict):  # a transport error: the client keeps retrying
            return
        self._refused = f"refused: {data.get('message') or 'connection refused'}"
        if self.stats.connected:  # a reconnect was refused (token revoked): stop sending
            self.stats.reason = self._refused

    def _on_disconnect(self, reason=None) -> None:
        with self._lock:  # acks of what was in flight will never come
            lost = sum(self._pending.values())
            self._pending.clear()
            self.stats.errors += lost
            self._lock.notify_all()
        if lost:
            log.warning("connection lost with %d reports unanswered; reconnecting", lost)

    def send(self, body, stop: threading.Event) -> bool:
        """Emit one report or a list; wait while too many are unanswered; False when stopping."""
        n = len(body) if isinstance(body, list) else 1
        with self._lock:
            while sum(self._pending.values()) >= self.max_in_flight and not stop.is_set():
                self._lock.wait(0.5)
            if stop.is_set():
                return False
            number = self._next
            self._next += 1
            self._pending[number] = n
        while not self.sio.namespaces.get("/feed"):  # reconnecting
            if stop.wait(0.2) or (self._refused and self.stats.reason == self._refused):
                with self._lock:
                    self._pending.pop(number, None)
                return False
        try:
            self.sio.emit("report", body, namespace="/feed",
                          callback=lambda *ack: self._acked(number, n, ack[0] if ack else None))
        except Exception as exc:  # noqa: BLE001 - dropped between the check and the emit
            log.debug("emit failed: %s", exc)
            with self._lock:
                if self._pending.pop(number, None) is not None:
                    self.stats.errors += n
            return not stop.is_set()
        with self._lock:
            self.stats.sent += n
        return True

    def _acked(self, number: int, n: int, ack) -> None:
        with self._lock:
            if self._pending.pop(number, None) is None:
                return  # counted as lost already
            self.stats.count(ack, n)
            self._lock.notify_all()

    def drain(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for outstanding acks; count the rest as unanswered."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending and time.monotonic() < deadline:
                self._lock.wait(max(0.0, min(0.2, deadline - time.monotonic())))
            self.stats.errors += sum(self._pending.values())
            self._pending.clear()

    def close(self) -> None:
        try:
            self.sio.disconnect()
        except Exception:  # noqa: BLE001 - closing anyway
            pass


def fetch_areas(url: str, token: str | None = None, timeout: float = 10.0) -> list[Area]:
    """The server's townships (with polygons) or, lacking geometry, its grid codes."""
    import requests

    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        collection = requests.get(f"{base}/api/v1/units", params={"geometry": "1"},
                                  headers=headers, timeout=timeout).json()
        areas = areas_from(collection) if isinstance(collection, dict) else []
    except (requests.RequestException, ValueError):
        areas = []
    if areas:
        return areas
    units = requests.get(f"{base}/api/v1/units", headers=headers, timeout=timeout).json()
    grids = [Area(u["code"], u["name"]) for u in units if u.get("level") == "grid"]
    if not grids:
        raise RuntimeError(f"{base} has no township polygons and no grids to report from")
    return grids


def run(url: str, token: str, *, rate: float = 2.0, count: int | None = None,
        seed: int | None = None, factory: ReportFactory | None = None, batch: int = 1,
        max_in_flight: int | None = None, stop: threading.Event | None = None,
        poisson: bool = False, initial: list | None = None) -> Stats:
    """Connect as a feed and send reports at `rate` per second until `count` or Ctrl+C.

    `initial` reports (if any) are sent first as one list, outside the pacing.
    """
    stats = Stats()
    stop = stop or threading.Event()
    limit = max_in_flight or max(64, int(rate * 5), batch * 4)
    sender = Sender(url, token, stats, limit)
    if not sender.connect():
        return stats
    try:
        if factory is None:
            factory = ReportFactory(fetch_areas(url, token), seed=seed,
                                    id_prefix=f"sim-{uuid.uuid4().hex[:10]}")
        if initial:
            for start in range(0, len(initial), 1000):
                sender.send(initial[start:start + 1000], stop)
        _pace(sender, factory, rate=rate, count=count, batch=max(1, batch), stop=stop,
              poisson=poisson)
        sender.drain(10.0)
    except KeyboardInterrupt:
        stop.set()
        sender.drain(3.0)
    except Exception as exc:  # noqa: BLE001 - reported in the stats, the caller decides
        stats.reason = f"stopped: {exc}"
        log.warning("simulator stopped", exc_info=True)
        sender.drain(3.0)
    finally:
        sender.close()
    return stats


def _pace(sender: Sender, factory: ReportFactory, *, rate: float, count: int | None,
          batch: int, stop: threading.Event, poisson: bool) -> None:
    """Emit on a schedule of `rate` reports/s; a late start does not make a burst."""
    left = math.inf if count is None else count
    due = time.monotonic()
    rng = random.Random(factory.rng.random())
    while left > 0 and not stop.is_set():
        n = int(min(batch, left))
        body = factory.batch(n) if batch > 1 else factory.next()
        if not sender.send(body, stop):
            break
        left -= n
        if rate and rate > 0:
            step = n / rate
            due += rng.expovariate(1.0 / step) if poisson else step
            now = time.monotonic()
            if due < now - 1.0:  # fell behind (blocked on acks): do not catch up in a burst
                due = now
            if due > now and stop.wait(due - now):
                break


def draw_people(rng: random.Random, kind: str, words: dict) -> int:
    """How many people a report of `kind` involves (a mass one also fills "{n}余名" in `words`)."""
    if kind == "mass":
        people = rng.randint(30, 300)
        words["n"] = max(30, people // 10 * 10)  # "{n}余名"
        return people
    if kind in ("legal", "psych", "complaint"):
        return 1
    if kind in ("emergency", "public_safety"):
        return rng.randint(0, 8)
    return rng.randint(1, 6)
