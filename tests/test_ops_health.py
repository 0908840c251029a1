"""GET /readyz flips when PostgreSQL or Redis stops (servers of their own, stopped for real)."""

from __future__ import annotations

import time

import pytest
import requests

from tests import servers

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def wait_ready(server, want: int, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = requests.get(server.url + "/readyz", timeout=10)
        if r.status_code == want:
            return r.json()
        assert time.monotonic() < deadline, (r.status_code, r.text)
        time.sleep(0.3)


def test_readiness_follows_postgres_and_redis(tmp_path):
    cluster = servers.ThrowawayPostgres()
    redis_url, redis_proc = servers.start_throwaway_redis(tmp_path / "redis")
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    srv = servers.Server(tmp_path / "data", servers.free_port(),
                         {"CMDCENTER_DATABASE_URL": cluster.url, "CMDCENTER_REDIS_URL": redis_url})
    try:
        srv.start()
        assert wait_ready(srv, 200) == {"ok": True, "checks": {"database": "ok", "redis": "ok"}}

        redis_proc.terminate()
        redis_proc.wait(10)
        down = wait_ready(srv, 503)
        assert down["checks"]["database"] == "ok" and down["checks"]["redis"] != "ok"
        assert requests.get(srv.url + "/healthz", timeout=10).ok  # alive all the same

        redis_proc = servers.start_throwaway_redis_on(tmp_path / "redis", port)
        wait_ready(srv, 200)

        cluster.stop()
        down = wait_ready(srv, 503)
        assert down["checks"]["redis"] == "ok" and down["checks"]["database"] != "ok"
        cluster.start()
        assert wait_ready(srv, 200)["ok"] is True
    finally:
        srv.stop()
        redis_proc.terminate()
        redis_proc.wait(10)
        cluster.close()
