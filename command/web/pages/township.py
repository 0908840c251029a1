"""The township desk `/township` (乡镇/街道; stationed departments see their orders here too).

Its order nodes (and those of its grids, nested under the node they came from), with sign-off,
forwarding to its grids, progress, completion and return; and its incidents. Rendered once with
the opening state; `assets/command.js` keeps it live from Socket.IO `/field` (the unit's open
nodes on every connect, then each change; `delivered` receipts) and `/live` (incidents, with
`since` catch-up), and acts through the REST API.
"""

from __future__ import annotations

from datetime import timedelta

import dash
from dash import ClientsideFunction, Input, Output, dcc, html
from flask import current_app

from command.db import last_seq
from command.incidents import service as incidents_service
from command.incidents.workflow import STATE_LABELS
from command.orders import service as orders_service
from command.units import service as units_service
from command.web import field_ids as ids
from command.web import theme, ticker
from command.web.auth import page_user
from command.web.pages.command import PRIORITY_LABELS, header, me

WINDOW = timedelta(days=7)
LIST_CAP = 100
_WIRE_FIELDS = ("id", "seq", "type", "type_label", "severity", "title", "occurred_at",
                "township", "grid", "outside", "status", "status_label", "people")


def layout(**_):
    """Render the township desk with the opening state (empty for the validation layout)."""
    principal = page_user()
    core = current_app.extensions["cmdcenter"]
    now = core.clock.now()
    with core.read() as s:
        seq = last_seq(s)
        locator = core.units.current(s)
        unit_rows = units_service.get_all(s)
        incidents = [] if principal is None else incidents_service.recent(
            s, after=now - WINDOW, locator=locator, principal=principal)
    unit = principal.unit_code if principal is not None else None
    unit_name = next((u["name"] for u in unit_rows if u["code"] == unit), "")
    grids = [[u["code"], u["name"]] for u in unit_rows
             if u["level"] == "grid" and u["parent"] == unit]
    state = {
        "ids": {name.lower(): getattr(ids, name) for name in dir(ids) if name.isupper()},
        "me": me(principal),
        "unit_name": unit_name,
        "grids": grids,
        "last_seq": seq,
        "now": int(now.timestamp() * 1000),
        "list_cap": LIST_CAP,
        "incidents": [{k: i.get(k) for k in _WIRE_FIELDS} for i in incidents],
        "state_labels": STATE_LABELS,
        "node_labels": orders_service.NODE_STATE_LABELS,
        "priorities": [[c, PRIORITY_LABELS[c]] for c in orders_service.PRIORITIES],
        "numerals": {str(k): v for k, v in theme.SEVERITY_NUMERALS.items()},
        "severity_colors": {str(k): v for k, v in theme.SEVERITY_COLORS.items()},
    }
    return html.Div(className="cc-page cc-township", lang="zh-CN", children=[
        dcc.Store(id=ids.TOWNSHIP_STATE, data=state),
        header(f"{unit_name}指挥工作台", principal, ids.TOWNSHIP_STATUS),
        ticker.mount(principal, mode="desk"),
        html.Div(id=ids.TOWNSHIP_MESSAGE, className="cc-toast", role="status"),
        html.Main(className="cc-desk cc-desk-two", children=[
            html.Div(className="cc-stack", children=[
            html.Section(className="cc-card cc-matters-card", children=[
                html.Div(className="cc-card-head", children=[
                    html.H2("交办事项", className="cc-card-title"),
                    html.Span([html.Span("0", id=ids.TOWNSHIP_MATTER_COUNT), " 件，期限近的在前"],
                              className="cc-card-note"),
                ]),
                html.Div(id=ids.TOWNSHIP_MATTERS, className="cc-nodes mx-list"),
            ]),
            html.Section(className="cc-card cc-nodes-card", children=[
                html.Div(className="cc-card-head", children=[
                    html.H2("待办指令", className="cc-card-title"),
                    html.Span([html.Span("0", id=ids.TOWNSHIP_NODE_COUNT), " 条未办结"],
                              className="cc-card-note"),
                ]),
                html.Div(id=ids.TOWNSHIP_NODES, className="cc-nodes", children=[
                    html.P("暂无指令。", className="cc-empty")]),
            ]),
            ]),
            html.Section(className="cc-card cc-list-card", children=[
                html.Div(className="cc-card-head", children=[
                    html.H2("本辖区事件", className="cc-card-title"),
                    html.Span("近7天，最新在前", className="cc-card-note"),
                ]),
                html.Div(id=ids.TOWNSHIP_INCIDENTS, className="cc-list"),
            ]),
        ]),
    ])


dash.clientside_callback(
    ClientsideFunction(namespace="cmdcenterDesk", function_name="startTownship"),
    Output(ids.TOWNSHIP_STATUS, "title"),
    Input(ids.TOWNSHIP_STATE, "data"),
)

dash.clientside_callback(
    ClientsideFunction(namespace="cmdcenterWorklist", function_name="startUnit"),
    Output(ids.TOWNSHIP_MATTERS, "title"),
    Input(ids.TOWNSHIP_STATE, "data"),
)

dash.register_page(__name__, path="/township", title="乡镇工作台 · 社会治理综合指挥中心",
                   layout=layout)
