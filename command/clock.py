"""The clock behind an interface, so tests can hand in a fixed one."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
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


class FileOffsetClock(Clock):
    """The wall clock moved forward by the seconds written in a file (tests: a real server
    taken past a time limit without waiting for it; CMDCENTER_CLOCK_FILE).

    The file is read at most every 0.1 s; a missing or unreadable one keeps the last offset
    read (0 at first), so write it by renaming a new file onto it.
    """

    def __init__(self, path: str | Path):
        self._path = Path(path)
        self._offset = 0.0
        self._read_at = float("-inf")

    def now(self) -> datetime:
        """Return the current time plus the file's offset, timezone-aware."""
        tick = time.monotonic()
        if tick - self._read_at >= 0.1:
            self._read_at = tick
            try:
                self._offset = float(self._path.read_text())
            except (OSError, ValueError):
                pass
        return datetime.now(timezone.utc) + timedelta(seconds=self._offset)


def iso_shanghai(value: datetime) -> str:
    """Format an aware datetime as ISO 8601 in +08:00."""
    return value.astimezone(SHANGHAI).isoformat(timespec="seconds")
