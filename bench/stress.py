"""The Stress scenario: 2,000 county-level screens on `/live` while a feed reports 10/s.

`python -m bench.stress [--screens N] [--rate R] [--seconds S] [--node-procs K] [--postgres]`

Starts one `cmdcenter serve` process (SQLite in a fresh temp dir, or a fresh PostgreSQL database
with `--postgres`; no Redis), opens the screens from K Node processes (socket.io-client from npm,
installed into bench/stress/ on first use: much lighter per connection than a Python client, so
the generator is not the bottleneck — its CPU is printed), then a feed in this process emits R
reports/s for S seconds. Each report's id carries its emit time in ms; a screen times each report
on arrival. Prints delivery p50/p99/max over every (screen, report), "lost" (acked ids a screen
never saw), the server's peak RSS and CPU, and the generator's CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.server import BenchServer

HERE = Path(__file__).resolve().parent / "stress"
TARGET_P99_MS = 500.0


def ensure_node_client() -> None:
    """`npm install` socket.io-client into bench/stress/ when it is missing."""
    if shutil.which("node") is None:
        raise SystemExit("bench.stress needs Node.js (Debian: apt-get install nodejs npm)")
    if not (HERE / "node_modules" / "socket.io-client").is_dir():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=HERE,
                       check=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    """Resident memory of a process in MB (VmHWM: its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(histogram: dict[int, int], q: float) -> float:
    """The q-th percentile of a {ms: count} histogram."""
    total = sum(histogram.values())
    if not total:
        return float("nan")
    rank = max(1, math.ceil(q / 100 * total))
    seen = 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen >= rank:
            return float(ms)
    return float(max(histogram))


class Screens:
    """K Node processes holding the screens between them."""

    def __init__(self, url: str, token: str, count: int, procs: int, prefix: str) -> None:
        shares = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
        self.procs = [subprocess.Popen(
            ["node", str(HERE / "screens.js"), url, token, str(n), prefix], cwd=HERE,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
            for n in shares if n]

    def wait_ready(self, timeout: float) -> int:
        """Wait until every process has connected all its screens; return how many are."""
        ready = 0
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            line = _readline(proc, max(1.0, deadline - time.monotonic()))
            if not line or not line.startswith("ready"):
                raise RuntimeError(f"screens did not connect in time ({line!r})")
            ready += int(line.split()[1])
        return ready

    def report(self, acked_path: Path) -> list[dict]:
        out = []
        for proc in self.procs:
            proc.stdin.write(f"report {acked_path}\n")
            proc.stdin.flush()
        for proc in self.procs:
            out.append(json.loads(_readline(proc, 120)))
        return out

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs if p.poll() is None)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0].strip() if box else ""


def feed_reports(url: str, token: str, *, rate: float, seconds: float, prefix: str) -> dict:
    """Emit `rate` reports/s for `seconds`; return acked ids and emit → ack times."""
    from bench.ingest import client as bench_client
    from command.demo.simulate import ReportFactory
    from layers.demo import demo_county

    n = int(rate * seconds)
    reports = ReportFactory(demo_county(), seed=11, id_prefix=prefix, malformed=0,
                            resend=0).batch(n, now=datetime.now(timezone.utc))
    acked: list[str] = []
    ack_ms: list[float] = []
    done = threading.Semaphore(0)
    feed = bench_client()
    feed.connect(url, namespaces=["/feed"], transports=["websocket"], auth={"token": token},
                 wait_timeout=10)

    def on_ack(report_id: str, sent: float, answer) -> None:
        if isinstance(answer, dict) and answer.get("ok"):
            acked.append(report_id)
            ack_ms.append((time.time() - sent) * 1000)
        done.release()

    try:
        start = time.monotonic()
        for i, report in enumerate(reports):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent = time.time()
            report["id"] = f"{prefix}-{i}-{int(sent * 1000)}"
            feed.emit("report", report, namespace="/feed",
                      callback=lambda answer=None, k=report["id"], s=sent: on_ack(k, s, answer))
        for _ in reports:
            if not done.acquire(timeout=30):
                break
    finally:
        feed.disconnect()
    return {"sent": n, "acked": acked, "ack_ms": sorted(ack_ms)}


