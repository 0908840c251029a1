"""The legal clock of open matters, watched once per deployment (beside supervision).

For every matter not yet concluded: a yellow 督办 when at most `warn_share` of its time is left,
an orange one when it is overdue (rule `matter_overdue`, one alert per matter, resolved when it
concludes), to the unit above the lead (the county for a department or a township, its township
for a grid; the county while it waits in the window's queue). A petition not yet signed off runs
on its 受理告知 clock (15 days from registration) until it is. An agreement not sent for judicial
confirmation gets a yellow reminder (rule `confirmation_window`) when its 30-day window is nearly
over, resolved when a confirmation is requested or the window has passed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.alerts import service as alerts_service
from command.clock import SHANGHAI
from command.incidents.models import incidents
from command.incidents.workflow import FINAL
from command.matters import rules as rules_mod
from command.matters.handling import confirmation_key, overdue_key
from command.matters.rules import clock_fields
from command.matters.models import matters
from command.orders.service import Changes, Work
from command.units.models import units
from layers.locate import Locator

log = logging.getLogger(__name__)
LEVEL = {"near": "yellow", "overdue": "orange"}


def matter_clock(row, *, now: datetime, rules: rules_mod.MatterRules) -> rules_mod.Clock:
    """The clock of a matter row (matters joined with its incident's type and status)."""
    stopped = row["closure"] == "not_accepted" or row["status"] in FINAL and \
        row["concluded_at"] is None
    if row["type"] == "petition" and row["signed_at"] is None and row["notify_due_at"]:
        return rules_mod.clock(start=row["registered_at"], due_at=row["notify_due_at"],
                               concluded_at=row["concluded_at"], now=now,
                               warn_share=rules.warn_share, stopped=stopped)
    start = row["signed_at"] if row["type"] == "petition" else row["registered_at"]
    return rules_mod.clock(start=start, due_at=row["due_at"], concluded_at=row["concluded_at"],
                           now=now, warn_share=rules.warn_share, stopped=stopped)


def check(session: Session, *, now: datetime, rules: rules_mod.MatterRules,
          locator: Locator) -> Changes:
    """One pass over the open matters' clocks and the agreements' confirmation windows."""
    _fill_clocks(session, rules)
    work = Work()
    live = {a["key"]: a for rule in ("matter_overdue", "confirmation_window")
            for a in alerts_service.live_by_rule(session, rule)}
    stmt = (sa.select(matters, incidents.c.type, incidents.c.status, incidents.c.title,
                      incidents.c.township_code)
            .join(incidents, incidents.c.id == matters.c.incident_id)
            .where(matters.c.concluded_at.is_(None), matters.c.closure.is_(None),
                   incidents.c.status.notin_(FINAL)))
    seen: set[str] = set()
    for row in session.execute(stmt).mappings():
        key = overdue_key(row["case_no"])
        state = matter_clock(row, now=now, rules=rules)
        level = LEVEL.get(state.state)
        if level is None:
            continue
        seen.add(key)
        above = _above(session, locator, row["lead_code"])
        lead = _name(session, locator, row["lead_code"]) if row["lead_code"] else "受理窗口"
        what = "受理告知" if row["type"] == "petition" and row["signed_at"] is None else "办理"
        due = state.due_at.astimezone(SHANGHAI)
        if state.state == "overdue":
            timing = f"已逾期{_days(-state.left_seconds)}"
        else:
            timing = f"剩余{_days(state.left_seconds)}"
        message = (f"督办：{lead}{what}「{row['title']}」（{row['case_no']}）{timing}，"
                   f"期限 {due:%Y-%m-%d %H:%M}")
        work.alert(alerts_service.stage_raise(
            session, key=key, rule="matter_overdue", level=level, units=[above],
            incidents=[row["incident_id"]], message=message, now=now))
    for key in live:
        if key.startswith("matter_overdue:") and key not in seen:
            work.alert(alerts_service.stage_resolve(session, key, now))
    _confirmation_windows(session, work, now=now, rules=rules, locator=locator, live=live)
    return work.finish(session, locator=locator)


def counts(session: Session, *, now: datetime, rules: rules_mod.MatterRules) -> dict[str, int]:
    """How many open matters are near their limit and how many past it (for the metrics)."""
    out = {"near": 0, "overdue": 0}
    stmt = (sa.select(matters, incidents.c.type, incidents.c.status)
            .join(incidents, incidents.c.id == matters.c.incident_id)
            .where(matters.c.concluded_at.is_(None), matters.c.closure.is_(None),
                   incidents.c.status.notin_(FINAL)))
    for row in session.execute(stmt).mappings():
        state = matter_clock(row, now=now, rules=rules).state
        if state in out:
            out[state] += 1
    return out


def _confirmation_windows(session: Session, work: Work, *, now: datetime,
                          rules: rules_mod.MatterRules, locator: Locator, live: dict) -> None:
    window = timedelta(days=rules.confirmation_days)
    stmt = (sa.select(matters.c.case_no, matters.c.incident_id, matters.c.concluded_at,
                      matters.c.lead_code, incidents.c.title)
            .join(incidents, incidents.c.id == matters.c.incident_id)
            .where(matters.c.result == "agreed", matters.c.confirmation.is_(None),
                   matters.c.concluded_at > now - window))
    seen: set[str] = set()
    for row in session.execute(stmt).mappings():
        ends = row["concluded_at"] + window
        if ends - now > window * rules.warn_share:
            continue
        key = confirmation_key(row["case_no"])
        seen.add(key)
        work.alert(alerts_service.stage_raise(
            session, key=key, rule="confirmation_window", level="yellow",
            units=[_above(session, locator, row["lead_code"])], incidents=[row["incident_id"]],
            message=(f"「{row['title']}」（{row['case_no']}）的调解协议可申请司法确认至 "
                     f"{ends.astimezone(SHANGHAI):%Y-%m-%d}，剩余{_days((ends - now).total_seconds())}"),
            now=now, expires_at=ends))
    for key in live:
        if key.startswith("confirmation:") and key not in seen:
            work.alert(alerts_service.stage_resolve(session, key, now))


def _fill_clocks(session: Session, rules: rules_mod.MatterRules) -> None:
    """Matters that came without a clock (fed by feeds, or stored before clocks existed)."""
    rows = session.execute(
        sa.select(matters.c.incident_id, matters.c.registered_at, matters.c.signed_at,
                  matters.c.extended_days, incidents.c.type, incidents.c.category)
        .join(incidents, incidents.c.id == matters.c.incident_id)
        .where(matters.c.limit_days.is_(None), matters.c.closure.is_(None))
        .limit(5000)).mappings().all()
    if not rows:
        return
    # one statement, executed many times: a statement per row held the write lock (and, on
    # gevent, the whole server) for ~350 ms every tick while feeds sent 200 reports/s
    values = [{"b_id": r["incident_id"],
               **{f"b_{k}": v for k, v in clock_fields(
                   rules, type_code=r["type"], category=r["category"],
                   registered_at=r["registered_at"], signed_at=r["signed_at"],
                   extended_days=r["extended_days"] or 0).items()}} for r in rows]
    fields = [key.removeprefix("b_") for key in values[0] if key != "b_id"]
    session.connection().execute(
        sa.update(matters).where(matters.c.incident_id == sa.bindparam("b_id"))
        .values({name: sa.bindparam(f"b_{name}") for name in fields}), values)


def _above(session: Session, locator: Locator, lead: str | None) -> str:
    """The unit a lead answers to: a grid's township, else the county."""
    from command.orders.supervision import _above as above_of, _unit

    if lead is None:
        return _county_code(session, locator)
    return above_of(session, locator, _unit(session, locator, lead))["code"]


def _county_code(session: Session, locator: Locator) -> str:
    code = locator.county_code()
    if code:
        return code
    row = session.execute(sa.select(units.c.code).where(units.c.level == "county")).first()
    return row.code if row else "county"


def _name(session: Session, locator: Locator, code: str) -> str:
    from command.orders.supervision import _unit

    return _unit(session, locator, code)["name"]


def _days(seconds: float) -> str:
    hours = int(seconds // 3600)
    if hours < 24:
        return f"{max(hours, 0)}小时" if hours else "不足1小时"
    days, hours = divmod(hours, 24)
    return f"{days}天{hours}小时" if hours else f"{days}天"


def make_job(core, rules: rules_mod.MatterRules):
    """A scheduler job: one pass in its own transaction, published after commit."""
    def watch_clocks(now: datetime) -> None:
        with core.write() as session, session.begin():
            changes = check(session, now=now, rules=rules, locator=core.units.current(session))
        if changes:
            try:
                changes.publish(core.bus)
            except Exception:  # committed already: screens catch up by seq
                log.exception("publishing matter clock changes failed")
    return watch_clocks
