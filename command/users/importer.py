"""Accounts from a spreadsheet: check every line first, then store all of them or none.

Columns (Chinese or English headers, any order; a column may be absent when no line needs it):

| column | header | |
|---|---|---|
| name | 登录名 / name | required: the login name |
| role | 角色 / role | required: a role code or its Chinese label |
| unit | 单位 / unit | township and grid users: a unit code, or a unit name unique in the county |
| dept | 部门 / dept | department users: a department code or name |
| display_name | 姓名 / display_name | optional |
| phone | 手机 / phone | optional: a mobile or landline number (shown masked) |

A line naming an existing user updates what differs (role, unit, display name, phone; never the
password); the same file imported twice changes nothing the second time. New accounts get a
generated first password, to be changed at the first sign-in.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.incidents.schemas import mask_phone
from command.units.models import units
from command.users import service
from command.users.models import ROLES, users
from command.users.principal import ROLE_LABELS
from command.users.sheet import Table

COLUMNS = ("name", "role", "unit", "dept", "display_name", "phone")
# the header written by `users export`, and the one named in messages
HEADERS = {"name": "登录名", "role": "角色", "unit": "单位", "dept": "部门",
           "display_name": "姓名", "phone": "手机"}
_ALIASES = {
    "name": ("登录名", "name", "用户名", "账号", "login", "username"),
    "role": ("角色", "role"),
    "unit": ("单位", "unit", "所属单位"),
    "dept": ("部门", "dept", "department"),
    "display_name": ("姓名", "display_name", "displayname", "显示名"),
    "phone": ("手机", "phone", "手机号", "手机号码", "mobile", "联系电话"),
}
MAX_NAME = 64
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0\d{9,11}")


def _norm_header(text: str) -> str:
    return re.sub(r"[\s_\-]+", "", text.strip().lower().lstrip("\ufeff"))


_HEADER_OF = {_norm_header(alias): column for column, aliases in _ALIASES.items()
              for alias in aliases}


def _norm_label(text: str) -> str:
    return re.sub(r"\s+", "", text.replace("（", "(").replace("）", ")"))


def role_lookup() -> dict[str, str]:
    """Every accepted spelling of a role → its code: codes, labels, labels without brackets."""
    lookup = {code: code for code in ROLES}
    for code, label in ROLE_LABELS.items():
        if code not in ROLES:
            continue
        lookup[_norm_label(label)] = code
        lookup[re.sub(r"\(.*?\)", "", _norm_label(label))] = code
    return lookup


@dataclass(frozen=True)
class LineError:
    """A mistake on one line of the file, in one column."""

    line: int
    column: str  # the header as written in the file (or the expected one when absent)
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


@dataclass
class Plan:
    """What an import would do: accounts to create and to change, and what stays."""

    create: list[dict] = field(default_factory=list)
    update: list[tuple[int, dict]] = field(default_factory=list)  # (user id, changed values)
    unchanged: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)


class ImportRefused(Exception):
    """The file has mistakes: nothing was imported."""

    def __init__(self, errors: list[LineError]) -> None:
        super().__init__(f"{len(errors)} mistake(s)")
        self.errors = errors


class _Units:
    """The stored units, to resolve what a line names by code or name."""

    def __init__(self, session: Session) -> None:
        rows = session.execute(sa.select(units.c.code, units.c.name, units.c.level,
                                         units.c.parent)).all()
        self.by_code = {r.code: r for r in rows}
        self.by_name: dict[tuple[str, str], list] = {}
        for r in rows:
            self.by_name.setdefault((r.level, r.name), []).append(r)
        self.county = next((r for r in rows if r.level == "county"), None)

    def resolve(self, value: str, level: str) -> tuple[str | None, str | None]:
        """(code, None) or (None, why not) for a code or name of a unit of `level`."""
        row = self.by_code.get(value)
        if row is None and level == "dept" and not value.startswith("dept."):
            row = self.by_code.get("dept." + value)
        if row is not None:
            if row.level != level:
                return None, f"{value} is a {row.level} unit; this role needs a {level}"
            return row.code, None
        found = self.by_name.get((level, value), [])
        if not found and level == "grid":  # "青石镇/东村网格": a grid named within its township
            parts = re.split(r"\s*[/／·>]\s*", value, maxsplit=1)
            if len(parts) == 2:
                found = [r for r in self.by_name.get((level, parts[1]), [])
                         if (parent := self.by_code.get(r.parent)) is not None
                         and parts[0] in (parent.name, parent.code)]
        if len(found) == 1:
            return found[0].code, None
        if len(found) > 1:
            codes = ", ".join(sorted(r.code for r in found))
            return None, f"{len(found)} {level} units are named {value!r} ({codes}): give the code"
        return None, f"no {level} unit with the code or name {value!r} (see `cmdcenter units list`)"

    def is_county(self, value: str) -> bool:
        return self.county is not None and value in (self.county.code, self.county.name)


def _phone(value: str) -> tuple[str | None, str | None]:
    """A phone as stored (digits, a landline keeps one hyphen after its area code), or why not."""
    digits = re.sub(r"[\s\-()（）]", "", value)
    digits = re.sub(r"^(\+?86)(?=1\d{10}$)", "", digits)
    if _MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits):
        return digits, None
    return None, f"not a phone number: {mask_phone(value)!r} (11-digit mobile or a landline with area code)"


def plan(session: Session, table: Table) -> Plan:
    """Check every line against the stored users and units; nothing is written."""
    result = Plan()
    columns: dict[str, int] = {}
    shown: dict[str, str] = dict(HEADERS)
    for index, header in enumerate(table.headers):
        column = _HEADER_OF.get(_norm_header(header)) if header else None
        if column is None:
            if header:
                result.ignored_columns.append(header)
            continue
        if column in columns:
            result.errors.append(LineError(1, header, f"a second {HEADERS[column]}/{column} "
                                                      "column"))
            continue
        columns[column] = index
        shown[column] = header
    for column in ("name", "role"):
        if column not in columns:
            result.errors.append(LineError(1, f"{HEADERS[column]}/{column}",
                                           "this column is required and missing"))
    if result.errors:
        return result

    roles = role_lookup()
    known = _Units(session)
    existing = {r.name: r for r in session.execute(sa.select(users))}
    seen: dict[str, int] = {}

    for line, cells in table.rows:
        def cell(column: str) -> str | None:
            """The cell's text, or None when the file has no such column."""
            return cells[columns[column]].strip() if column in columns else None

        def wrong(column: str, message: str) -> None:
            result.errors.append(LineError(line, shown[column] if column in columns
                                           else f"{HEADERS[column]}/{column}", message))

        before = len(result.errors)
        name = cell("name")
        if not name:
            wrong("name", "a login name is required")
        elif len(name) > MAX_NAME or not name.isprintable() or re.search(r"\s", name):
            wrong("name", f"a login name is 1-{MAX_NAME} characters without spaces")
        elif name in seen:
            wrong("name", f"{name!r} is already on line {seen[name]}")
        else:
            seen[name] = line
        raw_role = cell("role")
        role = roles.get(_norm_label(raw_role).lower()) if raw_role else None
        if not raw_role:
            wrong("role", "a role is required")
        elif role is None:
            labels = "、".join(f"{ROLE_LABELS.get(c, c)}({c})" for c in ROLES)
            wrong("role", f"unknown role {raw_role!r}: one of {labels}")

        unit_code = None
        level = service.UNIT_LEVEL_FOR_ROLE.get(role) if role else None
        unit, dept = cell("unit") or "", cell("dept") or ""
        if role and level in ("township", "grid"):
            if dept:
                wrong("dept", f"部门/dept is for department users, not {ROLE_LABELS.get(role, role)}")
            if not unit:
                wrong("unit", f"a {ROLE_LABELS.get(role, role)} needs a {level} unit (code or name)")
            else:
                unit_code, why = known.resolve(unit, level)
                if why:
                    wrong("unit", why)
        elif role and level == "dept":
            given, column = (dept, "dept") if dept else (unit, "unit")
            if not given:
                wrong("dept", "a department user needs a department (code or name)")
            else:
                unit_code, why = known.resolve(given, "dept")
                if why:
                    wrong(column, why)
        elif role:  # a county-level role: no unit, or the county itself
            for column, value in (("unit", unit), ("dept", dept)):
                if value and not known.is_county(value):
                    wrong(column, f"{ROLE_LABELS.get(role, role)} is a county role: leave "
                                  f"{HEADERS[column]} empty")

        display_name = cell("display_name")
        if display_name is not None and len(display_name) > MAX_NAME:
            wrong("display_name", f"at most {MAX_NAME} characters")
        phone = cell("phone")
        old = existing.get(name) if name else None
        if phone:
            if "*" in phone:  # a masked phone, as `users export` writes it: keep the stored one
                if old is None or mask_phone(old.phone) != phone:
                    wrong("phone", "a masked phone (***) only stands for the stored number of an "
                                   "existing user; give the whole number")
                else:
                    phone = old.phone
            else:
                phone, why = _phone(phone)
                if why:
                    wrong("phone", why)
        if len(result.errors) > before:
            continue

        values = {"role": role, "unit_code": unit_code}
        if display_name is not None:
            values["display_name"] = display_name or None
        if phone is not None:
            values["phone"] = phone or None
        if old is None:
            result.create.append({"name": name, "display_name": None, "phone": None, **values,
                                  "line": line})
            continue
        changed = {k: v for k, v in values.items() if getattr(old, k) != v}
        if changed:
            result.update.append((old.id, changed))
        else:
            result.unchanged += 1
    return result


