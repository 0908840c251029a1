"""`make bench-load` (`python -m bench.load`): a county's peak, a stress and a reconnect storm
against `cmdcenter serve --workers N` behind the shipped nginx config (TLS), on PostgreSQL and
Redis, driven by Node clients (bench/load/load.js: socket.io-client for phones and feeds, a
minimal Socket.IO client of its own for the screens unless `--screens socket.io`), printed as a
table.

- County peak: the demo county with 1,500 grid accounts (a `cmdcenter users import`), 1,500
  phones on /field (one per account), 200 screens on /live (county, township and department
  scopes), 30 feeds at 50 reports/s in total with a burst of 500, one order a second to a random
  grid. Targets: /live delivery p99 ≤ 300 ms, order → /field p99 ≤ 300 ms, 0 lost, memory (the
  server processes' RSS summed) ≤ 1.5 GB.
- Stress: 2,000 county screens while one feed reports 10/s: p99 ≤ 500 ms.
- Reconnect storm: the server processes restarted (SIGTERM to each, the launcher starts them
  again) with the 2,000 screens connected: all reconnected and caught up (`since`) within 60 s,
  0 lost.

"Lost" = an acked report not seen by a screen whose scope covers it (county screens: every
report; township screens: their township's; department screens see what is ordered to them and
are measured for latency only). PostgreSQL: CMDCENTER_DATABASE_URL or the local `test`
database (a schema of its own, dropped after); Redis: CMDCENTER_REDIS_URL or the local one (a
prefix of its own).

For looking inside: BENCH_DEBUG=1 also prints the county peak's burst and stream latency
percentiles and each process group's cores in 0.1 s steps around the burst; BENCH_NODE_ARGS
goes to every Node process (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

from bench.server import ROOT

LOAD_DIR = ROOT / "bench" / "load"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
GRID_ACCOUNTS = 1_500
SCREEN_NODES = 4  # Node processes holding the county peak's 200 screens
DEBUG = bool(os.environ.get("BENCH_DEBUG"))  # see the module docstring
TARGETS = {"live_p99": 300.0, "order_p99": 300.0, "memory_mb": 1536.0, "stress_p99": 500.0,
           "storm_s": 60.0}


# --- helpers -------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "--ppid", str(pid), "-o", "pid="], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


class Deployment:
    """PostgreSQL schema + Redis prefix + data dir, `serve --workers N`, nginx with TLS."""

    def __init__(self, workers: int) -> None:
        import sqlalchemy as sa

        self.workers = workers
        self.screens_client = "light"  # load.js screens: "light" or "socket.io"
        self.tmp = Path(tempfile.mkdtemp(prefix="cmdcenter-bench-load-"))
        server_pg = os.environ.get("CMDCENTER_DATABASE_URL") or DEFAULT_PG
        self.schema = "bench_" + uuid.uuid4().hex[:10]
        engine = sa.create_engine(server_pg)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {self.schema}")
        engine.dispose()
        self.server_pg = server_pg
        sep = "&" if "?" in server_pg else "?"
        self.env = {
            "CMDCENTER_DATABASE_URL": f"{server_pg}{sep}options=-csearch_path%3D{self.schema}",
            "CMDCENTER_REDIS_URL": os.environ.get("CMDCENTER_REDIS_URL") or DEFAULT_REDIS,
            "CMDCENTER_REDIS_PREFIX": self.schema, "CMDCENTER_LOG": "WARNING",
            "CMDCENTER_DATA_DIR": str(self.tmp / "data"),
            "CMDCENTER_METRICS_ALLOW": "127.0.0.1/32",
        }
        self.data = self.tmp / "data"
        self.launcher: subprocess.Popen | None = None
        self.nginx = None

    def settings(self):
        from command import config

        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            return config.load()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def cli(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "command.cli", *args], cwd=ROOT,
                              env={**os.environ, **self.env}, capture_output=True, text=True,
                              timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"cmdcenter {' '.join(args)}: {done.stderr}")
        return done.stdout

    def start(self) -> None:
        from tests.nginx import Nginx, free_port_pair

        self.port = free_port_pair() if self.workers == 2 else _free_run(self.workers)
        self.log = open(self.tmp / "workers.log", "ab")
        self.launcher = subprocess.Popen(
            [sys.executable, "-m", "command.cli", "serve", "--workers", str(self.workers),
             "--port", str(self.port)], cwd=ROOT, env={**os.environ, **self.env},
            stdout=self.log, stderr=subprocess.STDOUT)
        for i in range(self.workers):
            self.wait_healthy(i)
        # a worker per core, as Debian's nginx.conf has it (the tests' one worker is for tests)
        self.nginx = Nginx([self.port + i for i in range(self.workers)], connections=16384,
                           workers="auto")

    def restart(self) -> None:
        """Fresh server processes (same database, Redis and nginx) between scenarios."""
        self.launcher.terminate()
        self.launcher.wait(60)
        for i in range(self.workers):
            while True:
                try:
                    requests.get(f"http://127.0.0.1:{self.port + i}/healthz", timeout=1)
                except requests.RequestException:
                    break
                time.sleep(0.2)
        self.launcher = subprocess.Popen(
            [sys.executable, "-m", "command.cli", "serve", "--workers", str(self.workers),
             "--port", str(self.port)], cwd=ROOT, env={**os.environ, **self.env},
            stdout=self.log, stderr=subprocess.STDOUT)
        for i in range(self.workers):
            self.wait_healthy(i)

    def wait_healthy(self, i: int, timeout: float = 180.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                if requests.get(f"http://127.0.0.1:{self.port + i}/healthz", timeout=2).ok:
                    return time.monotonic() - started
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"worker {i} not healthy")

    def server_pids(self) -> list[int]:
        return children(self.launcher.pid) if self.launcher else []

    def close(self) -> None:
        import sqlalchemy as sa

        if self.nginx is not None:
            self.nginx.close()
        if self.launcher is not None and self.launcher.poll() is None:
            self.launcher.terminate()
            try:
                self.launcher.wait(60)
            except subprocess.TimeoutExpired:
                self.launcher.kill()
        engine = sa.create_engine(self.server_pg)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        engine.dispose()
        try:
            import redis

            r = redis.Redis.from_url(self.env["CMDCENTER_REDIS_URL"])
            for key in r.scan_iter(f"{self.schema}:*"):
                r.delete(key)
        except Exception:
            pass
        if DEBUG and (self.tmp / "workers.log").exists():  # the servers' log, for looking inside
            shutil.copy(self.tmp / "workers.log", "/tmp/bench-load-workers.log")
            print("servers' log: /tmp/bench-load-workers.log", file=sys.stderr)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _free_run(n: int) -> int:
    import socket

    from bench.server import free_port

    for _ in range(100):
        port = free_port()
        try:
            for i in range(1, n):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port + i))
            return port
        except OSError:
            continue
    raise RuntimeError("no free run of ports")


# --- the county's accounts -----------------------------------------------------------------------

def populate(dep: Deployment) -> dict:
    """1,500 grid accounts by `cmdcenter users import`, screens' accounts, a leader, 30 feeds,
    tokens for all; 300 incidents for the orders to be about."""
    from command.core import Core
    from command.feeds import service as feeds_service
    from command.units import service as units_service
    from command.users import service as users_service

    dep.cli("migrate")
    core = Core(dep.settings())
    with core.read() as session:
        units = units_service.get_all(session)
    grids = [u["code"] for u in units if u["level"] == "grid"]
    townships = [u["code"] for u in units if u["level"] == "township"]
    depts = [u["code"] for u in units if u["level"] == "dept"]
    sheet = dep.tmp / "accounts.csv"
    with open(sheet, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["登录名", "角色", "单位", "部门", "姓名"])
        for i in range(GRID_ACCOUNTS):
            writer.writerow([f"wg{i:04d}", "grid", grids[i % len(grids)], "", f"网格员{i:04d}"])
        for i in range(5):
            writer.writerow([f"duty{i}", "duty", "", "", f"值班员{i}"])
        for code in townships:
            writer.writerow([f"tw-{code}", "township", code, "", f"乡镇{code}"])
        for code in depts:
            writer.writerow([f"dp-{code}", "dept", "", code, f"部门{code}"])
        writer.writerow(["leader0", "leader", "", "", "领导"])
    started = time.monotonic()
    dep.cli("users", "import", str(sheet), "--passwords", str(dep.tmp / "pw.csv"))
    import_s = time.monotonic() - started
    tokens: dict[str, str] = {}
    feeds: list[str] = []
    with core.write() as session, session.begin():
        for user in users_service.get_all(session):
            tokens[user.name] = users_service.issue_token(session, name=user.name)
        for i in range(30):
            _feed, token = feeds_service.create(session, name=f"load-{i}",
                                                unit_code=townships[i % len(townships)],
                                                now=core.clock.now())
            feeds.append(token)
    locator = core.locator()
    core.close()
    grid_of = {f"wg{i:04d}": grids[i % len(grids)] for i in range(GRID_ACCOUNTS)}
    return {"tokens": tokens, "feeds": feeds, "grids": grids, "townships": townships,
            "depts": depts, "grid_of": grid_of, "import_s": import_s,
            "places": _places(locator, grids)}


def _places(locator, grids: list[str]) -> list[list[float]]:
    """Points inside the county's grids (reports land in townships and grids)."""
    import shapely

    from layers.demo import demo_county

    rng = random.Random(7)
    points = []
    frame = demo_county()
    polys = frame[frame["level"] == "grid"].geometry.tolist()
    while len(points) < 2000:
        poly = rng.choice(polys)
        minx, miny, maxx, maxy = poly.bounds
        p = shapely.Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if poly.contains(p):
            points.append([round(p.x, 6), round(p.y, 6)])
    return points


