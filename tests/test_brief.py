"""Briefings: a seeded week through the real services, its brief checked against SQL counts.

The week 2026-W48 (Mon 23 – Sun 29 November 2026, Asia/Shanghai) and the week before are
built with a fixed clock: reports through `incidents.service.ingest`, the loop through
`incidents.loop`, orders through `orders.service`, alerts through `alerts.service` and one
supervision pass. The brief's numbers are then compared with plain SQL written independently
(UTC bounds spelled out by hand), on SQLite and PostgreSQL. Also: period boundaries, the ISO week
across a year, 专报 / 续报 numbering, every format, the CLI and the web endpoint with roles.
"""

from __future__ import annotations

import io
import random
import re
import uuid
import zipfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from command import config
from command.alerts import service as alerts_service
from command.briefing import compose, data, flows, render
from command.briefing.periods import containing, parse
from command.bus import InProcessBus
from command.clock import SHANGHAI, FixedClock
from command.core import Core
from command.errors import DomainError, NotFound
from command.feeds import service as feeds
from command.incidents import loop
from command.incidents import service as incidents_service
from command.orders import service as orders
from command.orders import supervision
from command.orders.service import TimeLimits
from command.users.principal import Principal
from tests import servers

LEADER = Principal("lead", "leader")
DUTY = Principal("duty", "duty")
T02 = Principal("t02", "township", "DEMO-T02")
G203 = Principal("g203", "grid", "DEMO-T02-G03")
POLICE = Principal("police", "dept", "dept.police")
T03 = Principal("t03", "township", "DEMO-T03")

# 2026-W48 in UTC, written out by hand: local midnight is 16:00 UTC the day before
W48_START, W48_END = "2026-11-22 16:00:00", "2026-11-29 16:00:00"
W47_START = "2026-11-15 16:00:00"
AFTER = datetime(2026, 12, 2, 2, 0, tzinfo=timezone.utc)  # Wed 2 Dec 10:00 local
GRIDS = ["DEMO-T01-G01", "DEMO-T01-G05", "DEMO-T02-G03", "DEMO-T02-G11", "DEMO-T03-G02",
         "DEMO-T05-G01", "DEMO-T07-G02", "DEMO-T09-G03", "DEMO-T12-G01"]
TYPES = ["dispute"] * 5 + ["petition"] * 2 + ["complaint", "emergency", "public_safety",
                                               "legal", "psych", "other"]


def local(text: str) -> datetime:
    """A local (Asia/Shanghai) 'YYYY-MM-DD HH:MM[:SS]' as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).astimezone(timezone.utc)


def make_core(tmp, url=None, at=AFTER) -> Core:
    return Core(config.load(data_dir=tmp, database_url=url), clock=FixedClock(at),
                bus=InProcessBus())


class Seed:
    """Drives the real services with a fixed clock; remembers what it made."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.n = 0
        with core.write() as s, s.begin():
            self.feed, _ = feeds.create(s, name=f"seed-{uuid.uuid4().hex[:6]}", unit_code="DEMO",
                                        now=local("2026-11-01 08:00"))
        self.ids: dict[str, str] = {}

    def at(self, when: datetime) -> None:
        self.core.clock._at = when

    def report(self, when: str, *, type="dispute", grid="DEMO-T01-G01", severity=4,
               people=None, title=None, tag=None) -> str:
        self.n += 1
        occurred = local(when)
        raw = {"id": f"s-{self.n}", "type": type, "severity": severity, "grid": grid,
               "title": title or f"{type} {self.n}",
               "occurred_at": occurred.astimezone(SHANGHAI).isoformat()}
        if people is not None:
            raw["people"] = people
        with self.core.write() as s, s.begin():
            (out,), _ = incidents_service.ingest(s, self.feed, [raw],
                                                 locator=self.core.units.current(s),
                                                 now=occurred + timedelta(minutes=3))
        assert out.error is None, out.error
        if tag:
            self.ids[tag] = out.incident["id"]
        return out.incident["id"]

    def move(self, incident_id: str, to: str, by: Principal, when: datetime, **kw) -> dict:
        self.at(when)
        with self.core.write() as s, s.begin():
            return loop.transition(s, incident_id, to=to, by=by, now=when,
                                   locator=self.core.units.current(s), **kw)

    def close(self, incident_id: str, start: datetime, rating: int | None, *,
              closed: bool = True) -> None:
        """The plain loop, run by the county: accept … verify (… follow up, close)."""
        t = start
        for to, by in (("accepted", DUTY), ("in_progress", DUTY), ("responded", DUTY),
                       ("verified", LEADER)):
            t += timedelta(hours=1)
            self.move(incident_id, to, by, t)
        if rating is not None:
            t += timedelta(hours=2)
            self.move(incident_id, "followed_up", DUTY, t, rating=rating)
        if closed:
            self.move(incident_id, "closed", LEADER, t + timedelta(hours=1))

    def issue(self, incident_id: str, targets: list[str], when: datetime, **kw) -> dict:
        self.at(when)
        kw.setdefault("instruction", "立即到场调处")
        with self.core.write() as s, s.begin():
            return orders.create_order(s, incident_id=incident_id, targets=targets, by=LEADER,
                                       now=when, locator=self.core.units.current(s),
                                       limits=TimeLimits(), **kw)

    def forward(self, node_id: str, targets: list[str], by: Principal, when: datetime) -> list:
        self.at(when)
        with self.core.write() as s, s.begin():
            return orders.forward(s, node_id=node_id, targets=targets, instruction="请网格员到场",
                                  by=by, now=when, locator=self.core.units.current(s))

    def act(self, node_id: str, action: str, by: Principal, when: datetime, **kw) -> dict:
        self.at(when)
        with self.core.write() as s, s.begin():
            return orders.act(s, node_id=node_id, action=action, by=by, now=when,
                              locator=self.core.units.current(s), **kw)

    def supervise(self, when: datetime) -> None:
        self.at(when)
        with self.core.write() as s, s.begin():
            supervision.check(s, now=when, limits=TimeLimits(), locator=self.core.units.current(s))

    def alert(self, key: str, rule: str, level: str, when: datetime, incident_ids=()) -> dict:
        self.at(when)
        with self.core.write() as s, s.begin():
            return alerts_service.raise_or_update(
                s, key=key, rule=rule, level=level, units=["DEMO"], incidents=list(incident_ids),
                message=f"{rule} {key}", now=when)

    def alert_act(self, alert_id: str, action: str, when: datetime) -> None:
        self.at(when)
        with self.core.write() as s, s.begin():
            alerts_service.act(s, alert_id, action, DUTY, note="值班员已核实", now=when)

    def resolve(self, key: str, when: datetime) -> None:
        with self.core.write() as s, s.begin():
            alerts_service.resolve(s, key, when)


