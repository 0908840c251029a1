"""Plotly map figures of units and incidents that work offline (no tiles, no glyph requests).

Incident traces carry plain lists, never numpy arrays: the browser extends them with Dash
``Patch`` operations, which replace numpy-encoded (``bdata``) arrays instead of extending them.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import geopandas
import numpy as np
import plotly.graph_objects as go
import shapely

from layers import theme

INCIDENT_TRACE_OFFSET = 2  # unit_traces always returns a township and a grid trace
UIREVISION = "situation-map"
_CST = timezone(timedelta(hours=8))
_MAP_PIXELS = (900, 620)  # assumed map size when fitting the zoom to the county
def escape(text) -> str:
    """Escape ``&``, ``<`` and ``>`` so hover text never renders user input as HTML.

    Examples
    --------
    >>> escape("<b>A&B</b>")
    '&lt;b&gt;A&amp;B&lt;/b&gt;'
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def units_geojson(units: geopandas.GeoDataFrame, level: str | None) -> dict:
    """Return a GeoJSON FeatureCollection of one level's units (all units for None), id = code.

    Examples
    --------
    >>> import shapely
    >>> g = geopandas.GeoDataFrame(dict(code=["A"], name=["甲"], level=["grid"], parent=["T"]),
    ...                            geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
    >>> units_geojson(g, "grid")["features"][0]["id"]
    'A'
    """
    rows = units if level is None else units[units["level"] == level]
    geoms = rows.geometry.to_numpy()
    features = []
    for row, geom in zip(rows.itertuples(index=False), geoms):
        parent = None if _missing(row.parent) else str(row.parent)
        features.append({
            "type": "Feature",
            "id": str(row.code),
            "properties": {"code": str(row.code), "name": str(row.name), "level": str(row.level), "parent": parent},
            "geometry": None if geom is None else _rounded(shapely.geometry.mapping(geom)),
        })
    return {"type": "FeatureCollection", "features": features}


def _missing(value) -> bool:
    """Return True for None, NaN and empty strings."""
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _rounded(geometry: dict) -> dict:
    """Return a GeoJSON geometry with coordinates rounded to 6 decimals (~0.1 m) as lists."""
    def walk(coords):
        if coords and isinstance(coords[0], (int, float)):
            return [round(float(c), 6) for c in coords]
        return [walk(c) for c in coords]

    return {"type": geometry["type"], "coordinates": walk(geometry["coordinates"])}


def _unit_trace(units: geopandas.GeoDataFrame, level: str, fill: str, line: str, width: float, name: str):
    """Return one Choroplethmap of a level's units in a single colour."""
    geojson = units_geojson(units, level)
    codes = [f["id"] for f in geojson["features"]]
    names = [escape(f["properties"]["name"]) for f in geojson["features"]]
    return go.Choroplethmap(
        geojson=geojson,
        locations=codes,
        z=[0] * len(codes),
        colorscale=[[0, fill], [1, fill]],
        showscale=False,
        marker={"line": {"color": line, "width": width}},
        text=names,
        hovertemplate="%{text}<extra></extra>",
        name=name,
        showlegend=False,
    )


def unit_traces(units: geopandas.GeoDataFrame) -> list[go.Choroplethmap]:
    """Return the township trace (outline, faint fill) and the grid trace (thin lines)."""
    return [
        _unit_trace(units, "township", theme.TOWNSHIP_FILL, theme.TOWNSHIP_LINE,
                    theme.TOWNSHIP_LINE_WIDTH, "乡镇（街道）"),
        _unit_trace(units, "grid", theme.GRID_FILL, theme.GRID_LINE, theme.GRID_LINE_WIDTH, "网格"),
    ]


