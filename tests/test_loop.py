"""The incident's closed loop: the legality table, timeline, seq, scope; on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from command import config
from command.bus import InProcessBus
from command.clock import FixedClock
from command.core import Core
from command.db import last_seq, set_meta
from command.errors import DomainError, NotFound
from command.feeds import service as feeds
from command.incidents import loop, workflow
from command.incidents.workflow import TransitionError, allowed, check
from command.units.models import units
from command.users.principal import Principal

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)

LEADER = Principal("lead", "leader")
DUTY = Principal("duty", "duty")
ADMIN = Principal("root", "admin")
T01 = Principal("t01", "township", "DEMO-T01")
T02 = Principal("t02", "township", "DEMO-T02")
G01 = Principal("g01", "grid", "DEMO-T01-G01")
G02 = Principal("g02", "grid", "DEMO-T01-G02")
POLICE = Principal("police", "dept", "dept.police")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def core(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    c = Core(config.load(data_dir=tmp_path / "data", database_url=url, rate_burst=100_000),
             clock=FixedClock(NOW), bus=InProcessBus())
    with c.write() as s, s.begin():
        if s.execute(sa.select(units.c.code).where(units.c.code == "dept.police")).first() is None:
            s.execute(sa.insert(units).values(code="dept.police", name="公安局", level="dept",
                                              parent="DEMO", source="demo"))
            set_meta(s, "units_version", uuid.uuid4().hex)
    yield c
    c.close()


_counter = iter(range(1, 1_000_000))


def make_incident(core: Core, grid="DEMO-T01-G01", severity=4, title=None) -> dict:
    """A new incident in `grid` (status reported)."""
    if not hasattr(core, "_test_feed"):
        with core.write() as s, s.begin():
            core._test_feed, _ = feeds.create(s, name="test", unit_code="DEMO", now=NOW)
    feed = core._test_feed
    i = next(_counter)
    (out,) = core.ingest.submit(feed, {
        "id": f"r-{i}", "type": "dispute", "occurred_at": "2026-11-26T09:30:00+08:00",
        "grid": grid, "title": title or f"纠纷 {i}", "severity": severity})
    assert out.error is None, out.error
    return out.incident


def move(core: Core, incident_id: str, to: str, by: Principal, **kw) -> dict:
    with core.write() as s, s.begin():
        return loop.transition(s, incident_id, to=to, by=by, now=core.clock.now(),
                               locator=core.units.current(s), **kw)


def timeline(core: Core, incident_id: str) -> list[dict]:
    with core.read() as s:
        return loop.timeline(s, incident_id)


# --- the pure table -------------------------------------------------------------------------

def test_every_state_has_a_chinese_label_and_final_states_lead_nowhere():
    assert workflow.STATE_LABELS["followed_up"] == "回访"
    assert workflow.STATE_LABELS["verified"] == "核查结案"
    assert set(workflow.TRANSITIONS) == set(workflow.STATES)
    for state in workflow.FINAL:
        assert workflow.successors(state) == []


@pytest.mark.parametrize("state, role, expected", [
    ("reported", "duty", ["accepted", "merged", "false_alarm"]),
    ("reported", "leader", ["accepted", "merged", "false_alarm"]),
    ("reported", "admin", ["accepted", "merged", "false_alarm"]),
    ("reported", "township", ["accepted", "escalated"]),
    ("reported", "grid", ["accepted", "escalated"]),
    ("reported", "dept", []),
    ("accepted", "leader", ["dispatched", "in_progress", "merged", "false_alarm"]),
    ("accepted", "grid", ["in_progress", "escalated"]),
    ("dispatched", "township", ["in_progress", "responded", "escalated"]),
    ("dispatched", "duty", ["in_progress", "responded"]),
    ("in_progress", "grid", ["responded", "escalated"]),
    ("responded", "leader", ["verified", "in_progress"]),
    ("responded", "township", []),
    ("verified", "duty", ["followed_up", "closed"]),
    ("followed_up", "leader", ["closed", "in_progress"]),  # reopened for review (issue 11)
    ("followed_up", "desk", ["closed", "in_progress"]),
    ("dispatched", "desk", ["in_progress", "responded"]),
    ("escalated", "township", ["accepted"]),
    ("escalated", "leader", ["accepted", "dispatched"]),
    ("escalated", "grid", []),
    ("closed", "admin", []),
])
def test_allowed_table(state, role, expected):
    assert allowed(state, role) == expected


def test_check_raises_with_the_allowed_moves():
    check("reported", "accepted", "grid")
    with pytest.raises(TransitionError) as info:
        check("reported", "closed", "leader")
    assert info.value.allowed == ["accepted", "merged", "false_alarm"]
    assert info.value.http_status == 409 and info.value.as_dict()["allowed"]
    with pytest.raises(TransitionError) as info:
        check("responded", "verified", "grid")  # legal move, wrong role
    assert info.value.allowed == []
    with pytest.raises(TransitionError):
        check("reported", "nonsense", "leader")


def test_data_needs_and_escalation_levels():
    with pytest.raises(DomainError) as info:
        workflow.check_data("followed_up")
    assert info.value.field == "rating"
    for bad in (0, 6, 2.5, True):
        with pytest.raises(DomainError):
            workflow.check_data("followed_up", rating=bad)
    workflow.check_data("followed_up", rating=5)
    with pytest.raises(DomainError):
        workflow.check_data("merged")
    assert workflow.escalation("grid", "grid") == ("grid", "township")
    assert workflow.escalation("grid", "township") == ("township", "county")
    assert workflow.escalation("township", "township") == ("township", "county")
    with pytest.raises(TransitionError):
        workflow.escalation("township", "grid")  # the township holds it already
    with pytest.raises(TransitionError):
        workflow.escalation("county", "township")


# --- on the database --------------------------------------------------------------------------

def test_transition_writes_timeline_and_new_seq(core):
    inc = make_incident(core)
    moved = move(core, inc["id"], "accepted", DUTY, note="已受理")
    assert moved["status"] == "accepted" and moved["status_label"] == "受理"
    assert moved["seq"] > inc["seq"]
    with core.read() as s:
        assert last_seq(s) == moved["seq"]
    for to in ("in_progress", "responded", "verified"):
        move(core, inc["id"], to, LEADER)
    done = move(core, inc["id"], "followed_up", LEADER, rating=4, note="群众满意")
    assert done["rating"] == 4
    closed = move(core, inc["id"], "closed", LEADER)
    steps = timeline(core, inc["id"])
    assert [(e["from"], e["to"]) for e in steps] == [
        ("reported", "accepted"), ("accepted", "in_progress"), ("in_progress", "responded"),
        ("responded", "verified"), ("verified", "followed_up"), ("followed_up", "closed")]
    assert steps[0]["by"] == "duty" and steps[0]["note"] == "已受理"
    assert steps[0]["at"] == "2026-11-26T10:00:00+08:00"
    assert steps[4]["data"] == {"rating": 4}
    with core.read() as s:
        assert loop.get(s, inc["id"], locator=core.units.current(s)) == closed


def test_illegal_move_changes_nothing(core):
    inc = make_incident(core)
    with pytest.raises(TransitionError) as info:
        move(core, inc["id"], "closed", LEADER)
    assert "accepted" in info.value.allowed
    for to in ("accepted", "in_progress", "responded", "verified"):
        move(core, inc["id"], to, LEADER)
    with pytest.raises(DomainError) as info:
        move(core, inc["id"], "followed_up", LEADER)  # no rating
    assert info.value.field == "rating"
    with core.read() as s:
        assert loop.get(s, inc["id"], locator=core.units.current(s))["status"] == "verified"
    assert [e["to"] for e in timeline(core, inc["id"])][-1] == "verified"


def test_scope_is_refused(core):
    inc = make_incident(core, grid="DEMO-T01-G01")
    for outsider in (T02, G02, POLICE):
        with pytest.raises(loop.Forbidden) as info:
            move(core, inc["id"], "accepted", outsider)
        assert info.value.http_status == 403
    assert move(core, inc["id"], "accepted", G01)["status"] == "accepted"
    with pytest.raises(NotFound):
        move(core, "nope", "accepted", LEADER)


def test_escalation_goes_one_level_up_and_the_level_above_takes_it(core):
    inc = make_incident(core)
    assert inc.get("level", "grid") == "grid"
    up = move(core, inc["id"], "escalated", G01, note="网格无法调处")
    assert up["status"] == "escalated" and up["level"] == "township"
    assert timeline(core, inc["id"])[-1]["data"] == {"from": "grid", "to": "township"}
    with pytest.raises(TransitionError):
        move(core, inc["id"], "accepted", G01)  # the grid cannot take it back
    took = move(core, inc["id"], "accepted", T01)
    assert took["level"] == "township"
    with pytest.raises(TransitionError):
        move(core, inc["id"], "escalated", G01)  # the township holds it now
    county = move(core, inc["id"], "escalated", T01)
    assert county["level"] == "county"
    assert timeline(core, inc["id"])[-1]["data"] == {"from": "township", "to": "county"}
    with pytest.raises(TransitionError):
        move(core, inc["id"], "accepted", T01)  # 大事不出镇 failed: the county takes it
    assert move(core, inc["id"], "dispatched", LEADER)["status"] == "dispatched"


def test_merge_needs_an_existing_other_target(core):
    a, b = make_incident(core), make_incident(core)
    with pytest.raises(DomainError) as info:
        move(core, a["id"], "merged", DUTY)
    assert info.value.field == "merged_into"
    with pytest.raises(DomainError):
        move(core, a["id"], "merged", DUTY, merged_into=a["id"])
    with pytest.raises(DomainError):
        move(core, a["id"], "merged", DUTY, merged_into="nope")
    merged = move(core, a["id"], "merged", DUTY, merged_into=b["id"])
    assert merged["merged_into"] == b["id"]
    assert timeline(core, a["id"])[-1]["data"] == {"merged_into": b["id"]}
    with pytest.raises(DomainError):  # b cannot merge into a merged incident
        move(core, b["id"], "merged", DUTY, merged_into=a["id"])
