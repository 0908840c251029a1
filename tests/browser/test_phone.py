"""The grid worker's phone (/grid) in a real browser at 360×640, where "offline" means the server
cannot be reached: the page talks to the server through a local proxy the test stops
(Playwright's set_offline does not reach the service worker's requests).

Nothing made on the phone is lost or sent twice: reports with photos made offline survive a
reload, the browser being closed and started again, and the server being killed mid-sync; an
order signed off offline is signed off once, at the time it was done; a rejected report says why
and can be fixed; one user's outbox is never sent under another's sign-in; a photo arrives whole
over a slow link that drops every 10 seconds.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import time
from datetime import datetime
from urllib.parse import urlsplit

import pytest
import requests

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, LOCAL_HOSTS
from tests.browser.reports import report
from tests.browser.test_faces import grid_point
from tests.proxy import Proxy

GRID = "DEMO-T01-G01"
FIELD = "window.cmdcenterField"
PASSWORD = "password-123"
NETWORK_ERRORS = ("Failed to load resource", "WebSocket connection to")
PHONE = {"viewport": {"width": 360, "height": 640}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2, "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}


def jpeg(n: int, size: tuple[int, int] = (1024, 768), noise: bool = False) -> bytes:
    """A distinct JPEG: coloured blocks drawn from `n` (or noise, for a big file)."""
    from PIL import Image, ImageDraw

    rng = random.Random(n)
    if noise:
        image = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        draw = ImageDraw.Draw(image)
        for _ in range(12):
            x, y = rng.randrange(size[0]), rng.randrange(size[1])
            draw.rectangle([x, y, x + rng.randrange(40, 300), y + rng.randrange(40, 300)],
                           fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95 if noise else 85)
    return out.getvalue()


class Phone:
    """One phone: a Chromium profile on disk that can be closed and opened again, talking to
    the server through `proxy`."""

    def __init__(self, playwright_driver, profile, proxy: Proxy) -> None:
        self.pw, self.profile, self.proxy = playwright_driver, profile, proxy
        self.console_errors: list[str] = []
        self.foreign: list[str] = []
        self.dialogs: list[str] = []
        self.context = self.page = None

    def launch(self) -> "Phone":
        self.context = self.pw.chromium.launch_persistent_context(
            str(self.profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            **PHONE)
        self.context.on("request", self._request)
        self.page = self.context.pages[0] if self.context.pages else self.context.new_page()
        self.page.on("console", lambda m: self._console(m))
        self.page.on("pageerror", lambda exc: self.console_errors.append(f"page error: {exc}"))
        self.page.on("dialog", self._dialog)
        return self

    def _request(self, request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in ("data", "blob") and parts.hostname not in LOCAL_HOSTS:
            self.foreign.append(request.url)

    def _console(self, message) -> None:
        # the browser's own lines about requests that failed while the phone was "offline"
        # (the proxy refused them) are expected; anything the page logs itself is not
        if message.type == "error" and not message.text.startswith(NETWORK_ERRORS):
            self.console_errors.append(message.text)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.accept()

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
            self.context = self.page = None

    # --- what a worker does ---------------------------------------------------------------
    def sign_in(self, name: str) -> None:
        page = self.page
        page.goto(self.proxy.url + "/login")
        page.fill("input[name=name]", name)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/grid", timeout=20_000)
        self.wait_ready(online=True)

    def open(self, *, online: bool) -> None:
        self.page.goto(self.proxy.url + "/grid")
        self.wait_ready(online=online)

    def wait_ready(self, *, online: bool) -> None:
        self.page.wait_for_function(f"{FIELD} && {FIELD}.ready()", timeout=30_000)
        if online:
            self.page.wait_for_function(f"{FIELD}.connected()", timeout=30_000)
            # the service worker controls the page: it can open again without a network
            self.page.wait_for_function("navigator.serviceWorker.controller !== null",
                                        timeout=30_000)

    def report(self, title: str, photos: list[bytes] = (), *, kind: str | None = None) -> str:
        """Fill the 上报 form and save; return the report's id (made on the phone)."""
        page = self.page
        before = len(self.outbox())
        page.click("[data-tab=report]")
        if kind:
            page.select_option("#grid-report select[name=type]", kind)
        page.fill("#grid-report input[name=title]", title)
        if photos:
            page.set_input_files("#grid-report input[type=file]", [
                {"name": f"photo-{k}.jpg", "mimeType": "image/jpeg", "buffer": data}
                for k, data in enumerate(photos)])
            page.wait_for_function(f"document.querySelectorAll('#grid-report .ph-photo').length"
                                   f" === {len(photos)}", timeout=20_000)
        page.click("#grid-report button[type=submit]")
        return self.wait_outbox(before + 1)[-1]["id"]

    def outbox(self) -> list[dict]:
        return self.page.evaluate(f"{FIELD}.outbox()")

    def online(self) -> None:
        """The phone notices the network is back (as Chrome fires `online`)."""
        self.page.evaluate("window.dispatchEvent(new Event('online'))")

    def wait_drained(self, timeout: float = 120.0) -> None:
        """Wait until every report and photo, every action of this user is delivered."""
        deadline = time.monotonic() + timeout
        while True:
            box = self.outbox()
            if all(e["state"] == "delivered" and all(p["state"] == "done"
                                                     for p in e.get("photos", []))
                   for e in box):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"outbox not drained: {[e['state'] for e in box]}")
            self.page.wait_for_timeout(300)

    def wait_outbox(self, n: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(box := self.outbox()) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"outbox has {len(box)} entries, not {n}")
            self.page.wait_for_timeout(100)
        return box


