"""The ingest flow: one writer thread commits whole groups of requests, then publishes.

Requests from every connection queue up; the writer takes what is waiting, stores it in one
transaction, commits, answers each request and publishes the new incidents. An answer is only
given after the commit, so an ack always means "stored".
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from command.bus import Bus
from command.clock import Clock
from command.errors import DomainError
from command.feeds import service as feeds_service
from command.feeds.service import Feed
from command.incidents import service
from command.ratelimit import RateLimiter
from command.units.registry import UnitRegistry

log = logging.getLogger(__name__)

MAX_GROUP = 5000  # reports per transaction


class Observer:
    """What the ingest flow tells the metrics (the default tells nobody)."""

    def reports(self, feed: str, outcome: str, count: int = 1) -> None:
        """`count` reports of `feed` were answered with `outcome` (stored, duplicate, a code)."""

    def ack_seconds(self, seconds: float) -> None:
        """A message was answered `seconds` after it was submitted."""


@dataclass
class _Job:
    source: service.Source
    raws: list[Any]
    future: Future = field(default_factory=Future)


class IngestFlow:
    """Accepts reports from feeds and answers with outcomes once they are committed."""

    def __init__(self, sessions: sessionmaker[Session], units: UnitRegistry, bus: Bus,
                 clock: Clock, limiter: RateLimiter, *, max_list: int = 1000,
                 max_future: timedelta = timedelta(minutes=5), keyring=None,
                 observer: Observer | None = None, run_blocking=None) -> None:
        self._observer = observer or Observer()
        # how a group's transaction is run: in this thread, or handed to a native thread when
        # the process serves on gevent (command.green.offload)
        self._run_blocking = run_blocking or (lambda fn, *args: fn(*args))
        self._sessions = sessions
        self._units = units
        self._bus = bus
        self._clock = clock
        self._limiter = limiter
        self._max_list = max_list
        self._max_future = max_future
        self._keyring = keyring
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._thread.start()

    def submit(self, feed: Feed | service.Source, body: Any,
               timeout: float = 60) -> list[service.Outcome]:
        """Store one report or a list from a feed (or a user's phone: a Source); raise
        DomainError for the request as a whole."""
        started = time.perf_counter()
        source = service.Source.of(feed)
        label = source.feed_name if source.user is None else "phone"  # never a user's name
        raws = body if isinstance(body, list) else [body]
        try:
            if len(raws) > self._max_list:
                raise DomainError("too_large", f"a list may hold at most {self._max_list} "
                                               f"reports, got {len(raws)}")
            if not raws:
                return []
            if self._closing:
                raise DomainError("unavailable", "the server is shutting down; send again "
                                                 "after reconnecting")
            if not self._limiter.take(source.key, len(raws)):
                who = f"feed {source.feed_name!r}" if source.user is None else "this user"
                raise DomainError("rate_limited", f"{who} is over the rate limit; retry in a "
                                                  "moment")
            job = _Job(source, raws)
            self._queue.put(job)
            return job.future.result(timeout=timeout)
        except DomainError as err:
            self._observer.reports(label, err.code, len(raws))
            raise
        finally:
            self._observer.ack_seconds(time.perf_counter() - started)

    def queued(self) -> int:
        """Messages waiting for the writer."""
        return self._queue.qsize()

    def close(self, timeout: float = 10) -> None:
        """Refuse new reports, store and answer what is queued, and stop the writer."""
        self._closing = True
        self._queue.put(None)
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                self._refuse_late()
                return
            jobs, size = [job], len(job.raws)
            while size < MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                jobs.append(more)
                size += len(more.raws)
            self._write(jobs)

    def _refuse_late(self) -> None:
        """Answer jobs queued behind the stop (none normally: submit refuses once closing)."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job.future.set_exception(DomainError(
                    "unavailable", "the server is shutting down; send again after reconnecting"))

    def _write(self, jobs: list[_Job]) -> None:
        try:
            results, published = self._run_blocking(self._store, jobs)
        except Exception:
            log.warning("group commit failed; retrying request by request", exc_info=True)
            results, published = [], []
            for job in jobs:
                try:
                    (outcome,), new = self._run_blocking(self._store, [job])
                    results.append(outcome)
                    published.extend(new)
                except Exception as exc:  # noqa: BLE001 - the request gets the error
                    log.exception("storing a request failed")
                    results.append(exc)
        for job, result in zip(jobs, results):
            self._count(job, result)
            if isinstance(result, Exception):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)
        if published:
            try:
                self._bus.publish("incidents", published)
            except Exception:  # committed already: screens catch up by seq
                log.exception("publishing %d incidents failed", len(published))

    def _count(self, job: _Job, result) -> None:
        """Tell the observer how each report of a job was answered (never fails the job).
        Reports from phones are counted under "phone", never by user."""
        name = job.source.feed_name if job.source.user is None else "phone"
        try:
            if isinstance(result, DomainError):
                return  # counted where submit raises it
            if isinstance(result, Exception):
                self._observer.reports(name, "internal", len(job.raws))
                return
            tally: dict[str, int] = {}
            for outcome in result:
                key = (outcome.error.code if outcome.error else
                       "duplicate" if outcome.duplicate else "stored")
                tally[key] = tally.get(key, 0) + 1
            for key, count in tally.items():
                self._observer.reports(name, key, count)
        except Exception:  # metrics must never cost a report its answer
            log.exception("counting ingest outcomes failed")

    def _store(self, jobs: list[_Job]) -> tuple[list, list[dict]]:
        """Store a group in one transaction: one ingest call per feed, feeds re-checked inside it.

        Returns per job either its outcomes or a DomainError for the whole request (a feed
        revoked or disabled since it connected), and the new incidents in seq order.
        """
        by_source: dict[tuple, list[int]] = {}
        for index, job in enumerate(jobs):
            by_source.setdefault(job.source.key, []).append(index)
        feed_ids = [key[1] for key in by_source if key[0] == "feed"]
        for attempt in range(3):
            try:
                with self._sessions() as session, session.begin():
                    active = feeds_service.active_ids(session, feed_ids) if feed_ids else set()
                    locator = self._units.current(session)
                    now = self._clock.now()
                    results: list = [None] * len(jobs)
                    published: list[dict] = []
                    for key, indexes in by_source.items():
                        if key[0] == "feed" and key[1] not in active:
                            for i in indexes:
                                results[i] = DomainError(
                                    "unauthorized", "the feed's token was revoked or disabled")
                            continue
                        raws = [raw for i in indexes for raw in jobs[i].raws]
                        outcomes, new = service.ingest(session, jobs[indexes[0]].source, raws,
                                                       locator=locator, now=now,
                                                       max_future=self._max_future,
                                                       keyring=self._keyring)
                        start = 0
                        for i in indexes:
                            results[i] = outcomes[start:start + len(jobs[i].raws)]
                            start += len(jobs[i].raws)
                        published.extend(new)
                published.sort(key=lambda item: item["seq"])
                return results, published
            except Exception:
                if attempt == 2:
                    raise
                log.info("ingest transaction failed (attempt %d); retrying", attempt + 1,
                         exc_info=True)
        raise AssertionError("unreachable")
