"""GET /metrics: every listed metric, two processes, deployment gauges once, access rules."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from command.ops import metrics as metrics_mod
from tests import servers
from tests.test_loop import NOW, make_incident
from tests.test_orders import issue
from tests.test_wire import Live, feed_client, report

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "metrics-" + "x" * 24


def scrape(server, token: str | None = TOKEN, headers: dict | None = None) -> requests.Response:
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(server.url + "/metrics", headers=headers, timeout=10)


def samples(text: str) -> dict[str, list]:
    """family name → its samples (name, labels, value), parsed by the library's own parser."""
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        name = family.name + ("_total" if family.type == "counter" else "")
        out[name] = [(s.name, s.labels, s.value) for s in family.samples]
    return out


def value(found: dict, name: str, **labels) -> float:
    """The sum of the samples named `name` (of any family) with these labels."""
    return sum(v for family in found.values() for n, lab, v in family if n == name
               and all(lab.get(k) == x for k, x in labels.items()))


@pytest.mark.postgres
@pytest.mark.redis
def test_every_listed_metric_with_two_processes(tmp_path, redis_url, postgres_url):
    env = {"CMDCENTER_DATABASE_URL": postgres_url, "CMDCENTER_REDIS_URL": redis_url,
           "CMDCENTER_REDIS_PREFIX": "test-" + uuid.uuid4().hex[:8],
           "CMDCENTER_SUPERVISION_SECONDS": "1", "CMDCENTER_METRICS_TOKEN": TOKEN}
    one = servers.Server(tmp_path / "one", servers.free_port(), env).start()
    # the second process lets its scraper in by address (the test runs on 127.0.0.1)
    two = servers.Server(tmp_path / "two", servers.free_port(),
                         {**env, "CMDCENTER_METRICS_TOKEN": "",
                          "CMDCENTER_METRICS_ALLOW": "127.0.0.1/32, ::1"}).start()
    try:
        token = one.add_feed("青石镇平台")
        leader = one.add_user("metrics-leader", "leader")
        live = Live(two.url, two.duty_token)
        feed = feed_client(one.url, token)
        acks = feed.call("report", [report(i) for i in range(3)], namespace="/feed")
        assert all(a["ok"] for a in acks)
        again = feed.call("report", [report(0), report(9, lon="east")], namespace="/feed")
        assert again[0]["duplicate"] and again[1]["error"]["code"] == "invalid_field"
        live.wait_for(3)
        r = requests.post(one.url + "/api/v1/orders", timeout=10,
                          headers={"Authorization": f"Bearer {leader}"},
                          json={"incident_id": acks[0]["incident"]["id"], "targets": ["DEMO-T01"],
                                "instruction": "到场处置"})
        assert r.status_code == 200, r.text

        deadline = time.monotonic() + 20
        while True:  # the holder's next tick (every second) reads the open order
            found = [samples(scrape(one).text), samples(scrape(two, token=None).text)]
            holders = [f for f in found if value(f, "cmdcenter_deployment_lock_held") == 1]
            if len(holders) == 1 and value(holders[0], "cmdcenter_orders_open") == 1:
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.3)

        for name, (kind, labels, _help) in metrics_mod.CONTRACT.items():
            assert all(name in f for f in found), name  # every family, in every process
            sample = name + "_bucket" if kind == "histogram" else name
            with_samples = [f for f in found if any(n == sample for n, _, _ in f[name])]
            if name in metrics_mod.DEPLOYMENT:
                assert with_samples == holders, name  # from the lock holder only
            else:
                assert len(with_samples) == 2 or name in (
                    "cmdcenter_reports_ingested_total",), name
            for _n, got, _v in (s for f in with_samples for s in f[name]):
                assert set(got) - {"le"} == set(labels), (name, got)
        a, b = found
        assert value(a, "cmdcenter_reports_ingested_total", feed="青石镇平台", outcome="stored") == 3
        assert value(a, "cmdcenter_reports_ingested_total", outcome="duplicate") == 1
        assert value(a, "cmdcenter_reports_ingested_total", outcome="invalid_field") == 1
        assert value(a, "cmdcenter_ack_latency_seconds_count") == 2
        assert value(a, "cmdcenter_connected_clients", namespace="/feed") == 1
        assert value(b, "cmdcenter_connected_clients", namespace="/live") == 1
        assert value(b, "cmdcenter_live_delivery_lag_seconds_count") >= 3  # via Redis, on two
        assert value(holders[0], "cmdcenter_orders_overdue") == 0
        assert value(holders[0], "cmdcenter_riskwatch_backlog") >= 0
        assert sum(value(f, "cmdcenter_deployment_lock_held") for f in found) == 1
        assert "user" not in json.dumps([s for f in found for v in f.values() for s in v])
        feed.disconnect()
        live.close()
    finally:
        one.stop()
        two.stop()


