"""The wall's analysis modes in a real browser: 实时 / 风险 / 回放 and 热点 switch without a reload,
survive live updates, the trend panel has data, a replay plays incidents in time order; offline and
without console errors."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import requests
import shapely

from layers.demo import demo_county
from tests.browser.reports import CST, report
from tests.browser.test_wall import LIVE, assert_clean, open_wall, wait_count

RISK = "window.cmdcenterRisk"
PLOT = "document.querySelector('#situation-map .js-plotly-plot')"
MARKER = "window.__riskMarker"
HOT = "DEMO-T05"  # the township the data makes risky


def trace(page, index: int) -> dict:
    """One trace of the situation map as plotly holds it (the parts the tests look at)."""
    return page.evaluate(f"""k => {{
        const t = {PLOT}.data[k];
        return {{z: t.z || null, colorscale: t.colorscale || null, text: t.text || null,
                 visible: t.visible === undefined ? true : t.visible,
                 locations: t.locations || null, ids: t.customdata || null}};
    }}""", index)


def points(code: str, n: int, rng: random.Random) -> list[tuple[float, float]]:
    """`n` random points inside the unit `code` of the demo county."""
    shapes = demo_county().set_index("code")
    poly = shapes.loc[code].geometry
    minx, miny, maxx, maxy = poly.bounds
    out = []
    while len(out) < n:
        lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if poly.contains(shapely.Point(lon, lat)):
            out.append((lon, lat))
    return out


def seed_history(feed, now: datetime) -> int:
    """A month of ordinary incidents everywhere, and a busy week in `HOT`; how many are live."""
    rng = random.Random(17)
    grids = demo_county()
    grids = grids[grids["level"] == "grid"]
    reports = []
    for code in rng.sample(list(grids["code"]), 40):  # the baseline: 8 to 35 days ago
        (lon, lat), = points(code, 1, rng)
        reports.append(report("dispute", "邻里纠纷", lon, lat,
                              occurred=now - timedelta(days=rng.uniform(8, 35))))
    hot_grid = f"{HOT}-G01"
    for k, (lon, lat) in enumerate(points(hot_grid, 14, rng)):  # the busy week
        kind = ("mass", "dispute", "petition")[k % 3]
        reports.append(report(kind, "集中反映问题", lon, lat, severity=2 if k % 4 == 0 else 3,
                              occurred=now - timedelta(hours=rng.uniform(2, 70))))
    for code in rng.sample(list(grids["code"]), 10):  # a few today, elsewhere
        (lon, lat), = points(code, 1, rng)
        reports.append(report("complaint", "噪音扰民", lon, lat,
                              occurred=now - timedelta(minutes=rng.uniform(1, 50))))
    feed.send(reports)
    return sum(1 for r in reports
               if now - datetime.fromisoformat(r["occurred_at"]) < timedelta(hours=24))


def wait_mode(page, mode: str) -> None:
    page.wait_for_function(f"{RISK}.mode() === '{mode}'", timeout=10_000)
    page.wait_for_selector(f"button[data-mode={mode}].is-on", timeout=10_000)


def test_modes_switch_without_reload_and_survive_live_updates(page, server, feed):
    now = datetime.now(CST)
    live = seed_history(feed, now)
    open_wall(page, server)
    wait_count(page, live)
    page.evaluate(f"{MARKER} = 42")
    plain, plain_grids = trace(page, 0), trace(page, 1)
    assert set(plain["z"]) == {0}

    # 风险: the township layer takes the scores, the riskiest township is the busy one
    page.click("button[data-mode=risk]")
    wait_mode(page, "risk")
    page.wait_for_function(f"Math.max(...{PLOT}.data[0].z) > 0", timeout=15_000)
    risky = trace(page, 0)
    scores = dict(zip(risky["locations"], risky["z"]))
    assert max(scores, key=scores.get) == HOT
    api = requests.get(server.url + "/api/v1/risk",
                       headers={"Authorization": f"Bearer {server.duty_token}"}).json()
    assert scores == {t["code"]: t["score"] for t in api["townships"]}
    assert risky["colorscale"] != plain["colorscale"]
    hot_text = risky["text"][risky["locations"].index(HOT)]
    assert "风险指数" in hot_text and "事件增幅" in hot_text and "群体性事件" in hot_text
    # the grid layer above answers the hover: a grid of the busy township names its score
    grids = trace(page, 1)
    grid_text = grids["text"][grids["locations"].index(f"{HOT}-G01")]
    assert grid_text.startswith(hot_text) and "所在网格" in grid_text
    assert page.is_visible(".risk-legend") and "风险指数 0–100" in page.text_content(".risk-legend")
    page.screenshot(path=str(server.data_dir / "wall-risk.png"))

    # a live report while in 风险: it arrives, and the mode stays
    before = page.evaluate(f"{LIVE}.count()")
    (lon, lat), = points("DEMO-T02-G01", 1, random.Random(1))
    ack = feed.send(report("emergency", "风险模式下的新事件", lon, lat, severity=3))
    wait_count(page, before + 1)
    page.wait_for_selector(f'#incident-feed [data-incident-id="{ack["incident"]["id"]}"]')
    page.wait_for_timeout(600)
    assert page.evaluate(f"{RISK}.mode()") == "risk"
    assert trace(page, 0)["z"] == risky["z"]
    assert page.get_attribute("button[data-mode=risk]", "class").endswith("is-on")

    # 热点: a hexagon layer with the counts of the last seven days, in any mode
    page.click("#risk-hotspot-toggle")
    page.wait_for_function(f"{RISK}.hotspots() !== null", timeout=15_000)
    hot = page.evaluate(f"{RISK}.hotspots()")
    index = page.evaluate(f"""() => {PLOT}.data.findIndex(t => t.name === '热点')""")
    page.wait_for_function(f"{PLOT}.data[{index}].visible === true", timeout=10_000)
    layer = trace(page, index)
    assert sum(layer["z"]) == hot["count"] == 14 + 10 + 1
    assert len(layer["locations"]) == hot["hexagons"] and "热点" in layer["text"][0]
    assert page.is_visible(".hotspot-legend")
    page.screenshot(path=str(server.data_dir / "wall-risk-hotspots.png"))

    # back to 实时: the township layer looks as before, the hexagons stay until switched off
    page.click("button[data-mode=live]")
    wait_mode(page, "live")
    page.wait_for_function(f"Math.max(...{PLOT}.data[0].z) === 0", timeout=10_000)
    assert trace(page, 0)["colorscale"] == plain["colorscale"]
    assert trace(page, 1)["text"] == plain_grids["text"]
    assert not page.is_visible(".risk-legend")
    assert trace(page, index)["visible"] is True
    page.click("#risk-hotspot-toggle")
    page.wait_for_function(f"{PLOT}.data[{index}].visible === false", timeout=10_000)

    assert page.evaluate(MARKER) == 42  # the page was never reloaded
    assert_clean(page)


def test_trend_panel_compares_this_period_with_the_last(page, server, feed):
    now = datetime.now(CST)
    rng = random.Random(3)
    reports = []
    for hours, kind in ((0.2, "dispute"), (1.5, "mass"), (5, "dispute"), (20, "petition"),
                        (25, "dispute"), (30, "dispute"), (24 * 10, "complaint")):
        (lon, lat), = points("DEMO-T03-G01", 1, rng)
        reports.append(report(kind, "趋势", lon, lat, occurred=now - timedelta(hours=hours)))
    feed.send(reports)
    open_wall(page, server)
    page.evaluate(f"{MARKER} = 7")
    headers = {"Authorization": f"Bearer {server.duty_token}"}
    day = requests.get(server.url + "/api/v1/trends?span=24h", headers=headers).json()

    chart = "document.querySelector('#risk-trend-chart .js-plotly-plot')"
    bars = page.evaluate(f"""() => {chart}.data.filter(t => t.type === 'bar')
        .reduce((s, t) => s + t.y.reduce((a, b) => a + b, 0), 0)""")
    assert bars == day["sum"]["current"] >= 4
    previous = page.evaluate(f"() => {chart}.data.find(t => t.type === 'scatter').y")
    assert previous == day["total"]["previous"] and sum(previous) >= 1
    assert page.evaluate(f"() => {chart}.data[0].x.length") == 24
    assert "近24小时" in page.text_content("#risk-trend-summary")

    page.click("button[data-span='30d']")
    page.wait_for_function(f"{chart}.data[0].x.length === 30", timeout=15_000)
    month = requests.get(server.url + "/api/v1/trends?span=30d", headers=headers).json()
    page.wait_for_function(f"""() => {chart}.data.filter(t => t.type === 'bar')
        .reduce((s, t) => s + t.y.reduce((a, b) => a + b, 0), 0) === {month['sum']['current']}""",
                           timeout=10_000)
    assert month["sum"]["current"] == 7
    assert "近30天 7 起" in page.text_content("#risk-trend-summary")
    assert page.get_attribute("button[data-span='30d']", "class").endswith("is-on")
    assert page.evaluate(MARKER) == 7
    assert_clean(page)


def test_replay_plays_a_past_hour_in_order_and_returns_to_live(page, server, feed):
    now = datetime.now(CST)
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    rng = random.Random(8)
    minutes = [41, 3, 57, 12, 29, 48, 7]
    kinds = ["dispute", "mass", "petition", "emergency", "dispute", "complaint", "other"]
    sent = []
    for m, kind, (lon, lat) in zip(minutes, kinds, points("DEMO-T02", 7, rng)):
        sent.append(report(kind, f"回放 {m:02d} 分", lon, lat, occurred=hour + timedelta(minutes=m)))
    (lon, lat), = points("DEMO-T04", 1, rng)
    sent.append(report("dispute", "前一小时的事件", lon, lat, occurred=hour - timedelta(minutes=5)))
    acks = feed.send(sent)
    expected = [a["incident"]["id"] for a, _ in sorted(zip(acks[:7], minutes), key=lambda p: p[1])]
    open_wall(page, server)
    wait_count(page, 8)
    page.evaluate(f"{MARKER} = 'replay'")

    page.click("button[data-mode=replay]")
    wait_mode(page, "replay")
    page.wait_for_selector(".replay-bar", state="visible")
    # the live incident traces are hidden, the replay traces shown
    layers = page.evaluate(f"""() => {PLOT}.data.filter(t => t.type === 'scattermap')
        .map(t => [t.legendgroup, t.visible === undefined ? true : t.visible])""")
    assert all(vis is (group.startswith("replay-")) for group, vis in layers), layers

    # pick the hour three hours ago with the slider's keyboard (it opened on the last whole hour)
    page.evaluate(f"{RISK}.replay.speed(4)")  # the whole hour in 4 seconds
    page.focus(".replay-slider [role=slider]")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"""() => {{ const s = {RISK}.replay.state();
        return s.loaded && s.from === {int(hour.timestamp() * 1000)}; }}""", timeout=15_000)
    lengths = []
    for _ in range(60):
        state = page.evaluate(f"{RISK}.replay.state()")
        lengths.append(state["next"])
        if state["ended"]:
            break
        page.wait_for_timeout(150)
    assert state["ended"] and state["total"] == 7
    assert lengths == sorted(lengths) and any(0 < n < 7 for n in lengths), lengths
    assert page.evaluate(f"{RISK}.replay.shown()") == expected
    drawn = f"""() => {PLOT}.data.filter(t => t.type === 'scattermap'
        && t.visible === true).flatMap(t => t.customdata || [])"""
    page.wait_for_function(f"({drawn})().length === 7", timeout=10_000)  # plotly draws a beat later
    assert sorted(page.evaluate(drawn)) == sorted(expected)
    clock = page.text_content("#risk-replay-clock")
    assert clock.startswith("回放时刻") and f"{(hour + timedelta(hours=1)).hour:02d}:00:00" in clock
    assert "回放结束" in page.text_content("#risk-replay-progress")
    page.screenshot(path=str(server.data_dir / "wall-replay.png"))

    # a live report during the replay: counted, but not drawn until 实时
    (lon, lat), = points("DEMO-T01-G01", 1, rng)
    ack = feed.send(report("public_safety", "回放时的新事件", lon, lat))
    wait_count(page, 9)
    assert page.evaluate(f"{RISK}.mode()") == "replay"
    page.wait_for_timeout(500)
    assert ack["incident"]["id"] not in page.evaluate(drawn)

    page.click("button[data-mode=live]")
    wait_mode(page, "live")
    page.wait_for_function(f"({drawn})().length === 9", timeout=10_000)
    on_map = page.evaluate(drawn)
    assert ack["incident"]["id"] in on_map and set(expected) <= set(on_map)
    assert not page.is_visible(".replay-bar")
    assert page.evaluate(MARKER) == "replay"
    assert_clean(page)
