"""Initial schema: counters, meta, units, feeds, incidents.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from command.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    counters = op.create_table(
        "counters",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(counters, [{"name": "seq", "value": 0}])
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "units",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("parent", sa.String(64), nullable=True),
        sa.Column("geometry", sa.LargeBinary, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
    )
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("unit_code", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.Column("disabled_reason", sa.String(200), nullable=True),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
        sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id"), nullable=False),
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("severity", sa.SmallInteger, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("people", sa.Integer, nullable=True),
        sa.Column("reporter", sa.String(100), nullable=True),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("township_code", sa.String(64), nullable=True),
        sa.Column("grid_code", sa.String(64), nullable=True),
        sa.Column("outside", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.UniqueConstraint("feed_id", "source_id", name="uq_incidents_feed_source"),
    )
    op.create_index("ix_incidents_occurred_at", "incidents", ["occurred_at"])


def downgrade() -> None:
    for name in ("incidents", "feeds", "units", "meta", "counters"):
        op.drop_table(name)
