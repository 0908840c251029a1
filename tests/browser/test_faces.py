"""The three command faces in real browsers: leader → township → grid and back, without reloads."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from layers.demo import demo_county
from tests.browser.conftest import LOCAL_HOSTS, PageRecord
from tests.browser.reports import report, sample
from tests.browser.session import sign_in

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
TOWNSHIP, GRID = "DEMO-T01", "DEMO-T01-G01"
DESK = "window.cmdcenterDesk"
FIELD = "window.cmdcenterField"


@pytest.fixture
def contexts(browser):
    """Make recorded pages in their own browser contexts (separate cookies)."""
    made = []

    def new_page(width=1920, height=1080, mobile=False):
        context = browser.new_context(viewport={"width": width, "height": height},
                                      locale="zh-CN", timezone_id="Asia/Shanghai",
                                      is_mobile=mobile, has_touch=mobile)
        pg = context.new_page()
        record = PageRecord()
        pg.on("console", lambda m: record.console_errors.append(m.text)
              if m.type == "error" else None)
        pg.on("pageerror", lambda exc: record.console_errors.append(f"page error: {exc}"))
        pg.on("dialog", lambda d: (record.dialogs.append(d.message), d.dismiss()))

        def route(r):
            parts = urlsplit(r.request.url)
            if parts.scheme in ("data", "blob") or parts.hostname in LOCAL_HOSTS:
                r.continue_()
            else:
                record.foreign_requests.append(r.request.url)
                r.abort()

        pg.route("**/*", route)
        pg.record = record
        made.append(context)
        return pg

    yield new_page
    for context in made:
        context.close()


def assert_clean(*pages) -> None:
    for pg in pages:
        assert pg.record.console_errors == [], pg.url
        assert pg.record.foreign_requests == [], pg.url
        assert pg.record.dialogs == [], pg.url


def grid_point(code: str) -> tuple[float, float]:
    units = demo_county()
    point = units[units["code"] == code].geometry.iloc[0].representative_point()
    return point.x, point.y


def open_desk(page, server, name, role, unit, path, ready):
    sign_in(page, server, name, role, unit)
    page.goto(server.url + path)
    page.wait_for_function(f"{ready} && {ready}.connected()", timeout=20_000)


def test_order_goes_down_and_the_result_comes_back(contexts, server, feed):
    leader, township, worker = contexts(), contexts(), contexts(375, 667, mobile=True)
    open_desk(leader, server, "leader-li", "leader", None, "/command", DESK)
    leader.wait_for_selector("#command-map .maplibregl-canvas", timeout=30_000)
    open_desk(township, server, "town-wang", "township", TOWNSHIP, "/township", DESK)
    open_desk(worker, server, "grid-zhao", "grid", GRID, "/grid", FIELD)

    feed.send(sample(14, seed=11, hours=6))  # a county with other things going on
    lon, lat = grid_point(GRID)
    incident = feed.send(report("emergency", "东关社区厂房起火", lon, lat, severity=2,
                                people=12))["incident"]
    assert incident["grid"]["code"] == GRID

    # the leader picks the incident from the live list and issues an order to the township
    item = leader.wait_for_selector(f'#command-list [data-incident-id="{incident["id"]}"]',
                                    timeout=10_000)
    item.click()
    leader.wait_for_selector("#command-facts >> text=东关社区厂房起火")
    leader.click(f'#command-form [data-act=target][data-code="{TOWNSHIP}"] >> nth=0')
    leader.fill("#command-form [data-field=instruction]", "立即组织力量疏散群众，查明火情")
    leader.click("#command-form [data-act=issue]")
    node = leader.wait_for_selector("#command-tree .cc-node >> text=城关街道", timeout=10_000)
    assert node is not None
    leader.wait_for_selector("#cc-incident-status >> text=派遣", timeout=10_000)

    # the township sees it without reloading and forwards it to the grid
    card = township.wait_for_selector("#township-nodes .cc-ncard >> text=立即组织力量疏散群众",
                                      timeout=10_000)
    assert card is not None
    township.click("#township-nodes .cc-forward summary")
    township.click(f'#township-nodes [data-act=pick][data-code="{GRID}"]')
    township.click("#township-nodes [data-act=forward]")
    township.wait_for_selector("#township-nodes .cc-kid >> text=东关社区网格", timeout=10_000)

    # the worker's phone shows the card at once (banner), signs off and completes
    worker.wait_for_selector("#grid-cards .cc-gcard >> text=立即组织力量疏散群众", timeout=10_000)
    worker.wait_for_selector("#grid-banner.is-on", timeout=10_000)
    worker.wait_for_function(
        f"{FIELD}.nodes().some(n => n.state === 'delivered')", timeout=10_000)
    worker.click("#grid-cards [data-act=ack]")
    worker.wait_for_selector("#grid-cards [data-field=result]", timeout=10_000)
    worker.fill("#grid-cards [data-field=result]", "明火已扑灭，群众已疏散，无人员伤亡")
    worker.click("#grid-cards [data-act=complete]")
    worker.wait_for_selector("#grid-cards .cc-gcard.st-completed", timeout=10_000)

    # the leader's tree goes all green and the incident is 反馈, without a reload
    leader.wait_for_selector("#command-tree .cc-order.is-done", timeout=15_000)
    states = leader.eval_on_selector_all("#command-tree .cc-node",
                                         "els => els.map(e => e.dataset.state)")
    assert states == ["completed", "completed"]
    leader.wait_for_selector("#cc-incident-status >> text=反馈", timeout=10_000)
    assert "明火已扑灭" in leader.text_content("#command-tree")
    township.wait_for_selector("#township-nodes .cc-ncard.st-completed", timeout=10_000)

    leader.evaluate("document.querySelector('.cc-detail-card').scrollTop = 0")
    leader.wait_for_timeout(300)
    DOCS.mkdir(exist_ok=True)
    leader.screenshot(path=str(DOCS / "command.png"))
    assert_clean(leader, township, worker)


def test_grid_page_fits_a_phone(contexts, server):
    worker = contexts(375, 667, mobile=True)
    open_desk(worker, server, "grid-qian", "grid", GRID, "/grid", FIELD)
    leader_token = server.add_user("leader-phone", "leader")
    import requests

    lon, lat = grid_point(GRID)
    feed_token = server.add_feed("phone-feed")
    ack = requests.post(server.url + "/api/v1/reports", json=report(
        "dispute", "邻里宅基地边界纠纷", lon, lat, severity=3),
        headers={"Authorization": f"Bearer {feed_token}"}, timeout=30).json()
    incident_id = ack["incident"]["id"]
    # a tap first: the page may then beep when the order arrives
    worker.tap(".ph-header")
    order = requests.post(server.url + "/api/v1/orders", json={
        "incident_id": incident_id, "targets": [GRID], "priority": "high",
        "instruction": "请上门了解双方诉求，先行调解，必要时联系司法所"},
        headers={"Authorization": f"Bearer {leader_token}"}, timeout=30)
    assert order.ok, order.text
    worker.wait_for_selector("#grid-cards .cc-gcard >> text=先行调解", timeout=10_000)
    worker.wait_for_selector("#grid-banner.is-on", timeout=10_000)
    worker.wait_for_function(f"{FIELD}.beeps() > 0", timeout=5_000)
    assert worker.evaluate("document.documentElement.scrollWidth") <= 375
    # measured in one step: the cards are redrawn on every change of the order (its delivered
    # receipt comes back as one), and an element handle taken before that is detached
    card, box = worker.evaluate("""() => ['#grid-cards .cc-gcard', '#grid-cards [data-act=ack]']
        .map(s => { const r = document.querySelector(s).getBoundingClientRect();
                    return {x: r.x, width: r.width, height: r.height}; })""")
    assert card["x"] >= 0 and card["x"] + card["width"] <= 375
    assert box["width"] >= 300 and box["height"] >= 48  # a big thumb target
    worker.wait_for_timeout(300)
    worker.screenshot(path=str(DOCS / "grid.png"))
    assert_clean(worker)


def test_photos_from_a_phone_show_on_the_command_detail_and_the_wall_popup(contexts, server):
    """A worker's report with two photos: /command's detail and the wall's popup show them
    (thumbnails that load, each linking to the full photo); a photo arriving later joins."""
    import hashlib
    import io
    import uuid

    import requests
    from PIL import Image

    token = server.add_user("grid-photo", "grid", GRID)
    auth = {"Authorization": f"Bearer {token}"}

    def photo(color) -> tuple[bytes, str]:
        out = io.BytesIO()
        Image.new("RGB", (640, 480), color).save(out, "JPEG")
        return out.getvalue(), hashlib.sha256(out.getvalue()).hexdigest()

    def put(report_id, data, sha):
        r = requests.put(f"{server.url}/api/v1/field/reports/{report_id}/photos/{sha}", data=data,
                         headers={**auth, "Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"},
                         timeout=30)
        assert r.status_code == 201, r.text

    report_id = str(uuid.uuid4())
    first, second, third = photo((200, 40, 40)), photo((40, 160, 60)), photo((40, 60, 200))
    put(report_id, *first)
    put(report_id, *second)
    lon, lat = grid_point(GRID)
    ack = requests.post(server.url + "/api/v1/field/reports", headers=auth, timeout=30, json={
        "id": report_id, "type": "public_safety", "title": "河堤渗水", "severity": 3,
        "occurred_at": __import__("datetime").datetime.now().astimezone().isoformat(),
        "lon": lon, "lat": lat, "position": "gps", "accuracy_m": 9})
    assert ack.ok, ack.text
    incident = ack.json()["incident"]
    assert [p["sha256"] for p in incident["photos"]] == [first[1], second[1]]

    leader = contexts()
    open_desk(leader, server, "leader-photo", "leader", None, "/command", DESK)
    leader.click(f'#command-list [data-incident-id="{incident["id"]}"]', timeout=15_000)
    leader.wait_for_function("document.querySelectorAll('.cc-photo img').length === 2 && "
                             "[...document.querySelectorAll('.cc-photo img')]"
                             ".every(i => i.complete && i.naturalWidth > 0)", timeout=15_000)
    assert "上报人 grid-photo" in leader.text_content(".cc-facts-who")
    href = leader.get_attribute(".cc-photo", "href")
    assert href == f"/api/v1/photos/{first[1]}"

    wall = contexts()
    sign_in(wall, server, "wall-photo", "duty")
    wall.goto(server.url + "/")
    wall.wait_for_function("window.cmdcenterLive && window.cmdcenterLive.connected()",
                           timeout=30_000)
    wall.click(f'#incident-feed [data-incident-id="{incident["id"]}"]', timeout=15_000)
    wall.wait_for_function("document.querySelectorAll('#wall-popup .wall-popup-photo img').length"
                           " === 2", timeout=10_000)
    assert "河堤渗水" in wall.text_content("#wall-popup")
    put(report_id, *third)  # a third photo arrives: both faces follow without a reload
    wall.wait_for_function("document.querySelectorAll('#wall-popup .wall-popup-photo img').length"
                           " === 3", timeout=15_000)
    leader.wait_for_function("document.querySelectorAll('.cc-photo img').length === 3",
                             timeout=15_000)
    wall.wait_for_function("[...document.querySelectorAll('#wall-popup img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)", timeout=10_000)
    wall.keyboard.press("Escape")
    assert wall.query_selector("#wall-popup") is None
    assert_clean(leader, wall)
