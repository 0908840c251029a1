"""Reporting periods in Asia/Shanghai: the calendar day, the ISO week, the calendar month.

Pure date arithmetic, no database. A period is a half-open range of local days
``[start, end)``; its UTC bounds are the local midnights converted to UTC, so an incident at
23:59:59 local on the last day is in and one at 00:00 the next day is out.

>>> p = parse("week", "2026-W53", now=datetime(2027, 2, 1, tzinfo=timezone.utc))
>>> p.key, p.start, p.end
('2026-W53', datetime.date(2026, 12, 28), datetime.date(2027, 1, 4))
>>> p.previous().key
'2026-W52'
>>> parse("month", None, now=datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)).key
'2026-10'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from command.clock import SHANGHAI
from command.errors import DomainError

KINDS = ("day", "week", "month")
KIND_LABELS = {"day": "日报", "week": "周报", "month": "月报"}
KIND_NAMES = {"day": "日", "week": "周", "month": "月"}

_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-?[Ww](\d{1,2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")


@dataclass(frozen=True)
class Period:
    """A reporting period: `kind` and its local days `[start, end)`."""

    kind: str
    start: date
    end: date

    @property
    def last_day(self) -> date:
        """The period's last local day."""
        return self.end - timedelta(days=1)

    @property
    def key(self) -> str:
        """A short, sortable name: 2026-11-26, 2026-W48 or 2026-11."""
        if self.kind == "day":
            return self.start.isoformat()
        if self.kind == "week":
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.start.year}-{self.start.month:02d}"

    @property
    def label(self) -> str:
        """The period in Chinese, e.g. 2026年第48周（11月23日—11月29日）."""
        s = self.start
        if self.kind == "day":
            return f"{s.year}年{s.month}月{s.day}日"
        if self.kind == "week":
            year, week, _ = s.isocalendar()
            e = self.last_day
            end = f"{e.year}年{e.month}月{e.day}日" if e.year != s.year else f"{e.month}月{e.day}日"
            return f"{year}年第{week}周（{s.year}年{s.month}月{s.day}日—{end}）"
        return f"{s.year}年{s.month}月"

    @property
    def short_label(self) -> str:
        """The period in a few characters: 11月25日, 2026年第47周, 2026年10月."""
        s = self.start
        if self.kind == "day":
            return f"{s.month}月{s.day}日"
        if self.kind == "week":
            year, week, _ = s.isocalendar()
            return f"{year}年第{week}周"
        return f"{s.year}年{s.month}月"

    @property
    def start_utc(self) -> datetime:
        """The first instant of the period, in UTC."""
        return local_midnight(self.start)

    @property
    def end_utc(self) -> datetime:
        """The first instant after the period, in UTC."""
        return local_midnight(self.end)

    def previous(self) -> Period:
        """The period of the same kind just before this one."""
        return containing(self.kind, self.start - timedelta(days=1))

    def days(self) -> list[date]:
        """Every local day of the period."""
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days)]


def local_midnight(day: date) -> datetime:
    """00:00 of a local day in Asia/Shanghai, as an aware UTC datetime."""
    return datetime.combine(day, time(0), SHANGHAI).astimezone(timezone.utc)


def local_day(at: datetime) -> date:
    """The local (Asia/Shanghai) day of an aware datetime."""
    return at.astimezone(SHANGHAI).date()


def containing(kind: str, day: date) -> Period:
    """The period of `kind` that contains the local day `day`."""
    if kind == "day":
        return Period("day", day, day + timedelta(days=1))
    if kind == "week":
        start = day - timedelta(days=day.isoweekday() - 1)
        return Period("week", start, start + timedelta(days=7))
    if kind == "month":
        start = day.replace(day=1)
        end = (start.replace(year=start.year + 1, month=1) if start.month == 12
               else start.replace(month=start.month + 1))
        return Period("month", start, end)
    raise DomainError("invalid_field", f"period: one of {', '.join(KINDS)}, got {kind!r}",
                      "period")


def last_complete(kind: str, now: datetime) -> Period:
    """The latest period of `kind` that has fully ended by `now` (yesterday, last week …)."""
    return containing(kind, local_day(now)).previous()


def parse(kind: str | None, text: str | None, *, now: datetime) -> Period:
    """The period of `kind` named by `text`; without `text` the last complete one.

    `text` is a local date YYYY-MM-DD (the period containing it) for every kind; a week also
    takes 2026-W47 and a month 2026-11. A period that has not begun by `now` is refused.
    """
    if kind not in KINDS:
        raise DomainError("invalid_field", f"period: one of {', '.join(KINDS)}, got {kind!r}",
                          "period")
    if text is None or not str(text).strip():
        return last_complete(kind, now)
    text = str(text).strip()
    period = _parse_text(kind, text)
    if period.start_utc > now:
        raise DomainError("out_of_range", f"date: {text} has not begun yet", "date")
    return period


def _parse_text(kind: str, text: str) -> Period:
    m = _DAY.match(text)
    if m:
        try:
            day = date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            raise DomainError("invalid_field", f"date: no such day {text}", "date") from None
        return containing(kind, day)
    m = _WEEK.match(text)
    if m and kind == "week":
        try:
            return containing("week", date.fromisocalendar(int(m[1]), int(m[2]), 1))
        except ValueError:
            raise DomainError("invalid_field", f"date: no such ISO week {text}", "date") from None
    m = _MONTH.match(text)
    if m and kind == "month":
        if not 1 <= int(m[2]) <= 12:
            raise DomainError("invalid_field", f"date: no such month {text}", "date")
        return containing("month", date(int(m[1]), int(m[2]), 1))
    forms = {"day": "YYYY-MM-DD", "week": "YYYY-MM-DD or YYYY-Www (e.g. 2026-W47)",
             "month": "YYYY-MM-DD or YYYY-MM (e.g. 2026-11)"}[kind]
    raise DomainError("invalid_field", f"date: for --period {kind} use {forms}, got {text!r}",
                      "date")
