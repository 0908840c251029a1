"""Resumable photo uploads (a phone's report photos, the window's scans of a matter).

The protocol (one photo, named by the SHA-256 of its bytes):

- `PUT …/photos/{sha256}` with `Content-Range: bytes a-b/total` carries the bytes a..b. The
  answer is 308 with `Range: bytes=0-{last byte held}` while the photo is partial, and 201 when it
  is whole and its SHA-256 matches (201 at once for a photo already held). Bytes the server
  already has are skipped; a piece that starts past what it has is refused with the 308 that
  tells where to resume. A PUT without Content-Range carries the whole photo.
- `HEAD` answers the same 308 (no `Range` when nothing is held) or 201.
- Refusals: the SHA-256 does not match (422 `invalid_field`, the bytes dropped), more than
  10 MB (413 `too_large`), not JPEG/PNG/WebP (422 `invalid_field`), a 10th photo of one report
  (422 `out_of_range`).

A photo may arrive before its report (kept 24 h): it is attached when the report comes. Photos
are stored once per content in the database (every server process reads them there), with
EXIF/XMP (where it was taken, the device) stripped without re-encoding, and a JPEG thumbnail.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.errors import DomainError
from command.incidents.models import incidents
from command.photos.models import incident_photos, photo_chunks, photo_uploads, photos

MAX_BYTES = 10 * 1024 * 1024
MAX_PER_SUBJECT = 9
KEEP_PARTIAL = timedelta(hours=24)
THUMB_PX = 320
_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
_SHA = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class Held:
    """Where an upload stands: `complete`, or the count of bytes held (0: none)."""

    complete: bool
    received: int
    changed: list[str] | None = None  # incident ids that gained the photo (publish them)


def check_sha(sha256: str) -> str:
    """The name of a photo: 64 lower-case hex digits."""
    if not _SHA.match(sha256 or ""):
        raise DomainError("invalid_field", "the photo is named by the SHA-256 of its bytes "
                                           "(64 hex digits, lower case)", "sha256")
    return sha256


def parse_range(header: str | None, length: int) -> tuple[int, int, int]:
    """(first, last, total) of `Content-Range: bytes a-b/total` (none: the whole body)."""
    if header is None:
        if length == 0:
            raise DomainError("invalid_field", "an empty photo", "Content-Range")
        return 0, length - 1, length
    m = _RANGE.match(header.strip())
    if not m:
        raise DomainError("invalid_field", "Content-Range: bytes a-b/total", "Content-Range")
    first, last, total = (int(x) for x in m.groups())
    if not first <= last < total or last - first + 1 != length:
        raise DomainError("invalid_field", f"Content-Range {header.strip()} does not fit the "
                                           f"{length} bytes sent", "Content-Range")
    return first, last, total


def sniff(head: bytes) -> str | None:
    """The MIME type of JPEG, PNG or WebP bytes, else None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def status(session: Session, *, owner: str, subject: str, sha256: str) -> Held:
    """What the server holds of this photo for this subject (HEAD)."""
    row = _upload(session, owner, subject, sha256)
    if row is None:
        return Held(False, 0)
    return Held(bool(row.complete), int(row.received))


