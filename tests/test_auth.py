"""Sign-in, sessions, CSRF and scope on the doors that exist: REST reads, /live, pages."""

from __future__ import annotations

import re

import pytest
import requests
import socketio

from tests.test_wire import Live, feed_client, report

PASSWORD = "password-123"


def login(server, name, password=PASSWORD) -> requests.Session:
    s = requests.Session()
    form = s.get(f"{server.url}/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    r = s.post(f"{server.url}/login", data={"name": name, "password": password,
                                             "csrf_token": csrf}, allow_redirects=False)
    s.last = r
    return s


def test_sign_in_session_cookie_and_landing_pages(server):
    server.add_user("张伟", "leader")
    server.add_user("网格员李", "grid", "DEMO-T01-G01")
    s = login(server, "张伟")
    assert s.last.status_code == 302 and s.last.headers["Location"] == "/command"
    cookie = s.last.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert s.get(f"{server.url}/api/v1/me").json() == {"name": "张伟", "role": "leader",
                                                       "unit": None}
    grid = login(server, "网格员李")
    assert grid.last.headers["Location"] == "/grid"
    r = grid.get(f"{server.url}/", allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == "/grid"
    anonymous = requests.get(f"{server.url}/", allow_redirects=False)
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
    # every page loads the shared helpers (assets/00_common.js) before the scripts using them
    scripts = re.findall(r'src="/assets/([^"?]+\.js)', s.get(f"{server.url}/command").text)
    assert scripts[0] == "00_common.js" and {"command.js", "alert_ticker.js"} <= set(scripts)


def test_wrong_password_and_lock_out(server):
    server.add_user("duty1", "duty")
    for _ in range(5):
        assert login(server, "duty1", "wrong-password").last.status_code == 401
    locked = login(server, "duty1")  # the right password, but locked now
    assert locked.last.status_code == 401 and "锁定" in locked.last.text
    assert login(server, "nobody").last.status_code == 401


def test_csrf_is_required_for_state_changes_made_with_the_session(server):
    server.add_user("duty2", "duty")
    s = login(server, "duty2")
    r = s.post(f"{server.url}/_dash-update-component", json={})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
    token = s.cookies.get("_csrf_token")
    r = s.post(f"{server.url}/_dash-update-component", json={},
               headers={"X-CSRFToken": token})
    assert r.status_code != 403
    assert s.post(f"{server.url}/logout", headers={"X-CSRFToken": token}).ok
    assert s.get(f"{server.url}/api/v1/me").status_code == 401


def test_reads_need_a_user(server):
    feed_token = server.add_feed("f")
    for path in ("/api/v1/incidents?since=0", "/api/v1/me"):
        assert requests.get(server.url + path).status_code == 401
        r = requests.get(server.url + path, headers={"Authorization": f"Bearer {feed_token}"})
        assert r.status_code == 401
    assert requests.get(f"{server.url}/api/v1/units").status_code == 401
    # a feed may read the units (to name grids), nothing else
    assert requests.get(f"{server.url}/api/v1/units",
                        headers={"Authorization": f"Bearer {feed_token}"}).ok
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(server.url, namespaces=["/live"], transports=["websocket"],
                       wait_timeout=10)


def test_disabled_user_stops_at_once(server):
    token = server.add_user("temp", "duty")
    assert server.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).ok
    from tests import servers
    servers.cli("users", "disable", "temp", env=server.env, data_dir=server.data_dir)
    r = requests.get(f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_township_and_grid_see_only_their_own(server):
    town = server.add_user("镇干部", "township", "DEMO-T01")
    grid = server.add_user("网格员", "grid", "DEMO-T01-G01")
    dept = server.add_user("公安", "dept", "dept.police")
    feed = feed_client(server.url, server.add_feed("f2"))
    live_town, live_grid = Live(server.url, town), Live(server.url, grid)
    live_county = Live(server.url, server.duty_token)
    try:
        from command.core import Core  # noqa: F401  (the demo county's shapes)
        from layers.demo import demo_county
        units = demo_county().set_index("code")
        p_g01 = units.loc["DEMO-T01-G01"].geometry.representative_point()
        p_g02 = units.loc["DEMO-T01-G02"].geometry.representative_point()
        p_t02 = units.loc["DEMO-T02"].geometry.representative_point()
        acks = feed.call("report", [report(1, lon=p_g01.x, lat=p_g01.y),
                                    report(2, lon=p_g02.x, lat=p_g02.y),
                                    report(3, lon=p_t02.x, lat=p_t02.y)], namespace="/feed")
        ids = [a["incident"]["id"] for a in acks]
        assert {i["id"] for i in live_county.wait_for(3)} == set(ids)
        assert {i["id"] for i in live_town.wait_for(2)} == set(ids[:2])
        assert {i["id"] for i in live_grid.wait_for(1)} == {ids[0]}
        feed.call("report", report(4, lon=p_t02.x, lat=p_t02.y), namespace="/feed")
        live_county.wait_for(4)
        assert len(live_town.items) == 2 and len(live_grid.items) == 1

        def listed(token):
            r = requests.get(f"{server.url}/api/v1/incidents?since=0",
                             headers={"Authorization": f"Bearer {token}"})
            return r.json()

        assert {i["id"] for i in listed(town)["items"]} == set(ids[:2])
        assert [i["id"] for i in listed(grid)["items"]] == [ids[0]]
        assert listed(dept)["items"] == []
        assert listed(dept)["last_seq"] == 4  # examined up to the newest, none visible
        caught = live_grid.client.call("since", {"seq": 0}, namespace="/live")
        assert [i["id"] for i in caught["items"]] == [ids[0]] and caught["last_seq"] == 4
    finally:
        feed.disconnect()
        for live in (live_town, live_grid, live_county):
            live.close()


def test_units_holding_an_order_get_the_incidents_changes_live(server):
    leader = server.add_user("指挥长", "leader")
    police = server.add_user("公安值守", "dept", "dept.police")
    feed = feed_client(server.url, server.add_feed("f3"))
    live_police = Live(server.url, police)
    try:
        incident = feed.call("report", report(1), namespace="/feed")["incident"]
        r = requests.post(f"{server.url}/api/v1/orders", json={
            "incident_id": incident["id"], "targets": ["dept.police"], "instruction": "到场"},
            headers={"Authorization": f"Bearer {leader}"})
        assert r.status_code == 200, r.text
        items = live_police.wait_for(1)  # the dispatch re-broadcasts the incident
        assert items[-1]["id"] == incident["id"] and items[-1]["status"] == "dispatched"
    finally:
        feed.disconnect()
        live_police.close()


def test_a_session_signed_in_screen_keeps_its_user_over_many_events(server):
    """Socket.IO events after the first reuse the connection's session copy and URL match: the
    user (and so the scope) stays the same on every event, polling or websocket."""
    server.add_user("镇干部王", "township", "DEMO-T01")
    s = login(server, "镇干部王")
    feed = feed_client(server.url, server.add_feed("f-session"))
    from layers.demo import demo_county
    units = demo_county().set_index("code")
    inside = units.loc["DEMO-T01-G01"].geometry.representative_point()
    outside = units.loc["DEMO-T02"].geometry.representative_point()
    acks = feed.call("report", [report(1, lon=inside.x, lat=inside.y),
                                report(2, lon=outside.x, lat=outside.y)], namespace="/feed")
    mine = acks[0]["incident"]["id"]
    cookie = "; ".join(f"{c.name}={c.value}" for c in s.cookies)
    try:
        for transport in ("websocket", "polling"):
            client = socketio.Client(reconnection=False)
            client.connect(server.url, namespaces=["/live"], transports=[transport],
                           headers={"Cookie": cookie}, wait_timeout=10)
            try:
                for _ in range(5):
                    caught = client.call("since", {"seq": 0}, namespace="/live", timeout=10)
                    assert [i["id"] for i in caught["items"]] == [mine]
                    assert caught["last_seq"] == 2
            finally:
                client.disconnect()
    finally:
        feed.disconnect()
