"""Replay: the incidents of a past window in the order they occurred.

A window is at most `MAX_SPAN` long (an hour or a day on the wall) and may not start in the
future. Times without an offset are read as Asia/Shanghai.

>>> from datetime import datetime, timezone
>>> start, end = parse_window("2026-11-25T14:00", "2026-11-25T15:00+08:00",
...                           now=datetime(2026, 11, 26, tzinfo=timezone.utc))
>>> start.isoformat(), (end - start).total_seconds()
('2026-11-25T14:00:00+08:00', 3600.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from command.clock import SHANGHAI
from command.errors import DomainError

MAX_SPAN = timedelta(days=1)
MAX_ITEMS = 20_000  # more than a wall can animate; the answer says when it was cut


def parse_time(text: str | None, name: str) -> datetime:
    """An ISO 8601 time (a naive one is Asia/Shanghai), or a 422 DomainError naming `name`."""
    if not text:
        raise DomainError("missing_field", f"{name}: an ISO 8601 time is required", name)
    try:
        at = datetime.fromisoformat(text.strip().replace(" ", "T", 1).replace("Z", "+00:00"))
    except ValueError:
        raise DomainError("invalid_field", f"{name}: {text!r} is not an ISO 8601 time",
                          name) from None
    return at.replace(tzinfo=SHANGHAI) if at.tzinfo is None else at


def parse_window(start: str | None, end: str | None, *, now: datetime,
                 max_span: timedelta = MAX_SPAN) -> tuple[datetime, datetime]:
    """Check a replay window: `from` < `to`, at most `max_span`, starting before `now`."""
    a, b = parse_time(start, "from"), parse_time(end, "to")
    if b <= a:
        raise DomainError("out_of_range", "to must be later than from", "to")
    if b - a > max_span:
        hours = max_span.total_seconds() / 3600
        raise DomainError("out_of_range", f"the window may span at most {hours:g} hours", "to")
    if a > now:
        raise DomainError("out_of_range", "from is in the future", "from")
    return a.astimezone(SHANGHAI), b.astimezone(SHANGHAI)


def in_order(items: Iterable[Mapping]) -> list[Mapping]:
    """Items by occurred_at, then seq (the order they are played in)."""
    return sorted(items, key=lambda i: (i["occurred_at"], i.get("seq") or 0))
