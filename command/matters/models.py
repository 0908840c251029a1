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
    # routing (分流交办): the latest route's tier, owner (包案 leader) and lead unit
    sa.Column("tier", sa.String(12), nullable=True),  # simple | complex | difficult
    sa.Column("owner", sa.String(64), nullable=True),
    sa.Column("lead_code", sa.String(64), nullable=True, index=True),
    sa.Column("routed_at", UTCDateTime, nullable=True),
    sa.Column("signed_at", UTCDateTime, nullable=True),  # the lead's sign-off (签收)
    # the legal clock: days allowed, the deadline (extensions included), the petition's 告知
    sa.Column("limit_days", sa.Integer, nullable=True),
    sa.Column("due_at", UTCDateTime, nullable=True),
    sa.Column("notify_due_at", UTCDateTime, nullable=True),
    sa.Column("notified_at", UTCDateTime, nullable=True),
    sa.Column("extended_days", sa.Integer, nullable=True),
    sa.Column("extensions", sa.Integer, nullable=True),
    # the outcome (concluded: an outcome, or closed on the spot) and the agreement
    sa.Column("concluded_at", UTCDateTime, nullable=True, index=True),
    sa.Column("result", sa.String(24), nullable=True),
    sa.Column("terms", sa.Text, nullable=True),
    sa.Column("agreed_amount", sa.Numeric(16, 2), nullable=True),
    sa.Column("perform_by", sa.Date, nullable=True),
    sa.Column("guided_to", sa.String(24), nullable=True),
    sa.Column("outcome_note", sa.Text, nullable=True),
    sa.Column("confirmation", sa.String(12), nullable=True),  # requested | granted | refused
    sa.Column("confirmation_at", UTCDateTime, nullable=True),
    sa.Column("confirmation_court", sa.String(100), nullable=True),
    # follow-up (回访)
    sa.Column("followup_due_at", UTCDateTime, nullable=True),
    sa.Column("followed_up_at", UTCDateTime, nullable=True),
    sa.Column("performed", sa.Boolean, nullable=True),
    sa.Column("satisfaction", sa.String(12), nullable=True),  # satisfied | basic | unsatisfied
    sa.Column("reopened", sa.Integer, nullable=True),
    # copies of the incident's township, category and channel for the figures, written by the
    # database's triggers (migration 0009), never by the code: the figures read no join
    sa.Column("fig_township", sa.String(64), nullable=True),
    sa.Column("fig_category", sa.String(32), nullable=True),
    sa.Column("fig_channel", sa.String(16), nullable=True),
    sa.UniqueConstraint("registered_by", "idempotency_key", name="uq_matters_idempotency"),
    sa.Index("ix_matters_registered_at", "registered_at"),
    sa.Index("ix_matters_fig_registered", "registered_at", "closure", "lead_code",
             "fig_township", "fig_category", "fig_channel"),
    sa.Index("ix_matters_fig_concluded", "concluded_at", "closure", "result", "satisfaction",
             "due_at", "notify_due_at", "lead_code", "fig_township", "fig_category",
             "fig_channel"),
)

matter_sessions = sa.Table(  # 调解记录: who met where, who mediated, what was said
    "matter_sessions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False,
              index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("place", sa.String(200), nullable=True),
    sa.Column("mediators", sa.Text, nullable=False),  # JSON list of names
    sa.Column("attendees", sa.Text, nullable=False),  # JSON list of names
    sa.Column("notes", sa.Text, nullable=True),
    sa.Column("by", sa.String(64), nullable=False),
    sa.Column("unit_code", sa.String(64), nullable=True),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
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