def seed_weeks(core: Core) -> Seed:
    """W47 and W48 (and a little of W49) through the real services."""
    seed = Seed(core)
    rng = random.Random(48)
    # the week before: 30 plain incidents, a third of them closed
    for k in range(30):
        day = date(2026, 11, 16) + timedelta(days=rng.randrange(7))
        when = f"{day} {rng.randrange(24):02d}:{rng.randrange(60):02d}"
        iid = seed.report(when, type=rng.choice(TYPES), grid=rng.choice(GRIDS))
        if k % 3 == 0:
            seed.close(iid, local(when), rating=rng.randint(1, 5))
    # this week: 50 plain incidents, some closed with ratings, some only verified
    for k in range(50):
        day = date(2026, 11, 23) + timedelta(days=rng.randrange(7))
        when = f"{day} {rng.randrange(24):02d}:{rng.randrange(60):02d}"
        severity = rng.choice([3, 4, 4, 4])
        iid = seed.report(when, type=rng.choice(TYPES), grid=rng.choice(GRIDS),
                          severity=severity, people=rng.choice([None, 2, 5]))
        if k % 3 == 0:
            seed.close(iid, local(when), rating=rng.choice([None, 2, 3, 4, 5, 5]),
                       closed=k % 2 == 0)
        elif k % 5 == 1:
            seed.move(iid, "accepted", DUTY, local(when) + timedelta(minutes=20))
    # the boundaries of the week
    seed.report("2026-11-22 23:59:59", title="上周最后一秒", tag="prev_last")
    seed.report("2026-11-23 00:00:00", title="本周第一秒", tag="first")
    seed.report("2026-11-29 23:59:59", title="本周最后一秒", tag="last")
    seed.report("2026-11-30 00:00:00", title="下周第一秒", tag="next_first")
    # a repeat place: five disputes and a petition in one grid, two disputes in another
    for k in range(5):
        seed.report(f"2026-11-2{4 + k} 10:00", type="dispute", grid="DEMO-T09-G05")
    seed.report("2026-11-26 15:00", type="petition", grid="DEMO-T09-G05")
    seed.report("2026-11-26 16:00", type="dispute", grid="DEMO-T11-G01")
    seed.report("2026-11-27 16:00", type="dispute", grid="DEMO-T11-G01")
    # merged and false alarm
    dup = seed.report("2026-11-25 09:00", grid="DEMO-T09-G05", type="complaint")
    seed.move(dup, "merged", DUTY, local("2026-11-25 09:30"), merged_into=seed.ids["first"])
    fake = seed.report("2026-11-25 11:00", type="other")
    seed.move(fake, "false_alarm", DUTY, local("2026-11-25 11:10"))

    # a mass incident (Ⅱ级, 80 people): township + police; the township forwards to its grid
    t = local("2026-11-24 10:00")
    mass = seed.report("2026-11-24 10:00", type="mass", grid="DEMO-T02-G03", severity=2,
                       people=80, title="工地欠薪聚集", tag="mass")
    order = seed.issue(mass, ["DEMO-T02", "dept.police"], t + timedelta(minutes=5),
                       priority="urgent")
    town, police = order["nodes"]
    (grid_node,) = seed.forward(town["id"], ["DEMO-T02-G03"], T02, t + timedelta(minutes=10))
    seed.act(grid_node["id"], "ack", G203, t + timedelta(minutes=30))  # 15 min late (10 allowed)
    seed.act(police["id"], "ack", POLICE, t + timedelta(minutes=12))  # on time
    seed.act(grid_node["id"], "complete", G203, t + timedelta(minutes=90), result="已劝离，登记诉求")
    seed.act(police["id"], "complete", POLICE, t + timedelta(hours=3),
             result="现场秩序恢复")  # due 2 h after issue: 55 min late
    seed.move(mass, "verified", LEADER, t + timedelta(hours=4))
    seed.move(mass, "followed_up", DUTY, t + timedelta(days=1), rating=4)
    seed.ids.update(town=town["id"], police=police["id"], grid_node=grid_node["id"])

    # a Ⅰ级 emergency: the order to a township is never signed off
    t = local("2026-11-26 14:00")
    fire = seed.report("2026-11-26 14:00", type="emergency", grid="DEMO-T03-G02", severity=1,
                       title="仓库火情", tag="fire")
    (unsigned,) = seed.issue(fire, ["DEMO-T03"], t + timedelta(minutes=2))["nodes"]
    seed.ids["unsigned"] = unsigned["id"]
    seed.supervise(t + timedelta(minutes=30))  # sign-off overdue → alert, escalated
    seed.supervise(t + timedelta(minutes=90))  # completion overdue as well
    # a crowd over the threshold but of another type, Ⅲ级; its order is returned late
    t = local("2026-11-27 09:00")
    crowd = seed.report("2026-11-27 09:00", type="petition", grid="DEMO-T05-G01", severity=3,
                        people=35, title="集体上访", tag="crowd")
    (node,) = seed.issue(crowd, ["DEMO-T05"], t + timedelta(minutes=5))["nodes"]
    seed.act(node["id"], "return", Principal("t05", "township", "DEMO-T05"),
             t + timedelta(hours=1), reason="不属本镇")  # Ⅲ: 30 min to sign off → late
    # an order due next week: not overdue in W48
    late_week = seed.report("2026-11-29 23:00", severity=4, grid="DEMO-T01-G05", tag="late_week")
    seed.issue(late_week, ["DEMO-T01"], local("2026-11-29 23:30"))

    # alerts: in W47 (not counted), four in W48 (+ supervision's), one in W49 (not counted)
    seed.alert("w47", "severity", "orange", local("2026-11-20 12:00"))
    a1 = seed.alert("sev:fire", "severity", "red", local("2026-11-26 14:01"), [fire])
    a2 = seed.alert("mass:1", "mass_gathering", "orange", local("2026-11-24 10:02"), [mass])
    a3 = seed.alert("repeat:G05", "repeat_place", "yellow", local("2026-11-27 10:00"))
    seed.alert("repeat:T11", "repeat_place", "yellow", local("2026-11-29 23:59:59"))
    seed.alert("w49", "spike", "red", local("2026-11-30 00:00"))
    seed.alert_act(a1["id"], "ack", local("2026-11-26 14:05"))
    seed.alert_act(a3["id"], "dismiss", local("2026-11-27 11:00"))
    seed.resolve(a2["key"], local("2026-11-24 18:00"))
    seed.at(AFTER)
    return seed


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                              marks=pytest.mark.postgres)])
def world(request, tmp_path_factory):
    """A core with W47/W48 seeded (once per backend), and the seed's ids."""
    url, cleanups = None, []
    if request.param == "postgres":
        base = request.getfixturevalue("postgres_server_url")
        schema = "brief_" + uuid.uuid4().hex[:10]
        engine = sa.create_engine(base)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        engine.dispose()
        url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"

        def drop():
            e = sa.create_engine(base)
            with e.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            e.dispose()
        cleanups.append(drop)
    core = make_core(tmp_path_factory.mktemp("brief") / "data", url)
    seed = seed_weeks(core)
    yield core, seed
    core.close()
    for cleanup in cleanups:
        cleanup()


