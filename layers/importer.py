"""Read administrative boundaries (county, township, grid) from GIS files into WGS-84 units.

Pure: nothing is written anywhere. The caller persists ``ImportReport.units`` in one
transaction, so a bad file changes nothing.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import geopandas
import numpy as np
import pandas as pd
import pyogrio
import shapely

from layers.crs import geometry_to_wgs84, source_crs

UNIT_COLUMNS = ["code", "name", "level", "parent", "geometry"]
_DATA_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".topojson", ".kml", ".gml")
_CHUNK = 500
_MAX_LISTED = 20


class BoundaryImportError(Exception):
    """A boundary file cannot be imported; ``str(err)`` is a message for the user."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        if self.problems:
            shown = self.problems[:_MAX_LISTED]
            more = len(self.problems) - len(shown)
            message = message + ": " + "; ".join(shown) + (f"; … and {more} more" if more else "")
        super().__init__(message)


@dataclass
class ImportReport:
    """Units read from a file (WGS-84) with what was repaired and skipped."""

    units: geopandas.GeoDataFrame
    read: int
    imported: int
    repaired: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def read_boundaries(
    path,
    *,
    level: str,
    code_field: str,
    name_field: str,
    parent_field: str | None = None,
    layer: str | int | None = None,
    crs=None,
    parents: geopandas.GeoDataFrame | None = None,
    repair: bool = True,
    progress: Callable[[int, int], None] | None = None,
    encoding: str | None = None,
) -> ImportReport:
    """Read polygons of one level from a GIS file and return them as WGS-84 units.

    Parameters
    ----------
    path : str or Path
        GeoJSON, TopoJSON, Shapefile, zipped Shapefile, GeoPackage … (anything GDAL reads).
    level : str
        Level of every unit in the file: "county", "township", "grid" ….
    code_field, name_field, parent_field : str
        Attribute names holding the unit code, its name and (optionally) its parent's code.
    layer : str or int, optional
        Layer to read when the file holds several (GeoPackage, TopoJSON objects, zip members).
    crs : str, optional
        Source CRS overriding the file's: "wgs84", "cgcs2000", "gcj02", "bd09" or "EPSG:n".
    parents : GeoDataFrame, optional
        Units of the level above (EPSG:4326); without ``parent_field`` each unit gets the parent
        containing its interior point, else the one it overlaps most.
    repair : bool
        Repair invalid polygons with ``shapely.make_valid``; when False invalid polygons are an error.
    progress : callable, optional
        Called as ``progress(done, total)`` while rows are processed.
    encoding : str, optional
        Attribute encoding for files that do not declare it (e.g. "gbk" for old Shapefiles).

    Examples
    --------
    >>> read_boundaries("/nonexistent.geojson", level="township", code_field="c", name_field="n")
    Traceback (most recent call last):
    ...
    layers.importer.BoundaryImportError: file not found: /nonexistent.geojson
    """
    if not isinstance(level, str) or not level.strip():
        raise BoundaryImportError("level must be a non-empty name such as 'township'")
    level = level.strip()
    src_crs = _parse_crs(crs)
    frame = _read(path, layer, encoding)
    total = len(frame)

    fields = [f for f in (code_field, name_field, parent_field) if f is not None]
    available = [c for c in frame.columns if c != frame.geometry.name]
    absent = [f for f in fields if f not in frame.columns]
    if absent:
        raise BoundaryImportError(
            f"field {', '.join(repr(f) for f in absent)} not in the file; "
            f"available fields: {', '.join(map(str, available)) or '(none)'}"
        )
    if total == 0:
        raise BoundaryImportError("the file contains no features")

    labels = [f"row {i + 1}" for i in range(total)]
    codes = [_text(v) for v in frame[code_field]]
    names = [_text(v) for v in frame[name_field]]
    _check_codes(codes, names, labels)

    frame = _to_wgs84(frame, src_crs)
    geoms = np.asarray(frame.geometry.to_numpy(), dtype=object)
    repaired: list[str] = []
    invalid: list[str] = []
    skipped: list[tuple[str, str]] = []
    keep = np.zeros(total, dtype=bool)
    out_geoms = np.empty(total, dtype=object)
    for start in range(0, total, _CHUNK):
        stop = min(start + _CHUNK, total)
        for i in range(start, stop):
            geom, problem, fixed = _polygonal(geoms[i], repair)
            if problem is not None:
                if fixed is None and problem.startswith("invalid"):
                    invalid.append(f"{codes[i]} ({problem})")
                else:
                    skipped.append((codes[i], problem))
                continue
            if fixed:
                repaired.append(codes[i])
            keep[i] = True
            out_geoms[i] = geom
        if progress is not None:
            progress(stop, total)
    if invalid:
        raise BoundaryImportError(f"{len(invalid)} invalid polygon(s) (repair is off)", invalid)

    units = geopandas.GeoDataFrame(
        {
            "code": pd.array(codes, dtype=object),
            "name": pd.array(names, dtype=object),
            "level": level,
            "parent": pd.array([None] * total, dtype=object),
        },
        geometry=geopandas.GeoSeries(out_geoms, crs="EPSG:4326"),
    )
    units = units[keep].reset_index(drop=True)

    if level != "county":
        if parent_field is not None:
            parent_codes = np.asarray([_text(v) for v in frame[parent_field]], dtype=object)[keep]
            # object dtype keeps None (pandas would turn it into NaN in a string column)
            units["parent"] = pd.Series([p or None for p in parent_codes], index=units.index, dtype=object)
        elif parents is not None:
            units, orphans = _assign_parents(units, parents)
            skipped.extend((code, "no parent unit contains it") for code in orphans)
    units = units[UNIT_COLUMNS]
    return ImportReport(units=units, read=total, imported=len(units), repaired=repaired, skipped=skipped)