def receive(session: Session, *, owner: str, subject: str, sha256: str, content_range: str | None,
            data: bytes, now: datetime, attach) -> Held:
    """Take a piece of a photo; finish it when whole. `attach(session, sha256)` links a whole
    photo to its subject when the subject exists (returns the incident ids it changed)."""
    check_sha(sha256)
    first, last, total = parse_range(content_range, len(data))
    if total > MAX_BYTES:
        raise DomainError("too_large", f"a photo may have at most {MAX_BYTES} bytes, this one "
                                       f"has {total}")
    row = _upload(session, owner, subject, sha256, lock=True)
    if row is None and _linked_or_stored(session, sha256):  # the same photo sent before
        _count_check(session, owner, subject)
        session.execute(sa.insert(photo_uploads).values(
            id=uuid.uuid4().hex, owner=owner, subject=subject, sha256=sha256, total=total,
            received=total, complete=True, created_at=now, updated_at=now))
        return Held(True, total, attach(session, sha256))
    if row is None:
        _count_check(session, owner, subject)
        upload_id = uuid.uuid4().hex
        session.execute(sa.insert(photo_uploads).values(
            id=upload_id, owner=owner, subject=subject, sha256=sha256, total=total, received=0,
            complete=False, created_at=now, updated_at=now))
        received = 0
    else:
        upload_id, received = row.id, int(row.received)
        if row.total != total:
            raise DomainError("invalid_field", f"Content-Range: the photo has {row.total} bytes, "
                                               f"not {total}", "Content-Range")
        if row.complete:
            return Held(True, total, attach(session, sha256))
    if first > received:  # a gap: tell the phone where to resume
        return Held(False, received)
    fresh = data[received - first:] if last >= received else b""
    if received == 0 and fresh and sniff(fresh[:16]) is None:
        _drop(session, upload_id)
        raise DomainError("invalid_field", "a photo is a JPEG, PNG or WebP image", "sha256")
    if fresh:
        session.execute(sa.insert(photo_chunks).values(upload_id=upload_id, offset=received,
                                                       data=fresh))
        received += len(fresh)
    if received < total:
        session.execute(sa.update(photo_uploads).where(photo_uploads.c.id == upload_id)
                        .values(received=received, updated_at=now))
        return Held(False, received)
    whole = b"".join(session.execute(sa.select(photo_chunks.c.data).where(
        photo_chunks.c.upload_id == upload_id).order_by(photo_chunks.c.offset)).scalars())
    if hashlib.sha256(whole).hexdigest() != sha256:
        _drop(session, upload_id)
        raise DomainError("invalid_field", "the bytes do not match the SHA-256 in the URL; they "
                                           "were dropped: send the photo again", "sha256")
    mime = sniff(whole[:16])
    if mime is None:
        _drop(session, upload_id)
        raise DomainError("invalid_field", "a photo is a JPEG, PNG or WebP image", "sha256")
    stored, thumb, size = prepare(whole, mime)
    session.execute(sa.insert(photos).values(
        sha256=sha256, mime=mime, bytes=len(whole), width=size[0], height=size[1], data=stored,
        thumb=thumb, created_at=now))
    session.execute(sa.delete(photo_chunks).where(photo_chunks.c.upload_id == upload_id))
    session.execute(sa.update(photo_uploads).where(photo_uploads.c.id == upload_id)
                    .values(received=total, complete=True, updated_at=now))
    return Held(True, total, attach(session, sha256))


def _count_check(session: Session, owner: str, subject: str) -> None:
    others = session.execute(sa.select(sa.func.count()).select_from(photo_uploads).where(
        photo_uploads.c.owner == owner, photo_uploads.c.subject == subject)).scalar_one()
    if others >= MAX_PER_SUBJECT:
        raise DomainError("out_of_range", f"at most {MAX_PER_SUBJECT} photos per report")


def _upload(session: Session, owner: str, subject: str, sha256: str, *, lock: bool = False):
    stmt = sa.select(photo_uploads).where(photo_uploads.c.owner == owner,
                                          photo_uploads.c.subject == subject,
                                          photo_uploads.c.sha256 == sha256)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).first()


def _linked_or_stored(session: Session, sha256: str) -> bool:
    return session.execute(sa.select(photos.c.sha256).where(photos.c.sha256 == sha256)
                           ).first() is not None


def _drop(session: Session, upload_id: str) -> None:
    session.execute(sa.delete(photo_chunks).where(photo_chunks.c.upload_id == upload_id))
    session.execute(sa.delete(photo_uploads).where(photo_uploads.c.id == upload_id))


def attach_to_incident(session: Session, incident_id: str, sha256: str, *, by: str,
                       now: datetime) -> bool:
    """Link a stored photo to an incident (once); True when it was new there."""
    if session.execute(sa.select(incident_photos.c.sha256).where(
            incident_photos.c.incident_id == incident_id,
            incident_photos.c.sha256 == sha256)).first() is not None:
        return False
    count = session.execute(sa.select(incidents.c.photo_count).where(
        incidents.c.id == incident_id).with_for_update()).scalar_one()
    if count >= MAX_PER_SUBJECT:
        raise DomainError("out_of_range", f"at most {MAX_PER_SUBJECT} photos per incident")
    session.execute(sa.insert(incident_photos).values(incident_id=incident_id, sha256=sha256,
                                                      position=count, added_by=by, added_at=now))
    session.execute(sa.update(incidents).where(incidents.c.id == incident_id)
                    .values(photo_count=count + 1))
    return True


def waiting_for(session: Session, owner: str, subject: str) -> list[str]:
    """The whole photos an owner sent for a subject before it existed, oldest first."""
    return list(session.execute(sa.select(photo_uploads.c.sha256).where(
        photo_uploads.c.owner == owner, photo_uploads.c.subject == subject,
        photo_uploads.c.complete.is_(True)).order_by(photo_uploads.c.created_at)).scalars())


def of_incidents(session: Session, incident_ids: list[str]) -> dict[str, list[dict]]:
    """The photos of these incidents (wire form), in order."""
    out: dict[str, list[dict]] = {}
    for start in range(0, len(incident_ids), 500):
        rows = session.execute(
            sa.select(incident_photos.c.incident_id, incident_photos.c.sha256, photos.c.bytes)
            .join(photos, photos.c.sha256 == incident_photos.c.sha256)
            .where(incident_photos.c.incident_id.in_(incident_ids[start:start + 500]))
            .order_by(incident_photos.c.incident_id, incident_photos.c.position)).all()
        for r in rows:
            out.setdefault(r.incident_id, []).append(wire(r.sha256, r.bytes))
    return out