def week_brief(core, key="2026-W48") -> data.PeriodBrief:
    period = parse("week", key, now=AFTER)
    with core.read() as s:
        return data.period_brief(s, period, now=AFTER)


def sql(core, text: str, **params):
    with core.read() as s:
        return s.execute(sa.text(text), params).all()


WHERE = "occurred_at >= :s AND occurred_at < :e"
W48 = {"s": W48_START, "e": W48_END}
W47 = {"s": W47_START, "e": W48_START}


# --- the numbers, against SQL ---------------------------------------------------------------

def test_totals_types_and_townships_match_sql(world):
    core, seed = world
    b = week_brief(core)
    (total,), = sql(core, f"SELECT count(*) FROM incidents WHERE {WHERE}", **W48)
    (before,), = sql(core, f"SELECT count(*) FROM incidents WHERE {WHERE}", **W47)
    assert (b.total, b.previous_total) == (total, before) and total > 60
    by_type = dict(sql(core, f"SELECT type, count(*) FROM incidents WHERE {WHERE} GROUP BY type",
                       **W48))
    prev_type = dict(sql(core, f"SELECT type, count(*) FROM incidents WHERE {WHERE} "
                               "GROUP BY type", **W47))
    assert {r.code: r.current for r in b.by_type if r.current} == by_type
    assert {r.code: r.previous for r in b.by_type if r.previous} == prev_type
    towns = dict(sql(core, f"SELECT township_code, count(*) FROM incidents WHERE {WHERE} "
                           "GROUP BY township_code", **W48))
    assert {r.code: r.current for r in b.by_township if r.current} == towns
    assert len([r for r in b.by_township if r.code]) == 13  # every township, even with none
    closed_towns = dict(sql(core, f"SELECT township_code, count(*) FROM incidents WHERE {WHERE} "
                                  "AND status IN ('verified', 'followed_up', 'closed') "
                                  "GROUP BY township_code", **W48))
    assert {r.code: r.closed for r in b.by_township if r.closed} == closed_towns
    sev = dict(sql(core, f"SELECT severity, count(*) FROM incidents WHERE {WHERE} "
                         "GROUP BY severity", **W48))
    assert {int(r.code): r.current for r in b.by_severity if r.current} == sev
    statuses = dict(sql(core, f"SELECT status, count(*) FROM incidents WHERE {WHERE} "
                              "GROUP BY status", **W48))
    assert (b.merged, b.false_alarm) == (1, 1) == (statuses["merged"], statuses["false_alarm"])
    assert b.closed == sum(statuses.get(s, 0) for s in ("verified", "followed_up", "closed"))
    assert b.valid == total - 2
    assert sum(n for _, n in b.trend) == total and len(b.trend) == 7


