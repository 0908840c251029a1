"""Trends: incidents by type per hour (last 24 h) or per day (last 30 days), against the period
before. Hours and days are those of Asia/Shanghai.

The current period ends with the bucket holding `now` (an hour or a day still running), so its
last bucket is partial; `sum.previous_to_date` counts the previous period only up to the same
point, for a fair "so far" comparison.

>>> from datetime import datetime, timezone
>>> w = window(datetime(2026, 11, 26, 2, 30, tzinfo=timezone.utc), "24h")
>>> w.start.isoformat(), w.labels()[-1]
('2026-11-25T11:00:00+08:00', '10时')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from command.clock import SHANGHAI, iso_shanghai
from command.errors import DomainError

SPANS = {"24h": (timedelta(hours=1), 24), "30d": (timedelta(days=1), 30)}


@dataclass(frozen=True)
class Window:
    """The buckets of one comparison: the current period and the one before, `n` steps each."""

    span: str
    step: timedelta
    n: int
    start: datetime      # first bucket of the current period (Asia/Shanghai)
    now: datetime

    @property
    def end(self) -> datetime:
        """The end of the current period (the end of the bucket holding `now`)."""
        return self.start + self.n * self.step

    @property
    def previous_start(self) -> datetime:
        """The first bucket of the previous period."""
        return self.start - self.n * self.step

    @property
    def previous_cut(self) -> datetime:
        """The point of the previous period as far into it as `now` is into the current one."""
        return self.previous_start + (self.now - self.start)

    def labels(self) -> list[str]:
        """The buckets' names: "14时" per hour, "11/26" per day."""
        out = []
        for k in range(self.n):
            at = (self.start + k * self.step).astimezone(SHANGHAI)
            out.append(f"{at.hour}时" if self.step < timedelta(days=1)
                       else f"{at.month}/{at.day}")
        return out

    def index(self, at: datetime) -> tuple[int, int] | None:
        """(period, bucket) of a time: period 0 is the current one, 1 the previous; None outside.

        >>> from datetime import datetime, timezone
        >>> w = window(datetime(2026, 11, 26, 2, 30, tzinfo=timezone.utc), "24h")
        >>> w.index(w.start), w.index(w.start - timedelta(seconds=1)), w.index(w.end)
        ((0, 0), (1, 23), None)
        """
        offset = (at - self.previous_start) // self.step
        if not 0 <= offset < 2 * self.n:
            return None
        return (0, offset - self.n) if offset >= self.n else (1, offset)


def window(now: datetime, span: str) -> Window:
    """The comparison window of `span` ("24h" or "30d") at `now`."""
    if span not in SPANS:
        raise DomainError("invalid_field", f"span: one of {', '.join(SPANS)}", "span")
    step, n = SPANS[span]
    local = now.astimezone(SHANGHAI)
    if step >= timedelta(days=1):
        floor = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        floor = local.replace(minute=0, second=0, microsecond=0)
    # Asia/Shanghai has no daylight saving time: adding hours and days is plain arithmetic
    return Window(span, step, n, floor - (n - 1) * step, now)


def count_rows(rows: Iterable[Mapping], win: Window) -> list[tuple[int, int, str, int]]:
    """Count plain rows ({occurred_at, type}) as (period, bucket, type, count) tuples.

    The reference for the SQL aggregate in `command.risk.service.trends`.
    """
    counts: dict[tuple[int, int, str], int] = {}
    for row in rows:
        where = win.index(row["occurred_at"])
        if where is not None:
            key = (*where, row["type"])
            counts[key] = counts.get(key, 0) + 1
    return [(*key, n) for key, n in sorted(counts.items())]


def series(counts: Iterable[Sequence], win: Window, types: Sequence[str], *,
           previous_to_date: int | None = None, labels: Mapping[str, str] | None = None) -> dict:
    """The trend answer: per type and in total, a list of `n` counts for each period.

    `counts` are (period, bucket, type, count); unknown types count as "other".
    """
    current = {t: [0] * win.n for t in types}
    previous = {t: [0] * win.n for t in types}
    fallback = "other" if "other" in current else types[-1]
    for period, bucket, kind, n in counts:
        target = current if period == 0 else previous
        target[kind if kind in target else fallback][bucket] += int(n)
    total_now = [sum(current[t][k] for t in types) for k in range(win.n)]
    total_before = [sum(previous[t][k] for t in types) for k in range(win.n)]
    now_sum, before_sum = sum(total_now), sum(total_before)
    to_date = before_sum if previous_to_date is None else previous_to_date
    change = None if to_date == 0 else round((now_sum - to_date) / to_date, 4)
    by_type = sorted(
        ({"type": t, "label": (labels or {}).get(t, t), "current": sum(current[t]),
          "previous": sum(previous[t])} for t in types),
        key=lambda row: (-row["current"], -row["previous"], types.index(row["type"])))
    step = "hour" if win.step < timedelta(days=1) else "day"
    return {
        "span": win.span, "unit": step, "as_of": iso_shanghai(win.now),
        "start": iso_shanghai(win.start), "end": iso_shanghai(win.end),
        "previous_start": iso_shanghai(win.previous_start),
        "labels": win.labels(),
        "buckets": [iso_shanghai(win.start + k * win.step) for k in range(win.n)],
        "current": current, "previous": previous,
        "total": {"current": total_now, "previous": total_before},
        "sum": {"current": now_sum, "previous": before_sum, "previous_to_date": to_date,
                "change": change},
        "by_type": by_type,
    }
