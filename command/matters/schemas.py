"""What the window sends: a registration, its parties, a correction, a closure (pydantic).

Errors come out as DomainError with the codes of reports and a field path that names the
exact place (`parties[0].id_number`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, ValidationError,
                      field_validator, model_validator)
from pydantic_core import PydanticCustomError

from command.clock import SHANGHAI
from command.errors import DomainError
from command.incidents.schemas import Coord, Text, _finite, _text
from command.incidents.types import TYPE_LABELS, normalise_type
from command.matters import identity
from command.matters.categories import (CATEGORY_LABELS, MATTER_TYPES, WINDOW_CHANNELS,
                                        CHANNEL_LABELS, KIND_LABELS, ROLE_LABELS,
                                        normalise_category, normalise_channel)

MAX_PARTIES = 20
MAX_AMOUNT = Decimal("1000000000000")  # a trillion yuan
CLOSURES = {"not_accepted": "不予受理", "on_the_spot": "即接即办"}
RISKS = ("high", "medium", "low")
REVEALABLE = ("id_number", "phone")


def _label_or_code(labels: dict[str, str], what: str):
    def check(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise PydanticCustomError("invalid_field", "must be a string")
        value = value.strip()
        for code, label in labels.items():
            if value in (code, label):
                return code
        allowed = "、".join(f"{c}/{label}" for c, label in labels.items())
        raise PydanticCustomError("invalid_field", f"unknown {what} {value!r}; one of: {allowed}")
    return check


def _amount(value: Any) -> Any:
    if value is None:
        return None
    number = Decimal(str(_finite(value)))
    if number < 0 or number > MAX_AMOUNT:
        raise PydanticCustomError("out_of_range", f"must be from 0 to {MAX_AMOUNT} yuan")
    return number.quantize(Decimal("0.01"))


Role = Annotated[str, BeforeValidator(_label_or_code(ROLE_LABELS, "role"))]
Kind = Annotated[str, BeforeValidator(_label_or_code(KIND_LABELS, "kind"))]
Amount = Annotated[Decimal | None, BeforeValidator(_amount)]


class Party(BaseModel):
    """One party as the window registers it (numbers in full; they are stored encrypted)."""

    model_config = ConfigDict(extra="ignore")

    role: Role
    kind: Kind
    name: Annotated[str, BeforeValidator(_text), Field(min_length=1, max_length=100)]
    id_number: Text = Field(default=None, max_length=40)
    credit_code: Text = Field(default=None, max_length=40)
    phone: Text = Field(default=None, max_length=40)
    address: Text = Field(default=None, max_length=200)

    @field_validator("id_number")
    @classmethod
    def _id_number(cls, value: str | None) -> str | None:
        if not value:
            return None
        value = identity.normalise_id_number(value)
        problem = identity.id_number_error(value, today=datetime.now(SHANGHAI).date())
        if problem:
            raise PydanticCustomError("invalid_field", f"not a valid ID number: {problem}")
        return value

    @field_validator("credit_code")
    @classmethod
    def _credit_code(cls, value: str | None) -> str | None:
        if not value:
            return None
        value = value.replace(" ", "").upper()
        problem = identity.credit_code_error(value)
        if problem:
            raise PydanticCustomError("invalid_field",
                                      f"not a valid unified social credit code: {problem}")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if not value:
            return None
        problem = identity.phone_error(value)
        if problem:
            raise PydanticCustomError("invalid_field", problem)
        return value

    @model_validator(mode="after")
    def _fits_kind(self) -> "Party":
        if self.kind == "org" and self.id_number:
            raise PydanticCustomError("invalid_field_id_number",
                                      "an organisation has a credit_code, not an ID number")
        if self.kind == "person" and self.credit_code:
            raise PydanticCustomError("invalid_field_credit_code",
                                      "a person has an ID number, not a credit_code")
        return self


def _matter_type(value: Any) -> Any:
    value = _text(value)
    if value is None:
        return None
    code = normalise_type(value)
    if code not in MATTER_TYPES:
        allowed = "、".join(f"{c}/{TYPE_LABELS[c]}" for c in MATTER_TYPES)
        raise PydanticCustomError("unknown_type",
                                  f"the window registers matters; type is one of: {allowed}")
    return code


def _category(value: Any) -> Any:
    value = _text(value)
    if not value:
        return None
    code = normalise_category(value)
    if code is None:
        allowed = "、".join(f"{c}/{label}" for c, label in CATEGORY_LABELS.items())
        raise PydanticCustomError("invalid_field", f"unknown category {value!r}; one of: {allowed}")
    return code


def _channel(value: Any) -> Any:
    value = _text(value)
    if not value:
        return None
    code = normalise_channel(value)
    if code not in WINDOW_CHANNELS:
        allowed = "、".join(f"{c}/{CHANNEL_LABELS[c]}" for c in WINDOW_CHANNELS)
        raise PydanticCustomError("invalid_field", f"channel is one of: {allowed}")
    return code


def _when(value: Any) -> Any:
    value = _text(value)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PydanticCustomError(
            "invalid_field", "must be an ISO 8601 time, e.g. 2026-11-26T09:30:00+08:00") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=SHANGHAI)
    if parsed.year < 2000:
        raise PydanticCustomError("out_of_range", "must be after the year 2000")
    return parsed


MatterType = Annotated[str, BeforeValidator(_matter_type)]
Category = Annotated[str | None, BeforeValidator(_category)]
Channel = Annotated[str | None, BeforeValidator(_channel)]
When = Annotated[datetime | None, BeforeValidator(_when)]
LongText = Annotated[str | None, BeforeValidator(_text), Field(default=None, max_length=5000)]


class Details(BaseModel):
    """The fields a registration and a correction share (all optional here)."""

    model_config = ConfigDict(extra="ignore")

    title: Annotated[str | None, BeforeValidator(_text),
                     Field(default=None, min_length=1, max_length=200)] = None
    channel: Channel = None
    occurred_at: When = None
    severity: StrictInt | None = Field(default=None, ge=1, le=4)
    category: Category = None
    description: LongText = None
    summary: LongText = None
    request: Annotated[str | None, BeforeValidator(_text),
                       Field(default=None, max_length=2000)] = None
    people: StrictInt | None = Field(default=None, ge=0, le=10_000_000)
    amount: Amount = None
    risk: Literal["high", "medium", "low"] | None = None
    lon: Coord | None = Field(default=None, ge=-180, le=180)
    lat: Coord | None = Field(default=None, ge=-90, le=90)
    crs: Literal["wgs84", "cgcs2000", "gcj02", "bd09"] = "wgs84"
    grid: Text = Field(default=None, max_length=64)


class Registration(Details):
    """A matter as the window (or a township) registers it."""

    type: MatterType
    title: Annotated[str, BeforeValidator(_text), Field(min_length=1, max_length=200)]
    parties: list[Party] = Field(default_factory=list, max_length=MAX_PARTIES)
    closure: Literal["not_accepted", "on_the_spot"] | None = None
    note: Annotated[str | None, BeforeValidator(_text), Field(default=None, max_length=2000)] = None

    @model_validator(mode="after")
    def _complete(self) -> "Registration":
        if self.grid is None and (self.lon is None or self.lat is None):
            missing = "lon" if self.lon is None else "lat"
            raise PydanticCustomError("missing_field_" + missing,
                                      "give lon and lat, or grid when only the village is known")
        if self.closure and not self.note:
            raise PydanticCustomError("missing_field_note",
                                      "a closure needs a note: the reason and where to go "
                                      "instead, or what was done")
        return self

    @property
    def has_personal_numbers(self) -> bool:
        """Whether storing it needs the deployment's key."""
        return any(p.id_number or p.phone for p in self.parties)