def run(*, screens: int = 2000, rate: float = 10.0, seconds: float = 60.0, node_procs: int = 2,
        postgres: bool = False, env: dict[str, str] | None = None, keep: bool = False) -> dict:
    """Run the scenario once; return its figures."""
    ensure_node_client()
    tmp = Path(tempfile.mkdtemp(prefix="cmdcenter-stress-"))
    server_env = {"CMDCENTER_RATE_PER_SECOND": "1000000", "CMDCENTER_RATE_BURST": "1000000",
                  **(env or {})}
    database = None
    if postgres:
        database = _fresh_postgres()
        server_env["CMDCENTER_DATABASE_URL"] = database[0]
    server = BenchServer(tmp / "data", server_env)
    screens_proc = None
    try:
        server.start()
        token = server.add_feed("stress-feed", "DEMO-T01")
        reader = server.add_user_token("stress-reader")
        prefix = f"st{int(time.time()) % 100000}"
        t0 = time.monotonic()
        screens_proc = Screens(server.url, reader, screens, node_procs, prefix)
        ready = screens_proc.wait_ready(timeout=max(120.0, screens / 10))
        connect_s = time.monotonic() - t0
        time.sleep(2.0)
        server_cpu0, gen_cpu0, t1 = cpu_seconds(server.pid), screens_proc.cpu(), time.monotonic()
        fed = feed_reports(server.url, token, rate=rate, seconds=seconds, prefix=prefix)
        time.sleep(3.0)  # the last reports' way to the screens
        wall = time.monotonic() - t1
        server_cpu = (cpu_seconds(server.pid) - server_cpu0) / wall
        gen_cpu = (screens_proc.cpu() - gen_cpu0) / wall
        peak_rss = rss_mb(server.pid, "VmHWM")
        acked_path = tmp / "acked.txt"
        acked_path.write_text("\n".join(fed["acked"]) + "\n")
        parts = screens_proc.report(acked_path)
    finally:
        if screens_proc is not None:
            screens_proc.close()
        server.stop()
        if database is not None:
            _drop_postgres(database[1])
        if keep:
            print(f"bench: kept {tmp} (server log: {server.log})", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    histogram: dict[int, int] = {}
    for part in parts:
        for ms, count in part["histogram"].items():
            histogram[int(ms)] = histogram.get(int(ms), 0) + count
    return {
        "screens": screens, "ready": ready, "connect_s": connect_s, "rate": rate,
        "seconds": seconds, "sent": fed["sent"], "acked": len(fed["acked"]),
        "deliveries": sum(histogram.values()),
        "p50_ms": percentile(histogram, 50), "p99_ms": percentile(histogram, 99),
        "max_ms": float(max(histogram)) if histogram else float("nan"),
        "lost": sum(p["lost"] for p in parts),
        "disconnects": sum(p["disconnects"] for p in parts),
        "ack_p99_ms": fed["ack_ms"][int(0.99 * (len(fed["ack_ms"]) - 1))] if fed["ack_ms"]
        else float("nan"),
        "server_rss_mb": peak_rss, "server_cpu": server_cpu, "generator_cpu": gen_cpu,
        "node_procs": len(parts), "database": "PostgreSQL" if postgres else "SQLite",
    }


def _fresh_postgres() -> tuple[str, str]:
    import psycopg

    base = os.environ.get("CMDCENTER_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"cmdcenter_stress_{os.getpid()}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name, name


def _drop_postgres(name: str) -> None:
    import psycopg

    base = os.environ.get("CMDCENTER_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def summary(r: dict) -> str:
    """The figures as a few lines."""
    ok = r["p99_ms"] <= TARGET_P99_MS and r["lost"] == 0
    return "\n".join([
        f"Stress: {r['ready']}/{r['screens']} screens on /live (connected in "
        f"{r['connect_s']:.0f} s), a feed at {r['rate']:g}/s for {r['seconds']:g} s; one server "
        f"process, {r['database']}, no Redis",
        f"  reports sent / acked            {r['sent']} / {r['acked']}",
        f"  deliveries                      {r['deliveries']:,} "
        f"(expected {r['acked'] * r['screens']:,})",
        f"  delivery p50 / p99 / max (ms)   {r['p50_ms']:.0f} / {r['p99_ms']:.0f} / "
        f"{r['max_ms']:.0f}   target p99 ≤ {TARGET_P99_MS:g}  {'PASS' if ok else 'MISS'}",
        f"  lost (acked, not seen)          {r['lost']}   (screen disconnects: "
        f"{r['disconnects']})",
        f"  feed emit → ack p99 (ms)        {r['ack_p99_ms']:.0f}",
        f"  server peak RSS                 {r['server_rss_mb']:.0f} MB",
        f"  server CPU                      {r['server_cpu'] * 100:.0f} % of a core",
        f"  generator CPU ({r['node_procs']} Node procs)   "
        f"{r['generator_cpu'] * 100:.0f} % of a core",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stress",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--screens", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--node-procs", type=int, default=2)
    parser.add_argument("--postgres", action="store_true",
                        help="a fresh database on CMDCENTER_BENCH_POSTGRES "
                             "(default postgresql://postgres@127.0.0.1:5432/test)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server log)")
    args = parser.parse_args(argv)
    result = run(screens=args.screens, rate=args.rate, seconds=args.seconds,
                 node_procs=args.node_procs, postgres=args.postgres, keep=args.keep)
    print(summary(result))
    return 0 if result["p99_ms"] <= TARGET_P99_MS and result["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