@dataclass(frozen=True)
class Imported:
    """What an import did; `passwords` are the new accounts' first passwords (name → password)."""

    created: list[dict]
    updated: int
    unchanged: int
    passwords: dict[str, str]


def generate_passwords(names: list[str]) -> dict[str, tuple[str, str]]:
    """A first password and its digest for each name (hashed on two threads: scrypt releases
    the interpreter)."""
    plain = {name: service.generate_password() for name in names}
    with ThreadPoolExecutor(max_workers=2) as pool:
        digests = pool.map(lambda p: service.hash_password(
            p, cost=service.GENERATED_PASSWORD_COST), plain.values())
        return {name: (plain[name], digest) for name, digest in zip(plain, digests)}


def apply(session: Session, result: Plan, *, now: datetime,
          passwords: dict[str, tuple[str, str]]) -> Imported:
    """Store a plan without errors (the caller owns the transaction)."""
    if result.errors:
        raise ImportRefused(result.errors)
    rows = [{"name": c["name"], "role": c["role"], "unit_code": c["unit_code"],
             "display_name": c["display_name"], "phone": c["phone"], "created_at": now,
             "failed_logins": 0, "must_change_password": True,
             "password_hash": passwords[c["name"]][1]} for c in result.create]
    if rows:
        session.execute(sa.insert(users), rows)
    for user_id, changed in result.update:
        session.execute(sa.update(users).where(users.c.id == user_id).values(**changed))
    return Imported(result.create, len(result.update), result.unchanged,
                    {c["name"]: passwords[c["name"]][0] for c in result.create})


def export_rows(session: Session) -> tuple[list[str], list[list[str]]]:
    """Every user as the import reads them back: Chinese headers, role labels, masked phones."""
    headers = [HEADERS[c] for c in COLUMNS]
    rows = []
    for user in service.get_all(session):
        dept = user.role == "dept"
        rows.append([user.name, ROLE_LABELS.get(user.role, user.role),
                     "" if dept else (user.unit_code or ""), user.unit_code if dept else "",
                     user.display_name or "", user.masked_phone or ""])
    return headers, rows
