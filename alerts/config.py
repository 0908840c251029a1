"""Alert rule thresholds: defaults in ``defaults.toml``, overridden by a deployment file."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layers.theme import TYPE_LABELS

DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")
LEVELS = ("red", "orange", "yellow", "blue")
_MAY_BE_ZERO = {"spike.prior_weeks"}


@dataclass(frozen=True)
class SeverityConfig:
    red_max: int
    orange_max: int


@dataclass(frozen=True)
class MassGatheringConfig:
    people: int
    people_red: int
    reports: int
    radius_m: float
    minutes: float
    cluster_level: str


@dataclass(frozen=True)
class SpikeConfig:
    window_minutes: float
    weeks: int
    false_alarm_per_cell_day: float
    prior_count: float
    prior_weeks: float
    min_count: int
    red_factor: float
    trend_windows: int
    trend_p: float
    method: str

    @property
    def windows_per_day(self) -> float:
        return 1440.0 / self.window_minutes

    @property
    def alpha(self) -> float:
        """Per-window significance: the daily target split over the day's windows."""
        return self.false_alarm_per_cell_day / self.windows_per_day


@dataclass(frozen=True)
class RepeatPlaceConfig:
    types: tuple[str, ...]
    days: float
    count: int
    count_orange: int
    radius_m: float
    match: str
    occasion_hours: float


@dataclass(frozen=True)
class FeedSilenceConfig:
    min_gaps: int
    quantile: float
    factor: float
    floor_seconds: float
    yellow_factor: float


@dataclass(frozen=True)
class RepeatPartyConfig:
    months: int
    count: int
    count_orange: int


@dataclass(frozen=True)
class RulesConfig:
    severity: SeverityConfig
    mass_gathering: MassGatheringConfig
    spike: SpikeConfig
    repeat_place: RepeatPlaceConfig
    feed_silence: FeedSilenceConfig
    repeat_party: RepeatPartyConfig


_SECTION_TYPES = {"severity": SeverityConfig, "mass_gathering": MassGatheringConfig,
                  "spike": SpikeConfig, "repeat_place": RepeatPlaceConfig,
                  "feed_silence": FeedSilenceConfig, "repeat_party": RepeatPartyConfig}

def load_config(path: str | Path | None = None,
                overrides: dict[str, dict[str, Any]] | None = None) -> RulesConfig:
    """Load the defaults, then the file at ``path``, then ``overrides``; validate every key.

    >>> load_config().spike.window_minutes
    60
    >>> load_config(overrides={"spike": {"weeks": 0}})
    Traceback (most recent call last):
    ...
    ValueError: spike.weeks: must be an integer ≥ 1, got 0
    """
    with DEFAULTS_PATH.open("rb") as fh:
        merged = tomllib.load(fh)
    layers = []
    if path is not None:
        with Path(path).open("rb") as fh:
            layers.append(tomllib.load(fh))
    if overrides:
        layers.append(overrides)
    for layer in layers:
        for section, values in layer.items():
            if section not in merged:
                raise ValueError(f"{section}: unknown section (known: {', '.join(merged)})")
            if not isinstance(values, dict):
                raise ValueError(f"{section}: must be a table of keys")  # noqa: TRY004 (config error)
            for key, value in values.items():
                if key not in merged[section]:
                    raise ValueError(f"{section}.{key}: unknown key")
                merged[section][key] = value
    return RulesConfig(**{name: _build(name, merged[name]) for name in _SECTION_TYPES})


def _build(section: str, values: dict[str, Any]):
    cls = _SECTION_TYPES[section]
    kwargs = {}
    for field in dataclasses.fields(cls):
        name = f"{section}.{field.name}"
        if field.name not in values:
            raise ValueError(f"{name}: missing")
        kwargs[field.name] = _check(name, field.type, values[field.name])
    cfg = cls(**kwargs)
    _check_section(section, cfg)
    return cfg


def _check(name: str, kind: str, value: Any) -> Any:
    # field types are strings here (postponed annotations), which is all this needs
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: must be an integer ≥ 1, got {value!r}")
        return value
    if kind == "float":
        number = not isinstance(value, bool) and isinstance(value, (int, float))
        if not number or not (value > 0 or (value == 0 and name in _MAY_BE_ZERO)):
            bound = "≥ 0" if name in _MAY_BE_ZERO else "> 0"
            raise ValueError(f"{name}: must be a number {bound}, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"{name}: must be a string, got {value!r}")
        return value
    if kind == "tuple[str, ...]":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{name}: must be a list of strings, got {value!r}")
        return tuple(value)
    raise AssertionError(kind)  # a field type this loader does not know


def _check_section(section: str, cfg) -> None:
    def fail(key: str, text: str) -> None:
        raise ValueError(f"{section}.{key}: {text}, got {getattr(cfg, key)!r}")

    if section == "severity":
        if cfg.red_max > 4:
            fail("red_max", "must be a severity 1–4")
        if not cfg.red_max <= cfg.orange_max <= 4:
            fail("orange_max", "must be a severity between red_max and 4")
    elif section == "mass_gathering":
        if cfg.people_red < cfg.people:
            fail("people_red", "must be ≥ people")
        if cfg.reports < 2:
            fail("reports", "must be ≥ 2 (a group needs more than one report)")
        if cfg.cluster_level not in LEVELS:
            fail("cluster_level", f"must be one of {'|'.join(LEVELS)}")
    elif section == "spike":
        if cfg.window_minutes > 1440:
            fail("window_minutes", "must be at most 1440")
        if not cfg.false_alarm_per_cell_day < cfg.windows_per_day:
            fail("false_alarm_per_cell_day", "must be below the number of windows per day")
        if not cfg.trend_p < 1:
            fail("trend_p", "must be a probability < 1")
        if cfg.red_factor < 1:
            fail("red_factor", "must be ≥ 1")
        if cfg.method not in ("negbin", "poisson"):
            fail("method", "must be negbin|poisson")
    elif section == "repeat_place":
        unknown = [t for t in cfg.types if t not in TYPE_LABELS]
        if unknown or not cfg.types:
            fail("types", f"must be type codes from {', '.join(TYPE_LABELS)}")
        if cfg.count < 2:
            fail("count", "must be ≥ 2 (a repeat needs more than one)")
        if cfg.count_orange < cfg.count:
            fail("count_orange", "must be ≥ count")
        if cfg.match not in ("radius", "grid", "both"):
            fail("match", "must be radius|grid|both")
    elif section == "repeat_party":
        if cfg.count < 2:
            fail("count", "must be ≥ 2 (a repeat needs more than one)")
        if cfg.count_orange < cfg.count:
            fail("count_orange", "must be ≥ count")
    elif section == "feed_silence":
        if not cfg.quantile < 1:
            fail("quantile", "must be a probability < 1")
        if cfg.factor < 1:
            fail("factor", "must be ≥ 1")
        if cfg.yellow_factor < 1:
            fail("yellow_factor", "must be ≥ 1")
