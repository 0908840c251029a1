"""The grid worker's phone: reports by users (who, where from, how precise), photos, and order
actions taken offline (their phone's id, and when they were done).

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

from command.db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN and unique indexes: no table rebuild (SQLite would have to drop a table
    # other tables point at)
    op.add_column("incidents", sa.Column("reporter_user", sa.String(64), nullable=True))
    op.add_column("incidents", sa.Column("position", sa.String(8), nullable=True))
    op.add_column("incidents", sa.Column("accuracy_m", sa.Float, nullable=True))
    op.add_column("incidents", sa.Column("photo_count", sa.Integer, nullable=False,
                                         server_default="0"))
    op.create_index("uq_incidents_user_source", "incidents", ["reporter_user", "source_id"],
                    unique=True)
    op.create_index("ix_incidents_reporter_user", "incidents", ["reporter_user"])
    op.add_column("order_node_events", sa.Column("action_id", sa.String(64), nullable=True))
    op.add_column("order_node_events", sa.Column("received_at", UTCDateTime, nullable=True))
    op.create_index("uq_order_node_events_action", "order_node_events", ["action_id"],
                    unique=True)
    op.create_table(
        "photos",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("mime", sa.String(16), nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("width", sa.Integer, nullable=True),
        sa.Column("height", sa.Integer, nullable=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("thumb", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "incident_photos",
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("photos.sha256"), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("added_by", sa.String(64), nullable=True),
        sa.Column("added_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "photo_uploads",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(160), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False),
        sa.Column("complete", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("owner", "subject", "sha256", name="uq_photo_uploads"),
    )
    op.create_table(
        "photo_chunks",
        sa.Column("upload_id", sa.String(32), sa.ForeignKey("photo_uploads.id"),
                  primary_key=True),
        sa.Column("offset", sa.BigInteger, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    for name in ("photo_chunks", "photo_uploads", "incident_photos", "photos"):
        op.drop_table(name)
    op.drop_index("uq_order_node_events_action", "order_node_events")
    with op.batch_alter_table("order_node_events") as batch:
        batch.drop_column("received_at")
        batch.drop_column("action_id")
    op.drop_index("ix_incidents_reporter_user", "incidents")
    op.drop_index("uq_incidents_user_source", "incidents")
    with op.batch_alter_table("incidents") as batch:
        for column in ("photo_count", "accuracy_m", "position", "reporter_user"):
            batch.drop_column(column)
