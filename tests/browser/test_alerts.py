"""The alert ticker in real browsers: a red alert reaches every screen, one click clears it.

The alerts come from the real path: a report through the feed, the risk watch's rules, `/live`.
Timeouts are generous on purpose; the delays themselves are measured in bench/alert_latency.py.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import requests

from tests.browser.reports import CST, report
from tests.browser.session import sign_in
from tests.browser.test_faces import assert_clean, contexts, grid_point  # noqa: F401 (fixture)

TOWNSHIP, GRID = "DEMO-T01", "DEMO-T01-G01"
ALERTS = "window.cmdcenterAlerts"
ARRIVE_MS = 20_000
SHOTS = Path(os.environ.get("CMDCENTER_SHOTS", Path(tempfile.gettempdir()) / "cmdcenter-alerts"))


def open_screen(page, server, name, role, unit, path, ready):
    """Sign in, open `path`, wait for the page's own live connection and the ticker's.

    Until the ticker has mounted (its first GET of the alerts) nothing is evaluated in the page:
    Playwright evaluates with a user gesture, which would let the audio start without the click
    the wall asks for.
    """
    sign_in(page, server, name, role, unit)
    with page.expect_response(lambda r: "/api/v1/alerts?status=open" in r.url, timeout=30_000):
        page.goto(server.url + path)
    page.wait_for_function(f"{ready} && {ready}.connected()", timeout=20_000)
    page.wait_for_function(f"{ALERTS} && {ALERTS}.connected()", timeout=20_000)


def alert_of(page, incident_id: str, rule: str = "severity") -> dict | None:
    return page.evaluate(
        f"([id, rule]) => {ALERTS}.all().find(a => a.rule === rule && a.incidents.includes(id))"
        " || null", [incident_id, rule])


def wait_alert(page, incident_id: str, rule: str = "severity", status: str = "open") -> dict:
    page.wait_for_function(
        f"([id, rule, status]) => {ALERTS}.all().some(a => a.rule === rule && "
        "a.incidents.includes(id) && a.status === status)", arg=[incident_id, rule, status],
        timeout=ARRIVE_MS)
    return alert_of(page, incident_id, rule)


def card(alert_id: str) -> str:
    return f'[data-alert-ticker] [data-alert-id="{alert_id}"]'


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))


def test_red_alert_reaches_every_screen_and_one_ack_clears_it(contexts, server, feed):  # noqa: F811
    wall, wall2, leader = contexts(), contexts(), contexts()
    open_screen(wall, server, "alert-duty", "duty", None, "/", "window.cmdcenterLive")
    open_screen(wall2, server, "alert-duty-2", "duty", None, "/", "window.cmdcenterLive")
    open_screen(leader, server, "alert-leader", "leader", None, "/command", "window.cmdcenterDesk")
    leader.wait_for_selector("#command-map .maplibregl-canvas", timeout=30_000)

    # the wall asks once for sound (browsers allow it only after a gesture); one click arms it
    wall.click("#alert-strip .at-btn-unlock", timeout=10_000)
    wall.wait_for_function(f"{ALERTS}.audio() === 'running'", timeout=10_000)
    wall.wait_for_selector("#alert-strip .at-btn-unlock", state="detached", timeout=5_000)
    assert wall2.query_selector("#alert-strip .at-btn-unlock") is not None  # not armed there

    lon, lat = grid_point(GRID)
    incident = feed.send(report("emergency", "化工厂爆炸起火，有人员被困", lon, lat, severity=1,
                                people=6))["incident"]

    # the red alert reaches every screen, first in its ticker
    alert = wait_alert(wall, incident["id"])
    assert alert["level"] == "red" and set(alert["units"]) >= {TOWNSHIP, GRID}
    for pg in (wall, wall2, leader):
        wait_alert(pg, incident["id"])
        item = pg.wait_for_selector(card(alert["id"]), timeout=ARRIVE_MS)
        assert "level-red" in item.get_attribute("class")
        text = item.text_content()
        assert "红色" in text and "重大事件" in text and "城关街道" in text
        assert pg.evaluate(f"{ALERTS}.open()")[0] == alert["id"]  # ordered by level
    assert wall.text_content("#alert-strip [data-level-count=red]").strip() == "红 1"
    wall.wait_for_function(f"{ALERTS}.tones() > 0", timeout=5_000)  # the armed wall sounded
    assert wall2.evaluate(f"{ALERTS}.tones()") == 0

    # clicking the alert on the desk selects its incident
    leader.click(f"{card(alert['id'])} .at-text")
    leader.wait_for_function(f"window.cmdcenterDesk.selected() === '{incident['id']}'",
                             timeout=10_000)
    leader.wait_for_selector("#command-facts >> text=化工厂爆炸起火", timeout=10_000)
    leader.wait_for_function(  # and centres the map on it
        "([lon, lat]) => { const c = document.querySelector('#command-map .js-plotly-plot')"
        ".layout.map.center; return Math.abs(c.lon - lon) < 1e-3 && Math.abs(c.lat - lat) < 1e-3 }",
        arg=[incident["lon"], incident["lat"]], timeout=10_000)
    shot(wall, "wall-red-alert.png")
    shot(leader, "command-red-alert.png")

    # a Ⅰ级 alert offers its incident's 情况报告 draft (专报), a Word download, on county screens
    with leader.expect_download(timeout=90_000) as got:
        leader.click(f"{card(alert['id'])} [data-alert-brief]")
    assert got.value.suggested_filename.endswith(".docx")
    assert got.value.failure() is None
    assert leader.evaluate("window.cmdcenterDesk.selected()") == incident["id"]  # still there

    # one click on one screen; it leaves the ticker on every screen, into 已确认
    wall.click(f"{card(alert['id'])} [data-alert-act=ack]")
    for pg in (wall, wall2, leader):
        pg.wait_for_selector(card(alert["id"]), state="detached", timeout=ARRIVE_MS)
        pg.wait_for_function(f"{ALERTS}.acknowledged().includes('{alert['id']}')",
                             timeout=ARRIVE_MS)
        assert pg.text_content("[data-alert-ticker] .at-acked-toggle").strip() == "已确认 1"
        assert pg.evaluate(f"{ALERTS}.open()") == []
    # the acknowledged one can still be looked at until the situation is resolved
    wall2.click("#alert-strip .at-acked-toggle")
    row = wall2.wait_for_selector(f'#alert-strip [data-acked-id="{alert["id"]}"]')
    assert "alert-duty" in row.text_content()
    shot(wall2, "wall-acknowledged.png")

    acked = server.get(f"/api/v1/alerts/{alert['id']}").json()
    assert acked["status"] == "acknowledged" and acked["acted_by"] == "alert-duty"
    assert [h["action"] for h in acked.get("history", [])][-1:] == ["ack"]
    assert_clean(wall, wall2, leader)


def test_dismiss_needs_a_note_and_reaches_the_township(contexts, server, feed):  # noqa: F811
    leader, township = contexts(), contexts(1600, 900)
    open_screen(leader, server, "dismiss-leader", "leader", None, "/command",
                "window.cmdcenterDesk")
    open_screen(township, server, "dismiss-town", "township", TOWNSHIP, "/township",
                "window.cmdcenterDesk")
    posts = []
    leader.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

    lon, lat = grid_point(GRID)
    incident = feed.send(report("public_safety", "商场外墙脱落", lon, lat, severity=2,
                                people=2))["incident"]
    alert = wait_alert(leader, incident["id"])
    assert alert["level"] == "orange"
    wait_alert(township, incident["id"])
    township.wait_for_selector(f"{card(alert['id'])} [data-alert-act=ack]", timeout=ARRIVE_MS)

    # 忽略 opens a small form; without a note nothing is sent
    leader.click(f"{card(alert['id'])} [data-alert-act=dismiss]")
    form = f"{card(alert['id'])} [data-alert-form=dismiss]"
    leader.wait_for_selector(form)
    leader.click(f"{form} [data-alert-act=submit]")
    leader.wait_for_selector(f"{form} .at-error >> text=请填写忽略原因")
    assert not [u for u in posts if "/api/v1/alerts/" in u]
    shot(leader, "command-dismiss-form.png")

    leader.fill(f"{form} textarea", "经核实为商场装修围挡，已有专人处置")
    leader.click(f"{form} [data-alert-act=submit]")
    for pg in (leader, township):
        pg.wait_for_selector(card(alert["id"]), state="detached", timeout=ARRIVE_MS)
        pg.wait_for_function(f"!{ALERTS}.all().some(a => a.id === '{alert['id']}')",
                             timeout=ARRIVE_MS)  # dismissed: not even in 已确认
    dismissed = server.get(f"/api/v1/alerts/{alert['id']}").json()
    assert dismissed["status"] == "dismissed"
    assert dismissed["note"] == "经核实为商场装修围挡，已有专人处置"
    assert_clean(leader, township)


def test_missed_alert_is_caught_up_and_merge_keeps_the_earliest(contexts, server,  # noqa: F811
                                                                 feed):
    duty = contexts()
    open_screen(duty, server, "merge-duty", "duty", None, "/", "window.cmdcenterLive")
    duty.evaluate("window.cmdcenterLive.socket().disconnect()")  # the wall goes offline
    lon, lat = grid_point(GRID)
    now = datetime.now(CST)
    first = None
    for k in range(3):  # three reports within metres and minutes of each other
        ack = feed.send(report("mass", f"村民聚集反映征地补偿（{k + 1}）", lon + k * 0.0002, lat,
                               severity=3, people=12, occurred=now - timedelta(minutes=6 - k)))
        first = first or ack["incident"]
    deadline = time.monotonic() + ARRIVE_MS / 1000
    while not [a for a in server.get("/api/v1/alerts").json() if a["rule"] == "mass_gathering"]:
        assert time.monotonic() < deadline, "no mass_gathering alert was raised"
        time.sleep(0.2)
    assert duty.evaluate(f"{ALERTS}.all()") == []  # it happened while the wall was offline
    duty.evaluate("window.cmdcenterLive.socket().connect()")
    alert = wait_alert(duty, first["id"], rule="mass_gathering")  # caught up on reconnect
    assert len(alert["incidents"]) == 3
    duty.click(f"{card(alert['id'])} [data-alert-act=merge]")
    choice = duty.wait_for_selector(f"{card(alert['id'])} .at-choice.is-on", timeout=10_000)
    assert choice.get_attribute("data-incident") == first["id"]  # the earliest by default
    assert "（最早）" in choice.text_content()
    shot(duty, "wall-merge-form.png")
    duty.click(f"{card(alert['id'])} [data-alert-act=submit]")
    duty.wait_for_selector(card(alert["id"]), state="detached", timeout=ARRIVE_MS)
    token = server.duty_token
    for incident_id in alert["incidents"]:
        r = requests.get(f"{server.url}/api/v1/incidents/{incident_id}",
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert (r.json()["status"] == "merged") == (incident_id != first["id"]), r.json()
    assert_clean(duty)
