"""The matters' rules as data: legal time limits and the routing table (defaults.toml, overridden
by CMDCENTER_MATTER_RULES), and the clock as pure functions of them.

>>> cfg = load()
>>> cfg.limit_days("dispute", "labour"), cfg.limit_days("dispute", "neighbour")
(15, 30)
>>> cfg.suggest("dispute", "labour", township="DEMO-T01", grid="DEMO-T01-G01")
('dept.hrss', 'complex')
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")
TIERS = {"simple": "简单", "complex": "复杂", "difficult": "疑难"}


@dataclass(frozen=True)
class MatterRules:
    """Legal limits (calendar days) and the routing table."""

    type_days: dict[str, int]
    category_days: dict[str, int]
    followup_days: int = 7
    confirmation_days: int = 30
    warn_share: float = 0.2
    notify_days: int = 15
    petition_extension_days: int = 30
    routing_categories: dict[str, tuple[str, str]] = field(default_factory=dict)
    routing_types: dict[str, tuple[str, str]] = field(default_factory=dict)

    def limit_days(self, type_code: str, category: str | None) -> int:
        """Days a matter of this type and category has to conclude."""
        if category and category in self.category_days:
            return self.category_days[category]
        return self.type_days.get(type_code, self.type_days.get("other", 30))

    def clock_starts_at_sign_off(self, type_code: str) -> bool:
        """A petition's 办理 limit runs from the lead's sign-off; others' from registration."""
        return type_code == "petition"

    def suggest(self, type_code: str, category: str | None, *, township: str | None,
                grid: str | None) -> tuple[str | None, str]:
        """(lead unit code, tier) the routing table suggests for a matter."""
        lead, tier = self.routing_categories.get(category or "") or \
            self.routing_types.get(type_code) or ("township", "simple")
        if lead == "township":
            lead = township
        elif lead == "grid":
            lead = grid or township
        return lead, tier


def load(path: str | Path | None = None) -> MatterRules:
    """The defaults, with a deployment file's keys over them. Raises ValueError on bad values."""
    data = tomllib.loads(DEFAULTS_PATH.read_text(encoding="utf-8"))
    if path:
        _merge(data, tomllib.loads(Path(path).read_text(encoding="utf-8")))
    limits = data.get("limits", {})
    petition = data.get("petition", {})
    routing = data.get("routing", {})

    def days(table: dict, where: str) -> dict[str, int]:
        out = {}
        for key, value in table.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{where}.{key}: a positive whole number of days")
            out[key] = value
        return out

    def routes(table: dict, where: str) -> dict[str, tuple[str, str]]:
        out = {}
        for key, value in table.items():
            if not isinstance(value, dict) or not isinstance(value.get("lead"), str) \
                    or value.get("tier", "simple") not in TIERS:
                raise ValueError(f"{where}.{key}: {{ lead = \"unit code|township|grid\", "
                                 f"tier = \"{'|'.join(TIERS)}\" }}")
            out[key] = (value["lead"], value.get("tier", "simple"))
        return out
    share = float(limits.get("warn_share", 0.2))
    if not 0 < share < 1:
        raise ValueError("limits.warn_share: between 0 and 1")
    return MatterRules(
        type_days=days(limits.get("types", {}), "limits.types"),
        category_days=days(limits.get("categories", {}), "limits.categories"),
        followup_days=days({"followup_days": limits.get("followup_days", 7)}, "limits")
        ["followup_days"],
        confirmation_days=days({"confirmation_days": limits.get("confirmation_days", 30)},
                               "limits")["confirmation_days"],
        warn_share=share,
        notify_days=days({"notify_days": petition.get("notify_days", 15)}, "petition")
        ["notify_days"],
        petition_extension_days=days({"extension_days": petition.get("extension_days", 30)},
                                     "petition")["extension_days"],
        routing_categories=routes(routing.get("categories", {}), "routing.categories"),
        routing_types=routes(routing.get("types", {}), "routing.types"),
    )


@functools.lru_cache(maxsize=1)
def defaults() -> MatterRules:
    """The rules of defaults.toml (a deployment's own are on its Core)."""
    return load()


def _merge(base: dict, over: dict) -> None:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


# --- the clock (pure) -----------------------------------------------------------------------

@dataclass(frozen=True)
class Clock:
    """Where a matter stands against its legal limit at a moment."""

    state: str  # running | near | overdue | concluded | stopped | waiting
    due_at: datetime | None
    left_seconds: float | None
    share_left: float | None


def clock(*, start: datetime | None, due_at: datetime | None, concluded_at: datetime | None,
          now: datetime, warn_share: float, stopped: bool = False) -> Clock:
    """The clock of a matter whose time runs from `start` to `due_at`.

    `waiting`: its time has not started (a petition not yet signed off); `stopped`: never
    concluded (not accepted); `concluded`: an outcome or an on-the-spot closure was recorded.

    >>> t0 = datetime(2026, 11, 1)
    >>> clock(start=t0, due_at=t0 + timedelta(days=10), concluded_at=None,
    ...       now=t0 + timedelta(days=9), warn_share=0.2).state
    'near'
    """
    if stopped:
        return Clock("stopped", due_at, None, None)
    if concluded_at is not None:
        return Clock("concluded", due_at, None, None)
    if start is None or due_at is None:
        return Clock("waiting", due_at, None, None)
    total = (due_at - start).total_seconds()
    left = (due_at - now).total_seconds()
    share = left / total if total > 0 else 0.0
    if left < 0:
        return Clock("overdue", due_at, left, share)
    return Clock("near" if share <= warn_share else "running", due_at, left, share)


def deadline(start: datetime, days: int, extended_days: int = 0) -> datetime:
    """The moment `days` (plus extensions) calendar days after `start`."""
    return start + timedelta(days=days + extended_days)


def clock_fields(rules: MatterRules, *, type_code: str, category: str | None,
                 registered_at: datetime, signed_at: datetime | None,
                 extended_days: int = 0) -> dict:
    """limit_days, due_at and notify_due_at of a matter (a petition's due waits for sign-off)."""
    days = rules.limit_days(type_code, category)
    start = signed_at if rules.clock_starts_at_sign_off(type_code) else registered_at
    return {"limit_days": days,
            "due_at": deadline(start, days, extended_days) if start else None,
            "notify_due_at": registered_at + timedelta(days=rules.notify_days)
            if type_code == "petition" else None}
