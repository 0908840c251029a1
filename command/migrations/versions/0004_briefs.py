"""Incident reports (专报 / 续报): which numbers were issued for an incident, and what they said.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

from command.db import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident_briefs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("generated_at", UTCDateTime, nullable=False),
        sa.Column("generated_by", sa.String(64), nullable=False),
        sa.Column("snapshot", sa.Text, nullable=False),
        sa.UniqueConstraint("incident_id", "number", name="uq_incident_briefs_number"),
    )


def downgrade() -> None:
    op.drop_table("incident_briefs")
