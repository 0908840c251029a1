"""Matters as stored: the record beside the incident, its parties, its own timeline, the audit.

A matter is an incident of a matter type; `incidents.case_no` is its number for life and the
`matters` row holds what only the window records. Parties' ID numbers and phones are kept
encrypted (`*_enc`), searchable through a keyed hash (`*_hash`), and shown only masked
(`*_masked`, stored so that reading never needs the key).
"""

import sqlalchemy as sa

from command.db import UTCDateTime, metadata

matters = sa.Table(
    "matters", metadata,
    sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), primary_key=True),
    sa.Column("case_no", sa.String(40), nullable=False, unique=True),
    sa.Column("summary", sa.Text, nullable=True),  # 纠纷简要情况
    sa.Column("request", sa.Text, nullable=True),  # 申请事项
    sa.Column("amount", sa.Numeric(16, 2), nullable=True),  # 涉及金额, yuan
    sa.Column("risk", sa.String(8), nullable=True),  # high | medium | low
    sa.Column("closure", sa.String(16), nullable=True),  # not_accepted | on_the_spot
    sa.Column("closure_note", sa.Text, nullable=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("registered_by", sa.String(64), nullable=True),  # null: came in through a feed
    sa.Column("registered_unit", sa.String(64), nullable=True),
    sa.Column("registered_at", UTCDateTime, nullable=False),
    sa.Column("idempotency_key", sa.String(128), nullable=True),
    sa.Column("request_digest", sa.String(64), nullable=True),
    sa.UniqueConstraint("registered_by", "idempotency_key", name="uq_matters_idempotency"),
)

matter_parties = sa.Table(
    "matter_parties", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False,
              index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("id_number_enc", sa.Text, nullable=True),
    sa.Column("id_number_hash", sa.String(64), nullable=True, index=True),
    sa.Column("id_number_masked", sa.String(18), nullable=True),
    sa.Column("credit_code", sa.String(18), nullable=True, index=True),
    sa.Column("phone_enc", sa.Text, nullable=True),
    sa.Column("phone_hash", sa.String(64), nullable=True, index=True),
    sa.Column("phone_masked", sa.String(24), nullable=True),
    sa.Column("address", sa.String(200), nullable=True),
)

matter_events = sa.Table(
    "matter_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False,
              index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),  # register | correct | close | …
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("data", sa.Text, nullable=True),  # JSON (personal numbers only masked)
)

audit = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # reveal | correct | …
    sa.Column("subject", sa.String(64), nullable=False, index=True),  # a case number
    sa.Column("party", sa.Integer, nullable=True),
    sa.Column("field", sa.String(64), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
)
