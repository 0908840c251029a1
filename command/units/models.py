"""The unit tree: county → township → grid (and later stationed departments)."""

import sqlalchemy as sa

from command.db import metadata

units = sa.Table(
    "units", metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("parent", sa.String(64), nullable=True),
    sa.Column("geometry", sa.LargeBinary, nullable=True),  # WKB, WGS-84
    sa.Column("source", sa.String(16), nullable=False),  # "demo" or "import"
)
