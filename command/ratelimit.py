"""A token bucket per key, counted in reports."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """Lets `burst` reports through at once, then `per_second` on average."""

    def __init__(self, per_second: float, burst: int, monotonic=time.monotonic) -> None:
        self._rate = per_second
        self._burst = burst
        self._clock = monotonic
        self._buckets: dict[object, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: object, n: int = 1) -> bool:
        """Take `n` tokens for `key`; False (and nothing taken) when there are not enough."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self._burst), now))
            tokens = min(float(self._burst), tokens + (now - at) * self._rate)
            if tokens < n:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - n, now)
            return True
