"""Feed → `/live` latency: emit at a steady rate, time each report until a `/live` client sees it.

Both clients live in this process, so one clock times both ends: from just before the emit to
the receipt of the `incidents` message that carries the report (matched by source_id).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

TARGET_P99_MS = 100.0


@dataclass
class LatencyResult:
    sent: int
    seen: int
    latencies_ms: list[float] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)  # emit → ack (stored), for comparison

    def percentile(self, q: float, *, acks: bool = False) -> float:
        values = sorted(self.ack_ms if acks else self.latencies_ms)
        if not values:
            return float("nan")
        k = min(len(values) - 1, max(0, round(q / 100 * len(values) + 0.5) - 1))
        return values[k]


def measure(url: str, token: str, *, reader_token: str, rate: float = 200.0,
            seconds: float = 15.0, prefix: str = "lat") -> LatencyResult:
    """Send `rate` reports/s for `seconds` and time their arrival on `/live`."""
    from bench.ingest import client as bench_client

    from command.demo.simulate import ReportFactory
    from layers.demo import demo_county

    n = int(rate * seconds)
    reports = ReportFactory(demo_county(), seed=7, id_prefix=prefix, malformed=0,
                            resend=0).batch(n, now=datetime.now(timezone.utc))
    emitted: dict[str, float] = {}
    arrived: dict[str, float] = {}
    acked: dict[str, float] = {}
    all_seen = threading.Event()

    live = bench_client()

    @live.on("incidents", namespace="/live")
    def _incidents(items):
        at = time.perf_counter()
        for item in items:
            sid = item.get("source_id")
            if sid in emitted and sid not in arrived:
                arrived[sid] = at
        if len(arrived) >= n:
            all_seen.set()

    def _acked(key):
        acked[key] = time.perf_counter()
        acks.release()

    feed = bench_client()
    live.connect(url, namespaces=["/live"], transports=["websocket"], wait_timeout=10,
                 auth={"token": reader_token})
    feed.connect(url, namespaces=["/feed"], transports=["websocket"], auth={"token": token},
                 wait_timeout=10)
    acks = threading.Semaphore(1000)
    try:
        start = time.perf_counter()
        for i, report in enumerate(reports):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            acks.acquire()
            emitted[report["id"]] = time.perf_counter()
            feed.emit("report", report, namespace="/feed",
                      callback=lambda *_, k=report["id"]: _acked(k))
        all_seen.wait(5.0)
    finally:
        feed.disconnect()
        live.disconnect()
    latencies = [(arrived[k] - emitted[k]) * 1000 for k in arrived]
    ack_ms = [(acked[k] - emitted[k]) * 1000 for k in acked]
    return LatencyResult(sent=n, seen=len(arrived), latencies_ms=latencies, ack_ms=ack_ms)


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.latency [--rate R] [--seconds S]`: one `cmdcenter serve` process
    (SQLite, fresh temp dir), feed → /live p50/p95/p99 and emit → ack."""
    import argparse
    import shutil
    import tempfile
    from pathlib import Path

    from bench.server import BenchServer

    parser = argparse.ArgumentParser(prog="python -m bench.latency",
                                     description=main.__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="cmdcenter-latency-"))
    server = BenchServer(tmp / "data", {"CMDCENTER_RATE_PER_SECOND": "1000000000",
                                        "CMDCENTER_RATE_BURST": "1000000000"})
    try:
        server.start()
        result = measure(server.url, server.add_feed("latency", "DEMO-T01"),
                         reader_token=server.add_user_token("latency-reader"), rate=args.rate,
                         seconds=args.seconds)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"feed → /live at {args.rate:g} reports/s for {args.seconds:g} s, one server process "
          f"(SQLite): {result.seen}/{result.sent} seen")
    print("  feed → /live p50 / p95 / p99 (ms)  " + " / ".join(
        f"{result.percentile(q):.1f}" for q in (50, 95, 99)) + f"   target p99 ≤ {TARGET_P99_MS:g}")
    print("  emit → ack   p50 / p95 / p99 (ms)  " + " / ".join(
        f"{result.percentile(q, acks=True):.1f}" for q in (50, 95, 99)))
    return 0 if result.percentile(99) <= TARGET_P99_MS and result.seen == result.sent else 1


if __name__ == "__main__":
    import sys

    sys.exit(main())
