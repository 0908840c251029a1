"""Metrics of one server process, in Prometheus' text format (the `prometheus_client` library).

Prometheus scrapes every process on its own port. Per-process metrics describe that process;
the deployment-wide gauges (open and overdue orders, matters near and past their limit,
risk-watch lag) are computed by a scheduler job that runs only in the process holding the
deployment lock, and exported only by that process while it holds it — summing over processes
never counts them twice. The names and labels below are a contract for dashboards (README,
`deploy/grafana/cmdcenter.json`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.process_collector import ProcessCollector

from command.db import get_meta, last_seq

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
NAMESPACES = ("/feed", "/live", "/field")
# seconds: an ack waits for the group commit; /live adds the flush window and the bus
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# name → (type, labels, help): the contract the README lists
CONTRACT = {
    "cmdcenter_reports_ingested_total": (
        "counter", ("feed", "outcome"),
        "Reports answered, by feed name and outcome (stored, duplicate, or the error code)"),
    "cmdcenter_ack_latency_seconds": (
        "histogram", (), "Time from a report message reaching ingest to its answer (after "
                         "commit)"),
    "cmdcenter_live_delivery_lag_seconds": (
        "histogram", (), "Time from an incident's commit to its emission on /live by this "
                         "process"),
    "cmdcenter_connected_clients": (
        "gauge", ("namespace",), "Socket.IO clients connected to this process"),
    "cmdcenter_ingest_queue_depth": (
        "gauge", (), "Report messages waiting for the ingest writer of this process"),
    "cmdcenter_db_pool_in_use": (
        "gauge", (), "Database connections of this process's pool checked out now"),
    "cmdcenter_deployment_lock_held": (
        "gauge", (), "1 in the process holding the deployment lock (its scheduler runs the "
                     "once-per-deployment jobs), else 0"),
    "cmdcenter_riskwatch_backlog": (
        "gauge", (), "Incident changes (seq numbers) stored but not yet evaluated by the risk "
                     "watch (deployment)"),
    "cmdcenter_riskwatch_lag_seconds": (
        "gauge", (), "How long the oldest change not yet evaluated by the risk watch has been "
                     "waiting, 0 when none (deployment)"),
    "cmdcenter_orders_open": (
        "gauge", (), "Open dispatch-order nodes, overdue ones included (deployment)"),
    "cmdcenter_orders_overdue": (
        "gauge", (), "Open dispatch-order nodes past their sign-off or completion limit "
                     "(deployment)"),
    "cmdcenter_matters_near_limit": (
        "gauge", (), "Matters close to their legal time limit (deployment)"),
    "cmdcenter_matters_past_limit": (
        "gauge", (), "Matters past their legal time limit (deployment)"),
}
DEPLOYMENT = ("cmdcenter_riskwatch_backlog", "cmdcenter_riskwatch_lag_seconds",
              "cmdcenter_orders_open", "cmdcenter_orders_overdue",
              "cmdcenter_matters_near_limit", "cmdcenter_matters_past_limit")


def _help(name: str) -> str:
    return CONTRACT[name][2]


class Metrics:
    """The metrics of one process: counters and histograms fed by the flows, gauges read at
    scrape time from the sources the app binds (`bind`)."""

    def __init__(self, *, process: bool = True) -> None:
        disable_created_metrics()  # no `_created` series beside every counter and histogram
        self.registry = CollectorRegistry()
        if process:  # process_cpu_seconds_total, process_resident_memory_bytes, …
            ProcessCollector(registry=self.registry)
        self._reports = Counter("cmdcenter_reports_ingested", _help(
            "cmdcenter_reports_ingested_total"), ("feed", "outcome"), registry=self.registry)
        self._ack = Histogram("cmdcenter_ack_latency_seconds",
                              _help("cmdcenter_ack_latency_seconds"),
                              buckets=LATENCY_BUCKETS, registry=self.registry)
        self._live = Histogram("cmdcenter_live_delivery_lag_seconds",
                               _help("cmdcenter_live_delivery_lag_seconds"),
                               buckets=LATENCY_BUCKETS, registry=self.registry)
        self.deployment = DeploymentGauges()
        self._sources: dict[str, Callable] = {}
        self.registry.register(_Live(self))

    # --- fed by the flows (the ingest observer interface) -------------------------------------

    def reports(self, feed: str, outcome: str, count: int = 1) -> None:
        """Count `count` reports of `feed` answered with `outcome`."""
        if count:
            self._reports.labels(feed=feed, outcome=outcome).inc(count)

    def ack_seconds(self, seconds: float) -> None:
        """One message answered after `seconds`."""
        self._ack.observe(seconds)

    def delivered(self, lags: list[float]) -> None:
        """Incidents emitted on /live, each `lag` seconds after its commit."""
        for lag in lags:
            self._live.observe(max(lag, 0.0))

    # --- read at scrape time -------------------------------------------------------------------

    def bind(self, *, connected: Callable[[], dict[str, int]] | None = None,
             queue_depth: Callable[[], int] | None = None,
             pool_in_use: Callable[[], int] | None = None,
             lock_held: Callable[[], bool] | None = None) -> None:
        """Name the functions the gauges are read from."""
        for name, source in (("connected", connected), ("queue_depth", queue_depth),
                             ("pool_in_use", pool_in_use), ("lock_held", lock_held)):
            if source is not None:
                self._sources[name] = source

    def read(self, name: str, default):
        source = self._sources.get(name)
        return default if source is None else source()

    def exposition(self) -> bytes:
        """The text format of every metric of this process."""
        return generate_latest(self.registry)


class DeploymentGauges:
    """Values computed by the lock holder's job; exported while they are fresh."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}
        self._at = 0.0
        self._max_age = 0.0

    def update(self, values: dict[str, float], *, max_age: float) -> None:
        """Store a fresh reading, valid for `max_age` seconds (a few scheduler ticks)."""
        with self._lock:
            self._values = dict(values)
            self._at = time.monotonic()
            self._max_age = max_age

    def current(self) -> dict[str, float] | None:
        """The last reading while fresh, else None (this process no longer computes them)."""
        with self._lock:
            if not self._values or time.monotonic() - self._at > self._max_age:
                return None
            return dict(self._values)


