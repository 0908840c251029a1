"""Dispatch orders: an order is a tree of nodes, one per target unit, forwarded downwards."""

import sqlalchemy as sa

from command.db import UTCDateTime, metadata

orders = sa.Table(
    "orders", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False,
              index=True),
    sa.Column("issued_by", sa.String(64), nullable=False),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("instruction", sa.Text, nullable=False),
    sa.Column("priority", sa.String(10), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False, default="order"),  # order | route (a matter)
    sa.Column("tier", sa.String(12), nullable=True),  # a route's: simple | complex | difficult
    sa.Column("owner", sa.String(64), nullable=True),  # a difficult route's county leader (包案)
)

order_nodes = sa.Table(
    "order_nodes", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False, unique=True),  # latest change, "order_seq"
    sa.Column("order_id", sa.String(32), sa.ForeignKey("orders.id"), nullable=False, index=True),
    sa.Column("parent_id", sa.String(32), nullable=True, index=True),
    sa.Column("incident_id", sa.String(32), nullable=False, index=True),
    sa.Column("target_code", sa.String(64), nullable=False, index=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("instruction", sa.Text, nullable=False),
    sa.Column("priority", sa.String(10), nullable=False),
    sa.Column("ack_by", UTCDateTime, nullable=False),
    sa.Column("due_by", UTCDateTime, nullable=False),
    sa.Column("acked_by", sa.String(64), nullable=True),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # supervision marks: which overdue steps were already alerted / escalated
    sa.Column("ack_alerted", sa.Boolean, nullable=False, default=False),
    sa.Column("ack_escalated", sa.Boolean, nullable=False, default=False),
    sa.Column("due_alerted", sa.Boolean, nullable=False, default=False),
    sa.Column("due_escalated", sa.Boolean, nullable=False, default=False),
    sa.Column("role", sa.String(8), nullable=True),  # a route's node: lead | assist
)

order_node_events = sa.Table(
    "order_node_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("node_id", sa.String(32), sa.ForeignKey("order_nodes.id"), nullable=False,
              index=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
    # an action taken on a phone, maybe offline: the phone's id for it (the same id twice is
    # done once) and when the server got it (`at` is when it was done)
    sa.Column("action_id", sa.String(64), nullable=True),
    sa.Index("uq_order_node_events_action", "action_id", unique=True),
    sa.Column("received_at", UTCDateTime, nullable=True),
)
