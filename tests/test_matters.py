"""Matters at the window (command.matters) on SQLite and PostgreSQL: registration, case numbers,
parties kept private, reveal and audit, search, corrections, closures, scope, the migration."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from command import config, keys
from command.bus import InProcessBus
from command.clock import FixedClock
from command.core import Core
from command.errors import DomainError, Forbidden
from command.incidents import service as incidents_service
from command.incidents.models import incidents
from command.matters import service
from command.matters.identity import fictitious_id_number
from command.matters.models import audit, matter_parties, matters
from command.orders import service as orders
from command.users.principal import Principal
from tests import test_loop
from tests.test_loop import ADMIN, DUTY, G01, LEADER, NOW, T01, T02, make_incident

core = test_loop.core
DESK = Principal("clerk", "desk")
ID_A = "11010519491231002X"  # the example of GB 11643
PHONE_A = "13812341234"
CREDIT = "91350100M000100Y43"


def body(**change) -> dict:
    raw = {"type": "dispute", "category": "劳资纠纷", "title": "讨要工资", "grid": "DEMO-T01-G01",
           "summary": "务工三个月工资未结清", "request": "支付拖欠工资", "people": 3,
           "amount": 12000.5, "risk": "medium",
           "parties": [{"role": "applicant", "kind": "person", "name": "张三", "id_number": ID_A,
                        "phone": PHONE_A, "address": "东关社区"},
                       {"role": "被申请人", "kind": "单位", "name": "某建筑公司",
                        "credit_code": CREDIT}]}
    raw.update(change)
    return raw


def register(core: Core, raw: dict | None = None, by: Principal = DESK, **kw):
    with core.write() as s, s.begin():
        return service.register(s, raw if raw is not None else body(), by=by,
                                keyring=core.keyring, locator=core.units.current(s),
                                now=core.clock.now(), rules=core.matter_rules, **kw)


def read(core: Core, case_no: str, by: Principal = DESK) -> dict:
    with core.read() as s:
        return service.record(s, case_no, by=by, locator=core.units.current(s),
                              now=core.clock.now(), rules=core.matter_rules)


def call(core: Core, fn, *args, **kw):
    with core.write() as s, s.begin():
        return fn(s, *args, **kw)


def test_registration_gives_a_case_number_and_a_masked_record(core):
    record, changes = register(core)
    assert re.fullmatch(r"DEMO-2026-\d{6}", record["case_no"])
    assert record["status"] == "accepted" and record["channel"] == "visit"
    assert (record["category"], record["category_label"]) == ("labour", "劳资纠纷")
    assert record["approximate"] is True  # placed by grid only
    assert record["feed"] is None and record["amount"] == 12000.5
    applicant, company = record["parties"]
    assert applicant["id_number"] == "110105********002X" and applicant["phone"] == "138****1234"
    assert company["role"] == "respondent" and company["kind"] == "org"
    assert company["credit_code"] == CREDIT
    assert [(line["kind"], line.get("to")) for line in record["timeline"]] == [
        ("register", None), ("state", "accepted")]
    (published,) = changes.incidents
    assert published["case_no"] == record["case_no"] and published["seq"] == record["seq"]


def test_case_numbers_count_per_year_and_every_matter_door_gets_one(core):
    first, _ = register(core)
    fed = make_incident(core)  # a dispute a feed sent is a matter too
    second, _ = register(core)
    numbers = [int(n.rsplit("-", 1)[1]) for n in (first["case_no"], fed["case_no"],
                                                   second["case_no"])]
    assert numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2]
    with core.read() as s:
        assert s.execute(sa.select(matters.c.case_no).where(
            matters.c.incident_id == fed["id"])).scalar_one() == fed["case_no"]
    core.clock = FixedClock(datetime(2026, 12, 31, 16, 30, tzinfo=UTC))  # 2027-01-01 in China
    new_year, _ = register(core, body(occurred_at="2026-12-31T23:00:00+08:00"))
    assert new_year["case_no"] == "DEMO-2027-000001"


def test_other_types_have_no_case_number_and_feeds_may_send_a_category(core):
    (out,) = core.ingest.submit(_feed(core), {
        "id": "e-1", "type": "emergency", "occurred_at": "2026-11-26T09:30:00+08:00",
        "lon": 120.2, "lat": 30.05, "title": "火情", "category": "labour"})
    assert out.incident["case_no"] is None and out.incident["category"] is None
    assert out.incident["approximate"] is False and out.incident["channel"] == "feed"
    (out,) = core.ingest.submit(_feed(core), {
        "id": "d-1", "type": "矛盾纠纷", "occurred_at": "2026-11-26T09:30:00+08:00",
        "grid": "DEMO-T01-G03", "title": "宅基地纠纷", "category": "房屋宅基地"})
    assert out.incident["category"] == "housing" and out.incident["case_no"]
    assert out.incident["approximate"] is True


def test_personal_numbers_are_encrypted_at_rest(core):
    record, _ = register(core)
    with core.read() as s:
        row = s.execute(sa.select(matter_parties).where(
            matter_parties.c.incident_id == record["id"], matter_parties.c.position == 0)).first()
    assert ID_A not in str(tuple(row)) and PHONE_A not in str(tuple(row))
    assert core.keyring.decrypt(row.id_number_enc) == ID_A
    if core.engine.dialect.name == "sqlite":
        core.engine.dispose()  # checkpoint the WAL into the file
        data = b"".join(p.read_bytes() for p in core.settings.data_dir.iterdir() if p.is_file()
                        and p.name != keys.KEY_FILE)
        assert ID_A.encode() not in data and PHONE_A.encode() not in data
        assert "张三".encode() in data  # the name is not encrypted: it is what the file shows


def test_reveal_by_role_and_audited(core):
    record, _ = register(core)
    case_no = record["case_no"]
    ask = {"party": 0, "field": "id_number", "reason": "核实身份"}
    for who in (DESK, DUTY):
        got = call(core, service.reveal, case_no, ask, by=who, keyring=core.keyring,
                   now=core.clock.now())
        assert got == {"party": 0, "field": "id_number", "value": ID_A}
    for who in (LEADER, ADMIN, T01, G01):
        with pytest.raises(Forbidden):
            call(core, service.reveal, case_no, ask, by=who, keyring=core.keyring,
                 now=core.clock.now())
    # the unit handling the matter (holding an order node of it) may
    with core.write() as s, s.begin():
        orders.create_order(s, incident_id=record["id"], targets=["DEMO-T01"], instruction="调处",
                            by=LEADER, now=core.clock.now(), locator=core.units.current(s))
    got = call(core, service.reveal, case_no, {**ask, "field": "phone"}, by=T01,
               keyring=core.keyring, now=core.clock.now())
    assert got["value"] == PHONE_A
    with pytest.raises(Forbidden):
        call(core, service.reveal, case_no, ask, by=T02, keyring=core.keyring,
             now=core.clock.now())
    with pytest.raises(DomainError) as info:
        call(core, service.reveal, case_no, {"party": 0, "field": "phone"}, by=DESK,
             keyring=core.keyring, now=core.clock.now())
    assert (info.value.code, info.value.field) == ("missing_field", "reason")
    with core.read() as s:
        trail = service.audit_trail(s, case_no)["items"]
    assert [(a["by"], a["action"], a["party"], a["field"], a["reason"]) for a in trail] == [
        ("clerk", "reveal", 0, "id_number", "核实身份"), ("duty", "reveal", 0, "id_number", "核实身份"),
        ("t01", "reveal", 0, "phone", "核实身份")]


def test_search_by_id_number_credit_code_phone_and_words(core):
    first, _ = register(core)
    other = body(title="邻里噪音", parties=[{"role": "applicant", "kind": "person", "name": "李四",
                                             "phone": "+86 138-1234-1234"}])
    second, _ = register(core, other)

    def search(query, by=DESK):
        with core.read() as s:
            return service.search(s, query, by=by, keyring=core.keyring,
                                  locator=core.units.current(s))
    found = search({"id_number": ID_A.lower()})
    assert [i["case_no"] for i in found["items"]] == [first["case_no"]]
    assert found["reason"] == "same_party"
    assert found["items"][0]["parties"][0]["id_number"] == "110105********002X"
    assert [i["case_no"] for i in search({"credit_code": CREDIT})["items"]] == [first["case_no"]]
    by_phone = search({"phone": PHONE_A})
    assert {i["case_no"] for i in by_phone["items"]} == {first["case_no"], second["case_no"]}
    assert by_phone["reason"] == "possibly_same_party"
    assert [i["case_no"] for i in search({"q": "噪音"})["items"]] == [second["case_no"]]
    assert [i["case_no"] for i in search({"q": first["case_no"]})["items"]] == [first["case_no"]]
    assert search({"id_number": fictitious_id_number("999999", datetime(1990, 1, 1).date(), 7)}
                  )["items"] == []
    assert search({"q": "噪音"}, by=T02)["items"] == []  # outside its township
    with pytest.raises(DomainError):
        search({"q": "x", "phone": "1"})


def test_closures_at_the_window(core):
    refused, _ = register(core, body(closure="not_accepted",
                                     note="属于劳动仲裁受理范围，请到县劳动人事争议仲裁院申请"))
    assert refused["status"] == "closed" and refused["closure"] == "not_accepted"
    assert refused["closure_label"] == "不予受理" and refused["closure_note"].startswith("属于")
    assert [line.get("to") for line in refused["timeline"] if line["kind"] == "state"] == \
        ["closed"]
    record, _ = register(core)
    closed, changes = call(core, service.close, record["case_no"],
                           {"closure": "on_the_spot", "note": "当场解答，双方认可"}, by=DESK,
                           locator=core.locator(), now=core.clock.now())
    assert closed["status"] == "closed" and closed["closure"] == "on_the_spot"
    assert closed["seq"] > record["seq"] and changes.incidents[0]["seq"] == closed["seq"]
    with pytest.raises(DomainError) as info:
        call(core, service.close, record["case_no"], {"closure": "on_the_spot", "note": "再次"},
             by=DESK, locator=core.locator(), now=core.clock.now())
    assert info.value.code == "conflict"
    with pytest.raises(DomainError) as info:
        register(core, body(closure="on_the_spot"))
    assert (info.value.code, info.value.field) == ("missing_field", "note")


def test_corrections_are_timeline_and_audit_lines(core):
    record, _ = register(core)
    fixed, changes = call(core, service.correct, record["case_no"], {
        "title": "讨要三个月工资", "amount": 13000, "reason": "申请人更正",
        "parties": [{"party": 0, "phone": "13900001111"},
                    {"add": {"role": "other", "kind": "person", "name": "王五"}}]},
        by=DESK, keyring=core.keyring, locator=core.locator(), now=core.clock.now())
    assert fixed["title"] == "讨要三个月工资" and fixed["amount"] == 13000.0
    assert fixed["parties"][0]["phone"] == "139****1111" and fixed["parties"][2]["name"] == "王五"
    notes = [line["note"] for line in fixed["timeline"] if line["kind"] == "correct"]
    assert "更正 title：讨要工资 → 讨要三个月工资（申请人更正）" in notes
    assert any("138****1234 → 139****1111" in n for n in notes)
    assert all("13900001111" not in n for n in notes)
    assert fixed["seq"] > record["seq"]
    with core.read() as s:
        lines = s.execute(sa.select(audit.c.action, audit.c.field)).all()
    assert ("correct", "parties[0].phone") in lines and ("correct", "title") in lines
    with pytest.raises(DomainError) as info:
        call(core, service.correct, record["case_no"],
             {"parties": [{"party": 0, "id_number": "110105194912310021"}]}, by=DESK,
             keyring=core.keyring, locator=core.locator(), now=core.clock.now())
    assert info.value.field == "parties[0].id_number"


def test_validation_names_the_field(core):
    cases = [
        (body(parties=[{"role": "applicant", "kind": "person", "name": "张三",
                        "id_number": "110105194912310021"}]), "invalid_field",
         "parties[0].id_number"),
        (body(parties=[{"role": "applicant", "kind": "org", "name": "某公司",
                        "credit_code": "91350100M000100Y44"}]), "invalid_field",
         "parties[0].credit_code"),
        (body(parties=[{"role": "applicant", "kind": "person"}]), "missing_field",
         "parties[0].name"),
        (body(type="emergency"), "unknown_type", "type"),
        (body(category="打架"), "invalid_field", "category"),
        (body(grid=None), "missing_field", "lon"),
        (body(amount=-1), "out_of_range", "amount"),
        (body(occurred_at="2099-01-01T00:00:00"), "future_time", "occurred_at"),
        (body(parties=[{"role": "applicant", "kind": "person", "name": "x",
                        "id_number": "110105209912310028"}]), "invalid_field",
         "parties[0].id_number"),
    ]
    for raw, code, field in cases:
        with pytest.raises(DomainError) as info:
            register(core, raw)
        assert (info.value.code, info.value.field) == (code, field), raw


def test_idempotency_key_returns_the_first_answer(core):
    first, changes = register(core, idempotency_key="k-1")
    again, nothing = register(core, idempotency_key="k-1")
    assert again["case_no"] == first["case_no"] and not nothing
    with pytest.raises(DomainError) as info:
        register(core, body(title="另一件事"), idempotency_key="k-1")
    assert info.value.code == "conflict"


def test_desk_sees_matters_only_and_townships_their_own(core):
    record, _ = register(core)
    (emergency,) = core.ingest.submit(_feed(core), {
        "id": "e-9", "type": "emergency", "occurred_at": "2026-11-26T09:30:00+08:00",
        "lon": 120.2, "lat": 30.05, "title": "火情"})
    with core.read() as s:
        seen = incidents_service.since(s, 0, limit=100, locator=core.units.current(s),
                                       principal=DESK)["items"]
    assert record["id"] in {i["id"] for i in seen}
    assert emergency.incident["id"] not in {i["id"] for i in seen}
    with pytest.raises(Forbidden):
        read(core, record["case_no"], by=T02)
    with pytest.raises(DomainError) as info:  # a township registers in its own township only
        register(core, body(grid="DEMO-T02-G01"), by=T01)
    assert info.value.code == "out_of_range"
    mine, _ = register(core, body(grid="DEMO-T01-G02"), by=T01)
    assert read(core, mine["case_no"], by=T01)["registered_unit"] == "DEMO-T01"
    with pytest.raises(Forbidden):
        register(core, body(), by=LEADER)


def _feed(core):
    make_incident(core)
    return core._test_feed


def test_without_the_key_numbers_cannot_be_stored_or_shown(core):
    plain = Core(core.settings, clock=core.clock, bus=InProcessBus())
    plain.keyring = keys.Keyring(None)
    try:
        with pytest.raises(DomainError) as info:
            register(plain)
        assert (info.value.code, info.value.http_status) == ("unavailable", 503)
        record, _ = register(plain, body(parties=[{"role": "applicant", "kind": "person",
                                                   "name": "赵六"}]))
        assert record["parties"][0]["name"] == "赵六"
    finally:
        plain.close()


def test_a_different_key_refuses_to_start(core):
    with pytest.raises(config.ConfigError, match="not the key this database"):
        Core(config.load(data_dir=core.settings.data_dir, database_url=core.settings.database_url,
                         secret_key="k" * 40), bus=InProcessBus())


def test_migration_numbers_stored_matters_in_received_order(tmp_path):
    """A database written before matters existed: its disputes get case numbers by received_at."""
    from alembic import command as alembic_command

    from command.db import alembic_config, make_engine

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = make_engine(url)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        alembic_command.upgrade(cfg, "0004")
        conn.execute(sa.text("INSERT INTO units (code, name, level, source) "
                             "VALUES ('330102', '某县', 'county', 'import')"))
        conn.execute(sa.text("INSERT INTO feeds (id, name, unit_code, token_hash, created_at) "
                             "VALUES (1, 'f', '330102', 'x', '2026-01-01 00:00:00')"))
        received = ["2026-03-01 10:00:00", "2025-12-31 17:00:00", "2026-02-01 10:00:00",
                    "2025-06-01 10:00:00"]
        kinds = ["dispute", "petition", "emergency", "legal"]
        for i, (at, kind) in enumerate(zip(received, kinds)):
            conn.execute(sa.text(
                "INSERT INTO incidents (id, seq, feed_id, source_id, fingerprint, type, severity,"
                " title, description, occurred_at, received_at, lon, lat, outside, status, level)"
                f" VALUES ('i{i}', {i + 1}, 1, 's{i}', 'f', '{kind}', 4, 't', '', '{at}', '{at}',"
                " 120, 30, 0, 'reported', 'grid')"))
        conn.execute(sa.text("UPDATE counters SET value = 4 WHERE name = 'seq'"))
        # rows pointing at incidents: SQLite rebuilds the table to change a column, and must
        # not trip over them (a deployment of the previous version has thousands)
        conn.execute(sa.text("INSERT INTO incident_events (incident_id, at, by, from_state, "
                             "to_state, note) VALUES ('i0', '2026-03-01 10:05:00', 'duty', "
                             "'reported', 'accepted', '')"))
        conn.execute(sa.text("INSERT INTO orders (id, incident_id, issued_by, issued_at, "
                             "instruction, priority) VALUES ('o1', 'i2', 'lead', "
                             "'2026-02-01 10:10:00', '处置', 'normal')"))
    engine.dispose()
    core = Core(config.load(data_dir=tmp_path / "data", database_url=url), bus=InProcessBus())
    try:
        with core.read() as s:
            got = dict(s.execute(sa.select(incidents.c.id, incidents.c.case_no)).all())
            counters = dict(s.execute(sa.text("SELECT name, value FROM counters")).all())
        # 2025-12-31 17:00 UTC is 2026-01-01 01:00 in China: the first of 2026
        assert got == {"i3": "330102-2025-000001", "i1": "330102-2026-000001",
                       "i2": None, "i0": "330102-2026-000002"}
        assert counters["case:2026"] == 2 and counters["case:2025"] == 1
        assert s.execute(sa.text("PRAGMA foreign_key_check")).all() == []
        assert s.execute(sa.text("SELECT incident_id FROM orders")).scalar() == "i2"
        record, _ = register(core, body(grid=None, lon=120.2, lat=30.05, parties=[]))
        assert record["case_no"].startswith("330102-2026-")
        assert record["case_no"] == "330102-2026-000003"
    finally:
        core.close()


def test_occurred_default_is_the_registration_time(core):
    record, _ = register(core, body(channel="来电"))
    assert record["occurred_at"] == record["received_at"] == "2026-11-26T10:00:00+08:00"
    assert record["channel"] == "phone"
    assert NOW - timedelta(0) == core.clock.now()
