"""Merge the reports of a mass-gathering alert into one incident (the duty officer's call)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.alerts import service as alerts_service
from command.errors import DomainError, Forbidden
from command.incidents import loop
from command.incidents.models import incidents
from command.incidents.workflow import FINAL
from command.orders.service import Changes, Work
from command.users.principal import Principal
from layers.locate import Locator


def merge(session: Session, alert_id: str, *, into: str | None, by: Principal,
          note: str | None, now: datetime, locator: Locator) -> tuple[dict, Changes]:
    """Merge every open report of the alert into `into` (default: the earliest report), close
    the alert; all or nothing. Returns the alert and what changed."""
    alert = alerts_service.get(session, alert_id)
    if not by.county_wide:
        raise Forbidden(f"{by.name} may not merge incidents")
    if alert["rule"] != "mass_gathering":
        raise DomainError("invalid_field", "only a mass-gathering alert groups reports to merge")
    if alert["status"] not in alerts_service.LIVE:
        raise DomainError("conflict", f"the alert is {alert['status']} already")
    members = alert["incidents"]
    into = into or members[0]
    if into not in members:
        raise DomainError("invalid_field", f"into: {into!r} is not one of the alert's reports",
                          "into")
    status = dict(session.execute(sa.select(incidents.c.id, incidents.c.status)
                                  .where(incidents.c.id.in_(members))).all())
    if status.get(into) in FINAL:
        raise DomainError("invalid_field", f"into: incident {into!r} is {status[into]}", "into")
    note = (note or "").strip() or None
    work = Work()
    for incident_id in members:
        if incident_id == into or status.get(incident_id) in FINAL or incident_id not in status:
            continue
        loop.stage_transition(session, incident_id, to="merged", by=by,
                              note=note or "群体性事件合并", merged_into=into, now=now)
        work.incident(incident_id)
    work.alert(alerts_service.stage_merged(session, alert_id, by=by, into=into, note=note,
                                           now=now))
    changes = work.finish(session, locator=locator)
    return changes.alerts[-1], changes
