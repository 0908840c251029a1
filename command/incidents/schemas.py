"""The report a feed sends, validated into a normalised form (pydantic), with precise error codes."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, ValidationError,
                      field_validator, model_validator)
from pydantic_core import PydanticCustomError

from command.clock import SHANGHAI
from command.errors import DomainError
from command.payload import clean_text
from command.incidents.types import TYPE_LABELS, normalise_type
from command.matters.categories import CATEGORY_LABELS, is_matter, normalise_category

CRS_VALUES = ("wgs84", "cgcs2000", "gcj02", "bd09")
MAX_FUTURE = timedelta(minutes=5)


def _finite(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("invalid_field", "must be a number")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise PydanticCustomError("invalid_field", "must be a finite number")
        return float(value)
    raise PydanticCustomError("invalid_field", "must be a number")


def _text(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PydanticCustomError("invalid_field", "must be a string")
    if not clean_text(value):
        raise PydanticCustomError("invalid_field",
                                  "may not contain NUL characters or unpaired surrogates")
    return value.strip()


Coord = Annotated[float, BeforeValidator(_finite)]
Text = Annotated[str | None, BeforeValidator(_text)]


class Report(BaseModel):
    """One report as a feed sends it."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: Annotated[str, BeforeValidator(_text), Field(min_length=1, max_length=128)]
    type: Annotated[str, BeforeValidator(_text)]
    occurred_at: Annotated[str, BeforeValidator(_text)]
    lon: Coord | None = Field(default=None, ge=-180, le=180)
    lat: Coord | None = Field(default=None, ge=-90, le=90)
    crs: Literal["wgs84", "cgcs2000", "gcj02", "bd09"] = "wgs84"
    grid: Text = Field(default=None, max_length=64)
    title: Annotated[str, BeforeValidator(_text), Field(min_length=1, max_length=200)]
    description: Text = Field(default=None, max_length=5000)
    severity: StrictInt = Field(default=4, ge=1, le=4)
    people: StrictInt | None = Field(default=None, ge=0, le=10_000_000)
    reporter: Text = Field(default=None, max_length=100)
    phone: Text = Field(default=None, max_length=40)
    category: Text = Field(default=None, max_length=40)

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        code = normalise_type(value)
        if code is None:
            allowed = "、".join(f"{c}/{label}" for c, label in TYPE_LABELS.items())
            raise PydanticCustomError("unknown_type", f"unknown type {value!r}; one of: {allowed}")
        return code

    @field_validator("category")
    @classmethod
    def _category(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        code = normalise_category(value)
        if code is None:
            allowed = "、".join(f"{c}/{label}" for c, label in CATEGORY_LABELS.items())
            raise PydanticCustomError("invalid_field", f"unknown category {value!r}; one of: "
                                                       f"{allowed}")
        return code

    @field_validator("occurred_at")
    @classmethod
    def _time(cls, value: str) -> str:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise PydanticCustomError(
                "invalid_field", "must be an ISO 8601 time, e.g. 2026-11-26T09:30:00+08:00") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=SHANGHAI)
        if parsed.year < 2000:
            raise PydanticCustomError("out_of_range", "must be after the year 2000")
        return parsed.isoformat()

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value and not all(ch.isdigit() or ch in "+- ()" for ch in value):
            raise PydanticCustomError("invalid_field", "may contain only digits, spaces and + - ( )")
        return value

    @model_validator(mode="after")
    def _where(self) -> "Report":
        if self.grid is None and (self.lon is None or self.lat is None):
            missing = "lon" if self.lon is None else "lat"
            raise PydanticCustomError("missing_field_" + missing,
                                      "lon and lat are required unless grid names a grid code")
        if not is_matter(self.type):
            self.category = None  # a category says what a matter is about; others have none
        return self

    @property
    def approximate(self) -> bool:
        """Placed at its grid only (no measured point)."""
        return self.lon is None or self.lat is None

    @property
    def occurred(self) -> datetime:
        """The time it occurred, aware."""
        return datetime.fromisoformat(self.occurred_at)


