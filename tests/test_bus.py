"""The bus on a real Redis, and two server processes sharing Redis and PostgreSQL."""

from __future__ import annotations

import threading
import uuid

import pytest

from command.bus import InProcessBus, RedisBus
from tests import servers
from tests.test_wire import Live, feed_client, report

pytestmark = pytest.mark.redis


def test_in_process_bus_delivers_in_order():
    bus = InProcessBus()
    got = []
    bus.subscribe("t", got.extend)
    bus.publish("t", [{"seq": 1}])
    bus.publish("t", [{"seq": 2}, {"seq": 3}])
    assert [g["seq"] for g in got] == [1, 2, 3]


def test_redis_bus_fans_out_to_every_subscriber(redis_url):
    prefix = "test-" + uuid.uuid4().hex[:8]
    a, b = RedisBus(redis_url, prefix=prefix), RedisBus(redis_url, prefix=prefix)
    got_a, got_b = [], []
    done = threading.Event()

    def on_b(items):
        got_b.extend(items)
        if len(got_b) >= 300:
            done.set()

    a.subscribe("incidents", got_a.extend)
    b.subscribe("incidents", on_b)
    try:
        for k in range(100):
            a.publish("incidents", [{"seq": 3 * k + j + 1, "title": "中文"} for j in range(3)])
        assert done.wait(10)
        assert [g["seq"] for g in got_b] == list(range(1, 301))
        assert got_b[0]["title"] == "中文"
    finally:
        a.close()
        b.close()


@pytest.mark.postgres
def test_two_servers_share_redis_and_postgres(tmp_path, redis_url, postgres_url, server_env):
    env = {**server_env, "CMDCENTER_DATABASE_URL": postgres_url, "CMDCENTER_REDIS_URL": redis_url,
           "CMDCENTER_REDIS_PREFIX": "test-" + uuid.uuid4().hex[:8]}
    one = servers.Server(tmp_path / "one", servers.free_port(), env).start()
    two = servers.Server(tmp_path / "two", servers.free_port(), env).start()
    try:
        token = one.add_feed("shared")
        live_on_two = Live(two.url, two.duty_token)
        live_on_one = Live(one.url, one.duty_token)
        feed = feed_client(one.url, token)
        acks = feed.call("report", [report(i) for i in range(25)], namespace="/feed")
        ids = {a["incident"]["id"] for a in acks}
        assert {i["id"] for i in live_on_two.wait_for(25)} == ids
        assert {i["id"] for i in live_on_one.wait_for(25)} == ids
        # the other door of the other process sees the same store
        feed_two = feed_client(two.url, token)
        again = feed_two.call("report", report(0), namespace="/feed")
        assert again["duplicate"] is True
        for c in (feed, feed_two):
            c.disconnect()
        live_on_one.close()
        live_on_two.close()
    finally:
        one.stop()
        two.stop()
