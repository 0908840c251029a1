"""The ingest flow: one writer thread commits whole groups of requests, then publishes.

Requests from every connection queue up; the writer takes what is waiting, stores it in one
transaction, commits, answers each request and publishes the new incidents. An answer is only
given after the commit, so an ack always means "stored".
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from command.bus import Bus
from command.clock import Clock
from command.errors import DomainError
from command.feeds.service import Feed
from command.incidents import service
from command.ratelimit import RateLimiter
from command.units.registry import UnitRegistry

log = logging.getLogger(__name__)

MAX_GROUP = 5000  # reports per transaction


@dataclass
class _Job:
    feed: Feed
    raws: list[Any]
    future: Future = field(default_factory=Future)


class IngestFlow:
    """Accepts reports from feeds and answers with outcomes once they are committed."""

    def __init__(self, sessions: sessionmaker[Session], units: UnitRegistry, bus: Bus,
                 clock: Clock, limiter: RateLimiter, *, max_list: int = 1000,
                 max_future: timedelta = timedelta(minutes=5)) -> None:
        self._sessions = sessions
        self._units = units
        self._bus = bus
        self._clock = clock
        self._limiter = limiter
        self._max_list = max_list
        self._max_future = max_future
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._thread.start()

    def submit(self, feed: Feed, body: Any, timeout: float = 60) -> list[service.Outcome]:
        """Store one report or a list; raise DomainError for the request as a whole."""
        raws = body if isinstance(body, list) else [body]
        if len(raws) > self._max_list:
            raise DomainError("too_large", f"a list may hold at most {self._max_list} reports, "
                                           f"got {len(raws)}")
        if not raws:
            return []
        if not self._limiter.take(feed.id, len(raws)):
            raise DomainError("rate_limited", f"feed {feed.name!r} is over its rate limit; "
                                              "retry in a moment")
        job = _Job(feed, raws)
        self._queue.put(job)
        return job.future.result(timeout=timeout)

    def close(self) -> None:
        """Finish what is queued and stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
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

    def _write(self, jobs: list[_Job]) -> None:
        try:
            results, published = self._store(jobs)
        except Exception:
            log.warning("group commit failed; retrying request by request", exc_info=True)
            results, published = [], []
            for job in jobs:
                try:
                    (outcomes,), new = self._store([job])
                    results.append(outcomes)
                    published.extend(new)
                except Exception as exc:  # noqa: BLE001 - the request gets the error
                    log.exception("storing a request failed")
                    results.append(exc)
        for job, result in zip(jobs, results):
            if isinstance(result, Exception):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)
        if published:
            try:
                self._bus.publish("incidents", published)
            except Exception:  # committed already: screens catch up by seq
                log.exception("publishing %d incidents failed", len(published))

    def _store(self, jobs: list[_Job]) -> tuple[list[list[service.Outcome]], list[dict]]:
        results, published = [], []
        for attempt in range(3):
            try:
                with self._sessions() as session, session.begin():
                    locator = self._units.current(session)
                    now = self._clock.now()
                    results, published = [], []
                    for job in jobs:
                        outcomes, new = service.ingest(session, job.feed, job.raws,
                                                       locator=locator, now=now,
                                                       max_future=self._max_future)
                        results.append(outcomes)
                        published.extend(new)
                return results, published
            except Exception:
                if attempt == 2:
                    raise
                log.info("ingest transaction failed (attempt %d); retrying", attempt + 1,
                         exc_info=True)
        raise AssertionError("unreachable")
