"""Feeds: register, authenticate, list, revoke, re-bind. Tokens are stored as SHA-256 digests."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.errors import DomainError, NotFound
from command.feeds.models import feeds
from command.units.models import units


@dataclass(frozen=True)
class Feed:
    """A feed as the ingest path sees it."""

    id: int
    name: str
    unit_code: str
    created_at: datetime
    revoked_at: datetime | None
    disabled_reason: str | None

    @property
    def active(self) -> bool:
        """Whether the feed may report."""
        return self.revoked_at is None and self.disabled_reason is None

    def as_dict(self) -> dict:
        """Plain JSON-able form."""
        return {"name": self.name, "unit": self.unit_code, "created_at": self.created_at.isoformat(),
                "revoked": self.revoked_at is not None, "disabled_reason": self.disabled_reason}


def hash_token(token: str) -> str:
    """The stored digest of a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _row(row) -> Feed:
    return Feed(row.id, row.name, row.unit_code, row.created_at, row.revoked_at, row.disabled_reason)


def create(session: Session, *, name: str, unit_code: str, now: datetime) -> tuple[Feed, str]:
    """Register a feed bound to a unit; return it with its token (shown once, stored hashed)."""
    name = name.strip()
    if not name:
        raise DomainError("invalid_field", "a feed needs a name", "name")
    if session.execute(sa.select(units.c.code).where(units.c.code == unit_code)).first() is None:
        raise NotFound(f"no unit with code {unit_code!r} (see `cmdcenter units list`)")
    if session.execute(sa.select(feeds.c.id).where(feeds.c.name == name)).first():
        raise DomainError("conflict", f"a feed named {name!r} already exists", "name")
    token = "cf_" + secrets.token_urlsafe(32)
    session.execute(sa.insert(feeds).values(
        name=name, unit_code=unit_code, token_hash=hash_token(token), created_at=now))
    return get(session, name=name), token


def rotate_token(session: Session, *, name: str) -> str:
    """Give a feed a new token (the old one stops working) and re-activate it; return the token."""
    feed = get(session, name=name)
    token = "cf_" + secrets.token_urlsafe(32)
    session.execute(sa.update(feeds).where(feeds.c.id == feed.id).values(
        token_hash=hash_token(token), revoked_at=None))
    return token


def get(session: Session, *, name: str) -> Feed:
    """Return the feed named `name` or raise NotFound."""
    row = session.execute(sa.select(feeds).where(feeds.c.name == name)).first()
    if row is None:
        raise NotFound(f"no feed named {name!r}")
    return _row(row)


def authenticate(session: Session, token: str | None) -> Feed:
    """Return the active feed holding `token`, or raise `unauthorized`."""
    if not token or not isinstance(token, str):
        raise DomainError("unauthorized", "a feed token is required")
    row = session.execute(sa.select(feeds).where(feeds.c.token_hash == hash_token(token))).first()
    if row is None or row.revoked_at is not None:
        raise DomainError("unauthorized", "unknown or revoked feed token")
    feed = _row(row)
    if feed.disabled_reason:
        raise DomainError("unauthorized", f"feed {feed.name!r} is disabled: {feed.disabled_reason}")
    return feed


def active_ids(session: Session, feed_ids: list[int]) -> set[int]:
    """Which of these feeds may report right now (not revoked, not disabled)."""
    stmt = sa.select(feeds.c.id).where(feeds.c.id.in_(feed_ids), feeds.c.revoked_at.is_(None),
                                       feeds.c.disabled_reason.is_(None))
    return set(session.execute(stmt).scalars())


def get_all(session: Session) -> list[Feed]:
    """Every feed, oldest first."""
    return [_row(r) for r in session.execute(sa.select(feeds).order_by(feeds.c.id))]


def revoke(session: Session, *, name: str, now: datetime) -> Feed:
    """Revoke a feed's token for good."""
    feed = get(session, name=name)
    if feed.revoked_at is None:
        session.execute(sa.update(feeds).where(feeds.c.id == feed.id).values(revoked_at=now))
    return get(session, name=name)


def rebind(session: Session, *, name: str, unit_code: str) -> Feed:
    """Bind a feed to another unit and re-enable it."""
    feed = get(session, name=name)
    if session.execute(sa.select(units.c.code).where(units.c.code == unit_code)).first() is None:
        raise NotFound(f"no unit with code {unit_code!r}")
    session.execute(sa.update(feeds).where(feeds.c.id == feed.id)
                    .values(unit_code=unit_code, disabled_reason=None))
    return get(session, name=name)


def disable_unbound(session: Session) -> list[Feed]:
    """Disable every active feed whose unit no longer exists; return them."""
    known = sa.select(units.c.code)
    stmt = sa.select(feeds).where(feeds.c.revoked_at.is_(None), feeds.c.unit_code.not_in(known))
    orphans = [_row(r) for r in session.execute(stmt)]
    for feed in orphans:
        reason = f"unit {feed.unit_code} no longer exists; re-bind with `cmdcenter feeds bind`"
        session.execute(sa.update(feeds).where(feeds.c.id == feed.id).values(disabled_reason=reason))
    return orphans
