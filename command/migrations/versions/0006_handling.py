"""Handling matters: routes as orders (lead and assisting nodes), the matter's clock, sessions,
outcome, agreement, judicial confirmation and follow-up.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

from command.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_MATTER_COLUMNS = (
    ("tier", sa.String(12)), ("owner", sa.String(64)), ("lead_code", sa.String(64)),
    ("routed_at", UTCDateTime), ("signed_at", UTCDateTime), ("limit_days", sa.Integer),
    ("due_at", UTCDateTime), ("notify_due_at", UTCDateTime), ("notified_at", UTCDateTime),
    ("extended_days", sa.Integer), ("extensions", sa.Integer), ("concluded_at", UTCDateTime),
    ("result", sa.String(24)), ("terms", sa.Text), ("agreed_amount", sa.Numeric(16, 2)),
    ("perform_by", sa.Date), ("guided_to", sa.String(24)), ("outcome_note", sa.Text),
    ("confirmation", sa.String(12)), ("confirmation_at", UTCDateTime),
    ("confirmation_court", sa.String(100)), ("followup_due_at", UTCDateTime),
    ("followed_up_at", UTCDateTime), ("performed", sa.Boolean), ("satisfaction", sa.String(12)),
    ("reopened", sa.Integer),
)


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("kind", sa.String(8), nullable=False, server_default="order"))
        batch.add_column(sa.Column("tier", sa.String(12), nullable=True))
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))
    with op.batch_alter_table("order_nodes") as batch:
        batch.add_column(sa.Column("role", sa.String(8), nullable=True))
    with op.batch_alter_table("matters") as batch:
        for name, kind in _MATTER_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    op.create_index("ix_matters_registered_at", "matters", ["registered_at"])
    op.create_index("ix_matters_concluded_at", "matters", ["concluded_at"])
    op.create_index("ix_matters_lead_code", "matters", ["lead_code"])
    op.create_table(
        "matter_sessions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("place", sa.String(200), nullable=True),
        sa.Column("mediators", sa.Text, nullable=False),
        sa.Column("attendees", sa.Text, nullable=False),
        sa.Column("notes", sa.Text, nullable=True),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("unit_code", sa.String(64), nullable=True),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_matter_sessions_incident_id", "matter_sessions", ["incident_id"])


def downgrade() -> None:
    op.drop_table("matter_sessions")
    for name in ("ix_matters_lead_code", "ix_matters_concluded_at", "ix_matters_registered_at"):
        op.drop_index(name, "matters")
    with op.batch_alter_table("matters") as batch:
        for name, _kind in reversed(_MATTER_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("order_nodes") as batch:
        batch.drop_column("role")
    with op.batch_alter_table("orders") as batch:
        for name in ("owner", "tier", "kind"):
            batch.drop_column(name)
