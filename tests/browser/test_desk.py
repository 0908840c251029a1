"""The one window `/desk` in a real browser, driven by the keyboard alone: register a matter with
two parties, the receipt, and the matter on the wall's map and list within a second."""

from __future__ import annotations

import time

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.session import sign_in
from tests.browser.test_faces import assert_clean, contexts  # noqa: F401 (fixture)
from tests.browser.test_wall import LIVE, MAP_IDS

WINDOW = "window.cmdcenterWindow"
ID_NUMBER = "11010519491231002X"
PHONE = "13812341234"
CREDIT = "91350100M000100Y43"


def focused(page) -> str | None:
    return page.evaluate("document.activeElement && document.activeElement.getAttribute("
                         "'data-field')")


def tab_to(page, field: str, limit: int = 60) -> None:
    """Press Tab until the field is focused (the form's Tab order reaches every field)."""
    for _ in range(limit):
        if focused(page) == field:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {field} (at {focused(page)})")


def choose(page, field: str, presses: int) -> None:
    tab_to(page, field)
    for _ in range(presses):
        page.keyboard.press("ArrowDown")


def type_into(page, field: str, text: str) -> None:
    tab_to(page, field)
    page.keyboard.type(text)


def test_register_with_two_parties_by_keyboard_then_receipt_and_the_wall(contexts, server):
    wall, desk = contexts(), contexts()
    sign_in(wall, server, "wall-duty", "duty")
    wall.goto(server.url + "/")
    wall.wait_for_selector("#situation-map .maplibregl-canvas", timeout=30_000)
    wall.wait_for_function(f"{LIVE} && {LIVE}.connected()", timeout=15_000)

    sign_in(desk, server, "clerk-wu", "desk")
    assert desk.url.endswith("/desk")  # a clerk lands on the window
    desk.wait_for_function(f"{WINDOW} && {WINDOW}.connected()", timeout=20_000)
    assert focused(desk) == "type"

    choose(desk, "category", 3)  # (none) → 婚姻家庭 → 邻里纠纷 → 劳资纠纷
    type_into(desk, "title", "讨要三个月工资")
    choose(desk, "township", 1)
    choose(desk, "grid", 1)
    type_into(desk, "summary", "申请人在工地务工三个月，工资未结清")
    type_into(desk, "request", "支付拖欠工资")
    type_into(desk, "people", "3")
    type_into(desk, "amount", "12000")
    type_into(desk, "parties[0].name", "张三")
    type_into(desk, "parties[0].id_number", ID_NUMBER[:-1] + "1")  # a wrong check character
    hint = desk.locator('[data-hint-for="parties[0].id_number"]')
    assert "校验位错误" in hint.text_content()
    desk.keyboard.press("Backspace")
    desk.keyboard.type("x")  # lower case is fine: it is normalised
    assert "校验通过 · 女 · 1949-12-31 生" in hint.text_content()
    type_into(desk, "parties[0].phone", PHONE)
    choose(desk, "parties[1].kind", 1)  # 自然人 → 单位
    type_into(desk, "parties[1].name", "某建筑工程有限公司")
    type_into(desk, "parties[1].credit_code", CREDIT)
    # a third party added and removed again with the keyboard
    desk.keyboard.press("Alt+p")
    assert focused(desk) == "parties[2].role"
    desk.keyboard.press("Alt+d")
    assert desk.locator(".dk-party").count() == 2

    started = time.monotonic()
    desk.keyboard.press("Control+Enter")
    desk.wait_for_function(f"{WINDOW}.lastSaved() !== null", timeout=15_000)
    saved = desk.evaluate(f"{WINDOW}.lastSaved()")
    case_no = saved["case_no"]
    assert case_no.startswith("DEMO-20") and saved["category"] == "labour"
    assert [p["name"] for p in saved["parties"]] == ["张三", "某建筑工程有限公司"]
    assert saved["parties"][0]["id_number"] == "110105********002X"
    assert case_no in desk.text_content(".cc-toast")

    # the receipt printed from the hidden frame: case number, masked numbers only
    frame = desk.frame_locator(".dk-print")
    frame.locator("text=受理回执").wait_for(state="attached", timeout=10_000)
    receipt = frame.locator("body").text_content()
    assert case_no in receipt and "劳资纠纷" in receipt and "张三" in receipt
    assert "110105********002X" in receipt and "138****1234" in receipt
    assert ID_NUMBER not in receipt and PHONE not in receipt

    # the wall shows it on its map and list within a second of saving
    item = wall.wait_for_selector(f'#incident-feed [data-incident-id="{saved["id"]}"]',
                                  timeout=5_000)
    wall.wait_for_function(f"({MAP_IDS})().includes({saved['id']!r})", timeout=5_000)
    assert time.monotonic() - started < 5  # measured loosely here; bench/ times it properly
    assert "讨要三个月工资" in item.text_content()
    wall_text = wall.text_content("body")
    assert ID_NUMBER not in wall_text and PHONE not in wall_text

    # the queue has it; the form is empty again for the next resident
    desk.wait_for_selector(f'.dk-queue-item[data-case="{case_no}"]', timeout=5_000)
    assert desk.input_value('[data-field="title"]') == ""
    assert_clean(wall, desk)


