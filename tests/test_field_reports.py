"""The grid worker's phone over the wire: reports from the field, photos in resumable pieces,
order actions taken offline, "my reports"; a real server and real HTTP."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from command.clock import SHANGHAI
from command.photos.service import strip_metadata
from tests import servers

GRID = "DEMO-T01-G01"


def now_iso(minutes: float = 0) -> str:
    return (datetime.now(timezone.utc) + timedelta(minutes=minutes)).astimezone(SHANGHAI) \
        .isoformat(timespec="seconds")


def report(**change) -> dict:
    raw = {"id": str(uuid.uuid4()), "type": "emergency", "title": "下水道堵塞",
           "occurred_at": now_iso(-3), "grid": GRID, "position": "grid"}
    raw.update(change)
    return raw


def jpeg(size=(64, 48), color=(200, 30, 30), exif_gps: bool = False) -> bytes:
    from PIL import Image

    img = Image.new("RGB", size, color)
    out = io.BytesIO()
    if exif_gps:
        exif = Image.Exif()
        exif[0x010F] = "DemoPhone"  # Make
        exif[0x8825] = {1: "N", 2: (30.0, 3.0, 0.0)}  # GPSInfo
        img.save(out, "JPEG", exif=exif.tobytes())
    else:
        img.save(out, "JPEG")
    return out.getvalue()


class Phone:
    """A signed-in grid worker's HTTP client (token auth)."""

    def __init__(self, srv: servers.Server, token: str) -> None:
        self.srv, self.token = srv, token

    def post(self, path, body, **kw):
        return requests.post(self.srv.url + path, json=body, timeout=30,
                             headers={"Authorization": f"Bearer {self.token}"}, **kw)

    def get(self, path, **kw):
        return requests.get(self.srv.url + path, timeout=30,
                            headers={"Authorization": f"Bearer {self.token}"}, **kw)

    def put_piece(self, report_id, sha, data, first, total, path=None):
        path = path or f"/api/v1/field/reports/{report_id}/photos/{sha}"
        return requests.put(self.srv.url + path, data=data, timeout=30, headers={
            "Authorization": f"Bearer {self.token}",
            "Content-Range": f"bytes {first}-{first + len(data) - 1}/{total}"})

    def head(self, report_id, sha):
        return requests.head(f"{self.srv.url}/api/v1/field/reports/{report_id}/photos/{sha}",
                             headers={"Authorization": f"Bearer {self.token}"}, timeout=30)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("phone")
    srv = servers.Server(root / "data", servers.free_port(),
                         {"CMDCENTER_LOG": "WARNING", "CMDCENTER_SUPERVISION_SECONDS": "1",
                          "CMDCENTER_CLOCK_FILE": str(root / "clock")}).start()
    w = {"srv": srv, "grid": Phone(srv, srv.add_user("g-zhang", "grid", GRID)),
         "other": Phone(srv, srv.add_user("g-li", "grid", "DEMO-T02-G01")),
         "town": Phone(srv, srv.add_user("t-wang", "township", "DEMO-T01")),
         "leader": Phone(srv, srv.add_user("l-chen", "leader")),
         "feed": srv.add_feed("phone-feed")}
    yield w
    srv.stop()


def test_the_phones_door(world):
    grid, srv = world["grid"], world["srv"]
    body = report()  # placed at its grid
    lon, lat = 120.221, 30.0787
    r = grid.post("/api/v1/field/reports", report(grid=None, lon=lon, lat=lat, position="gps",
                                                  accuracy_m=12.5))
    assert r.status_code == 200, r.text
    incident = r.json()["incident"]
    assert (incident["channel"], incident["feed"], incident["reporter_user"]) == \
        ("grid", None, "g-zhang")
    assert (incident["position"], incident["accuracy_m"], incident["approximate"]) == \
        ("gps", 12.5, False)
    again = grid.post("/api/v1/field/reports", body)
    assert again.json()["incident"]["approximate"] is True  # placed at its grid
    same = grid.post("/api/v1/field/reports", body)
    assert same.json()["duplicate"] is True  # (user, id) is idempotent
    changed = grid.post("/api/v1/field/reports", {**body, "title": "改了"})
    assert (changed.status_code, changed.json()["error"]["code"]) == (409, "conflict")
    # the same id from another worker is another report
    assert world["other"].post("/api/v1/field/reports", body).json()["duplicate"] is False
    many = grid.post("/api/v1/field/reports", [report(), {"id": "x"}])
    assert [a["ok"] for a in many.json()] == [True, False]
    # who may use the door
    assert requests.post(srv.url + "/api/v1/field/reports", json=report(),
                         timeout=30).status_code == 401
    assert requests.post(srv.url + "/api/v1/field/reports", json=report(), timeout=30,
                         headers={"Authorization": f"Bearer {world['feed']}"}).status_code == 401
    assert world["leader"].post("/api/v1/field/reports", report()).status_code == 403
    assert world["town"].post("/api/v1/field/reports", report()).status_code == 200
    # and the feeds' door stays the feeds'
    assert grid.post("/api/v1/reports", report()).status_code == 401
    bad = grid.post("/api/v1/field/reports", report(position="grid", lon=lon, lat=lat))
    assert bad.json()["error"]["field"] == "position"