def _clock(iso: str | None) -> str:
    """Return HH:MM in China Standard Time of an ISO timestamp ('' when missing or unreadable)."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(str(iso))
    except ValueError:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(_CST)
    return moment.strftime("%H:%M")


def incident_hover(incident: dict) -> str:
    """Return the escaped hover text of one incident."""
    label = incident.get("type_label") or theme.TYPE_LABELS.get(incident.get("type"), theme.TYPE_LABELS["other"])
    place = [unit["name"] for unit in (incident.get("township"), incident.get("grid")) if unit]
    if incident.get("outside") or not place:
        place = ["辖区外"]
    lines = [
        f"<b>{escape(incident.get('title', ''))}</b>",
        f"{escape(label)} · {escape(_clock(incident.get('occurred_at')))}",
        escape(" / ".join(place)),
    ]
    return "<br>".join(lines)


def incident_traces(incidents: list[dict]) -> list[go.Scattermap]:
    """Return one marker trace per incident type, in TYPE_CODES order, with plain-list data."""
    by_type: dict[str, list[dict]] = {code: [] for code in theme.TYPE_CODES}
    for incident in incidents:
        code = incident.get("type")
        by_type[code if code in by_type else "other"].append(incident)
    traces = []
    for code in theme.TYPE_CODES:
        items = by_type[code]
        traces.append(go.Scattermap(
            lon=[float(i["lon"]) for i in items],
            lat=[float(i["lat"]) for i in items],
            customdata=[i["id"] for i in items],
            hovertext=[incident_hover(i) for i in items],
            hoverinfo="text",
            mode="markers",
            marker={
                "color": theme.TYPE_COLORS[code],
                "size": [theme.SEVERITY_SIZES.get(i.get("severity"), theme.DEFAULT_SIZE) for i in items],
                "opacity": 0.9,
            },
            name=theme.TYPE_LABELS[code],
            legendgroup=code,
            showlegend=True,
        ))
    return traces


def _fit(bounds) -> tuple[dict, float]:
    """Return the centre and a zoom that shows the bounds in the assumed map size."""
    minx, miny, maxx, maxy = bounds
    if not np.all(np.isfinite(bounds)):
        return {"lon": 104.0, "lat": 35.0}, 3.0  # no units: show China
    def merc(lat):
        return math.degrees(math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)))
    width_deg = max(maxx - minx, 1e-4)
    height_deg = max(merc(maxy) - merc(miny), 1e-4)
    width_px, height_px = _MAP_PIXELS
    zoom = min(math.log2(width_px * 360 / (512 * width_deg)), math.log2(height_px * 360 / (512 * height_deg)))
    return {"lon": float(minx + maxx) / 2, "lat": float(miny + maxy) / 2}, round(float(zoom) - 0.1, 2)


def situation_figure(units: geopandas.GeoDataFrame, incidents: list[dict]) -> go.Figure:
    """Return the offline situation map: unit outlines, then one incident trace per type."""
    fig = go.Figure(data=[*unit_traces(units), *incident_traces(incidents)])
    rows = units[units["level"].isin(["county", "township", "grid"])]
    center, zoom = _fit(rows.total_bounds if len(rows) else np.full(4, np.nan))
    fig.update_layout(
        map={
            # offline: no tile server, no glyphs (the wall screen recolours its ground)
            "style": "white-bg", "center": center, "zoom": zoom, "uirevision": UIREVISION,
        },
        uirevision=UIREVISION,
        paper_bgcolor=theme.BACKGROUND,
        plot_bgcolor=theme.BACKGROUND,
        font={"color": theme.TEXT_COLOR, "family": theme.HOVER_FONT},
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        legend={
            "orientation": "h", "x": 0, "y": 1, "xanchor": "left", "yanchor": "top",
            "bgcolor": theme.LEGEND_BACKGROUND, "font": {"color": theme.TEXT_COLOR},
        },
        hoverlabel={"bgcolor": theme.HOVER_BACKGROUND, "font": {"family": theme.HOVER_FONT}},
    )
    return fig


# --- risk layers of the wall screen (command/web/wall_risk.py, assets/wall_risk.js) -------------

# the four warning colours by score band (0–25 蓝, 25–50 黄, 50–75 橙, 75–100 红), translucent
# enough to keep grid lines and incident markers readable on top
RISK_COLORSCALE = [
    [0.0, "rgba(61, 139, 253, 0.22)"], [0.25, "rgba(61, 139, 253, 0.40)"],
    [0.25, "rgba(255, 208, 0, 0.38)"], [0.5, "rgba(255, 208, 0, 0.55)"],
    [0.5, "rgba(255, 140, 26, 0.50)"], [0.75, "rgba(255, 140, 26, 0.65)"],
    [0.75, "rgba(255, 59, 59, 0.58)"], [1.0, "rgba(255, 59, 59, 0.75)"],
]
# by count relative to the largest hexagon: single incidents fade out, clusters stand out
HOTSPOT_COLORSCALE = [
    [0.0, "rgba(255, 214, 10, 0.0)"], [0.12, "rgba(255, 214, 10, 0.22)"],
    [0.4, "rgba(255, 170, 40, 0.5)"], [0.7, "rgba(255, 110, 40, 0.7)"],
    [1.0, "rgba(255, 45, 70, 0.88)"],
]
HOTSPOT_LINE = "rgba(255, 190, 110, 0.35)"


def hotspot_trace() -> go.Choroplethmap:
    """Return the (empty, hidden) hexagon layer the wall fills with /api/v1/hotspots."""
    return go.Choroplethmap(
        geojson={"type": "FeatureCollection", "features": []},
        locations=[], z=[], text=[],
        colorscale=HOTSPOT_COLORSCALE, zmin=0, zmax=1, showscale=False,
        marker={"line": {"color": HOTSPOT_LINE, "width": 0.4}},
        hovertemplate="%{text}<extra></extra>", name="热点", showlegend=False, visible=False,
    )


def replay_traces() -> list[go.Scattermap]:
    """Return one empty, hidden marker trace per incident type, for replaying a past window."""
    return [
        go.Scattermap(
            lon=[], lat=[], customdata=[], hovertext=[], hoverinfo="text", mode="markers",
            marker={"color": theme.TYPE_COLORS[code], "size": [], "opacity": 0.9},
            name=theme.TYPE_LABELS[code], legendgroup=f"replay-{code}", showlegend=True,
            visible=False,
        )
        for code in theme.TYPE_CODES
    ]


def count_dtick(top: int) -> int:
    """An integer tick step for counts up to `top` (1, 2, 5 × 10^k; 1 up to 5): never 0.2 起.

    >>> [count_dtick(n) for n in (0, 1, 5, 6, 12, 40, 237)]
    [1, 1, 1, 2, 5, 10, 50]
    """
    if top <= 5:
        return 1
    raw = top / 5
    mag = 10 ** math.floor(math.log10(raw))
    return max(1, round(next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)))


def trend_figure(series: dict | None, *, layout: dict | None = None) -> go.Figure:
    """Return the trend chart: this period stacked by type (bars), the previous total (dashed).

    `series` is the answer of /api/v1/trends (None: empty axes); trace k < len(TYPE_CODES) is
    type k, the last trace the previous period's total. `layout` adds fonts and colours.
    """
    labels = list(series["labels"]) if series else []
    current = series["current"] if series else {}
    previous = series["previous"] if series else {}
    traces = [
        go.Bar(x=labels, y=list(current.get(code, [])), customdata=list(previous.get(code, [])),
               name=theme.TYPE_LABELS[code],
               marker={"color": theme.TYPE_COLORS[code], "line": {"width": 0}},
               hovertemplate=f"%{{x}} · {theme.TYPE_LABELS[code]}：本期 %{{y}} 起，"
                             "上期 %{customdata} 起<extra></extra>")
        for code in theme.TYPE_CODES
    ]
    traces.append(go.Scatter(
        x=labels, y=list(series["total"]["previous"]) if series else [], mode="lines",
        name="上期合计", line={"color": theme.TEXT_COLOR, "width": 1.6, "dash": "dash"},
        hovertemplate="%{x} · 上期合计 %{y} 起<extra></extra>"))
    fig = go.Figure(traces)
    fig.update_layout(
        barmode="stack", bargap=0.25, showlegend=False, uirevision="trend-chart",
        margin={"l": 8, "r": 8, "t": 6, "b": 8},
        xaxis={"type": "category", "fixedrange": True, "showgrid": False, "tickangle": 0},
        yaxis={"rangemode": "tozero", "tickformat": "d", "fixedrange": True, "tick0": 0,
               "dtick": count_dtick(max([0, *(series["total"]["current"] if series else []),
                                         *(series["total"]["previous"] if series else [])]))},
        hovermode="x",
    )
    if layout:
        fig.update_layout(**layout)
    return fig
