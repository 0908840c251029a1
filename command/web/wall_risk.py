"""The wall screen's analysis modes: 实时 / 风险 / 回放, the hotspot layer and the trend panel.

`command/web/pages/wall.py` places these pieces; `assets/wall_risk.js` runs them in the page:

- 风险 recolours the township layer (trace 0) by the score of GET /api/v1/risk; the hover of a
  township says why (its parts), the legend explains the formula (command.risk.score);
- 热点 fills a hexagon layer appended to the map with GET /api/v1/hotspots?days=7 (any mode);
- 回放 hides the live incident traces and plays GET /api/v1/replay into its own traces, in the
  order the incidents occurred, with a clock; 实时 shows the live traces again, which wall.js
  kept patching all along;
- the trend panel compares this period with the previous one (GET /api/v1/trends).

The traces are appended after every existing trace, so the indices wall.js patches never move.
Controls are Dash components; thin clientside callbacks hand their clicks to the script.
"""

from __future__ import annotations

import dash
from dash import ALL, ClientsideFunction, Input, Output, dcc, html

from command.risk import score as scoring
from command.risk import service as risk_service
from command.web import ids, theme
from layers import figures
from layers import theme as layer_theme

# component ids (the script receives them through the config store)
CONFIG = "risk-config"
LAYER = "risk-layer"
MODE = "risk-mode"              # pattern: {"type": MODE, "mode": live|risk|replay}
HOTSPOT = "risk-hotspot-toggle"
LEGEND_TIME = "risk-legend-time"
HOTSPOT_NOTE = "risk-hotspot-note"
SPAN = "risk-trend-span"         # pattern: {"type": SPAN, "span": 24h|30d}
TREND_CHART = "risk-trend-chart"
TREND_SUMMARY = "risk-trend-summary"
UNIT = "risk-replay-unit"        # pattern: {"type": UNIT, "unit": hour|day}
SLIDER = "risk-replay-slider"
PLAY = "risk-replay-play"
SPEED = "risk-replay-speed"      # pattern: {"type": SPEED, "x": seconds}
CLOCK = "risk-replay-clock"
PROGRESS = "risk-replay-progress"
LATEST = "risk-replay-latest"

MODES = (("live", "实时"), ("risk", "风险"), ("replay", "回放"))
SPANS = (("24h", "24小时"), ("30d", "30天"))
UNITS = (("hour", "按小时"), ("day", "按天"))
# how long a whole replay (an hour or a day) takes to play, in seconds
SPEEDS = ((30, "30秒"), (60, "1分钟"), (120, "2分钟"), (300, "5分钟"))
DEFAULT_SPEED = 60
REPLAY_STEPS = {"hour": 48, "day": 30}  # how far back the slider reaches
REFRESH_MS = 60_000
HOTSPOT_DAYS = 7
HOTSPOT_CELL_M = 1000
CHART_CONFIG = {"displaylogo": False, "displayModeBar": False, "responsive": True}


def opening_trends(session, *, now, principal) -> dict | None:
    """The trend panel's first data (None while Dash builds its validation layout)."""
    if principal is None:
        return None
    return risk_service.trends(session, now=now, span="24h", principal=principal)


def add_map_layers(fig) -> dict:
    """Append the hotspot layer and the replay traces to the situation map; their indices."""
    hotspot = len(fig.data)
    fig.add_trace(figures.hotspot_trace())
    first = len(fig.data)
    fig.add_traces(figures.replay_traces())
    return {"hotspot": hotspot, "replay": list(range(first, len(fig.data)))}


