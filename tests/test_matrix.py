"""Role × endpoint matrix: every role against every REST endpoint and namespace of one server.

One real server for the module, with a user of every role (two townships, two grids of one
township, two departments), a feed and nobody; two incidents (one in DEMO-T01-G01, one in
DEMO-T02) and orders from the leader to DEMO-T01 (forwarded to DEMO-T01-G01) and dept.police,
to DEMO-T02, and one straight to the grid DEMO-T02-G01 that runs overdue (an alert to DEMO-T02).

Each endpoint is one line of `RULES`: who is allowed (and with which status), who is skipped
(allowed but not idempotent: the journey test at the end does those), and everyone else is
refused: 401 without a user (no token, a feed token), 403 for a user of the wrong role or scope.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests
import socketio

from tests import servers
from tests.test_wire import report

ROLES = {  # caller -> (role, unit)
    "duty": ("duty", None), "leader": ("leader", None), "admin": ("admin", None),
    "town1": ("township", "DEMO-T01"), "town2": ("township", "DEMO-T02"),
    "grid1": ("grid", "DEMO-T01-G01"), "grid2": ("grid", "DEMO-T01-G02"),
    "police": ("dept", "dept.police"), "court": ("dept", "dept.court"),
    "desk": ("desk", None),
}
USERS = tuple(ROLES)
COUNTY = ("duty", "leader", "admin")
CALLERS = (*USERS, "feed", "none")
ALERT_WAIT = 60.0  # the overdue order's one-minute limit is passed by moving the server's clock


# --- the world ------------------------------------------------------------------------------

class World:
    """The module's server, tokens and the ids the table refers to."""

    def __init__(self, server: servers.Server) -> None:
        self.server = server
        self.tokens: dict[str, str | None] = {"none": None}
        self.ids: dict[str, str] = {}
        self.units: dict[str, dict] = {}
        self.points: dict = {}  # unit code -> a point inside it, to report incidents at
        self.matters: set[str] = set()  # incident ids of matters (the window's clerk sees those)

    @property
    def url(self) -> str:
        return self.server.url

    def call(self, caller: str, method: str, path: str, body=None) -> requests.Response:
        """Send a request as `caller` (a user, the feed, or nobody)."""
        token = self.tokens[caller]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.request(method, self.url + path, json=body, headers=headers, timeout=30)

    def ok(self, caller: str, method: str, path: str, body=None):
        """Send a request that must succeed; return its JSON."""
        r = self.call(caller, method, path, body)
        assert r.status_code == 200, f"{caller} {method} {path}: {r.status_code} {r.text}"
        return r.json()

    def incident_at(self, unit: str, tag: str) -> str:
        """Report an incident at a unit's representative point (through the feed); its id."""
        point = self.points[unit]
        r = self.call("feed", "POST", "/api/v1/reports",
                      report(f"{tag}-{uuid.uuid4().hex[:8]}", lon=point.x, lat=point.y))
        assert r.status_code == 200, r.text
        incident = r.json()["incident"]
        assert (incident["grid"] or incident["township"])["code"].startswith(unit), incident
        return incident["id"]

    def issue(self, incident_id: str, targets: list[str], **extra) -> dict:
        """The leader issues an order; the order with its nodes."""
        body = {"incident_id": incident_id, "targets": targets, "instruction": "立即到场调处",
                **extra}
        return self.ok("leader", "POST", "/api/v1/orders", body)

    def node_of(self, order: dict, target: str) -> str:
        return next(n["id"] for n in order["nodes"] if n["target"]["code"] == target)

    def sees_node(self, caller: str, node: dict) -> bool:
        """The scope rule for order nodes, as the issue states it."""
        role, unit = ROLES[caller]
        code = node["target"]["code"]
        if role in COUNTY:
            return True
        if role == "desk":
            return node["incident_id"] in self.matters
        if role == "township":
            return code == unit or self.units.get(code, {}).get("parent") == unit
        return code == unit


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from layers.demo import demo_county

    with pytest.MonkeyPatch.context() as mp:
        import os
        for name in list(os.environ):
            if name.startswith("CMDCENTER_"):
                mp.delenv(name)
        root = tmp_path_factory.mktemp("matrix")
        env = {"CMDCENTER_LOG": "WARNING", "CMDCENTER_SUPERVISION_SECONDS": "1",
               "CMDCENTER_TIME_LIMITS": '{"escalate_after": 1000}',
               "CMDCENTER_CLOCK_FILE": str(root / "clock")}
        server = servers.Server(root / "data", servers.free_port(), env).start()
        try:
            w = World(server)
            shapes = demo_county().set_index("code")
            w.points = {code: shapes.loc[code].geometry.representative_point()
                        for code in ("DEMO-T01-G01", "DEMO-T01-G02", "DEMO-T02")}
            w.tokens["leader"] = server.add_user("m-leader", "leader")
            w.tokens["feed"] = server.add_feed("m-feed", "DEMO-T01")
            w.ids["inc_g01"] = w.incident_at("DEMO-T01-G01", "g01")
            w.ids["inc_t02"] = w.incident_at("DEMO-T02", "t02")
            # its one-minute sign-off limit runs out when overdue_alert moves the clock
            late = w.issue(w.ids["inc_t02"], ["DEMO-T02-G01"], ack_minutes=1, due_minutes=600)
            w.ids["node_late"] = w.node_of(late, "DEMO-T02-G01")
            for caller, (role, unit) in ROLES.items():
                if caller != "leader":
                    w.tokens[caller] = server.add_user(f"m-{caller}", role, unit)
            w.units = {u["code"]: u for u in w.ok("duty", "GET", "/api/v1/units")}
            first = w.issue(w.ids["inc_g01"], ["DEMO-T01", "dept.police"])
            w.ids["node_t01"] = w.node_of(first, "DEMO-T01")
            w.ids["node_police"] = w.node_of(first, "dept.police")
            (child,) = w.ok("town1", "POST", f"/api/v1/orders/{w.ids['node_t01']}/forward",
                            {"targets": ["DEMO-T01-G01"], "instruction": "请网格员到场"})
            w.ids["node_g01"] = child["id"]
            w.ids["node_t02"] = w.node_of(w.issue(w.ids["inc_t02"], ["DEMO-T02"]), "DEMO-T02")
            matter = w.ok("desk", "POST", "/api/v1/matters", MATTER)
            w.ids["matter"], w.ids["matter_id"] = matter["case_no"], matter["id"]
            w.matters.add(matter["id"])
            w.ids["node_matter"] = w.node_of(w.issue(matter["id"], ["DEMO-T01"]), "DEMO-T01")
            yield w
        finally:
            server.stop()


