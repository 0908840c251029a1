"""Photos as stored: once per content (SHA-256 of what the phone sent), in the database so that
every server process can read them; uploads in progress as pieces until they are whole."""

import sqlalchemy as sa

from command.db import UTCDateTime, metadata

photos = sa.Table(
    "photos", metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),  # of the bytes as uploaded
    sa.Column("mime", sa.String(16), nullable=False),
    sa.Column("bytes", sa.Integer, nullable=False),  # as uploaded
    sa.Column("width", sa.Integer, nullable=True),
    sa.Column("height", sa.Integer, nullable=True),
    sa.Column("data", sa.LargeBinary, nullable=False),  # EXIF (place, device) stripped
    sa.Column("thumb", sa.LargeBinary, nullable=False),  # JPEG, ≤ 320 px
    sa.Column("created_at", UTCDateTime, nullable=False),
)

incident_photos = sa.Table(
    "incident_photos", metadata,
    sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), primary_key=True),
    sa.Column("sha256", sa.String(64), sa.ForeignKey("photos.sha256"), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("added_by", sa.String(64), nullable=True),
    sa.Column("added_at", UTCDateTime, nullable=False),
)

photo_uploads = sa.Table(  # `subject`: "report:<id>" (a phone's report) or "matter:<case_no>"
    "photo_uploads", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(160), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("total", sa.BigInteger, nullable=False),
    sa.Column("received", sa.BigInteger, nullable=False),
    sa.Column("complete", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("owner", "subject", "sha256", name="uq_photo_uploads"),
)

photo_chunks = sa.Table(
    "photo_chunks", metadata,
    sa.Column("upload_id", sa.String(32), sa.ForeignKey("photo_uploads.id"), primary_key=True),
    sa.Column("offset", sa.BigInteger, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
