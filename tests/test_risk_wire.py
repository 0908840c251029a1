"""The risk watch in a running server: alerts raised from arriving reports reach /live, are
caught up with `since`, acknowledged and dismissed over REST (audited), merged; and the watch
of one deployment sees the reports of every process."""

from __future__ import annotations

from datetime import datetime, timedelta

import requests

from command.clock import SHANGHAI
from layers.demo import demo_county
from tests import servers
from tests.test_field import Client, Team

WAIT = 20.0


def _now_iso(minutes: float = -1) -> str:
    return (datetime.now(SHANGHAI) + timedelta(minutes=minutes)).isoformat()


def _point(code: str) -> tuple[float, float]:
    p = demo_county().set_index("code").loc[code].geometry.representative_point()
    return p.x, p.y


def _report(srv, feed: str, tag: str, **change) -> dict:
    lon, lat = _point("DEMO-T01-G01")
    body = {"id": tag, "type": "emergency", "occurred_at": _now_iso(), "lon": lon, "lat": lat,
            "title": f"事件 {tag}", "severity": 4, **change}
    r = requests.post(srv.url + "/api/v1/reports", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {feed}"})
    assert r.status_code == 200, r.text
    return r.json()["incident"]


def _post(srv, token, path, body):
    return requests.post(srv.url + path, json=body, timeout=30,
                         headers={"Authorization": f"Bearer {token}"})


def _get(srv, token, path):
    r = requests.get(srv.url + path, timeout=30, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()


def test_red_alert_pushed_caught_up_acknowledged_everywhere(server):
    team = Team(server)
    duty = server.add_user("duty", "duty")
    before = _get(server, duty, "/api/v1/alerts?status=all")
    since = max([a["seq"] for a in before], default=0)
    wall = Client(server.url, duty, "/live", ("alerts",))
    town = Client(server.url, team.town, "/live", ("alerts",))
    try:
        incident = _report(server, team.feed, "red-1", severity=1, people=12)
        alert = wall.wait_for("alerts", lambda a: incident["id"] in a["incidents"], WAIT)
        assert alert["rule"] == "severity" and alert["level"] == "red"
        assert alert["status"] == "open" and "Ⅰ级" in alert["message"]
        assert set(alert) >= {"id", "seq", "rule", "level", "units", "incidents", "message",
                              "status", "raised_at"}
        town.wait_for("alerts", lambda a: a["id"] == alert["id"], WAIT)  # its own township
        caught = _get(server, duty, f"/api/v1/alerts?since={since}")
        assert [a["id"] for a in caught if a["rule"] == "severity"] == [alert["id"]]

        refused = _post(server, duty, f"/api/v1/alerts/{alert['id']}/dismiss", {"note": " "})
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "note"
        acked = _post(server, duty, f"/api/v1/alerts/{alert['id']}/ack", {"note": "已核实"})
        assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
        for client in (wall, town):
            client.wait_for("alerts", lambda a: a["id"] == alert["id"]
                            and a["status"] == "acknowledged", WAIT)
        detail = _get(server, duty, f"/api/v1/alerts/{alert['id']}")
        assert [(h["action"], h["by"], h["note"]) for h in detail["history"]] == [
            ("raised", None, None), ("ack", "duty", "已核实")]
        # the grid worker of that grid sees it, but acting on alerts is the centre's job
        assert [a["id"] for a in _get(server, team.grid, "/api/v1/alerts")] == [alert["id"]]
        assert _post(server, team.grid, f"/api/v1/alerts/{alert['id']}/ack", {}
                     ).status_code == 403
    finally:
        wall.close()
        town.close()


def test_mass_gathering_offered_and_merged_into_one_incident(server):
    team = Team(server)
    duty = server.add_user("duty", "duty")
    wall = Client(server.url, duty, "/live", ("alerts", "incidents"))
    try:
        lon, lat = _point("DEMO-T05-G01")
        reports = [_report(server, team.feed, f"mg-{k}", type=t, lon=lon + 0.0005 * k, lat=lat,
                           occurred_at=_now_iso(-10 + 3 * k))
                   for k, t in enumerate(("dispute", "public_safety", "complaint"))]
        ids = [r["id"] for r in reports]
        alert = wall.wait_for("alerts", lambda a: a["rule"] == "mass_gathering", WAIT)
        assert alert["incidents"] == ids and alert["level"] == "orange"
        bad = _post(server, duty, f"/api/v1/alerts/{alert['id']}/merge", {"into": "nope"})
        assert bad.status_code == 422
        merged = _post(server, duty, f"/api/v1/alerts/{alert['id']}/merge", {"note": "同一起聚集"})
        assert merged.status_code == 200, merged.text
        assert merged.json()["status"] == "resolved"
        for other in ids[1:]:
            incident = _get(server, duty, f"/api/v1/incidents/{other}")
            assert incident["status"] == "merged" and incident["merged_into"] == ids[0]
        wall.wait_for("alerts", lambda a: a["id"] == alert["id"] and a["status"] == "resolved")
        again = _post(server, duty, f"/api/v1/alerts/{alert['id']}/merge", {})
        assert again.status_code == 409
        township = server.add_user("t5", "township", "DEMO-T05")
        assert _post(server, township, f"/api/v1/alerts/{alert['id']}/merge", {}
                     ).status_code == 403
    finally:
        wall.close()


def test_one_watch_per_deployment_sees_every_process(tmp_path, server_env):
    """Two server processes on one data dir: the watch runs in one of them and still raises
    the alert for a report the other process took in."""
    env = {**server_env, "CMDCENTER_WATCH_SECONDS": "1"}
    first = servers.Server(tmp_path / "data", servers.free_port(), env).start()
    second = servers.Server(tmp_path / "data", servers.free_port(), env).start()
    try:
        duty = first.add_user("duty", "duty")
        feed = first.add_feed("feed-two")
        incidents = [_report(srv, feed, f"two-{k}", severity=2)
                     for k, srv in enumerate((first, second))]
        live = Client(first.url, duty, "/live", ("alerts",))
        try:
            for incident in incidents:
                deadline = datetime.now() + timedelta(seconds=WAIT)
                while datetime.now() < deadline:
                    found = [a for a in _get(first, duty, "/api/v1/alerts")
                             if incident["id"] in a["incidents"]]
                    if found:
                        break
                assert found and found[0]["level"] == "orange"
        finally:
            live.close()
        listed = [a for a in _get(second, duty, "/api/v1/alerts?status=all")
                  if a["rule"] == "severity"]
        assert len(listed) == 2  # one per incident, whichever process raised it
    finally:
        second.stop()
        first.stop()