def _parse_crs(crs):
    """Return the parsed source CRS or None; unknown values are a BoundaryImportError."""
    if crs is None:
        return None
    try:
        return source_crs(crs)
    except ValueError as err:
        raise BoundaryImportError(str(err)) from None


def _text(value) -> str:
    """Return an attribute value as a stripped string ('' for missing); 3301.0 becomes '3301'."""
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        if float(value).is_integer():
            return str(int(value))
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    return str(value).strip()


def _check_codes(codes: list[str], names: list[str], labels: list[str]) -> None:
    """Raise when codes are empty or duplicated, or names empty."""
    problems = [f"{label}: empty code" for label, code in zip(labels, codes) if not code]
    problems += [
        f"{code or label}: empty name" for label, code, name in zip(labels, codes, names) if not name
    ]
    seen: dict[str, int] = {}
    for code in codes:
        if code:
            seen[code] = seen.get(code, 0) + 1
    problems += [f"duplicate code {code} ({n}×)" for code, n in seen.items() if n > 1]
    if problems:
        raise BoundaryImportError("codes and names must be present and codes unique", problems)


def _resolve_path(path, layer) -> tuple[str, str | int | None]:
    """Return the GDAL path and layer to read; zips are opened through /vsizip/."""
    text = os.fspath(path)
    if text.startswith(("/vsi", "zip://")):
        return text, layer
    p = Path(text)
    if not p.exists():
        raise BoundaryImportError(f"file not found: {text}")
    if p.is_dir():
        return text, layer
    if p.suffix.lower() != ".zip":
        return text, layer
    try:
        with zipfile.ZipFile(p) as archive:
            members = [
                m for m in archive.namelist()
                if m.lower().endswith(_DATA_SUFFIXES) and not Path(m).name.startswith(("._", "."))
            ]
    except (zipfile.BadZipFile, OSError) as err:
        raise BoundaryImportError(f"cannot open {p.name} as a zip archive: {err}") from None
    if not members:
        raise BoundaryImportError(f"{p.name} holds no boundary file (.shp, .gpkg, .geojson …)")
    if len(members) > 1:
        wanted = [m for m in members if layer is not None and Path(m).stem == str(layer)]
        if len(wanted) != 1:
            raise BoundaryImportError(
                f"{p.name} holds several boundary files, choose one as layer: "
                + ", ".join(Path(m).stem for m in members)
            )
        members = wanted
    member = members[0]
    # A zip with one Shapefile: the layer is the file itself.
    inner_layer = layer if member.lower().endswith((".gpkg", ".topojson", ".json", ".geojson")) else None
    return f"/vsizip/{p.resolve()}/{member}", inner_layer


def _read(path, layer, encoding) -> geopandas.GeoDataFrame:
    """Read a GIS file, turning every failure into a one-line BoundaryImportError."""
    gdal_path, layer = _resolve_path(path, layer)
    name = Path(os.fspath(path)).name
    try:
        layers = pyogrio.list_layers(gdal_path)
    except Exception as err:  # noqa: BLE001 - GDAL raises many kinds; the user needs one line
        raise BoundaryImportError(f"cannot read {name}: {_first_line(err)}") from None
    layer_names = [str(n) for n in layers[:, 0]]
    if layer is None and len(layer_names) > 1:
        raise BoundaryImportError(
            f"{name} has several layers, choose one: {', '.join(layer_names)}"
        )
    if isinstance(layer, str) and layer not in layer_names:
        raise BoundaryImportError(f"{name} has no layer {layer!r}; layers: {', '.join(layer_names)}")
    kwargs = {"encoding": encoding} if encoding else {}
    try:
        frame = geopandas.read_file(gdal_path, layer=layer, engine="pyogrio", **kwargs)
    except Exception as err:  # noqa: BLE001
        raise BoundaryImportError(f"cannot read {name}: {_first_line(err)}") from None
    if not isinstance(frame, geopandas.GeoDataFrame) or frame.geometry.name not in frame:
        raise BoundaryImportError(f"{name} has no geometry column")
    return frame


