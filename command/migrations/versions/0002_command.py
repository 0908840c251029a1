"""Users, the incident timeline, dispatch orders, the alert record; departments as units.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

from command.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    counters = sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger))
    op.bulk_insert(counters, [{"name": "order_seq", "value": 0}, {"name": "alert_seq", "value": 0}])
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("merged_into", sa.String(32), nullable=True))
        batch.add_column(sa.Column("rating", sa.SmallInteger, nullable=True))
        batch.add_column(sa.Column("level", sa.String(16), nullable=False, server_default="grid"))
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("unit_code", sa.String(64), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("disabled_at", UTCDateTime, nullable=True),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", UTCDateTime, nullable=True),
    )
    op.create_table(
        "incident_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("from_state", sa.String(20), nullable=True),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=True),
    )
    op.create_index("ix_incident_events_incident_id", "incident_events", ["incident_id"])
    op.create_table(
        "orders",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("issued_by", sa.String(64), nullable=False),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.Column("instruction", sa.Text, nullable=False),
        sa.Column("priority", sa.String(10), nullable=False),
    )
    op.create_index("ix_orders_incident_id", "orders", ["incident_id"])
    op.create_table(
        "order_nodes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
        sa.Column("order_id", sa.String(32), sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("parent_id", sa.String(32), nullable=True),
        sa.Column("incident_id", sa.String(32), nullable=False),
        sa.Column("target_code", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("instruction", sa.Text, nullable=False),
        sa.Column("priority", sa.String(10), nullable=False),
        sa.Column("ack_by", UTCDateTime, nullable=False),
        sa.Column("due_by", UTCDateTime, nullable=False),
        sa.Column("acked_by", sa.String(64), nullable=True),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("ack_alerted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("ack_escalated", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("due_alerted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("due_escalated", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    for column in ("order_id", "parent_id", "incident_id", "target_code"):
        op.create_index(f"ix_order_nodes_{column}", "order_nodes", [column])
    op.create_table(
        "order_node_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("node_id", sa.String(32), sa.ForeignKey("order_nodes.id"), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_order_node_events_node_id", "order_node_events", ["node_id"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("units", sa.Text, nullable=False),
        sa.Column("incidents", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("raised_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("acted_by", sa.String(64), nullable=True),
    )


def downgrade() -> None:
    for name in ("alerts", "order_node_events", "order_nodes", "orders", "incident_events",
                 "users"):
        op.drop_table(name)
    with op.batch_alter_table("incidents") as batch:
        for column in ("level", "rating", "merged_into"):
            batch.drop_column(column)
    op.execute("DELETE FROM counters WHERE name IN ('order_seq', 'alert_seq')")
