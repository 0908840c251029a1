"""The grid worker's phone page `/grid` (网格员): open orders as large cards.

签收 (sign off), 完成 (complete with a result), progress notes and 退回 (return with a reason).
A new order is announced at once: a banner, and a short beep once the worker has tapped the page
(browsers allow sound only after a gesture). `assets/field.js` listens on Socket.IO `/field`
(open nodes on every connect, then each change), sends `delivered` receipts and acts through the
REST API.
"""

from __future__ import annotations

import dash
from dash import ClientsideFunction, Input, Output, dcc, html
from flask import current_app

from command.orders import service as orders_service
from command.units import service as units_service
from command.web import field_ids as ids
from command.web import ticker
from command.web.auth import page_user
from command.web.pages.command import PRIORITY_LABELS, me


def layout(**_):
    """Render the worker's page shell; the orders arrive over `/field` at once."""
    principal = page_user()
    core = current_app.extensions["cmdcenter"]
    with core.read() as s:
        unit_rows = units_service.get_all(s)
    unit = principal.unit_code if principal is not None else None
    unit_name = next((u["name"] for u in unit_rows if u["code"] == unit), "")
    user = me(principal)
    state = {
        "ids": {name.lower(): getattr(ids, name) for name in dir(ids) if name.isupper()},
        "me": user,
        "unit_name": unit_name,
        "now": int(core.clock.now().timestamp() * 1000),
        "node_labels": orders_service.NODE_STATE_LABELS,
        "priorities": [[c, PRIORITY_LABELS[c]] for c in orders_service.PRIORITIES],
    }
    return html.Div(className="cc-page cc-grid", lang="zh-CN", children=[
        dcc.Store(id=ids.GRID_STATE, data=state),
        html.Header(className="cc-phone-header", children=[
            html.Div(className="cc-phone-title", children=[
                html.H1("网格工作台", className="cc-title"),
                html.Div(f"{unit_name} · {user['name']}", className="cc-phone-sub"),
            ]),
            html.Div("连接中…", id=ids.GRID_STATUS, className="cc-live is-connecting"),
        ]),
        ticker.mount(principal, mode="phone"),
        html.Div(id=ids.GRID_BANNER, className="cc-banner", role="alert"),
        html.Div(id=ids.GRID_MESSAGE, className="cc-toast", role="status"),
        html.Main(id=ids.GRID_CARDS, className="cc-cards", children=[
            html.P("暂无待办指令。新指令到达时会立即提醒。", className="cc-empty"),
        ]),
    ])


dash.clientside_callback(
    ClientsideFunction(namespace="cmdcenterField", function_name="start"),
    Output(ids.GRID_STATUS, "title"),
    Input(ids.GRID_STATE, "data"),
)

dash.register_page(__name__, path="/grid", title="网格工作台 · 社会治理综合指挥中心",
                   layout=layout)
