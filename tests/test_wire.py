"""The wire, end to end: a real python-socketio client and HTTP against a real server process."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
import socketio

from tests import servers

NOW_ISO = "2026-11-26T09:30:00+08:00"


def report(i, **change):
    raw = {"id": f"w-{i}", "type": "突发事件", "occurred_at": NOW_ISO, "lon": 120.2, "lat": 30.05,
           "title": f"事件 {i}", "severity": 3}
    raw.update(change)
    return raw


def feed_client(url, token) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.connect(url, namespaces=["/feed"], auth={"token": token}, transports=["websocket"],
                   wait_timeout=10)
    return client


class Live:
    """A /live subscriber collecting every incident it is sent."""

    def __init__(self, url, token):
        self.items: list[dict] = []
        self.arrived = threading.Condition()
        self.client = socketio.Client(reconnection=False)
        self.client.on("incidents", self._on, namespace="/live")
        self.client.connect(url, namespaces=["/live"], transports=["websocket"], wait_timeout=10,
                            auth={"token": token})

    def _on(self, items):
        with self.arrived:
            self.items.extend(items)
            self.arrived.notify_all()

    def wait_for(self, n, timeout=20.0):
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.items) >= n, timeout), \
                f"got {len(self.items)} of {n}"
        return self.items

    def close(self):
        self.client.disconnect()


def test_feed_to_ack_to_live_to_rest(server):
    token = server.add_feed("township-a")
    live = Live(server.url, server.duty_token)
    feed = feed_client(server.url, token)
    try:
        ack = feed.call("report", report(1), namespace="/feed", timeout=10)
        assert ack["ok"] is True and ack["duplicate"] is False
        incident = ack["incident"]
        (pushed,) = live.wait_for(1)
        assert pushed == incident
        acks = feed.call("report", [report(i) for i in range(2, 12)], namespace="/feed")
        assert [a["ok"] for a in acks] == [True] * 10
        items = live.wait_for(11)
        seqs = [i["seq"] for i in items]
        assert seqs == sorted(seqs) == list(range(1, 12))
        page = server.get("/api/v1/incidents?since=0&limit=5").json()
        assert [i["seq"] for i in page["items"]] == [1, 2, 3, 4, 5] and page["last_seq"] == 5
        rest = server.get("/api/v1/incidents?since=5").json()
        assert [i["seq"] for i in rest["items"]] == list(range(6, 12))
        assert server.get("/api/v1/incidents?since=11").json() == \
            {"items": [], "last_seq": 11}
        caught = live.client.call("since", {"seq": 9}, namespace="/live")
        assert [i["seq"] for i in caught["items"]] == [10, 11] and caught["last_seq"] == 11
    finally:
        feed.disconnect()
        live.close()


def test_screens_asking_the_same_since_together_get_a_true_answer_in_their_scope(server):
    """After a restart every screen asks `since` from the same seq at once and they share one
    answer: a screen of another scope still gets its own, and paging on from an answer's
    last_seq reaches what was stored after it was computed."""
    from layers.demo import demo_county

    g01 = demo_county().set_index("code").loc["DEMO-T01-G01"].geometry.representative_point()
    town = server.add_user("镇干部-since", "township", "DEMO-T02")
    feed = feed_client(server.url, server.add_feed("f-since"))
    screens = [Live(server.url, server.duty_token) for _ in range(6)]
    town_screen = Live(server.url, town)
    try:
        acks = feed.call("report", [report(i, lon=g01.x, lat=g01.y) for i in range(1, 4)],
                         namespace="/feed")
        stored = [a["incident"]["seq"] for a in acks]
        answers = [None] * len(screens)

        def ask(k):
            answers[k] = screens[k].client.call("since", {"seq": 0}, namespace="/live",
                                                timeout=10)

        askers = [threading.Thread(target=ask, args=(k,)) for k in range(len(screens))]
        for t in askers:
            t.start()
        for t in askers:
            t.join(15)
        assert all(a == answers[0] for a in answers)
        assert [i["seq"] for i in answers[0]["items"]] == stored
        mine = town_screen.client.call("since", {"seq": 0}, namespace="/live", timeout=10)
        assert mine == {"items": [], "last_seq": stored[-1]}  # nothing in DEMO-T02
        later = feed.call("report", report(9, lon=g01.x, lat=g01.y), namespace="/feed")
        seen, seq = [], 0
        for _ in range(5):  # the wall's paging: on from last_seq until a page is empty
            page = screens[0].client.call("since", {"seq": seq}, namespace="/live", timeout=10)
            if not page["items"]:
                break
            seen += [i["seq"] for i in page["items"]]
            seq = page["last_seq"]
        assert seen == [*stored, later["incident"]["seq"]]
    finally:
        feed.disconnect()
        for live in (*screens, town_screen):
            live.close()


def test_resend_over_either_door_is_a_duplicate(server):
    token = server.add_feed("township-b")
    feed = feed_client(server.url, token)
    try:
        first = feed.call("report", report(1), namespace="/feed")
        again = requests.post(f"{server.url}/api/v1/reports", json=report(1),
                              headers={"Authorization": f"Bearer {token}"})
        assert again.status_code == 200
        assert again.json()["duplicate"] is True
        assert again.json()["incident"]["id"] == first["incident"]["id"]
        conflict = requests.post(f"{server.url}/api/v1/reports", json=report(1, title="别的"),
                                 headers={"Authorization": f"Bearer {token}"})
        assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "conflict"
    finally:
        feed.disconnect()


def test_bad_token_is_refused_at_connect_and_over_rest(server):
    client = socketio.Client(reconnection=False)
    reasons = []
    client.on("connect_error", reasons.append, namespace="/feed")
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(server.url, namespaces=["/feed"], auth={"token": "not-a-token"},
                       transports=["websocket"], wait_timeout=10)
    assert reasons and "unknown or revoked feed token" in str(reasons[0])
    r = requests.post(f"{server.url}/api/v1/reports", json=report(1),
                      headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert requests.post(f"{server.url}/api/v1/reports", json=report(1)).status_code == 401


def test_revoked_token_stops_working(server):
    token = server.add_feed("township-c")
    feed = feed_client(server.url, token)
    try:
        assert feed.call("report", report(1), namespace="/feed")["ok"]
        servers.cli("feeds", "revoke", "township-c", env=server.env, data_dir=server.data_dir)
        ack = feed.call("report", report(2), namespace="/feed")
        assert ack["ok"] is False and ack["error"]["code"] == "unauthorized"
    finally:
        feed.disconnect()
    with pytest.raises(socketio.exceptions.ConnectionError):
        feed_client(server.url, token)


@pytest.mark.parametrize("body, status, code, field", [
    (b"{not json", 400, "invalid_json", None),
    (json.dumps(report(1, severity=7)).encode(), 422, "out_of_range", "severity"),
    (json.dumps(report(1, lon=200)).encode(), 422, "out_of_range", "lon"),
    (json.dumps(report(1, type="火星")).encode(), 422, "unknown_type", "type"),
    (json.dumps({"type": "other"}).encode(), 422, "missing_field", "id"),
    (json.dumps(report(1, occurred_at="2099-01-01T00:00:00")).encode(), 422, "future_time",
     "occurred_at"),
    (b'{"id": "n", "type": "other", "occurred_at": "2026-11-26T09:00:00", "lon": NaN, '
     b'"lat": 30, "title": "t"}', 422, "invalid_field", "lon"),
    (json.dumps([report(i) for i in range(1001)]).encode(), 413, "too_large", None),
])
def test_rest_errors(server, body, status, code, field):
    token = server.add_feed("rest")
    r = requests.post(f"{server.url}/api/v1/reports", data=body,
                      headers={"Authorization": f"Bearer {token}",
                               "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error.get("field") == field and error["message"]
    assert server.get("/api/v1/incidents?since=0").json()["items"] == []


def test_rest_list_answers_200_per_item(server):
    token = server.add_feed("rest-list")
    r = requests.post(f"{server.url}/api/v1/reports", json=[report(1), report(2, severity=9)],
                      headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert [a["ok"] for a in r.json()] == [True, False]
    assert r.json()[1]["error"]["field"] == "severity"


def test_oversize_message_gets_too_large_and_connection_stays_usable(tmp_path, server_env):
    srv = servers.Server(tmp_path / "d", servers.free_port(),
                         {**server_env, "CMDCENTER_MAX_MESSAGE_BYTES": str(256 * 1024)}).start()
    try:
        feed = feed_client(srv.url, srv.add_feed("big"))
        huge = report(1, description="x" * (300 * 1024))
        ack = feed.call("report", huge, namespace="/feed", timeout=10)
        assert ack["ok"] is False and ack["error"]["code"] == "too_large"
        too_many = feed.call("report", [report(i) for i in range(1001)], namespace="/feed")
        assert too_many["error"]["code"] == "too_large"
        assert feed.call("report", report(2), namespace="/feed")["ok"] is True
        feed.disconnect()
    finally:
        srv.stop()


def test_rate_limited_feed_does_not_affect_others(tmp_path, server_env):
    env = {**server_env, "CMDCENTER_RATE_BURST": "20", "CMDCENTER_RATE_PER_SECOND": "0.01"}
    srv = servers.Server(tmp_path / "d", servers.free_port(), env).start()
    try:
        flood_token = srv.add_feed("flood")
        flood = feed_client(srv.url, flood_token)
        calm = feed_client(srv.url, srv.add_feed("calm"))
        assert all(a["ok"] for a in flood.call("report", [report(i) for i in range(20)],
                                                namespace="/feed"))
        limited = flood.call("report", report(99), namespace="/feed")
        assert limited["ok"] is False and limited["error"]["code"] == "rate_limited"
        assert calm.call("report", report(1), namespace="/feed")["ok"] is True
        r = requests.post(f"{srv.url}/api/v1/reports", json=report(100),
                          headers={"Authorization": f"Bearer {flood_token}"})
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        flood.disconnect()
        calm.disconnect()
    finally:
        srv.stop()


def test_acked_reports_survive_a_server_restart(server):
    token = server.add_feed("durable")
    feed = feed_client(server.url, token)
    acks = feed.call("report", [report(i) for i in range(50)], namespace="/feed")
    feed.disconnect()
    server.kill()  # no clean shutdown: an ack must already mean "committed"
    server.start()
    items = server.get("/api/v1/incidents?since=0&limit=100").json()["items"]
    assert {i["id"] for i in items} == {a["incident"]["id"] for a in acks}


def test_units_and_health(server):
    units = server.get("/api/v1/units").json()
    levels = [u["level"] for u in units]
    assert levels.count("county") == 1 and levels.count("township") >= 10
    assert levels.count("grid") >= 150
    assert set(units[1]) == {"code", "name", "level", "parent"}
    geo = server.get("/api/v1/units?geometry=1").json()
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == len(units)
    assert set(geo["features"][0]["properties"]) >= {"code", "name", "level", "parent"}
    assert requests.get(f"{server.url}/healthz").json()["ok"] is True


def test_burst_of_2000_reaches_live_entirely(server):
    token = server.add_feed("burst")
    live = Live(server.url, server.duty_token)
    feed = feed_client(server.url, token)
    try:
        start = time.monotonic()
        for k in range(2):
            acks = feed.call("report", [report(f"{k}-{i}") for i in range(1000)],
                             namespace="/feed", timeout=30)
            assert all(a["ok"] for a in acks)
        items = live.wait_for(2000, timeout=30)
        assert len({i["id"] for i in items}) == 2000
        assert [i["seq"] for i in items] == sorted(i["seq"] for i in items)
        assert time.monotonic() - start < 30
    finally:
        feed.disconnect()
        live.close()