def config(fig, traces: dict, now) -> dict:
    """The script's configuration: ids, trace indices and what restores the live look."""
    township, grid = fig.data[0], fig.data[1]
    offset = figures.INCIDENT_TRACE_OFFSET
    return {
        "ids": {"layer": LAYER, "hotspot": HOTSPOT, "legend_time": LEGEND_TIME,
                "hotspot_note": HOTSPOT_NOTE, "trend_chart": TREND_CHART,
                "trend_summary": TREND_SUMMARY, "slider": SLIDER, "play": PLAY, "clock": CLOCK,
                "progress": PROGRESS, "latest": LATEST, "map": ids.SITUATION_MAP},
        "now": int(now.timestamp() * 1000),
        "traces": {"township": 0, "grid": 1,
                   "live": list(range(offset, offset + len(layer_theme.TYPE_CODES))), **traces},
        "township_codes": list(township.locations),
        "township_look": {"z": list(township.z), "colorscale": township.colorscale,
                          "text": list(township.text)},
        # the grid layer lies on top and answers the hover: in 风险 its text names the township's
        # score too (a grid's township is its `parent`)
        "grid_parents": [f["properties"]["parent"] for f in grid.geojson["features"]],
        "grid_text": list(grid.text),
        "risk_colorscale": figures.RISK_COLORSCALE,
        "types": [{"code": c, "label": layer_theme.TYPE_LABELS[c],
                   "color": layer_theme.TYPE_COLORS[c]} for c in layer_theme.TYPE_CODES],
        "sizes": {str(k): v for k, v in layer_theme.SEVERITY_SIZES.items()},
        "default_size": layer_theme.DEFAULT_SIZE,
        "default_speed": DEFAULT_SPEED, "steps": REPLAY_STEPS,
        "refresh_ms": REFRESH_MS, "hotspot_days": HOTSPOT_DAYS, "hotspot_cell": HOTSPOT_CELL_M,
    }


def store(data: dict) -> dcc.Store:
    """The config store that starts the script."""
    return dcc.Store(id=CONFIG, data=data)


def mode_switch() -> html.Div:
    """实时 / 风险 / 回放 and the hotspot switch (in the map panel's head)."""
    return html.Div(className="risk-switch", role="group", **{"aria-label": "显示模式"}, children=[
        *[html.Button(label, id={"type": MODE, "mode": mode}, n_clicks=0,
                      className="risk-btn is-on" if mode == "live" else "risk-btn",
                      **{"data-mode": mode}) for mode, label in MODES],
        html.Span(className="risk-sep"),
        html.Button("热点", id=HOTSPOT, n_clicks=0, className="risk-btn risk-toggle",
                    title=f"近{HOTSPOT_DAYS}天事件按 {HOTSPOT_CELL_M / 1000:g} 公里六边形汇总"),
    ])


def map_overlay() -> html.Div:
    """Legends and the replay bar over the map; the script sets the mode classes."""
    return html.Div(id=LAYER, className="risk-layer mode-live", children=[
        html.Div(className="risk-legends", children=[
            html.Div(className="hotspot-legend", children=[
                html.Div(f"热点 · 近{HOTSPOT_DAYS}天", className="risk-legend-title"),
                html.Div(className="hotspot-ramp"),
                html.Div(className="ramp-labels", children=[html.Span("少"), html.Span(
                    "", id=HOTSPOT_NOTE), html.Span("多")]),
            ]),
            _risk_legend(),
        ]),
        _replay_bar(),
    ])


def _risk_legend() -> html.Div:
    lines = scoring.formula()
    return html.Div(className="risk-legend", children=[
        html.Div(className="risk-legend-head", children=[
            html.Span("乡镇（街道）风险指数", className="risk-legend-title"),
            html.Span("", id=LEGEND_TIME, className="risk-legend-time"),
        ]),
        html.Div(className="risk-bands", children=[
            html.Span(f"{colour} {lo:g}+" if lo else f"{colour} 0–25",
                      className=f"risk-band band-{level}", title=meaning)
            for lo, level, colour, meaning in reversed(scoring.BANDS)
        ]),
        html.Div(lines[0], className="risk-formula-lead"),
        html.Ol(className="risk-formula", children=[html.Li(line) for line in lines[1:-1]]),
        html.Div(f"{lines[-1]}；悬停乡镇查看各项得分", className="risk-formula-foot"),
    ])


