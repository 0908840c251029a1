"""The command desk `/command` for leaders (指挥长) and duty officers (值班员).

A map of the county, the incident list and the detail panel of the selected incident: its facts,
the moves of the closed loop it may make, the order tree (live), the order form and the
timeline. The page is rendered once with the opening state; `assets/command.js` keeps it live from
Socket.IO `/live` (incidents with `since` catch-up, order-node changes) and does every action
through the REST API (`fetch` with the CSRF header). No business rule lives here or in the
script: the server answers what is allowed (`allowed`, 409 with a message).
"""

from __future__ import annotations

from datetime import timedelta

import dash
from dash import ClientsideFunction, Input, Output, dcc, html
from flask import current_app, session

from command.db import last_seq
from command.incidents import service as incidents_service
from command.incidents.workflow import STATE_LABELS
from command.matters import stats
from command.orders import service as orders_service
from command.units import service as units_service
from command.users.principal import ROLE_LABELS
from command.web import field_ids as ids
from command.web import theme, ticker
from command.web.auth import page_user
from layers import figures
from layers import theme as layer_theme

WINDOW = timedelta(hours=24)
LIST_CAP = 200
ISSUERS = ("leader", "admin")
MAP_GROUND = "#e8eef5"  # calm light ground; assets/command.js paints MapLibre's background layer
PRIORITY_LABELS = {"urgent": "特急", "high": "紧急", "normal": "一般"}
# Fields of an incident the desk needs on the list and the map (details come from REST).
_WIRE_FIELDS = ("id", "seq", "type", "type_label", "severity", "title", "occurred_at",
                "received_at", "lon", "lat", "township", "grid", "outside", "status",
                "status_label", "people")
MAP_CONFIG = {"displaylogo": False, "scrollZoom": True, "displayModeBar": False,
              "responsive": True}


def layout(**_):
    """Render the desk with the opening state (empty when Dash builds its validation layout)."""
    principal = page_user()
    core = current_app.extensions["cmdcenter"]
    now = core.clock.now()
    with core.read() as s:
        seq = last_seq(s)  # read first: anything committed later arrives through `since`
        locator = core.units.current(s)
        units = units_service.load_gdf(s)
        unit_rows = units_service.get_all(s)
        incidents, open_nodes, opening = [], [], None
        if principal is not None:
            incidents = incidents_service.recent(s, after=now - WINDOW, locator=locator,
                                                 principal=principal)
            open_nodes = orders_service.visible_nodes(s, by=principal, open_only=True,
                                                      locator=locator)
            opening = opening_figures(s, principal, now=now, locator=locator)
    incidents = [{k: i.get(k) for k in _WIRE_FIELDS} for i in incidents]
    limits = core.limits
    state = {
        "ids": _ids(),
        "me": me(principal),
        "can_issue": principal is not None and principal.role in ISSUERS,
        "last_seq": seq,
        "now": int(now.timestamp() * 1000),
        "window_ms": int(WINDOW.total_seconds() * 1000),
        "list_cap": LIST_CAP,
        "incidents": incidents,
        "open_nodes": [{"id": n["id"], "incident_id": n["incident_id"], "seq": n["seq"]}
                       for n in open_nodes],
        "townships": _units(unit_rows, "township"),
        "grids": _grids(unit_rows),
        "depts": _units(unit_rows, "dept"),
        "limits": {str(sev): list(limits.minutes(sev)) for sev in (1, 2, 3, 4)},
        "state_labels": STATE_LABELS,
        "node_labels": orders_service.NODE_STATE_LABELS,
        "priorities": [[code, PRIORITY_LABELS[code]] for code in orders_service.PRIORITIES],
        "trace_offset": figures.INCIDENT_TRACE_OFFSET,
        "types": [{"code": c, "label": layer_theme.TYPE_LABELS[c],
                   "color": layer_theme.TYPE_COLORS[c]} for c in layer_theme.TYPE_CODES],
        "sizes": {str(k): v for k, v in layer_theme.SEVERITY_SIZES.items()},
        "default_size": layer_theme.DEFAULT_SIZE,
        "numerals": {str(k): v for k, v in theme.SEVERITY_NUMERALS.items()},
        "severity_names": {str(k): v for k, v in theme.SEVERITY_NAMES.items()},
        "severity_colors": {str(k): v for k, v in theme.SEVERITY_COLORS.items()},
        "map_background": MAP_GROUND,
        "stats": opening,
        "stats_fields": {k: v for k, v in stats.LABELS.items()},
    }
    county = next((u["name"] for u in unit_rows if u["level"] == "county"), "")
    return html.Div(className="cc-page cc-command", lang="zh-CN", children=[
        dcc.Store(id=ids.COMMAND_STATE, data=state),
        with_brief_form(header(f"{county}社会治理指挥调度台", principal, ids.COMMAND_STATUS,
                               ids.COMMAND_CLOCK)),
        ticker.mount(principal, mode="desk"),
        html.Div(id=ids.COMMAND_MESSAGE, className="cc-toast", role="status"),
        html.Main(className="cc-desk", children=[
            html.Section(className="cc-card cc-list-card", children=[
                html.Div(className="cc-card-head", children=[
                    html.H2("事件列表", className="cc-card-title"),
                    html.Span([html.Span(str(len(incidents)), id=ids.COMMAND_LIST_COUNT),
                               " 起 · 近24小时，最新在前"], className="cc-card-note"),
                ]),
                html.Div(id=ids.COMMAND_LIST, className="cc-list", role="listbox",
                         **{"aria-label": "事件列表"}),
            ]),
            html.Section(className="cc-card cc-map-card", children=[
                html.Div(className="cc-card-head", children=[
                    html.H2("态势地图", className="cc-card-title"),
                    html.Span("点击地图上的事件查看详情", className="cc-card-note"),
                ]),
                dcc.Graph(id=ids.COMMAND_MAP, figure=map_figure(units, incidents),
                          config=MAP_CONFIG, className="cc-map"),
            ]),
            html.Section(className="cc-card cc-detail-card", children=[
                html.Div(id=ids.COMMAND_FACTS, className="cc-facts", children=[
                    html.P("请在左侧列表或地图上选择一起事件。", className="cc-empty"),
                ]),
                html.Div(id=ids.COMMAND_ACTIONS, className="cc-actions"),
                html.Div(id=ids.COMMAND_TREE, className="cc-tree"),
                html.Div(id=ids.COMMAND_FORM, className="cc-form"),
                html.Div(id=ids.COMMAND_TIMELINE, className="cc-timeline"),
            ]),
        ]),
        stats_view(opening),
    ])


