"""Find the township and grid that contain incident coordinates (WGS-84)."""

from __future__ import annotations

from typing import NamedTuple

import geopandas
import numpy as np
import shapely

_LOCATED_LEVELS = ("township", "grid")


class LocateResult(NamedTuple):
    """Township code, grid code (object arrays, None when not found) and an outside flag per point."""

    township: np.ndarray
    grid: np.ndarray
    outside: np.ndarray


class _Level:
    """One level's polygons, sorted by code so that a tree index is also a code rank."""

    def __init__(self, frame: geopandas.GeoDataFrame) -> None:
        frame = frame.sort_values("code", kind="stable")
        self.codes = np.asarray(frame["code"].astype(object).to_numpy(), dtype=object)
        self.parents = np.asarray(
            [None if _missing(p) else p for p in frame["parent"].to_numpy()], dtype=object
        )
        self.geoms = np.asarray(frame.geometry.to_numpy(), dtype=object)
        self.tree = shapely.STRtree(self.geoms)
        shapely.prepare(self.geoms)

    def first_hits(self, points: np.ndarray) -> np.ndarray:
        """Return, per point, the smallest index of a polygon it intersects, or -1."""
        hits = np.full(len(points), -1, dtype=np.intp)
        if len(self.codes) == 0 or len(points) == 0:
            return hits
        point_idx, geom_idx = self.tree.query(points, predicate="intersects")
        # Assign in descending polygon order so the smallest code is written last and wins.
        order = np.lexsort((-geom_idx, point_idx))
        hits[point_idx[order]] = geom_idx[order]
        return hits

    def one(self, point: shapely.Point) -> int:
        """Return the smallest index of a polygon containing one point, or -1."""
        if len(self.codes) == 0:
            return -1
        found = self.tree.query(point, predicate="intersects")
        return int(found.min()) if len(found) else -1


def _missing(value) -> bool:
    """Return True for None, NaN and empty strings."""
    return value is None or value == "" or (isinstance(value, float) and np.isnan(value))


class Locator:
    """Spatial index over township and grid polygons of one or more counties (WGS-84).

    Examples
    --------
    >>> from layers.demo import demo_county
    >>> loc = Locator(demo_county())
    >>> lon, lat = loc.point_in("DEMO-T01-G01")
    >>> loc.locate_one(lon, lat)
    ('DEMO-T01', 'DEMO-T01-G01')
    """

    def __init__(self, units: geopandas.GeoDataFrame) -> None:
        missing = {"code", "name", "level", "parent"} - set(units.columns)
        if missing:
            raise ValueError(f"units lack columns: {', '.join(sorted(missing))}")
        if units.crs is not None and units.crs.to_epsg() != 4326:
            raise ValueError(f"units must be in EPSG:4326, got {units.crs}")
        self._units = {
            row.code: dict(
                code=row.code, name=row.name, level=row.level,
                parent=None if _missing(row.parent) else row.parent,
            )
            for row in units[["code", "name", "level", "parent"]].itertuples(index=False)
        }
        self._geoms = dict(zip(units["code"], units.geometry))
        self._township = _Level(units[units["level"] == "township"])
        self._grid = _Level(units[units["level"] == "grid"])
        township_rank = {code: i for i, code in enumerate(self._township.codes)}
        # Index of each grid's parent township, -1 when the parent is not a known township.
        self._grid_parent = np.array(
            [township_rank.get(p, -1) for p in self._grid.parents], dtype=np.intp
        )

    def locate(self, lon, lat) -> LocateResult:
        """Return township and grid codes for arrays of WGS-84 points; NaN/inf are outside."""
        lon, lat = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        lon, lat = lon.ravel(), lat.ravel()
        n = len(lon)
        finite = np.flatnonzero(np.isfinite(lon) & np.isfinite(lat))
        town = np.full(n, -1, dtype=np.intp)
        grid = np.full(n, -1, dtype=np.intp)
        if len(finite):
            points = shapely.points(lon[finite], lat[finite])
            town[finite] = self._township.first_hits(points)
            grid[finite] = self._resolve_grids(points, town[finite])
        # A point in a grid that no township covers belongs to the grid's parent township.
        orphan = (town < 0) & (grid >= 0)
        town[orphan] = self._grid_parent[grid[orphan]]
        return LocateResult(
            township=_codes(self._township.codes, town),
            grid=_codes(self._grid.codes, grid),
            outside=town < 0,
        )

    def _resolve_grids(self, points: np.ndarray, town: np.ndarray) -> np.ndarray:
        """Return per point the grid of its township with the smallest code, else any smallest grid."""
        hits = np.full(len(points), -1, dtype=np.intp)
        if len(self._grid.codes) == 0:
            return hits
        point_idx, geom_idx = self._grid.tree.query(points, predicate="intersects")
        # On a border shared by grids of two townships, prefer the grid of the chosen township.
        foreign = self._grid_parent[geom_idx] != town[point_idx]
        order = np.lexsort((-geom_idx, -foreign.astype(np.int8), point_idx))
        hits[point_idx[order]] = geom_idx[order]
        return hits

    def locate_one(self, lon: float, lat: float) -> tuple[str | None, str | None]:
        """Return (township code, grid code) for one WGS-84 point; None where not found."""
        if not (np.isfinite(lon) and np.isfinite(lat)):
            return None, None
        point = shapely.Point(lon, lat)
        town = self._township.one(point)
        grids = self._grid.tree.query(point, predicate="intersects") if len(self._grid.codes) else []
        grid = -1
        if len(grids):
            own = [g for g in grids if self._grid_parent[g] == town]
            grid = int(min(own)) if own else int(min(grids))
        if town < 0 and grid >= 0:
            town = int(self._grid_parent[grid])
        return (
            self._township.codes[town] if town >= 0 else None,
            self._grid.codes[grid] if grid >= 0 else None,
        )

    def point_in(self, code: str) -> tuple[float, float]:
        """Return a deterministic (lon, lat) inside the unit with this code."""
        point = shapely.point_on_surface(self._geoms[code])
        return float(point.x), float(point.y)

    def unit(self, code: str) -> dict:
        """Return code, name, level and parent of a unit."""
        return dict(self._units[code])

    def has(self, code: str) -> bool:
        """Return True when a unit with this code is known."""
        return code in self._units

    def county_code(self) -> str | None:
        """Return the code of the county unit (the smallest, if several), or None."""
        counties = sorted(c for c, u in self._units.items() if u["level"] == "county")
        return counties[0] if counties else None


def _codes(codes: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Map indices to codes as an object array, -1 to None."""
    out = np.full(len(idx), None, dtype=object)
    found = idx >= 0
    out[found] = codes[idx[found]]
    return out
