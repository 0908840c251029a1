"""The incident timeline: an append-only record of every state change (who, when, from, to)."""

import sqlalchemy as sa

from command.db import UTCDateTime, metadata

incident_events = sa.Table(
    "incident_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False,
              index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
    sa.Column("from_state", sa.String(20), nullable=True),
    sa.Column("to_state", sa.String(20), nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("data", sa.Text, nullable=True),  # JSON: merged_into, rating, escalation levels
)
