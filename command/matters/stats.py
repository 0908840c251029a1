"""The center's figures (受理量, 化解率, 满意率, 按期办结率) by department, township, category or
channel, for a range of local days and the same number of days before it.

Definitions (README "The figures"):

- **registered** (受理量): matters registered in the range (by `registered_at`), refusals
  (`not_accepted`, 不予受理) left out: those are counted apart in `not_accepted`, by the same date.
- **concluded** (办结): an outcome recorded (any result, `withdrawn` included) or a closure
  `on_the_spot`, dated by that moment (`concluded_at`); `not_accepted` is never concluded.
- **resolved** (化解): concluded as `agreed`, `supported`, `partly_supported`, `served`,
  `substantiated`, or closed `on_the_spot`; 化解率 = resolved ÷ (concluded − withdrawn).
- **followed_up** / **satisfied**: concluded matters with a follow-up answer, and those answering
  satisfied or basically satisfied; 满意率 = satisfied ÷ followed_up.
- **on_time**: concluded by the matter's legal limit, extensions included (`due_at`; a petition
  concluded before its sign-off: its 受理告知 limit; a matter with neither counts as on time);
  按期办结率 = on_time ÷ concluded.

The rates (`resolution_rate` …) are fractions 0–1 with four decimals, null when the denominator
is 0. Every count is one SQL aggregate per date column and period (two queries for a request):
a year over 200k matters takes well under a second (bench/stats.py).

>>> r = DayRange(date(2026, 11, 1), date(2026, 11, 30))
>>> r.days, r.previous().start.isoformat(), r.previous().end.isoformat()
(30, '2026-10-02', '2026-10-31')
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.clock import SHANGHAI
from command.errors import DomainError, Forbidden
from command.matters.categories import CATEGORY_LABELS, CHANNEL_LABELS
from command.matters.handling import RESOLVED
from command.matters.models import matters
from command.users.principal import COUNTY_LEVEL_ROLES, Principal
from layers.locate import Locator

BY = {"dept": "主办单位", "township": "乡镇（街道）", "category": "事项类别", "channel": "受理渠道"}
COUNTS = ("registered", "concluded", "withdrawn", "resolved", "followed_up", "satisfied",
          "on_time", "not_accepted")
RATES = {"resolution_rate": ("resolved", "resolvable"),
         "satisfaction_rate": ("satisfied", "followed_up"),
         "on_time_rate": ("on_time", "concluded")}
FIELDS = ("registered", "concluded", "resolved", "resolution_rate", "followed_up", "satisfied",
          "satisfaction_rate", "on_time", "on_time_rate", "not_accepted", "withdrawn")
LABELS = {"key": "代码", "name": "名称", "registered": "受理量", "concluded": "办结量",
          "resolved": "化解量", "resolution_rate": "化解率", "followed_up": "回访量",
          "satisfied": "满意量（含基本满意）", "satisfaction_rate": "满意率",
          "on_time": "按期办结量", "on_time_rate": "按期办结率", "not_accepted": "不予受理",
          "withdrawn": "撤回"}
NO_KEY = {"dept": "受理窗口（未分流）", "township": "辖区外", "category": "未分类",
          "channel": "未知渠道"}
MAX_DAYS = 3660  # ten years: a request beyond that is a typo
SATISFIED = ("satisfied", "basic")


@dataclass(frozen=True)
class DayRange:
    """Local days (Asia/Shanghai) from `start` to `end`, both inclusive."""

    start: date
    end: date

    @property
    def days(self) -> int:
        """How many days the range covers."""
        return (self.end - self.start).days + 1

    def previous(self) -> DayRange:
        """The same number of days, ending the day before `start`."""
        end = self.start - timedelta(days=1)
        return DayRange(end - timedelta(days=self.days - 1), end)

    def bounds(self) -> tuple[datetime, datetime]:
        """The UTC instants [first local midnight, the midnight after the last day)."""
        return _midnight(self.start), _midnight(self.end + timedelta(days=1))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def local_day(now: datetime) -> date:
    """The local (Asia/Shanghai) date of an instant."""
    return now.astimezone(SHANGHAI).date()


def parse_range(start: str | None, end: str | None, *, now: datetime) -> DayRange:
    """`from` and `to` (YYYY-MM-DD, inclusive); either missing: the other, both: today.

    Raises DomainError (invalid_field / out_of_range) naming the parameter.
    """
    today = local_day(now)
    first = _date(start, "from") if start not in (None, "") else None
    last = _date(end, "to") if end not in (None, "") else None
    first = first or last or today
    last = last or first
    if last < first:
        raise DomainError("out_of_range", "to: on or after from", "to")
    if (last - first).days + 1 > MAX_DAYS:
        raise DomainError("out_of_range", f"to: at most {MAX_DAYS} days after from", "to")
    return DayRange(first, last)


def _date(value: str, name: str) -> date:
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise DomainError("invalid_field", f"{name}: a date, YYYY-MM-DD", name) from None
    if not 2000 <= day.year <= 2100:
        raise DomainError("out_of_range", f"{name}: a year from 2000 to 2100", name)
    return day


def check_by(by: str | None) -> str:
    """The dimension of a request (default: dept). Raises DomainError."""
    by = by or "dept"
    if by not in BY:
        raise DomainError("invalid_field", f"by: one of {', '.join(BY)}", "by")
    return by


def scope(principal: Principal):
    """The matters `principal` counts (None: the whole county); Forbidden for other roles.

    The county-level roles (duty, leader, admin and the window's desk) count every matter; a
    township counts the matters located in it, a stationed department those it leads; a grid
    worker has no figures of its own (403).
    """
    if principal.role in COUNTY_LEVEL_ROLES:
        return None
    if principal.role == "township" and principal.unit_code:
        return matters.c.fig_township == principal.unit_code
    if principal.role == "dept" and principal.unit_code:
        return matters.c.lead_code == principal.unit_code
    raise Forbidden("the figures are for the county's roles, a township and a department")


def _key_column(by: str):
    # the incident's own, copied onto the matter by the database (migration 0009): no join
    return {"dept": matters.c.lead_code, "township": matters.c.fig_township,
            "category": matters.c.fig_category, "channel": matters.c.fig_channel}[by]


def _counts(session: Session, rng: DayRange, by: str, where) -> dict[tuple, dict[str, int]]:
    """{(key, 0 = the range | 1 = the period before): counts}: two aggregate queries."""
    prev = rng.previous()
    lo, _ = prev.bounds()
    cut, hi = rng.bounds()
    key = _key_column(by).label("key")
    source = matters
    one, zero = sa.literal(1), sa.literal(0)

    def when(cond):
        return sa.func.sum(sa.case((cond, one), else_=zero))

    out: dict[tuple, dict[str, int]] = {}

    def put(rows, names):
        for r in rows:
            counts = out.setdefault((r.key, r.period), dict.fromkeys(COUNTS, 0))
            for name in names:
                counts[name] = int(getattr(r, name) or 0)

    reg_at = matters.c.registered_at
    refused = matters.c.closure == "not_accepted"
    period = sa.case((reg_at >= cut, zero), else_=one).label("period")
    stmt = (sa.select(key, period, when(sa.not_(refused) | matters.c.closure.is_(None))
                      .label("registered"), when(refused).label("not_accepted"))
            .select_from(source).where(reg_at >= lo, reg_at < hi).group_by(key, period))
    if where is not None:
        stmt = stmt.where(where)
    put(session.execute(stmt), ("registered", "not_accepted"))

    done = matters.c.concluded_at
    result, closure = matters.c.result, matters.c.closure
    due = sa.func.coalesce(matters.c.due_at, matters.c.notify_due_at)
    period = sa.case((done >= cut, zero), else_=one).label("period")
    stmt = (sa.select(
        key, period, sa.func.count().label("concluded"),
        when(result == "withdrawn").label("withdrawn"),
        when(result.in_(RESOLVED) | (closure == "on_the_spot")).label("resolved"),
        when(matters.c.satisfaction.isnot(None)).label("followed_up"),
        when(matters.c.satisfaction.in_(SATISFIED)).label("satisfied"),
        when(due.is_(None) | (done <= due)).label("on_time"))
        .select_from(source)
        .where(done >= lo, done < hi, sa.or_(closure.is_(None), closure != "not_accepted"))
        .group_by(key, period))
    if where is not None:
        stmt = stmt.where(where)
    put(session.execute(stmt), ("concluded", "withdrawn", "resolved", "followed_up",
                                "satisfied", "on_time"))
    return out


def finish(counts: dict[str, int]) -> dict:
    """The counts with their rates (fractions, four decimals; None over 0)."""
    row = {name: counts.get(name, 0) for name in COUNTS}
    row["resolvable"] = row["concluded"] - row["withdrawn"]
    for rate, (top, bottom) in RATES.items():
        row[rate] = round(row[top] / row[bottom], 4) if row[bottom] else None
    return {name: row[name] for name in FIELDS}


def name_of(by: str, key: str | None, locator: Locator | None) -> str:
    """The label of a key: a unit's name, a category's or a channel's label."""
    if key is None:
        return NO_KEY[by]
    if by in ("dept", "township"):
        return locator.unit(key)["name"] if locator is not None and locator.has(key) else key
    if by == "category":
        return CATEGORY_LABELS.get(key, key)
    return CHANNEL_LABELS.get(key, key)


def _order(by: str, key: str | None) -> tuple:
    if key is None:
        return (2, "")
    known = list(CATEGORY_LABELS) if by == "category" else \
        list(CHANNEL_LABELS) if by == "channel" else []
    return (0, f"{known.index(key):04d}") if key in known else (1, key)


def figures(session: Session, rng: DayRange, *, by: str = "dept", where=None,
            locator: Locator | None = None) -> dict:
    """The figures of `rng` and of the period before, one row per key of `by`, and the total.

    `where` restricts the matters counted (see `scope`). Answers
    `{"from", "to", "previous": {"from", "to"}, "by", "rows": [...], "total": {...}}`, each row
    `{key, name, registered, concluded, resolved, resolution_rate, followed_up, satisfied,
    satisfaction_rate, on_time, on_time_rate, not_accepted, withdrawn, previous: {same}}`.
    """
    by = check_by(by)
    counts = _counts(session, rng, by, where)
    keys = sorted({k for k, _ in counts}, key=lambda k: _order(by, k))
    empty = dict.fromkeys(COUNTS, 0)
    rows = []
    for k in keys:
        row = {"key": k, "name": name_of(by, k, locator), **finish(counts.get((k, 0), empty))}
        row["previous"] = finish(counts.get((k, 1), empty))
        rows.append(row)
    totals = [{name: sum(c[name] for (_, p), c in counts.items() if p == period)
               for name in COUNTS} for period in (0, 1)]
    prev = rng.previous()
    return {"from": rng.start.isoformat(), "to": rng.end.isoformat(),
            "previous": {"from": prev.start.isoformat(), "to": prev.end.isoformat()},
            "by": by, "by_label": BY[by], "rows": rows,
            "total": {"key": None, "name": "合计", **finish(totals[0]),
                      "previous": finish(totals[1])}}


def for_principal(session: Session, principal: Principal, *, start: str | None,
                  end: str | None, by: str | None, now: datetime,
                  locator: Locator | None) -> dict:
    """The figures a user asked for (parameters as given in a request), in their scope."""
    where = scope(principal)
    rng = parse_range(start, end, now=now)
    return figures(session, rng, by=check_by(by), where=where, locator=locator)


def today_and_month(session: Session, *, now: datetime, where=None,
                    locator: Locator | None = None) -> dict:
    """The wall's two tiles: today's 受理 and this month's 化解率 (the same figures)."""
    today = local_day(now)
    day = figures(session, DayRange(today, today), by="channel", where=where, locator=locator)
    month = figures(session, DayRange(today.replace(day=1), today), by="channel", where=where,
                    locator=locator)
    return {"today": today.isoformat(), "registered_today": day["total"]["registered"],
            "month_from": month["from"], "resolution_rate_month": month["total"]["resolution_rate"],
            "resolved_month": month["total"]["resolved"],
            "concluded_month": month["total"]["concluded"]}
