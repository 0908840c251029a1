"""A deterministic, invented demo county with townships and grids, for demos and tests.

Shapes are Voronoi cells clipped to a smoothed noisy outline near Hangzhou, Zhejiang.
Codes start with ``DEMO`` so they never collide with real (all-digit) administrative codes.
"""

from __future__ import annotations

import functools

import geopandas
import numpy as np
import pandas as pd
import shapely

DEMO_COUNTY_CODE = "DEMO"
DEMO_COUNTY_NAME = "演示县"

_SEED = 20260412
_CENTER = (120.225, 30.05)
# Semi-axes in degrees: ~40 km east-west and ~30 km north-south at latitude 30.
_SEMI_AXES = (0.205, 0.135)
# ~50 m in degrees; keeps the whole map light enough for the browser.
_SIMPLIFY_DEG = 0.0005
_MIN_AREA_FRACTION = 1e-4

_TOWNSHIP_NAMES = (
    "城关街道", "东城街道", "西城街道", "南湖街道", "青石镇", "白沙镇",
    "龙泉镇", "桃源镇", "清溪镇", "梅林镇", "石桥镇", "新塘镇", "双溪镇",
)
_STREET_COUNT = 4  # the townships closest to the centre are urban 街道
_VILLAGE_HEADS = (
    "青", "白", "桃", "杨", "柳", "松", "竹", "梅", "金", "石", "龙", "凤", "马", "黄",
    "高", "新", "上", "下", "前", "后", "东", "西", "南", "北", "大", "小", "潘", "何",
)
_VILLAGE_TAILS = ("山", "溪", "塘", "湾", "岭", "坞", "桥", "畈", "埠", "家", "园", "田", "林", "岙")
_COMMUNITY_NAMES = (
    "东关", "西关", "南门", "北门", "解放", "人民", "文化", "和平", "建设", "新华", "城南",
    "城北", "滨江", "湖滨", "紫荆", "丹桂", "望江", "春晖", "锦绣", "学府", "朝阳", "龙山",
    "凤凰", "兴业", "长乐", "康宁", "永安", "阳光", "金桥", "翠苑", "清泰", "青年", "景和",
    "映月", "柳岸", "枫林", "桂花", "荷塘", "芳草", "星光", "嘉园", "明珠", "月湖", "惠民",
    "振兴", "富民", "育才", "中山", "环城", "江南", "府前", "鼓楼", "钟楼", "白塔", "古城",
    "新城", "湖光", "云栖", "玉泉", "迎宾", "光明", "幸福",
)


def _outline(rng: np.random.Generator) -> shapely.Polygon:
    """Return an irregular, smoothed county outline around the demo centre."""
    theta = np.linspace(0.0, 2 * np.pi, 720, endpoint=False)
    radius = np.ones_like(theta)
    for k, amp in ((2, 0.06), (3, 0.07), (4, 0.05), (5, 0.04), (7, 0.025), (11, 0.015), (17, 0.008)):
        radius += amp * np.sin(k * theta + rng.uniform(0, 2 * np.pi))
    lon = _CENTER[0] + _SEMI_AXES[0] * radius * np.cos(theta)
    lat = _CENTER[1] + _SEMI_AXES[1] * radius * np.sin(theta)
    poly = shapely.Polygon(np.column_stack([lon, lat]))
    return shapely.simplify(poly, _SIMPLIFY_DEG)


def _spread_points(rng: np.random.Generator, area: shapely.Geometry, n: int) -> np.ndarray:
    """Return ``n`` points inside ``area`` spaced roughly evenly (dart throwing)."""
    shapely.prepare(area)
    minx, miny, maxx, maxy = area.bounds
    spacing = 0.8 * np.sqrt(area.area / n)
    points: list[tuple[float, float]] = []
    tries = 0
    while len(points) < n:
        tries += 1
        if tries % 2000 == 0:
            spacing *= 0.9  # relax when the area is too small for the spacing
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if not shapely.contains_xy(area, x, y):
            continue
        if points and np.min(np.hypot(*(np.asarray(points) - (x, y)).T)) < spacing:
            continue
        points.append((x, y))
    return np.asarray(points)


