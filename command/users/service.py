"""Users: create, authenticate by password (with lock-out) or personal token, list, disable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.errors import DomainError, NotFound
from command.incidents.schemas import mask_phone
from command.units.models import units
from command.users.models import ROLES, users
from command.users.principal import COUNTY_LEVEL_ROLES, Principal

MAX_FAILED_LOGINS = 5
LOCK_FOR = timedelta(minutes=15)
UNIT_LEVEL_FOR_ROLE = {"township": "township", "grid": "grid", "dept": "dept"}


@dataclass(frozen=True)
class User:
    """A user as listed."""

    id: int
    name: str
    role: str
    unit_code: str | None
    disabled: bool
    display_name: str | None = None
    phone: str | None = None  # in full: show `masked_phone`
    must_change_password: bool = False

    @property
    def masked_phone(self) -> str | None:
        """The phone as shown anywhere (138****1234)."""
        return mask_phone(self.phone)

    @property
    def principal(self) -> Principal:
        """The user as the scope rules see them."""
        return Principal(self.name, self.role, self.unit_code)

    def as_dict(self) -> dict:
        """Plain JSON-able form."""
        return {"name": self.name, "role": self.role, "unit": self.unit_code,
                "display_name": self.display_name, "phone": self.masked_phone,
                "disabled": self.disabled, "must_change_password": self.must_change_password}


# scrypt cost: a person's password gets the full cost; a generated first password (random, about
# 65 bits, good for one sign-in that must change it) a lower one, so that 1,500 accounts are made
# in seconds rather than a minute — its strength is its randomness, not the hashing work
PASSWORD_COST = 2 ** 14
GENERATED_PASSWORD_COST = 2 ** 11
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off a sheet, typed on a phone


def hash_password(password: str, *, cost: int = PASSWORD_COST) -> str:
    """A salted scrypt digest of a password."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=cost, r=8, p=1)
    return f"scrypt${cost}$8$1${salt.hex()}${digest.hex()}"


def generate_password() -> str:
    """A random first password of 14 characters in groups (about 69 bits), e.g.
    `k7mq-3xpa-w9dh-r4`."""
    chars = [secrets.choice(_ALPHABET) for _ in range(14)]
    return "-".join("".join(chars[i:i + 4]) for i in range(0, 14, 4))


def check_password(password: str, stored: str | None) -> bool:
    """Whether `password` matches a digest made by hash_password."""
    if not stored:
        return False
    try:
        _, n, r, p, salt, digest = stored.split("$")
        again = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                               p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(again.hex(), digest)


def hash_token(token: str) -> str:
    """The stored digest of a personal API token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _user(row) -> User:
    return User(row.id, row.name, row.role, row.unit_code, row.disabled_at is not None,
                row.display_name, row.phone, bool(row.must_change_password))


def create(session: Session, *, name: str, role: str, unit_code: str | None, password: str | None,
           now: datetime) -> User:
    """Add a user with a role; non-county roles need a unit of the matching level."""
    name = name.strip()
    if not name:
        raise DomainError("invalid_field", "a user needs a name", "name")
    if role not in ROLES:
        raise DomainError("invalid_field", f"role must be one of {', '.join(ROLES)}", "role")
    level = UNIT_LEVEL_FOR_ROLE.get(role)
    if level is None:
        unit_code = None if role in COUNTY_LEVEL_ROLES else unit_code
    else:
        if not unit_code:
            raise DomainError("missing_field", f"a {role} user needs --unit (or --dept)", "unit")
        row = session.execute(sa.select(units.c.level).where(units.c.code == unit_code)).first()
        if row is None:
            raise NotFound(f"no unit with code {unit_code!r} (see `cmdcenter units list`)")
        if row.level != level:
            raise DomainError("invalid_field",
                              f"a {role} user needs a {level} unit; {unit_code} is a {row.level}",
                              "unit")
    if password is not None and len(password) < 8:
        raise DomainError("invalid_field", "a password needs at least 8 characters", "password")
    if session.execute(sa.select(users.c.id).where(users.c.name == name)).first():
        raise DomainError("conflict", f"a user named {name!r} already exists", "name")
    session.execute(sa.insert(users).values(
        name=name, role=role, unit_code=unit_code, created_at=now, failed_logins=0,
        password_hash=hash_password(password) if password else None))
    return get(session, name=name)


def get(session: Session, *, name: str) -> User:
    """The user named `name`, or NotFound."""
    row = session.execute(sa.select(users).where(users.c.name == name)).first()
    if row is None:
        raise NotFound(f"no user named {name!r}")
    return _user(row)


def get_all(session: Session) -> list[User]:
    """Every user, oldest first."""
    return [_user(r) for r in session.execute(sa.select(users).order_by(users.c.id))]


def issue_token(session: Session, *, name: str) -> str:
    """Give a user a new personal API token (the previous one stops working); return it."""
    user = get(session, name=name)
    token = "cu_" + secrets.token_urlsafe(32)
    session.execute(sa.update(users).where(users.c.id == user.id)
                    .values(token_hash=hash_token(token)))
    return token


def set_password(session: Session, *, name: str, password: str) -> None:
    """Set a user's password and lift any lock-out."""
    if len(password) < 8:
        raise DomainError("invalid_field", "a password needs at least 8 characters", "password")
    user = get(session, name=name)
    session.execute(sa.update(users).where(users.c.id == user.id).values(
        password_hash=hash_password(password), failed_logins=0, locked_until=None,
        must_change_password=False))


