"""Ingest on a real database (SQLite file and PostgreSQL): idempotency, seq order, locating."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from command import config
from command.bus import InProcessBus
from command.clock import FixedClock
from command.core import Core
from command.errors import DomainError
from command.feeds import service as feeds
from command.incidents import service as incidents

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)
INSIDE = (120.2, 30.05)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def core(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    c = Core(config.load(data_dir=tmp_path / "data", database_url=url, rate_burst=100_000),
             clock=FixedClock(NOW), bus=InProcessBus())
    yield c
    c.close()


def add_feed(core: Core, name="f1", unit="DEMO-T01"):
    with core.write() as s, s.begin():
        feed, token = feeds.create(s, name=name, unit_code=unit, now=NOW)
    return feed, token


def report(i=1, **change):
    raw = {"id": f"r-{i}", "type": "dispute", "occurred_at": "2026-11-26T09:30:00+08:00",
           "lon": INSIDE[0], "lat": INSIDE[1], "title": f"纠纷 {i}", "phone": "13812345678"}
    raw.update(change)
    return raw


def test_report_is_stored_located_and_masked(core):
    feed, _ = add_feed(core)
    (out,) = core.ingest.submit(feed, report())
    inc = out.incident
    assert out.error is None and out.duplicate is False
    assert inc["seq"] == 1 and inc["feed"] == "f1" and inc["source_id"] == "r-1"
    assert inc["type_label"] == "矛盾纠纷" and inc["status"] == "reported"
    assert inc["phone"] == "138****5678"
    assert inc["occurred_at"] == "2026-11-26T09:30:00+08:00"
    assert inc["received_at"] == "2026-11-26T10:00:00+08:00"
    assert inc["township"]["code"].startswith("DEMO-T") and inc["grid"]["code"].startswith("DEMO-T")
    assert inc["township"]["name"] and inc["outside"] is False


def test_resend_is_a_duplicate_and_different_content_a_conflict(core):
    feed, _ = add_feed(core)
    (first,) = core.ingest.submit(feed, report())
    (again,) = core.ingest.submit(feed, report(type="矛盾纠纷", occurred_at="2026-11-26T01:30:00Z"))
    assert again.duplicate is True and again.incident == first.incident
    (changed,) = core.ingest.submit(feed, report(title="改了"))
    assert changed.error.code == "conflict" and changed.error.field == "id"
    with core.read() as s:
        listed = incidents.since(s, 0, limit=10, locator=core.units.current(s))
    assert [i["title"] for i in listed["items"]] == ["纠纷 1"]


def test_same_id_from_another_feed_is_another_incident(core):
    a, _ = add_feed(core, "a")
    b, _ = add_feed(core, "b")
    (x,) = core.ingest.submit(a, report())
    (y,) = core.ingest.submit(b, report())
    assert x.incident["id"] != y.incident["id"] and not y.duplicate


def test_list_keeps_the_good_and_answers_in_order(core):
    feed, _ = add_feed(core)
    outs = core.ingest.submit(feed, [report(1), report(2, severity=7), report(3), report(1),
                                     report(4, type="nope"), report(3, title="冲突")])
    assert [o.error.code if o.error else ("dup" if o.duplicate else "ok") for o in outs] == \
        ["ok", "out_of_range", "ok", "dup", "unknown_type", "conflict"]
    assert [o.incident["seq"] for o in outs if o.incident and not o.duplicate] == [1, 2]
    assert outs[3].incident["id"] == outs[0].incident["id"]


def test_outside_point_is_kept_and_flagged(core):
    feed, _ = add_feed(core)
    (out,) = core.ingest.submit(feed, report(lon=116.4, lat=39.9))
    assert out.incident["outside"] is True
    assert out.incident["township"] is None and out.incident["grid"] is None


def test_grid_only_report_gets_a_point_inside_the_grid(core):
    feed, _ = add_feed(core)
    raw = {k: v for k, v in report().items() if k not in ("lon", "lat")}
    (out,) = core.ingest.submit(feed, {**raw, "grid": "DEMO-T02-G01"})
    inc = out.incident
    assert inc["grid"]["code"] == "DEMO-T02-G01" and inc["township"]["code"] == "DEMO-T02"
    locator = core.locator()
    assert locator.locate_one(inc["lon"], inc["lat"])[1] == "DEMO-T02-G01"
    (bad,) = core.ingest.submit(feed, {**raw, "id": "x", "grid": "NO-SUCH"})
    assert (bad.error.code, bad.error.field) == ("invalid_field", "grid")


def test_gcj02_is_converted_to_wgs84(core):
    from prcoords import wgs_gcj

    feed, _ = add_feed(core)
    gcj = wgs_gcj((INSIDE[1], INSIDE[0]))  # prcoords takes (lat, lon)
    (out,) = core.ingest.submit(feed, report(lon=gcj[1], lat=gcj[0], crs="gcj02"))
    assert out.incident["lon"] == pytest.approx(INSIDE[0], abs=1e-5)
    assert out.incident["lat"] == pytest.approx(INSIDE[1], abs=1e-5)


def test_too_many_and_rate_limited_refuse_the_whole_request(core, tmp_path):
    feed, _ = add_feed(core)
    with pytest.raises(DomainError) as info:
        core.ingest.submit(feed, [report(i) for i in range(1001)])
    assert info.value.code == "too_large"
    limited = Core(config.load(data_dir=tmp_path / "other", rate_burst=10, rate_per_second=0.001),
                   clock=FixedClock(NOW), bus=InProcessBus())
    try:
        feed2, _ = add_feed(limited, "g")
        other, _ = add_feed(limited, "h")
        assert len(limited.ingest.submit(feed2, [report(i) for i in range(10)])) == 10
        with pytest.raises(DomainError) as info:
            limited.ingest.submit(feed2, report(99))
        assert info.value.code == "rate_limited"
        assert limited.ingest.submit(other, report(1))[0].error is None  # others unaffected
    finally:
        limited.close()


def test_committed_incidents_survive_a_restart(core):
    feed, _ = add_feed(core)
    core.ingest.submit(feed, [report(i) for i in range(5)])
    again = Core(core.settings, clock=FixedClock(NOW), bus=InProcessBus())
    try:
        with again.read() as s:
            assert len(incidents.since(s, 0, limit=100, locator=again.units.current(s))["items"]) == 5
    finally:
        again.close()


def test_published_after_commit_in_seq_order(core):
    got: list[dict] = []
    core.bus.subscribe("incidents", got.extend)
    feed, _ = add_feed(core)
    core.ingest.submit(feed, [report(i) for i in range(20)])
    core.ingest.submit(feed, report(0))  # a duplicate is not published again
    assert [i["seq"] for i in got] == list(range(1, 21))


def test_readers_never_see_a_smaller_seq_after_a_larger_one(core):
    """Two writers (two cores = two processes) race; a reader following `since` misses nothing."""
    other = Core(core.settings, clock=FixedClock(NOW), bus=InProcessBus())
    feeds_ = [add_feed(core, "w1")[0], add_feed(core, "w2")[0]]
    done = threading.Event()
    seen: dict[int, str] = {}

    def write(c, feed):
        for k in range(40):
            c.ingest.submit(feed, [report(f"{feed.name}-{k}-{j}") for j in range(5)])

    def read():
        cursor = 0
        while True:
            finished = done.is_set()
            with core.read() as s:
                page = incidents.since(s, cursor, limit=1000, locator=core.units.current(s))
            for item in page["items"]:
                seen[item["seq"]] = item["id"]
            cursor = page["last_seq"]
            if finished and not page["items"]:
                return

    writers = [threading.Thread(target=write, args=(c, f)) for c, f in zip((core, other), feeds_)]
    reader = threading.Thread(target=read)
    reader.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    done.set()
    reader.join(60)
    other.close()
    assert sorted(seen) == list(range(1, 401))