@pytest.fixture(scope="module")
def overdue_alert(world):
    """The id of the overdue alert of the late grid node (the server's clock is moved past its
    one-minute limit; supervision raises it at its next tick)."""
    world.server.advance_clock(61)
    deadline = time.monotonic() + ALERT_WAIT
    while time.monotonic() < deadline:
        for alert in world.ok("duty", "GET", "/api/v1/alerts"):
            if world.ids["inc_t02"] in alert["incidents"] and alert["rule"] == "overdue":
                world.ids["alert"] = alert["id"]
                return alert["id"]
        time.sleep(1)
    pytest.fail(f"no overdue alert after {ALERT_WAIT:.0f} s")


# --- the table ------------------------------------------------------------------------------

def rule(method: str, path: str, allowed=(), *, status: int = 200, skip=(), body=None,
         refused: int = 403, special: dict | None = None, known_bugs: dict | None = None
         ) -> list[tuple]:
    """Rows for one endpoint: `allowed` get `status`, `skip` are left to the journey test,
    `special` maps callers to their own status, other users get `refused`, the feed and nobody
    401. `known_bugs` maps callers to the reason their row fails today (a strict xfail)."""
    rows = []
    for caller in CALLERS:
        if caller in skip:
            continue
        if special and caller in special:
            expected = special[caller]
        elif caller in allowed:
            expected = status
        elif caller in ("feed", "none"):
            expected = 401
        else:
            expected = refused
        marks = ([pytest.mark.xfail(strict=True, reason=known_bugs[caller])]
                 if known_bugs and caller in known_bugs else [])
        rows.append(pytest.param(caller, method, path, body, expected, marks=marks,
                                 id=f"{caller}-{method}-{path}"))
    return rows


