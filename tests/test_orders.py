"""Orders: issue, forward, sign off, complete, bubble up; scope and seqs (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from command.errors import DomainError, NotFound
from command.incidents import loop
from command.incidents.loop import Forbidden
from command.incidents.workflow import TransitionError
from command.orders import service as orders
from command.orders.service import Changes, TimeLimits
from tests import test_loop
from tests.test_loop import (
    ADMIN,
    DUTY,
    G01,
    G02,
    LEADER,
    POLICE,
    T01,
    T02,
    make_incident,
    timeline,
)

core = test_loop.core  # the same fixture: SQLite and PostgreSQL

G01_CODE, G02_CODE = "DEMO-T01-G01", "DEMO-T01-G02"


def issue(core, incident_id, targets, by=LEADER, changes=None, **kw):
    kw.setdefault("instruction", "立即到场调处")
    with core.write() as s, s.begin():
        return orders.create_order(s, incident_id=incident_id, targets=targets, by=by,
                                   now=core.clock.now(), locator=core.units.current(s),
                                   limits=TimeLimits(), changes=changes, **kw)


def fwd(core, node_id, targets, by=T01, changes=None, instruction="请网格员到场"):
    with core.write() as s, s.begin():
        return orders.forward(s, node_id=node_id, targets=targets, instruction=instruction, by=by,
                              now=core.clock.now(), locator=core.units.current(s),
                              changes=changes)


def act(core, node_id, action, by, changes=None, **kw):
    with core.write() as s, s.begin():
        return orders.act(s, node_id=node_id, action=action, by=by, now=core.clock.now(),
                          locator=core.units.current(s), changes=changes, **kw)


def visible(core, by, **kw):
    with core.read() as s:
        return orders.visible_nodes(s, by=by, locator=core.units.current(s), **kw)


def incident(core, incident_id):
    with core.read() as s:
        return loop.get(s, incident_id, locator=core.units.current(s))


def test_create_gives_one_node_per_target_with_default_limits(core):
    inc = make_incident(core, severity=2)
    changes = Changes()
    order = issue(core, inc["id"], ["DEMO-T01", G02_CODE, "dept.police"], priority="urgent",
                  changes=changes)
    assert order["incident_id"] == inc["id"] and order["issued_by"] == "lead"
    nodes = order["nodes"]
    assert [n["target"] for n in nodes[:2]] == [
        {"code": "DEMO-T01", "name": "城关街道", "level": "township"},
        {"code": G02_CODE, "name": "西关社区网格", "level": "grid"}]
    assert nodes[2]["target"]["code"] == "dept.police" and nodes[2]["target"]["level"] == "dept"
    assert nodes[2]["target"]["name"].startswith("公安")
    first = nodes[0]
    assert first["state"] == "issued" and first["priority"] == "urgent"
    assert first["parent_id"] is None and first["order_id"] == order["id"]
    assert first["ack_by"] == "2026-11-26T10:10:00+08:00"  # Ⅱ: 10 minutes to sign off
    assert first["due_by"] == "2026-11-26T12:00:00+08:00"  # and 120 to complete
    # received_at: set only for an action a phone took offline (issue 12 added the field)
    assert first["history"] == [{"state": "issued", "by": "lead",
                                 "at": "2026-11-26T10:00:00+08:00", "note": "",
                                 "received_at": None}]
    assert [n["seq"] for n in nodes] == [1, 2, 3]
    assert changes.nodes == nodes
    # reported -> accepted -> dispatched, both on the timeline, one new incident seq
    (moved,) = changes.incidents
    assert moved["status"] == "dispatched" and moved["seq"] > inc["seq"]
    assert [(e["from"], e["to"]) for e in timeline(core, inc["id"])] == [
        ("reported", "accepted"), ("accepted", "dispatched")]


def test_explicit_limits_and_config_limits():
    limits = TimeLimits.from_dict({"ack": {"Ⅳ": 90}, "3": {"due": 600}, "escalate_after": 3})
    assert limits.minutes(4) == (90, 1440) and limits.minutes(3) == (30, 600)
    assert limits.escalate_after == 3
    with pytest.raises(ValueError):
        TimeLimits.from_dict({"Ⅴ": [1, 2]})
    with pytest.raises(ValueError):
        TimeLimits.from_dict({"1": [0, 2]})


def test_create_validates(core):
    inc = make_incident(core)
    with pytest.raises(DomainError) as info:
        issue(core, inc["id"], ["DEMO-T01", "NOPE", "DEMO", "dept.nope"])
    assert info.value.field == "targets"
    assert "NOPE" in info.value.message and "DEMO," in info.value.message + ","
    assert "dept.nope" in info.value.message and "DEMO-T01," not in info.value.message
    with pytest.raises(DomainError):
        issue(core, inc["id"], [])
    with pytest.raises(DomainError):
        issue(core, inc["id"], ["DEMO-T01"], priority="asap")
    with pytest.raises(DomainError):
        issue(core, inc["id"], ["DEMO-T01"], instruction="  ")
    with pytest.raises(DomainError):
        issue(core, inc["id"], ["DEMO-T01"], ack_minutes=30, due_minutes=10)
    with pytest.raises(NotFound):
        issue(core, "nope", ["DEMO-T01"])
    for who in (DUTY, T01, G01, POLICE):  # duty drafts, only a leader issues
        with pytest.raises(Forbidden):
            issue(core, inc["id"], ["DEMO-T01"], by=who)
    order = issue(core, inc["id"], ["DEMO-T01"], by=ADMIN, ack_minutes=3, due_minutes=7)
    assert order["nodes"][0]["ack_by"] == "2026-11-26T10:03:00+08:00"
    assert incident(core, inc["id"])["status"] == "dispatched"


def test_forward_only_downwards_to_own_grids(core):
    inc = make_incident(core)
    (t01, g01, police) = issue(core, inc["id"], ["DEMO-T01", G01_CODE, "dept.police"])["nodes"]
    with pytest.raises(Forbidden):
        fwd(core, g01["id"], [G02_CODE], by=G01)  # a grid never forwards
    with pytest.raises(Forbidden):
        fwd(core, police["id"], [G02_CODE], by=POLICE)
    with pytest.raises(Forbidden):
        fwd(core, t01["id"], [G02_CODE], by=T02)  # another township
    with pytest.raises(Forbidden):
        fwd(core, t01["id"], [G02_CODE], by=G01)
    with pytest.raises(DomainError) as info:
        fwd(core, t01["id"], [G02_CODE, "DEMO-T02-G01", "DEMO-T02"])  # not its grids
    assert "DEMO-T02-G01" in info.value.message and "DEMO-T02" in info.value.message
    assert G02_CODE + "," not in info.value.message + ","
    changes = Changes()
    kids = fwd(core, t01["id"], [G01_CODE, G02_CODE], changes=changes)
    assert [k["target"]["code"] for k in kids] == [G01_CODE, G02_CODE]
    assert all(k["parent_id"] == t01["id"] and k["order_id"] == t01["order_id"] for k in kids)
    assert kids[0]["due_by"] == t01["due_by"] and kids[0]["instruction"] == "请网格员到场"
    assert kids[0]["ack_by"] == "2026-11-26T11:00:00+08:00"  # the parent's sign-off span
    parent = next(n for n in changes.nodes if n["id"] == t01["id"])
    assert parent["state"] == "in_progress" and parent["acked_by"] == "t01"
    assert [h["state"] for h in parent["history"]] == ["issued", "acknowledged", "in_progress"]


def test_ack_is_idempotent(core):
    inc = make_incident(core)
    (node,) = issue(core, inc["id"], [G01_CODE])["nodes"]
    delivered = act(core, node["id"], "deliver", G01)
    assert delivered["state"] == "delivered" and delivered["seq"] > node["seq"]
    acked = act(core, node["id"], "ack", G01, note="收到")
    assert acked["state"] == "acknowledged" and acked["acked_by"] == "g01"
    changes = Changes()
    again = act(core, node["id"], "ack", G01, changes=changes)
    assert again == acked and not changes
    assert act(core, node["id"], "deliver", G01) == acked
    with pytest.raises(Forbidden):
        act(core, node["id"], "ack", G02)
    with pytest.raises(Forbidden):
        act(core, node["id"], "ack", LEADER)  # only the unit itself signs off


def test_complete_bubbles_up_to_parent_and_incident(core):
    inc = make_incident(core)
    (t01, police) = issue(core, inc["id"], ["DEMO-T01", "dept.police"])["nodes"]
    g1, g2 = fwd(core, t01["id"], [G01_CODE, G02_CODE])
    with pytest.raises(TransitionError) as info:
        act(core, g1["id"], "complete", G01, result="已调处")  # not signed off yet
    assert info.value.allowed == ["deliver", "ack", "return"]
    act(core, g1["id"], "ack", G01)
    act(core, g1["id"], "progress", G01, note="已到场")
    with pytest.raises(DomainError) as info:
        act(core, g1["id"], "complete", G01)
    assert info.value.field == "result"
    done = act(core, g1["id"], "complete", G01, result="双方达成调解协议")
    assert done["state"] == "completed" and done["result"] == "双方达成调解协议"
    with core.read() as s:
        assert orders.get_node(s, t01["id"])["state"] == "in_progress"  # g2 still open
    act(core, g2["id"], "cancel", T01, note="不需要了")  # the node above cancels
    changes = Changes()
    with core.read() as s:
        parent = orders.get_node(s, t01["id"])
    assert parent["state"] == "completed" and "西关" not in parent["result"]
    assert parent["result"] == "东关社区网格：双方达成调解协议"
    assert parent["history"][-1]["by"] == "system"
    assert incident(core, inc["id"])["status"] == "dispatched"  # police still open
    act(core, police["id"], "ack", POLICE)
    act(core, police["id"], "complete", POLICE, result="现场秩序已恢复", changes=changes)
    (moved,) = changes.incidents
    assert moved["status"] == "responded"
    steps = timeline(core, inc["id"])
    assert (steps[-1]["from"], steps[-1]["to"], steps[-1]["by"]) == \
        ("dispatched", "responded", "system")
    with core.read() as s:
        tree = orders.order_tree(s, inc["id"])
    (order,) = tree
    assert [n["target"]["code"] for n in order["nodes"]] == ["DEMO-T01", "dept.police"]
    assert [c["state"] for c in order["nodes"][0]["children"]] == ["completed", "cancelled"]


def test_return_needs_reason_and_waits_for_the_node_above(core):
    inc = make_incident(core)
    (node,) = issue(core, inc["id"], [G01_CODE])["nodes"]
    with pytest.raises(DomainError) as info:
        act(core, node["id"], "return", G01)
    assert info.value.field == "reason"
    returned = act(core, node["id"], "return", G01, reason="不属于本网格")
    assert returned["state"] == "returned" and returned["reason"] == "不属于本网格"
    with pytest.raises(TransitionError) as info:
        act(core, node["id"], "ack", G01)
    assert info.value.allowed == []
    with pytest.raises(Forbidden):
        act(core, node["id"], "reissue", G01)
    core.clock.advance(minutes=30)
    again = act(core, node["id"], "reissue", LEADER, note="请再核实")
    assert again["state"] == "issued" and again["reason"] is None
    assert again["ack_by"] == "2026-11-26T11:30:00+08:00"
    assert act(core, node["id"], "ack", G01)["state"] == "acknowledged"


def test_cancelled_only_is_not_responded(core):
    inc = make_incident(core)
    (node,) = issue(core, inc["id"], [G01_CODE])["nodes"]
    with pytest.raises(Forbidden):
        act(core, node["id"], "cancel", T01)  # a top node belongs to the county
    assert act(core, node["id"], "cancel", LEADER)["state"] == "cancelled"
    assert incident(core, inc["id"])["status"] == "dispatched"
    with pytest.raises(TransitionError):
        act(core, node["id"], "ack", G01)


def test_visibility_by_role(core):
    inc = make_incident(core)
    (t01, g02, police) = issue(core, inc["id"], ["DEMO-T01", G02_CODE, "dept.police"])["nodes"]
    (g01,) = fwd(core, t01["id"], [G01_CODE])
    ids = lambda nodes: {n["id"] for n in nodes}
    assert ids(visible(core, POLICE)) == {police["id"]}
    assert ids(visible(core, G01)) == {g01["id"]}
    assert ids(visible(core, G02)) == {g02["id"]}
    assert ids(visible(core, T01)) == {t01["id"], g01["id"], g02["id"]}
    assert ids(visible(core, T02)) == set()
    assert ids(visible(core, court_user())) == set()
    assert len(visible(core, DUTY)) == 4
    with pytest.raises(Forbidden):
        act(core, police["id"], "ack", G01)
    with pytest.raises(Forbidden):
        act(core, police["id"], "ack", court_user())
    act(core, g01["id"], "ack", G01)
    act(core, g01["id"], "complete", G01, result="好了")
    assert ids(visible(core, G01, open_only=True)) == set()
    latest = visible(core, T01, since_seq=g01["seq"])
    assert [n["id"] for n in latest] == [g01["id"], t01["id"]]
    assert [n["seq"] for n in latest] == sorted(n["seq"] for n in latest)
    with core.read() as s:
        assert ids(orders.nodes_for_unit(s, "dept.police")) == {police["id"]}
        assert orders.nodes_for_unit(s, G01_CODE) == []
        assert len(orders.nodes_for_unit(s, G01_CODE, open_only=False)) == 1


def court_user():
    from command.users.principal import Principal

    return Principal("court", "dept", "dept.court")


def test_new_order_on_responded_incident_sends_it_back(core):
    inc = make_incident(core)
    (node,) = issue(core, inc["id"], [G01_CODE])["nodes"]
    act(core, node["id"], "ack", G01)
    act(core, node["id"], "complete", G01, result="ok")
    assert incident(core, inc["id"])["status"] == "responded"
    issue(core, inc["id"], ["DEMO-T01"])
    assert incident(core, inc["id"])["status"] == "in_progress"
    core.clock.advance(minutes=1)
    with core.write() as s, s.begin():
        loop.transition(s, inc["id"], to="responded", by=LEADER, now=core.clock.now(),
                        locator=core.units.current(s))
        loop.transition(s, inc["id"], to="verified", by=LEADER, now=core.clock.now(),
                        locator=core.units.current(s))
    with pytest.raises(TransitionError):
        issue(core, inc["id"], ["DEMO-T01"])


def test_seq_grows_across_every_change(core):
    inc = make_incident(core)
    (node,) = issue(core, inc["id"], [G01_CODE])["nodes"]
    seqs = [node["seq"]]
    for action in ("deliver", "ack", "progress"):
        seqs.append(act(core, node["id"], action, G01)["seq"])
    seqs.append(act(core, node["id"], "progress", G01, note="更多")["seq"])
    assert seqs == sorted(set(seqs))