def change_first_password(session: Session, *, user_id: int, password: str) -> None:
    """Replace a generated first password with the user's own (which must differ from it)."""
    if len(password) < 8:
        raise DomainError("invalid_field", "新密码至少 8 个字符", "password")
    row = session.execute(sa.select(users).where(users.c.id == user_id)).first()
    if row is None or row.disabled_at is not None:
        raise NotFound("no such user")
    if check_password(password, row.password_hash):
        raise DomainError("invalid_field", "新密码不能与初始密码相同", "password")
    session.execute(sa.update(users).where(users.c.id == user_id).values(
        password_hash=hash_password(password), must_change_password=False, failed_logins=0,
        locked_until=None))


def disable(session: Session, *, name: str, now: datetime) -> User:
    """Disable a user: their sessions and token stop working at once."""
    user = get(session, name=name)
    session.execute(sa.update(users).where(users.c.id == user.id)
                    .values(disabled_at=now, token_hash=None))
    return get(session, name=name)


def by_token(session: Session, token: str | None) -> Principal | None:
    """The active user holding this personal token, or None."""
    if not token or not isinstance(token, str):
        return None
    row = session.execute(sa.select(users).where(users.c.token_hash == hash_token(token))).first()
    if row is None or row.disabled_at is not None:
        return None
    return _user(row).principal


def by_id(session: Session, user_id: int) -> Principal | None:
    """The active user with this id (a session's user), or None."""
    row = session.execute(sa.select(users).where(users.c.id == user_id)).first()
    if row is None or row.disabled_at is not None:
        return None
    return _user(row).principal


@dataclass(frozen=True)
class LoginOutcome:
    """A sign-in attempt: the user's id, or the message to show."""

    user_id: int | None
    message: str | None = None
    must_change_password: bool = False  # signed in with a first password: change it first


def login(session: Session, *, name: str, password: str, now: datetime) -> LoginOutcome:
    """Check a password; count failures and lock the account after repeated ones.

    Never raises for a wrong password: the failure count must be committed with the refusal.
    """
    row = session.execute(sa.select(users).where(users.c.name == name.strip())).first()
    refused = LoginOutcome(None, "用户名或密码错误")
    if row is None or row.disabled_at is not None:
        check_password(password, hash_password("timing"))  # same work for unknown names
        return refused
    if row.locked_until is not None and row.locked_until > now:
        minutes = max(1, int((row.locked_until - now).total_seconds() // 60) + 1)
        return LoginOutcome(None, f"登录失败次数过多，账户已锁定，请 {minutes} 分钟后再试")
    if not check_password(password, row.password_hash):
        failed = (row.failed_logins or 0) + 1
        values = {"failed_logins": failed}
        if failed >= MAX_FAILED_LOGINS:
            values = {"failed_logins": 0, "locked_until": now + LOCK_FOR}
        session.execute(sa.update(users).where(users.c.id == row.id).values(**values))
        return refused
    session.execute(sa.update(users).where(users.c.id == row.id)
                    .values(failed_logins=0, locked_until=None))
    return LoginOutcome(row.id, must_change_password=bool(row.must_change_password))


def names_with_role(session: Session, role: str) -> list[str]:
    """The names of the active users of a role (e.g. the county leaders who own cases)."""
    return list(session.execute(sa.select(users.c.name).where(
        users.c.role == role, users.c.disabled_at.is_(None)).order_by(users.c.name)).scalars())
