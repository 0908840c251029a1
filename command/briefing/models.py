"""The record of issued incident reports: one row per 专报 / 续报 number of an incident."""

import sqlalchemy as sa

from command.db import UTCDateTime, metadata

incident_briefs = sa.Table(
    "incident_briefs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),  # 0 = 专报, n = 续报（第n次）
    sa.Column("generated_at", UTCDateTime, nullable=False),
    sa.Column("generated_by", sa.String(64), nullable=False),
    sa.Column("snapshot", sa.Text, nullable=False),  # JSON: what the report said (for the next)
    sa.UniqueConstraint("incident_id", "number", name="uq_incident_briefs_number"),
)