def _tile(area: shapely.Geometry, seeds: np.ndarray) -> list[shapely.Geometry]:
    """Split ``area`` into Voronoi cells of ``seeds`` (in seed order), merging stray slivers."""
    cells = shapely.voronoi_polygons(
        shapely.multipoints(seeds), extend_to=shapely.buffer(area, 0.05), ordered=True
    )
    parts = shapely.intersection(np.asarray(shapely.get_parts(cells)), area)
    pieces: list[shapely.Geometry] = []
    strays: list[shapely.Geometry] = []
    for part in parts:
        polys = sorted(shapely.get_parts(part), key=lambda p: -p.area)
        polys = [p for p in polys if isinstance(p, shapely.Polygon)]
        pieces.append(polys[0])
        strays.extend(polys[1:])
    # A convex cell clipped by a concave outline can fall apart; give each stray piece to the
    # neighbour it shares the longest edge with, so every unit is a single polygon.
    for stray in strays:
        shared = [shapely.length(shapely.intersection(stray.boundary, p.boundary)) for p in pieces]
        best = int(np.argmax(shared))
        pieces[best] = shapely.union(pieces[best], stray)
    return pieces


def _village_names(rng: np.random.Generator) -> list[str]:
    """Return every village base name in a fixed random order."""
    names = [h + t for h in _VILLAGE_HEADS for t in _VILLAGE_TAILS]
    return [names[i] for i in rng.permutation(len(names))]


@functools.lru_cache(maxsize=1)
def _build() -> geopandas.GeoDataFrame:
    """Build the demo county once."""
    rng = np.random.default_rng(_SEED)
    county = _outline(rng)

    town_seeds = _spread_points(rng, county, len(_TOWNSHIP_NAMES))
    # Name townships by distance from the centre: the inner ones are 街道.
    order = np.argsort(np.hypot(*(town_seeds - _CENTER).T), kind="stable")
    town_seeds = town_seeds[order]
    townships = _tile(county, town_seeds)

    villages = iter(_village_names(rng))
    communities = iter(_COMMUNITY_NAMES)
    rows = [dict(code=DEMO_COUNTY_CODE, name=DEMO_COUNTY_NAME, level="county", parent=None, geometry=county)]
    grid_rows = []
    for t, (town_name, town) in enumerate(zip(_TOWNSHIP_NAMES, townships), start=1):
        town_code = f"{DEMO_COUNTY_CODE}-T{t:02d}"
        rows.append(dict(code=town_code, name=town_name, level="township", parent=DEMO_COUNTY_CODE, geometry=town))
        n_grids = int(np.clip(round(175 * town.area / county.area), 8, 30))
        grid_seeds = _spread_points(rng, town, n_grids)
        # Grids nearest the township seat are communities (社区); in 街道 most of them are.
        seat = town_seeds[t - 1]
        grid_seeds = grid_seeds[np.argsort(np.hypot(*(grid_seeds - seat).T), kind="stable")]
        n_communities = int(round(n_grids * 0.5)) if t <= _STREET_COUNT else 1
        for g, grid in enumerate(_tile(town, grid_seeds), start=1):
            base = next(communities) + "社区" if g <= n_communities else next(villages) + "村"
            grid_rows.append(dict(
                code=f"{town_code}-G{g:02d}", name=base + "网格", level="grid", parent=town_code, geometry=grid,
            ))
    frame = geopandas.GeoDataFrame(rows + grid_rows, geometry="geometry", crs="EPSG:4326")
    frame["geometry"] = shapely.normalize(frame.geometry.values)
    # pandas would store the county's missing parent as NaN in a string column.
    frame["parent"] = pd.Series([r["parent"] for r in rows + grid_rows], dtype=object)
    return frame


def demo_county() -> geopandas.GeoDataFrame:
    """Return the demo county, its townships and grids (columns code, name, level, parent, geometry).

    Examples
    --------
    >>> units = demo_county()
    >>> units.level.value_counts().to_dict()["township"] >= 10
    True
    >>> units.iloc[0].code
    'DEMO'
    """
    return _build().copy()