def test_boundaries_of_the_week_in_local_time(world):
    core, seed = world
    ids = set(r for (r,) in sql(core, "SELECT id FROM incidents WHERE occurred_at >= :s "
                                      "AND occurred_at < :e", **W48))
    assert seed.ids["first"] in ids and seed.ids["last"] in ids
    assert seed.ids["prev_last"] not in ids and seed.ids["next_first"] not in ids
    # and the brief agrees: the day briefs of Sunday and the Monday after
    with core.read() as s:
        sunday = data.period_brief(s, parse("day", "2026-11-29", now=AFTER), now=AFTER)
        monday = data.period_brief(s, parse("day", "2026-11-30", now=AFTER), now=AFTER)
    (sun,), = sql(core, "SELECT count(*) FROM incidents WHERE occurred_at >= '2026-11-28 16:00:00'"
                        " AND occurred_at < '2026-11-29 16:00:00'")
    assert sunday.total == sun and monday.total == 1  # only 下周第一秒
    assert sunday.trend[-1] == ("23时", 2)  # 本周最后一秒 and the order due next week
    assert sunday.previous.key == "2026-11-28" and len(sunday.trend) == 24


def test_major_incidents_with_orders_and_outcome(world):
    core, seed = world
    b = week_brief(core)
    (n,), = sql(core, f"SELECT count(*) FROM incidents WHERE {WHERE} AND "
                      "(type = 'mass' OR people >= 30 OR severity <= 2)", **W48)
    assert b.majors_total == n == 3 and len(b.majors) == 3
    fire, mass, crowd = b.majors  # by severity, then time
    assert (fire.id, mass.id, crowd.id) == (seed.ids["fire"], seed.ids["mass"], seed.ids["crowd"])
    assert fire.reasons == ["Ⅰ级"] and mass.reasons == ["Ⅱ级", "群体性事件", "涉及80人"]
    assert crowd.reasons == ["涉及35人"]
    assert b.majors_counts == {"severity_1": 1, "severity_2": 1, "mass": 1, "people": 2}
    (order,) = mass.orders
    assert [(n.depth, n.target, n.state) for n in order.nodes] == [
        (0, "东城街道", "completed"), (1, "城南社区网格", "completed"), (0, "公安", "completed")]
    township, grid, police = order.nodes
    assert grid.late_ack == timedelta(minutes=10)  # forwarded at +10, 10 allowed, signed at +30
    assert police.late_ack is None and police.late_due == timedelta(minutes=55)
    assert police.result == "现场秩序恢复" and mass.rating == 4 and mass.status == "followed_up"
    (order,) = fire.orders
    assert [n.state for n in order.nodes] == ["issued"] and order.nodes[0].acked_at is None


def test_overdue_orders_follow_supervision_and_match_sql(world):
    core, seed = world
    b = week_brief(core)
    ack_sql = sql(core, """
        SELECT n.id FROM order_nodes n WHERE n.ack_by >= :s AND n.ack_by < :e AND NOT EXISTS (
          SELECT 1 FROM order_node_events e WHERE e.node_id = n.id AND e.at >= n.created_at
          AND e.at <= n.ack_by
          AND e.state IN ('acknowledged', 'in_progress', 'completed', 'returned', 'cancelled'))
        """, **W48)
    due_sql = sql(core, """
        SELECT n.id FROM order_nodes n WHERE n.due_by >= :s AND n.due_by < :e AND NOT EXISTS (
          SELECT 1 FROM order_node_events e WHERE e.node_id = n.id AND e.at >= n.created_at
          AND e.at <= n.due_by AND e.state IN ('completed', 'returned', 'cancelled'))
        """, **W48)
    got_ack = sorted(o.node_id for o in b.overdue if o.step == "ack")
    got_due = sorted(o.node_id for o in b.overdue if o.step == "due")
    assert got_ack == sorted(r for (r,) in ack_sql) and got_due == sorted(r for (r,) in due_sql)
    ids = seed.ids
    assert ids["grid_node"] in got_ack and ids["unsigned"] in got_ack and ids["town"] not in got_ack
    assert ids["police"] in got_due and ids["unsigned"] in got_due
    # the fire's escalated township node (made by supervision) is overdue too; the order due
    # next week is not
    assert b.overdue_counts["ack"] == len(got_ack) and b.overdue_counts["due"] == len(got_due)
    still = [o for o in b.overdue if o.done_at is None]
    assert {o.node_id for o in still} == {ids["unsigned"]}
    assert b.overdue_counts["still_open"] == len(still) == 2  # its sign-off and its completion
    unsigned = next(o for o in still if o.step == "due")
    assert unsigned.late == local("2026-11-30 00:00") - unsigned.deadline  # up to the week's end


