"""Order propagation: `POST /api/v1/orders` to a township, the township's forward to a grid, until
the `/field` clients of that grid's workers have the new node; 100 workers connected.

Everything runs in this process, so one clock times both ends: from just before the leader's POST
to the receipt of the `orders` message carrying the forwarded node, for every worker of the grid
(each order is measured at every worker of its grid). Orders go one after another, as a leader
and a township officer would issue them. ``python -m bench.propagation`` runs it alone.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import requests

from bench.server import BenchServer

WORKERS = 100
ORDERS = 100
TOWNSHIPS = ("DEMO-T01", "DEMO-T02")
GRIDS_PER_TOWNSHIP = 10  # 20 grids, 5 workers each
TARGET_P99_MS = 200.0
WAIT_SECONDS = 5.0  # a node not seen by then counts as lost


def run(orders: int = ORDERS, workers: int = WORKERS) -> dict:
    """Start a server, connect `workers` /field clients, issue and forward `orders`; the figures."""
    import socketio

    from bench.ingest import client as bench_client

    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="cmdcenter-propagation-"))
    grids, tokens = _people(tmp / "data", workers)
    server = BenchServer(tmp / "data", {"CMDCENTER_SUPERVISION_SECONDS": "60"}).start()
    arrivals: dict[tuple[int, str], float] = {}  # (worker, node id) -> first receipt
    arrived = threading.Condition()
    clients: list = []
    by_grid: dict[str, list[int]] = {}
    latencies: list[float] = []
    post_ms: list[float] = []
    forward_ms: list[float] = []
    lost, error = 0, None
    try:
        feed = server.add_feed("propagation", "DEMO-T01")
        http = requests.Session()
        incidents = [_incident(http, server.url, feed, i) for i in range(10)]
        for w, (grid, token) in enumerate(tokens["workers"]):
            client = bench_client()
            client.on("orders", _recorder(w, arrivals, arrived), namespace="/field")
            client.connect(server.url, namespaces=["/field"], transports=["websocket"],
                           auth={"token": token}, wait_timeout=10)
            clients.append((grid, client))
        for w, (grid, _) in enumerate(tokens["workers"]):
            by_grid.setdefault(grid, []).append(w)

        for i in range(orders):
            township = TOWNSHIPS[i % len(TOWNSHIPS)]
            grid = grids[township][(i // len(TOWNSHIPS)) % len(grids[township])]
            t0 = time.perf_counter()
            order = _post(http, server.url, tokens["leader"], "/api/v1/orders", {
                "incident_id": incidents[i % len(incidents)], "targets": [township],
                "instruction": f"第{i}号指令：立即到场调处"})
            t1 = time.perf_counter()
            (child,) = _post(http, server.url, tokens[township],
                             f"/api/v1/orders/{order['nodes'][0]['id']}/forward",
                             {"targets": [grid]})
            t2 = time.perf_counter()
            post_ms.append((t1 - t0) * 1000)
            forward_ms.append((t2 - t1) * 1000)
            keys = [(w, child["id"]) for w in by_grid[grid]]
            with arrived:
                arrived.wait_for(lambda keys=keys: all(k in arrivals for k in keys),
                                 WAIT_SECONDS)
                seen = [arrivals[k] for k in keys if k in arrivals]
            lost += len(keys) - len(seen)
            latencies += [(at - t0) * 1000 for at in seen]
    except (socketio.exceptions.ConnectionError, requests.RequestException, RuntimeError) as exc:
        # a broken server is a result too: the table shows it
        error = f"{type(exc).__name__}: {exc}"
    finally:
        server.stop()  # first: a client leaving a live server waits ~3 s for its close frame
        for _, client in clients:
            client.disconnect()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "orders": orders, "workers": workers, "grids": len(by_grid), "samples": len(latencies),
        "lost": lost, "p50_ms": _percentile(latencies, 50), "p99_ms": _percentile(latencies, 99),
        "max_ms": max(latencies, default=float("nan")),
        "post_p50_ms": _percentile(post_ms, 50), "forward_p50_ms": _percentile(forward_ms, 50),
        "seconds": time.monotonic() - started, "target_p99_ms": TARGET_P99_MS, "error": error,
    }
    if error:
        print(f"propagation: failed: {error}", flush=True)
        return result
    print(f"propagation: POST /api/v1/orders + forward → /field of the grid's workers, "
          f"{orders} orders, {workers} workers on {result['grids']} grids: "
          f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
          f"max {result['max_ms']:.1f} ms ({result['samples']} receipts, {lost} lost; "
          f"POST p50 {result['post_p50_ms']:.1f} ms, forward p50 "
          f"{result['forward_p50_ms']:.1f} ms; {result['seconds']:.0f} s)", flush=True)
    return result


def ok(figures: dict) -> bool:
    """Whether a run met the target: p99 within it, nothing lost, no error."""
    return not figures["error"] and not figures["lost"] and figures["p99_ms"] <= TARGET_P99_MS


def _people(data_dir: Path, workers: int) -> tuple[dict[str, list[str]], dict]:
    """Users straight into the fresh database (100 CLI runs would take minutes); their tokens."""
    from command.config import Settings
    from command.core import Core
    from command.users import service as users

    core = Core(Settings(data_dir=data_dir))
    try:
        with core.write() as session, session.begin():
            now = core.clock.now()
            grids = {t: [u.code for u in _grids(session, t)][:GRIDS_PER_TOWNSHIP]
                     for t in TOWNSHIPS}
            spread = [g for pair in zip(*grids.values()) for g in pair]
            tokens: dict = {"workers": []}
            users.create(session, name="bench-leader", role="leader", unit_code=None,
                         password=None, now=now)
            tokens["leader"] = users.issue_token(session, name="bench-leader")
            for township in TOWNSHIPS:
                name = f"bench-{township}"
                users.create(session, name=name, role="township", unit_code=township,
                             password=None, now=now)
                tokens[township] = users.issue_token(session, name=name)
            for w in range(workers):
                grid = spread[w % len(spread)]
                name = f"bench-worker-{w:03d}"
                users.create(session, name=name, role="grid", unit_code=grid, password=None,
                             now=now)
                tokens["workers"].append((grid, users.issue_token(session, name=name)))
    finally:
        core.engine.dispose()
    return grids, tokens


def _grids(session, township: str) -> list:
    import sqlalchemy as sa

    from command.units.models import units

    return session.execute(sa.select(units.c.code).where(
        units.c.parent == township, units.c.level == "grid").order_by(units.c.code)).all()


def _incident(http: requests.Session, url: str, feed: str, i: int) -> str:
    from datetime import UTC, datetime

    from command.clock import iso_shanghai

    r = http.post(url + "/api/v1/reports", headers={"Authorization": f"Bearer {feed}"},
                  json={"id": f"prop-{i}", "type": "突发事件", "title": f"传播测试 {i}",
                        "occurred_at": iso_shanghai(datetime.now(UTC)),
                        "lon": 120.2, "lat": 30.05, "severity": 3}, timeout=30)
    r.raise_for_status()
    return r.json()["incident"]["id"]


def _post(http: requests.Session, url: str, token: str, path: str, body: dict):
    r = http.post(url + path, json=body, headers={"Authorization": f"Bearer {token}"},
                  timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"POST {path}: {r.status_code} {r.text[:300]}")
    return r.json()


def _recorder(worker: int, arrivals: dict, arrived: threading.Condition):
    def on_orders(nodes):
        at = time.perf_counter()
        with arrived:
            for node in nodes:
                arrivals.setdefault((worker, node["id"]), at)
            arrived.notify_all()
    return on_orders


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


if __name__ == "__main__":
    figures = run()
    raise SystemExit(0 if ok(figures) else 1)
