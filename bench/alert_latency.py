"""Alert latency: a Ⅰ级 report until its red alert is on `/live`, and an acknowledgement until a
second `/live` client has the new status.

Everything runs in this process, so one clock times both ends:
- raise: from just before the feed emits a severity-1 report to the receipt of the `alerts`
  message carrying the red `severity` alert of that report's incident (matched by incident id,
  which the feed's ack names); REPORTS reports spread over every township at RATE per second;
- ack: from just before `POST /api/v1/alerts/{id}/ack` (a duty officer) to the receipt, on a
  second `/live` client (a leader), of that alert with status `acknowledged`; one after another
  with ACK_GAP between them, as a duty officer clicks through them. (Back to back, each change
  would also wait for the broadcaster's flush window behind the one before: ~50 ms, which is
  the pacing of the window and not what one click costs.)
``python -m bench.alert_latency`` runs it alone.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from bench.server import BenchServer

REPORTS = 200
RATE = 10.0  # reports per second: a bad hour squeezed into 20 seconds
ACKS = 100
ACK_GAP = 0.2  # seconds between two acknowledgements (a quick duty officer)
TARGET_RAISE_P99_MS = 1000.0  # "a red alert within a second or two": the stricter end
TARGET_ACK_P99_MS = 200.0     # as an order reaching /field (bench/propagation.py)
WAIT_SECONDS = 10.0  # an alert not seen by then counts as lost
CST = timezone(timedelta(hours=8))


def run(reports: int = REPORTS, acks: int = ACKS, rate: float = RATE) -> dict:
    """Start a server, send `reports` Ⅰ级 reports, then acknowledge `acks` of their alerts."""
    import socketio

    from bench.ingest import client as bench_client

    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="cmdcenter-alerts-"))
    server = BenchServer(tmp / "data", {"CMDCENTER_RATE_PER_SECOND": "1000000000",
                                        "CMDCENTER_RATE_BURST": "1000000000"})
    raised: dict[str, tuple[float, dict]] = {}   # incident id -> (first receipt, red alert)
    acked: dict[str, float] = {}                 # alert id -> receipt of "acknowledged"
    seen = threading.Condition()
    emitted: dict[str, float] = {}               # report id -> emit time
    incident_of: dict[str, str] = {}             # report id -> incident id
    clients: list = []
    raise_ms: list[float] = []
    ack_ms: list[float] = []
    post_ms: list[float] = []
    lost_raise = lost_ack = 0
    error = None
    try:
        server.start()
        feed_token = server.add_feed("alert-bench", "DEMO-T01")
        duty = server.add_user_token("bench-duty", "duty")
        leader = server.add_user_token("bench-leader", "leader")

        def on_raised(items):
            at = time.perf_counter()
            with seen:
                for a in items:
                    if a.get("rule") == "severity" and a.get("level") == "red":
                        for incident_id in a.get("incidents", []):
                            raised.setdefault(incident_id, (at, a))
                seen.notify_all()

        def on_acked(items):
            at = time.perf_counter()
            with seen:
                for a in items:
                    if a.get("status") == "acknowledged":
                        acked.setdefault(a["id"], at)
                seen.notify_all()

        for token, handler in ((duty, on_raised), (leader, on_acked)):
            client = bench_client()
            client.on("alerts", handler, namespace="/live")
            client.connect(server.url, namespaces=["/live"], transports=["websocket"],
                           auth={"token": token}, wait_timeout=10)
            clients.append(client)
        feed = bench_client()
        feed.connect(server.url, namespaces=["/feed"], transports=["websocket"],
                     auth={"token": feed_token}, wait_timeout=10)
        clients.append(feed)

        # --- raise: Ⅰ级 reports over every township at a steady rate -----------------------
        batch = _reports(reports)
        answered = threading.Semaphore(0)

        def on_ack(report_id):
            def done(ack):
                if isinstance(ack, dict) and ack.get("ok"):
                    incident_of[report_id] = ack["incident"]["id"]
                answered.release()
            return done

        t0 = time.perf_counter()
        for i, report in enumerate(batch):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            emitted[report["id"]] = time.perf_counter()
            feed.emit("report", report, namespace="/feed", callback=on_ack(report["id"]))
        for _ in batch:
            if not answered.acquire(timeout=WAIT_SECONDS):
                break
        wanted = set(incident_of.values())
        with seen:
            seen.wait_for(lambda: wanted <= raised.keys(), WAIT_SECONDS)
            for report_id, incident_id in incident_of.items():
                if incident_id in raised:
                    raise_ms.append((raised[incident_id][0] - emitted[report_id]) * 1000)
        lost_raise = len(batch) - len(raise_ms)

        # --- ack: one after another, seen by the second client -------------------------------
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {duty}"
        alert_ids = [raised[i][1]["id"] for i in list(incident_of.values())[:acks] if i in raised]
        for alert_id in alert_ids:
            time.sleep(ACK_GAP)
            t1 = time.perf_counter()
            r = http.post(f"{server.url}/api/v1/alerts/{alert_id}/ack", json={}, timeout=30)
            post_ms.append((time.perf_counter() - t1) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"POST ack: {r.status_code} {r.text[:300]}")
            with seen:
                seen.wait_for(lambda a=alert_id: a in acked, WAIT_SECONDS)
                if alert_id in acked:
                    ack_ms.append((acked[alert_id] - t1) * 1000)
                else:
                    lost_ack += 1
    except (socketio.exceptions.ConnectionError, requests.RequestException, RuntimeError,
            OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"  # a broken server is a result too
    finally:
        server.stop()  # first: a client leaving a live server waits ~3 s for its close frame
        for client in clients:
            client.disconnect()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "reports": reports, "rate": rate, "raised": len(raise_ms), "lost_raise": lost_raise,
        "raise_p50_ms": _percentile(raise_ms, 50), "raise_p99_ms": _percentile(raise_ms, 99),
        "raise_max_ms": max(raise_ms, default=float("nan")),
        "acks": len(ack_ms) + lost_ack, "lost_ack": lost_ack,
        "ack_p50_ms": _percentile(ack_ms, 50), "ack_p99_ms": _percentile(ack_ms, 99),
        "ack_post_p50_ms": _percentile(post_ms, 50), "seconds": time.monotonic() - started,
        "error": error,
    }
    if error:
        print(f"alert latency: failed: {error}", flush=True)
        return result
    print(f"alert latency: {reports} Ⅰ级 reports at {rate:g}/s → red alert on /live: "
          f"p50 {result['raise_p50_ms']:.1f} ms, p99 {result['raise_p99_ms']:.1f} ms, "
          f"max {result['raise_max_ms']:.1f} ms ({len(raise_ms)} seen, {lost_raise} lost); "
          f"ack → second /live client: p50 {result['ack_p50_ms']:.1f} ms, "
          f"p99 {result['ack_p99_ms']:.1f} ms ({result['acks']} acks, {lost_ack} lost; "
          f"POST p50 {result['ack_post_p50_ms']:.1f} ms; {result['seconds']:.0f} s)", flush=True)
    return result


def ok_raise(figures: dict) -> bool:
    """Whether the raise phase met its target: p99 within it, nothing lost, no error."""
    return (not figures["error"] and not figures["lost_raise"]
            and figures["raise_p99_ms"] <= TARGET_RAISE_P99_MS)


def ok_ack(figures: dict) -> bool:
    """Whether the ack phase met its target: p99 within it, nothing lost, no error."""
    return (not figures["error"] and not figures["lost_ack"] and figures["acks"] > 0
            and figures["ack_p99_ms"] <= TARGET_ACK_P99_MS)


def _reports(n: int, seed: int = 11) -> list[dict]:
    """`n` Ⅰ级 reports, one after another over the townships, each inside one of its grids."""
    import shapely

    from layers.demo import demo_county

    rng = random.Random(seed)
    units = demo_county()
    grids = units[units["level"] == "grid"]
    by_township = [list(g.geometry) for _, g in grids.groupby("parent")]
    now = datetime.now(CST)
    out = []
    for i in range(n):
        poly = rng.choice(by_township[i % len(by_township)])
        x0, y0, x1, y1 = poly.bounds
        while True:
            lon, lat = rng.uniform(x0, x1), rng.uniform(y0, y1)
            if poly.contains(shapely.Point(lon, lat)):
                break
        out.append({"id": f"alert-bench-{uuid.uuid4().hex[:12]}", "type": "emergency",
                    "title": f"告警测试 {i}：厂房爆炸起火", "lon": lon, "lat": lat, "severity": 1,
                    "people": rng.randint(1, 5),
                    "occurred_at": (now - timedelta(seconds=n - i)).isoformat(timespec="seconds")})
    return out


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


if __name__ == "__main__":
    figures = run()
    raise SystemExit(0 if ok_raise(figures) and ok_ack(figures) else 1)