def test_a_user_sees_what_they_reported_wherever_it_is(world):
    grid = world["grid"]
    far = grid.post("/api/v1/field/reports", report(grid="DEMO-T05-G01", title="外网格所见"))
    incident = far.json()["incident"]
    assert incident["grid"]["code"] == "DEMO-T05-G01"
    assert grid.get(f"/api/v1/incidents/{incident['id']}").status_code == 200
    assert incident["id"] in {i["id"] for i in grid.get("/api/v1/incidents?since=0").json()["items"]}
    assert world["other"].get(f"/api/v1/incidents/{incident['id']}").status_code == 403
    mine = grid.get("/api/v1/field/reports").json()["items"]
    assert incident["id"] in {i["id"] for i in mine}
    world["leader"].post(f"/api/v1/incidents/{incident['id']}/transition",
                         {"to": "accepted", "note": "已受理，派人核实"})
    mine = {i["id"]: i for i in grid.get("/api/v1/field/reports").json()["items"]}
    assert mine[incident["id"]]["progress"][-1]["to_label"] == "受理"
    assert mine[incident["id"]]["progress"][-1]["note"] == "已受理，派人核实"


def test_a_matter_from_the_phone_waits_at_the_window_or_is_closed_on_the_spot(world):
    grid, srv = world["grid"], world["srv"]
    waiting = grid.post("/api/v1/field/reports", report(
        type="dispute", category="neighbour", title="邻居噪音",
        parties=[{"role": "applicant", "kind": "person", "name": "赵大",
                  "phone": "13900000001"}])).json()["incident"]
    assert waiting["case_no"] and waiting["status"] == "reported"
    record = srv.get(f"/api/v1/matters/{waiting['case_no']}").json()
    assert record["parties"][0]["phone"] == "139****0001" and record["channel"] == "grid"
    done = grid.post("/api/v1/field/reports", report(
        type="dispute", category="neighbour", title="当场调解", closure="on_the_spot",
        note="双方握手言和")).json()["incident"]
    assert done["status"] == "closed"
    record = srv.get(f"/api/v1/matters/{done['case_no']}").json()
    assert record["closure"] == "on_the_spot" and record["concluded_at"]
    refused = grid.post("/api/v1/field/reports", report(closure="on_the_spot", note="x"))
    assert refused.json()["error"]["field"] == "type"  # an emergency is no matter


def test_photos_in_pieces_before_and_after_their_report(world):
    grid, srv = world["grid"], world["srv"]
    photo = jpeg((400, 300), exif_gps=True)
    sha = hashlib.sha256(photo).hexdigest()
    rid = str(uuid.uuid4())
    assert grid.head(rid, sha).status_code == 308 and "Range" not in grid.head(rid, sha).headers
    half = len(photo) // 2
    r = grid.put_piece(rid, sha, photo[:half], 0, len(photo))
    assert r.status_code == 308 and r.headers["Range"] == f"bytes=0-{half - 1}"
    assert grid.head(rid, sha).headers["Range"] == f"bytes=0-{half - 1}"
    gap = grid.put_piece(rid, sha, photo[half + 10:], half + 10, len(photo))
    assert gap.status_code == 308 and gap.headers["Range"] == f"bytes=0-{half - 1}"
    overlap = grid.put_piece(rid, sha, photo[half - 5:], half - 5, len(photo))  # resent bytes
    assert overlap.status_code == 201
    assert grid.head(rid, sha).status_code == 201
    incident = grid.post("/api/v1/field/reports", report(id=rid)).json()["incident"]
    assert [p["sha256"] for p in incident["photos"]] == [sha]  # it waited for its report
    stored = grid.get(incident["photos"][0]["url"])
    assert stored.status_code == 200 and stored.headers["Content-Type"] == "image/jpeg"
    assert b"Exif" not in stored.content[:4096] and b"DemoPhone" not in stored.content
    assert stored.content == strip_metadata(photo, "image/jpeg")
    assert grid.get(incident["photos"][0]["thumb_url"]).status_code == 200
    assert world["other"].get(incident["photos"][0]["url"]).status_code == 404  # not theirs
    assert srv.get(incident["photos"][0]["url"]).status_code == 200  # the county's duty
    # a photo after its report: the incident changes (a new seq) and carries it
    second = jpeg(color=(10, 200, 10))
    sha2 = hashlib.sha256(second).hexdigest()
    assert grid.put_piece(rid, sha2, second, 0, len(second)).status_code == 201
    detail = srv.get(f"/api/v1/incidents/{incident['id']}").json()
    assert [p["sha256"] for p in detail["photos"]] == [sha, sha2]
    assert detail["seq"] > incident["seq"]