class _Live:
    """Gauges read when Prometheus scrapes."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def describe(self):
        return []  # read at collect time only: the sources may not be bound yet

    def collect(self):
        m = self._m
        connected = GaugeMetricFamily("cmdcenter_connected_clients",
                                      _help("cmdcenter_connected_clients"), labels=["namespace"])
        counts = m.read("connected", {})
        for namespace in NAMESPACES:
            connected.add_metric([namespace], counts.get(namespace, 0))
        yield connected
        yield GaugeMetricFamily("cmdcenter_ingest_queue_depth",
                                _help("cmdcenter_ingest_queue_depth"),
                                value=m.read("queue_depth", 0))
        yield GaugeMetricFamily("cmdcenter_db_pool_in_use", _help("cmdcenter_db_pool_in_use"),
                                value=m.read("pool_in_use", 0))
        held = bool(m.read("lock_held", False))
        yield GaugeMetricFamily("cmdcenter_deployment_lock_held",
                                _help("cmdcenter_deployment_lock_held"), value=1 if held else 0)
        values = m.deployment.current() if held else None
        for name in DEPLOYMENT:
            family = GaugeMetricFamily(name, _help(name))
            if values is not None and name in values:
                family.add_metric([], values[name])
            yield family  # without a sample in the other processes


# --- the deployment-wide readings (run by the lock holder's scheduler) ---------------------------

class DeploymentReader:
    """Reads the deployment-wide gauges from the database, once per scheduler tick.

    The risk watch's lag in seconds is measured against this reader's own samples of the newest
    seq: the time since the oldest change the watch has not evaluated was first seen (at the
    resolution of the tick; 0 while the watch keeps up).
    """

    MAX_SAMPLES = 10_000

    def __init__(self, rules=None) -> None:
        self._samples: deque[tuple[datetime, int]] = deque()  # (seen at, newest seq then)
        self._rules = rules  # the matters' legal limits

    def __call__(self, session, *, now: datetime) -> dict[str, float]:
        """Open and overdue order nodes and the risk watch's backlog and lag."""
        from command.alerts.watch import CURSOR
        from command.orders.models import order_nodes
        from command.risk import score

        n = order_nodes.c
        overdue = sa.or_(sa.and_(n.state.in_(score.NODE_UNACKED), n.ack_by <= now),
                         sa.and_(n.state.in_(score.NODE_UNACKED + score.NODE_WORKING),
                                 n.due_by <= now))
        opened, late = session.execute(
            sa.select(sa.func.count(), sa.func.coalesce(
                sa.func.sum(sa.case((overdue, 1), else_=0)), 0))
            .where(n.state.in_(score.NODE_OPEN))).one()
        newest = last_seq(session)
        cursor = int(get_meta(session, CURSOR) or 0)  # no cursor yet: everything waits
        self._samples.append((now, newest))
        while self._samples and (self._samples[0][1] <= cursor
                                 or len(self._samples) > self.MAX_SAMPLES):
            self._samples.popleft()  # evaluated already (or too old to keep)
        waiting_since = self._samples[0][0] if newest > cursor and self._samples else now
        from command.matters import clock
        from command.matters import rules as matter_rules

        matters = clock.counts(session, now=now, rules=self._rules or matter_rules.defaults())
        return {"cmdcenter_matters_near_limit": float(matters["near"]),
                "cmdcenter_matters_past_limit": float(matters["overdue"]),
                "cmdcenter_orders_open": float(opened),
                "cmdcenter_orders_overdue": float(late),
                "cmdcenter_riskwatch_backlog": float(max(newest - cursor, 0)),
                "cmdcenter_riskwatch_lag_seconds": max((now - waiting_since).total_seconds(), 0.0)}


def make_job(core, metrics: Metrics, interval: float):
    """A scheduler job: read the deployment-wide gauges (only the lock holder runs it)."""
    reader = DeploymentReader(getattr(core, "matter_rules", None))

    def deployment_gauges(now: datetime) -> None:
        with core.read() as session:
            values = reader(session, now=now)
        metrics.deployment.update(values, max_age=max(3 * interval, 60.0))
    return deployment_gauges
