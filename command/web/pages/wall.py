"""The wall screen `/`: the county situation map, KPIs, the live incident feed and charts.

The page is rendered once on the server with the opening state (incidents of the last 24 hours
and the sequence number they are complete up to). From then on `assets/wall.js` keeps it live:
it listens on Socket.IO `/live`, fills gaps with `since`, and changes the components in place with
`dash_clientside.set_props` and `dash_clientside.Patch` (no figure is rebuilt per event).
"""

from __future__ import annotations

from datetime import datetime

import dash
import plotly.graph_objects as go
from dash import ClientsideFunction, Input, Output, dcc, html
from flask import current_app

from command.clock import SHANGHAI
from command.db import last_seq
from command.incidents import service as incidents_service
from command.matters import stats
from command.risk import trends
from command.risk.score import NOT_COUNTED
from command.units import service as units_service
from command.web import ids, theme, ticker
from command.web import wall_risk
from command.web.auth import page_user
from layers import figures
from layers import theme as layer_theme

FEED_CAP = 200
OUTSIDE_CAP = 50
WALL_TITLE = "社会治理综合指挥中心 · 态势一张图"
WEEKDAYS = "一二三四五六日"

# KPI tiles: component id, label, accent colour
KPIS = (
    (ids.KPI_TOTAL, "今日事件总数", theme.ACCENT),
    (ids.KPI_EMERGENCY, layer_theme.TYPE_LABELS["emergency"], layer_theme.TYPE_COLORS["emergency"]),
    (ids.KPI_MASS, layer_theme.TYPE_LABELS["mass"], layer_theme.TYPE_COLORS["mass"]),
    (ids.KPI_PUBLIC_SAFETY, layer_theme.TYPE_LABELS["public_safety"],
     layer_theme.TYPE_COLORS["public_safety"]),
    (ids.KPI_MAJOR, "Ⅰ–Ⅱ级事件", theme.SEVERITY_COLORS[2]),
    (ids.KPI_OUTSIDE, "辖区外事件", theme.OUTSIDE_COLOR),
)
# the matter tiles: the center's figures (command.matters.stats), the same as the API's
MATTER_KPIS = (
    (ids.KPI_MATTERS_TODAY, "今日受理事项", "#7dd3a8"),
    (ids.KPI_RESOLUTION_MONTH, "本月化解率", "#f5c451"),
)
MAP_CONFIG = {"displaylogo": False, "scrollZoom": True, "displayModeBar": False,
              "responsive": True}
CHART_CONFIG = {"displaylogo": False, "displayModeBar": False, "responsive": True,
                "staticPlot": False}

# Fields of an incident the page needs (the reporter and the phone never reach the wall).
_WIRE_FIELDS = ("id", "seq", "type", "type_label", "severity", "title", "occurred_at",
                "received_at", "lon", "lat", "township", "grid", "outside", "status")


