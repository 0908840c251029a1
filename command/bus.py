"""The bus that carries committed changes to every server process: in-process or Redis Streams.

Publishing happens after commit; a subscriber gets each published batch once. The bus is only a
fast path: screens that miss something fill in from the database by sequence number.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from typing import Callable, Protocol

log = logging.getLogger(__name__)

Handler = Callable[[list[dict]], None]


class Bus(Protocol):
    """Publish lists of objects on a topic; subscribers in every process receive them."""

    def publish(self, topic: str, items: list[dict]) -> None: ...

    def subscribe(self, topic: str, handler: Handler) -> None: ...

    def close(self) -> None: ...


class InProcessBus:
    """Delivers to handlers in this process, synchronously, in publish order."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._lock = threading.Lock()

    def publish(self, topic: str, items: list[dict]) -> None:
        """Hand `items` to every handler of `topic`."""
        if not items:
            return
        with self._lock:
            handlers = list(self._handlers[topic])
        for handler in handlers:
            try:
                handler(items)
            except Exception:  # a broken subscriber must not break the publisher
                log.exception("bus handler failed on %s", topic)

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Register a handler for a topic."""
        with self._lock:
            self._handlers[topic].append(handler)

    def close(self) -> None:
        """Nothing to release."""


class RedisBus:
    """Redis Streams: one stream per topic, trimmed to about `maxlen` entries.

    Each process reads every stream it subscribes to from the moment it subscribed, on one
    background thread; stream ids give any process a durable replay window.
    """

    def __init__(self, url: str, *, prefix: str = "cmdcenter", maxlen: int = 100_000) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self._redis.ping()
        self._prefix = prefix
        self._maxlen = maxlen
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._cursors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _key(self, topic: str) -> str:
        return f"{self._prefix}:{topic}"

    def publish(self, topic: str, items: list[dict]) -> None:
        """Append one stream entry holding `items`."""
        if not items:
            return
        payload = json.dumps(items, ensure_ascii=False, separators=(",", ":"))
        self._redis.xadd(self._key(topic), {"items": payload}, maxlen=self._maxlen,
                         approximate=True)

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Receive every entry published on `topic` from now on."""
        with self._lock:
            if topic not in self._cursors:
                last = self._redis.xrevrange(self._key(topic), count=1)
                self._cursors[topic] = last[0][0].decode() if last else "0-0"
            self._handlers[topic].append(handler)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="redis-bus", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        import redis

        while not self._stop.is_set():
            with self._lock:
                streams = {self._key(t): c for t, c in self._cursors.items()}
            try:
                answer = self._redis.xread(streams, block=1000, count=500)
            except redis.RedisError:
                log.warning("redis bus read failed; retrying", exc_info=True)
                self._stop.wait(1.0)
                continue
            for key, entries in answer or []:
                topic = key.decode().removeprefix(self._prefix + ":")
                for entry_id, fields in entries:
                    self._cursors[topic] = entry_id.decode()
                    items = json.loads(fields[b"items"])
                    for handler in list(self._handlers[topic]):
                        try:
                            handler(items)
                        except Exception:
                            log.exception("bus handler failed on %s", topic)

    def close(self) -> None:
        """Stop the reader thread and the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
        self._redis.close()


def make_bus(redis_url: str | None, prefix: str = "cmdcenter") -> Bus:
    """Redis when a URL is configured, else in-process."""
    return RedisBus(redis_url, prefix=prefix) if redis_url else InProcessBus()
