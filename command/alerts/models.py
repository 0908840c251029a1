"""The alert record: one row per situation (督办 now; risk-watch rules extend it, not replace it)."""

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
)