@pytest.fixture
def proxy(server):
    p = Proxy(server.port).start()
    yield p
    p.stop()


@pytest.fixture
def phones(playwright_driver, proxy, tmp_path):
    made = []

    def make(name="phone"):
        phone = Phone(playwright_driver, tmp_path / f"profile-{name}", proxy).launch()
        made.append(phone)
        return phone

    yield make
    for phone in made:
        phone.close()


def worker(server, name: str) -> str:
    """A grid worker of GRID; their API token."""
    return server.add_user(name, "grid", GRID, password=PASSWORD)


def my_reports(server, token: str) -> list[dict]:
    r = requests.get(server.url + "/api/v1/field/reports?limit=200",
                     headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.ok, r.text
    return r.json()["items"]


def order_node(server, token: str, node_id: str) -> dict:
    r = requests.get(server.url + "/api/v1/orders", timeout=30,
                     headers={"Authorization": f"Bearer {token}"})
    assert r.ok, r.text
    return next(n for n in r.json() if n["id"] == node_id)


def assert_clean(phone: Phone) -> None:
    assert phone.console_errors == []
    assert phone.foreign == []


def test_twenty_reports_made_offline_arrive_once_each_with_every_photo(server, proxy, phones):
    token = worker(server, "grid-offline")
    phone = phones()
    phone.sign_in("grid-offline")
    proxy.stop()  # the signal is gone

    photos: dict[int, list[bytes]] = {k: [jpeg(100 * k + j) for j in range(1 + k % 3)]
                                      for k in range(20)}
    ids = [phone.report(f"现场上报 {k:02d}：排水沟堵塞", photos[k]) for k in range(10)]
    assert phone.page.text_content("#tab-outbox-count") == "10"
    assert "待发送 (10)" in phone.page.text_content("#grid-mine")

    phone.page.reload()  # still no network: the service worker opens the page
    phone.wait_ready(online=False)
    assert "离线" in phone.page.text_content("#grid-status")
    ids += [phone.report(f"现场上报 {k:02d}：排水沟堵塞", photos[k]) for k in range(10, 20)]

    phone.close()  # the battery runs out; the phone is started again, still without a signal
    phone.launch()
    phone.open(online=False)
    # between its tries (the first comes at once and fails), nothing is shown as being sent
    phone.page.wait_for_function(f"!{FIELD}.sending()", timeout=10_000)
    kept = phone.outbox()
    assert [e["id"] for e in kept] == ids
    assert all(e["state"] == "pending" for e in kept), [(e["id"][-6:], e["state"]) for e in kept]
    shas = {e["id"]: [p["sha"] for p in e["photos"]] for e in kept}
    assert [len(shas[i]) for i in ids] == [len(photos[k]) for k in range(20)]

    # the signal comes back, slowly; the server dies in the middle of the sync
    proxy.throttle(300_000)
    proxy.start()
    phone.online()
    deadline = datetime.now().timestamp() + 60
    while len(my_reports(server, token)) < 4 and datetime.now().timestamp() < deadline:
        phone.page.wait_for_timeout(200)
    assert 4 <= len(my_reports(server, token)) < 20, "the kill must come mid-sync"
    server.kill()
    phone.page.wait_for_timeout(1500)
    server.start()
    proxy.throttle(None)
    phone.online()
    phone.wait_drained()

    items = my_reports(server, token)[::-1]  # oldest first
    assert [i["source_id"] for i in items] == ids  # exactly 20, in the order they were made
    assert all(i["channel"] == "grid" and i["reporter_user"] == "grid-offline" for i in items)
    assert len({i["id"] for i in items}) == 20
    for item in items:
        assert [p["sha256"] for p in item["photos"]] == shas[item["source_id"]]
        for p in item["photos"]:
            got = requests.get(server.url + p["url"], timeout=30,
                               headers={"Authorization": f"Bearer {token}"})
            assert got.ok and hashlib.sha256(got.content).hexdigest() == p["sha256"]
    # the phone says so: 20 delivered with the server's number, nothing waiting
    phone.page.click("[data-tab=mine]")
    phone.page.wait_for_function(
        "document.querySelectorAll('#grid-mine .ph-item[data-state=delivered]').length === 20",
        timeout=20_000)
    assert "没有待发送的内容" in phone.page.text_content("#grid-mine")
    assert phone.page.text_content("#tab-outbox-count") == ""
    assert_clean(phone)


def delivered_order(server, feed, phones, name: str, incident_report: dict, *, priority: str,
                    instruction: str):
    """A grid worker `name` signed in on a phone, and a leader's order to GRID on the incident
    `incident_report` makes, delivered to that phone: (phone, the leader's token, node id)."""
    worker(server, name)
    leader = server.add_user(name.replace("grid-", "leader-"), "leader")
    incident = feed.send(incident_report)["incident"]
    phone = phones()
    phone.sign_in(name)
    order = requests.post(server.url + "/api/v1/orders", json={
        "incident_id": incident["id"], "targets": [GRID], "priority": priority,
        "instruction": instruction}, headers={"Authorization": f"Bearer {leader}"}, timeout=30)
    assert order.ok, order.text
    phone.page.wait_for_function(f"{FIELD}.nodes().some(n => n.state === 'delivered')",
                                 timeout=15_000)
    return phone, leader, phone.page.evaluate(f"{FIELD}.nodes()[0].id")


def test_an_order_signed_off_offline_is_signed_off_once_at_its_time(server, proxy, phones, feed):
    phone, leader, node_id = delivered_order(
        server, feed, phones, "grid-sign", report("dispute", "商铺租金纠纷", *grid_point(GRID),
                                                  severity=3),
        priority="high", instruction="请上门了解情况并先行调解")
    phone.page.wait_for_selector("#grid-cards .cc-gcard >> text=先行调解", timeout=15_000)

    proxy.stop()
    phone.page.click("#grid-cards [data-act=ack]")
    phone.page.wait_for_selector("#grid-cards .cc-node-who >> text=待发送：签收", timeout=5_000)
    queued = [e for e in phone.outbox() if e["kind"] == "action"]
    assert len(queued) == 1 and queued[0]["state"] != "delivered"
    acted_at = datetime.fromisoformat(queued[0]["body"]["acted_at"])
    phone.page.wait_for_timeout(2500)  # some time passes before the signal returns
    proxy.start()
    back = datetime.now().astimezone()
    phone.online()
    phone.wait_drained()

    node = order_node(server, leader, node_id)
    assert node["state"] == "acknowledged" and node["acked_by"] == "grid-sign"
    acks = [h for h in node["history"] if h["state"] == "acknowledged"]
    assert len(acks) == 1
    assert datetime.fromisoformat(acks[0]["at"]) == acted_at  # when it was done, not received
    assert datetime.fromisoformat(acks[0]["at"]) < back
    assert acks[0]["received_at"] is not None
    assert datetime.fromisoformat(acks[0]["received_at"]) >= back.replace(microsecond=0)
    # the same action again (a phone that never heard the answer): the node as it is
    again = requests.post(server.url + f"/api/v1/orders/{node_id}/ack", json=queued[0]["body"],
                          headers={"Authorization": f"Bearer {leader}"}, timeout=30)
    assert again.status_code == 200, again.text
    node = order_node(server, leader, node_id)
    assert len([h for h in node["history"] if h["state"] == "acknowledged"]) == 1
    phone.page.wait_for_selector("#grid-cards .cc-gcard.st-acknowledged", timeout=10_000)
    assert_clean(phone)


def test_an_order_completed_while_its_sign_off_is_sending_is_sent_at_once(server, proxy, phones,
                                                                          feed):
    """Sign off, then complete before the sign-off's answer is back: the completion was saved
    while the phone was sending and went with no later pass — it must go as soon as the
    sign-off is answered, not wait for the next reconnect."""
    phone, leader, node_id = delivered_order(
        server, feed, phones, "grid-quick", report("emergency", "仓库冒烟", *grid_point(GRID),
                                                   severity=2),
        priority="urgent", instruction="请立即到场查看")
    page = phone.page

    held = []  # the sign-off's request, held until the completion is saved
    page.route("**/api/v1/orders/*/ack", lambda route: held.append(route))
    page.click("#grid-cards [data-act=ack]")
    deadline = time.monotonic() + 10
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert held, "the sign-off was not sent"
    page.fill("#grid-cards [data-field=result]", "已到场，系厨房油烟，无火情")
    page.click("#grid-cards [data-act=complete]")
    deadline = time.monotonic() + 5
    while not any(e.get("action") == "complete" for e in phone.outbox()):
        assert time.monotonic() < deadline, "the completion was not saved"
        page.wait_for_timeout(50)
    held[0].continue_()
    page.unroute("**/api/v1/orders/*/ack")

    page.wait_for_selector("#grid-cards .cc-gcard.st-completed", timeout=10_000)
    node = order_node(server, leader, node_id)
    assert node["state"] == "completed" and node["result"] == "已到场，系厨房油烟，无火情"
    assert_clean(phone)


def test_a_rejected_report_shows_why_and_is_sent_again_once_fixed(server, proxy, phones):
    token = worker(server, "grid-fix")
    phone = phones()
    phone.sign_in("grid-fix")
    proxy.stop()
    page = phone.page
    page.click("[data-tab=report]")
    page.fill("#grid-report input[name=title]", "x")
    # a title longer than the form allows (an old page version, a paste that slipped through)
    page.evaluate("""() => { const t = document.querySelector('#grid-report input[name=title]');
                             t.removeAttribute('maxlength'); t.value = '长'.repeat(201); }""")
    page.click("#grid-report button[type=submit]")
    first = phone.wait_outbox(1)[0]["id"]
    proxy.start()
    phone.online()
    page.wait_for_selector("#grid-mine .ph-item[data-state=rejected]", timeout=20_000)
    text = page.text_content("#grid-mine .ph-item[data-state=rejected]")
    assert "被拒绝" in text and "title" in text
    assert my_reports(server, token) == []

    page.click("#grid-mine .ph-item[data-state=rejected] button")
    page.wait_for_selector("#grid-report .ph-error >> text=上次被拒绝", timeout=5_000)
    page.fill("#grid-report input[name=title]", "村口变压器冒烟")
    page.click("#grid-report button[type=submit]")
    phone.wait_drained(30)
    items = my_reports(server, token)
    assert [(i["source_id"], i["title"]) for i in items] == [(first, "村口变压器冒烟")]
    assert [e["id"] for e in phone.outbox()] == [first]  # the same id after a 422
    assert_clean(phone)


def test_a_second_user_on_the_phone_never_sends_the_first_users_outbox(server, proxy, phones):
    first, second = worker(server, "grid-first"), worker(server, "grid-second")
    phone = phones()
    phone.sign_in("grid-first")
    page = phone.page
    # the first user's report cannot get through (a captive portal answers nothing)
    page.route("**/api/v1/field/reports", lambda route: route.abort())
    made = phone.report("路灯损坏")
    page.wait_for_timeout(1000)
    assert [e["id"] for e in phone.outbox()] == [made]

    # signing out with something unsent asks first (accepted here); the portal still swallows
    # the report meanwhile (else a retry may deliver it before the click)
    page.click("#grid-logout button[type=submit]")
    page.wait_for_url("**/login*", timeout=10_000)
    assert len(phone.dialogs) == 1 and "没有送达" in phone.dialogs[0]
    page.unroute("**/api/v1/field/reports")

    phone.sign_in("grid-second")
    assert phone.outbox() == []  # the second user sees only their own
    assert "路灯损坏" not in page.text_content("#grid-mine")
    own = phone.report("井盖缺失")
    phone.wait_drained(30)
    page.wait_for_timeout(1500)  # time enough for a wrong sender to have sent it
    assert [i["source_id"] for i in my_reports(server, second)] == [own]
    assert my_reports(server, first) == []

    page.click("#grid-logout button[type=submit]")  # nothing unsent: no question
    page.wait_for_url("**/login*", timeout=10_000)
    assert len(phone.dialogs) == 1
    phone.sign_in("grid-first")  # back: the kept report goes now, under its own user
    phone.wait_drained(30)
    items = my_reports(server, first)
    assert [(i["source_id"], i["reporter_user"]) for i in items] == [(made, "grid-first")]
    assert_clean(phone)


def test_a_big_photo_arrives_whole_over_a_slow_link_that_keeps_dropping(server, proxy, phones):
    token = worker(server, "grid-slow")
    phone = phones()
    phone.sign_in("grid-slow")
    data = jpeg(7, (2400, 1800), noise=True)
    assert 4_500_000 < len(data) < 6_500_000
    sha = hashlib.sha256(data).hexdigest()
    report_id = "f1e2d3c4-0000-4000-8000-000000000001"
    proxy.throttle(750_000 / 8, cut_every=10)  # 750 kbit/s, the connection dropped every 10 s
    got = phone.page.evaluate(
        """([bytes, id]) => cmdcenterField.uploadResumable(id,
               new Blob([Uint8Array.from(atob(bytes), c => c.charCodeAt(0))], {type: 'image/jpeg'}))""",
        [__import__("base64").b64encode(data).decode(), report_id])
    assert got == sha
    assert proxy.cuts >= 3  # it really was cut while going up
    proxy.throttle(None)
    lon, lat = grid_point(GRID)
    ack = requests.post(server.url + "/api/v1/field/reports", timeout=30,
                        headers={"Authorization": f"Bearer {token}"},
                        json={"id": report_id, "type": "public_safety", "title": "山体裂缝",
                              "occurred_at": datetime.now().astimezone().isoformat(),
                              "severity": 3, "lon": lon, "lat": lat, "position": "gps",
                              "accuracy_m": 12.5})
    assert ack.ok, ack.text
    photo = ack.json()["incident"]["photos"]
    assert [p["sha256"] for p in photo] == [sha] and photo[0]["bytes"] == len(data)
    held = requests.get(server.url + photo[0]["url"], timeout=30,
                        headers={"Authorization": f"Bearer {token}"})
    assert hashlib.sha256(held.content).hexdigest() == sha
    assert_clean(phone)


CONTRAST = """() => {
  const parse = c => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
      const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
      return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
      return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const background = el => {
      const layers = [];
      for (let e = el; e; e = e.parentElement) {
          const c = parse(getComputedStyle(e).backgroundColor);
          if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
      }
      let out = {r: 255, g: 255, b: 255};
      for (const c of layers.reverse()) {
          out = {r: c.r * c.a + out.r * (1 - c.a), g: c.g * c.a + out.g * (1 - c.a), b: c.b * c.a + out.b * (1 - c.a)};
      }
      return out;
  };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
      const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
      const r = el.getBoundingClientRect();
      if (!own || !r.width || !r.height || getComputedStyle(el).visibility === 'hidden') continue;
      let opacity = 1;
      for (let e = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
      if (opacity === 0) continue;  // not shown (a toast at rest)
      const s = getComputedStyle(el);
      const fg = parse(s.color), bg = background(el);
      fg.a *= opacity;  // faded text is fainter text
      const a = lum({r: fg.r * fg.a + bg.r * (1 - fg.a), g: fg.g * fg.a + bg.g * (1 - fg.a), b: fg.b * fg.a + bg.b * (1 - fg.a)});
      const b = lum(bg);
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      if (ratio < 7) bad.push(el.tagName + '.' + el.className + ' "' + el.textContent.trim().slice(0, 20) + '" ' + ratio.toFixed(2));
  }
  return bad;
}"""

TAPS = """() => Array.from(document.querySelectorAll(
      'button, a, select, input:not([type=hidden]), textarea, summary, label.ph-file, label.ph-check, .ph-choice label, [role=tab]'))
  .filter(e => { const r = e.getBoundingClientRect(); return r.width && r.height
                 && getComputedStyle(e).visibility !== 'hidden'; })
  // a file input, a radio or a check box is tapped through its label, measured instead
  .filter(e => !(e.type === 'file' || ((e.type === 'radio' || e.type === 'checkbox') && e.closest('label'))))
  .map(e => { const r = e.getBoundingClientRect();
              return {what: e.tagName + '.' + e.className + ' ' + (e.textContent || e.name || '').trim().slice(0, 16),
                      w: r.width, h: r.height}; })
  .filter(t => t.w < 44 || t.h < 44)"""


def test_the_phone_page_is_installable_readable_and_fits(server, proxy, phones, feed):
    worker(server, "grid-look")
    leader = server.add_user("leader-look", "leader")
    lon, lat = grid_point(GRID)
    incident = feed.send(report("public_safety", "山路塌方", lon, lat, severity=2))["incident"]
    requests.post(server.url + "/api/v1/orders", json={
        "incident_id": incident["id"], "targets": [GRID], "priority": "urgent",
        "instruction": "立即设置警示，疏导过往车辆"},
        headers={"Authorization": f"Bearer {leader}"}, timeout=30).raise_for_status()
    phone = phones()
    phone.sign_in("grid-look")
    page = phone.page
    page.wait_for_selector("#grid-cards .cc-gcard >> text=疏导过往车辆", timeout=15_000)
    phone.report("桥面护栏松动", [jpeg(1)])
    phone.wait_drained(30)

    manifest = json.loads(requests.get(proxy.url + "/grid/manifest.webmanifest", timeout=30).text)
    assert manifest["start_url"] == "/grid" and manifest["display"] == "standalone"
    assert manifest["lang"] == "zh-CN"
    from PIL import Image

    for icon in manifest["icons"]:
        got = requests.get(proxy.url + icon["src"], timeout=30)
        assert got.ok and got.headers["Content-Type"] == "image/png"
        size = Image.open(io.BytesIO(got.content)).size
        assert f"{size[0]}x{size[1]}" == icon["sizes"]
    assert {i["sizes"] for i in manifest["icons"]} >= {"192x192", "512x512"}
    assert page.evaluate("document.documentElement.lang") == "zh-CN"

    for tab in ("orders", "report", "mine"):
        page.click(f"[data-tab={tab}]")
        if tab == "report":
            page.check("#grid-report input[value=map]")
            page.wait_for_selector("#grid-report svg.ph-map:not([hidden])")
        page.wait_for_timeout(200)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, tab
        assert page.evaluate(TAPS) == [], tab
        assert page.evaluate(CONTRAST) == [], tab
    assert_clean(phone)