def test_alerts_hotspots_repeats_satisfaction_and_handling_match_sql(world):
    core, seed = world
    b = week_brief(core)
    rows = sql(core, "SELECT rule, level, status, count(*) FROM alerts WHERE raised_at >= :s "
                     "AND raised_at < :e GROUP BY rule, level, status", **W48)
    assert b.alerts.total == sum(r[3] for r in rows)
    assert {"severity", "mass_gathering", "repeat_place", "escalated"} <= set(b.alerts.by_rule)
    assert "spike" not in b.alerts.by_rule  # raised at 00:00 of the next week
    for rule, level, status, count in rows:
        assert b.alerts.by_rule[rule][level] >= count
    by_status = {}
    for _, _, status, count in rows:
        by_status[status] = by_status.get(status, 0) + count
    assert b.alerts.by_status == by_status
    assert by_status["acknowledged"] == 1 and by_status["dismissed"] == 1
    assert b.alerts.by_rule["repeat_place"] == {"yellow": 2}
    assert b.alerts.status_by_rule["mass_gathering"] == {"resolved": 1}

    hot = sql(core, f"SELECT grid_code, count(*) FROM incidents WHERE {WHERE} AND grid_code IS "
                    "NOT NULL GROUP BY grid_code ORDER BY count(*) DESC, grid_code LIMIT 10", **W48)
    assert [(p.grid_code, p.count) for p in b.hotspots] == [tuple(r) for r in hot]
    rep = sql(core, f"SELECT grid_code, count(*) FROM incidents WHERE {WHERE} AND type IN "
                    "('dispute', 'petition') GROUP BY grid_code HAVING count(*) >= 3 "
                    "ORDER BY count(*) DESC, grid_code", **W48)
    assert [(p.grid_code, p.count) for p in b.repeats] == [tuple(r) for r in rep]
    assert "DEMO-T09-G05" in [p.grid_code for p in b.repeats]
    assert "DEMO-T11-G01" not in [p.grid_code for p in b.repeats]  # two only
    g05 = next(p for p in b.repeats if p.grid_code == "DEMO-T09-G05")
    assert g05.types["dispute"] >= 5 and g05.township == "清溪镇"

    (count, mean, happy), = sql(core, f"SELECT count(rating), avg(rating * 1.0), "
                                      "sum(CASE WHEN rating >= 4 THEN 1 ELSE 0 END) "
                                      f"FROM incidents WHERE {WHERE}", **W48)
    assert b.satisfaction.count == count > 3
    assert b.satisfaction.mean == pytest.approx(float(mean))
    assert b.satisfaction.satisfied == happy

    pairs = sql(core, f"""SELECT i.received_at, min(e.at) FROM incidents i
                          JOIN incident_events e ON e.incident_id = i.id
                          WHERE i.{WHERE.replace(' AND ', ' AND i.')} AND e.to_state = 'verified'
                          GROUP BY i.id, i.received_at""", **W48)

    def ts(v):
        return datetime.fromisoformat(str(v))
    hours = [(ts(at) - ts(rec)).total_seconds() / 3600 for rec, at in pairs]
    assert b.handling_count == len(hours) > 5
    assert b.handling_hours == pytest.approx(sum(hours) / len(hours))


def test_thresholds_follow_the_deployments_alert_rules(world, tmp_path):
    core, seed = world
    rules = tmp_path / "rules.toml"
    rules.write_text("[mass_gathering]\npeople = 70\n\n[repeat_place]\ncount = 6\n")
    fake = type("C", (), {"settings": config.load(data_dir=tmp_path, alert_rules=str(rules))})
    th = flows.thresholds_of(fake)
    assert (th.mass_people, th.repeat_count) == (70, 6)
    with core.read() as s:
        b = data.period_brief(s, parse("week", "2026-W48", now=AFTER), now=AFTER, thresholds=th)
    assert seed.ids["crowd"] not in [m.id for m in b.majors] and b.majors_total == 2
    rep = sql(core, f"SELECT grid_code FROM incidents WHERE {WHERE} AND type IN "
                    "('dispute', 'petition') GROUP BY grid_code HAVING count(*) >= 6 "
                    "ORDER BY count(*) DESC, grid_code", **W48)
    assert [p.grid_code for p in b.repeats] == [r for (r,) in rep]
    rules.write_text("[mass_gathering]\npeople = -1\n")
    with pytest.raises(config.ConfigError, match="CMDCENTER_ALERT_RULES"):
        flows.thresholds_of(fake)


def test_the_rendered_brief_says_the_same_numbers(world):
    core, seed = world
    b = week_brief(core)
    text = render.to_markdown(compose.period_doc(b, _charts(b)))
    assert f"本期共接报各类事件 {b.total} 起，较上周（2026年第47周，{b.previous_total} 起）" in text
    assert f"有效事件 {b.valid} 起（合并 1 起、误报 1 起不计）" in text
    for r in b.by_type:
        assert f"| {r.label} | {r.current} | {r.previous} |" in text
    for r in b.by_township:
        assert f"| {r.label} | {r.current} | {r.previous} |" in text
    assert f"本期群体性事件及Ⅰ、Ⅱ级事件共 {b.majors_total} 起" in text
    assert "工地欠薪聚集" in text and "现场秩序恢复" in text and "已劝离，登记诉求" in text
    oc = b.overdue_counts
    assert f"未按时签收 {oc['ack']} 次、未按时办结 {oc['due']} 次" in text
    assert f"本期共发出预警 {b.alerts.total} 条" in text
    assert f"平均 {b.satisfaction.mean:.2f} 分" in text
    assert "2026年第48周（2026年11月23日—11月29日）" in text


def _charts(b):
    from command.briefing import charts

    return charts.period_charts(b)