ALL = CALLERS
EVERY_USER = USERS
MATTER = {"type": "dispute", "category": "neighbour", "title": "邻里噪音纠纷", "grid": "DEMO-T01-G01",
          "parties": [{"role": "applicant", "kind": "person", "name": "张三",
                       "id_number": "11010519491231002X", "phone": "13812341234"}]}
WINDOW = ("desk", "duty")
NODE_ACTIONS_BODY = {"ack": {"note": "收到"}, "progress": {"note": "在办"},
                     "complete": {"result": "已处置"}, "return": {"reason": "不归我管"},
                     "deliver": {}, "cancel": {"note": "撤销"}, "reissue": {"note": "重新下达"}}

RULES = [
    *rule("GET", "/healthz", ALL),
    *rule("GET", "/readyz", ALL),
    # no CMDCENTER_METRICS_TOKEN nor CMDCENTER_METRICS_ALLOW here: nobody, whoever they are
    *rule("GET", "/metrics", (), special={"feed": 403, "none": 403}),
    *rule("GET", "/api/v1/me", EVERY_USER),
    *rule("GET", "/api/v1/units", (*EVERY_USER, "feed")),
    *rule("POST", "/api/v1/reports", ("feed",), refused=401, body="report"),
    # incidents: the list is for every user (its content is checked below), one by id by scope
    *rule("GET", "/api/v1/incidents?since=0", EVERY_USER),
    *rule("GET", "/api/v1/incidents/{inc_g01}", (*COUNTY, "town1", "grid1", "police")),
    *rule("GET", "/api/v1/incidents/{inc_t02}", (*COUNTY, "town2")),
    *rule("GET", "/api/v1/incidents/no-such-incident", EVERY_USER, status=404),
    # transitions: the allowed ones change state (journey test); a department never moves an
    # incident (it acts through its order nodes), other units' users are out of scope
    *rule("POST", "/api/v1/incidents/{inc_g01}/transition", body={"to": "in_progress"},
          skip=(*COUNTY, "town1", "grid1")),
    *rule("POST", "/api/v1/incidents/{inc_t02}/transition", body={"to": "in_progress"},
          skip=(*COUNTY, "town2")),
    # orders: only leaders and administrators issue (a duty officer may only draft)
    *rule("POST", "/api/v1/orders", ("leader", "admin"), body="order"),
    *rule("GET", "/api/v1/orders", EVERY_USER),
    *rule("GET", "/api/v1/orders?open=1", EVERY_USER),
    # forward: the township itself (or the county's commanders) down to its own grids
    *rule("POST", "/api/v1/orders/{node_t01}/forward", ("town1", "leader", "admin"),
          body={"targets": ["DEMO-T01-G03"]}),
    *rule("POST", "/api/v1/orders/{node_t01}/forward", body={"targets": ["DEMO-T02-G01"]},
          special={"town1": 422, "leader": 422, "admin": 422}),
    *rule("POST", "/api/v1/orders/{node_g01}/forward", body={"targets": ["DEMO-T01-G02"]}),
    *rule("POST", "/api/v1/orders/{node_police}/forward", body={"targets": ["DEMO-T01-G01"]}),
    *rule("POST", "/api/v1/orders/no-such-node/forward", EVERY_USER, status=404,
          body={"targets": ["DEMO-T01-G01"]}),
    # node actions: the target unit signs off, acts and reports; the node above cancels and
    # re-issues; nobody else touches the node (ack and deliver are idempotent, so tested here)
    *rule("POST", "/api/v1/orders/{node_g01}/ack", ("grid1",), body=NODE_ACTIONS_BODY["ack"]),
    *rule("POST", "/api/v1/orders/{node_g01}/deliver", ("grid1",), body={}),
    *rule("POST", "/api/v1/orders/{node_police}/ack", ("police",), body={}),
    *rule("POST", "/api/v1/orders/{node_t01}/ack", ("town1",), body={}),
    *rule("POST", "/api/v1/orders/{node_t02}/deliver", ("town2",), body={}),
    *[row for action in ("progress", "complete", "return")
      for row in rule("POST", f"/api/v1/orders/{{node_g01}}/{action}",
                      skip=("grid1",), body=NODE_ACTIONS_BODY[action])],
    *rule("POST", "/api/v1/orders/{node_g01}/cancel", skip=("town1", "leader", "admin"),
          body=NODE_ACTIONS_BODY["cancel"]),
    # the node above may re-issue, but only a returned node: 409 here, not 403
    *rule("POST", "/api/v1/orders/{node_g01}/reissue", ("town1", "leader", "admin"), status=409,
          body=NODE_ACTIONS_BODY["reissue"]),
    *rule("POST", "/api/v1/orders/{node_police}/cancel", skip=("leader", "admin"),
          body=NODE_ACTIONS_BODY["cancel"]),
    *rule("POST", "/api/v1/orders/no-such-node/ack", EVERY_USER, status=404, body={}),
    *rule("POST", "/api/v1/orders/{node_g01}/no-such-action", EVERY_USER, status=404, body={}),
    # matters: the window (desk, duty) and a township in its own township register; scope as
    # for incidents, plus the window's clerk; a number in full only for the window and the unit
    # handling the matter; the audit trail for administrators
    *rule("POST", "/api/v1/matters", (*WINDOW, "town1"), body=MATTER, special={"town2": 422}),
    *rule("GET", "/api/v1/matters?since=0", EVERY_USER),
    *rule("GET", "/api/v1/matters/{matter}", (*COUNTY, "desk", "town1", "grid1")),
    *rule("GET", "/api/v1/matters/DEMO-1999-000001", EVERY_USER, status=404),
    *rule("POST", "/api/v1/matters/search", EVERY_USER, body={"q": "纠纷"}),
    *rule("POST", "/api/v1/matters/{matter}/reveal", (*WINDOW, "town1"),
          body={"party": 0, "field": "phone", "reason": "联系当事人"}),
    *rule("PATCH", "/api/v1/matters/{matter}", (*WINDOW, "town1"), body={"risk": "low"}),
    *rule("POST", "/api/v1/matters/{matter}/close", skip=(*WINDOW, "town1"),
          body={"closure": "on_the_spot", "note": "当场调解"}),
    *rule("GET", "/api/v1/audit?subject={matter}", ("admin",)),
]

