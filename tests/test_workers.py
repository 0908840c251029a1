"""Several processes: the --workers launcher's refusal, migrations run once, the rate limit kept in
Redis, marked session ids. (Through nginx with TLS: tests/test_nginx.py.)"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
import requests
import sqlalchemy as sa

from command.ratelimit import RateLimiter, RedisRateLimiter, make_limiter
from tests import servers


def test_workers_refuse_without_postgres_and_redis(tmp_path):
    done = servers.cli("serve", "--workers", "2", "--port", str(servers.free_port()),
                       data_dir=tmp_path, check=False)
    assert done.returncode == 2
    assert "--workers needs PostgreSQL" in done.stderr and "and Redis" in done.stderr
    assert not (tmp_path / "cmdcenter.sqlite3").exists()  # refused before touching anything


@pytest.mark.postgres
def test_workers_refuse_without_redis(tmp_path, postgres_url):
    done = servers.cli("serve", "--workers", "2", data_dir=tmp_path, check=False,
                       env={"CMDCENTER_DATABASE_URL": postgres_url})
    assert done.returncode == 2
    assert "--workers needs Redis" in done.stderr


def test_node_names_are_checked(tmp_path):
    done = servers.cli("serve", "--node", "a.b", data_dir=tmp_path, check=False)
    assert done.returncode == 2 and "CMDCENTER_NODE must be" in done.stderr


@pytest.mark.postgres
def test_processes_starting_together_migrate_once(tmp_path, postgres_url):
    env = {"CMDCENTER_DATABASE_URL": postgres_url, "CMDCENTER_LOG": "WARNING"}
    import os

    procs = [subprocess.Popen([sys.executable, "-m", "command.cli", "migrate", "--data-dir",
                               str(tmp_path / "host")], env={**os.environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=servers.ROOT) for _ in range(3)]
    outputs = [p.communicate(timeout=180) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert "schema at revision" in out
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
        # the demo county was seeded once, not three times
        counties = conn.exec_driver_sql("SELECT count(*) FROM units WHERE level = 'county'")
        assert counties.scalar() == 1
        assert conn.exec_driver_sql(
            "SELECT count(*) FROM meta WHERE key = 'key_fingerprint'").scalar() <= 1
    engine.dispose()


@pytest.mark.redis
def test_rate_limit_lives_in_redis_across_processes(redis_url):
    prefix = "test-" + uuid.uuid4().hex[:8]
    one = make_limiter(redis_url, 1.0, 10, prefix=prefix)
    two = make_limiter(redis_url, 1.0, 10, prefix=prefix)
    assert isinstance(one, RedisRateLimiter)
    try:
        assert one.take(("feed", 7), 6)
        assert not two.take(("feed", 7), 6)  # the other process sees the same bucket
        assert two.take(("feed", 7), 4)
        assert not one.take(("feed", 7), 1)
        assert one.take(("feed", 8), 10)  # other feeds have their own
    finally:
        one.close()
        two.close()


def test_rate_limit_without_redis_is_per_process():
    assert isinstance(make_limiter(None, 1.0, 10), RateLimiter)


def test_rate_limit_falls_back_when_redis_is_gone():
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{servers.free_port()}/0", 1.0, 3)
    assert limiter.take("k", 3)
    assert not limiter.take("k", 1)


def test_session_ids_carry_the_node(tmp_path, server_env):
    srv = servers.Server(tmp_path / "data", servers.free_port(), server_env,
                         extra=["--node", "w7"]).start()
    try:
        answer = requests.get(srv.url + "/socket.io/", params={"EIO": "4",
                                                                "transport": "polling"},
                              timeout=10)
        assert answer.ok
        assert '"sid":"w7.' in answer.text
        assert "Set-Cookie" not in answer.headers  # stickiness needs no cookie
    finally:
        srv.stop()


def test_clients_on_the_defaults_reach_every_namespace(tmp_path, server_env):
    """python-socketio on its defaults (long-polling, then the upgrade), keeping no cookies,
    on one process: /feed, /live and /field."""
    import socketio

    from tests.test_wire import report

    srv = servers.Server(tmp_path / "data", servers.free_port(), server_env,
                         extra=["--node", "solo"]).start()
    made = []
    try:
        feed_token = srv.add_feed("defaults")
        grid_token = srv.add_user("grid-defaults", "grid", "DEMO-T01-G01")
        got, orders = [], []
        live = socketio.Client()
        live.on("incidents", got.extend, namespace="/live")
        field = socketio.Client()
        field.on("orders", orders.extend, namespace="/field")
        feed = socketio.Client()
        made += [live, field, feed]
        live.connect(srv.url, namespaces=["/live"], auth={"token": srv.duty_token},
                     wait_timeout=20)
        field.connect(srv.url, namespaces=["/field"], auth={"token": grid_token},
                      wait_timeout=20)
        feed.connect(srv.url, namespaces=["/feed"], auth={"token": feed_token}, wait_timeout=20)
        assert live.eio.sid.startswith("solo.")
        ack = feed.call("report", report("defaults-1"), namespace="/feed", timeout=20)
        assert ack["ok"] is True
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (got and all(
                c.transport() == "websocket" for c in made)):
            time.sleep(0.1)
        assert [i["id"] for i in got] == [ack["incident"]["id"]]
        assert [c.transport() for c in made] == ["websocket"] * 3  # upgraded
        for client in made:
            assert not client.eio.http.cookies
    finally:
        for client in made:
            client.disconnect()
        srv.stop()