def opening_figures(session, principal, *, now, locator) -> dict | None:
    """This month's figures by lead unit, as the statistics view opens."""
    today = stats.local_day(now)
    try:
        where = stats.scope(principal)
    except Exception:  # a role without figures: the view stays empty
        return None
    return stats.figures(session, stats.DayRange(today.replace(day=1), today), by="dept",
                         where=where, locator=locator)


PERIODS = (("month", "本月"), ("day", "今日"), ("week", "本周"), ("year", "本年"),
           ("range", "自定义"))


def stats_view(figures: dict | None) -> html.Section:
    """事项统计: the figures by unit, township, category or channel over a day, a week, a month
    or any range, against the period before, with their downloads (assets/command_stats.js
    draws the table and keeps it current)."""
    start = figures["from"] if figures else ""
    end = figures["to"] if figures else ""
    return html.Section(id=ids.COMMAND_STATS, className="cc-card cc-stats-card", children=[
        html.Div(className="cc-card-head", children=[
            html.H2("事项统计", className="cc-card-title"),
            html.Span("受理量按登记日期；化解率、满意率、按期办结率按办结日期；与之前同样天数的上期比较",
                      id=ids.COMMAND_STATS_NOTE, className="cc-card-note"),
        ]),
        html.Div(className="cc-stats-controls", children=[
            html.Label(["统计维度", html.Select(id=ids.COMMAND_STATS_BY, className="cc-input",
                                            children=[html.Option(label, value=code)
                                                      for code, label in stats.BY.items()])]),
            html.Label(["统计周期", html.Select(id=ids.COMMAND_STATS_PERIOD, className="cc-input",
                                            children=[html.Option(label, value=code)
                                                      for code, label in PERIODS])]),
            html.Label(["起始日期", dcc.Input(id=ids.COMMAND_STATS_FROM, type="date", value=start,
                                          className="cc-input", debounce=True)]),
            html.Label(["截止日期", dcc.Input(id=ids.COMMAND_STATS_TO, type="date", value=end,
                                          className="cc-input", debounce=True)]),
            html.Div(className="cc-stats-downloads", children=[
                html.Span("下载统计表", className="cc-stats-dl-label"),
                html.A("CSV", id=ids.COMMAND_STATS_CSV, className="cc-btn cc-btn-small",
                       href=_href("/api/v1/stats/matters", start, end, "csv", "dept")),
                html.A("Excel", id=ids.COMMAND_STATS_XLSX, className="cc-btn cc-btn-small",
                       href=_href("/api/v1/stats/matters", start, end, "xlsx", "dept")),
                html.Span("下载事项清单", className="cc-stats-dl-label"),
                html.A("CSV", id=ids.COMMAND_MATTERS_CSV, className="cc-btn cc-btn-small",
                       href=_href("/api/v1/matters/export", start, end, "csv")),
                html.A("Excel", id=ids.COMMAND_MATTERS_XLSX, className="cc-btn cc-btn-small",
                       href=_href("/api/v1/matters/export", start, end, "xlsx")),
            ]),
        ]),
        html.Div(id=ids.COMMAND_STATS_TABLE, className="cc-stats-table"),
    ])


def _href(path: str, start: str, end: str, fmt: str, by: str | None = None) -> str:
    return f"{path}?from={start}&to={end}" + (f"&by={by}" if by else "") + f"&format={fmt}"