def layout(**_):
    """Render the wall screen with the opening state read from the database."""
    principal = page_user()
    core = current_app.extensions["cmdcenter"]
    now = core.clock.now()
    with core.read() as session:
        seq = last_seq(session)  # read first: anything committed later arrives through `since`
        locator = core.units.current(session)
        units = units_service.load_gdf(session)
        incidents = [] if principal is None else incidents_service.recent(
            session, after=window_start(now), locator=locator, principal=principal)
        trends = wall_risk.opening_trends(session, now=now, principal=principal)
        tiles = matter_tiles(session, principal, now=now)
    incidents = [{k: i.get(k) for k in _WIRE_FIELDS} for i in incidents]
    today = now.astimezone(SHANGHAI).date().isoformat()
    county = _county_name(units)
    townships = [[str(r.code), str(r.name)] for r in
                 units[units["level"] == "township"].sort_values("code").itertuples()]

    feed = _newest(incidents, FEED_CAP)
    outside = _newest([i for i in incidents if i["outside"]], OUTSIDE_CAP)
    state = {
        "ids": {name.lower(): getattr(ids, name) for name in dir(ids) if name.isupper()},
        "last_seq": seq,
        "now": int(now.timestamp() * 1000),
        "feed_cap": FEED_CAP,
        "outside_cap": OUTSIDE_CAP,
        "trace_offset": figures.INCIDENT_TRACE_OFFSET,
        "types": [{"code": c, "label": layer_theme.TYPE_LABELS[c],
                   "color": layer_theme.TYPE_COLORS[c]} for c in layer_theme.TYPE_CODES],
        "sizes": {str(k): v for k, v in layer_theme.SEVERITY_SIZES.items()},
        "default_size": layer_theme.DEFAULT_SIZE,
        "numerals": {str(k): v for k, v in theme.SEVERITY_NUMERALS.items()},
        "severity_colors": {str(k): v for k, v in theme.SEVERITY_COLORS.items()},
        "townships": townships,
        "bounds": [float(v) for v in units.total_bounds] if len(units) else None,
        "map_background": layer_theme.MAP_BACKGROUND,
        "chart_font": theme.CHART_FONT_SIZE,
        "incidents": incidents,
        "feed": [i["id"] for i in feed],
        "outside": [i["id"] for i in outside],
        "matter_tiles": tiles,
    }
    kpis = kpi_counts(incidents, today)
    shown = [i for i in incidents if counted(i)]
    map_figure = _map_figure(units, incidents)
    risk_traces = wall_risk.add_map_layers(map_figure)  # after the live traces: indices stay
    return html.Div(className="wall", lang="zh-CN", children=[
        dcc.Store(id=ids.WALL_STATE, data=state),
        wall_risk.store(wall_risk.config(map_figure, risk_traces, now)),
        _header(county, now),
        html.Main(className="wall-body", children=[
            html.Section(className="wall-col wall-left", children=[
                _panel("今日态势", html.Div(className="kpi-grid", children=[
                    *[_kpi(kid, label, accent, kpis[kid]) for kid, label, accent in KPIS],
                    *[_kpi(kid, label, accent, tile_text(kid, tiles), extra="kpi-matter")
                      for kid, label, accent in MATTER_KPIS],
                ]), extra="panel-kpi"),
                _panel("各乡镇（街道）事件分布", dcc.Graph(
                    id=ids.TOWNSHIP_CHART, figure=township_figure(townships, shown),
                    config=CHART_CONFIG, className="chart"), note="近24小时",
                    extra="panel-chart"),
                _panel("事件趋势", wall_risk.trend_body(trends), note=wall_risk.trend_switch(),
                       extra="panel-chart panel-trends"),
            ]),
            html.Section(className="wall-col wall-center", children=[
                _panel("态势一张图", html.Div(className="map-wrap", children=[
                    dcc.Graph(id=ids.SITUATION_MAP, figure=map_figure,
                              config=MAP_CONFIG, className="map"),
                    _severity_legend(),
                    ticker.mount(principal, mode="wall", element_id=ids.ALERT_STRIP),
                    wall_risk.map_overlay(),
                ]), note=[wall_risk.mode_switch(), html.Span("近24小时 "),
                          html.Span(str(len(shown)), id=ids.MAP_COUNT, className="map-count"),
                          html.Span(" 起")], extra="panel-map"),
            ]),
            html.Section(className="wall-col wall-right", children=[
                # the feed lists are drawn by assets/wall.js from the state (plain DOM: cheaper
                # than a Dash component per line)
                _panel("实时事件", html.Div(id=ids.INCIDENT_FEED, className="feed"),
                       note="最新上报在前", extra="panel-feed"),
                _panel("辖区外事件", html.Div(id=ids.OUTSIDE_FEED, className="feed feed-outside"),
                       note="未落入任何乡镇（街道）", extra="panel-outside"),
            ]),
        ]),
    ])


def _county_name(units) -> str:
    counties = units[units["level"] == "county"]
    return str(counties.sort_values("code").iloc[0]["name"]) if len(counties) else ""


