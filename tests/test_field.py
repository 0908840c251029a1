"""`/field` on the wire: a real server process and real python-socketio clients.

Orders reach grid workers whether they were online or not, `delivered` receipts move nodes on,
a SIGKILL between issuing and signing off loses nothing, and an unsigned node past its time
limit raises a 督办 alert to the township, listed over REST and pushed on `/live`.
"""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
import requests
import socketio

from tests import servers
from tests.test_wire import report

WAIT = 20.0  # generous: pushes normally take milliseconds
G01 = "DEMO-T01-G01"


class Team:
    """A leader, the township DEMO-T01, a worker of its grid G01 and a feed, on one server."""

    def __init__(self, server: servers.Server) -> None:
        self.server = server
        self.leader = server.add_user("leader", "leader")
        self.town = server.add_user("town", "township", "DEMO-T01")
        self.grid = server.add_user("grid", "grid", G01)
        self.feed = server.add_feed("field-feed", "DEMO-T01")

    def post(self, token: str, path: str, body: dict) -> dict:
        r = requests.post(self.server.url + path, json=body, timeout=30,
                          headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, f"POST {path}: {r.status_code} {r.text}"
        return r.json()

    def get(self, token: str, path: str):
        r = requests.get(self.server.url + path, timeout=30,
                         headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
        return r.json()

    def incident(self, tag: str = "f") -> str:
        """An incident in the grid G01, reported by the feed."""
        from layers.demo import demo_county

        point = demo_county().set_index("code").loc[G01].geometry.representative_point()
        r = requests.post(self.server.url + "/api/v1/reports", timeout=30,
                          json=report(tag, lon=point.x, lat=point.y),
                          headers={"Authorization": f"Bearer {self.feed}"})
        assert r.status_code == 200, r.text
        incident = r.json()["incident"]
        assert incident["grid"]["code"] == G01
        return incident["id"]

    def order_to_grid(self, incident_id: str) -> tuple[str, str]:
        """Leader → DEMO-T01, township forwards → G01; (township node id, grid node id)."""
        order = self.post(self.leader, "/api/v1/orders", {
            "incident_id": incident_id, "targets": ["DEMO-T01"], "instruction": "立即到场调处"})
        (town_node,) = order["nodes"]
        (child,) = self.post(self.town, f"/api/v1/orders/{town_node['id']}/forward",
                             {"targets": [G01], "instruction": "请网格员到场核实"})
        assert child["state"] == "issued" and child["parent_id"] == town_node["id"]
        return town_node["id"], child["id"]

    def node(self, token: str, node_id: str) -> dict:
        return next(n for n in self.get(token, "/api/v1/orders") if n["id"] == node_id)


class Client:
    """A Socket.IO client of one namespace recording every event of the names given."""

    def __init__(self, url: str, token: str, namespace: str, events: tuple[str, ...]) -> None:
        self.namespace = namespace
        self.received: dict[str, list] = {e: [] for e in events}
        self.changed = threading.Condition()
        self.sio = socketio.Client(reconnection=False)
        for event in events:
            self.sio.on(event, self._recorder(event), namespace=namespace)
        self.sio.connect(url, namespaces=[namespace], transports=["websocket"],
                         auth={"token": token}, wait_timeout=10)

    def _recorder(self, event: str):
        def record(items):
            with self.changed:
                self.received[event].append(items)
                self.changed.notify_all()
        return record

    def items(self, event: str) -> list[dict]:
        with self.changed:
            return [item for batch in self.received[event] for item in batch]

    def wait_for(self, event: str, predicate, timeout: float = WAIT) -> dict:
        """The first item of `event` matching `predicate`, waiting for it."""
        def found():
            return next((i for i in self.items(event) if predicate(i)), None)
        with self.changed:
            assert self.changed.wait_for(lambda: found() is not None, timeout), \
                f"no matching {event} on {self.namespace} within {timeout:.0f} s: " \
                f"{self.items(event)}"
        return found()

    def close(self) -> None:
        self.sio.disconnect()


def field(server: servers.Server, token: str) -> Client:
    return Client(server.url, token, "/field", ("orders",))


@pytest.fixture
def team(server) -> Team:
    return Team(server)


def test_worker_offline_at_issue_gets_the_order_on_connect(team):
    _, node = team.order_to_grid(team.incident())
    worker = field(team.server, team.grid)
    try:
        got = worker.wait_for("orders", lambda n: n["id"] == node)
        assert got["state"] == "issued" and got["target"]["code"] == G01
        assert got["instruction"] == "请网格员到场核实"
        first = worker.received["orders"][0]  # the opening batch is the unit's open nodes
        assert [n["id"] for n in first] == [node]
    finally:
        worker.close()


def test_pushed_node_arrives_and_delivered_moves_it_on(team):
    worker = field(team.server, team.grid)
    township = field(team.server, team.town)
    try:
        _, node = team.order_to_grid(team.incident())
        pushed = worker.wait_for("orders", lambda n: n["id"] == node)
        assert pushed["state"] == "issued"
        ack = worker.sio.call("delivered", {"ids": [node]}, namespace="/field", timeout=10)
        assert ack == {"ok": True, "delivered": [node]}
        assert team.node(team.grid, node)["state"] == "delivered"
        # the change is pushed to the worker and to the township above it
        for client in (worker, township):
            client.wait_for("orders", lambda n: n["id"] == node and n["state"] == "delivered")
        signed = team.post(team.grid, f"/api/v1/orders/{node}/ack", {"note": "收到"})
        assert signed["state"] == "acknowledged" and signed["acked_by"] == "grid"
        township.wait_for("orders", lambda n: n["id"] == node and n["state"] == "acknowledged")
    finally:
        worker.close()
        township.close()


def test_sigkill_between_issue_and_sign_off_loses_nothing(team):
    incident = team.incident()
    town_node, node = team.order_to_grid(incident)
    team.server.kill()  # no clean shutdown
    team.server.start()
    worker = field(team.server, team.grid)
    try:
        got = worker.wait_for("orders", lambda n: n["id"] == node)
        assert got["state"] == "issued"
        assert team.post(team.grid, f"/api/v1/orders/{node}/ack", {})["state"] == "acknowledged"
        worker.wait_for("orders", lambda n: n["id"] == node and n["state"] == "acknowledged")
        done = team.post(team.grid, f"/api/v1/orders/{node}/complete", {"result": "已调解"})
        assert done["state"] == "completed"
    finally:
        worker.close()
    assert team.node(team.town, town_node)["state"] == "completed"  # its only child completed
    detail = team.get(team.leader, f"/api/v1/incidents/{incident}")
    assert detail["status"] == "responded"
    states = [h["state"] for h in team.node(team.grid, node)["history"]]
    assert states == ["issued", "acknowledged", "completed"]


def test_unsigned_node_past_its_limit_alerts_the_township(tmp_path, server_env):
    env = {**server_env, "CMDCENTER_TIME_LIMITS": '{"3": [1, 30], "escalate_after": 100}',
           "CMDCENTER_SUPERVISION_SECONDS": "1", "CMDCENTER_CLOCK_FILE": str(tmp_path / "clock")}
    srv = servers.Server(tmp_path / "data", servers.free_port(), env).start()
    live = None
    try:
        team = Team(srv)
        live = Client(srv.url, team.town, "/live", ("alerts", "orders"))
        incident = team.incident()  # severity Ⅲ: one minute to sign off, by the setting
        _, node = team.order_to_grid(incident)
        issued = team.node(team.grid, node)
        limit = (datetime.fromisoformat(issued["ack_by"])
                 - datetime.fromisoformat(issued["created_at"])).total_seconds()
        assert limit == 60
        srv.advance_clock(61)  # the minute passes on the server's clock
        alert = live.wait_for("alerts", lambda a: incident in a["incidents"], timeout=60)
        assert alert["rule"] == "overdue" and alert["status"] == "open"
        assert alert["units"] == ["DEMO-T01"] and alert["message"]
        listed = team.get(team.town, "/api/v1/alerts")
        assert [a["id"] for a in listed if incident in a["incidents"]] == [alert["id"]]
        assert team.get(team.grid, "/api/v1/alerts") == []  # it goes to the unit above
        assert team.node(team.town, node)["supervision"]["ack_alerted"] is True
        # signing off ends the situation: the alert is resolved and pushed again
        team.post(team.grid, f"/api/v1/orders/{node}/ack", {})
        live.wait_for("alerts", lambda a: a["id"] == alert["id"] and a["status"] == "resolved")
        assert all(a["id"] != alert["id"] for a in team.get(team.town, "/api/v1/alerts"))
    finally:
        if live is not None:
            live.close()
        srv.stop()
