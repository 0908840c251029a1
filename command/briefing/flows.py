"""Make a brief: read the data, number it (专报 / 续报), draw charts, render, save the file.

Shared by the `cmdcenter brief` command and `GET /api/v1/briefs`. Files go under
`<data dir>/reports/` unless the caller names one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.briefing import charts, compose, data, periods, render
from command.briefing.models import incident_briefs
from command.clock import SHANGHAI
from command.errors import DomainError
from command.incidents.models import incidents

REPORTS = "reports"


@dataclass
class Made:
    """A brief that was made: its bytes, where they were saved, its names."""

    content: bytes
    path: Path
    fmt: str
    display_name: str  # Chinese, for a download's file name

    @property
    def download_name(self) -> str:
        return f"{self.display_name}.{self.fmt}"


def thresholds_of(core) -> data.Thresholds:
    """The thresholds of this deployment's alert rules (CMDCENTER_ALERT_RULES, else defaults)."""
    from command.config import ConfigError

    path = getattr(core.settings, "alert_rules", None)
    try:
        return data.Thresholds.from_rules(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"CMDCENTER_ALERT_RULES: {exc}") from None


def check_format(fmt: str | None) -> str:
    """The format, or DomainError naming the ones there are."""
    fmt = (fmt or "html").strip().lower()
    if fmt not in render.FORMATS:
        raise DomainError("invalid_field",
                          f"format: one of {', '.join(render.FORMATS)}, got {fmt!r}", "format")
    return fmt


def make_period(core, *, kind: str | None, date: str | None, fmt: str | None,
                out: Path | None = None, thresholds: data.Thresholds | None = None) -> Made:
    """Build, render and save the 情况报告 of a period (default: the last complete one)."""
    fmt = check_format(fmt)
    now = core.clock.now()
    period = periods.parse(kind, date, now=now)
    th = thresholds or thresholds_of(core)
    with core.read() as session:
        brief = data.period_brief(session, period, now=now, thresholds=th)
    doc = compose.period_doc(brief, charts.period_charts(brief))
    stamp = now.astimezone(SHANGHAI).strftime("%Y%m%d-%H%M%S")
    return _save(core, doc, fmt, out, f"{doc.stem}-{stamp}")


def make_incident(core, *, incident_id: str, fmt: str | None, by: str,
                  out: Path | None = None, thresholds: data.Thresholds | None = None) -> Made:
    """Build, number, render and save the 专报 / 续报 of an incident."""
    fmt = check_format(fmt)
    th = thresholds or thresholds_of(core)
    now = core.clock.now()
    with core.write() as session, session.begin():
        brief = issue(session, incident_id, now=now, by=by, thresholds=th)
    doc = compose.incident_doc(brief, th.mass_people)
    return _save(core, doc, fmt, out, doc.stem)


def issue(session: Session, incident_id: str, *, now: datetime, by: str,
          thresholds: data.Thresholds | None = None) -> data.IncidentBrief:
    """Read an incident's brief and give it its number in the caller's transaction.

    The first is the 专报 (0); each later one that has something new is the next 续报. Asking
    again when nothing changed gives the last number again (the same report, not a new one).
    """
    # one numbering at a time per incident (PostgreSQL; SQLite writers are serial anyway)
    session.execute(sa.select(incidents.c.id).where(incidents.c.id == incident_id)
                    .with_for_update())
    brief = data.incident_brief(session, incident_id, now=now, thresholds=thresholds)
    snapshot = brief.snapshot()
    rows = session.execute(sa.select(incident_briefs)
                           .where(incident_briefs.c.incident_id == incident_id)
                           .order_by(incident_briefs.c.number)).all()
    last = rows[-1] if rows else None
    if last is not None and json.loads(last.snapshot) == json.loads(data.snapshot_json(snapshot)):
        brief.number = last.number
        before = rows[-2] if len(rows) > 1 else None
    else:
        brief.number = last.number + 1 if last is not None else 0
        before = last
        session.execute(sa.insert(incident_briefs).values(
            incident_id=incident_id, number=brief.number, generated_at=now, generated_by=by,
            snapshot=data.snapshot_json(snapshot)))
    if before is not None:
        brief.previous_at = before.generated_at
        brief.changes = data.changes_since(brief, json.loads(before.snapshot))
    return brief


def reports_dir(core) -> Path:
    """`<data dir>/reports`, made when missing."""
    folder = Path(core.settings.data_dir) / REPORTS
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _save(core, doc: compose.Doc, fmt: str, out: Path | None, stem: str) -> Made:
    content = render.render(doc, fmt)
    name = f"{_safe(stem)}.{fmt}"
    if out is None:
        path = reports_dir(core) / name
    else:
        path = Path(out) / name if Path(out).is_dir() else Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(content)
    tmp.replace(path)  # a reader never sees half a file
    return Made(content=content, path=path, fmt=fmt, display_name=doc.display_name)


def _safe(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