def _replay_bar() -> html.Div:
    return html.Div(className="replay-bar", children=[
        html.Div(className="replay-row", children=[
            html.Div(className="risk-switch small", children=[
                html.Button(label, id={"type": UNIT, "unit": unit}, n_clicks=0,
                            className="risk-btn is-on" if unit == "hour" else "risk-btn",
                            **{"data-unit": unit}) for unit, label in UNITS]),
            html.Div(className="replay-slider", children=dcc.Slider(
                id=SLIDER, min=0, max=REPLAY_STEPS["hour"] - 1, step=1,
                value=REPLAY_STEPS["hour"] - 2, marks=None, allow_direct_input=False,
                updatemode="mouseup", className="risk-slider")),
            html.Button("▶ 播放", id=PLAY, n_clicks=0, className="risk-btn replay-play"),
            html.Div(className="risk-switch small", title="全程用时", children=[
                html.Button(label, id={"type": SPEED, "x": x}, n_clicks=0,
                            className="risk-btn is-on" if x == DEFAULT_SPEED else "risk-btn",
                            **{"data-speed": str(x)}) for x, label in SPEEDS]),
        ]),
        html.Div(className="replay-row replay-status", children=[
            html.Span("—", id=CLOCK, className="replay-clock"),
            html.Span("", id=PROGRESS, className="replay-progress"),
            html.Span("", id=LATEST, className="replay-latest"),
        ]),
    ])


def trend_switch() -> html.Div:
    """24小时 / 30天 (in the trend panel's head)."""
    return html.Div(className="risk-switch small", children=[
        html.Button(label, id={"type": SPAN, "span": span}, n_clicks=0,
                    className="risk-btn is-on" if span == "24h" else "risk-btn",
                    **{"data-span": span}) for span, label in SPANS])


def trend_body(series: dict | None) -> html.Div:
    """The trend chart (this period by type, the previous total dashed) and its summary."""
    return html.Div(className="trend-wrap", children=[
        html.Div(summary(series), id=TREND_SUMMARY, className="trend-summary"),
        dcc.Graph(id=TREND_CHART, figure=figures.trend_figure(series, layout=_chart_look()),
                  config=CHART_CONFIG, className="chart trend-chart"),
    ])


def summary(series: dict | None) -> str:
    """"本期 N 起 · 上期同期 M 起 · +x%" (the script writes the same text after each refresh)."""
    if not series:
        return ""
    s = series["sum"]
    change = "" if s["change"] is None else f" · {s['change']:+.0%}"
    word = "近24小时" if series["span"] == "24h" else "近30天"
    return f"{word} {s['current']} 起 · 上期同期 {s['previous_to_date']} 起{change}（柱：本期，虚线：上期）"


def _chart_look() -> dict:
    axis = {"gridcolor": theme.CHART_GRID, "zeroline": False, "linecolor": theme.CHART_AXIS,
            "tickfont": {"color": theme.CHART_TEXT}}
    return {"paper_bgcolor": theme.CHART_BACKGROUND, "plot_bgcolor": theme.CHART_BACKGROUND,
            "font": {"family": theme.FONT_FAMILY, "color": theme.CHART_TEXT,
                     "size": theme.CHART_FONT_SIZE},
            "xaxis": {**axis, "nticks": 8}, "yaxis": axis, "hovermode": "x unified",
            "hoverlabel": {"bgcolor": theme.HOVER_BACKGROUND,
                           "font": {"family": theme.FONT_FAMILY}}}


# --- the clientside callbacks: each hands one control to assets/wall_risk.js -------------------

def _client(function_name: str, output, *inputs, initial: bool = False) -> None:
    dash.clientside_callback(ClientsideFunction(namespace="cmdcenterRisk",
                                                function_name=function_name),
                             output, *inputs, prevent_initial_call=not initial)


_client("start", Output(LAYER, "title"), Input(CONFIG, "data"), initial=True)
_client("mode", Output({"type": MODE, "mode": ALL}, "className"),
        Input({"type": MODE, "mode": ALL}, "n_clicks"))
_client("hotspots", Output(HOTSPOT, "className"), Input(HOTSPOT, "n_clicks"))
_client("span", Output({"type": SPAN, "span": ALL}, "className"),
        Input({"type": SPAN, "span": ALL}, "n_clicks"))
_client("unit", Output({"type": UNIT, "unit": ALL}, "className"),
        Input({"type": UNIT, "unit": ALL}, "n_clicks"))
_client("pick", Output(SLIDER, "className"), Input(SLIDER, "value"))
_client("play", Output(PLAY, "className"), Input(PLAY, "n_clicks"))
_client("speed", Output({"type": SPEED, "x": ALL}, "className"),
        Input({"type": SPEED, "x": ALL}, "n_clicks"))
