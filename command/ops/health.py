"""Readiness (the database and Redis answer) and who may read the metrics."""

from __future__ import annotations

import hmac
import ipaddress
import threading
from collections.abc import Callable

import sqlalchemy as sa

from command.config import ConfigError

TIMEOUT = 3.0  # seconds a dependency may take to answer a readiness check


class Probe:
    """Runs one check at a time in a thread of its own and waits at most `timeout` for it.

    A dependency that hangs (a firewall dropping packets) makes the check answer "timeout"
    rather than hold the request; while it still hangs, no second thread is started.
    """

    def __init__(self, check: Callable[[], None], timeout: float = TIMEOUT) -> None:
        self._check = check
        self._timeout = timeout
        self._lock = threading.Lock()
        self._running: threading.Thread | None = None

    def __call__(self) -> str:
        """"ok", or a short reason."""
        with self._lock:
            if self._running is not None and self._running.is_alive():
                return "timeout (a previous check is still waiting)"
            result: list[str] = []

            def run() -> None:
                try:
                    self._check()
                    result.append("ok")
                except Exception as exc:  # noqa: BLE001 - the reason is the answer
                    text = str(exc).strip().splitlines()
                    result.append(f"{type(exc).__name__}: {text[0] if text else ''}"[:200])

            thread = threading.Thread(target=run, name="readiness", daemon=True)
            self._running = thread
        thread.start()
        thread.join(self._timeout)
        return result[0] if result else f"timeout after {self._timeout:g} s"


class Readiness:
    """The database, and Redis when configured, each checked with a timeout."""

    def __init__(self, engine, redis_url: str | None, timeout: float = TIMEOUT) -> None:
        def database() -> None:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1")).scalar_one()

        self._probes = {"database": Probe(database, timeout)}
        if redis_url:
            import redis

            client = redis.Redis.from_url(str(redis_url), socket_timeout=timeout,
                                          socket_connect_timeout=timeout)
            self._probes["redis"] = Probe(client.ping, timeout)

    def check(self) -> tuple[bool, dict[str, str]]:
        """(ready, {dependency: "ok" or why not})."""
        answers = {name: probe() for name, probe in self._probes.items()}
        return all(a == "ok" for a in answers.values()), answers


class MetricsAccess:
    """Who may read /metrics: a bearer token, or a TCP peer inside one of the allowed networks.

    With neither configured, nobody may.

    >>> access = MetricsAccess(None, "10.0.0.0/8, 127.0.0.1")
    >>> access.permits(None, "10.1.2.3"), access.permits(None, "192.168.1.1")
    (True, False)
    >>> MetricsAccess(None, None).permits("anything", "127.0.0.1")
    False
    """

    def __init__(self, token: str | None, allow: str | None) -> None:
        self._token = token or None
        self._networks = []
        for part in (allow or "").replace(";", ",").split(","):
            if not part.strip():
                continue
            try:
                self._networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ConfigError(f"CMDCENTER_METRICS_ALLOW: {part.strip()!r} is not an address "
                                  "or a network (e.g. 10.0.0.0/8)") from None

    @property
    def configured(self) -> bool:
        """Whether anyone at all may read the metrics."""
        return bool(self._token or self._networks)

    def permits(self, bearer: str | None, peer: str | None) -> bool:
        """Whether a request with this bearer token from this TCP peer may read the metrics."""
        if self._token and bearer and hmac.compare_digest(
                bearer.encode("utf-8", "surrogatepass"), self._token.encode()):
            return True
        if not self._networks or not peer:
            return False
        try:
            address = ipaddress.ip_address(peer.split("%")[0])
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)
