"""The alert record: one row per situation, and its audit trail (who did what, when, why)."""

import sqlalchemy as sa

from command.db import UTCDateTime, metadata

LEVELS = ("red", "orange", "yellow", "blue")
STATUSES = ("open", "acknowledged", "dismissed", "resolved")

alerts = sa.Table(
    "alerts", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False, unique=True),  # latest change, "alert_seq"
    sa.Column("key", sa.String(200), nullable=False, unique=True),  # one alert per situation
    sa.Column("rule", sa.String(32), nullable=False),
    sa.Column("level", sa.String(8), nullable=False),
    sa.Column("units", sa.Text, nullable=False),  # JSON list of unit codes
    sa.Column("incidents", sa.Text, nullable=False),  # JSON list of incident ids
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("raised_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("acted_by", sa.String(64), nullable=True),
    # the situation is over at this time unless the rule raises it again (None: a person or
    # the incidents behind it end it)
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Index("ix_alerts_status", "status"),
)

# append-only: raised, updated, reopened, ack, dismiss, merged, resolved
alert_events = sa.Table(
    "alert_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String(32), sa.ForeignKey("alerts.id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("by", sa.String(64), nullable=True),  # None: the system (a rule, the timer)
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("level", sa.String(8), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # after the action
    sa.Index("ix_alert_events_alert", "alert_id", "id"),
)
