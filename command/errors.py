"""Domain errors, turned into HTTP statuses and Socket.IO acks at the edge."""

from __future__ import annotations

# error code -> HTTP status
HTTP_STATUS = {
    "invalid_json": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "rate_limited": 429,
    "missing_field": 422,
    "invalid_field": 422,
    "unknown_type": 422,
    "out_of_range": 422,
    "future_time": 422,
    "internal": 500,
    "unavailable": 503,
}


class DomainError(Exception):
    """An error a client or a person must see as {code, message, field}."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def as_dict(self) -> dict:
        """The error object of the wire protocol."""
        out = {"code": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out

    @property
    def http_status(self) -> int:
        """The REST status for this error."""
        return HTTP_STATUS.get(self.code, 400)


class NotFound(Exception):
    """A named thing (feed, unit, incident) does not exist."""


class Forbidden(DomainError):
    """The user may not do this (outside their role or scope)."""

    def __init__(self, message: str = "not allowed for this user"):
        super().__init__("forbidden", message)
