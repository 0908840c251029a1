"""Demo feeds: one simulated feed per township, started beside the server by `cmdcenter demo`."""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from command.feeds import service as feeds_service
from command.simulate import ReportFactory, Stats, areas_from, run
from command.units import service as units_service

log = logging.getLogger(__name__)

INITIAL_REPORTS = 60
INITIAL_HOURS = 12


@dataclass
class DemoFeed:
    """A running demo feed (its token stays inside; it is never printed)."""

    name: str
    unit_code: str
    rate: float
    thread: threading.Thread | None = None
    stats: Stats = field(default_factory=Stats)
    stop: threading.Event = field(default_factory=threading.Event)


def start_demo_feeds(core, url: str, *, rate: float = 0.5, seed: int | None = None,
                     initial: int = INITIAL_REPORTS) -> list[DemoFeed]:
    """Register (or re-key) a feed per township and start sending `rate` reports/s in all.

    The threads wait until the server accepts connections, send a first batch spread over the
    last 12 hours (so the wall screen is alive at once), then keep a steady trickle.
    """
    with core.read() as session:
        gdf = units_service.load_gdf(session)
    areas = areas_from(gdf)
    townships = [a for a in areas if a.geometry is not None]
    if not townships:
        log.warning("no township polygons: demo feeds not started")
        return []
    tokens = {}
    with core.write() as session, session.begin():
        for area in townships:
            tokens[area.code] = _feed_token(session, f"demo-{area.code}", area.code, core)
    url = _local(url)
    rng = random.Random(seed)
    total_weight = sum(a.weight for a in townships) or 1.0
    feeds = []
    for area in townships:
        share = area.weight / total_weight
        feed = DemoFeed(f"demo-{area.code}", area.code, rate * share)
        factory = ReportFactory([area], seed=rng.getrandbits(32),
                                id_prefix=f"{feed.name}-{time.time_ns():x}")
        first = max(1, round(initial * share)) if initial else 0
        feed.thread = threading.Thread(
            target=_feed_loop, args=(feed, url, tokens[area.code], factory, first),
            name=feed.name, daemon=True)
        feed.thread.start()
        feeds.append(feed)
    return feeds


def _feed_token(session, name: str, unit_code: str, core) -> str:
    """A fresh token for the demo feed `name`, creating the feed when needed."""
    try:
        feed = feeds_service.get(session, name=name)
    except feeds_service.NotFound:
        _, token = feeds_service.create(session, name=name, unit_code=unit_code,
                                        now=core.clock.now())
        return token
    if feed.unit_code != unit_code or feed.disabled_reason:
        feeds_service.rebind(session, name=name, unit_code=unit_code)
    return feeds_service.rotate_token(session, name=name)


def _feed_loop(feed: DemoFeed, url: str, token: str, factory: ReportFactory, first: int) -> None:
    if not _wait_for(url, feed.stop):
        return
    initial = factory.batch(first, ages=(60.0, INITIAL_HOURS * 3600.0)) if first else None
    while not feed.stop.is_set():
        feed.stats = run(url, token, rate=feed.rate, factory=factory, stop=feed.stop,
                         poisson=True, initial=initial)
        if feed.stats.connected:  # returns only when stopped or refused later (token revoked)
            if feed.stats.reason:
                log.warning("demo feed %s stopped: %s", feed.name, feed.stats.reason)
            return
        log.info("demo feed %s: %s; retrying", feed.name, feed.stats.reason)
        feed.stop.wait(2.0)


def _wait_for(url: str, stop: threading.Event, timeout: float = 120.0) -> bool:
    """Wait until something accepts TCP connections at `url`'s host and port."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            stop.wait(0.2)
    return False


def _local(url: str) -> str:
    """The URL a local client uses: a wildcard listen address becomes loopback."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):
        loopback = "[::1]" if host == "::" else "127.0.0.1"
        netloc = loopback + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


DEMO_USERS = (  # name, role, unit
    ("duty", "duty", None), ("leader", "leader", None), ("admin", "admin", None),
    ("township", "township", "DEMO-T01"), ("grid", "grid", "DEMO-T01-G01"),
    ("police", "dept", "dept.police"),
)


def ensure_demo_users(core) -> list[tuple[str, str, str | None, str]]:
    """Create (or reset the password of) one demo user per role; return name, role, unit, password."""
    import secrets as _secrets

    from command.errors import NotFound
    from command.users import service as users_service

    out = []
    with core.write() as session, session.begin():
        for name, role, unit in DEMO_USERS:
            password = _secrets.token_urlsafe(9)
            try:
                users_service.get(session, name=name)
                users_service.set_password(session, name=name, password=password)
            except NotFound:
                users_service.create(session, name=name, role=role, unit_code=unit,
                                     password=password, now=core.clock.now())
            out.append((name, role, unit, password))
    return out