# --- periods --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, text, key, start, end", [
    ("day", "2026-11-26", "2026-11-26", date(2026, 11, 26), date(2026, 11, 27)),
    ("week", "2026-11-26", "2026-W48", date(2026, 11, 23), date(2026, 11, 30)),
    ("week", "2026-W47", "2026-W47", date(2026, 11, 16), date(2026, 11, 23)),
    ("week", "2027-01-01", "2026-W53", date(2026, 12, 28), date(2027, 1, 4)),
    ("week", "2026w53", "2026-W53", date(2026, 12, 28), date(2027, 1, 4)),
    ("week", "2020-12-31", "2020-W53", date(2020, 12, 28), date(2021, 1, 4)),
    ("week", "2027-W01", "2027-W01", date(2027, 1, 4), date(2027, 1, 11)),
    ("month", "2026-11", "2026-11", date(2026, 11, 1), date(2026, 12, 1)),
    ("month", "2026-12-31", "2026-12", date(2026, 12, 1), date(2027, 1, 1)),
    ("month", "2024-02-10", "2024-02", date(2024, 2, 1), date(2024, 3, 1)),
])
def test_periods_parse(kind, text, key, start, end):
    p = parse(kind, text, now=datetime(2027, 6, 1, tzinfo=timezone.utc))
    assert (p.key, p.start, p.end) == (key, start, end)
    assert p.start_utc == datetime.combine(start, datetime.min.time(), SHANGHAI)
    assert p.end_utc.utcoffset() == timedelta(0)


def test_periods_defaults_previous_and_labels():
    now = local("2026-11-26 10:00")
    assert parse("day", None, now=now).key == "2026-11-25"
    assert parse("week", None, now=now).key == "2026-W47"
    assert parse("month", "", now=now).key == "2026-10"
    # just after local midnight on a Monday, the week that ended a minute ago
    assert parse("week", None, now=local("2026-11-30 00:01")).key == "2026-W48"
    assert parse("day", None, now=local("2027-01-01 00:00")).key == "2026-12-31"
    assert containing("week", date(2027, 1, 4)).previous().key == "2026-W53"
    assert containing("month", date(2027, 1, 15)).previous().key == "2026-12"
    assert containing("day", date(2027, 1, 1)).previous().key == "2026-12-31"
    assert containing("week", date(2026, 12, 30)).label == "2026年第53周（2026年12月28日—2027年1月3日）"
    assert containing("month", date(2026, 11, 3)).label == "2026年11月"


@pytest.mark.parametrize("kind, text, needle", [
    ("year", None, "period: one of day, week, month"),
    (None, None, "period: one of"),
    ("day", "2026-W47", "use YYYY-MM-DD"),
    ("day", "2026-11", "use YYYY-MM-DD"),
    ("month", "2026-W47", "YYYY-MM"),
    ("week", "2026-W54", "no such ISO week"),
    ("week", "2025-W53", "no such ISO week"),
    ("day", "2026-02-30", "no such day"),
    ("month", "2026-13", "no such month"),
    ("day", "yesterday", "use YYYY-MM-DD"),
    ("day", "2026-11-27", "has not begun"),
])
def test_periods_refuse_bad_input(kind, text, needle):
    with pytest.raises(DomainError) as info:
        parse(kind, text, now=local("2026-11-26 10:00"))
    assert needle in info.value.message


def test_iso_week_across_the_new_year_in_the_database(tmp_path):
    core = make_core(tmp_path / "data", at=local("2027-01-10 09:00"))
    try:
        seed = Seed(core)
        inside = [seed.report(t) for t in ("2026-12-28 00:00", "2026-12-31 23:59:59",
                                           "2027-01-01 00:00", "2027-01-03 23:59:59")]
        seed.report("2026-12-27 23:59:59")  # 2026-W52
        seed.report("2027-01-04 00:00")  # 2027-W01
        now = local("2027-01-10 09:00")
        with core.read() as s:
            week = data.period_brief(s, parse("week", "2027-01-02", now=now), now=now)
            dec = data.period_brief(s, parse("month", "2026-12", now=now), now=now)
        assert week.period.key == "2026-W53" and week.total == len(inside)
        assert week.previous.key == "2026-W52" and week.previous_total == 1
        assert [n for _, n in week.trend] == [1, 0, 0, 1, 1, 0, 1]
        assert dec.total == 3 and [label for label, _ in dec.trend][-1] == "12/31"
    finally:
        core.close()


def test_a_running_period_is_compared_with_the_same_span_before(tmp_path):
    core = make_core(tmp_path / "data", at=local("2026-11-26 12:00"))
    try:
        seed = Seed(core)
        seed.report("2026-11-19 11:00")  # last Thursday, before noon: compared
        seed.report("2026-11-19 13:00")  # after noon: not yet comparable
        seed.report("2026-11-26 09:00")
        now = local("2026-11-26 12:00")
        with core.read() as s:
            b = data.period_brief(s, parse("week", "2026-11-26", now=now), now=now)
        assert b.partial and b.as_of == now and (b.total, b.previous_total) == (1, 1)
        assert len(b.trend) == 4  # Monday to Thursday
        doc = compose.period_doc(b, [charts_stub(k) for k in ("trend", "types", "townships",
                                                              "satisfaction")])
        assert "本期尚未结束" in doc.meta[1] and "较上周同期（2026年第47周，1 起）持平" in \
            doc.blocks[1].text
    finally:
        core.close()


def charts_stub(key):
    from command.briefing.charts import Chart

    return Chart(key, key, b"\x89PNG\r\n\x1a\n")


# --- 专报 / 续报 -----------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    core = make_core(tmp_path / "data", url, at=local("2026-11-26 10:00"))
    yield core, Seed(core)
    core.close()


