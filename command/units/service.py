"""Units: persist the unit tree, read it back as a GeoDataFrame, seed the demo county."""

from __future__ import annotations

import uuid

import geopandas as gpd
import shapely
import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.db import get_meta, set_meta
from command.units.models import units

LEVELS = ("county", "township", "grid", "dept")
# stationed departments (入驻部门): units of level "dept" that orders can be addressed to
DEPARTMENTS = (
    ("dept.police", "公安"), ("dept.justice", "司法行政"), ("dept.petition", "信访"),
    ("dept.court", "法院"), ("dept.procuratorate", "检察院"), ("dept.hrss", "人社"),
    ("dept.civil", "民政"), ("dept.health", "卫健"), ("dept.education", "教育"),
    ("dept.construction", "建设"), ("dept.enforcement", "综合执法"),
    ("dept.market", "市场监管"), ("dept.resources", "自然资源"),
)
VERSION_KEY = "units_version"


def count(session: Session) -> int:
    """How many units are stored."""
    return session.execute(sa.select(sa.func.count()).select_from(units)).scalar_one()


def version(session: Session) -> str:
    """An id that changes whenever the unit tree is replaced (processes rebuild their locator)."""
    return get_meta(session, VERSION_KEY, "") or ""


def replace_all(session: Session, gdf: gpd.GeoDataFrame, *, source: str) -> None:
    """Replace the unit tree with `gdf` (code, name, level, parent, geometry in WGS-84).

    Department units are configuration, not geography: they stay.
    """
    session.execute(sa.delete(units).where(units.c.level != "dept"))
    rows = [
        {"code": r.code, "name": r.name, "level": r.level,
         "parent": None if r.parent is None or r.parent != r.parent else r.parent,
         "geometry": None if r.geometry is None else shapely.to_wkb(r.geometry),
         "source": source}
        for r in gdf.itertuples(index=False)
    ]
    if rows:
        session.execute(sa.insert(units), rows)
    set_meta(session, VERSION_KEY, uuid.uuid4().hex)


def load_gdf(session: Session, *, levels: tuple[str, ...] | None = None) -> gpd.GeoDataFrame:
    """The stored units as a GeoDataFrame in EPSG:4326."""
    stmt = sa.select(units.c.code, units.c.name, units.c.level, units.c.parent, units.c.geometry)
    if levels:
        stmt = stmt.where(units.c.level.in_(levels))
    rows = session.execute(stmt.order_by(units.c.code)).all()
    geoms = [None if r.geometry is None else shapely.from_wkb(r.geometry) for r in rows]
    return gpd.GeoDataFrame(
        {"code": [r.code for r in rows], "name": [r.name for r in rows],
         "level": [r.level for r in rows], "parent": [r.parent for r in rows]},
        geometry=geoms, crs="EPSG:4326")


def get_all(session: Session) -> list[dict]:
    """Every unit as {code, name, level, parent}, county first then by code."""
    order = sa.case({lvl: i for i, lvl in enumerate(LEVELS)}, value=units.c.level, else_=9)
    stmt = sa.select(units.c.code, units.c.name, units.c.level, units.c.parent).order_by(
        order, units.c.code)
    return [dict(r._mapping) for r in session.execute(stmt)]


def source(session: Session) -> str | None:
    """'demo' or 'import' for the stored tree, None when empty."""
    stmt = sa.select(units.c.source).where(units.c.level != "dept").limit(1)
    return session.execute(stmt).scalar_one_or_none()


def ensure_departments(session: Session, departments=DEPARTMENTS) -> int:
    """Store the configured department units that are missing; return how many were added."""
    have = set(session.execute(sa.select(units.c.code).where(units.c.level == "dept")).scalars())
    county = session.execute(sa.select(units.c.code).where(units.c.level == "county")).scalar()
    rows = [{"code": code, "name": name, "level": "dept", "parent": county, "geometry": None,
             "source": "config"} for code, name in departments if code not in have]
    if rows:
        session.execute(sa.insert(units), rows)
    return len(rows)


def parse_departments(text: str) -> tuple[tuple[str, str], ...]:
    """Read "code:名称,code:名称" (CMDCENTER_DEPARTMENTS) into (code, name) pairs."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        code, sep, name = item.partition(":")
        if not sep or not code.strip() or not name.strip():
            raise ValueError(f"department {item!r} must look like dept.code:名称")
        pairs.append((code.strip(), name.strip()))
    return tuple(pairs)


def ensure_demo(session: Session) -> bool:
    """Store the built-in demo county when no unit exists; return whether it did."""
    if session.execute(sa.select(units.c.code).where(units.c.level != "dept").limit(1)).first():
        return False
    from layers.demo import demo_county

    replace_all(session, demo_county(), source="demo")
    return True
