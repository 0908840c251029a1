"""The clock behind an interface, so tests can hand in a fixed one."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware."""
        return datetime.now(timezone.utc)


class FixedClock(Clock):
    """A clock that only moves when told to."""

    def __init__(self, at: datetime):
        self._at = at

    def now(self) -> datetime:
        """Return the fixed time."""
        return self._at

    def advance(self, **delta) -> None:
        """Move the clock forward by a timedelta's keyword arguments."""
        self._at += timedelta(**delta)


def iso_shanghai(value: datetime) -> str:
    """Format an aware datetime as ISO 8601 in +08:00."""
    return value.astimezone(SHANGHAI).isoformat(timespec="seconds")
