"""A token bucket per key, counted in reports: in this process, or shared through Redis."""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)


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


class RedisRateLimiter:
    """The same bucket kept in Redis, so a feed's limit holds across every server process of
    the deployment (a feed spreading its connections over processes gets no more).

    One Lua script reads, refills and takes atomically on Redis's own clock. While Redis cannot
    be reached, a bucket in this process stands in (a feed is limited per process meanwhile
    rather than refused outright).
    """

    _TAKE = """
local rate, burst, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1]) or burst
local at = tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local ok = 0
if tokens >= n then tokens = tokens - n; ok = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate) * 1000) + 1000)
return ok
"""

    def __init__(self, url: str, per_second: float, burst: int, *,
                 prefix: str = "cmdcenter") -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._redis.register_script(self._TAKE)
        self._rate = float(per_second)
        self._burst = int(burst)
        self._prefix = prefix
        self._fallback = RateLimiter(per_second, burst)

    def _key(self, key: object) -> str:
        parts = key if isinstance(key, tuple) else (key,)
        return f"{self._prefix}:rate:" + ":".join(str(p) for p in parts)

    def take(self, key: object, n: int = 1) -> bool:
        """Take `n` tokens for `key` in Redis; False (and nothing taken) when too few."""
        import redis

        try:
            return bool(self._script(keys=[self._key(key)], args=[self._rate, self._burst, n]))
        except redis.RedisError:
            log.warning("rate limit: Redis unavailable, limiting in this process meanwhile",
                        exc_info=True)
            return self._fallback.take(key, n)

    def close(self) -> None:
        """Close the connection."""
        self._redis.close()


def make_limiter(redis_url: str | None, per_second: float, burst: int, *,
                 prefix: str = "cmdcenter"):
    """Redis's bucket when Redis is configured, else this process's."""
    if redis_url:
        return RedisRateLimiter(str(redis_url), per_second, burst, prefix=prefix)
    return RateLimiter(per_second, burst)
