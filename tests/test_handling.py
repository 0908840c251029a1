"""Handling matters (command.matters.handling, clock, related) on SQLite and PostgreSQL with a
fixed clock: routing and return, joint handling, outcomes and the agreement, judicial
confirmation, follow-up and reopening, the legal clock and its 督办, extensions, related matters
and repeat parties, and what a department sees."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from command.alerts import service as alerts
from command.alerts.watch import RiskWatch
from command.clock import FixedClock
from command.errors import DomainError, Forbidden
from command.incidents import service as incidents_service
from command.incidents.workflow import TransitionError
from command.matters import clock, handling, service
from command.matters.identity import fictitious_id_number
from command.orders import service as orders
from command.orders.models import order_nodes
from command.users.principal import Principal
from tests import test_loop
from tests.test_loop import DUTY, G01, LEADER, NOW, POLICE, T01, T02
from tests.test_matters import DESK, ID_A, body, read, register

core = test_loop.core
HRSS = Principal("hrss", "dept", "dept.hrss")
COURT = Principal("court", "dept", "dept.court")


@pytest.fixture(autouse=True)
def _departments(core):
    from command.units import service as units_service

    with core.write() as s, s.begin():
        units_service.ensure_departments(s, units_service.DEPARTMENTS)


def step(core, name, case_no, raw, by=DESK):
    with core.write() as s, s.begin():
        record, changes = getattr(handling, name)(s, case_no, raw, by=by,
                                                  locator=core.units.current(s),
                                                  now=core.clock.now(), rules=core.matter_rules)
    changes.publish(core.bus)
    return record


def node_act(core, node_id, action, by, **kw):
    with core.write() as s, s.begin():
        return orders.act(s, node_id=node_id, action=action, by=by, now=core.clock.now(),
                          locator=core.units.current(s), **kw)


def nodes_of(record):
    return {n["target"]["code"]: n for o in record["orders"] for n in o["nodes"]}


def routed(core, *, lead="dept.hrss", assist=("DEMO-T01",), raw=None, **route):
    record, _ = register(core, raw)
    return step(core, "route", record["case_no"], {"lead": lead, "assist": list(assist),
                                                   **route})


def run_clock(core):
    with core.write() as s, s.begin():
        changes = clock.check(s, now=core.clock.now(), rules=core.matter_rules,
                              locator=core.units.current(s))
    return changes


def live_alert(core, key):
    with core.read() as s:
        return alerts.get_by_key(s, key)


def test_route_is_an_order_with_lead_and_assist_nodes(core):
    record = routed(core)
    assert record["status"] == "dispatched" and record["tier"] == "complex"  # the table's tier
    (order,) = record["orders"]
    assert order["kind"] == "route" and order["tier"] == "complex"
    nodes = nodes_of(record)
    assert nodes["dept.hrss"]["role"] == "lead" and nodes["DEMO-T01"]["role"] == "assist"
    assert record["lead"] == {"code": "dept.hrss", "name": "人社"}
    assert record["suggested_route"] == {"lead": "dept.hrss", "tier": "complex"}
    assert record["clock"]["state"] == "running" and record["clock"]["limit_days"] == 15
    # the lead signs off: the matter is being handled
    node_act(core, nodes["dept.hrss"]["id"], "ack", HRSS)
    signed = read(core, record["case_no"])
    assert signed["status"] == "in_progress" and signed["signed_at"]
    # a department sees what was routed to it, and nothing else
    with core.read() as s:
        seen = incidents_service.since(s, 0, limit=100, locator=core.units.current(s),
                                       principal=HRSS)["items"]
        court = incidents_service.since(s, 0, limit=100, locator=core.units.current(s),
                                        principal=COURT)["items"]
    assert [i["case_no"] for i in seen] == [record["case_no"]] and court == []
    assert read(core, record["case_no"], by=HRSS)["case_no"] == record["case_no"]
    with pytest.raises(Forbidden):
        read(core, record["case_no"], by=COURT)


def test_the_leads_return_puts_it_back_in_the_queue_and_routing_again(core):
    record = routed(core)
    nodes = nodes_of(record)
    node_act(core, nodes["dept.hrss"]["id"], "return", HRSS, reason="不属于劳动争议")
    back = read(core, record["case_no"])
    assert back["status"] == "accepted" and back["lead"] is None
    states = {code: n["state"] for code, n in nodes_of(back).items()}
    assert states == {"dept.hrss": "returned", "DEMO-T01": "cancelled"}
    assert any(line["kind"] == "return" and "不属于劳动争议" in line["note"]
               for line in back["timeline"])
    with core.read() as s:
        assert any(a["action"] == "return" for a in service.audit_trail(s, record["case_no"])["items"])
        queue = service.queue(s, by=DESK, locator=core.units.current(s))
    assert record["case_no"] in {i["case_no"] for i in queue}
    again = step(core, "route", record["case_no"], {"lead": "dept.justice", "tier": "simple"})
    assert again["status"] == "dispatched" and again["lead"]["code"] == "dept.justice"
    old = [n for o in again["orders"] for n in o["nodes"] if n["target"]["code"] == "dept.hrss"]
    assert old[0]["state"] == "cancelled"


def test_routing_rules(core):
    record, _ = register(core)
    with pytest.raises(DomainError) as info:
        step(core, "route", record["case_no"], {"lead": "dept.hrss", "tier": "difficult"})
    assert info.value.field == "owner"
    with pytest.raises(DomainError):
        step(core, "route", record["case_no"], {"lead": "dept.hrss", "tier": "difficult",
                                                "owner": "nobody"})
    with pytest.raises(DomainError) as info:  # a township routes to its own grids only
        step(core, "route", record["case_no"], {"lead": "dept.hrss"}, by=T01)
    assert info.value.field == "targets"
    with pytest.raises(Forbidden):
        step(core, "route", record["case_no"], {"lead": "DEMO-T02-G01"}, by=T02)
    done = step(core, "route", record["case_no"], {"lead": "DEMO-T01-G01"}, by=T01)
    assert done["lead"]["code"] == "DEMO-T01-G01"
    with pytest.raises(TransitionError):  # already routed: a second route waits for a return
        step(core, "route", record["case_no"], {"lead": "dept.hrss"})
    lead = nodes_of(done)["DEMO-T01-G01"]
    with pytest.raises(TransitionError):  # the lead concludes with an outcome, not "complete"
        node_act(core, lead["id"], "complete", G01, result="已调解")


def test_sessions_outcome_agreement_and_joint_handling(core):
    record = routed(core, assist=("DEMO-T01", "dept.justice"))
    case_no = record["case_no"]
    with pytest.raises(Forbidden):
        step(core, "add_session", case_no, {"mediators": ["王调解员"]}, by=POLICE)
    step(core, "add_session", case_no, {"mediators": ["王调解员"], "attendees": ["张三", "公司代表"],
                                        "place": "县矛调中心调解室", "notes": "双方陈述"}, by=HRSS)
    step(core, "add_session", case_no, {"mediators": ["李司法"], "notes": "法律释明"},
         by=Principal("justice", "dept", "dept.justice"))  # an assisting unit adds its work
    with pytest.raises(Forbidden):  # only the lead (or the window) records the outcome
        step(core, "outcome", case_no, {"result": "agreed", "terms": "x"}, by=T01)
    with pytest.raises(DomainError) as info:
        step(core, "outcome", case_no, {"result": "supported"}, by=HRSS)  # not for a dispute
    assert info.value.field == "result"
    with pytest.raises(DomainError) as info:
        step(core, "outcome", case_no, {"result": "agreed"}, by=HRSS)
    assert info.value.field == "terms"
    done = step(core, "outcome", case_no, {
        "result": "agreed", "terms": "被申请人支付申请人工资12000元", "amount": 12000,
        "perform_by": "2026-12-10"}, by=HRSS)
    assert done["status"] == "responded" and done["concluded_at"]
    assert done["outcome"]["result_label"] == "调解成功" and done["outcome"]["resolved"]
    states = {code: n["state"] for code, n in nodes_of(done).items()}
    assert states == {"dept.hrss": "completed", "DEMO-T01": "cancelled",
                      "dept.justice": "cancelled"}
    cancelled = nodes_of(done)["DEMO-T01"]["history"][-1]["note"]
    assert cancelled == "主办已办结，自动撤销"
    assert [s["mediators"] for s in done["sessions"]] == [["王调解员"], ["李司法"]]
    assert done["followup"]["due_at"] == "2026-12-03T10:00:00+08:00"  # 7 days later
    assert done["confirmation"]["apply_by"] == "2026-12-26T10:00:00+08:00"  # 30 days
    from docx import Document

    with core.read() as s:
        content = handling_agreement(core, s, done)
    text = "\n".join(p.text for p in Document(io.BytesIO(content)).paragraphs)
    assert "人民调解协议书" in text and case_no in text
    assert "申请人：张三，女，1949年12月31日出生，住 东关社区" in text
    assert "被申请人：某建筑公司，统一社会信用代码 91350100M000100Y43" in text
    assert "被申请人支付申请人工资12000元" in text and "2026年12月10日前履行完毕" in text
    assert "12,000.00 元" in text and "三十日内" in text and "王调解员" in text
    assert ID_A not in text and "13812341234" not in text


def handling_agreement(core, s, record):
    from command.matters import agreement

    return agreement.document(s, record, keyring=core.keyring)


def test_outcomes_by_type(core):
    petition = routed(core, lead="dept.petition", assist=(), raw=body(type="petition",
                                                                      category=None))
    with pytest.raises(DomainError):
        step(core, "outcome", petition["case_no"], {"result": "agreed", "terms": "x"})
    assert step(core, "outcome", petition["case_no"],
                {"result": "partly_supported"})["outcome"]["resolved"]
    dispute = routed(core)
    with pytest.raises(DomainError) as info:
        step(core, "outcome", dispute["case_no"], {"result": "not_agreed"})
    assert info.value.field == "guided_to"
    failed = step(core, "outcome", dispute["case_no"],
                  {"result": "not_agreed", "guided_to": "arbitration"})
    assert failed["outcome"]["guided_to_label"] == "仲裁" and not failed["outcome"]["resolved"]
    with pytest.raises(TransitionError):  # no agreement, no judicial confirmation
        step(core, "confirm", dispute["case_no"], {"state": "requested", "court": "某县人民法院"})
    window = register(core, body(type="legal", category=None))[0]  # answered at the window
    served = step(core, "outcome", window["case_no"], {"result": "served"})
    assert served["status"] == "responded"


def test_followup_verifies_rates_and_an_unsatisfied_one_reopens(core):
    record = routed(core)
    with pytest.raises(TransitionError):  # nothing to follow up yet
        step(core, "followup", record["case_no"], {"performed": True, "satisfaction": "basic"})
    step(core, "outcome", record["case_no"], {"result": "agreed", "terms": "付清工资"}, by=HRSS)
    happy = step(core, "followup", record["case_no"], {"performed": True,
                                                       "satisfaction": "basic"})
    assert happy["status"] == "followed_up" and happy["rating"] == 4
    assert [line["to"] for line in happy["timeline"] if line["kind"] == "state"][-2:] == [
        "verified", "followed_up"]
    other = routed(core)
    step(core, "outcome", other["case_no"], {"result": "agreed", "terms": "付清工资"}, by=HRSS)
    sad = step(core, "followup", other["case_no"], {"performed": False,
                                                    "satisfaction": "unsatisfied",
                                                    "note": "对方未付款"})
    assert sad["status"] == "in_progress" and sad["rating"] == 1 and sad["reopened"] == 1
    assert sad["followup"]["satisfaction_label"] == "不满意"
    again = step(core, "outcome", other["case_no"], {"result": "agreed", "terms": "分期付清"})
    assert again["status"] == "responded"


def test_legal_clock_raises_督办_to_the_unit_above_and_resolves(core):
    record = routed(core, lead="DEMO-T01-G01", assist=())  # a grid leads: its township hears
    key = handling.overdue_key(record["case_no"])
    run_clock(core)
    assert live_alert(core, key) is None
    core.clock = FixedClock(NOW + timedelta(days=12, hours=1))  # ≤ 20 % of 15 days left
    run_clock(core)
    alert = live_alert(core, key)
    assert alert["level"] == "yellow" and alert["units"] == ["DEMO-T01"]
    assert "剩余" in alert["message"] and record["case_no"] in alert["message"]
    core.clock = FixedClock(NOW + timedelta(days=15, hours=2))
    run_clock(core)
    alert = live_alert(core, key)
    assert alert["level"] == "orange" and "已逾期" in alert["message"]
    assert read(core, record["case_no"])["clock"]["state"] == "overdue"
    with pytest.raises(Forbidden):
        step(core, "extend", record["case_no"], {"days": 10, "reason": "x"}, by=DUTY)
    extended = step(core, "extend", record["case_no"], {"days": 10, "reason": "鉴定未出"},
                    by=LEADER)
    assert extended["clock"]["extended_days"] == 10 and extended["clock"]["state"] == "running"
    run_clock(core)
    assert live_alert(core, key)["status"] == "resolved"
    lead = nodes_of(record)["DEMO-T01-G01"]
    step(core, "outcome", record["case_no"], {"result": "withdrawn"},
         by=Principal("g", "grid", "DEMO-T01-G01"))
    assert read(core, record["case_no"])["clock"]["state"] == "concluded"
    assert lead["role"] == "lead"


def test_a_department_lead_reports_to_the_county_and_petitions_wait_for_sign_off(core):
    petition = routed(core, lead="dept.petition", assist=(),
                      raw=body(type="petition", category=None))
    assert petition["clock"]["state"] == "waiting" or petition["clock"]["notify_due_at"]
    core.clock = FixedClock(NOW + timedelta(days=13))  # 受理告知: 15 days from registration
    run_clock(core)
    alert = live_alert(core, handling.overdue_key(petition["case_no"]))
    assert alert["units"] == ["DEMO"] and "受理告知" in alert["message"]
    node = nodes_of(petition)["dept.petition"]
    node_act(core, node["id"], "ack", Principal("xf", "dept", "dept.petition"))
    signed = read(core, petition["case_no"])
    assert signed["clock"]["due_at"] == "2027-02-07T10:00:00+08:00"  # 60 days from sign-off
    run_clock(core)
    assert live_alert(core, handling.overdue_key(petition["case_no"]))["status"] == "resolved"
    step(core, "extend", petition["case_no"], {"days": 30, "reason": "情况复杂"}, by=LEADER)
    with pytest.raises(TransitionError):
        step(core, "extend", petition["case_no"], {"days": 5, "reason": "再延"}, by=LEADER)


def test_confirmation_window_is_watched(core):
    record = routed(core)
    step(core, "outcome", record["case_no"], {"result": "agreed", "terms": "付清"}, by=HRSS)
    key = handling.confirmation_key(record["case_no"])
    core.clock = FixedClock(NOW + timedelta(days=25))
    run_clock(core)
    assert live_alert(core, key)["rule"] == "confirmation_window"
    confirmed = step(core, "confirm", record["case_no"], {"state": "requested",
                                                          "court": "演示县人民法院"})
    assert confirmed["confirmation"]["state_label"] == "已申请司法确认"
    assert live_alert(core, key)["status"] == "resolved"


def test_route_nodes_are_supervised_for_sign_off_only(core):
    from command.orders import supervision

    record = routed(core, assist=())
    node = nodes_of(record)["dept.hrss"]
    core.clock = FixedClock(NOW + timedelta(days=2))
    with core.write() as s, s.begin():
        supervision.check(s, now=core.clock.now(), limits=core.limits,
                          locator=core.units.current(s))
    assert live_alert(core, orders.ack_key(node["id"]))["rule"] in ("overdue", "escalated")
    node_act(core, node["id"], "ack", HRSS)
    core.clock = FixedClock(NOW + timedelta(days=40))  # far past the node's due_by
    with core.write() as s, s.begin():
        supervision.check(s, now=core.clock.now(), limits=core.limits,
                          locator=core.units.current(s))
    assert live_alert(core, orders.due_key(node["id"])) is None  # the legal clock's business
    with core.read() as s:
        flags = s.execute(sa.select(order_nodes.c.due_alerted).where(
            order_nodes.c.id == node["id"])).scalar_one()
    assert flags is False


def test_related_matters_and_repeat_party(core):
    other_id = fictitious_id_number("999999", NOW.date().replace(year=1980), 5)
    first, _ = register(core)
    same_phone, _ = register(core, body(parties=[{"role": "applicant", "kind": "person",
                                                  "name": "李四", "phone": "13812341234",
                                                  "id_number": other_id}]))
    lon, lat = core.locator().point_in("DEMO-T03-G01")
    here = body(grid=None, lon=lon, lat=lat, parties=[])
    near_a, _ = register(core, here)
    near_b, _ = register(core, {**here, "lon": lon + 0.0005})  # ~50 m away, same category
    far, _ = register(core, {**here, "lon": lon + 0.01, "title": "远处"})
    third, _ = register(core)  # the same ID number a third time in 12 months
    got = {r["case_no"]: r["reason"] for r in read(core, third["case_no"])["related"]}
    assert got[first["case_no"]] == "same_party"
    assert got[same_phone["case_no"]] == "possibly_same_party"
    near = {r["case_no"]: r["reason"] for r in read(core, near_a["case_no"])["related"]}
    assert near == {near_b["case_no"]: "same_place"}
    assert far["case_no"] not in near
    party = read(core, third["case_no"])["parties"][0]
    assert party["repeat"] is False and party["matters_12m"] == 2
    watch = RiskWatch(core)
    watch(core.clock.now())
    fourth, _ = register(core)
    watch(core.clock.now())
    with core.read() as s:
        found = [a for a in alerts.list_alerts(s) if a["rule"] == "repeat_party"]
    (alert,) = [a for a in found if "张某" in a["message"]]
    (company,) = [a for a in found if "某建筑公司" in a["message"]]  # its credit code, 3 times
    assert alert["level"] == company["level"] == "yellow"
    assert ID_A not in alert["message"] and "张三" not in alert["message"]
    assert fourth["case_no"] in alert["message"]
    assert read(core, fourth["case_no"])["parties"][0]["repeat"] is True