def test_earlier_matters_appear_beside_the_form(contexts, server):
    desk = contexts()
    sign_in(desk, server, "clerk-li", "desk")
    desk.wait_for_function(f"{WINDOW} && {WINDOW}.connected()", timeout=20_000)
    token = server.add_user("clerk-api", "desk")
    import requests

    r = requests.post(server.url + "/api/v1/matters", timeout=30,
                      headers={"Authorization": f"Bearer {token}"},
                      json={"type": "petition", "title": "反映拆迁补偿", "grid": "DEMO-T02-G01",
                            "parties": [{"role": "applicant", "kind": "person", "name": "张三",
                                         "id_number": ID_NUMBER, "phone": "13900001111"}]})
    assert r.ok, r.text
    earlier = r.json()["case_no"]
    type_into(desk, "parties[0].id_number", ID_NUMBER)
    desk.wait_for_selector(f'.dk-earlier-group >> text={earlier}', timeout=10_000)
    assert "同一当事人" in desk.text_content(".dk-earlier")
    type_into(desk, "parties[1].phone", "13900001111")
    desk.wait_for_selector(".dk-earlier-group.is-possible", timeout=10_000)
    assert "可能为同一人" in desk.text_content(".dk-earlier")
    assert_clean(desk)


def test_route_sign_off_session_agreement_and_follow_up_across_faces(contexts, server):
    """register at /desk → route → the department signs off on /township, records a session
    and an agreement → the window follows it up (all through the pages) → the figures change
    on /command."""
    desk, dept, leader = contexts(), contexts(), contexts()
    sign_in(leader, server, "leader-figures", "leader")
    leader.goto(server.url + "/command")
    leader.wait_for_selector("table.cc-stats tfoot", timeout=20_000)
    before = leader.evaluate("window.cmdcenterStats.figures().total")
    token = server.add_user("clerk-api2", "desk")
    import requests

    r = requests.post(server.url + "/api/v1/matters", timeout=30,
                      headers={"Authorization": f"Bearer {token}"},
                      json={"type": "dispute", "category": "labour", "title": "讨要加班费",
                            "grid": "DEMO-T01-G02",
                            "parties": [{"role": "applicant", "kind": "person", "name": "王五"},
                                        {"role": "respondent", "kind": "org",
                                         "name": "某物流公司"}]})
    assert r.ok, r.text
    case_no = r.json()["case_no"]
    sign_in(desk, server, "clerk-zhou", "desk")
    desk.wait_for_function(f"{WINDOW} && {WINDOW}.connected()", timeout=20_000)
    desk.click(f'.dk-queue-item[data-case="{case_no}"]')
    desk.locator('[data-detail-step="route"]').click(timeout=10_000)
    assert desk.input_value('.mx-form select[name="lead"]') == "dept.hrss"  # the routing table
    desk.click('.mx-form button[type="submit"]')
    desk.wait_for_function(f"{WINDOW}.detail() && {WINDOW}.detail().status === 'dispatched'",
                           timeout=10_000)
    desk.wait_for_selector(f'.dk-queue-item[data-case="{case_no}"]', state="detached",
                           timeout=10_000)

    sign_in(dept, server, "hrss-li", "dept", "dept.hrss")
    card = dept.locator(f'.mx-card[data-case="{case_no}"]')
    card.wait_for(timeout=20_000)
    assert "主办" in card.text_content()
    card.locator('[data-step="ack"]').click()
    dept.wait_for_selector(f'.mx-card[data-case="{case_no}"] [data-step="outcome"]',
                           timeout=10_000)
    dept.click(f'.mx-card[data-case="{case_no}"] [data-step="session"]')
    dept.fill('.mx-form input[name="mediators"]', "李调解员")
    dept.fill('.mx-form input[name="attendees"]', "王五，某物流公司代表")
    dept.fill('.mx-form textarea[name="notes"]', "双方陈述，初步达成意向")
    dept.click('.mx-form button[type="submit"]')
    dept.wait_for_selector(".mx-form", state="detached", timeout=10_000)
    dept.click(f'.mx-card[data-case="{case_no}"] [data-step="outcome"]')
    dept.select_option('.mx-form select[name="result"]', "agreed")
    dept.fill('.mx-form textarea[name="terms"]', "某物流公司支付王五加班费3000元")
    dept.fill('.mx-form input[name="amount"]', "3000")
    dept.fill('.mx-form input[name="perform_by"]', "2026-12-31")
    dept.click('.mx-form button[type="submit"]')
    link = dept.locator(f'.mx-card[data-case="{case_no}"] a[href$="/agreement"]')
    try:
        link.wait_for(timeout=10_000)
    except PlaywrightTimeout:
        raise AssertionError("no agreement link after the outcome; the form says "
                             f"{dept.locator('.mx-error').all_text_contents()!r}, the toast "
                             f"{dept.locator('.cc-toast').all_text_contents()!r}") from None
    with dept.expect_download() as info:
        link.click()
    assert info.value.suggested_filename.endswith(".docx")

    desk.fill(".dk-find-input", case_no)  # the window finds it by its number
    desk.press(".dk-find-input", "Enter")
    desk.click(f'.dk-found[data-case="{case_no}"]')
    desk.locator('[data-detail-step="followup"]').click(timeout=10_000)
    desk.select_option('.mx-form select[name="satisfaction"]', "satisfied")
    desk.click('.mx-form button[type="submit"]')
    desk.wait_for_function(f"{WINDOW}.detail() && {WINDOW}.detail().status === 'followed_up'",
                           timeout=10_000)
    assert desk.evaluate(f"{WINDOW}.detail().rating") == 5

    # the leader's 事项统计 followed along, without a reload
    leader.wait_for_function(
        "(t => t.concluded === %d && t.resolved === %d && t.followed_up === %d)"
        "(window.cmdcenterStats.figures().total)"
        % (before["concluded"] + 1, before["resolved"] + 1, before["followed_up"] + 1),
        timeout=15_000)
    after = leader.evaluate("window.cmdcenterStats.figures().total")
    assert after["registered"] == before["registered"] + 1
    assert after["satisfied"] == before["satisfied"] + 1
    assert leader.locator('tfoot td[data-field="concluded"] .cc-stat-now').text_content() == \
        str(before["concluded"] + 1)
    assert_clean(desk, dept, leader)