ALERT_RULES = [  # run last: they wait for supervision; the overdue grid node alerts its township
    *rule("GET", "/api/v1/alerts", EVERY_USER),
    *rule("GET", "/api/v1/alerts?status=all", EVERY_USER),
    *rule("POST", "/api/v1/alerts/{alert}/ack", (*COUNTY, "town2"), body={"note": "已督促"}),
    *rule("POST", "/api/v1/alerts/{alert}/dismiss", skip=(*COUNTY, "town2"), body={}),
    *rule("POST", "/api/v1/alerts/no-such-alert/ack", EVERY_USER, status=404, body={}),
    *rule("GET", "/api/v1/alerts/{alert}", (*COUNTY, "town2")),
    # an overdue alert groups no reports: refused as such (422) to those who may merge
    *rule("POST", "/api/v1/alerts/{alert}/merge", COUNTY, status=422, body={}),
]


def _body(world: World, body):
    if body == "report":
        return report(f"m-{uuid.uuid4().hex[:10]}")
    if body == "order":
        return {"incident_id": world.ids["inc_t02"], "targets": ["DEMO-T02-G02"],
                "instruction": "核实情况"}
    return body


@pytest.mark.parametrize("caller, method, path, body, expected", RULES)
def test_matrix(world, request, caller, method, path, body, expected):
    if "{alert}" in path:
        request.getfixturevalue("overdue_alert")
    r = world.call(caller, method, path.format(**world.ids), _body(world, body))
    assert r.status_code == expected, f"{caller} {method} {path}: {r.status_code} {r.text[:300]}"
    if expected >= 400:
        error = r.json()["error"]
        assert error["code"] and error["message"]
        if expected in (401, 403):
            assert error["code"] == {401: "unauthorized", 403: "forbidden"}[expected], error


