"""Periodic jobs run once per deployment, not once per server process.

Every process may start a Scheduler; on each tick only the holder of one deployment-wide lock
runs the jobs:

- with Redis (`settings.redis_url`): a key set with `SET key token NX PX ttl`, renewed on every
  tick while held (a holder that dies loses it after `ttl`);
- else on PostgreSQL: `pg_try_advisory_lock` on a dedicated connection (released when that
  connection closes, so a dead process frees it at once);
- else on SQLite: an exclusive `fcntl.flock` on `scheduler.lock` in the data dir.

Jobs keep their state in the database, so a restart or a change of holder loses nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

Job = Callable[[datetime], None]


class Lock(Protocol):
    """A deployment-wide lock: `acquire` is non-blocking and renews a lock already held."""

    def acquire(self) -> bool: ...

    def release(self) -> None: ...


class RedisLock:
    """`SET key token NX PX ttl`, renewed by its holder; released only by its holder."""

    _RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
              "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end")
    _RELEASE = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
                "return redis.call('del', KEYS[1]) else return 0 end")

    def __init__(self, url: str, key: str, ttl_ms: int) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._key = key
        self._ttl = int(ttl_ms)
        self._token = uuid.uuid4().hex

    def acquire(self) -> bool:
        """Renew the lock if held, else try to take it."""
        if self._redis.eval(self._RENEW, 1, self._key, self._token, self._ttl):
            return True
        return bool(self._redis.set(self._key, self._token, nx=True, px=self._ttl))

    def release(self) -> None:
        """Give the lock up if held, and close the connection."""
        try:
            self._redis.eval(self._RELEASE, 1, self._key, self._token)
        finally:
            self._redis.close()


class PostgresLock:
    """A session-level advisory lock on a connection of its own (no pool: closing frees it)."""

    def __init__(self, url, name: str) -> None:
        self._engine = sa.create_engine(url, poolclass=NullPool)
        self._key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big",
                                   signed=True)
        self._conn: sa.Connection | None = None

    def acquire(self) -> bool:
        """True while this connection holds the lock; retake it when the connection broke."""
        if self._conn is not None:
            try:
                self._conn.exec_driver_sql("SELECT 1")
                return True
            except Exception:  # the connection (and with it the lock) is gone
                log.warning("scheduler lock connection lost", exc_info=True)
                self._close()
        try:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except Exception:
            log.warning("scheduler lock: cannot connect", exc_info=True)
            return False
        if conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar():
            self._conn = conn
            return True
        conn.close()
        return False

    def release(self) -> None:
        """Close the connection (the lock goes with it)."""
        self._close()
        self._engine.dispose()

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                log.debug("closing a broken lock connection failed", exc_info=True)
            self._conn = None


class FileLock:
    """An exclusive `flock` on a file: one holder per open file, across processes and threads."""

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> bool:
        """True while held; try to take it otherwise."""
        if self._fd is not None:
            return True
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        """Unlock and close."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def deployment_lock(core, name: str, ttl_ms: int) -> Lock:
    """The lock that fits the deployment: Redis, else PostgreSQL, else a file next to SQLite."""
    settings = core.settings
    if settings.redis_url:
        return RedisLock(str(settings.redis_url), f"{settings.redis_prefix}:lock:{name}", ttl_ms)
    if core.engine.dialect.name == "postgresql":
        return PostgresLock(core.engine.url, f"cmdcenter:{name}")
    return FileLock(Path(settings.data_dir) / f"{name}.lock")


class Scheduler:
    """Calls `job(now)` for each job every `interval` seconds, in one process of the deployment."""

    def __init__(self, core, jobs: list[Job], interval: float = 15.0, *,
                 name: str = "scheduler", lock: Lock | None = None,
                 min_gap: float = 0.0, max_share: float = 1.0) -> None:
        self._core = core
        self._jobs = list(jobs)
        self._interval = float(interval)
        self._min_gap = float(min_gap)  # wake-ups closer together than this are coalesced
        # the share of wall time the jobs may take: after a tick of d seconds the thread rests
        # d × (1/max_share − 1) at least, so a storm of wake-ups cannot starve request threads
        # of the interpreter (jobs that fall behind catch up in later, spaced ticks)
        if not 0 < max_share <= 1:
            raise ValueError("max_share: in (0, 1]")
        self._rest = 1.0 / float(max_share) - 1.0
        # the Redis lock outlives a few missed ticks, not a dead holder for long
        ttl_ms = int(max(3 * self._interval, 10.0) * 1000)
        self._lock = lock or deployment_lock(core, name, ttl_ms)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._name = name
        self.held = False  # whether this process held the lock at its last tick (metrics)

    def start(self) -> Scheduler:
        """Start ticking in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        """Tick now rather than at the end of the interval (e.g. new incidents arrived)."""
        self._wake.set()

    def close(self) -> None:
        """Stop ticking and give the lock up."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=max(10.0, self._interval))
            self._thread = None
        self.held = False
        try:
            self._lock.release()
        except Exception:
            log.warning("releasing the scheduler lock failed", exc_info=True)

    def run_once(self, now: datetime | None = None) -> bool:
        """One tick: run every job if this process holds the lock; return whether it ran them."""
        try:
            held = self._lock.acquire()
        except Exception:
            log.warning("scheduler lock unavailable; skipping this tick", exc_info=True)
            held = False
        self.held = held
        if not held:
            return False
        now = now or self._core.clock.now()
        for job in self._jobs:
            try:
                if job(now) is True:  # "more waiting": come back after the rest, not the interval
                    self._wake.set()
            except Exception:  # a failing job must not stop the others or the thread
                log.exception("scheduled job %s failed", getattr(job, "__name__", job))
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.run_once()
            except Exception:
                log.exception("scheduler tick failed")
            rest = max(self._min_gap, (time.monotonic() - started) * self._rest)
            if rest:
                self._stop.wait(rest)
            self._wake.wait(max(self._interval - rest, 0.0))
            self._wake.clear()