def test_special_report_then_follow_ups_with_what_changed(fresh):
    core, seed = fresh
    t = local("2026-11-26 09:00")
    iid = seed.report("2026-11-26 09:00", type="mass", severity=2, people=60,
                      grid="DEMO-T02-G03", title="讨薪聚集")
    seed.at(t + timedelta(minutes=20))
    first = flows.make_incident(core, incident_id=iid, fmt="md", by="duty")
    assert first.path.parent == Path(core.settings.data_dir) / "reports"
    assert first.path.name == f"incident-{iid}-zb.md" and first.download_name.endswith("（专报）.md")
    text = first.content.decode()
    assert "社会治理事件专报" in text and "讨薪聚集" in text and "60 人" in text
    assert "尚未下达指令" in text and "未达" not in text

    # asking again with nothing new gives the same 专报, not a 续报
    again = flows.make_incident(core, incident_id=iid, fmt="html", by="duty")
    assert again.path.name == f"incident-{iid}-zb.html"

    (node,) = seed.issue(iid, ["DEMO-T02"], t + timedelta(minutes=30))["nodes"]
    seed.act(node["id"], "ack", T02, t + timedelta(minutes=35))
    seed.act(node["id"], "progress", T02, t + timedelta(minutes=50), note="已到场，人员情绪稳定")
    seed.at(t + timedelta(hours=1))
    second = flows.make_incident(core, incident_id=iid, fmt="md", by="leader")
    text = second.content.decode()
    assert second.path.name == f"incident-{iid}-xb01.md"
    assert "续报（第1次）" in text and "新进展（自上次报告 2026-11-26 09:20 以来）" in text
    assert "事件状态由「上报」变为「派遣」" in text
    assert "新下达指令：立即到场调处（承办：东城街道）" in text
    assert "11-26 09:35 东城街道已签收（t02）。" in text
    assert "11-26 09:50 东城街道处置中（t02）：已到场，人员情绪稳定。" in text

    seed.act(node["id"], "complete", T02, t + timedelta(hours=2), result="已协调支付工资")
    seed.at(t + timedelta(hours=3))
    third = flows.make_incident(core, incident_id=iid, fmt="docx", by="leader")
    assert third.path.name == f"incident-{iid}-xb02.docx"
    import docx

    body = "\n".join(p.text for p in docx.Document(io.BytesIO(third.content)).paragraphs)
    assert "续报（第2次）" in body and "东城街道已办结（t02）：已协调支付工资。" in body
    assert "事件状态由「派遣」变为「反馈」。" in body and "已到场" not in body.split("三、")[0]
    with core.read() as s:
        numbers = s.execute(sa.text("SELECT number, generated_by FROM incident_briefs "
                                    "ORDER BY number")).all()
    assert [tuple(r) for r in numbers] == [(0, "duty"), (1, "leader"), (2, "leader")]


def test_minor_incidents_get_a_report_with_a_note_and_unknown_ids_are_refused(fresh):
    core, seed = fresh
    iid = seed.report("2026-11-26 08:00", severity=4, title="邻里噪音")
    made = flows.make_incident(core, incident_id=iid, fmt="md", by="duty")
    text = made.content.decode()
    assert "Ⅳ级（一般）矛盾纠纷，未达Ⅰ、Ⅱ级或群体性事件（30 人及以上）的专报标准" in text
    with pytest.raises(NotFound):
        flows.make_incident(core, incident_id="nope", fmt="md", by="duty")


# --- formats ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def week_doc(world):
    core, _ = world
    b = week_brief(core)
    return compose.period_doc(b, _charts(b))


def test_charts_are_png_in_a_cjk_font(week_doc):
    from command.briefing import charts

    images = [blk for blk in week_doc.blocks if isinstance(blk, compose.Image)]
    assert len(images) == 4 and all(i.png.startswith(b"\x89PNG\r\n\x1a\n") for i in images)
    assert "CJK" in charts.cjk_font() or "Hei" in charts.cjk_font()


