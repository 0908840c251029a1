"""Downloads of the figures and of the matter list: CSV (UTF-8 with a BOM, so Excel shows
Chinese) and Excel (openpyxl), with Chinese column headers.

The matter list carries what the lists on /command and /desk show — case number, times,
channel, type, category, title, place, state, lead unit, limit, outcome, follow-up — and no
party, ID number or phone.

>>> to_csv(["名称", "受理量"], [["人社", 3]])[:3] == "\\ufeff".encode()
True
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.clock import SHANGHAI
from command.errors import DomainError
from command.incidents.models import incidents
from command.incidents.workflow import STATE_LABELS
from command.matters.categories import CATEGORY_LABELS, CHANNEL_LABELS
from command.matters.handling import RESULT_LABELS, SATISFACTION
from command.matters.models import matters
from command.matters.schemas import CLOSURES
from command.matters.stats import BY, FIELDS, LABELS, RATES, DayRange
from layers.locate import Locator
from layers.theme import TYPE_LABELS

FORMATS = {"csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
LIST_LIMIT = 100_000  # a longer list is a narrower range away
LIST_HEADERS = ("案号", "登记时间", "受理渠道", "类型", "事项类别", "标题", "乡镇（街道）", "网格",
                "状态", "主办单位", "办理期限", "办结时间", "办理结果", "是否按期办结", "回访满意度")


def check_format(fmt: str | None) -> str | None:
    """None (JSON), csv or xlsx. Raises DomainError."""
    if fmt in (None, "", "json"):
        return None
    if fmt not in FORMATS:
        raise DomainError("invalid_field", "format: csv or xlsx (or none for JSON)", "format")
    return fmt


def to_csv(headers, rows) -> bytes:
    """A CSV file as UTF-8 with a byte-order mark."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(title: str, headers, rows) -> bytes:
    """An Excel workbook of one sheet (header row frozen)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    sheet.freeze_panes = "A2"
    header = []
    for text in headers:
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(sheet, value=text)
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def render(fmt: str, title: str, headers, rows) -> bytes:
    """The table as `fmt` (csv or xlsx)."""
    return to_csv(headers, rows) if fmt == "csv" else to_xlsx(title, headers, rows)


# --- the figures ----------------------------------------------------------------------------

def _percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def figures_table(fig: dict) -> tuple[list[str], list[list]]:
    """The figures as a table: the key's label, this period's fields, then the period before's
    (rates as percentages, empty when there is no denominator), the total last."""
    shown = [f for f in FIELDS]
    headers = [BY[fig["by"]], "代码"] + [LABELS[f] for f in shown] + \
        [f"上期{LABELS[f]}" for f in shown]

    def cells(values: dict) -> list:
        return [_percent(values[f]) if f in RATES else values[f] for f in shown]

    rows = [[r["name"], r["key"] or "", *cells(r), *cells(r["previous"])]
            for r in [*fig["rows"], fig["total"]]]
    return headers, rows


def figures_filename(fig: dict, fmt: str) -> str:
    """e.g. 事项统计-按乡镇（街道）-2026-11-01至2026-11-30.xlsx"""
    return f"事项统计-按{BY[fig['by']]}-{fig['from']}至{fig['to']}.{fmt}"


# --- the matter list --------------------------------------------------------------------------

def _local(at: datetime | None) -> str:
    return "" if at is None else at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def matter_list(session: Session, rng: DayRange, *, where=None, locator: Locator | None = None,
                category: str | None = None, channel: str | None = None,
                township: str | None = None) -> list[list]:
    """Matters registered in `rng` (oldest first) as rows under LIST_HEADERS; `where` is the
    reader's scope. Raises DomainError when more than LIST_LIMIT would come."""
    lo, hi = rng.bounds()
    stmt = (sa.select(matters.c.case_no, matters.c.registered_at, incidents.c.channel,
                      incidents.c.type, incidents.c.category, incidents.c.title,
                      incidents.c.township_code, incidents.c.grid_code, incidents.c.status,
                      matters.c.lead_code, matters.c.due_at, matters.c.notify_due_at,
                      matters.c.concluded_at, matters.c.result, matters.c.closure,
                      matters.c.satisfaction)
            .join(incidents, incidents.c.id == matters.c.incident_id)
            .where(matters.c.registered_at >= lo, matters.c.registered_at < hi)
            .order_by(matters.c.registered_at, matters.c.case_no).limit(LIST_LIMIT + 1))
    for column, value in ((incidents.c.category, category), (incidents.c.channel, channel),
                          (incidents.c.township_code, township)):
        if value:
            stmt = stmt.where(column == value)
    if where is not None:
        stmt = stmt.where(where)
    rows = session.execute(stmt).all()
    if len(rows) > LIST_LIMIT:
        raise DomainError("out_of_range", f"more than {LIST_LIMIT:,} matters: choose a shorter "
                                          "range", "to")

    def unit(code):
        if code is None:
            return ""
        return locator.unit(code)["name"] if locator is not None and locator.has(code) else code

    out = []
    for r in rows:
        due = r.due_at or r.notify_due_at
        if r.concluded_at is None or r.closure == "not_accepted":
            on_time = ""
        else:
            on_time = "是" if due is None or r.concluded_at <= due else "否"
        outcome = RESULT_LABELS.get(r.result, "") if r.result else \
            CLOSURES.get(r.closure, "") if r.closure else ""
        out.append([r.case_no, _local(r.registered_at), CHANNEL_LABELS.get(r.channel, r.channel),
                    TYPE_LABELS.get(r.type, r.type),
                    CATEGORY_LABELS.get(r.category, r.category or ""), r.title,
                    unit(r.township_code), unit(r.grid_code),
                    STATE_LABELS.get(r.status, r.status), unit(r.lead_code), _local(due),
                    "" if r.closure == "not_accepted" else _local(r.concluded_at), outcome,
                    on_time, SATISFACTION[r.satisfaction][0] if r.satisfaction else ""])
    return out


def list_filename(rng: DayRange, fmt: str) -> str:
    """e.g. 事项清单-2026-11-01至2026-11-30.csv"""
    return f"事项清单-{rng.start.isoformat()}至{rng.end.isoformat()}.{fmt}"
