"""Ingest throughput: feed clients in worker processes pipeline `report` emits with callbacks.

Clients run in their own processes (spawned) so that their JSON encoding and websocket framing
do not compete with each other for one interpreter lock; the clock is CLOCK_MONOTONIC, which all
processes share, so the span runs from the first emit anywhere to the last ack anywhere.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time
from dataclasses import dataclass


@dataclass
class IngestResult:
    reports: int
    ok: int
    failed: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


def _make_bodies(n: int, batch: int, prefix: str, seed: int) -> list:
    from datetime import datetime, timezone

    from command.demo.simulate import ReportFactory
    from layers.demo import demo_county

    factory = ReportFactory(demo_county(), seed=seed, id_prefix=prefix, malformed=0, resend=0)
    reports = factory.batch(n, now=datetime.now(timezone.utc))
    if batch == 1:
        return reports
    return [reports[i:i + batch] for i in range(0, n, batch)]


def client():
    """A Socket.IO client as the bench's clients use it.

    websocket-client checks every received text frame for valid UTF-8 in pure Python unless
    wsaccel is installed; measured here that check was 40 % of a feed client's CPU, so the
    bench clients (which talk only to our server) skip it.
    """
    import socketio

    return socketio.Client(reconnection=False, handle_sigint=False,
                           websocket_extra_options={"skip_utf8_validation": True})


def inline_handlers() -> None:
    """Run the client's event and ack handlers on its reader thread.

    python-engineio's client starts a new thread for every message it receives; at thousands
    of acks a second that, not the server, is what a bench client process spends its CPU on.
    The bench's handlers only count and release a semaphore, so they are safe to run inline
    (they must never block: an inline handler that waited for a reply would stall the reader).
    Call it in a bench client process only; the product's clients keep the library default.
    """
    import engineio.client

    cls = engineio.client.Client
    if getattr(cls, "_bench_inline", False):
        return
    original = cls._trigger_event

    def trigger(self, event, *args, **kwargs):
        kwargs["run_async"] = False
        return original(self, event, *args, **kwargs)

    cls._trigger_event = trigger
    cls._bench_inline = True


def _client(url: str, token: str, bodies: list, window: int, go: threading.Event, out: dict):
    inline_handlers()
    sio = client()
    sio.connect(url, namespaces=["/feed"], transports=["websocket"], auth={"token": token},
                wait_timeout=10)
    slots = threading.Semaphore(window)
    done = threading.Event()
    left = [len(bodies)]
    lock = threading.Lock()

    def acked(n, ack):
        acks = ack if isinstance(ack, list) else [ack] * n
        ok = sum(1 for a in acks if isinstance(a, dict) and a.get("ok"))
        with lock:
            out["ok"] += ok
            out["failed"] += n - ok
            out["last_ack"] = time.monotonic()
            left[0] -= 1
            if left[0] == 0:
                done.set()
        slots.release()

    go.wait()
    out["first_emit"] = time.monotonic()
    for body in bodies:
        slots.acquire()
        n = len(body) if isinstance(body, list) else 1
        sio.emit("report", body, namespace="/feed",
                 callback=lambda ack=None, n=n: acked(n, ack))
    done.wait(120)
    sio.disconnect()


def worker(url: str, token: str, threads: int, n: int, batch: int, window: int, prefix: str,
           seed: int, ready, go, results) -> None:
    """One client process: `threads` connections, `n` reports each; reports its tallies."""
    per_thread = [_make_bodies(n, batch, f"{prefix}-{t}", seed + t) for t in range(threads)]
    local_go = threading.Event()
    outs = [{"ok": 0, "failed": 0, "first_emit": None, "last_ack": None} for _ in range(threads)]
    pool = [threading.Thread(target=_client, args=(url, token, bodies, window, local_go, out))
            for bodies, out in zip(per_thread, outs)]
    for t in pool:
        t.start()
    time.sleep(0.5)  # let the connections settle
    ready.put(True)
    go.wait()
    local_go.set()
    for t in pool:
        t.join()
    results.put(outs)


def measure(url: str, tokens: list[str], *, total: int, batch: int, threads: int = 2,
            window: int = 64, prefix: str = "bench") -> IngestResult:
    """Send `total` reports (lists of `batch`) from one process per token; return the rate."""
    ctx = mp.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    per_client = total // (len(tokens) * threads)
    procs = [ctx.Process(target=worker, args=(url, token, threads, per_client, batch, window,
                                              f"{prefix}-{i}", 1000 * i, ready, go, results),
                         daemon=True)
             for i, token in enumerate(tokens)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + 120
    waiting = len(procs)
    while waiting:
        try:
            ready.get(timeout=0.5)
            waiting -= 1
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs) or time.monotonic() > deadline:
                for p in procs:
                    p.kill()
                raise RuntimeError("a bench client process failed to start") from None
    go.set()
    outs = [o for _ in procs for o in results.get(timeout=180)]
    for p in procs:
        p.join(10)
    first = min(o["first_emit"] for o in outs if o["first_emit"] is not None)
    last = max(o["last_ack"] for o in outs if o["last_ack"] is not None)
    ok = sum(o["ok"] for o in outs)
    failed = sum(o["failed"] for o in outs)
    return IngestResult(per_client * len(procs) * threads, ok, failed, last - first)
