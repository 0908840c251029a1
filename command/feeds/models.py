"""Feeds: township and grid systems that report incidents with a token."""

import sqlalchemy as sa

from command.db import UTCDateTime, metadata

feeds = sa.Table(
    "feeds", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("unit_code", sa.String(64), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    # set when the feed's unit vanished in a boundary import; cleared by re-binding
    sa.Column("disabled_reason", sa.String(200), nullable=True),
)