class FieldReport(Report):
    """A report from a grid worker's phone: how the place was taken, and for a matter its
    parties (optional) and a closure on the spot."""

    position: Literal["gps", "map", "grid"] | None = None
    accuracy_m: Coord | None = Field(default=None, ge=0, le=1_000_000)
    parties: list[Any] = Field(default_factory=list, max_length=20)
    closure: Literal["on_the_spot"] | None = None
    note: Text = Field(default=None, max_length=2000)

    @field_validator("parties")
    @classmethod
    def _parties(cls, value: list) -> list:
        from command.matters.schemas import Party

        out = []
        for k, raw in enumerate(value):
            try:
                out.append(Party.model_validate(raw))
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                from command.matters.schemas import path

                raise PydanticCustomError(
                    "invalid_field", f"parties[{k}].{path(err['loc'])}: {err['msg']}") from None
        return out

    @model_validator(mode="after")
    def _field(self) -> "FieldReport":
        if self.position is None:
            self.position = "grid" if self.approximate else "gps"
        if self.position == "grid" and not self.approximate:
            raise PydanticCustomError("invalid_field_position",
                                      "position grid: send the grid code without lon/lat")
        if self.position != "grid" and self.approximate:
            raise PydanticCustomError("missing_field_lon",
                                      f"position {self.position}: lon and lat are required")
        if (self.parties or self.closure) and not is_matter(self.type):
            raise PydanticCustomError("invalid_field_type",
                                      "parties and a closure belong to a matter (a matter type)")
        if self.closure and not self.note:
            raise PydanticCustomError("missing_field_note",
                                      "a closure on the spot needs a note: what was done")
        return self


_CODE_BY_PYDANTIC = {
    "missing": "missing_field",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "greater_than": "out_of_range",
    "less_than": "out_of_range",
    "string_too_long": "out_of_range",
    "string_too_short": "missing_field",
    "too_long": "out_of_range",
    "too_short": "missing_field",
    "literal_error": "invalid_field",
}


def validate(raw: Any, *, now: datetime, max_future: timedelta = MAX_FUTURE,
             schema: type[Report] = Report) -> Report:
    """Validate one raw report; raise DomainError naming the first bad field."""
    if not isinstance(raw, dict):
        raise DomainError("invalid_field", "a report must be a JSON object")
    try:
        report = schema.model_validate(raw)
    except ValidationError as exc:
        raise _domain_error(exc) from None
    if report.occurred - now > max_future:
        raise DomainError("future_time", f"occurred_at {report.occurred_at} is in the future",
                          "occurred_at")
    return report


def _domain_error(exc: ValidationError) -> DomainError:
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
    field = loc[0] if loc else None
    kind = err["type"]
    if kind.startswith("missing_field_"):
        return DomainError("missing_field", err["msg"], kind.removeprefix("missing_field_"))
    if kind.startswith("invalid_field_"):
        return DomainError("invalid_field", err["msg"], kind.removeprefix("invalid_field_"))
    if kind in ("unknown_type", "invalid_field", "out_of_range"):
        code = kind
    else:
        code = _CODE_BY_PYDANTIC.get(kind, "invalid_field")
    if kind in ("string_too_short", "too_short") and field not in ("id", "title"):
        code = "invalid_field"
    message = f"{field}: {err['msg']}" if field else err["msg"]
    if kind == "missing" or (code == "missing_field" and field in ("id", "title")):
        message = f"{field} is required"
    elif kind in ("string_too_long", "too_long"):
        limit = (err.get("ctx") or {}).get("max_length")
        message = f"{field} may be at most {limit} characters"
    return DomainError(code, message, field)


def field_only(report: Report, name: str):
    """A FieldReport's own field (`parties`, `closure`, `position` …), None on a feed's Report.

    The same as getattr(report, name, None), without the AttributeError pydantic raises (and
    the ingest of a 500-report burst paid ~4,500 times) for a field the model does not have.
    """
    return report.__dict__.get(name)


def fingerprint(report: Report, lon: float, lat: float) -> str:
    """A digest of the report's content after normalising (label→code, time→UTC, datum→WGS-84)."""
    content = [
        report.type, report.occurred.timestamp(), round(lon, 7), round(lat, 7), report.grid,
        report.title, report.description or "", report.severity, report.people,
        report.reporter, report.phone,
    ]
    if report.category is not None:  # absent from digests stored before categories existed
        content.append(report.category)
    extra = [field_only(report, k) for k in ("position", "accuracy_m", "closure", "note")]
    parties = field_only(report, "parties")
    if any(v is not None for v in extra) or parties:
        content.append([*extra, [p.model_dump() for p in parties or []]])
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()


def mask_phone(phone: str | None) -> str | None:
    """Mask a phone number for display: 13812341234 → 138****1234."""
    if not phone:
        return phone
    digits = phone.replace(" ", "").replace("-", "")
    if len(digits) >= 7:
        return digits[:3] + "****" + digits[-4:]
    return "*" * len(digits)
