"""People: users with a role and a unit (departments are units of level `dept`)."""

import sqlalchemy as sa

from command.db import UTCDateTime, metadata

ROLES = ("duty", "leader", "township", "grid", "dept", "admin", "desk")

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("unit_code", sa.String(64), nullable=True),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("disabled_at", UTCDateTime, nullable=True),
    sa.Column("failed_logins", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", UTCDateTime, nullable=True),
    sa.Column("display_name", sa.String(64), nullable=True),
    sa.Column("phone", sa.String(32), nullable=True),  # shown masked (138****1234)
    # set for accounts made with a generated first password: changed at the first sign-in
    sa.Column("must_change_password", sa.Boolean, nullable=False, default=False),
)
