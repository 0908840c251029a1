"""事项统计 on `/command` in a real browser: the figures the API gives, by every dimension and
period, the downloads, and the figures changing on their own when a matter concludes."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import requests

from tests.browser.session import sign_in
from tests.browser.test_faces import assert_clean, contexts  # noqa: F401 (fixture)

STATS = "window.cmdcenterStats"
DESK = "window.cmdcenterDesk"
LIVE = "window.cmdcenterLive"


def total_cell(page, field: str) -> str:
    return page.locator(f'tfoot .cc-stats-total td[data-field="{field}"] .cc-stat-now') \
        .text_content()


def api(server, token: str, method: str, path: str, body: dict | None = None) -> dict:
    r = requests.request(method, server.url + path, json=body, timeout=30,
                         headers={"Authorization": f"Bearer {token}"})
    assert r.ok, r.text
    return r.json()


def register(server, token: str, title: str, **extra) -> str:
    return api(server, token, "POST", "/api/v1/matters", {
        "type": "dispute", "category": "neighbour", "title": title, "grid": "DEMO-T01-G01",
        **extra})["case_no"]


def test_the_statistics_view_shows_the_figures_and_follows_a_conclusion(contexts, server):
    clerk = server.add_user("clerk-stats", "desk")
    duty = server.add_user("duty-stats", "duty")
    first = register(server, clerk, "邻里漏水")
    register(server, clerk, "当场答复", closure="on_the_spot", note="当场解释政策")
    register(server, clerk, "不属受理范围", closure="not_accepted", note="请向法院起诉")

    wall = contexts()
    sign_in(wall, server, "wall-stats", "duty")
    wall.goto(server.url + "/")
    wall.wait_for_function(f"{LIVE} && {LIVE}.connected()", timeout=20_000)
    assert wall.text_content("#kpi-matters-today") == "2"  # the refusal is counted apart
    assert wall.text_content("#kpi-resolution-month") == "100.0%"  # on the spot: resolved

    leader = contexts()
    sign_in(leader, server, "leader-stats", "leader")
    leader.goto(server.url + "/command")
    leader.wait_for_function(f"{DESK} && {DESK}.connected()", timeout=20_000)
    leader.wait_for_selector("table.cc-stats tfoot", timeout=10_000)
    leader.locator("#command-stats").scroll_into_view_if_needed()
    month = api(server, duty, "GET", "/api/v1/stats/matters?" +
                leader.evaluate(f"{STATS}.query()"))
    assert month["total"]["registered"] == 2 and month["total"]["not_accepted"] == 1
    assert total_cell(leader, "registered") == "2"
    assert total_cell(leader, "not_accepted") == "1"
    assert total_cell(leader, "concluded") == "1"  # on the spot
    assert total_cell(leader, "resolution_rate") == "100.0%"
    assert leader.locator("thead th").first.text_content() == "主办单位"

    # by township, today: the table follows the controls; the download links follow too
    leader.select_option("#command-stats-by", "township")
    leader.select_option("#command-stats-period", "day")
    leader.wait_for_function(f"{STATS}.figures().by === 'township' && "
                             f"{STATS}.figures().from === {STATS}.figures().to", timeout=10_000)
    today = leader.evaluate(f"{STATS}.figures()")
    assert today["from"] == today["to"] and today["rows"][0]["key"] == "DEMO-T01"
    assert leader.locator("thead th").first.text_content() == "乡镇（街道）"
    row = leader.locator('tbody tr[data-key="DEMO-T01"]')
    assert row.locator("th").text_content() == today["rows"][0]["name"]
    href = leader.get_attribute("#command-stats-csv", "href")
    assert "by=township" in href and f"from={today['from']}" in href and href.endswith("csv")
    with leader.expect_download() as info:
        leader.click("#command-stats-csv")
    raw = open(info.value.path(), "rb").read()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0][0] == "乡镇（街道）" and table[-1][0] == "合计" and table[-1][2] == "2"
    with leader.expect_download() as info:
        leader.click("#command-matters-xlsx")
    assert info.value.suggested_filename.endswith(".xlsx")

    # a matter concludes elsewhere: the view reads the figures again by itself
    refreshes = leader.evaluate(f"{STATS}.refreshes()")
    api(server, clerk, "POST", f"/api/v1/matters/{first}/outcome",
        {"result": "not_agreed", "guided_to": "litigation"})
    leader.wait_for_function(f"{STATS}.figures().total.concluded === 2", timeout=10_000)
    # (a refresh asked for just before the outcome may already bring the new figure; the view
    # still asks again because of the change)
    leader.wait_for_function(f"{STATS}.refreshes() > {refreshes}", timeout=10_000)
    assert total_cell(leader, "concluded") == "2"
    assert total_cell(leader, "resolved") == "1"
    assert total_cell(leader, "resolution_rate") == "50.0%"
    # and the wall's tile, from the same figures
    wall.wait_for_function("document.getElementById('kpi-resolution-month').textContent "
                           "=== '50.0%'", timeout=10_000)
    register(server, clerk, "又一起")
    wall.wait_for_function("document.getElementById('kpi-matters-today').textContent === '3'",
                           timeout=10_000)
    leader.wait_for_timeout(300)
    shot = Path(__file__).resolve().parents[2] / "docs" / "command-stats.png"
    leader.locator("#command-stats").screenshot(path=str(shot))  # for the README
    assert_clean(leader, wall)
