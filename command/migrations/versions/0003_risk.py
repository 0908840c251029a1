"""Risk watch: the alert audit trail, alert expiry, and a feed/received index for silence.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

from command.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("expires_at", UTCDateTime, nullable=True))
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(32), sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("by", sa.String(64), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_index("ix_alert_events_alert", "alert_events", ["alert_id", "id"])
    op.create_index("ix_incidents_feed_received", "incidents", ["feed_id", "received_at"])
    op.create_index("ix_alerts_status", "alerts", ["status"])


def downgrade() -> None:
    op.drop_index("ix_alerts_status", "alerts")
    op.drop_index("ix_incidents_feed_received", "incidents")
    op.drop_index("ix_alert_events_alert", "alert_events")
    op.drop_table("alert_events")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("expires_at")
