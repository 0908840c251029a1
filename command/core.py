"""The application core: database, units, bus, clock and flows, wired once per process."""

from __future__ import annotations

import logging
from datetime import timedelta

from command import config as config_mod, green
from command.bus import Bus, make_bus
from command.clock import Clock
from command import keys
from command.db import (get_meta, make_engine, make_sessionmaker, migrate, set_meta,
                        startup_lock)
from command.matters import categories
from command.matters import rules as matter_rules
from command.incidents.flows import IngestFlow
from command.ratelimit import make_limiter
from command.units import service as units_service
from command.units.registry import UnitRegistry

log = logging.getLogger(__name__)


def _limits(settings: config_mod.Settings):
    """The order time limits: the defaults, or CMDCENTER_TIME_LIMITS (JSON)."""
    import json

    from command.orders.service import TimeLimits

    if not settings.time_limits:
        return TimeLimits()
    try:
        return TimeLimits.from_dict(json.loads(settings.time_limits))
    except ValueError as exc:
        raise config_mod.ConfigError(f"CMDCENTER_TIME_LIMITS: {exc}") from None


class Core:
    """Everything a face (web, CLI) needs; no web imports here."""

    def __init__(self, settings: config_mod.Settings, *, clock: Clock | None = None,
                 bus: Bus | None = None, seed_demo: bool = True) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)  # files, and the key file
        self.engine = make_engine(settings.db_url)
        self.read = make_sessionmaker(self.engine)
        self.write = make_sessionmaker(self.engine, write=True)
        departments = units_service.DEPARTMENTS
        if settings.departments:
            try:
                departments = units_service.parse_departments(settings.departments)
            except ValueError as exc:
                raise config_mod.ConfigError(f"CMDCENTER_DEPARTMENTS: {exc}") from None
        # N processes starting together: one migrates and seeds, the others wait and find it done
        with startup_lock(self.engine, settings.data_dir):
            migrate(self.engine)
            with self.write() as session, session.begin():
                if seed_demo and units_service.ensure_demo(session):
                    log.info("no units stored: loaded the built-in demo county")
                units_service.ensure_departments(session, departments)
            self.keyring = self._open_keyring()
        try:
            self.matter_rules = matter_rules.load(settings.matter_rules or None)
        except (OSError, ValueError) as exc:
            raise config_mod.ConfigError(f"CMDCENTER_MATTER_RULES: {exc}") from None
        try:
            categories.configure(settings.matter_categories)
        except ValueError as exc:
            raise config_mod.ConfigError(f"CMDCENTER_MATTER_CATEGORIES: {exc}") from None
        self.limits = _limits(settings)
        if clock is None and settings.clock_file:
            from command.clock import FileOffsetClock

            clock = FileOffsetClock(settings.clock_file)
        self.clock = clock or Clock()
        self._bus = bus
        self.units = UnitRegistry()
        self._ingest: IngestFlow | None = None
        self.scheduler = None  # started by the web app: supervision timers
        self.watch = None  # started by the web app: the risk watch (alert rules)
        from command.ops.metrics import Metrics

        self.metrics = Metrics()  # this process's metrics (GET /metrics)

    def _open_keyring(self) -> keys.Keyring:
        """The key for personal data: found, or made by the first process (see command.keys)."""
        with self.write() as session, session.begin():
            stored = get_meta(session, keys.FINGERPRINT_META)
            try:
                ring, to_store = keys.open_keyring(env_secret=self.settings.secret_key,
                                                   data_dir=self.settings.data_dir,
                                                   stored_fingerprint=stored)
            except keys.KeyMismatch as exc:
                raise config_mod.ConfigError(str(exc)) from None
            if to_store:
                set_meta(session, keys.FINGERPRINT_META, to_store)
        if not ring.available:
            log.warning("no key for personal data: registrations with ID numbers or phones, "
                        "reveals and ID searches answer 503 until CMDCENTER_SECRET_KEY is set "
                        "or the key file is copied into %s", self.settings.data_dir)
        return ring

    @property
    def bus(self) -> Bus:
        """The bus, connected on first use."""
        if self._bus is None:
            self._bus = make_bus(self.settings.redis_url, self.settings.redis_prefix)
        return self._bus

    @property
    def ingest(self) -> IngestFlow:
        """The ingest flow (starts its writer thread on first use)."""
        if self._ingest is None:
            s = self.settings
            self._ingest = IngestFlow(
                self.write, self.units, self.bus, self.clock,
                make_limiter(s.redis_url, s.rate_per_second, s.rate_burst,
                             prefix=s.redis_prefix), max_list=s.max_list,
                max_future=timedelta(seconds=s.future_tolerance_seconds), keyring=self.keyring,
                observer=self.metrics, run_blocking=self._blocking_writes())
        return self._ingest

    def _blocking_writes(self):
        """How the ingest writer runs its transactions when serving on gevent.

        SQLite's file I/O blocks in C without yielding to the hub (a checkpoint's fsync on a busy
        disk would stall every connection), so its transactions go to one of gevent's native
        threads. PostgreSQL's driver waits cooperatively on the hub; a native thread there only
        made the two threads fight over the interpreter lock at every query and every websocket
        write (each side waiting up to a switch interval for the other: measured as the burst
        of a county's peak reaching screens hundreds of ms later), so it runs on the hub.
        """
        return green.offload if self.engine.dialect.name == "sqlite" else None

    def ingest_queue_depth(self) -> int:
        """Report messages waiting for the ingest writer (0 before the first report)."""
        return self._ingest.queued() if self._ingest is not None else 0

    def drain_ingest(self, timeout: float) -> None:
        """Refuse new reports; store and answer what the ingest writer has queued."""
        if self._ingest is not None:
            self._ingest.close(timeout)

    def locator(self):
        """The current Locator."""
        with self.read() as session:
            return self.units.current(session)

    def start_watch(self):
        """Run the alert rules on arriving incidents, in one process of the deployment."""
        from alerts.config import load_config
        from command.alerts.watch import RiskWatch
        from command.scheduler import Scheduler

        try:
            cfg = load_config(self.settings.alert_rules or None)
        except (OSError, ValueError) as exc:
            raise config_mod.ConfigError(f"CMDCENTER_ALERT_RULES: {exc}") from None
        # arrivals within 0.2 s are evaluated together: one alert write per situation per pass;
        # under a storm the watch takes at most a third of the interpreter, and alerts lag
        # rather than ingest and /live
        self.watch = Scheduler(self, [RiskWatch(self, cfg)], interval=self.settings.watch_seconds,
                               name="riskwatch", min_gap=0.2, max_share=1 / 3)
        self.bus.subscribe("incidents", lambda _items: self.watch.wake())
        return self.watch.start()

    def close(self) -> None:
        """Stop threads and release connections."""
        if self.watch is not None:
            self.watch.close()
        if self.scheduler is not None:
            self.scheduler.close()
        if self._ingest is not None:
            self._ingest.close()
        if self._bus is not None:
            self._bus.close()
        self.engine.dispose()
