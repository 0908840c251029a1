"""Coordinate systems used by Chinese map data, and conversion to WGS-84.

GCJ-02 (AMap/Gaode, Tencent, DataV) and BD-09 (Baidu) are obfuscated datums that pyproj does
not know. Their forward transforms are reimplemented here with numpy, after ``prcoords``
(public domain), and inverted by fixed-point iteration like ``prcoords.gcj_wgs_bored``.
"""

from __future__ import annotations

import numpy as np
import pyproj
import shapely

CRS_NAMES = ("wgs84", "cgcs2000", "gcj02", "bd09")

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 obfuscation.
_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323
_BD_DLAT = 0.0060
_BD_DLON = 0.0065
# prcoords' sanity box for "inside China"; GCJ-02 leaves other points unchanged.
_CHINA_LAT = (0.8293, 55.8271)
_CHINA_LON = (72.004, 137.8347)
# 1e-10 degree is about 0.01 mm; the iteration converges in 3-4 steps.
_EPS = 1e-10
_MAX_ITER = 12

_EPSG_BY_NAME = {"wgs84": 4326, "cgcs2000": 4490}


def _check_crs(crs: str) -> str:
    """Return the normalised name of a named CRS or raise ValueError."""
    name = str(crs).strip().lower()
    if name not in CRS_NAMES:
        raise ValueError(f"unknown crs {crs!r}; allowed: {', '.join(CRS_NAMES)}")
    return name


def _in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Return True where a point lies in prcoords' bounding box of China."""
    return (lat >= _CHINA_LAT[0]) & (lat <= _CHINA_LAT[1]) & (lon >= _CHINA_LON[0]) & (lon <= _CHINA_LON[1])


