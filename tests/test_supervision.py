"""Supervision with a fixed clock, the alert record, and the once-per-deployment scheduler."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest

from command import config
from command.alerts import service as alerts
from command.bus import InProcessBus
from command.clock import FixedClock
from command.core import Core
from command.incidents.loop import Forbidden
from command.orders import service as orders
from command.orders import supervision
from command.orders.service import Changes, TimeLimits
from command.scheduler import FileLock, Scheduler
from tests import test_loop
from tests.test_loop import DUTY, G01, LEADER, NOW, T01, make_incident
from tests.test_orders import G01_CODE, act, fwd, incident, issue

core = test_loop.core  # the same fixture: SQLite and PostgreSQL
LIMITS = TimeLimits()


def tick(core, minutes: float | None = None) -> Changes:
    """Move the clock to NOW + minutes and run one supervision pass."""
    if minutes is not None:
        core.clock._at = NOW + timedelta(minutes=minutes)
    with core.write() as s, s.begin():
        return supervision.check(s, now=core.clock.now(), limits=LIMITS,
                                 locator=core.units.current(s))


def open_alerts(core):
    with core.read() as s:
        return alerts.list_alerts(s)


# --- the alert record -------------------------------------------------------------------------

def test_one_alert_per_key_updated_never_duplicated(core):
    with core.write() as s, s.begin():
        a = alerts.raise_or_update(s, key="k1", rule="overdue", level="orange", units=["DEMO-T01"],
                                   incidents=["i1"], message="督办", now=NOW)
        same = alerts.raise_or_update(s, key="k1", rule="overdue", level="orange",
                                      units=["DEMO-T01"], incidents=["i1"], message="督办", now=NOW)
        assert same == a  # nothing changed: no new seq
        worse = alerts.raise_or_update(s, key="k1", rule="escalated", level="red",
                                       units=["DEMO"], incidents=["i1"], message="升级", now=NOW)
    assert a["status"] == "open" and a["raised_at"] == "2026-11-26T10:00:00+08:00"
    assert worse["id"] == a["id"] and worse["seq"] > a["seq"] and worse["level"] == "red"
    assert [x["id"] for x in open_alerts(core)] == [a["id"]]
    with core.write() as s, s.begin():
        with pytest.raises(Forbidden):
            alerts.act(s, a["id"], "ack", T01, now=NOW)  # not addressed to T01 any more
        acked = alerts.act(s, a["id"], "ack", DUTY, "已电话催办", now=NOW)
        assert alerts.act(s, a["id"], "ack", DUTY, now=NOW) == acked
        assert acked["status"] == "acknowledged" and acked["acted_by"] == "duty"
        resolved = alerts.resolve(s, "k1", NOW)
        assert resolved["status"] == "resolved" and alerts.resolve(s, "k1", NOW) is None
        back = alerts.raise_or_update(s, key="k1", rule="overdue", level="orange",
                                      units=["DEMO"], incidents=["i1"], message="又逾期", now=NOW)
        assert back["id"] == a["id"] and back["status"] == "open"
        assert len(alerts.list_alerts(s, "all")) == 1
        assert alerts.list_alerts(s, "all", since_seq=back["seq"]) == []
        assert alerts.list_alerts(s, by=T01) == [] and len(alerts.list_alerts(s, by=DUTY)) == 1


# --- supervision ------------------------------------------------------------------------------

def test_overdue_sign_off_alerts_once_then_escalates_to_the_township(core):
    inc = make_incident(core, title="邻里噪音纠纷")  # Ⅳ: 60 minutes to sign off
    (node,) = issue(core, inc["id"], [G01_CODE])["nodes"]
    assert not tick(core, 59)
    changes = tick(core, 65)
    (alert,) = changes.alerts
    assert (alert["rule"], alert["level"], alert["units"], alert["incidents"]) == \
        ("overdue", "orange", ["DEMO-T01"], [inc["id"]])
    assert "东关社区网格" in alert["message"] and "邻里噪音纠纷" in alert["message"]
    assert "5分钟" in alert["message"]
    (marked,) = changes.nodes
    assert marked["supervision"]["ack_alerted"] and marked["history"][-1]["by"] == "system"
    assert not tick(core, 70) and not tick(core, 119)  # nothing twice

    changes = tick(core, 120)  # 2 × 60 minutes: escalate
    (alert2,) = changes.alerts
    assert alert2["id"] == alert["id"] and alert2["rule"] == "escalated"
    assert alert2["level"] == "red" and "城关街道" in alert2["message"]
    township = next(n for n in changes.nodes if n["target"]["code"] == "DEMO-T01")
    grid = next(n for n in changes.nodes if n["id"] == node["id"])
    assert township["parent_id"] is None and township["state"] == "issued"
    assert township["order_id"] == node["order_id"] and township["priority"] == "high"
    assert grid["parent_id"] == township["id"] and "升级" in grid["history"][-1]["note"]
    assert not tick(core, 179)  # the township node's own limits start at the escalation
    assert len(open_alerts(core)) == 1

    ack_changes = Changes()
    act(core, node["id"], "ack", G01, changes=ack_changes)  # late, but signed off
    (resolved,) = ack_changes.alerts
    assert resolved["id"] == alert["id"] and resolved["status"] == "resolved"
    assert open_alerts(core) == []
    act(core, node["id"], "complete", G01, result="已调解")
    with core.read() as s:
        assert orders.get_node(s, township["id"])["state"] == "completed"
    assert incident(core, inc["id"])["status"] == "responded"


def test_severe_incident_alerts_red_and_township_node_goes_to_the_county(core):
    inc = make_incident(core, severity=1)  # Ⅰ: 5 minutes to sign off, 60 to complete
    (node,) = issue(core, inc["id"], ["DEMO-T01"])["nodes"]
    (alert,) = tick(core, 5).alerts
    assert alert["level"] == "red" and alert["units"] == ["DEMO"]
    changes = tick(core, 10)
    assert [n["id"] for n in changes.nodes] == [node["id"]]  # no new node above a township
    (alert,) = changes.alerts
    assert alert["rule"] == "escalated" and alert["units"] == ["DEMO"]
    assert "县" in alert["message"] or "演示县" in alert["message"]


def test_overdue_completion_alerts_then_escalates(core):
    inc = make_incident(core, severity=2)  # Ⅱ: 10 / 120
    (node,) = issue(core, inc["id"], [G01_CODE])["nodes"]
    act(core, node["id"], "ack", G01)
    assert not tick(core, 30)
    (alert,) = tick(core, 121).alerts
    assert alert["key"] == orders.due_key(node["id"]) and alert["rule"] == "overdue"
    assert "未按时办结" in alert["message"]
    changes = tick(core, 240)
    assert alert["id"] == changes.alerts[0]["id"] and changes.alerts[0]["rule"] == "escalated"
    assert {n["target"]["code"] for n in changes.nodes} == {G01_CODE, "DEMO-T01"}
    assert not tick(core, 249)
    (above,) = tick(core, 250).alerts  # the township did not sign off its new node either
    assert above["units"] == ["DEMO"] and above["key"] == orders.ack_key(
        next(n["id"] for n in changes.nodes if n["target"]["code"] == "DEMO-T01"))
    done = Changes()
    act(core, node["id"], "complete", G01, result="已处理", changes=done)
    assert [a["status"] for a in done.alerts] == ["resolved", "resolved"]
    assert open_alerts(core) == []


def test_forwarded_grid_node_escalates_to_the_county_without_a_new_node(core):
    inc = make_incident(core)
    (top,) = issue(core, inc["id"], ["DEMO-T01"])["nodes"]
    (kid,) = fwd(core, top["id"], [G01_CODE])
    (alert,) = tick(core, 60).alerts
    assert alert["units"] == ["DEMO-T01"]
    changes = tick(core, 120)
    assert [n["id"] for n in changes.nodes] == [kid["id"]]
    assert changes.alerts[0]["units"] == ["DEMO"] and changes.alerts[0]["rule"] == "escalated"


def test_supervision_state_survives_a_restart(core):
    inc = make_incident(core)
    issue(core, inc["id"], [G01_CODE])
    assert tick(core, 60).alerts
    again = Core(core.settings, clock=FixedClock(NOW + timedelta(minutes=61)), bus=InProcessBus())
    try:
        assert not tick(again)
    finally:
        again.close()


def test_cancel_resolves_alerts(core):
    inc = make_incident(core)
    (node,) = issue(core, inc["id"], [G01_CODE])["nodes"]
    tick(core, 60)
    assert len(open_alerts(core)) == 1
    act(core, node["id"], "cancel", LEADER)
    assert open_alerts(core) == []
    assert not tick(core, 500)


# --- the scheduler ------------------------------------------------------------------------------

def _counting():
    calls: list = []
    lock = threading.Lock()

    def job(now):
        with lock:
            calls.append(now)
    return calls, job


def test_one_scheduler_per_deployment_on_sqlite(tmp_path):
    settings = config.load(data_dir=tmp_path / "data")
    a = Core(settings, clock=FixedClock(NOW), bus=InProcessBus())
    b = Core(settings, clock=FixedClock(NOW), bus=InProcessBus())
    calls, job = _counting()
    first, second = Scheduler(a, [job], 60), Scheduler(b, [job], 60)
    try:
        for _ in range(3):
            assert [first.run_once(NOW), second.run_once(NOW)] == [True, False]
        assert calls == [NOW] * 3
        first.close()
        assert second.run_once(NOW)  # the other process takes over
    finally:
        first.close()
        second.close()
        a.close()
        b.close()


@pytest.mark.postgres
def test_one_scheduler_per_deployment_on_postgres(tmp_path, postgres_url):
    settings = config.load(data_dir=tmp_path / "data", database_url=postgres_url)
    a = Core(settings, clock=FixedClock(NOW), bus=InProcessBus())
    b = Core(config.load(data_dir=tmp_path / "other", database_url=postgres_url),
             clock=FixedClock(NOW), bus=InProcessBus())
    calls, job = _counting()
    name = f"sched-{uuid.uuid4().hex[:8]}"
    first, second = Scheduler(a, [job], 60, name=name), Scheduler(b, [job], 60, name=name)
    try:
        assert [first.run_once(NOW), second.run_once(NOW)] == [True, False]
        assert [first.run_once(NOW), second.run_once(NOW)] == [True, False]
        first.close()
        assert second.run_once(NOW)
        assert len(calls) == 3
    finally:
        first.close()
        second.close()
        a.close()
        b.close()


@pytest.mark.redis
def test_one_scheduler_per_deployment_with_redis(tmp_path, redis_url):
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    cores = [Core(config.load(data_dir=tmp_path / name, redis_url=redis_url, redis_prefix=prefix),
                  clock=FixedClock(NOW), bus=InProcessBus()) for name in ("a", "b")]
    calls, job = _counting()
    scheds = [Scheduler(c, [job], 0.2) for c in cores]
    try:
        for _ in range(3):
            assert sorted(s.run_once(NOW) for s in scheds) == [False, True]
        assert len(calls) == 3
        holder = next(s for s in scheds if s.run_once(NOW))
        holder.close()
        other = next(s for s in scheds if s is not holder)
        assert other.run_once(NOW)
    finally:
        for s in scheds:
            s.close()
        for c in cores:
            c.close()


def test_threads_tick_and_a_failing_job_does_not_stop_them(tmp_path, caplog):
    settings = config.load(data_dir=tmp_path / "data")
    a = Core(settings, clock=FixedClock(NOW), bus=InProcessBus())
    calls, job = _counting()

    def broken(now):
        raise RuntimeError("boom")

    first = Scheduler(a, [broken, job], 0.02).start()
    second = Scheduler(a, [broken, job], 0.02, lock=FileLock(tmp_path / "data" / "scheduler.lock"))
    second.start()
    try:
        deadline = time.monotonic() + 5
        while len(calls) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(calls) >= 5 and "boom" in caplog.text
        ran = len(calls)
        time.sleep(0.1)
        assert len(calls) > ran  # still ticking
    finally:
        first.close()
        second.close()
        a.close()


def test_a_job_behind_comes_back_soon_and_rests_between_ticks(tmp_path):
    settings = config.load(data_dir=tmp_path / "data", database_url="", redis_url="")
    a = Core(settings, clock=FixedClock(NOW), bus=InProcessBus())
    spans: list[tuple[float, float]] = []

    def busy(now):  # 0.1 s of work per tick, three ticks' worth of backlog
        start = time.monotonic()
        time.sleep(0.1)
        spans.append((start, time.monotonic()))
        return len(spans) < 3

    sched = Scheduler(a, [busy], 60, name="rest", max_share=0.5).start()
    try:
        deadline = time.monotonic() + 10
        while len(spans) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(spans) >= 3  # "more waiting" brings it back long before the 60 s interval
        for (s0, e0), (s1, _) in zip(spans, spans[1:]):
            assert s1 - e0 >= 0.9 * (e0 - s0)  # at most half the time: rests as long as it ran
        time.sleep(0.3)
        assert len(spans) == 3  # caught up: back to the interval
    finally:
        sched.close()
        a.close()
    with pytest.raises(ValueError):
        Scheduler(a, [busy], 60, max_share=0)


def test_supervision_as_a_scheduled_job(core):
    published: list[dict] = []
    core.bus.subscribe("alerts", published.extend)
    inc = make_incident(core)
    issue(core, inc["id"], [G01_CODE])
    sched = Scheduler(core, [supervision.make_job(core, LIMITS)], 60,
                      lock=FileLock(core.settings.data_dir / "sup.lock"))
    try:
        assert sched.run_once(NOW + timedelta(minutes=61))
        assert sched.run_once(NOW + timedelta(minutes=62))
        assert [a["rule"] for a in published] == ["overdue"]
    finally:
        sched.close()


def test_lateness_reads_naturally():
    from datetime import timedelta

    from command.orders.supervision import _late

    assert _late(timedelta(seconds=20)) == "不足1分钟"
    assert _late(timedelta(minutes=5, seconds=59)) == "5分钟"
    assert _late(timedelta(hours=2)) == "2小时"
    assert _late(timedelta(hours=1, minutes=3)) == "1小时3分钟"
