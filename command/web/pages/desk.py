"""The one window `/desk` (无差别受理窗口) for clerks (desk), duty officers and townships.

Keyboard-first registration a clerk finishes while the resident sits there, the person's earlier
matters beside the form, the 受理回执 printed on save, and the window's queue (matters registered
and not yet routed or closed, newest first, live). The page is rendered once with the opening
state; `assets/desk.js` draws the form as plain DOM, keeps the queue live from Socket.IO `/live`
(with `since` catch-up) and does every action through the REST API. The server decides what is
valid and allowed; the script checks ID numbers as they are typed only to help the clerk.
"""

from __future__ import annotations

import dash
from dash import ClientsideFunction, Input, Output, dcc, html
from flask import current_app

from command.db import last_seq
from command.incidents.types import TYPE_LABELS
from command.matters import categories, schemas
from command.matters import rules as rules_mod
from command.matters import service as matters_service
from command.matters.stats import local_day
from command.units import service as units_service
from command.users import service as users_service
from command.web import field_ids as ids
from command.web import ticker
from command.web.auth import page_user
from command.web.pages.command import header, me

QUEUE_CAP = 300
WAITING = ("reported", "accepted")  # in the window's queue: not yet routed or closed


def layout(**_):
    """Render the window with the opening state (empty for Dash's validation layout)."""
    principal = page_user()
    core = current_app.extensions["cmdcenter"]
    now = core.clock.now()
    queue: list[dict] = []
    with core.read() as s:
        seq = last_seq(s)  # read first: anything committed later arrives through `since`
        unit_rows = units_service.get_all(s)
        if principal is not None:
            queue = matters_service.queue(s, by=principal, locator=core.units.current(s),
                                          limit=QUEUE_CAP)
    own = principal.unit_code if principal is not None and principal.role == "township" \
        else None
    townships = [[u["code"], u["name"]] for u in unit_rows
                 if u["level"] == "township" and (own is None or u["code"] == own)]
    grids: dict[str, list[list[str]]] = {}
    for u in unit_rows:
        if u["level"] == "grid" and (own is None or u["parent"] == own):
            grids.setdefault(u["parent"], []).append([u["code"], u["name"]])
    leaders: list[str] = []
    if principal is not None:
        with core.read() as s:
            leaders = users_service.names_with_role(s, "leader")
    state = {
        "ids": {name.lower(): getattr(ids, name) for name in dir(ids) if name.isupper()},
        "depts": [[u["code"], u["name"]] for u in unit_rows if u["level"] == "dept"],
        "leaders": leaders,
        "tiers": list(rules_mod.TIERS.items()),
        "me": me(principal),
        "last_seq": seq,
        "now": int(now.timestamp() * 1000),
        "queue": queue,
        "queue_cap": QUEUE_CAP,
        "waiting": list(WAITING),
        "types": [[c, TYPE_LABELS[c]] for c in categories.MATTER_TYPES],
        "categories": list(categories.CATEGORY_LABELS.items()),
        "channels": [[c, categories.CHANNEL_LABELS[c]] for c in categories.WINDOW_CHANNELS],
        "roles": list(categories.ROLE_LABELS.items()),
        "kinds": list(categories.KIND_LABELS.items()),
        "risks": list(categories.RISK_LABELS.items()),
        "closures": list(schemas.CLOSURES.items()),
        "townships": townships,
        "grids": grids,
        "key_available": core.keyring.available,
    }
    return html.Div(className="cc-page cc-desk-page", lang="zh-CN", children=[
        dcc.Store(id=ids.DESK_STATE, data=state),
        header("无差别受理窗口", principal, ids.DESK_STATUS),
        ticker.mount(principal, mode="desk"),
        html.Div(id=ids.DESK_MESSAGE, className="cc-toast", role="status"),
        html.Main(className="dk-main", children=[
            html.Section(className="cc-card dk-form-card", children=[
                html.Div(className="cc-card-head", children=[
                    html.H2("受理登记", className="cc-card-title"),
                    html.Span("Tab 逐项填写 · Ctrl+Enter 保存并打印回执 · Alt+P 添加当事人",
                              className="cc-card-note"),
                ]),
                html.Div(id=ids.DESK_FORM, className="dk-form"),
            ]),
            html.Aside(className="dk-side", children=[
                html.Section(className="cc-card dk-find-card", children=[
                    html.Div(className="cc-card-head", children=[
                        html.H2("查找事项", className="cc-card-title"),
                        html.Span("案号、标题、当事人姓名，回车查找", className="cc-card-note"),
                    ]),
                    html.Div(id=ids.DESK_FIND, className="dk-find"),
                ]),
                html.Section(className="cc-card dk-earlier-card", children=[
                    html.Div(className="cc-card-head", children=[
                        html.H2("当事人以往事项", className="cc-card-title")]),
                    html.Div(id=ids.DESK_EARLIER, className="dk-earlier", children=[
                        html.P("输入身份证号、统一社会信用代码或手机号后，这里列出此人以往的事项。",
                               className="cc-empty")]),
                ]),
                html.Section(className="cc-card dk-todo-card", children=[
                    html.Div(className="cc-card-head", children=[
                        html.H2("待办提醒", className="cc-card-title"),
                        html.Span("退回待重新分流 · 临期逾期 · 今日待回访", className="cc-card-note"),
                    ]),
                    html.Div(id=ids.DESK_TODO, className="dk-queue"),
                ]),
                html.Section(className="cc-card dk-queue-card", children=[
                    html.Div(className="cc-card-head", children=[
                        html.H2("待分流事项", className="cc-card-title"),
                        html.Span([html.Span("0", id=ids.DESK_QUEUE_COUNT), " 件，最新在前"],
                                  className="cc-card-note"),
                    ]),
                    html.Div(id=ids.DESK_QUEUE, className="dk-queue"),
                    month_list_links(now),
                ]),
                html.Section(id=ids.DESK_DETAIL, className="cc-card dk-detail", hidden=True),
            ]),
        ]),
    ])


def month_list_links(now) -> html.Div:
    """本月事项清单: this month's matters as the lists show them, CSV or Excel (no party data)."""
    today = local_day(now)
    query = f"/api/v1/matters/export?from={today.replace(day=1).isoformat()}&to={today.isoformat()}"
    return html.Div(className="dk-downloads", children=[
        html.Span("本月事项清单", className="cc-card-note"),
        html.A("CSV", href=query + "&format=csv", className="cc-btn cc-btn-small"),
        html.A("Excel", href=query + "&format=xlsx", className="cc-btn cc-btn-small"),
    ])


dash.clientside_callback(
    ClientsideFunction(namespace="cmdcenterWindow", function_name="startWindow"),
    Output(ids.DESK_STATUS, "title"),
    Input(ids.DESK_STATE, "data"),
)

dash.register_page(__name__, path="/desk", title="受理窗口 · 社会治理综合指挥中心", layout=layout)
