"""Configuration: explicit argument > environment (CMDCENTER_*) > default, read at app creation."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ENV_PREFIX = "CMDCENTER_"


class ConfigError(Exception):
    """A configuration value a person has to fix (one clear line)."""


class Secret(str):
    """A string whose repr hides the password part of a URL."""

    def __repr__(self) -> str:
        return repr(mask_url(str(self)))


def mask_url(url: str) -> str:
    """Hide the password of a URL for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know, resolved once in `load`."""

    data_dir: Path = Path("./data")
    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "cmdcenter"
    host: str = "127.0.0.1"
    port: int = 8050
    max_message_bytes: int = 16 * 1024 * 1024
    max_list: int = 1000
    # token bucket per feed, counted in reports: `rate_burst` then `rate_per_second`
    rate_per_second: float = 500.0
    rate_burst: int = 5000
    future_tolerance_seconds: int = 300
    live_flush_ms: int = 20
    # Engine.IO pings each connection this often; one that does not answer within twice this
    # is dropped (and its websocket closed by the writer after the two together without data)
    ping_seconds: float = 10.0
    secret_key: str | None = field(default=None, repr=False)
    # "dept.code:名称,…" overrides the built-in list of stationed departments
    departments: str | None = None
    session_days: int = 30
    # JSON, e.g. {"1": [5, 60], "2": [10, 120], "escalate_after": 2}: sign-off/complete minutes
    time_limits: str | None = None
    supervision_seconds: float = 15.0
    # a TOML file overriding alerts/defaults.toml (the risk-watch rule thresholds)
    alert_rules: str | None = None
    # the risk watch runs on each arrival and at least this often (feed silence, expiry)
    watch_seconds: float = 5.0
    # "code:名称,…" replaces the list of matter categories
    matter_categories: str | None = None
    # a TOML file overriding command/matters/defaults.toml (legal limits, the routing table)
    matter_rules: str | None = None
    # GET /metrics: a bearer token, and/or CIDRs matched against the TCP peer (comma-separated)
    metrics_token: str | None = field(default=None, repr=False)
    metrics_allow: str | None = None
    # this process's name in the Engine.IO session ids it issues ("<node>.<random>"), which
    # nginx routes polling requests by (deploy/nginx): letters and digits, unique per deployment
    node: str | None = None
    # tests only: a file holding seconds added to the wall clock (read at most 10 times a
    # second), so a test can move a real server past a time limit instead of waiting for it
    clock_file: str | None = None

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL: the configured one, else a SQLite file in the data dir."""
        if self.database_url:
            url = str(self.database_url)
            for plain in ("postgresql://", "postgres://"):
                if url.startswith(plain):  # the driver we ship
                    return "postgresql+psycopg://" + url[len(plain):]
            return url
        return f"sqlite:///{(self.data_dir / 'cmdcenter.sqlite3').resolve()}"


_INT_FIELDS = {"port", "max_message_bytes", "max_list", "rate_burst", "future_tolerance_seconds",
               "live_flush_ms"}
_FLOAT_FIELDS = {"rate_per_second", "supervision_seconds", "watch_seconds", "ping_seconds"}


def load(**overrides) -> Settings:
    """Build settings from explicit overrides (None = unset), then CMDCENTER_* env, then defaults."""
    values: dict = {}
    for f in fields(Settings):
        env = os.environ.get(ENV_PREFIX + f.name.upper())
        if overrides.get(f.name) is not None:
            values[f.name] = overrides[f.name]
        elif env not in (None, ""):
            values[f.name] = env
    for name in list(values):
        raw = values[name]
        try:
            if name in _INT_FIELDS:
                values[name] = int(raw)
            elif name in _FLOAT_FIELDS:
                values[name] = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{ENV_PREFIX}{name.upper()} must be a number, got {raw!r}") from None
    if "data_dir" in values:
        values["data_dir"] = Path(values["data_dir"]).expanduser()
    for name in ("database_url", "redis_url"):
        if name in values:
            values[name] = Secret(values[name])
    settings = Settings(**values)
    _check_urls(settings)
    return settings


_NODE = re.compile(r"[A-Za-z0-9]{1,32}")


def _check_urls(settings: Settings) -> None:
    if not 1 <= settings.ping_seconds <= 300:
        raise ConfigError(f"CMDCENTER_PING_SECONDS must be from 1 to 300, got "
                          f"{settings.ping_seconds!r}")
    if settings.node is not None and not _NODE.fullmatch(settings.node):
        raise ConfigError(f"CMDCENTER_NODE must be 1 to 32 letters or digits, got "
                          f"{settings.node!r}")
    if settings.database_url:
        scheme = urlsplit(settings.database_url).scheme
        if not scheme.startswith(("postgresql", "postgres", "sqlite")):
            raise ConfigError(
                f"CMDCENTER_DATABASE_URL must be a postgresql:// or sqlite:// URL, got "
                f"{mask_url(settings.database_url)!r}")
    if settings.redis_url:
        scheme = urlsplit(settings.redis_url).scheme
        if scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(
                f"CMDCENTER_REDIS_URL must be a redis:// URL, got {mask_url(settings.redis_url)!r}")


def with_overrides(settings: Settings, **changes) -> Settings:
    """A copy of `settings` with some values changed (tests, CLI)."""
    return replace(settings, **changes)