def test_html_is_self_contained(week_doc):
    page = render.to_html(week_doc)
    assert page.count('src="data:image/png;base64,') == 4
    assert not re.search(r"https?://", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert '<html lang="zh-CN">' in page and "本期共接报各类事件" in page


def test_markdown_keeps_images_at_the_end(week_doc):
    text = render.to_markdown(week_doc)
    assert text.startswith("# 演示县社会治理情况周报\n")
    assert "![图1 事件数量走势（按日）][trend]" in text
    assert text.count("data:image/png;base64,") == 4
    assert not re.search(r"https?://", text)


def test_docx_opens_with_tables_and_pictures(week_doc):
    import docx

    content = render.to_docx(week_doc)
    document = docx.Document(io.BytesIO(content))
    assert len(document.inline_shapes) == 4
    assert len(document.tables) >= 8
    assert document.paragraphs[0].text == "演示县社会治理情况周报"
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        assert sum(1 for n in z.namelist() if n.startswith("word/media/")) == 4
        assert "仿宋" in z.read("word/styles.xml").decode()


def test_pdf_has_pages_and_embeds_a_cjk_font(week_doc):
    if render.find_browser() is None:
        pytest.skip("no Chromium: `apt-get install chromium fonts-noto-cjk` (make test does)")
    pdf = render.render(week_doc, "pdf")
    assert pdf.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert pages >= 3
    assert re.search(rb"NotoSansCJK|NotoSerifCJK|SourceHanSans|WenQuanYi", pdf)  # CJK embedded


def test_unknown_format_and_missing_browser_are_clear(week_doc, monkeypatch):
    with pytest.raises(DomainError) as info:
        flows.check_format("rtf")
    assert "format: one of html, md, pdf, docx" in info.value.message
    monkeypatch.setattr(render, "find_browser", lambda: None)
    with pytest.raises(render.RendererMissing) as info:
        render.render(week_doc, "pdf")
    assert "apt-get install chromium" in info.value.message


# --- the command line -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seeded_dir(tmp_path_factory):
    """A SQLite data dir with the two weeks seeded, for the CLI and the server."""
    folder = tmp_path_factory.mktemp("brief-cli") / "data"
    core = make_core(folder)
    seed = seed_weeks(core)
    core.close()
    return folder, seed


def test_cli_writes_under_reports_and_prints_the_path_last(seeded_dir, tmp_path):
    folder, seed = seeded_dir
    out = servers.cli("brief", "--period", "week", "--date", "2026-W48", "--format", "md",
                      data_dir=folder)
    path = Path(out.stdout.strip().splitlines()[-1])
    assert path.parent == (folder / "reports").resolve() and path.exists()
    assert path.name.startswith("brief-week-2026-W48-") and path.suffix == ".md"
    core = make_core(folder)
    try:
        total = week_brief(core).total
    finally:
        core.close()
    assert f"本期共接报各类事件 {total} 起" in path.read_text(encoding="utf-8")

    target = tmp_path / "x" / "meeting.docx"
    out = servers.cli("brief", "--period", "month", "--date", "2026-11", "--format", "docx",
                      "--out", str(target), data_dir=folder)
    assert out.stdout.strip().splitlines()[-1] == str(target.resolve())
    assert target.read_bytes().startswith(b"PK")

    # (the CLI runs on the real clock: a day of the seeded week that has begun by now)
    out = servers.cli("brief", "--period", "day", "--date", "2026-11-23", "--format", "html",
                      "--out", str(tmp_path), data_dir=folder)
    path = Path(out.stdout.strip().splitlines()[-1])
    assert path.parent == tmp_path.resolve() and path.name.startswith("brief-day-2026-11-23-")

    out = servers.cli("brief", "--incident", seed.ids["fire"], data_dir=folder)
    path = Path(out.stdout.strip().splitlines()[-1])
    assert path.name == f"incident-{seed.ids['fire']}-zb.html"
    assert "仓库火情" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("args, needle", [
    (("--period", "year"), "period: one of day, week, month"),
    (("--period", "week", "--date", "2026-W60"), "no such ISO week"),
    (("--period", "day", "--date", "2999-01-01"), "has not begun"),
    (("--period", "day", "--format", "rtf"), "format: one of"),
    (("--incident", "no-such-id"), "no incident 'no-such-id'"),
    (("--incident", "x", "--date", "2026-11-01"), "--date goes with --period"),
    ((), "give --period day|week|month, or --incident ID"),
    (("--period", "week", "--incident", "x"), "give --period"),
])
def test_cli_mistakes_are_one_line(tmp_path, args, needle):
    out = servers.cli("brief", *args, data_dir=tmp_path / "data", check=False)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cmdcenter: error:") and needle in lines[0]
    if "incident" not in needle and "no incident" not in needle:
        assert not (tmp_path / "data").exists()  # refused before the data dir was touched


# --- the web endpoint -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def brief_server(seeded_dir):
    folder, seed = seeded_dir
    srv = servers.Server(folder, servers.free_port(), {"CMDCENTER_LOG": "WARNING"}).start()
    tokens = {}
    for name, role, unit in (("duty1", "duty", None), ("leader1", "leader", None),
                             ("admin1", "admin", None), ("town1", "township", "DEMO-T02"),
                             ("grid1", "grid", "DEMO-T02-G03"), ("police1", "dept", "dept.police")):
        tokens[role] = srv.add_user(name, role, unit)
    yield srv, tokens, seed
    srv.stop()


def _get(srv, token, query):
    import requests

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{srv.url}/api/v1/briefs?{query}", headers=headers, timeout=120)


@pytest.mark.parametrize("role, status", [("duty", 200), ("leader", 200), ("admin", 200),
                                          ("township", 403), ("grid", 403), ("dept", 403),
                                          (None, 401)])
def test_web_brief_by_role(brief_server, role, status):
    srv, tokens, _ = brief_server
    r = _get(srv, tokens.get(role), "period=week&date=2026-W48&format=md")
    assert r.status_code == status, r.text
    if status == 200:
        disposition = r.headers["Content-Disposition"]
        assert disposition.startswith("attachment;") and "brief-week-2026-W48-" in disposition
        assert "filename*=UTF-8''" in disposition
        assert r.headers["Content-Type"].startswith("text/markdown")
        assert "本期共接报各类事件" in r.content.decode()
        saved = list((srv.data_dir / "reports").glob("brief-week-2026-W48-*.md"))
        assert saved


def test_web_incident_brief_and_errors(brief_server):
    srv, tokens, seed = brief_server
    r = _get(srv, tokens["leader"], f"incident={seed.ids['mass']}&format=docx")
    assert r.status_code == 200 and r.content.startswith(b"PK")
    assert r.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert (srv.data_dir / "reports" / f"incident-{seed.ids['mass']}-zb.docx").exists()
    r = _get(srv, tokens["leader"], "incident=nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    for query, needle in (("period=year", "period"), ("period=week&date=2026-W99", "ISO week"),
                          ("period=week&format=rtf", "format"), ("", "period"),
                          ("period=week&incident=x", "either")):
        r = _get(srv, tokens["duty"], query)
        assert r.status_code == 422 and needle in r.json()["error"]["message"], (query, r.text)