# --- what the lists and pushes contain ------------------------------------------------------

INCIDENTS_SEEN = {  # caller -> which of the three incidents it sees (two reports, one matter)
    "duty": {"inc_g01", "inc_t02", "matter_id"}, "leader": {"inc_g01", "inc_t02", "matter_id"},
    "admin": {"inc_g01", "inc_t02", "matter_id"}, "town1": {"inc_g01", "matter_id"},
    "town2": {"inc_t02"}, "grid1": {"inc_g01", "matter_id"}, "grid2": set(),
    "police": {"inc_g01"}, "court": set(), "desk": {"matter_id"},
}
NODES_SEEN = {  # caller -> which of the named nodes it sees
    "town1": {"node_t01", "node_g01", "node_matter"}, "town2": {"node_t02", "node_late"},
    "grid1": {"node_g01"}, "grid2": set(), "police": {"node_police"}, "court": set(),
    "desk": {"node_matter"},
}
NAMED_NODES = ("node_t01", "node_g01", "node_police", "node_t02", "node_late", "node_matter")


def _named(world: World, ids: set[str], names) -> set[str]:
    return {name for name in names if world.ids[name] in ids}


def _incident_in_scope(caller: str, item: dict, ordered: dict[str, set]) -> bool:
    role, unit = ROLES[caller]
    township = item["township"] and item["township"]["code"]
    grid = item["grid"] and item["grid"]["code"]
    if role in COUNTY:
        return True
    if role == "desk":
        return item["case_no"] is not None
    mine = {"township": township, "grid": grid}.get(role)
    return mine == unit or unit in ordered.get(item["id"], set())


@pytest.mark.parametrize("caller", USERS)
def test_incident_list_holds_only_the_callers_scope(world, caller):
    nodes = world.ok("duty", "GET", "/api/v1/orders")
    ordered: dict[str, set] = {}
    for n in nodes:
        ordered.setdefault(n["incident_id"], set()).add(n["target"]["code"])
    items = world.ok(caller, "GET", "/api/v1/incidents?since=0")["items"]
    ids = {i["id"] for i in items}
    assert _named(world, ids, ("inc_g01", "inc_t02", "matter_id")) == INCIDENTS_SEEN[caller]
    assert all(_incident_in_scope(caller, i, ordered) for i in items)
    if caller in COUNTY:
        assert len(items) == len(world.ok("duty", "GET", "/api/v1/incidents?since=0")["items"])


@pytest.mark.parametrize("caller", USERS)
@pytest.mark.parametrize("query", ["", "?open=1"])
def test_order_list_holds_exactly_the_callers_nodes(world, caller, query):
    every = world.ok("duty", "GET", "/api/v1/orders" + query)
    mine = world.ok(caller, "GET", "/api/v1/orders" + query)
    assert {n["id"] for n in mine} == {n["id"] for n in every if world.sees_node(caller, n)}
    if caller not in COUNTY:
        assert _named(world, {n["id"] for n in mine}, NAMED_NODES) == NODES_SEEN[caller]
    seqs = [n["seq"] for n in mine]
    assert seqs == sorted(seqs)


# --- Socket.IO: who may connect, what each is sent ------------------------------------------

def _connect(world: World, namespace: str, caller: str, token: str | None = "<caller>",
             on_orders=None) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    if on_orders is not None:
        client.on("orders", on_orders, namespace=namespace)
    token = world.tokens[caller] if token == "<caller>" else token
    auth = {"token": token} if token else None
    client.connect(world.url, namespaces=[namespace], transports=["websocket"], wait_timeout=10,
                   auth=auth)
    return client


