"""Through nginx with TLS (the shipped deploy/nginx/cmdcenter.conf), two server processes started
by `cmdcenter serve --workers 2` on PostgreSQL and Redis: clients on python-socketio's defaults
(long-polling, then the websocket upgrade) and polling-only clients, keeping no cookies, reach
/feed, /live and /field; a screen sees reports sent to either process; a process SIGKILLed: its
clients reconnect through nginx and catch up, nothing acked is lost."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
import socketio

from tests import servers
from tests.nginx import Nginx, free_port_pair
from tests.test_wire import feed_client, report

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


class Workers:
    """`cmdcenter serve --workers N` in a subprocess, its children's pids read from its output."""

    def __init__(self, data_dir: Path, env: dict, workers: int = 2) -> None:
        self.port = free_port_pair()
        self.data_dir, self.env, self.workers = data_dir, env, workers
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / "workers.log"
        servers.SESSION_LOGS.append(self.log)
        handle = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "command.cli", "serve", "--workers", str(workers), "--port",
             str(self.port), "--data-dir", str(data_dir)],
            stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **env,
                                                          **servers.SESSION_LOG_ENV},
            cwd=servers.ROOT)
        for i in range(workers):
            self.wait_healthy(i)

    @property
    def ports(self) -> list[int]:
        return [self.port + i for i in range(self.workers)]

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.port + i}"

    def wait_healthy(self, i: int, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text(errors="replace")
            try:
                if requests.get(self.url(i) + "/healthz", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"worker {i} not healthy:\n{self.log.read_text(errors='replace')}")

    def pid(self, node: str) -> int:
        found = re.findall(rf"worker {node} on \S+ \(pid (\d+)\)", self.log.read_text())
        return int(found[-1])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def https_session(ca: Path) -> requests.Session:
    """HTTP that trusts the test's CA only (REQUESTS_CA_BUNDLE in the environment would
    otherwise win over `verify`)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca)
    return session


class Screen:
    """A /live client through nginx that catches up with `since` after every reconnect."""

    def __init__(self, url: str, token: str, ca: Path, transports=None) -> None:
        self.http = https_session(ca)
        self.seen: dict[str, int] = {}
        self.last_seq = 0
        self.connects = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.client = socketio.Client(http_session=self.http, reconnection_delay=0.2,
                                      reconnection_delay_max=1.0)
        self.client.on("incidents", self._take, namespace="/live")
        self.alerts: list[dict] = []
        self.client.on("alerts", self.alerts.extend, namespace="/live")
        self.client.on("connect", self._connected, namespace="/live")
        self.client.connect(url, namespaces=["/live"], auth={"token": token},
                            transports=transports, wait_timeout=20)

    def _take(self, items) -> None:
        with self.lock:
            for item in items:
                self.seen[item["id"]] = item["seq"]
                self.last_seq = max(self.last_seq, item["seq"])

    def _connected(self) -> None:
        self.connects += 1
        if self.connects > 1:
            # a reconnect: fill the gap from the store, from the last seq seen before it (read
            # now: pushes on the new connection may raise last_seq before the answer comes);
            # in a thread, for the handler must return before an ack can arrive
            with self.lock:
                start = self.last_seq
            threading.Thread(target=self.catch_up, args=(start,), daemon=True).start()

    def catch_up(self, seq: int) -> None:
        try:
            while True:
                answer = self.client.call("since", {"seq": seq}, namespace="/live",
                                          timeout=20)
                self._take(answer["items"])
                seq = answer["last_seq"]
                if not answer["items"]:
                    return
        except Exception as exc:  # noqa: BLE001 - reported by wait_for
            self.errors.append(repr(exc))

    @property
    def node(self) -> str:
        return self.client.eio.sid.split(".", 1)[0]

    def wait_for(self, ids: set[str], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if ids <= self.seen.keys():
                    return
            time.sleep(0.1)
        with self.lock:
            missing = ids - self.seen.keys()
        raise AssertionError(f"{len(missing)} of {len(ids)} not seen on {self.node} "
                             f"(transport {self.client.transport()}, {self.connects} connects, "
                             f"catch-up errors {self.errors}), e.g. {sorted(missing)[:3]}")


@pytest.fixture
def deployment(tmp_path, postgres_url, redis_url):
    env = {"CMDCENTER_DATABASE_URL": postgres_url, "CMDCENTER_REDIS_URL": redis_url,
           "CMDCENTER_REDIS_PREFIX": "test-" + uuid.uuid4().hex[:8],
           "CMDCENTER_SUPERVISION_SECONDS": "1", "CMDCENTER_WATCH_SECONDS": "1",
           "CMDCENTER_METRICS_ALLOW": "127.0.0.1/32"}
    workers = Workers(tmp_path / "data", env)
    nginx = None
    try:
        nginx = Nginx(workers.ports)
        yield workers, nginx
    finally:
        code = workers.stop()
        if nginx is not None:
            errors = nginx.error_log()
            nginx.close()
            assert "[emerg]" not in errors, errors
        assert code == 0, "the launcher did not stop cleanly on SIGTERM"


def keep_reporting_through_nginx(nginx, token: str, acked: set, stop: threading.Event) -> None:
    """Report through nginx until `stop`, riding over restarts (reconnects, resends)."""
    client = socketio.Client(http_session=https_session(nginx.ca), reconnection_delay=0.2,
                             reconnection_delay_max=1.0)
    client.connect(nginx.url, namespaces=["/feed"], auth={"token": token}, wait_timeout=20)
    k = 0
    try:
        while not stop.is_set():
            batch = [report(f"rolling-{k}-{j}") for j in range(5)]
            try:
                acks = client.call("report", batch, namespace="/feed", timeout=10)
            except Exception:  # the process went mid-call: the same ids again (idempotent)
                time.sleep(0.3)
                continue
            acked.update(a["incident"]["id"] for a in acks if a["ok"])
            k += 1
            time.sleep(0.1)
    finally:
        client.disconnect()


def _lock_held(url: str) -> int:
    text = requests.get(url + "/metrics", timeout=10).text
    return int(float(re.search(r"^cmdcenter_deployment_lock_held (\S+)$", text, re.M).group(1)))


def _cli(workers: Workers, *args, **kwargs):
    return servers.cli(*args, env=workers.env, data_dir=workers.data_dir, **kwargs)


def _user(workers: Workers, name: str, role: str, unit: str | None = None) -> str:
    args = ["users", "add", name, "--role", role, "--password-stdin"]
    if unit:
        args += ["--unit", unit]
    _cli(workers, *args, input="password-123\n")
    return _cli(workers, "users", "token", name).stdout.strip().splitlines()[-1]


@pytest.fixture
def clients():
    """socketio clients to disconnect whatever happens (before nginx and the CA go)."""
    made: list[socketio.Client] = []
    yield made
    for client in made:
        try:
            client.shutdown()  # also stops a reconnect loop (a client of a killed process)
        except Exception:
            pass


def test_two_processes_behind_nginx_with_tls(deployment, clients):
    workers, nginx = deployment
    feed_token = _cli(workers, "feeds", "add", "t01", "--unit", "DEMO-T01", "--json")
    import json

    feed_token = json.loads(feed_token.stdout.strip().splitlines()[-1])["token"]
    duty = _user(workers, "duty-nginx", "duty")
    grid = _user(workers, "grid-nginx", "grid", "DEMO-T01-G01")

    # the front door: TLS, /metrics hidden, request ids passed through or made, HTTP → HTTPS
    https = https_session(nginx.ca)
    assert https.get(nginx.url + "/healthz", timeout=10).json()["ok"] is True
    assert https.get(nginx.url + "/metrics", timeout=10).status_code == 404
    assert https.get(nginx.url + "/healthz", headers={"X-Request-ID": "county-abc.1"},
                     timeout=10).headers["X-Request-ID"] == "county-abc.1"
    made = https.get(nginx.url + "/healthz", timeout=10).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)  # nginx's $request_id
    deadline = time.monotonic() + 5  # nginx logs a request once its answer has gone
    while time.monotonic() < deadline and made not in nginx.access_log():
        time.sleep(0.1)
    assert made in nginx.access_log()
    plain = requests.get(f"http://127.0.0.1:{nginx.http_port}/", allow_redirects=False,
                         timeout=10)
    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")

    # screens on the defaults (polling, then websocket) and polling-only, spread by nginx
    screens = [Screen(nginx.url, duty, nginx.ca) for _ in range(3)]
    screens += [Screen(nginx.url, duty, nginx.ca, transports=["polling"]) for _ in range(3)]
    clients.extend(s.client for s in screens)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
            s.client.transport() != "websocket" for s in screens[:3]):
        time.sleep(0.1)
    assert [s.client.transport() for s in screens] == ["websocket"] * 3 + ["polling"] * 3
    assert {s.node for s in screens} == {"n0", "n1"}, "nginx spreads new sessions"

    # /feed and /field on the defaults through nginx
    feed_http = https_session(nginx.ca)
    feed = socketio.Client(http_session=feed_http)
    clients.append(feed)
    feed.connect(nginx.url, namespaces=["/feed"], auth={"token": feed_token}, wait_timeout=20)
    field_http = https_session(nginx.ca)
    field = socketio.Client(http_session=field_http)
    clients.append(field)
    orders = threading.Event()
    field.on("orders", lambda nodes: orders.set(), namespace="/field")
    field.connect(nginx.url, namespaces=["/field"], auth={"token": grid}, wait_timeout=20)
    assert orders.wait(20), "the grid worker's phone got its open orders through nginx"

    # reports sent to either process (and through nginx) reach every screen
    acked: set[str] = set()
    for i, url in enumerate([workers.url(0), workers.url(1)]):
        direct = feed_client(url, feed_token)
        acks = direct.call("report", [report(f"p{i}-{k}") for k in range(20)], namespace="/feed",
                           timeout=30)
        acked |= {a["incident"]["id"] for a in acks if a["ok"]}
        direct.disconnect()
    acks = feed.call("report", [report(f"ngx-{k}") for k in range(20)], namespace="/feed",
                     timeout=30)
    acked |= {a["incident"]["id"] for a in acks if a["ok"]}
    assert len(acked) == 60
    for screen in screens:
        screen.wait_for(acked)

    # once per deployment stays once: one process holds the lock the supervision, the risk
    # watch and the deployment gauges run under; a red report's alert reaches a screen once
    holders = [_lock_held(workers.url(i)) for i in range(2)]
    assert sorted(holders) == [0, 1], holders
    red = {}
    for i, url in enumerate([workers.url(0), workers.url(1)]):
        direct = feed_client(url, feed_token)
        where = [(120.30, 29.95), (120.35, 30.15)][i]  # far from the others: no cluster
        ack = direct.call("report", report(f"red-{i}", severity=1, lon=where[0], lat=where[1]),
                          namespace="/feed", timeout=30)
        red[ack["incident"]["id"]] = i
        direct.disconnect()
    acked |= red.keys()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(
            len({a["id"] for a in s.alerts}) >= 2 for s in screens):
        time.sleep(0.2)
    time.sleep(3)  # a few more ticks of every process's timers
    for screen in screens:
        named = [i for a in screen.alerts for i in a.get("incidents", []) if i in red]
        ids = [a["id"] for a in screen.alerts if set(a.get("incidents", [])) & red.keys()]
        assert len(set(named)) == 2, screen.alerts
        assert len(ids) == len(set(ids)) == 2, f"an alert was sent twice: {screen.alerts}"

    # one process SIGKILLed while a feed keeps reporting to the other: its screens reconnect
    # through nginx (to whichever process nginx picks) and catch up; nothing acked is lost
    victim = screens[3].node  # holds at least one polling-only screen
    survivor = 1 - int(victim[1])
    stop = threading.Event()

    def keep_reporting():
        client = feed_client(workers.url(survivor), feed_token)
        k = 0
        while not stop.is_set():
            acks = client.call("report", [report(f"during-{k}-{j}") for j in range(5)],
                               namespace="/feed", timeout=30)
            acked.update(a["incident"]["id"] for a in acks if a["ok"])
            k += 1
            time.sleep(0.05)
        client.disconnect()

    sender = threading.Thread(target=keep_reporting)
    sender.start()
    time.sleep(0.5)
    os.kill(workers.pid(victim), 9)
    time.sleep(3)
    stop.set()
    sender.join(30)
    workers.wait_healthy(int(victim[1]))  # the launcher started it again
    assert re.search(rf"worker {victim} exited \(signal SIGKILL\)", workers.log.read_text())
    deadline = time.monotonic() + 30  # the feed on the defaults rides nginx across the kill
    while time.monotonic() < deadline and "/feed" not in feed.namespaces:
        time.sleep(0.1)
    acks = feed.call("report", [report(f"after-{k}") for k in range(10)], namespace="/feed",
                     timeout=30)
    acked |= {a["incident"]["id"] for a in acks if a["ok"]}
    assert len(acked) > 100
    for screen in screens:
        screen.wait_for(acked, timeout=60)
        assert screen.client.connected
    moved = [s for s in screens if s.connects > 1]
    assert moved, "the victim's screens reconnected"
    assert {s.node for s in screens} <= {"n0", "n1"}

    # an upgrade: SIGHUP restarts the processes one at a time while a feed keeps reporting to
    # whichever is up (through nginx); every screen ends with everything acked
    stop.clear()
    rolling = threading.Thread(target=keep_reporting_through_nginx,
                               args=(nginx, feed_token, acked, stop))
    rolling.start()
    workers.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and "all workers restarted" not in workers.log.read_text():
        time.sleep(0.5)
    stop.set()
    rolling.join(60)
    assert "all workers restarted" in workers.log.read_text()
    for screen in screens:
        screen.wait_for(acked, timeout=60)
    for client in [*(s.client for s in screens), feed, field]:
        client.disconnect()
    # no cookie was ever set: stickiness rides on the sid alone
    for session in [*(s.http for s in screens), feed_http, field_http, https]:
        assert not session.cookies, list(session.cookies)