def _newest(incidents: list[dict], cap: int) -> list[dict]:
    """The `cap` most recently received incidents, newest first."""
    return sorted(incidents, key=lambda i: (i["received_at"], i["seq"]), reverse=True)[:cap]


def window_start(now: datetime) -> datetime:
    """The start of the screen's 近24小时: the trend panel's 24 hours ending with the one running
    (command/risk/trends.py), so the map, the township chart and the panel count the same."""
    return trends.window(now, "24h").start


def counted(incident: dict) -> bool:
    """Merged duplicates and false alarms stay on the map but are not counted (as in trends)."""
    return incident.get("status") not in NOT_COUNTED


def kpi_counts(incidents: list[dict], today: str) -> dict[str, int]:
    """Count today's incidents (occurred_at's date in Asia/Shanghai) per KPI tile."""
    todays = [i for i in incidents if str(i["occurred_at"])[:10] == today and counted(i)]
    return {
        ids.KPI_TOTAL: len(todays),
        ids.KPI_EMERGENCY: sum(i["type"] == "emergency" for i in todays),
        ids.KPI_MASS: sum(i["type"] == "mass" for i in todays),
        ids.KPI_PUBLIC_SAFETY: sum(i["type"] == "public_safety" for i in todays),
        ids.KPI_MAJOR: sum((i["severity"] or 4) <= 2 for i in todays),
        ids.KPI_OUTSIDE: sum(bool(i["outside"]) for i in todays),
    }


def township_counts(townships: list[list[str]], incidents: list[dict]) -> tuple[list, dict]:
    """Township names ordered by total (largest first) and per type their counts in that order."""
    index = {code: k for k, (code, _) in enumerate(townships)}
    counts = {c: [0] * len(townships) for c in layer_theme.TYPE_CODES}
    for i in incidents:
        k = index.get((i.get("township") or {}).get("code"))
        if k is not None:
            counts[i["type"] if i["type"] in counts else "other"][k] += 1
    totals = [sum(counts[c][k] for c in counts) for k in range(len(townships))]
    order = sorted(range(len(townships)), key=lambda k: (-totals[k], townships[k][0]))
    return ([townships[k][1] for k in order],
            {c: [counts[c][k] for k in order] for c in counts})


def township_figure(townships: list[list[str]], incidents: list[dict]) -> go.Figure:
    """A stacked horizontal bar per township (largest on top), one trace per type, plain lists."""
    names, counts = township_counts(townships, incidents)
    fig = go.Figure([
        go.Bar(orientation="h", y=names, x=counts[code], name=layer_theme.TYPE_LABELS[code],
               marker={"color": layer_theme.TYPE_COLORS[code], "line": {"width": 0}},
               hovertemplate="%{y} · " + layer_theme.TYPE_LABELS[code] + "：%{x} 起<extra></extra>")
        for code in layer_theme.TYPE_CODES
    ])
    axis = {"gridcolor": theme.CHART_GRID, "zeroline": False, "linecolor": theme.CHART_AXIS,
            "tickfont": {"color": theme.CHART_TEXT}, "fixedrange": True}
    fig.update_layout(
        barmode="stack", bargap=0.32, showlegend=False, uirevision="township-chart",
        paper_bgcolor=theme.CHART_BACKGROUND, plot_bgcolor=theme.CHART_BACKGROUND,
        font={"family": theme.FONT_FAMILY, "color": theme.CHART_TEXT,
              "size": theme.CHART_FONT_SIZE},
        margin={"l": 8, "r": 16, "t": 4, "b": 8},
        xaxis={**axis, "side": "top", "rangemode": "tozero", "tickformat": "d"},
        yaxis={**axis, "autorange": "reversed", "ticksuffix": "  ", "showgrid": False},
        hoverlabel={"bgcolor": theme.HOVER_BACKGROUND, "font": {"family": theme.FONT_FAMILY}},
    )
    return fig