SOCKET_ROWS = [
    *[pytest.param("/live", c, c in USERS, id=f"/live-{c}") for c in CALLERS],
    *[pytest.param("/field", c, c in USERS, id=f"/field-{c}") for c in CALLERS],
    *[pytest.param("/feed", c, c == "feed", id=f"/feed-{c}") for c in CALLERS],
]


@pytest.mark.parametrize("namespace, caller, allowed", SOCKET_ROWS)
def test_socket_connect(world, namespace, caller, allowed):
    if not allowed:
        with pytest.raises(socketio.exceptions.ConnectionError):
            _connect(world, namespace, caller)
        return
    client = _connect(world, namespace, caller)
    try:
        assert client.connected and namespace in client.namespaces
    finally:
        client.disconnect()


@pytest.mark.parametrize("namespace", ["/live", "/field", "/feed"])
def test_socket_refuses_a_made_up_token(world, namespace):
    with pytest.raises(socketio.exceptions.ConnectionError):
        _connect(world, namespace, "none", token="cu_not-a-token")


class Field:
    """A /field client recording every `orders` event it is sent."""

    def __init__(self, world: World, caller: str) -> None:
        self.events: list[list[dict]] = []
        self.changed = threading.Condition()
        self.client = _connect(world, "/field", caller, on_orders=self._on)

    def _on(self, nodes):
        with self.changed:
            self.events.append(nodes)
            self.changed.notify_all()

    def ids(self) -> set[str]:
        with self.changed:
            return {n["id"] for batch in self.events for n in batch}

    def wait(self, predicate, timeout: float = 20.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self), timeout)

    def close(self) -> None:
        self.client.disconnect()


@pytest.mark.parametrize("caller", USERS)
def test_field_sends_the_callers_open_nodes_on_connect(world, caller):
    expected = {n["id"] for n in world.ok(caller, "GET", "/api/v1/orders?open=1")}
    field = Field(world, caller)
    try:
        assert field.wait(lambda f: f.events), f"{caller}: no `orders` on connect"
        first = field.events[0]
        assert {n["id"] for n in first} == expected
        assert all(world.sees_node(caller, n) for n in first)
        if caller == "grid1":
            assert world.ids["node_g01"] in expected
            assert {n["target"]["code"] for n in first} == {"DEMO-T01-G01"}
        if caller in ("grid2", "court"):
            assert first == []
    finally:
        field.close()


def test_live_since_holds_only_the_callers_incidents(world):
    for caller in USERS:
        client = _connect(world, "/live", caller)
        try:
            caught = client.call("since", {"seq": 0}, namespace="/live", timeout=10)
        finally:
            client.disconnect()
        rest = world.ok(caller, "GET", "/api/v1/incidents?since=0")
        assert [i["id"] for i in caught["items"]] == [i["id"] for i in rest["items"]], caller


def test_delivered_for_someone_elses_node_changes_nothing(world):
    before = {n["id"]: n["state"] for n in world.ok("duty", "GET", "/api/v1/orders")}
    field = Field(world, "grid2")
    try:
        ack = field.client.call("delivered", {"ids": [world.ids["node_g01"],
                                                      world.ids["node_police"],
                                                      world.ids["node_t02"]]},
                                namespace="/field", timeout=10)
        assert ack == {"ok": True, "delivered": []}
        bad = field.client.call("delivered", {"ids": "all"}, namespace="/field", timeout=10)
        assert bad["ok"] is False
    finally:
        field.close()
    after = {n["id"]: n["state"] for n in world.ok("duty", "GET", "/api/v1/orders")}
    assert after == before


def test_a_new_node_is_pushed_only_to_those_who_may_see_it(world):
    fields = {caller: Field(world, caller) for caller in USERS}
    try:
        for f in fields.values():
            assert f.wait(lambda f: f.events)  # the opening batch
        order = world.issue(world.ids["inc_g01"], ["DEMO-T01-G01"])
        node = world.node_of(order, "DEMO-T01-G01")
        for caller in ("duty", "leader", "admin", "town1", "grid1"):
            assert fields[caller].wait(lambda f: node in f.ids()), f"{caller} did not get it"
        time.sleep(1.0)  # give a wrong push time to arrive
        for caller in ("town2", "grid2", "police", "court", "desk"):
            assert node not in fields[caller].ids(), f"{caller} was sent a node of DEMO-T01-G01"
    finally:
        for f in fields.values():
            f.close()