def with_brief_form(head: html.Header) -> html.Header:
    """The header with the 生成简报 button first on its right side (county desk only)."""
    head.children[-1].children.insert(0, brief_form())
    return head


def brief_form() -> html.Details:
    """生成简报: a plain GET form to /api/v1/briefs; the answer is a download (no callback)."""
    return html.Details(className="cc-brief", children=[
        html.Summary("生成简报", className="cc-btn cc-btn-small cc-brief-toggle"),
        html.Form(method="get", action="/api/v1/briefs", className="cc-brief-form", children=[
            html.Label(["周期", html.Select(name="period", className="cc-input", children=[
                html.Option("周报（ISO周）", value="week"), html.Option("日报", value="day"),
                html.Option("月报", value="month")])]),
            html.Label(["日期", dcc.Input(type="date", name="date", className="cc-input")]),
            html.Label(["格式", html.Select(name="format", className="cc-input", children=[
                html.Option("网页 HTML", value="html"), html.Option("PDF", value="pdf"),
                html.Option("Word", value="docx"), html.Option("Markdown", value="md")])]),
            html.Button("下载", type="submit", className="cc-btn cc-btn-primary cc-btn-small"),
            html.Span("日期留空：上一个完整周期（昨日、上周、上月）", className="cc-brief-hint"),
        ]),
    ])


def map_figure(units, incidents: list[dict]):
    """The offline situation map in the desk's light style, plus a halo for the selection."""
    import plotly.graph_objects as go

    fig = figures.situation_figure(units, incidents)
    fig.add_trace(go.Scattermap(lon=[], lat=[], mode="markers", hoverinfo="skip",
                                marker={"size": 38, "color": "#1d4ed8", "opacity": 0.28},
                                name="selected", showlegend=False))
    fig.update_layout(
        paper_bgcolor=MAP_GROUND, plot_bgcolor=MAP_GROUND,
        font={"color": "#1f2a3d", "family": theme.FONT_FAMILY},
        legend={"x": 0.01, "y": 0.99, "bgcolor": "rgba(255, 255, 255, 0.88)",
                "bordercolor": "rgba(30, 60, 110, 0.18)", "borderwidth": 1,
                "font": {"size": 13, "color": "#1f2a3d"}, "orientation": "v",
                "itemsizing": "constant"},
    )
    fig.update_traces(selector={"type": "choroplethmap"},
                      marker={"line": {"color": "rgba(37, 84, 160, 0.55)"}})
    return fig


def _ids() -> dict:
    return {name.lower(): getattr(ids, name) for name in dir(ids) if name.isupper()}


def me(principal) -> dict:
    """The signed-in user as the page scripts need them."""
    if principal is None:
        return {"name": "", "role": "", "role_label": "", "unit": None}
    return {"name": principal.name, "role": principal.role,
            "role_label": ROLE_LABELS.get(principal.role, principal.role),
            "unit": principal.unit_code}


def _units(rows: list[dict], level: str) -> list[list[str]]:
    return [[u["code"], u["name"]] for u in rows if u["level"] == level]


def _grids(rows: list[dict]) -> dict[str, list[list[str]]]:
    grids: dict[str, list[list[str]]] = {}
    for u in rows:
        if u["level"] == "grid":
            grids.setdefault(u["parent"], []).append([u["code"], u["name"]])
    return grids


def header(title: str, principal, status_id: str, clock_id: str | None = None) -> html.Header:
    """The faces' common header: title, live status, (clock,) user and sign-out."""
    user = me(principal)
    right = [html.Div("连接中…", id=status_id, className="cc-live is-connecting")]
    if clock_id:
        right.append(html.Div(id=clock_id, className="cc-clock"))
    right.append(html.Div(className="cc-user", children=[
        html.Span(user["role_label"], className="cc-role"), html.Span(user["name"])]))
    right.append(html.Form(method="post", action="/logout", className="cc-logout", children=[
        dcc.Input(type="hidden", name="csrf_token", value=_csrf()),
        html.Button("退出", type="submit", className="cc-btn cc-btn-quiet"),
    ]))
    return html.Header(className="cc-header", children=[
        html.Div(className="cc-brand", children=[html.Div(className="cc-brand-mark"),
                                                 html.H1(title, className="cc-title")]),
        html.Div(className="cc-header-right", children=right),
    ])


def _csrf() -> str:
    from flask import has_request_context

    return session.get("csrf", "") if has_request_context() else ""


# Starts assets/command.js with the opening state; the map's clicks select an incident.
dash.clientside_callback(
    ClientsideFunction(namespace="cmdcenterDesk", function_name="startCommand"),
    Output(ids.COMMAND_STATUS, "title"),
    Input(ids.COMMAND_STATE, "data"),
)
dash.clientside_callback(
    ClientsideFunction(namespace="cmdcenterDesk", function_name="mapClick"),
    Output(ids.COMMAND_LIST, "title"),
    Input(ids.COMMAND_MAP, "clickData"),
    prevent_initial_call=True,
)

dash.register_page(__name__, path="/command", title="指挥调度台 · 社会治理综合指挥中心",
                   layout=layout)