def test_photo_refusals(world):
    grid = world["grid"]
    rid = str(uuid.uuid4())
    photo = jpeg()
    wrong = grid.put_piece(rid, "0" * 64, photo, 0, len(photo))
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "invalid_field")
    assert grid.head(rid, "0" * 64).status_code == 308  # the bytes were dropped
    text = b"not an image at all"
    sha = hashlib.sha256(text).hexdigest()
    assert grid.put_piece(rid, sha, text, 0, len(text)).json()["error"]["code"] == \
        "invalid_field"
    r = requests.put(f"{world['srv'].url}/api/v1/field/reports/{rid}/photos/{'a' * 64}",
                     data=photo, timeout=30, headers={
                         "Authorization": f"Bearer {grid.token}",
                         "Content-Range": f"bytes 0-{len(photo) - 1}/{11 * 1024 * 1024}"})
    assert (r.status_code, r.json()["error"]["code"]) == (413, "too_large")
    for k in range(9):
        p = jpeg(color=(k * 20, 5, 5))
        assert grid.put_piece(rid, hashlib.sha256(p).hexdigest(), p, 0, len(p)).status_code == 201
    tenth = jpeg(color=(1, 2, 250))
    r = grid.put_piece(rid, hashlib.sha256(tenth).hexdigest(), tenth, 0, len(tenth))
    assert (r.status_code, r.json()["error"]["code"]) == (422, "out_of_range")
    assert world["leader"].put_piece(rid, "b" * 64, photo, 0, len(photo)).status_code == 403


def test_scans_at_the_window(world):
    srv = world["srv"]
    clerk = Phone(srv, srv.add_user("clerk-scan", "desk"))
    case_no = clerk.post("/api/v1/matters", {"type": "petition", "title": "来信",
                                              "grid": GRID, "channel": "letter"}).json()["case_no"]
    scan = jpeg((800, 1100), color=(250, 250, 250))
    sha = hashlib.sha256(scan).hexdigest()
    r = clerk.put_piece(None, sha, scan, 0, len(scan),
                        path=f"/api/v1/matters/{case_no}/photos/{sha}")
    assert r.status_code == 201
    assert [p["sha256"] for p in srv.get(f"/api/v1/matters/{case_no}").json()["photos"]] == [sha]


def test_order_actions_from_a_phone_that_was_offline(world):
    grid, leader, srv = world["grid"], world["leader"], world["srv"]
    incident = grid.post("/api/v1/field/reports", report()).json()["incident"]
    order = leader.post("/api/v1/orders", {"incident_id": incident["id"], "targets": [GRID],
                                           "instruction": "到场核实"}).json()
    node = order["nodes"][0]
    path = f"/api/v1/orders/{node['id']}"
    early = grid.post(path + "/ack", {"action_id": "a-1", "acted_at": "2020-01-01T00:00:00"})
    assert (early.status_code, early.json()["error"]["code"]) == (422, "out_of_range")
    future = grid.post(path + "/ack", {"action_id": "a-1", "acted_at": now_iso(60)})
    assert (future.status_code, future.json()["error"]["code"]) == (422, "future_time")
    acted = now_iso(0)
    first = grid.post(path + "/ack", {"action_id": "a-1", "acted_at": acted, "note": "已到场"})
    assert first.status_code == 200 and first.json()["state"] == "acknowledged"
    again = grid.post(path + "/ack", {"action_id": "a-1", "acted_at": acted, "note": "已到场"})
    assert again.status_code == 200 and again.json()["seq"] == first.json()["seq"]
    signed = [h for h in again.json()["history"] if h["state"] == "acknowledged"]
    assert len(signed) == 1 and signed[0]["at"] == acted
    done = grid.post(path + "/complete", {"action_id": "a-2", "result": "已疏通"})
    assert done.json()["state"] == "completed"
    late = grid.post(path + "/progress", {"action_id": "a-3", "note": "还在处理"})
    assert late.status_code == 409 and late.json()["node"]["state"] == "completed"
    assert "allowed" in late.json()
    assert grid.post(path + "/ack", {"action_id": "a-4"}).status_code == 200  # still 200
    # an order of a closed incident takes no more actions
    other = grid.post("/api/v1/field/reports", report()).json()["incident"]
    order2 = leader.post("/api/v1/orders", {"incident_id": other["id"], "targets": [GRID],
                                            "instruction": "核实"}).json()
    node2 = order2["nodes"][0]["id"]
    grid.post(f"/api/v1/orders/{node2}/ack", {})
    for to in ("responded", "verified", "closed"):
        assert leader.post(f"/api/v1/incidents/{other['id']}/transition",
                           {"to": to}).status_code == 200
    refused = grid.post(f"/api/v1/orders/{node2}/progress", {"action_id": "a-9", "note": "x"})
    assert refused.status_code == 409 and refused.json()["node"]["id"] == node2
    assert "归档" in refused.json()["error"]["message"]


