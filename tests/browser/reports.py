"""Realistic-looking reports for the wall screen tests (positions inside the demo county)."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

import shapely

from layers.demo import demo_county

CST = timezone(timedelta(hours=8))
TYPES = ("emergency", "mass", "public_safety", "dispute", "petition", "complaint", "legal",
         "psych", "other")
WEIGHTS = (6, 3, 5, 30, 18, 20, 8, 4, 6)
TITLES = {
    "emergency": ("厂房起火，现场有浓烟", "货车侧翻占用车道", "河道水位上涨漫过堤坝", "燃气管道泄漏"),
    "mass": ("多名工人聚集讨薪", "村民聚集反映征地补偿", "业主聚集反映交房延期"),
    "public_safety": ("商场消防通道堵塞", "学校周边发现可疑人员", "自建房墙体开裂", "电动车违规充电"),
    "dispute": ("邻里宅基地边界纠纷", "婚姻家庭矛盾调解", "劳资纠纷：拖欠工资", "物业费收取争议",
                "山林土地承包纠纷", "合同履行纠纷"),
    "petition": ("群众来访反映低保问题", "来信反映道路破损", "反映安置房质量问题"),
    "complaint": ("夜间施工噪音扰民", "餐馆油烟扰民", "占道经营投诉", "违规养殖污染投诉"),
    "legal": ("咨询土地流转合同", "咨询工伤认定程序", "咨询遗产继承"),
    "psych": ("独居老人情绪低落", "学生心理疏导需求"),
    "other": ("路灯损坏", "井盖缺失", "流浪犬伤人隐患"),
}


def sample(n: int, *, seed: int = 7, now: datetime | None = None, hours: float = 10,
           outside_share: float = 0.03) -> list[dict]:
    """`n` reports of mixed types spread over the county and the last `hours` hours."""
    rng = random.Random(seed)
    now = now or datetime.now(CST)
    grids = demo_county()
    grids = grids[grids["level"] == "grid"]
    geoms = list(grids.geometry)
    minx, miny, maxx, maxy = grids.total_bounds
    # stay inside today (Asia/Shanghai): the KPI tiles count today's incidents
    today = now.astimezone(CST)
    minutes = min(hours * 60, today.hour * 60 + today.minute + today.second / 60)
    out = []
    for k in range(n):
        kind = rng.choices(TYPES, WEIGHTS)[0]
        if rng.random() < outside_share:
            lon, lat = maxx + rng.uniform(0.01, 0.05), rng.uniform(miny, maxy)
        else:
            poly = rng.choice(geoms)
            gx0, gy0, gx1, gy1 = poly.bounds
            while True:
                lon, lat = rng.uniform(gx0, gx1), rng.uniform(gy0, gy1)
                if poly.contains(shapely.Point(lon, lat)):
                    break
        severity = rng.choices((1, 2, 3, 4), (2, 8, 30, 60))[0]
        if kind in ("emergency", "mass", "public_safety"):
            severity = rng.choices((1, 2, 3, 4), (6, 20, 40, 34))[0]
        occurred = now - timedelta(minutes=rng.uniform(0, minutes))
        out.append(report(kind, rng.choice(TITLES[kind]), lon, lat, severity=severity,
                          occurred=occurred, people=rng.randint(1, 40)))
    return out


def report(kind: str, title: str, lon: float, lat: float, *, severity: int = 4,
           occurred: datetime | None = None, **extra) -> dict:
    """One report in the feed wire format."""
    occurred = occurred or datetime.now(CST)
    return {"id": uuid.uuid4().hex, "type": kind, "title": title, "lon": lon, "lat": lat,
            "severity": severity, "occurred_at": occurred.isoformat(timespec="seconds"), **extra}