def seed_incidents(dep: Deployment, token: str, n: int = 300) -> list[str]:
    """Incidents for the orders (stored before the measured run)."""
    ids = []
    for start in range(0, n, 100):
        body = [{"id": f"seed-{i}", "type": "dispute", "occurred_at": _iso(), "lon": 120.2,
                 "lat": 30.05, "title": f"预置 {i}", "severity": 4}
                for i in range(start, min(n, start + 100))]
        answer = requests.post(f"http://127.0.0.1:{dep.port}/api/v1/reports", json=body,
                               headers={"Authorization": f"Bearer {token}"}, timeout=60)
        ids += [a["incident"]["id"] for a in answer.json() if a.get("ok")]
    return ids


def _iso() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat()


# --- Node processes ------------------------------------------------------------------------------

class Node:
    """One load.js process; its status lines are read as they come."""

    def __init__(self, dep: Deployment, config: dict, name: str) -> None:
        self.out = dep.tmp / f"{name}.out.json"
        cfg = {"url": dep.nginx.url, "ca": str(dep.nginx.ca), "out": str(self.out), **config}
        path = dep.tmp / f"{name}.json"
        path.write_text(json.dumps(cfg))
        extra = os.environ.get("BENCH_NODE_ARGS", "").split()  # e.g. --cpu-prof (profiling)
        self.proc = subprocess.Popen(["node", *extra, str(LOAD_DIR / "load.js"), str(path)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     cwd=LOAD_DIR)
        self.status = {"connected": 0, "ready": 0, "sent": 0, "errors": 0}
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.status = json.loads(line)
            except ValueError:
                self.lines.append(line.rstrip())

    def finish(self) -> dict:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        if not self.out.exists():
            raise RuntimeError("load.js wrote no result:\n" + "\n".join(self.lines[-20:]))
        return json.loads(self.out.read_text())


def wait_ready(nodes: list[Node], total: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if sum(n.status["ready"] for n in nodes) >= total:
            return time.monotonic() - started
        gone = [n for n in nodes if n.proc.poll() is not None]
        if gone:  # a generator process died: say why now, not after the timeout
            raise RuntimeError("a load.js process exited: " + "; ".join(gone[0].lines[-5:]))
        time.sleep(0.25)
    got = sum(n.status["ready"] for n in nodes)
    said = [line for n in nodes for line in n.lines[-5:]]
    raise TimeoutError(f"{got} of {total} clients ready after {timeout:.0f} s; "
                       f"{[n.status for n in nodes]}; {said}")


class Sampler:
    """Peak of the server processes' summed RSS, every 0.5 s."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.dep.server_pids()))
            self._stop.wait(0.5)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(5)
        return self.peak


def lost(results: list[dict], acks: list, *, scopes=("county", "township")) -> tuple[int, int]:
    """(acked reports not seen by a screen whose scope covers them, reports × screens checked)."""
    missing = checked = 0
    for result in results:
        for client in result["clients"]:
            if client["scope"] not in scopes:
                continue
            seen = set(client["seqs"])
            for seq, township, _t in acks:
                if client["scope"] == "township" and township != client["unit"]:
                    continue
                checked += 1
                missing += seq not in seen
    return missing, checked


def _show_lost(results: list[dict], acks: list, mark: float) -> None:
    """BENCH_DEBUG: which screens missed which acked reports (seconds from the storm's start)."""
    shown = 0
    for result in results:
        for client in result["clients"]:
            seen = set(client["seqs"])
            missed = [(seq, t / 1000 - mark) for seq, _township, t in acks if seq not in seen]
            if missed and shown < 12:
                shown += 1
                print(f"lost: {len(missed)} (seq {missed[0][0]}…{missed[-1][0]}, sent "
                      f"{missed[0][1]:+.1f}…{missed[-1][1]:+.1f} s) by a screen {client.get('state')}"
                      f", {client.get('connects')} connects, {client.get('pages')} pages, last "
                      f"{client.get('last')}, up at {client.get('upAt', 0) / 1000 - mark:+.1f} s",
                      flush=True)


def split(items: list, parts: int) -> list[list]:
    return [items[i::parts] for i in range(parts)]


# --- scenarios -----------------------------------------------------------------------------------

def county_peak(dep: Deployment, county: dict, seconds: float) -> dict:
    tokens = county["tokens"]
    phones = [{"token": tokens[name]} for name in county["grid_of"]]
    screens = ([{"token": tokens[f"duty{i % 5}"], "scope": "county", "unit": None}
                for i in range(100)]
               + [{"token": tokens[f"tw-{code}"], "scope": "township", "unit": code}
                  for i, code in zip(range(80), _cycle(county["townships"]))]
               + [{"token": tokens[f"dp-{code}"], "scope": "dept", "unit": code}
                  for i, code in zip(range(20), _cycle(county["depts"]))])
    incidents = seed_incidents(dep, county["feeds"][-1])
    nodes = [Node(dep, {"kind": "phones", "clients": part, "spread_ms": 15}, f"phones{i}")
             for i, part in enumerate(split(phones, 2))]
    nodes += [Node(dep, {"kind": "screens", "clients": part, "spread_ms": 20 * SCREEN_NODES,
                         "client": dep.screens_client},
                   f"screens{i}") for i, part in enumerate(split(screens, SCREEN_NODES))]
    ramp = wait_ready(nodes, len(phones) + len(screens), 300)
    time.sleep(3)
    sampler = Sampler(dep)
    gen = [n.proc.pid for n in nodes]
    servers = dep.server_pids()
    cpu0, srv0, t0 = cpu_seconds(gen), cpu_seconds(servers), time.monotonic()
    feeds = Node(dep, {"kind": "feeds", "tokens": county["feeds"][:30], "rate": 50,
                       "burst": 500, "burst_at_ms": int(seconds * 500),
                       "places": county["places"]}, "feeds")
    orders = Node(dep, {"kind": "orders", "token": tokens["leader0"], "grids": county["grids"],
                        "incidents": incidents}, "orders")
    each = {f"srv{i}": [pid] for i, pid in enumerate(servers)} if DEBUG else {}
    trace = CpuTrace({**each, "servers": servers,
                      "generator": gen + [feeds.proc.pid, orders.proc.pid],
                      "nginx": _pids("nginx"), "PostgreSQL": _pids("postgres"),
                      "Redis": _pids("redis-server")})
    time.sleep(seconds)
    feed_result = feeds.finish()
    orders_result = orders.finish()
    time.sleep(5)  # what is in flight arrives
    wall = time.monotonic() - t0
    all_gen = gen + [feeds.proc.pid, orders.proc.pid]
    gen_cpu = (cpu_seconds(gen) - cpu0) / wall
    srv_cpu = (cpu_seconds(servers) - srv0) / wall
    results = [n.finish() for n in nodes]
    memory = sampler.stop()
    trace.stop()
    burst_at = feed_result.get("burst_at")
    burst_cpu = trace.cores(burst_at / 1000, burst_at / 1000 + 1.0) if burst_at else {}
    screen_results = [r for r in results if r["kind"] == "screens"]
    phone_results = [r for r in results if r["kind"] == "phones"]
    live = [x for r in screen_results for x in r["latencies"]]
    order_lat = [x for r in phone_results for x in r["latencies"]]
    missing, checked = lost(screen_results, feed_result["acks"])
    burst = [x for r in screen_results for x in r.get("burst_latencies", [])]
    stream = [x for r in screen_results for x in r.get("stream_latencies", [])]
    del all_gen
    if DEBUG:
        _print_inside(trace, burst_at, burst, stream)
    return {"burst_p50": pct(burst, 50), "burst_p99": pct(burst, 99),
            "stream_p99": pct(stream, 99), "burst_acked_ms": feed_result.get("burst_acked_ms"),
            "error_reasons": _reasons([feed_result, orders_result, *results]),
            "gen_loop_max_ms": max(r.get("loop_delay_max_ms", 0) for r in results),
            "reconnects": sum(r.get("reconnects", 0) for r in results), "burst_cpu": burst_cpu,
            "ramp_s": ramp, "acked": len(feed_result["acks"]), "feed_errors": feed_result["errors"],
            "orders": orders_result["sent"] if "sent" in orders_result else None,
            "order_errors": orders_result["errors"], "live_p50": pct(live, 50),
            "live_p99": pct(live, 99), "live_n": len(live), "order_p50": pct(order_lat, 50),
            "order_p99": pct(order_lat, 99), "order_n": len(order_lat), "lost": missing,
            "checked": checked, "memory_mb": memory, "gen_cpu": gen_cpu, "srv_cpu": srv_cpu,
            "clients": len(phones) + len(screens)}


def _print_inside(trace: CpuTrace, burst_at: float | None, burst: list, stream: list) -> None:
    """BENCH_DEBUG: the cores of each group in 0.1 s steps around the burst, and percentiles."""
    if burst_at:
        b0 = burst_at / 1000
        for k in range(-1, 8):
            cores = trace.cores(b0 + k * 0.1 - 0.051, b0 + (k + 1) * 0.1 + 0.051)
            print(f"{k * 100:+5d} ms", " ".join(f"{n} {v:.2f}" for n, v in cores.items()),
                  file=sys.stderr)
    for label, xs in (("burst", burst), ("stream", stream)):
        print(label, "p0 p1 p10 p25 p50 p75 p90 p99 p100 (ms):",
              [pct(xs, q) for q in (0, 1, 10, 25, 50, 75, 90, 99, 100)], file=sys.stderr)


class CpuTrace:
    """CPU time of groups of processes, sampled every 0.1 s (to show who worked when)."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), {name: cpu_seconds(pids)
                                               for name, pids in self.groups.items()}))
            self._stop.wait(0.05 if DEBUG else 0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def cores(self, start: float, end: float) -> dict[str, float]:
        """Cores used by each group between two wall-clock times."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return {}
        (t0, first), (t1, last) = inside[0], inside[-1]
        return {name: (last[name] - first[name]) / (t1 - t0) for name in first}


def _pids(name: str) -> list[int]:
    out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _reasons(results: list[dict]) -> dict[str, int]:
    reasons: dict[str, int] = {}
    for result in results:
        for reason, count in result.get("disconnects", {}).items():
            reasons["disconnect: " + reason] = reasons.get("disconnect: " + reason, 0) + count
        for reason, count in result.get("error_reasons", {}).items():
            reasons[reason] = reasons.get(reason, 0) + count
    return reasons


def _cycle(items):
    while True:
        yield from items


def stress_and_storm(dep: Deployment, county: dict, seconds: float) -> tuple[dict, dict]:
    tokens = county["tokens"]
    screens = [{"token": tokens[f"duty{i % 5}"], "scope": "county", "unit": None}
               for i in range(2000)]
    nodes = [Node(dep, {"kind": "screens", "clients": part, "spread_ms": 25,
                        "client": dep.screens_client}, f"stress{i}")
             for i, part in enumerate(split(screens, 2))]
    ramp = wait_ready(nodes, len(screens), 300)
    time.sleep(3)
    sampler = Sampler(dep)
    gen = [n.proc.pid for n in nodes]
    servers = dep.server_pids()
    cpu0, srv0, t0 = cpu_seconds(gen), cpu_seconds(servers), time.monotonic()
    feed = Node(dep, {"kind": "feeds", "tokens": county["feeds"][:1], "rate": 10,
                      "places": county["places"]}, "stressfeed")
    time.sleep(seconds)
    wall = time.monotonic() - t0
    stress_cpu = ((cpu_seconds(gen) - cpu0) / wall, (cpu_seconds(servers) - srv0) / wall)
    stress_memory = sampler.peak
    # the stress window's latencies are what the screens hold so far: read them at the end
    # from the arrivals before the storm (seq ≤ the last acked before it)
    for node in nodes:
        node.proc.send_signal(signal.SIGUSR2)  # the stress window's latencies end here
    mark = time.monotonic()
    # Reconnect storm: every server process restarted at once while the feed keeps reporting
    for pid in dep.server_pids():
        os.kill(pid, signal.SIGTERM)
    # every screen drops, then comes back through nginx and pages `since` from where it was
    deadline = mark + 120
    time.sleep(1)
    while time.monotonic() < deadline and sum(n.status["ready"] for n in nodes) >= len(screens):
        time.sleep(0.1)  # until the drop is noticed
    back = None
    timeline, shown = [], 0.0  # BENCH_DEBUG: connected / caught up every 5 s
    while time.monotonic() < deadline:
        if sum(n.status["ready"] for n in nodes) >= len(screens):
            back = time.monotonic() - mark
            break
        if DEBUG and time.monotonic() - mark >= shown:
            timeline.append(f"{shown:.0f} s " + " + ".join(
                f"{n.status['connected']:,}/{n.status['ready']:,}" for n in nodes))
            shown += 5
        time.sleep(0.25)
    if DEBUG:
        print("storm, connected/caught up: " + ", ".join(timeline), flush=True)
    time.sleep(10)  # the feed keeps going on the new processes
    ready_at_end = sum(n.status["ready"] for n in nodes)
    feed_result = feed.finish()
    time.sleep(3)
    results = [n.finish() for n in nodes]
    memory = sampler.stop()
    acks = feed_result["acks"]
    before = [a for a in acks if a[2] / 1000 < time.time() - (time.monotonic() - mark)]
    latencies = [x for r in results for x in r["latencies"][:r.get("marked", 0)]]
    missing, checked = lost(results, acks)
    if DEBUG:
        print("screens' event loops, longest wait: " + ", ".join(
            f"{r.get('loop_delay_max_ms', 0):.0f} ms" for r in results), flush=True)
    if DEBUG and missing:
        _show_lost(results, acks, time.time() - (time.monotonic() - mark))
    reconnects = sum(r["reconnects"] for r in results)
    stress = {"ramp_s": ramp, "acked": len(before), "p50": pct(latencies, 50),
              "p99": pct(latencies, 99), "n": len(latencies), "gen_cpu": stress_cpu[0],
              "srv_cpu": stress_cpu[1], "memory_mb": stress_memory}
    storm = {"back_s": back, "reconnects": reconnects, "lost": missing, "checked": checked,
             "acked": len(acks), "memory_mb": memory, "feed_errors": feed_result["errors"],
             "ready_at_end": ready_at_end, "screens": len(screens),
             "states": _reasons([{"error_reasons": r.get("states", {})} for r in results]),
             "error_reasons": _reasons([feed_result, *results])}
    return stress, storm


# --- table ---------------------------------------------------------------------------------------

def fmt(value, spec=".0f", unit="") -> str:
    return "—" if value is None else f"{value:{spec}}{unit}"


def table(setup: str, peak: dict | None, stress: dict | None, storm: dict | None) -> list[str]:
    rows = [("scenario / measure", "measured", "target", "ok")]

    def add(name, value, target, ok):
        rows.append((name, value, target, "yes" if ok else "NO"))

    if peak:
        add("county peak: /live delivery p99 (p50)",
            f"{fmt(peak['live_p99'])} ms ({fmt(peak['live_p50'])} ms, n={peak['live_n']:,})",
            "≤ 300 ms", peak["live_p99"] is not None and peak["live_p99"] <= TARGETS["live_p99"])
        add("county peak: order → /field p99 (p50)",
            f"{fmt(peak['order_p99'])} ms ({fmt(peak['order_p50'])} ms, n={peak['order_n']:,})",
            "≤ 300 ms",
            peak["order_p99"] is not None and peak["order_p99"] <= TARGETS["order_p99"])
        add("county peak: lost (acked × covering screens)",
            f"{peak['lost']} of {peak['checked']:,}", "0", peak["lost"] == 0)
        add("county peak: memory, servers' RSS summed", f"{peak['memory_mb']:.0f} MB",
            "≤ 1,536 MB", peak["memory_mb"] <= TARGETS["memory_mb"])
        rows.append(("county peak: clients ready after (s)", f"{peak['ramp_s']:.0f} "
                     f"({peak['clients']:,} clients)", "", ""))
        rows.append(("county peak: reports acked / orders sent",
                     f"{peak['acked']:,} / {peak['orders']} (errors {peak['feed_errors']}, "
                     f"{peak['order_errors']})", "", ""))
        rows.append(("county peak: CPU servers / generator (cores)",
                     f"{peak['srv_cpu']:.2f} / {peak['gen_cpu']:.2f}", "", ""))
        if peak.get("burst_p99") is not None:
            rows.append(("county peak: the steady stream's p99; the burst's p50 / p99",
                         f"{fmt(peak['stream_p99'])} ms; {fmt(peak['burst_p50'])} / "
                         f"{fmt(peak['burst_p99'])} ms", "", ""))
            rows.append(("county peak: the burst of 500 stored and acked after",
                         fmt(peak["burst_acked_ms"], ".0f", " ms"), "", ""))
        if peak.get("burst_cpu"):
            rows.append(("county peak: cores in the burst's first second", ", ".join(
                f"{k} {v:.2f}" for k, v in peak["burst_cpu"].items()), "", ""))
        rows.append(("county peak: generator's longest event-loop stall",
                     f"{peak['gen_loop_max_ms']:.0f} ms", "", ""))
        rows.append(("county peak: screens and phones reconnected (times)",
                     f"{peak.get('reconnects', 0):,}", "", ""))
        if peak.get("error_reasons"):
            rows.append(("county peak: client errors", "; ".join(
                f"{k} × {v}" for k, v in sorted(peak["error_reasons"].items())), "", ""))
    if stress:
        add("stress: 2,000 county screens, 10/s: p99 (p50)",
            f"{fmt(stress['p99'])} ms ({fmt(stress['p50'])} ms, n={stress['n']:,})",
            "≤ 500 ms", stress["p99"] is not None and stress["p99"] <= TARGETS["stress_p99"])
        rows.append(("stress: CPU servers / generator (cores); RSS",
                     f"{stress['srv_cpu']:.2f} / {stress['gen_cpu']:.2f}; "
                     f"{stress['memory_mb']:.0f} MB", "", ""))
    if storm:
        add("reconnect storm: 2,000 back and caught up",
            f"{fmt(storm['back_s'], '.1f', ' s')} ({storm['reconnects']:,} reconnects)",
            "≤ 60 s", storm["back_s"] is not None and storm["back_s"] <= TARGETS["storm_s"])
        add("reconnect storm: lost", f"{storm['lost']} of {storm['checked']:,}", "0",
            storm["lost"] == 0)
        if storm["back_s"] is None:
            rows.append(("reconnect storm: screens caught up at the end",
                         f"{storm['ready_at_end']:,} of {storm['screens']:,}", "", ""))
            rows.append(("reconnect storm: screens at the end", "; ".join(
                f"{k} × {v:,}" for k, v in sorted(storm.get("states", {}).items())), "", ""))
        if storm.get("error_reasons"):
            rows.append(("reconnect storm: client errors and disconnects", "; ".join(
                f"{k} × {v}" for k, v in sorted(storm["error_reasons"].items())), "", ""))
    width = [max(len(str(r[i])) for r in rows) for i in range(4)]
    lines = [setup, ""]
    for k, row in enumerate(rows):
        lines.append("  ".join(str(c).ljust(width[i]) for i, c in enumerate(row)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in width))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="server processes (default 2)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window")
    parser.add_argument("--only", choices=("peak", "stress"), default=None,
                        help="one scenario (stress includes the reconnect storm)")
    parser.add_argument("--screens", choices=("light", "socket.io"), default="light",
                        help="the screens' client: load.js's own minimal one (default) or "
                             "socket.io-client")
    args = parser.parse_args(argv)
    if shutil.which("node") is None:
        print("bench-load needs Node.js (node) on PATH", file=sys.stderr)
        return 2
    if not all((LOAD_DIR / "node_modules" / m).is_dir() for m in ("socket.io-client", "ws")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=LOAD_DIR,
                       check=True)
    dep = Deployment(args.workers)
    dep.screens_client = args.screens
    peak = stress = storm = None
    try:
        county = populate(dep)
        dep.start()
        import redis
        import sqlalchemy as sa

        engine = sa.create_engine(dep.server_pg)
        with engine.connect() as conn:
            pg_version = conn.exec_driver_sql("SHOW server_version").scalar()
        engine.dispose()
        redis_version = redis.Redis.from_url(dep.env["CMDCENTER_REDIS_URL"]).info()[
            "redis_version"]
        server = _server_kind()
        setup = (f"{args.workers} server processes (cmdcenter serve --workers {args.workers}, "
                 f"{server}) behind nginx (TLS, the shipped config); PostgreSQL {pg_version} "
                 f"and Redis {redis_version} on this host; {os.cpu_count()} CPUs shared with "
                 f"the Node generator (screens on {_CLIENTS[args.screens]}); users import "
                 f"of {GRID_ACCOUNTS:,} grid accounts "
                 f"{county['import_s']:.0f} s")
        print(setup, flush=True)
        if args.only in (None, "peak"):
            try:
                peak = county_peak(dep, county, args.seconds)
            except Exception as exc:  # the other scenarios still run
                print(f"county peak failed: {exc}", flush=True)
            print("\n".join(table("", peak, None, None)), flush=True)
        if args.only in (None, "stress"):
            if peak is not None:
                dep.restart()
            try:
                stress, storm = stress_and_storm(dep, county, args.seconds)
            except Exception as exc:
                print(f"stress / reconnect storm failed: {exc}", flush=True)
        print("\n".join(table(setup, peak, stress, storm)))
        (ROOT / "bench" / "load" / "last.json").write_text(json.dumps(
            {"setup": setup, "peak": peak, "stress": stress, "storm": storm}, indent=1))
    finally:
        dep.close()
    return 0


_CLIENTS = {"light": "load.js's minimal Socket.IO client", "socket.io": "socket.io-client"}


def _server_kind() -> str:
    from command.web import app

    import inspect

    source = inspect.getsource(app.serve)
    for name in ("gunicorn", "gevent", "uvicorn", "werkzeug"):
        if name in source.lower():
            return name.capitalize() + (" dev server" if name == "werkzeug" else "")
    return "server"


if __name__ == "__main__":
    sys.exit(main())