def wire(sha256: str, size: int) -> dict:
    """A photo as incidents carry it."""
    return {"sha256": sha256, "bytes": size, "url": f"/api/v1/photos/{sha256}",
            "thumb_url": f"/api/v1/photos/{sha256}?thumb=1"}


def read(session: Session, sha256: str, *, thumb: bool = False) -> tuple[bytes, str] | None:
    """(bytes, MIME type) of a stored photo or its thumbnail."""
    row = session.execute(sa.select(photos.c.data, photos.c.thumb, photos.c.mime).where(
        photos.c.sha256 == sha256)).first()
    if row is None:
        return None
    return (row.thumb, "image/jpeg") if thumb else (row.data, row.mime)


def incidents_with(session: Session, sha256: str) -> list:
    """The incidents (rows) a photo belongs to: whoever may see one may see the photo."""
    return session.execute(sa.select(incidents.c.id, incidents.c.township_code,
                                     incidents.c.grid_code, incidents.c.type,
                                     incidents.c.reporter_user)
                           .join(incident_photos, incident_photos.c.incident_id == incidents.c.id)
                           .where(incident_photos.c.sha256 == sha256)).all()


def forget_stale(session: Session, now: datetime) -> int:
    """Drop uploads that were never finished, or never met their report, after 24 h."""
    old = session.execute(sa.select(photo_uploads.c.id).where(
        photo_uploads.c.updated_at < now - KEEP_PARTIAL,
        sa.or_(photo_uploads.c.complete.is_(False),
               photo_uploads.c.subject.like("report:%")))).scalars().all()
    for upload_id in old:
        _drop(session, upload_id)
    return len(old)


# --- the bytes themselves ---------------------------------------------------------------------

def prepare(data: bytes, mime: str) -> tuple[bytes, bytes, tuple[int | None, int | None]]:
    """(the photo without EXIF/XMP, a JPEG thumbnail, (width, height))."""
    stripped = strip_metadata(data, mime)
    try:
        from PIL import Image, ImageOps

        with Image.open(io.BytesIO(data)) as img:
            size = img.size
            img = ImageOps.exif_transpose(img)  # the thumbnail the right way up
            img.thumbnail((THUMB_PX, THUMB_PX))
            out = io.BytesIO()
            img.convert("RGB").save(out, "JPEG", quality=72)
            return stripped, out.getvalue(), size
    except Exception:  # noqa: BLE001 - a photo the imaging library cannot read: no thumbnail
        return stripped, b"", (None, None)


def strip_metadata(data: bytes, mime: str) -> bytes:
    """Remove EXIF and XMP without touching the picture (JPEG APP1, PNG text chunks, WebP)."""
    if mime == "image/jpeg":
        return _strip_jpeg(data)
    if mime == "image/png":
        return _strip_png(data)
    if mime == "image/webp":
        return _strip_webp(data)
    return data


def _strip_jpeg(data: bytes) -> bytes:
    out = bytearray(data[:2])
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xDA:  # start of scan: the rest is the picture
            break
        size = struct.unpack(">H", data[i + 2:i + 4])[0]
        segment = data[i:i + 2 + size]
        payload = data[i + 4:i + 2 + size]
        drop = marker == 0xE1 and (payload.startswith(b"Exif\x00") or
                                   payload.startswith(b"http://ns.adobe.com/xap/"))
        if not drop:
            out += segment
        i += 2 + size
    out += data[i:]
    return bytes(out)


def _strip_png(data: bytes) -> bytes:
    out = bytearray(data[:8])
    i = 8
    while i + 8 <= len(data):
        length = struct.unpack(">I", data[i:i + 4])[0]
        kind = data[i + 4:i + 8]
        chunk = data[i:i + 12 + length]
        if kind not in (b"eXIf", b"tEXt", b"zTXt", b"iTXt"):
            out += chunk
        i += 12 + length
    return bytes(out)


def _strip_webp(data: bytes) -> bytes:
    body = bytearray()
    i = 12
    while i + 8 <= len(data):
        kind = data[i:i + 4]
        length = struct.unpack("<I", data[i + 4:i + 8])[0]
        chunk = bytearray(data[i:i + 8 + length + (length & 1)])
        if kind == b"VP8X":
            chunk[8] &= ~(0x08 | 0x04) & 0xFF  # no EXIF, no XMP
        if kind not in (b"EXIF", b"XMP "):
            body += chunk
        i += 8 + length + (length & 1)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + bytes(body)