def test_a_late_arriving_on_time_sign_off_resolves_the_overdue_alert(world):
    import time

    grid, leader, srv = world["grid"], world["leader"], world["srv"]
    incident = grid.post("/api/v1/field/reports", report()).json()["incident"]
    order = leader.post("/api/v1/orders", {"incident_id": incident["id"], "targets": [GRID],
                                           "instruction": "到场", "ack_minutes": 1,
                                           "due_minutes": 600}).json()
    node = order["nodes"][0]
    signed_at = now_iso(0.2)  # on time, but the phone had no signal
    srv.advance_clock(61)  # the server's minute passes; the phone's sign-off has not arrived
    deadline = time.monotonic() + 60
    alert = None
    while time.monotonic() < deadline and alert is None:
        alert = next((a for a in srv.get("/api/v1/alerts").json()
                      if a["key"] == f"overdue:ack:{node['id']}"), None)
        time.sleep(1)
    assert alert is not None, "no overdue alert"
    r = grid.post(f"/api/v1/orders/{node['id']}/ack", {"action_id": str(uuid.uuid4()),
                                                       "acted_at": signed_at})
    assert r.status_code == 200
    after = srv.get(f"/api/v1/alerts/{alert['id']}").json()
    assert after["status"] == "resolved"
    assert any(h["state"] == "acknowledged" and h["at"] == signed_at
               for h in r.json()["history"])


def test_json_answers_carry_no_full_phone(world):
    grid = world["grid"]
    r = grid.post("/api/v1/field/reports", report(reporter="张三", phone="13800001111"))
    assert "13800001111" not in json.dumps(r.json(), ensure_ascii=False)


def test_a_days_backlog_is_judged_by_when_things_happened(world):
    """A phone that was out of signal all day sends its reports at once: no gathering or spike
    is raised for what was spread over the day; the same reports happening now raise both."""
    import time

    from layers.demo import demo_county

    srv = world["srv"]
    units = demo_county().set_index("code")
    backlog = Phone(srv, srv.add_user("g-hill", "grid", "DEMO-T03-G01"))
    now = Phone(srv, srv.add_user("g-town", "grid", "DEMO-T04-G01"))

    def day(user, grid, minutes):
        point = units.loc[grid].geometry.representative_point()
        return [report(type="dispute", title=f"纠纷 {k}", grid=None, lon=point.x, lat=point.y,
                       position="gps", accuracy_m=8, occurred_at=now_iso(m), people=4)
                for k, m in enumerate(minutes)]

    spread = day(backlog, "DEMO-T03-G01", [-480 + 55 * k for k in range(8)])  # 8 hours
    sent = backlog.post("/api/v1/field/reports", spread)
    assert all(a["ok"] for a in sent.json())
    late_ids = {a["incident"]["id"] for a in sent.json()}
    burst = now.post("/api/v1/field/reports",
                     day(now, "DEMO-T04-G01", [-9 + k for k in range(8)]))  # 8 in 8 minutes
    burst_ids = {a["incident"]["id"] for a in burst.json()}

    def rules_over(ids):
        return {a["rule"] for a in srv.get("/api/v1/alerts?status=all").json()
                if set(a["incidents"]) & ids}

    deadline = time.monotonic() + 60
    while rules_over(burst_ids) < {"mass_gathering", "spike"} and time.monotonic() < deadline:
        time.sleep(0.5)
    assert rules_over(burst_ids) >= {"mass_gathering", "spike"}  # the watch has seen them all
    assert rules_over(late_ids) & {"mass_gathering", "spike"} == set()
