"""The center's figures (command.matters.stats) and their downloads, on SQLite and PostgreSQL.

A fabricated two months of matters goes through every outcome with a fixed clock (the window,
routes to departments and townships, an extension, a late conclusion, closures on the spot and
refusals, follow-ups, matters at 23:30 and 00:30 local time around midnight). The figures are
checked against counts made here, row by row from the tables, for each `by` and the period
before; against numbers worked out by hand for the county; then over REST: JSON, CSV (with its
BOM) and Excel read back, the matter list, scopes and bad parameters.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, datetime

import pytest
import sqlalchemy as sa

from command.clock import SHANGHAI
from command.incidents.models import incidents
from command.matters import handling, service, stats
from command.matters.models import matters
from command.orders import service as orders
from command.users import service as users
from command.users.principal import Principal
from tests import test_loop
from tests.test_loop import LEADER
from tests.test_matters import DESK

core = test_loop.core
PETITION_DEPT = Principal("xf", "dept", "dept.petition")
NOV = stats.DayRange(date(2026, 11, 1), date(2026, 11, 30))


def at(core, local: str) -> None:
    """Set the fixed clock to a local (Asia/Shanghai) time."""
    core.clock._at = datetime.fromisoformat(local).replace(tzinfo=SHANGHAI)


def reg(core, *, type="dispute", category=None, channel="visit", grid="DEMO-T01-G01",
        title="事项", **extra) -> str:
    raw = {"type": type, "title": title, "grid": grid, "channel": channel, **extra}
    if category:
        raw["category"] = category
    with core.write() as s, s.begin():
        record, changes = service.register(s, raw, by=DESK, keyring=core.keyring,
                                           locator=core.units.current(s), now=core.clock.now(),
                                           rules=core.matter_rules)
    changes.publish(core.bus)
    return record["case_no"]


def step(core, name, case_no, raw, by=DESK) -> dict:
    with core.write() as s, s.begin():
        record, changes = getattr(handling, name)(s, case_no, raw, by=by,
                                                  locator=core.units.current(s),
                                                  now=core.clock.now(), rules=core.matter_rules)
    changes.publish(core.bus)
    return record


def lead_node(record) -> str:
    return next(n["id"] for o in record["orders"] for n in o["nodes"] if n["role"] == "lead")


def fabricate(core) -> dict[str, str]:
    """Two months of matters through every outcome, in the order things happened."""
    from command.units import service as units_service

    with core.write() as s, s.begin():
        units_service.ensure_departments(s, units_service.DEPARTMENTS)
    m: dict[str, str] = {}
    at(core, "2026-10-01T10:00")
    m["M"] = reg(core, category="marriage_family", title="婚姻家庭（逾期办结）")
    at(core, "2026-10-10T10:00")
    m["A"] = reg(core, category="labour", title="讨要工资")
    step(core, "route", m["A"], {"lead": "dept.hrss"})
    at(core, "2026-10-12T10:00")
    step(core, "outcome", m["A"], {"result": "agreed", "terms": "十日内付清"})
    at(core, "2026-10-20T10:00")
    step(core, "followup", m["A"], {"performed": True, "satisfaction": "satisfied"})
    m["N"] = reg(core, category="neighbour", title="邻里（延期）")
    at(core, "2026-10-25T10:00")
    step(core, "extend", m["N"], {"days": 20, "reason": "需现场勘验"}, by=LEADER)
    at(core, "2026-10-31T23:30")  # belongs to 31 October
    m["B"] = reg(core, category="neighbour", channel="phone", grid="DEMO-T02-G01",
                 title="深夜来电")
    at(core, "2026-11-01T00:10")
    step(core, "outcome", m["B"], {"result": "not_agreed", "guided_to": "litigation"})
    at(core, "2026-11-01T00:30")
    m["C"] = reg(core, category="contract", channel="letter", title="合同")
    at(core, "2026-11-02T10:00")
    step(core, "outcome", m["C"], {"result": "withdrawn"})
    m["D"] = reg(core, type="petition", title="信访一")
    at(core, "2026-11-03T10:00")
    step(core, "outcome", m["D"], {"result": "supported"})
    m["E"] = reg(core, type="petition", title="信访二", grid="DEMO-T02-G01")
    routed = step(core, "route", m["E"], {"lead": "dept.petition"})
    at(core, "2026-11-04T10:00")
    with core.write() as s, s.begin():
        orders.act(s, node_id=lead_node(routed), action="ack", by=PETITION_DEPT,
                   now=core.clock.now(), locator=core.units.current(s))
    step(core, "outcome", m["E"], {"result": "partly_supported"})
    m["F"] = reg(core, type="petition", title="信访三")
    step(core, "outcome", m["F"], {"result": "not_supported"})
    at(core, "2026-11-05T10:00")
    step(core, "followup", m["B"], {"performed": False, "satisfaction": "basic"})
    m["G"] = reg(core, type="legal", channel="online", title="法律咨询")
    step(core, "outcome", m["G"], {"result": "served"})
    step(core, "outcome", m["M"], {"result": "agreed", "terms": "和好"})  # 35 days: late
    at(core, "2026-11-06T10:00")
    m["H"] = reg(core, type="complaint", category="consumer", title="投诉属实")
    step(core, "outcome", m["H"], {"result": "substantiated"})
    m["I"] = reg(core, type="complaint", category="consumer", title="投诉不实",
                 grid="DEMO-T02-G01")
    step(core, "outcome", m["I"], {"result": "unsubstantiated"})
    at(core, "2026-11-07T10:00")
    m["J"] = reg(core, category="neighbour", title="即接即办", closure="on_the_spot",
                 note="当场调解")
    step(core, "followup", m["D"], {"performed": True, "satisfaction": "unsatisfied"})
    at(core, "2026-11-08T10:00")
    m["K"] = reg(core, category="other", title="不予受理", closure="not_accepted",
                 note="不属于受理范围，请向法院起诉")
    at(core, "2026-11-09T10:00")
    m["L"] = reg(core, category="housing", title="在办")
    step(core, "route", m["L"], {"lead": "DEMO-T01"})
    at(core, "2026-11-25T10:00")
    step(core, "outcome", m["N"], {"result": "agreed", "terms": "拆除围墙"})  # on time: extended
    at(core, "2026-11-30T23:30")
    m["O"] = reg(core, category="traffic", title="月末深夜")
    at(core, "2026-12-01T00:30")
    m["P"] = reg(core, category="traffic", title="次月凌晨")
    at(core, "2026-12-01T09:00")
    return m


@pytest.fixture
def made(core):
    return fabricate(core)


# --- counts made here, row by row ---------------------------------------------------------------

def by_hand(core, rng: stats.DayRange, by: str) -> dict:
    """{key: {period: counts}} from the stored rows, with the definitions applied in Python."""
    key_of = {"dept": lambda r: r.lead_code, "township": lambda r: r.township_code,
              "category": lambda r: r.category, "channel": lambda r: r.channel}[by]
    with core.read() as s:
        rows = s.execute(sa.select(matters, incidents.c.township_code, incidents.c.category,
                                   incidents.c.channel)
                         .join(incidents, incidents.c.id == matters.c.incident_id)).all()
    prev = rng.previous()

    def period(moment):
        day = moment.astimezone(SHANGHAI).date()
        if rng.start <= day <= rng.end:
            return 0
        if prev.start <= day <= prev.end:
            return 1
        return None

    out: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for r in rows:
        c = out[key_of(r)]
        p = period(r.registered_at)
        if p is not None:
            c[p]["not_accepted" if r.closure == "not_accepted" else "registered"] += 1
        if r.concluded_at is None or r.closure == "not_accepted":
            continue
        p = period(r.concluded_at)
        if p is None:
            continue
        c[p]["concluded"] += 1
        c[p]["withdrawn"] += r.result == "withdrawn"
        c[p]["resolved"] += r.result in ("agreed", "supported", "partly_supported", "served",
                                         "substantiated") or r.closure == "on_the_spot"
        c[p]["followed_up"] += r.satisfaction is not None
        c[p]["satisfied"] += r.satisfaction in ("satisfied", "basic")
        due = r.due_at or r.notify_due_at
        c[p]["on_time"] += due is None or r.concluded_at <= due
    return out


def expected_row(counts: dict) -> dict:
    c = {k: counts.get(k, 0) for k in stats.COUNTS}

    def ratio(a, b):
        return round(a / b, 4) if b else None
    return {**{k: c[k] for k in ("registered", "concluded", "resolved", "followed_up",
                                 "satisfied", "on_time", "not_accepted", "withdrawn")},
            "resolution_rate": ratio(c["resolved"], c["concluded"] - c["withdrawn"]),
            "satisfaction_rate": ratio(c["satisfied"], c["followed_up"]),
            "on_time_rate": ratio(c["on_time"], c["concluded"])}


def figures(core, rng, by, where=None) -> dict:
    with core.read() as s:
        return stats.figures(s, rng, by=by, where=where, locator=core.units.current(s))


def test_figures_agree_with_counts_made_from_the_rows(core, made):
    for by, rng in ((by, rng) for by in stats.BY for rng in (NOV, stats.DayRange(date(2026, 10, 31), date(2026, 11, 1)),
                stats.DayRange(date(2026, 11, 30), date(2026, 12, 1)))):
        fig = figures(core, rng, by)
        hand = by_hand(core, rng, by)
        got = {r["key"]: r for r in fig["rows"]}
        want_keys = {k for k, periods in hand.items() if any(periods[p] for p in periods)}
        assert set(got) == want_keys, (rng, by)
        for key, row in got.items():
            assert {f: row[f] for f in stats.FIELDS} == expected_row(hand[key][0]), (rng, by, key)
            assert row["previous"] == expected_row(hand[key][1]), (rng, by, key)
            assert row["name"] == stats.name_of(by, key, None if by not in ("dept", "township")
                                                else core.locator())


def test_the_county_in_november_worked_out_by_hand(core, made):
    fig = figures(core, NOV, "channel")
    total = fig["total"]
    # registered in November: C D E F G H I J L O (K refused, B on 31 Oct, P on 1 Dec)
    assert total["registered"] == 10 and total["not_accepted"] == 1
    # concluded: B C D E F G M H I J N; withdrawn C; resolved D E G M H J N
    assert (total["concluded"], total["withdrawn"], total["resolved"]) == (11, 1, 7)
    assert total["resolution_rate"] == 0.7
    # followed up: B (basic), D (unsatisfied); A's follow-up belongs to October's conclusion
    assert (total["followed_up"], total["satisfied"], total["satisfaction_rate"]) == (2, 1, 0.5)
    # on time: all but M (35 days of 30); N concluded after 36 days within its 30 + 20
    assert (total["on_time"], total["on_time_rate"]) == (10, round(10 / 11, 4))
    # the period before: 2 October to 31 October
    assert fig["previous"] == {"from": "2026-10-02", "to": "2026-10-31"}
    before = total["previous"]
    assert before["registered"] == 3  # A N B (M on 1 October is outside)
    assert (before["concluded"], before["resolved"], before["resolution_rate"]) == (1, 1, 1.0)
    assert (before["satisfaction_rate"], before["on_time_rate"]) == (1.0, 1.0)
    rows = {r["key"]: r for r in fig["rows"]}
    assert rows["phone"]["name"] == "来电" and rows["phone"]["registered"] == 0
    assert rows["phone"]["concluded"] == 1 and rows["phone"]["previous"]["registered"] == 1


def test_a_day_is_a_local_day(core, made):
    """23:30 in Shanghai is 15:30 UTC of the same day; 00:30 is the day before in UTC."""
    def registered(day):
        return figures(core, stats.DayRange(day, day), "township")["total"]["registered"]
    assert registered(date(2026, 10, 31)) == 1  # B at 23:30
    assert registered(date(2026, 11, 1)) == 1  # C at 00:30 (16:30 UTC on 31 October)
    assert registered(date(2026, 11, 30)) == 1  # O at 23:30
    assert registered(date(2026, 12, 1)) == 1  # P at 00:30
    first = figures(core, stats.DayRange(date(2026, 11, 1), date(2026, 11, 1)), "dept")["total"]
    assert first["concluded"] == 1 and first["previous"]["registered"] == 1  # B: 00:10, 31 Oct


def test_rows_by_dept_and_township_carry_codes_and_names(core, made):
    rows = {r["key"]: r for r in figures(core, NOV, "dept")["rows"]}
    assert rows["dept.petition"]["name"] == "信访" and rows["dept.petition"]["resolved"] == 1
    assert rows[None]["name"] == "受理窗口（未分流）"
    assert rows["DEMO-T01"]["registered"] == 1  # L, routed to its township, still open
    assert rows["DEMO-T01"]["concluded"] == 0 and rows["DEMO-T01"]["resolution_rate"] is None
    towns = figures(core, NOV, "township")["rows"]
    assert [r["key"] for r in towns] == ["DEMO-T01", "DEMO-T02"]
    assert all(r["name"] and r["name"] != r["key"] for r in towns)
    cats = [r["key"] for r in figures(core, NOV, "category")["rows"]]
    assert cats.index("neighbour") < cats.index("contract") and cats[-1] is None


def test_a_correction_moves_the_matter_in_the_figures(core, made):
    """The figures read the incident's township, category and channel through copies the
    database keeps (migration 0009): a correction at the window moves the matter at once."""
    def rows(by):
        return {r["key"]: r["registered"] for r in figures(core, NOV, by)["rows"]}
    assert "medical" not in rows("category") and rows("channel")["online"] == 1
    assert rows("township") == {"DEMO-T01": 8, "DEMO-T02": 2}
    with core.write() as s, s.begin():
        service.correct(s, made["O"], {"category": "medical", "channel": "online",
                                       "grid": "DEMO-T02-G01"}, by=DESK,
                        keyring=core.keyring, locator=core.units.current(s),
                        now=core.clock.now(), rules=core.matter_rules)
    assert rows("category")["medical"] == 1 and "traffic" not in rows("category")
    assert rows("channel")["online"] == 2
    assert rows("township") == {"DEMO-T01": 7, "DEMO-T02": 3}
    test_figures_agree_with_counts_made_from_the_rows(core, made)


def test_scopes(core, made):
    t01 = stats.scope(Principal("t01", "township", "DEMO-T01"))
    rows = figures(core, NOV, "township", t01)["rows"]
    assert [r["key"] for r in rows] == ["DEMO-T01"]
    hrss = stats.scope(Principal("hrss", "dept", "dept.hrss"))
    rows = figures(core, stats.DayRange(date(2026, 10, 1), date(2026, 10, 31)), "dept",
                   hrss)["rows"]
    assert [(r["key"], r["concluded"]) for r in rows] == [("dept.hrss", 1)]
    for role in ("duty", "leader", "admin", "desk"):
        assert stats.scope(Principal("x", role)) is None
    with pytest.raises(Exception) as refused:
        stats.scope(Principal("g", "grid", "DEMO-T01-G01"))
    assert refused.value.code == "forbidden"


def test_the_wall_tiles_are_the_same_figures(core, made):
    at(core, "2026-11-30T23:50")
    with core.read() as s:
        tiles = stats.today_and_month(s, now=core.clock.now())
    assert tiles["registered_today"] == 1 and tiles["resolution_rate_month"] == 0.7


def test_parsing_ranges():
    now = datetime(2026, 11, 30, 16, 30, tzinfo=SHANGHAI)
    assert stats.parse_range(None, None, now=now) == stats.DayRange(date(2026, 11, 30),
                                                                    date(2026, 11, 30))
    assert stats.parse_range("2026-11-01", None, now=now).end == date(2026, 11, 1)
    for start, end, field in (("2026-11-31", None, "from"), ("20261101", None, "from"),
                              ("2026-11-02", "2026-11-01", "to"), (None, "x", "to"),
                              ("1900-01-01", None, "from"), ("2000-01-01", "2020-01-01", "to")):
        with pytest.raises(Exception) as bad:
            stats.parse_range(start, end, now=now)
        assert bad.value.field == field


# --- over REST ------------------------------------------------------------------------------------

class Api:
    """A Flask app with auth, the error handlers and the stats blueprint around a Core."""

    def __init__(self, core) -> None:
        from flask import Flask

        from command.web import auth, respond
        from command.web.stats_api import stats_api

        server = Flask("stats-test")
        server.extensions["cmdcenter"] = core
        auth.init_app(server, secret_key="test", session_days=1)
        respond.install(server, max_bytes=1 << 20)
        server.register_blueprint(stats_api)
        self.client = server.test_client()
        self.tokens: dict[str, str] = {}
        with core.write() as s, s.begin():
            for name, role, unit in (("duty", "duty", None), ("desk", "desk", None),
                                     ("t01", "township", "DEMO-T01"),
                                     ("hrss", "dept", "dept.hrss"),
                                     ("g01", "grid", "DEMO-T01-G01")):
                users.create(s, name=name, role=role, unit_code=unit, password=None,
                             now=core.clock.now())
                self.tokens[name] = users.issue_token(s, name=name)

    def get(self, path: str, who: str | None = "duty"):
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.client.get(path, headers=headers)


@pytest.fixture
def api(core, made):
    return Api(core)


def test_json_over_rest(api, core):
    r = api.get("/api/v1/stats/matters?from=2026-11-01&to=2026-11-30&by=township")
    assert r.status_code == 200
    body = r.get_json()
    assert body["rows"] == figures(core, NOV, "township")["rows"]
    row = body["rows"][0]
    assert set(row) >= {"key", "name", "registered", "concluded", "resolved", "resolution_rate",
                        "followed_up", "satisfied", "satisfaction_rate", "on_time",
                        "on_time_rate", "not_accepted", "previous"}
    assert set(row["previous"]) >= {"registered", "resolution_rate", "on_time_rate"}
    # the desk sees the whole county too; a township its own; a department what it leads
    assert api.get("/api/v1/stats/matters?from=2026-11-01&to=2026-11-30",
                   "desk").get_json()["total"]["registered"] == 10
    own = api.get("/api/v1/stats/matters?from=2026-11-01&to=2026-11-30&by=category", "t01")
    assert own.status_code == 200
    assert own.get_json()["total"] == figures(
        core, NOV, "category", matters.c.fig_township == "DEMO-T01")["total"]
    assert [r["key"] for r in api.get("/api/v1/stats/matters?from=2026-10-01&to=2026-10-31",
                                      "hrss").get_json()["rows"]] == ["dept.hrss"]
    assert api.get("/api/v1/stats/matters", "g01").status_code == 403
    assert api.get("/api/v1/stats/matters", None).status_code == 401


@pytest.mark.parametrize("query, field", [
    ("from=2026-13-01", "from"), ("from=yesterday", "from"), ("to=2026-02-30", "to"),
    ("from=2026-11-02&to=2026-11-01", "to"), ("by=person", "by"), ("format=pdf", "format"),
    ("from=2026-11-01&to=2046-11-01", "to"), ("from=%EF%BC%92026-11-01", "from")])
def test_bad_parameters_answer_in_the_error_shape(api, query, field):
    r = api.get("/api/v1/stats/matters?" + query)
    assert r.status_code == 422, r.get_data(as_text=True)
    body = r.get_json()
    assert body["ok"] is False and body["error"]["field"] == field
    assert body["error"]["code"] in ("invalid_field", "out_of_range")


def test_csv_with_a_bom_reads_back(api, core):
    r = api.get("/api/v1/stats/matters?from=2026-11-01&to=2026-11-30&by=channel&format=csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    assert "filename*=UTF-8''" in r.headers["Content-Disposition"]
    raw = r.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    head, *lines = table
    assert head[:4] == ["受理渠道", "代码", "受理量", "办结量"] and "上期化解率" in head
    fig = figures(core, NOV, "channel")
    assert len(lines) == len(fig["rows"]) + 1 and lines[-1][0] == "合计"
    total = dict(zip(head, lines[-1]))
    assert total["受理量"] == "10" and total["化解率"] == "70.0%" and total["满意率"] == "50.0%"
    assert total["上期受理量"] == "3"
    phone = dict(zip(head, next(line for line in lines if line[1] == "phone")))
    assert phone["受理渠道"] == "来电" and phone["办结量"] == "1" and phone["化解率"] == "0.0%"


def test_xlsx_reads_back(api, core):
    from openpyxl import load_workbook

    r = api.get("/api/v1/stats/matters?from=2026-11-01&to=2026-11-30&by=dept&format=xlsx")
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(r.get_data())).active
    head, *lines = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert head[0] == "主办单位" and head[2] == "受理量"
    fig = figures(core, NOV, "dept")
    assert [line[0] for line in lines] == [r["name"] for r in fig["rows"]] + ["合计"]
    total = dict(zip(head, lines[-1]))
    assert total["受理量"] == 10 and total["办结量"] == 11 and total["按期办结率"] == "90.9%"


def test_the_matter_list_downloads_without_personal_data(api, core, made):
    r = api.get("/api/v1/matters/export?from=2026-11-01&to=2026-11-30&format=csv")
    assert r.status_code == 200
    raw = r.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    head, *lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert head[0] == "案号" and "身份证" not in "".join(head) and "电话" not in "".join(head)
    numbers = [line[0] for line in lines]
    for name in "CDEFGHIJKLO":
        assert made[name] in numbers
    assert made["B"] not in numbers and made["P"] not in numbers
    rows = {line[0]: dict(zip(head, line)) for line in lines}
    assert rows[made["K"]]["办理结果"] == "不予受理" and rows[made["K"]]["办结时间"] == ""
    assert rows[made["J"]]["办理结果"] == "即接即办" and rows[made["J"]]["是否按期办结"] == "是"
    assert rows[made["D"]]["回访满意度"] == "不满意"
    assert rows[made["O"]]["登记时间"] == "2026-11-30 23:30"
    x = api.get("/api/v1/matters/export?from=2026-10-01&to=2026-10-31&format=xlsx")
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(x.get_data())).active
    values = [row for row in sheet.iter_rows(values_only=True)]
    assert values[0][0] == "案号" and {v[0] for v in values[1:]} == {made[k] for k in "MANB"}
    late = next(v for v in values if v[0] == made["M"])
    assert late[head.index("是否按期办结")] == "否"
    # scoped like every list: a township gets its own township's matters
    own = api.get("/api/v1/matters/export?from=2026-11-01&to=2026-11-30", "t01")
    assert made["I"] not in own.get_data(as_text=True)  # I is in DEMO-T02
    assert made["H"] in own.get_data(as_text=True)
    assert api.get("/api/v1/matters/export?channel=fax").status_code == 422


def test_the_briefing_has_the_same_figures(core, made):
    """The 工作例会 brief of November carries the matters' figures from the same function."""
    from command.briefing import compose, data, render
    from command.briefing.periods import parse
    from tests.test_brief import charts_stub

    now = core.clock.now()
    with core.read() as s:
        brief = data.period_brief(s, parse("month", "2026-11", now=now), now=now)
    assert brief.matters["rows"] == figures(core, NOV, "dept")["rows"]
    assert brief.matters["total"] == figures(core, NOV, "channel")["total"]
    doc = compose.period_doc(brief, [charts_stub(k) for k in ("trend", "types", "townships",
                                                              "satisfaction")])
    text = render.to_markdown(doc)
    assert "矛盾纠纷调处化解情况" in text
    assert "受理矛盾纠纷等事项 10 件" in text and "另不予受理 1 件" in text
    assert "化解率 70.0%（上期 100.0%）" in text and "满意率 50.0%" in text
    assert "按期办结率 90.9%" in text and "| 信访 |" in text
    # a running month counts up to today, and compares as many days before
    at(core, "2026-11-10T12:00")
    with core.read() as s:
        running = data.period_brief(s, parse("month", "2026-11", now=core.clock.now()),
                                    now=core.clock.now())
    assert (running.matters["from"], running.matters["to"]) == ("2026-11-01", "2026-11-10")
    assert running.matters["previous"] == {"from": "2026-10-22", "to": "2026-10-31"}