def _map_figure(units, incidents: list[dict]) -> go.Figure:
    fig = figures.situation_figure(units, incidents)
    fig.update_layout(
        legend={"x": 0.01, "y": 0.99, "bgcolor": "rgba(11, 18, 32, 0.82)",
                "bordercolor": "rgba(120, 170, 240, 0.25)", "borderwidth": 1,
                "font": {"size": theme.CHART_FONT_SIZE, "family": theme.FONT_FAMILY},
                "itemsizing": "constant", "orientation": "v"},
    )
    return fig


def _header(county: str, now: datetime) -> html.Header:
    local = now.astimezone(SHANGHAI)
    return html.Header(className="wall-header", children=[
        html.Div(className="brand", children=[
            html.Div(className="brand-mark"),
            html.H1(f"{county}{WALL_TITLE}", id=ids.WALL_TITLE, className="brand-title"),
        ]),
        html.Div(className="header-right", children=[
            html.Div("连接中…", id=ids.LIVE_STATUS, className="live-status is-connecting"),
            html.Div(className="clock", children=[
                html.Span(_date_label(local), id=ids.CLOCK_DATE, className="clock-date"),
                html.Span(local.strftime("%H:%M:%S"), id=ids.CLOCK_TIME, className="clock-time"),
            ]),
        ]),
    ])


def _date_label(local: datetime) -> str:
    return f"{local.year}年{local.month}月{local.day}日 星期{WEEKDAYS[local.weekday()]}"


def _panel(title: str, body, *, note=None, extra: str = "") -> html.Div:
    head = [html.H2(title, className="panel-title")]
    if note is not None:
        head.append(html.Div(note, className="panel-note"))
    return html.Div(className=f"panel {extra}".strip(), children=[
        html.Div(className="panel-head", children=head),
        html.Div(className="panel-body", children=body),
    ])


def matter_tiles(session, principal, *, now) -> dict | None:
    """Today's 受理 and this month's 化解率, from the figures (None: no user, or no scope)."""
    if principal is None:
        return None
    try:
        where = stats.scope(principal)
    except Exception:  # a role without figures
        return None
    return stats.today_and_month(session, now=now, where=where)


def tile_text(kid: str, tiles: dict | None) -> str:
    """What a matter tile shows: a count, or a rate as a percentage (— without one)."""
    if tiles is None:
        return "—"
    if kid == ids.KPI_MATTERS_TODAY:
        return str(tiles["registered_today"])
    rate = tiles["resolution_rate_month"]
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _kpi(kid: str, label: str, accent: str, value, extra: str = "") -> html.Div:
    return html.Div(className=f"kpi {kid} {extra}".strip(), style={"--accent": accent}, children=[
        html.Div(label, className="kpi-label"),
        html.Div(str(value), id=kid, className="kpi-value"),
    ])


def _severity_legend() -> html.Div:
    return html.Div(className="sev-legend", children=[
        html.Div(className="sev-legend-item", children=[
            html.Span(className="sev-dot", style={"width": _rem(size), "height": _rem(size)}),
            html.Span(f"{theme.SEVERITY_NUMERALS[sev]}级"),
        ]) for sev, size in sorted(layer_theme.SEVERITY_SIZES.items())
    ])


def _rem(pixels: float) -> str:
    """Pixels at the 1920-wide design size as rem (assets/wall.css: 1rem = 15px there)."""
    return f"{pixels / 15:.3f}rem"


# Starts assets/wall.js with the opening state; it returns the status indicator's tooltip
# (a callback without an output is not run when a page's layout arrives).
dash.clientside_callback(
    ClientsideFunction(namespace="cmdcenter", function_name="start"),
    Output(ids.LIVE_STATUS, "title"),
    Input(ids.WALL_STATE, "data"),
)

dash.register_page(__name__, path="/", title="态势一张图 · 社会治理综合指挥中心", layout=layout)