# --- the allowed state changes, as one journey ------------------------------------------------

def test_journey_allowed_actions_by_the_right_roles(world):
    w = world
    inc = w.incident_at("DEMO-T01-G02", "journey")
    assert w.ok("grid2", "POST", f"/api/v1/incidents/{inc}/transition",
                {"to": "accepted", "note": "网格受理"})["status"] == "accepted"
    r = w.call("grid1", "POST", f"/api/v1/incidents/{inc}/transition", {"to": "in_progress"})
    assert r.status_code == 403, r.text
    order = w.issue(inc, ["DEMO-T01", "dept.court"])
    town, court = w.node_of(order, "DEMO-T01"), w.node_of(order, "dept.court")
    (child,) = w.ok("town1", "POST", f"/api/v1/orders/{town}/forward",
                    {"targets": ["DEMO-T01-G02"]})
    kid = child["id"]
    for action in ("deliver", "ack", "progress"):
        assert w.ok("grid2", "POST", f"/api/v1/orders/{kid}/{action}", {"note": action})
    assert w.ok("grid2", "POST", f"/api/v1/orders/{kid}/return",
                {"reason": "不在本网格"})["state"] == "returned"
    assert w.call("grid2", "POST", f"/api/v1/orders/{kid}/reissue", {}).status_code == 403
    assert w.ok("town1", "POST", f"/api/v1/orders/{kid}/reissue", {})["state"] == "issued"
    w.ok("grid2", "POST", f"/api/v1/orders/{kid}/ack", {})
    assert w.ok("grid2", "POST", f"/api/v1/orders/{kid}/complete",
                {"result": "已调处"})["state"] == "completed"
    w.ok("court", "POST", f"/api/v1/orders/{court}/ack", {})
    assert w.ok("court", "POST", f"/api/v1/orders/{court}/complete",
                {"result": "已立案"})["state"] == "completed"
    detail = w.ok("grid2", "GET", f"/api/v1/incidents/{inc}")
    assert detail["status"] == "responded"
    top = {n["target"]["code"]: n["state"] for n in detail["orders"][0]["nodes"]}
    assert top == {"DEMO-T01": "completed", "dept.court": "completed"}
    assert w.call("town1", "POST", f"/api/v1/incidents/{inc}/transition",
                  {"to": "verified"}).status_code == 409  # the county verifies
    assert w.ok("duty", "POST", f"/api/v1/incidents/{inc}/transition",
                {"to": "verified"})["status"] == "verified"
    # a cancelled order: only the node above may cancel it
    again = w.issue(w.ids["inc_g01"], ["dept.police"])
    node = w.node_of(again, "dept.police")
    assert w.call("police", "POST", f"/api/v1/orders/{node}/cancel", {}).status_code == 403
    assert w.ok("admin", "POST", f"/api/v1/orders/{node}/cancel", {})["state"] == "cancelled"


# --- alerts: the list by scope, and pushed on /live to the township -----------------------------

@pytest.mark.parametrize("caller, method, path, body, expected", ALERT_RULES)
def test_alert_matrix(world, request, caller, method, path, body, expected):
    test_matrix(world, request, caller, method, path, body, expected)


@pytest.mark.parametrize("caller", USERS)
def test_alert_list_holds_only_the_callers_alerts(world, overdue_alert, caller):
    alerts = world.ok(caller, "GET", "/api/v1/alerts?status=all")
    role, unit = ROLES[caller]
    ids = {a["id"] for a in alerts}
    assert (overdue_alert in ids) == (caller in (*COUNTY, "town2"))
    if role not in COUNTY and role != "desk":
        assert all(unit in a["units"] for a in alerts)