def _first_line(err: Exception) -> str:
    """Return the first line of an exception message."""
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]


def _looks_like_lonlat(frame: geopandas.GeoDataFrame) -> bool:
    """Return True when all coordinates fall in longitude/latitude ranges."""
    bounds = frame.geometry.total_bounds
    if not np.all(np.isfinite(bounds)):
        return True  # nothing but empty geometries: they are skipped later
    minx, miny, maxx, maxy = bounds
    return -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90


def _to_wgs84(frame: geopandas.GeoDataFrame, src_crs) -> geopandas.GeoDataFrame:
    """Reproject the frame from the override CRS, or from its own, to WGS-84."""
    frame = frame.copy()
    frame[frame.geometry.name] = shapely.force_2d(np.asarray(frame.geometry.to_numpy(), dtype=object))
    if src_crs is None:
        if frame.crs is None:
            if not _looks_like_lonlat(frame):
                raise BoundaryImportError(
                    "the file declares no coordinate system and its coordinates are not "
                    "longitude/latitude; give the source crs (e.g. EPSG:4549)"
                )
            src_crs = "wgs84"
        else:
            src_crs = frame.crs
    try:
        out = geometry_to_wgs84(frame, src_crs)
    except Exception as err:  # noqa: BLE001 - pyproj errors are not for users
        raise BoundaryImportError(f"cannot convert coordinates to WGS-84: {_first_line(err)}") from None
    if not _looks_like_lonlat(out):
        raise BoundaryImportError(
            "coordinates are not longitude/latitude after conversion from "
            f"{getattr(src_crs, 'name', src_crs)}; give the right source crs (e.g. EPSG:4549)"
        )
    return out


def _polygonal(geom, repair: bool):
    """Return (polygonal geometry, problem, repaired flag); fixed is None when repair was refused."""
    if geom is None or shapely.is_empty(geom):
        return None, "no geometry", False
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        return None, f"geometry is a {geom.geom_type}, not a polygon", False
    if shapely.is_valid(geom):
        return geom, None, False
    if not repair:
        return None, f"invalid: {shapely.is_valid_reason(geom)}", None
    fixed = _polygon_parts(shapely.make_valid(geom))
    if fixed is None:
        return None, "invalid polygon with no area left after repair", False
    return fixed, None, True


def _polygon_parts(geom):
    """Return the polygonal parts of a geometry as a Polygon/MultiPolygon, or None."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    polys = [q for p in parts for q in shapely.get_parts(p) if not q.is_empty and q.area > 0]
    if not polys:
        return None
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def _assign_parents(units: geopandas.GeoDataFrame, parents: geopandas.GeoDataFrame):
    """Set ``parent`` by containment of each unit's interior point; return units and orphan codes."""
    if parents.crs is not None and parents.crs.to_epsg() != 4326:
        raise ValueError(f"parents must be in EPSG:4326, got {parents.crs}")
    parents = parents.sort_values("code", kind="stable")
    pcodes = np.asarray(parents["code"].astype(object).to_numpy(), dtype=object)
    pgeoms = np.asarray(parents.geometry.to_numpy(), dtype=object)
    tree = shapely.STRtree(pgeoms)
    geoms = np.asarray(units.geometry.to_numpy(), dtype=object)
    found = np.full(len(units), -1, dtype=np.intp)
    if len(units) and len(pcodes):
        inner = shapely.point_on_surface(geoms)
        unit_idx, parent_idx = tree.query(inner, predicate="intersects")
        order = np.lexsort((-parent_idx, unit_idx))  # smallest code wins on a shared edge
        found[unit_idx[order]] = parent_idx[order]
        for i in np.flatnonzero(found < 0):
            candidates = tree.query(geoms[i], predicate="intersects")
            if len(candidates):
                areas = shapely.area(shapely.intersection(geoms[i], pgeoms[candidates]))
                if areas.max() > 0:
                    found[i] = candidates[int(np.argmax(areas))]
    units = units.copy()
    units["parent"] = pd.Series([pcodes[j] if j >= 0 else None for j in found], index=units.index, dtype=object)
    orphans = units.loc[found < 0, "code"].tolist()
    return units[found >= 0].reset_index(drop=True), orphans
