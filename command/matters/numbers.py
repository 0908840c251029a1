"""Case numbers (一案一编码): `<county unit code>-<year>-<6 digits>`, counted per calendar year in
Asia/Shanghai, unique, never reused, given to every matter-type incident as it is created.

Each year's counter is a row of `counters` (`case:2026`), locked from the update until commit
like the seq counters, so two processes never hand out one number. Lock order: case counters
(by year, ascending) before "seq", in every transaction that creates incidents.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.clock import SHANGHAI
from command.db import counters
from command.matters.categories import is_matter
from command.matters.models import matters
from layers.locate import Locator

FALLBACK_PREFIX = "CASE"


def prefix(locator: Locator) -> str:
    """The county unit code that starts every case number (demo: DEMO)."""
    return locator.county_code() or FALLBACK_PREFIX


def _ensure_counter(session: Session, name: str) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(counters).values(name=name, value=0)
                    .on_conflict_do_nothing(index_elements=["name"]))


def reserve(session: Session, year: int, n: int = 1) -> int:
    """Reserve `n` numbers of `year` and return the first."""
    name = f"case:{year}"
    stmt = (sa.update(counters).where(counters.c.name == name)
            .values(value=counters.c.value + n).returning(counters.c.value))
    last = session.execute(stmt).scalar_one_or_none()
    if last is None:  # the year's first number
        _ensure_counter(session, name)
        last = session.execute(stmt).scalar_one()
    return last - n + 1


def format_case_no(prefix_code: str, year: int, number: int) -> str:
    """DEMO, 2026, 123 → DEMO-2026-000123."""
    return f"{prefix_code}-{year}-{number:06d}"


def register_new(session: Session, rows: list[dict], *, prefix: str) -> None:
    """Give each new matter-type row (an incidents row dict) its case number, in the order they
    were received."""
    by_year: dict[int, list[dict]] = {}
    for row in sorted(rows, key=lambda r: r["received_at"]):
        row.setdefault("case_no", None)  # one shape for every row of an executemany
        if is_matter(row["type"]) and not row["case_no"]:
            by_year.setdefault(row["received_at"].astimezone(SHANGHAI).year, []).append(row)
    for year in sorted(by_year):
        first = reserve(session, year, len(by_year[year]))
        for k, row in enumerate(by_year[year]):
            row["case_no"] = format_case_no(prefix, year, first + k)


def insert_records(session: Session, rows: list[dict], **extra) -> None:
    """Insert the `matters` record of every numbered row (feeds send no more than the incident;
    the window passes what it registered in `extra`, for one row)."""
    records = [{"incident_id": r["id"], "case_no": r["case_no"], "registered_at": r["received_at"],
                **extra} for r in rows if r.get("case_no")]
    if records:
        session.execute(sa.insert(matters), records)
