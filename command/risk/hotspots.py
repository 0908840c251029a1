"""Hotspots: incidents counted in hexagons of a fixed size, laid out in metres.

Points are projected with a transverse Mercator centred on a fixed origin (the county's centre),
so a hexagon is the same size everywhere on the map and the grid does not move when new points
arrive. Hexagons are "pointy-top"; `cell_m` is the distance between the centres of two
neighbouring hexagons (the width across flats), so a hexagon covers √3/2 · cell_m² (0.87 km² for
1 000 m).

>>> bins = hexbin([120.2, 120.2, 120.3], [30.0, 30.0, 30.0], cell_m=1000, origin=(120.2, 30.0))
>>> sorted(bins.count.tolist())
[1.0, 2.0]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyproj

MIN_CELL_M = 100.0
MAX_CELL_M = 20_000.0
_SQRT3 = math.sqrt(3.0)


@functools.lru_cache(maxsize=16)
def _transformer(lon0: float, lat0: float) -> pyproj.Transformer:
    crs = pyproj.CRS.from_proj4(f"+proj=tmerc +lat_0={lat0:.6f} +lon_0={lon0:.6f} +k=1 "
                                "+x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs")
    return pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def project(lon, lat, origin: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 degrees to metres east/north of `origin` (lon, lat)."""
    t = _transformer(round(float(origin[0]), 6), round(float(origin[1]), 6))
    x, y = t.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def unproject(x, y, origin: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Metres east/north of `origin` back to WGS-84 degrees."""
    t = _transformer(round(float(origin[0]), 6), round(float(origin[1]), 6))
    lon, lat = t.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float),
                           direction=pyproj.enums.TransformDirection.INVERSE)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def hex_index(x: np.ndarray, y: np.ndarray, cell_m: float) -> tuple[np.ndarray, np.ndarray]:
    """The axial coordinates (q, r) of the hexagon containing each point (metres).

    >>> q, r = hex_index(np.array([0.0, 1000.0, 500.0]), np.array([0.0, 0.0, 866.0]), 1000)
    >>> list(zip(q.tolist(), r.tolist()))
    [(0, 0), (1, 0), (0, 1)]
    """
    size = cell_m / _SQRT3  # centre-to-corner
    qf = (_SQRT3 / 3 * x - y / 3) / size
    rf = (2 / 3 * y) / size
    # cube rounding: round all three coordinates, fix the one that moved most
    sf = -qf - rf
    q, r, s = np.rint(qf), np.rint(rf), np.rint(sf)
    dq, dr, ds = np.abs(q - qf), np.abs(r - rf), np.abs(s - sf)
    fix_q = (dq > dr) & (dq > ds)
    fix_r = ~fix_q & (dr > ds)
    q = np.where(fix_q, -r - s, q)
    r = np.where(fix_r, -q - s, r)
    return q.astype(np.int64), r.astype(np.int64)


def hex_center(q: np.ndarray, r: np.ndarray, cell_m: float) -> tuple[np.ndarray, np.ndarray]:
    """The centre of hexagons (q, r) in metres."""
    q, r = np.asarray(q, dtype=float), np.asarray(r, dtype=float)
    size = cell_m / _SQRT3
    return size * _SQRT3 * (q + r / 2.0), size * 1.5 * r


def hex_corners(q: np.ndarray, r: np.ndarray, cell_m: float) -> tuple[np.ndarray, np.ndarray]:
    """The six corners of each hexagon, shape (n, 7) closed rings, in metres."""
    cx, cy = hex_center(q, r, cell_m)
    size = cell_m / _SQRT3
    angles = np.radians(np.arange(7) * 60.0 - 30.0)
    return (cx[:, None] + size * np.cos(angles)[None, :],
            cy[:, None] + size * np.sin(angles)[None, :])


@dataclass(frozen=True)
class HexBins:
    """Occupied hexagons: axial coordinates, counts and counts per group, largest count first."""

    cell_m: float
    origin: tuple[float, float]
    q: np.ndarray
    r: np.ndarray
    count: np.ndarray
    groups: Mapping[str, np.ndarray]  # group -> counts per hexagon (same order)

    def __len__(self) -> int:
        return len(self.q)


def hexbin(lon, lat, *, cell_m: float, origin: tuple[float, float], weights=None,
           groups: Sequence[str] | None = None) -> HexBins:
    """Count points (optionally weighted, optionally by group) per hexagon of size `cell_m`.

    Parameters
    ----------
    lon, lat : array-like
        WGS-84 degrees.
    cell_m : float
        Distance between neighbouring hexagon centres in metres (`MIN_CELL_M` … `MAX_CELL_M`).
    origin : (lon, lat)
        The projection's centre; keep it fixed so that the grid stays put.
    weights : array-like, optional
        How many incidents each point stands for (pre-aggregated rows); 1 each by default.
    groups : sequence of str, optional
        A group (e.g. the incident type) per point, counted separately in `HexBins.groups`.
    """
    if not MIN_CELL_M <= float(cell_m) <= MAX_CELL_M:
        raise ValueError(f"cell_m must be between {MIN_CELL_M:g} and {MAX_CELL_M:g} metres")
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if lon.shape != lat.shape or lon.ndim != 1:
        raise ValueError("lon and lat must be 1-d arrays of one length")
    w = np.ones(len(lon)) if weights is None else np.asarray(weights, dtype=float)
    keep = np.isfinite(lon) & np.isfinite(lat)
    empty = HexBins(float(cell_m), tuple(origin), np.zeros(0, np.int64), np.zeros(0, np.int64),
                    np.zeros(0), {})
    if not keep.any():
        return empty
    x, y = project(lon[keep], lat[keep], origin)
    q, r = hex_index(x, y, float(cell_m))
    cells, inverse = np.unique(np.column_stack([q, r]), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    count = np.bincount(inverse, weights=w[keep], minlength=len(cells))
    by_group: dict[str, np.ndarray] = {}
    if groups is not None:
        g = np.asarray(groups, dtype=object)[keep]
        for name in dict.fromkeys(g.tolist()):
            by_group[str(name)] = np.bincount(inverse[g == name], weights=w[keep][g == name],
                                              minlength=len(cells))
    order = np.lexsort((cells[:, 1], cells[:, 0], -count))  # largest first, then by position
    return HexBins(float(cell_m), tuple(origin), cells[order, 0], cells[order, 1], count[order],
                   {k: v[order] for k, v in by_group.items()})


def to_geojson(bins: HexBins) -> dict:
    """The hexagons as a GeoJSON FeatureCollection (id "q:r"; count and per-group counts)."""
    if not len(bins):
        return {"type": "FeatureCollection", "features": []}
    xs, ys = hex_corners(bins.q, bins.r, bins.cell_m)
    lons, lats = unproject(xs.ravel(), ys.ravel(), bins.origin)
    lons, lats = lons.reshape(xs.shape), lats.reshape(ys.shape)
    cx, cy = hex_center(bins.q, bins.r, bins.cell_m)
    clon, clat = unproject(cx, cy, bins.origin)
    features = []
    for k in range(len(bins)):
        ring = [[round(float(a), 6), round(float(b), 6)] for a, b in zip(lons[k], lats[k])]
        ring[-1] = ring[0]  # exactly closed
        by_group = {g: int(round(v[k])) for g, v in bins.groups.items() if v[k]}
        features.append({
            "type": "Feature", "id": f"{int(bins.q[k])}:{int(bins.r[k])}",
            "properties": {"count": int(round(bins.count[k])), "by_type": by_group,
                           "center": [round(float(clon[k]), 6), round(float(clat[k]), 6)]},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        })
    return {"type": "FeatureCollection", "features": features}
