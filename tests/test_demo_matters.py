"""The demo's matters at the window (command.demo.matters): every channel, every outcome, routes
and returns, sessions, follow-ups and a reopening, open matters near and past their limit, repeat
parties, fictitious numbers with right check characters in the one unassigned region, written
through the services (consistent timelines, seqs, orders, audit), deterministic, idempotent."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from command import config
from command.alerts.models import alerts
from command.bus import InProcessBus
from command.clock import SHANGHAI, FixedClock
from command.core import Core
from command.demo import matters as demo
from command.incidents import workflow
from command.incidents.events import incident_events
from command.incidents.models import incidents
from command.matters import agreement, clock, related, service
from command.matters.categories import CHANNEL_LABELS
from command.matters.handling import RESULT_LABELS
from command.matters.identity import credit_code_error, id_number_error
from command.matters.models import audit, matter_events, matter_parties, matter_sessions, matters
from command.orders.models import order_nodes
from command.users.principal import Principal

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # 10:00 on a Thursday in Shanghai
DESK = Principal("desk", "desk")


def make_core(tmp_path, now=NOW) -> Core:
    return Core(config.load(data_dir=tmp_path / "data"), clock=FixedClock(now),
                bus=InProcessBus())


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    core = make_core(tmp_path_factory.mktemp("matters"))
    summary = demo.seed_matters(core, now=NOW, strict=True)
    yield core, summary
    core.close()


def _demo_rows(session) -> list[dict]:
    mine = sa.or_(matters.c.idempotency_key.like(demo.KEY_PREFIX + "%"),
                  incidents.c.source_id.like(demo.KEY_PREFIX + "%"))
    return [dict(r) for r in session.execute(
        sa.select(matters, incidents.c.channel, incidents.c.type, incidents.c.category,
                  incidents.c.status, incidents.c.title, incidents.c.township_code,
                  incidents.c.seq, incidents.c.received_at)
        .join(incidents, incidents.c.id == matters.c.incident_id).where(mine)).mappings()]


def test_every_planned_matter_is_stored_without_a_refused_step(seeded):
    core, summary = seeded
    assert summary.failed == [] and summary.skipped == 0
    assert summary.added == summary.planned >= 55 and summary.steps > 5 * summary.planned
    with core.read() as s:
        rows = _demo_rows(s)
    assert len(rows) == summary.planned
    assert all(NOW - timedelta(days=demo.DAYS + 1) <= r["registered_at"] <= NOW for r in rows)


def test_every_channel_with_plausible_categories(seeded):
    core, _summary = seeded
    with core.read() as s:
        rows = _demo_rows(s)
    assert set(Counter(r["channel"] for r in rows)) == set(CHANNEL_LABELS)
    assert all(r["category"] for r in rows) and all(r["title"] for r in rows)
    window = [r for r in rows if r["channel"] not in ("grid", "feed")]
    assert all(r["summary"] and r["request"] for r in window)
    by_type = {(r["type"], r["category"]) for r in rows}
    assert ("dispute", "labour") in by_type and ("petition", "land_acquisition") in by_type
    assert len({r["township_code"] for r in rows}) >= 8
    # rural categories in 镇/乡, urban ones in 街道
    names = {}
    with core.read() as s:
        locator = core.units.current(s)
    for r in rows:
        names.setdefault(r["category"], []).append(locator.unit(r["township_code"])["name"])
    assert all(not n.endswith("街道") for n in names.get("forest_land", []))


def test_routes_tiers_assists_returns_and_sign_offs(seeded):
    core, _summary = seeded
    with core.read() as s:
        rows = _demo_rows(s)
        ids = [r["incident_id"] for r in rows]
        nodes = s.execute(sa.select(order_nodes).where(order_nodes.c.incident_id.in_(ids),
                                                       order_nodes.c.role.isnot(None))
                          ).mappings().all()
        events = s.execute(sa.select(matter_events).where(matter_events.c.incident_id.in_(ids))
                           ).mappings().all()
        audits = s.execute(sa.select(audit.c.action)).scalars().all()
        leaders = s.execute(sa.text("SELECT name FROM users WHERE role = 'leader'")).scalars()
        leaders = set(leaders)
    tiers = Counter(r["tier"] for r in rows)
    assert tiers["simple"] and tiers["complex"] and tiers["difficult"]
    assert all(r["owner"] in leaders for r in rows if r["tier"] == "difficult")
    targets = {n["target_code"] for n in nodes}
    assert any(t.startswith("dept.") for t in targets)
    assert any(t.startswith("DEMO-T") and "-G" not in t for t in targets)
    assert any("-G" in t for t in targets)  # a grid leads a simple one
    assert Counter(n["role"] for n in nodes)["assist"] >= 3
    kinds = Counter(e["kind"] for e in events)
    assert kinds["return"] >= 2 and kinds["sign_off"] > 30 and "return" in audits
    returned = {e["incident_id"] for e in events if e["kind"] == "return"}
    rerouted = [i for i in returned
                if sum(1 for e in events if e["incident_id"] == i and e["kind"] == "route") > 1]
    assert rerouted, "a returned matter routed again"
    assert kinds["extend"] == 1


def test_sessions_outcomes_agreements_confirmations_followups(seeded):
    core, _summary = seeded
    with core.read() as s:
        rows = _demo_rows(s)
        ids = [r["incident_id"] for r in rows]
        sessions = s.execute(sa.select(matter_sessions).where(
            matter_sessions.c.incident_id.in_(ids))).mappings().all()
    assert len(sessions) >= 40
    assert all(json.loads(x["mediators"]) and json.loads(x["attendees"]) for x in sessions)
    results = Counter(r["result"] for r in rows if r["result"])
    assert set(results) == set(RESULT_LABELS), results
    agreed = [r for r in rows if r["result"] == "agreed"]
    assert all(r["terms"] and r["perform_by"] for r in agreed)
    assert any(r["agreed_amount"] for r in agreed)
    assert all(r["guided_to"] for r in rows if r["result"] == "not_agreed")
    assert {"requested", "granted", "refused"} <= {r["confirmation"] for r in rows}
    satisfaction = Counter(r["satisfaction"] for r in rows if r["satisfaction"])
    assert satisfaction["satisfied"] > satisfaction["basic"] > 0
    reopened = [r for r in rows if r["reopened"]]
    assert len(reopened) == 1 and reopened[0]["satisfaction"] == "satisfied"  # followed up again
    closures = Counter(r["closure"] for r in rows if r["closure"])
    assert closures["on_the_spot"] >= 3 and closures["not_accepted"] == 1
    assert any(r["closure"] == "on_the_spot" and r["channel"] == "grid" for r in rows)
    assert Counter(r["status"] for r in rows)["closed"] > len(rows) / 2


def test_the_agreement_document_comes_from_the_recorded_facts(seeded):
    import docx

    core, _summary = seeded
    with core.read() as s:
        row = next(r for r in _demo_rows(s) if r["result"] == "agreed" and r["agreed_amount"])
        record = service.record(s, row["case_no"], by=DESK, locator=core.units.current(s),
                                now=NOW)
        content = agreement.document(s, record, keyring=core.keyring)
    text = "\n".join(p.text for p in docx.Document(io.BytesIO(content)).paragraphs)
    assert "人民调解协议书" in text and row["terms"].split("；")[0] in text


def test_queues_and_clocks_are_alive_at_now(seeded):
    core, _summary = seeded
    with core.read() as s:
        locator = core.units.current(s)
        counts = clock.counts(s, now=NOW, rules=core.matter_rules)
        work = service.worklist(s, by=DESK, locator=locator, now=NOW, rules=core.matter_rules)
        live = s.execute(sa.select(alerts.c.rule, alerts.c.level).where(
            alerts.c.status == "open")).all()
        raised = s.execute(sa.select(alerts.c.rule, alerts.c.status)).all()
        queue = s.execute(sa.select(sa.func.count()).select_from(matters).join(
            incidents, incidents.c.id == matters.c.incident_id).where(
            matters.c.routed_at.is_(None), matters.c.closure.is_(None),
            incidents.c.status.in_(("reported", "accepted")))).scalar()
    assert counts["near"] >= 2 and counts["overdue"] >= 3  # a petition's 受理告知 too
    assert queue >= 3  # new matters waiting at the window
    assert len(work["returned"]) == 1
    states = Counter(m["clock"]["state"] for m in work["near"])
    assert states["near"] >= 2 and states["overdue"] >= 2
    today = NOW.astimezone(SHANGHAI).date()
    due_today = [m for m in work["followups_due"]
                 if datetime.fromisoformat(m["followup_due_at"]).date() == today]
    assert len(due_today) >= 2
    assert ("matter_overdue", "yellow") in live and ("matter_overdue", "orange") in live
    assert ("confirmation_window", "yellow") in live
    assert ("matter_overdue", "resolved") in raised  # concluded late: its 督办 ended


def test_repeat_parties_are_flagged_and_alerted_without_id_numbers(seeded):
    core, _summary = seeded
    with core.read() as s:
        rows = {r["incident_id"]: r for r in _demo_rows(s)}
        repeat = s.execute(sa.select(alerts.c.level, alerts.c.message).where(
            alerts.c.rule == "repeat_party")).all()
        hashes = Counter(h for h in s.execute(sa.select(matter_parties.c.id_number_hash).where(
            matter_parties.c.incident_id.in_(list(rows)), matter_parties.c.role == "applicant",
            matter_parties.c.id_number_hash.isnot(None))).scalars())
        frequent = hashes.most_common(1)[0]
        some = s.execute(sa.select(matter_parties.c.incident_id).where(
            matter_parties.c.id_number_hash == frequent[0])).scalars().first()
        record = service.record(s, rows[some]["case_no"], by=DESK,
                                locator=core.units.current(s), now=NOW)
        reasons = Counter(x["reason"] for i in rows for x in related.related(s, i))
    assert frequent[1] >= 5
    assert {level for level, _m in repeat} == {"yellow", "orange"}
    assert sum(1 for level, _m in repeat if level == "yellow") >= 2
    assert any("有限公司" in m for _l, m in repeat)  # an organisation, by credit code
    assert all(demo.REGION not in m for _l, m in repeat)
    applicant = next(p for p in record["parties"] if p["role"] == "applicant")
    assert applicant["repeat"] and applicant["matters_12m"] >= 5
    assert reasons["same_party"] >= 10 and reasons["possibly_same_party"] >= 1


def test_fictitious_numbers_in_the_one_unassigned_region(seeded):
    core, _summary = seeded
    assert demo.REGION[:2] not in {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32",
                                   "33", "34", "35", "36", "37", "41", "42", "43", "44", "45",
                                   "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
                                   "65", "71", "81", "82"}  # GB/T 2260 province codes
    with core.read() as s:
        parties = s.execute(sa.select(matter_parties)).mappings().all()
    people = [p for p in parties if p["id_number_enc"]]
    orgs = [p for p in parties if p["credit_code"]]
    assert len(people) > 60 and len(orgs) > 10
    for p in people:
        number = core.keyring.decrypt(p["id_number_enc"])
        assert number.startswith(demo.REGION) and p["id_number_masked"].startswith(demo.REGION)
        assert id_number_error(number, today=NOW.date()) is None
    for p in orgs:
        code = p["credit_code"]
        assert credit_code_error(code) is None and code[2:8] == demo.REGION
    assert demo.org_code("12345678") == "12345678" + demo.org_code("12345678")[-1]


def test_timelines_and_seqs_are_what_the_services_write(seeded):
    core, _summary = seeded
    with core.read() as s:
        rows = _demo_rows(s)
        ids = [r["incident_id"] for r in rows]
        lines: dict[str, list] = {}
        for e in s.execute(sa.select(incident_events).where(
                incident_events.c.incident_id.in_(ids)).order_by(incident_events.c.id)):
            lines.setdefault(e.incident_id, []).append(e)
    seqs = [r["seq"] for r in rows]
    assert len(set(seqs)) == len(seqs)
    for r in rows:
        timeline = lines[r["incident_id"]]
        assert [e.at for e in timeline] == sorted(e.at for e in timeline)
        assert timeline[-1].to_state == r["status"]
        for a, b in zip(timeline, timeline[1:]):
            assert a.to_state == b.from_state
        if r["channel"] == "feed":
            assert timeline[0].from_state == "reported"
    # the latest change of a matter comes last in seq order, as a live window would see them
    latest = sorted(rows, key=lambda r: r["seq"])
    last_at = [max(e.at for e in lines[r["incident_id"]]) for r in latest]
    assert last_at[-1] == max(last_at)
    assert all(r["status"] in workflow.STATE_LABELS for r in rows)


def test_a_second_run_adds_nothing_and_the_plan_is_seeded(seeded, tmp_path):
    core, summary = seeded
    with core.read() as s:
        before = s.execute(sa.select(sa.func.count()).select_from(matters)).scalar()
    again = demo.seed_matters(core, now=NOW + timedelta(days=1))
    assert again.added == 0 and again.skipped == summary.planned and again.steps == 0
    with core.read() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(matters)).scalar() == before
        world = demo._World(s, core.units.current(s), seed=0)
    plans = [[(m.key, m.channel, m.kind.title, m.parties[0]["name"],
               [(t, n) for t, n, _a in m.steps])
              for m in demo._Planner(world, seed=seed, now=NOW, rules=core.matter_rules).plan()]
             for seed in (0, 0, 1)]
    assert plans[0] == plans[1] != plans[2]


def test_the_demo_seeds_matters_after_its_history_once(tmp_path):
    from command.demo.feeds import ensure_demo_history, ensure_demo_matters

    core = make_core(tmp_path)
    try:
        assert ensure_demo_history(core, weeks=1, now=NOW)
        line = ensure_demo_matters(core, now=NOW)
        assert line.startswith("cmdcenter: demo matters at the window:")
        assert ensure_demo_matters(core, now=NOW) is None
        with core.read() as s:
            feed_rows = s.execute(sa.select(sa.func.count()).select_from(matters).where(
                matters.c.limit_days.is_(None), matters.c.closure.is_(None))).scalar()
        assert feed_rows == 0  # the history's matters carry their legal clocks
    finally:
        core.close()


@pytest.mark.postgres
def test_the_same_story_on_postgresql(tmp_path, postgres_server_url):
    import uuid

    schema = "t_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(postgres_server_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in postgres_server_url else "?"
    url = f"{postgres_server_url}{sep}options=-csearch_path%3D{schema}"
    core = Core(config.load(data_dir=tmp_path / "data", database_url=url),
                clock=FixedClock(NOW), bus=InProcessBus())
    try:
        summary = demo.seed_matters(core, now=NOW, strict=True)
        assert summary.failed == [] and summary.added == summary.planned
        with core.read() as s:
            rows = _demo_rows(s)
        assert set(r["channel"] for r in rows) == set(CHANNEL_LABELS)
        assert set(r["result"] for r in rows if r["result"]) == set(RESULT_LABELS)
        assert demo.seed_matters(core, now=NOW).added == 0
    finally:
        core.close()
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


def test_the_command_line_seeds_them_once(tmp_path):
    from tests import servers

    out = servers.cli("seed-history", "--weeks", "1", "--matters", data_dir=tmp_path)
    line = out.stdout.strip().splitlines()[-1]
    assert line.startswith("demo matters at the window:"), out.stdout
    assert int(line.split(": ")[1].split()[0]) >= 55
    again = servers.cli("seed-history", "--weeks", "1", "--matters", data_dir=tmp_path)
    assert "demo matters at the window: 0 added" in again.stdout


def test_a_start_at_night_keeps_every_channel_and_what_is_due(seeded):
    core, _summary = seeded
    night = datetime(2026, 11, 28, 17, 30, tzinfo=UTC)  # Sunday 01:30 in Shanghai
    with core.read() as s:
        world = demo._World(s, core.units.current(s), seed=0)
    plan = demo._Planner(world, seed=0, now=night, rules=core.matter_rules)
    plan.leaders = ("leader",)
    matters_ = plan.plan()
    assert {m.channel for m in matters_} == set(CHANNEL_LABELS)
    queue = [m for m in matters_ if m.fate == "queue"]
    assert {m.channel for m in queue} <= {"phone", "online"}
    for m in matters_:
        lead, chain = None, []
        for t, name, args in m.steps:  # the lead's story in order (assists work beside it)
            lead = args["lead"] if name == "route" else lead
            if name not in ("ack", "progress") or args.get("unit") == lead:
                chain.append(t)
        assert chain == sorted(chain) and chain[0] <= night, m.key