class Closure(BaseModel):
    """`POST /matters/{case_no}/close`."""

    closure: Literal["not_accepted", "on_the_spot"]
    note: Annotated[str, BeforeValidator(_text), Field(min_length=1, max_length=2000)]


class Reveal(BaseModel):
    """`POST /matters/{case_no}/reveal`."""

    party: StrictInt = Field(ge=0)
    field: Literal["id_number", "phone"]
    reason: Annotated[str, BeforeValidator(_text), Field(min_length=1, max_length=500)]


_CODES = {"missing": "missing_field", "greater_than_equal": "out_of_range",
          "less_than_equal": "out_of_range", "string_too_long": "out_of_range",
          "too_long": "out_of_range", "string_too_short": "missing_field",
          "too_short": "missing_field", "literal_error": "invalid_field",
          "int_type": "invalid_field", "list_type": "invalid_field",
          "model_type": "invalid_field", "dict_type": "invalid_field"}


def path(loc) -> str:
    """('parties', 0, 'id_number') → 'parties[0].id_number'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse(model: type[BaseModel], raw: Any, *, now: datetime | None = None,
          max_future: timedelta = timedelta(minutes=5)):
    """Validate `raw` as `model`; raise DomainError naming the first bad field by its path."""
    if not isinstance(raw, dict):
        raise DomainError("invalid_field", "the body must be a JSON object")
    try:
        value = model.model_validate(raw)
    except ValidationError as exc:
        raise _domain_error(exc) from None
    when = getattr(value, "occurred_at", None)
    if now is not None and when is not None and when - now > max_future:
        raise DomainError("future_time", f"occurred_at {when.isoformat()} is in the future",
                          "occurred_at")
    return value


def _domain_error(exc: ValidationError) -> DomainError:
    err = exc.errors(include_url=False)[0]
    field = path(err["loc"]) or None
    kind = err["type"]
    for prefix in ("missing_field_", "invalid_field_"):
        if kind.startswith(prefix):
            sub = kind.removeprefix(prefix)
            field = f"{field}.{sub}" if field else sub
            return DomainError(prefix.rstrip("_"), err["msg"], field)
    code = kind if kind in ("unknown_type", "invalid_field", "out_of_range") else \
        _CODES.get(kind, "invalid_field")
    if kind in ("string_too_short", "too_short") and not (field or "").endswith(
            ("title", "name", "note", "reason")):
        code = "invalid_field"
    message = f"{field}: {err['msg']}" if field else err["msg"]
    if kind == "missing" or code == "missing_field":
        message = f"{field} is required"
    elif kind in ("string_too_long", "too_long"):
        limit = (err.get("ctx") or {}).get("max_length")
        message = f"{field} may be at most {limit} {'items' if kind == 'too_long' else 'characters'}"
    return DomainError(code, message, field)