def _wgs_gcj(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply the GCJ-02 forward offset to WGS-84 coordinates (no China check)."""
    x = lon - 105.0
    y = lat - 35.0
    pi = np.pi
    dlat_m = (
        -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
        + (
            2 * np.sin(x * 6 * pi) + 2 * np.sin(x * 2 * pi)
            + 2 * np.sin(y * pi) + 4 * np.sin(y / 3 * pi)
            + 16 * np.sin(y / 12 * pi) + 32 * np.sin(y / 30 * pi)
        ) * 20 / 3
    )
    dlon_m = (
        300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
        + (
            2 * np.sin(x * 6 * pi) + 2 * np.sin(x * 2 * pi)
            + 2 * np.sin(x * pi) + 4 * np.sin(x / 3 * pi)
            + 15 * np.sin(x / 12 * pi) + 30 * np.sin(x / 30 * pi)
        ) * 20 / 3
    )
    rad_lat = np.radians(lat)
    magic = 1 - _GCJ_EE * np.sin(rad_lat) ** 2
    lat_deg_arclen = np.radians(_GCJ_A * (1 - _GCJ_EE) / magic**1.5)
    lon_deg_arclen = np.radians(_GCJ_A * np.cos(rad_lat) / np.sqrt(magic))
    return lon + dlon_m / lon_deg_arclen, lat + dlat_m / lat_deg_arclen


def _bd_gcj(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove Baidu's BD-09 offset (prcoords ``bd_gcj``, ~1e-7 degree)."""
    x = lon - _BD_DLON
    y = lat - _BD_DLAT
    r = np.hypot(x, y) - 0.00002 * np.sin(np.radians(y) * 3000)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(np.radians(x) * 3000)
    return r * np.cos(theta), r * np.sin(theta)


def _gcj_bd(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply Baidu's BD-09 offset to GCJ-02 coordinates."""
    r = np.hypot(lon, lat) + 0.00002 * np.sin(np.radians(lat) * 3000)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(np.radians(lon) * 3000)
    return r * np.cos(theta) + _BD_DLON, r * np.sin(theta) + _BD_DLAT


def _invert(forward, lon: np.ndarray, lat: np.ndarray, wlon: np.ndarray, wlat: np.ndarray):
    """Invert a forward transform by fixed-point iteration from the first guess ``wlon, wlat``."""
    for _ in range(_MAX_ITER):
        flon, flat = forward(wlon, wlat)
        dlon = flon - lon
        dlat = flat - lat
        wlon = wlon - dlon
        wlat = wlat - dlat
        err = np.maximum(np.abs(dlon), np.abs(dlat))
        if not np.any(err > _EPS):  # NaN compares False, so NaN input cannot loop forever
            break
    return wlon, wlat


def _wgs_bd(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply GCJ-02 then BD-09 offsets to WGS-84 coordinates."""
    return _gcj_bd(*_wgs_gcj(lon, lat))


def to_wgs84(lon, lat, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert longitudes and latitudes in a named CRS to WGS-84 float arrays.

    Examples
    --------
    >>> lon, lat = to_wgs84(120.0, 30.0, "wgs84")
    >>> float(lon), float(lat)
    (120.0, 30.0)
    >>> lon, lat = to_wgs84([120.00461], [29.99752], "gcj02")
    >>> round(float(lon[0]), 3), round(float(lat[0]), 3)
    (120.0, 30.0)
    """
    name = _check_crs(crs)
    lon, lat = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    lon = lon.astype(float, copy=True)
    lat = lat.astype(float, copy=True)
    if name in ("wgs84", "cgcs2000"):
        return lon, lat
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf in, NaN out: no warnings
        return _obfuscated_to_wgs84(lon, lat, name)


def _obfuscated_to_wgs84(lon: np.ndarray, lat: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert GCJ-02 or BD-09 float arrays (modified in place) to WGS-84."""
    if name == "bd09":
        glon, glat = _bd_gcj(lon, lat)
        inside = _in_china(glon, glat)
        if inside.any():
            # Invert the whole BD-09 forward transform, as prcoords.bd_wgs_bored does.
            blon, blat, glon_in, glat_in = lon[inside], lat[inside], glon[inside], glat[inside]
            flon, flat = _wgs_gcj(glon_in, glat_in)
            glon[inside], glat[inside] = _invert(
                _wgs_bd, blon, blat, 2 * glon_in - flon, 2 * glat_in - flat
            )
        return glon, glat
    inside = _in_china(lon, lat)
    if inside.any():
        lon_in, lat_in = lon[inside], lat[inside]
        flon, flat = _wgs_gcj(lon_in, lat_in)
        lon[inside], lat[inside] = _invert(
            _wgs_gcj, lon_in, lat_in, 2 * lon_in - flon, 2 * lat_in - flat
        )
    return lon, lat


def source_crs(crs) -> str | pyproj.CRS:
    """Return a named CRS (gcj02, bd09) or a pyproj CRS for an EPSG code, name or CRS object."""
    if isinstance(crs, pyproj.CRS):
        return crs
    if isinstance(crs, (int, np.integer)):
        return pyproj.CRS.from_epsg(int(crs))
    text = str(crs).strip()
    low = text.lower()
    if low in ("gcj02", "bd09"):
        return low
    if low in _EPSG_BY_NAME:
        return pyproj.CRS.from_epsg(_EPSG_BY_NAME[low])
    try:
        return pyproj.CRS.from_user_input(text)
    except pyproj.exceptions.CRSError:
        raise ValueError(
            f"unknown crs {crs!r}; allowed: {', '.join(CRS_NAMES)} or an EPSG code like 'EPSG:4326'"
        ) from None


def geometry_to_wgs84(gdf, crs):
    """Return a copy of a GeoDataFrame with its geometries, given in ``crs``, in WGS-84.

    ``crs`` overrides whatever CRS the frame carries: one of CRS_NAMES, an EPSG code
    (``4549`` or ``"EPSG:4549"``) or a pyproj CRS.

    Examples
    --------
    >>> import geopandas, shapely
    >>> g = geopandas.GeoDataFrame(geometry=[shapely.Point(120.0, 30.0)])
    >>> geometry_to_wgs84(g, "cgcs2000").crs.to_epsg()
    4326
    """
    src = source_crs(crs)
    out = gdf.copy()
    if isinstance(src, str):
        geoms = shapely.transform(
            np.asarray(out.geometry.values, dtype=object),
            lambda xy: np.column_stack(to_wgs84(xy[:, 0], xy[:, 1], src)),
        )
        out[out.geometry.name] = geoms
        return out.set_crs(4326, allow_override=True)
    out = out.set_crs(src, allow_override=True)
    if out.crs.equals(pyproj.CRS.from_epsg(4326)):
        return out
    return out.to_crs(4326)
