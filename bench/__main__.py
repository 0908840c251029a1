"""`python -m bench`: ingest throughput, feed → /live latency, locate throughput, order propagation,
alert latency, month-brief time, the window over 1M matters, a year's figures over 200k matters
and routing p99, rule cost over 1M incidents of history, a 1,500-line users import and the grid worker's phone (page weight, draining an outbox),
as a table.

Starts a real `cmdcenter serve` (one process, SQLite in a fresh temp dir, rate limits raised),
registers feeds through the CLI, drives it from client processes and prints each measure with
its target. `--profile` samples the server with py-spy during the ingest phases.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import (alert_latency, bench_locate, brief, ingest, latency, matters, phone,
                   propagation, rules, stats, users_import)
from bench.profile import Sampler, py_spy
from bench.server import BenchServer

SINGLE_N = 10_000
LIST_N = 50_000
LIST_SIZE = 100
LATENCY_RATE = 200.0
LATENCY_SECONDS = 15.0
CLIENT_PROCESSES = 2
CLIENT_THREADS = 2

TARGETS = {
    "single": 1_000,
    "lists": 5_000,
    "p99": 100.0,
    "locate": 500_000,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true",
                        help="sample the server with py-spy during the ingest phases")
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir")
    args = parser.parse_args(argv)
    if args.profile and not py_spy():
        print("bench: --profile needs py-spy on PATH (or BENCH_PY_SPY)", file=sys.stderr)
        return 2

    started = time.monotonic()
    rows: list[tuple[str, str, str, bool]] = []
    profiles: dict[str, list] = {}
    tmp = Path(tempfile.mkdtemp(prefix="cmdcenter-bench-"))
    server = BenchServer(tmp / "data", {
        "CMDCENTER_RATE_PER_SECOND": "1000000000", "CMDCENTER_RATE_BURST": "1000000000"})
    print(f"bench: starting cmdcenter serve (SQLite in {tmp}) …", flush=True)
    server.start()
    try:
        tokens = [server.add_feed(f"bench-{i}", f"DEMO-T{i + 1:02d}")
                  for i in range(CLIENT_PROCESSES + 1)]
        feed_tokens, latency_token = tokens[:-1], tokens[-1]

        for key, label, total, batch, window in (
                ("single", "ingest, one report per message", SINGLE_N, 1, 64),
                ("lists", f"ingest, lists of {LIST_SIZE}", LIST_N, LIST_SIZE, 16)):
            print(f"bench: {label}: {total} reports …", flush=True)
            sampler = (Sampler(server.pid, tmp / f"{key}.spy", 8) if args.profile else None)
            result = ingest.measure(server.url, feed_tokens, total=total, batch=batch,
                                    threads=CLIENT_THREADS, window=window, prefix=key)
            if sampler:
                profiles[label] = sampler.top()
            ok = result.per_second >= TARGETS[key] and result.failed == 0
            note = f"{result.ok}/{result.reports} ok in {result.seconds:.1f} s"
            rows.append((f"{label} (reports/s)", f"{result.per_second:,.0f}  [{note}]",
                         f"≥ {TARGETS[key]:,}", ok))

        print(f"bench: feed → /live latency at {LATENCY_RATE:g} reports/s for "
              f"{LATENCY_SECONDS:g} s …", flush=True)
        lat = latency.measure(server.url, latency_token, rate=LATENCY_RATE,
                              seconds=LATENCY_SECONDS,
                              reader_token=server.add_user_token("bench-reader"))
        p50, p95, p99 = lat.percentile(50), lat.percentile(95), lat.percentile(99)
        note = f"{lat.seen}/{lat.sent} seen on /live"
        rows.append(("feed → /live latency p50 / p95 (ms)", f"{p50:.1f} / {p95:.1f}", "—",
                     True))
        rows.append(("  of which emit → ack p50 / p99 (ms)",
                     f"{lat.percentile(50, acks=True):.1f} / {lat.percentile(99, acks=True):.1f}",
                     "—", True))
        rows.append(("feed → /live latency p99 (ms)", f"{p99:.1f}  [{note}]",
                     f"≤ {TARGETS['p99']:g}", p99 <= TARGETS["p99"] and lat.seen == lat.sent))
    finally:
        server.stop()

    print("bench: locate …", flush=True)
    loc = bench_locate.run()
    rows.append(("locate (points/s)",
                 f"{loc['points_per_s']:,}  [{loc['points']:,} points, {loc['polygons']} polygons]",
                 f"≥ {TARGETS['locate']:,}", loc["points_per_s"] >= TARGETS["locate"]))

    print("bench: order → /field propagation (own server, 100 workers) …", flush=True)
    prop = propagation.run()
    rows.append(("order + forward → /field p99 (ms)",
                 prop["error"] or f"{prop['p99_ms']:.1f}  [p50 {prop['p50_ms']:.1f}; "
                                  f"{prop['samples']} receipts, {prop['lost']} lost]",
                 f"≤ {propagation.TARGET_P99_MS:g}", propagation.ok(prop)))

    print("bench: Ⅰ级 report → red alert, ack → /live (own server) …", flush=True)
    al = alert_latency.run()
    rows.append(("Ⅰ级 report → red alert on /live p99 (ms)",
                 al["error"] or f"{al['raise_p99_ms']:.1f}  [p50 {al['raise_p50_ms']:.1f}; "
                                f"{al['raised']}/{al['reports']} seen]",
                 f"≤ {alert_latency.TARGET_RAISE_P99_MS:g}", alert_latency.ok_raise(al)))
    rows.append(("alert ack → second /live client p99 (ms)",
                 al["error"] or f"{al['ack_p99_ms']:.1f}  [p50 {al['ack_p50_ms']:.1f}; "
                                f"{al['acks']} acks, {al['lost_ack']} lost]",
                 f"≤ {alert_latency.TARGET_ACK_P99_MS:g}", alert_latency.ok_ack(al)))

    print("bench: month brief over 100k incidents (own SQLite) …", flush=True)
    br = brief.run()
    rows.append((f"month brief, {br['incidents']:,} incidents, per format (s)", brief.summary(br),
                 f"≤ {brief.TARGET_S:g} each", brief.ok(br)))

    print(f"bench: the window over {matters.COUNT:,} stored matters, SQLite and PostgreSQL "
          "(bulk load, then registration, ID search and registration → /live) …", flush=True)
    rows.extend(matters.rows([matters.run(kind, matters.COUNT, tmp)
                              for kind in ("sqlite", "postgres")]))

    print(f"bench: a year's figures over {stats.COUNT:,} matters a year and routing, SQLite and "
          "PostgreSQL (bulk load of two years, figures in process and over REST, then "
          "POST /route) …", flush=True)
    rows.extend(stats.rows([stats.run(kind, stats.COUNT, tmp) for kind in ("sqlite", "postgres")]))

    print(f"bench: every rule on over {rules.HISTORY:,} incidents of history "
          "(fill, prime, rules per arrival, then ingest + /live on that data dir) …", flush=True)
    rows.extend(rules.rows(rules.run(tmp)))

    print(f"bench: users import of {users_import.LINES:,} lines (CLI) …", flush=True)
    rows.extend(users_import.rows(users_import.run()))

    if os.path.exists(phone.CHROMIUM):
        print("bench: the grid worker's phone: /grid's weight, then draining an outbox of "
              "50 reports with photos over 750 kbit/s, 300 ms (headless Chromium) …", flush=True)
        rows.extend(phone.rows(phone.run(50)))
    else:
        print(f"bench: skipping the phone ({phone.CHROMIUM} is missing)", flush=True)

    print()
    _table(rows)
    print(f"\n(total {time.monotonic() - started:.0f} s; server: one process, SQLite, "
          f"{CLIENT_PROCESSES} client processes × {CLIENT_THREADS} connections)")
    for label, top in profiles.items():
        print(f"\nserver profile during '{label}' (share of GIL-holding samples, inclusive):")
        for share, name in top:
            print(f"  {share:5.1f}%  {name}")
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(r[3] for r in rows) else 1


def _table(rows: list[tuple[str, str, str, bool]]) -> None:
    header = ("measure", "result", "target", "")
    body = [(a, b, c, "PASS" if ok else "MISS") for a, b, c, ok in rows]
    widths = [max(_width(r[i]) for r in [header, *body]) for i in range(4)]
    for r in [header, tuple("-" * w for w in widths), *body]:
        print("  ".join(_pad(cell, w) for cell, w in zip(r, widths)).rstrip())


def _width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


if __name__ == "__main__":
    sys.exit(main())