def test_metrics_are_refused_unless_configured_and_never_by_forwarded_for(tmp_path, server):
    # `server` has neither CMDCENTER_METRICS_TOKEN nor CMDCENTER_METRICS_ALLOW: 403 to everyone
    for token in (None, "anything"):
        r = scrape(server, token=token, headers={"X-Forwarded-For": "127.0.0.1"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    # allowed: a network the TCP peer (127.0.0.1) is not in; X-Forwarded-For names one inside
    srv = servers.Server(tmp_path / "x", servers.free_port(),
                         {"CMDCENTER_METRICS_ALLOW": "10.0.0.0/8",
                          "CMDCENTER_METRICS_TOKEN": TOKEN}).start()
    try:
        spoofed = {"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3"}
        assert scrape(srv, token=None, headers=spoofed).status_code == 403
        assert scrape(srv, token="wrong-token", headers=spoofed).status_code == 403
        ok = scrape(srv)
        assert ok.status_code == 200 and ok.headers["Content-Type"].startswith("text/plain")
        assert "cmdcenter_connected_clients" in ok.text
    finally:
        srv.stop()


@pytest.fixture
def core(tmp_path):
    from command import config
    from command.bus import InProcessBus
    from command.clock import FixedClock
    from command.core import Core

    c = Core(config.load(data_dir=tmp_path / "data"), clock=FixedClock(NOW), bus=InProcessBus())
    yield c
    c.close()


def test_deployment_reader_counts_orders_and_the_watch_lag(core):
    from command.alerts.watch import CURSOR
    from command.db import set_meta

    read = metrics_mod.DeploymentReader()

    def reading(at):
        with core.read() as s:
            return read(s, now=at)

    first = reading(NOW)
    assert first["cmdcenter_orders_open"] == first["cmdcenter_orders_overdue"] == 0
    assert first["cmdcenter_riskwatch_backlog"] == first["cmdcenter_riskwatch_lag_seconds"] == 0
    inc = make_incident(core)
    make_incident(core)
    issue(core, inc["id"], ["DEMO-T01", "DEMO-T01-G02"], ack_minutes=10, due_minutes=60)
    second = reading(NOW + timedelta(seconds=15))
    assert second["cmdcenter_orders_open"] == 2 and second["cmdcenter_orders_overdue"] == 0
    assert second["cmdcenter_riskwatch_backlog"] >= 2  # the watch never ran here
    assert second["cmdcenter_riskwatch_lag_seconds"] == 0  # first seen waiting just now
    third = reading(NOW + timedelta(minutes=11))  # past the sign-off limit, watch still idle
    assert third["cmdcenter_orders_overdue"] == 2
    assert third["cmdcenter_riskwatch_lag_seconds"] == 11 * 60 - 15
    with core.write() as s, s.begin():
        from command.db import last_seq

        set_meta(s, CURSOR, str(last_seq(s)))  # the watch caught up
    caught_up = reading(NOW + timedelta(minutes=12))
    assert caught_up["cmdcenter_riskwatch_backlog"] == caught_up[
        "cmdcenter_riskwatch_lag_seconds"] == 0


def test_deployment_gauges_go_quiet_when_stale_or_not_held():
    m = metrics_mod.Metrics(process=False)
    held = [True]
    m.bind(lock_held=lambda: held[0])
    m.deployment.update({"cmdcenter_orders_open": 4.0}, max_age=60)
    text = m.exposition().decode()
    assert "cmdcenter_orders_open 4.0" in text
    held[0] = False  # another process holds the lock now: this one stops exporting them
    assert "cmdcenter_orders_open 4.0" not in m.exposition().decode()
    held[0] = True
    m.deployment.update({"cmdcenter_orders_open": 4.0}, max_age=-1)  # stale at once
    assert "cmdcenter_orders_open 4.0" not in m.exposition().decode()


def _queried_metrics(dashboard: dict) -> set[str]:
    exprs = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                exprs.append(node["expr"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(dashboard)
    assert exprs, "the dashboard queries nothing"
    names = set()
    for expr in exprs:
        names |= set(re.findall(r"\b((?:cmdcenter|process)_[a-z0-9_]+)", expr))
    return names


def test_grafana_dashboard_queries_only_metrics_that_exist():
    dashboard = json.loads((ROOT / "deploy/grafana/cmdcenter.json").read_text())
    m = metrics_mod.Metrics()
    m.reports("f", "stored")  # a labelled counter shows its samples once used
    exposed = set()
    for family in text_string_to_metric_families(m.exposition().decode()):
        exposed |= {s.name for s in family.samples} | {family.name}
    exposed |= set(metrics_mod.CONTRACT)  # the families without a sample yet (matters)
    queried = _queried_metrics(dashboard)
    assert queried - exposed == set()
    # and the dashboard shows every metric of the contract
    bare = {re.sub(r"_(bucket|sum|count)$", "", n) for n in queried}
    assert set(metrics_mod.CONTRACT) - bare == set()


def test_readme_lists_the_metric_contract():
    readme = (ROOT / "README.md").read_text()
    for name, (kind, labels, _help) in metrics_mod.CONTRACT.items():
        row = next((line for line in readme.splitlines() if f"`{name}`" in line), None)
        assert row is not None, f"README does not list {name}"
        assert kind in row and all(f"`{label}`" in row for label in labels), row
