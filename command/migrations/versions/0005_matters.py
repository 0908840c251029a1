"""Matters: case numbers, channels and categories on incidents; the matter record, its parties
(personal numbers encrypted), its timeline and the audit trail. Stored incidents of a matter type
get their case numbers in `received_at` order.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

from command.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

MATTER_TYPES = ("dispute", "petition", "complaint", "legal", "psych", "other")
SHANGHAI_HOURS = 8  # case numbers count per calendar year in Asia/Shanghai


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.alter_column("feed_id", existing_type=sa.Integer, nullable=True)
        batch.add_column(sa.Column("channel", sa.String(16), nullable=False,
                                   server_default="feed"))
        batch.add_column(sa.Column("category", sa.String(32), nullable=True))
        batch.add_column(sa.Column("case_no", sa.String(40), nullable=True))
        batch.add_column(sa.Column("approximate", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
        batch.create_unique_constraint("uq_incidents_case_no", ["case_no"])
    op.create_table(
        "matters",
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("case_no", sa.String(40), nullable=False, unique=True),
        sa.Column("summary", sa.Text, nullable=True),
        sa.Column("request", sa.Text, nullable=True),
        sa.Column("amount", sa.Numeric(16, 2), nullable=True),
        sa.Column("risk", sa.String(8), nullable=True),
        sa.Column("closure", sa.String(16), nullable=True),
        sa.Column("closure_note", sa.Text, nullable=True),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.Column("registered_by", sa.String(64), nullable=True),
        sa.Column("registered_unit", sa.String(64), nullable=True),
        sa.Column("registered_at", UTCDateTime, nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("request_digest", sa.String(64), nullable=True),
        sa.UniqueConstraint("registered_by", "idempotency_key", name="uq_matters_idempotency"),
    )
    op.create_table(
        "matter_parties",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("id_number_enc", sa.Text, nullable=True),
        sa.Column("id_number_hash", sa.String(64), nullable=True),
        sa.Column("id_number_masked", sa.String(18), nullable=True),
        sa.Column("credit_code", sa.String(18), nullable=True),
        sa.Column("phone_enc", sa.Text, nullable=True),
        sa.Column("phone_hash", sa.String(64), nullable=True),
        sa.Column("phone_masked", sa.String(24), nullable=True),
        sa.Column("address", sa.String(200), nullable=True),
    )
    for column in ("incident_id", "id_number_hash", "credit_code", "phone_hash"):
        op.create_index(f"ix_matter_parties_{column}", "matter_parties", [column])
    op.create_table(
        "matter_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=True),
    )
    op.create_index("ix_matter_events_incident_id", "matter_events", ["incident_id"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("party", sa.Integer, nullable=True),
        sa.Column("field", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
    )
    op.create_index("ix_audit_subject", "audit", ["subject"])
    _number_stored_matters()


def _number_stored_matters() -> None:
    """Give every stored incident of a matter type its case number, in received_at order."""
    from datetime import timedelta

    conn = op.get_bind()
    county = conn.execute(sa.text(
        "SELECT code FROM units WHERE level = 'county' ORDER BY code LIMIT 1")).scalar()
    prefix = county or "CASE"
    rows = conn.execute(sa.text(
        "SELECT id, received_at FROM incidents WHERE type IN :types ORDER BY received_at, seq"
    ).bindparams(sa.bindparam("types", expanding=True)), {"types": list(MATTER_TYPES)}).all()
    counts: dict[int, int] = {}
    numbered, records = [], []
    for incident_id, received in rows:
        if isinstance(received, str):  # SQLite hands back text
            from datetime import datetime

            received = datetime.fromisoformat(received)
        year = (received + timedelta(hours=SHANGHAI_HOURS)).year
        counts[year] = counts.get(year, 0) + 1
        case_no = f"{prefix}-{year}-{counts[year]:06d}"
        numbered.append({"i": incident_id, "c": case_no})
        records.append({"incident_id": incident_id, "case_no": case_no,
                        "registered_at": received.replace(tzinfo=None)})
    if numbered:
        conn.execute(sa.text("UPDATE incidents SET case_no = :c WHERE id = :i"), numbered)
        matters = sa.table("matters", sa.column("incident_id"), sa.column("case_no"),
                           sa.column("registered_at"))
        op.bulk_insert(matters, records)
    counters = sa.table("counters", sa.column("name", sa.String), sa.column("value"))
    op.bulk_insert(counters, [{"name": f"case:{year}", "value": n}
                              for year, n in sorted(counts.items())])


def downgrade() -> None:
    op.execute("DELETE FROM counters WHERE name LIKE 'case:%'")
    for name in ("audit", "matter_events", "matter_parties", "matters"):
        op.drop_table(name)
    with op.batch_alter_table("incidents") as batch:
        batch.drop_constraint("uq_incidents_case_no", type_="unique")
        for column in ("approximate", "case_no", "category", "channel"):
            batch.drop_column(column)
        batch.alter_column("feed_id", existing_type=sa.Integer, nullable=False)
