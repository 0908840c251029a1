"""Incidents as stored: one row per incident, `seq` = the sequence number of its latest change."""

import sqlalchemy as sa

from command.db import UTCDateTime, metadata

incidents = sa.Table(
    "incidents", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
    # null: registered at the window or reported from a phone, not sent by a feed
    sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id"), nullable=True),
    sa.Column("source_id", sa.String(128), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("severity", sa.SmallInteger, nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
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
    sa.Column("merged_into", sa.String(32), nullable=True),
    sa.Column("rating", sa.SmallInteger, nullable=True),  # follow-up satisfaction 1-5
    sa.Column("level", sa.String(16), nullable=False, default="grid"),  # who handles it now
    sa.Column("channel", sa.String(16), nullable=False, default="feed"),  # the door it came in by
    sa.Column("category", sa.String(32), nullable=True),  # what a matter is about
    sa.Column("case_no", sa.String(40), nullable=True, unique=True),  # matters only, for life
    # placed at its grid, not at a measured point: left out of every distance rule
    sa.Column("approximate", sa.Boolean, nullable=False, default=False),
    # reported from a phone: the user, how the place was taken (gps | map | grid) and how well
    sa.Column("reporter_user", sa.String(64), nullable=True),
    sa.Column("position", sa.String(8), nullable=True),
    sa.Column("accuracy_m", sa.Float, nullable=True),
    sa.Column("photo_count", sa.Integer, nullable=False, default=0),
    sa.UniqueConstraint("feed_id", "source_id", name="uq_incidents_feed_source"),
    sa.Index("uq_incidents_user_source", "reporter_user", "source_id", unique=True),
    sa.Index("ix_incidents_occurred_at", "occurred_at"),
    sa.Index("ix_incidents_feed_received", "feed_id", "received_at"),  # feed silence
    sa.Index("ix_incidents_reporter_user", "reporter_user"),
)
