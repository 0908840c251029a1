"""Logs: one line per event on stderr, as text or JSON lines (`CMDCENTER_LOG_FORMAT=json`).

Every line carries `time`, `level`, `event`, `request_id`, `user`, `feed`, `path`, `status` and
`duration_ms` (null where they do not apply); the web layer puts the request's values in
`context` for the lines logged while it handles a request. No personal data goes into a line:
the code logs no reporter or party names, and whatever slips through in an exception's text has
its phone and ID numbers masked here (`redact`).

>>> redact("call 13812341234 or 330102199001011234")
'call 138****1234 or 330102********1234'
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import datetime

FORMATS = ("text", "json")
FIELDS = ("request_id", "user", "feed", "path", "status", "duration_ms")

# the request (or Socket.IO event) being handled by this thread: {field: value}
context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("cmdcenter_log_context",
                                                                      default=None)

_PHONE = re.compile(r"(?<![0-9A-Za-z])(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9A-Za-z])")
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])([0-9]{6})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
_LANDLINE = re.compile(r"(?<![0-9A-Za-z])(0[0-9]{2,3}-?)[0-9]{3,4}([0-9]{4})(?![0-9A-Za-z])")


def redact(text: str) -> str:
    """Mask mobile phones, 18-character ID numbers and landlines in a text."""
    text = _ID_NUMBER.sub(r"\1********\2", text)
    text = _PHONE.sub(r"\1****\2", text)
    return _LANDLINE.sub(r"\1****\2", text)


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")


def _fields(record: logging.LogRecord) -> dict:
    found = dict(context.get() or {})
    for name in FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            found[name] = value
    if isinstance(found.get("path"), str):
        found["path"] = redact(found["path"])
    return {name: found.get(name) for name in FIELDS}


def _event(record: logging.LogRecord, formatter: logging.Formatter) -> tuple[str, str | None]:
    event = record.getMessage()
    error = None
    if record.exc_info:
        error = formatter.formatException(record.exc_info)
    elif record.exc_text:
        error = record.exc_text
    return redact(event), (redact(error) if error else None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        event, error = _event(record, self)
        line = {"time": _time(record), "level": record.levelname, "event": event,
                **_fields(record), "logger": record.name}
        if error:
            line["error"] = error
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: event key=value …` on one line (newlines escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        event, error = _event(record, self)
        parts = [_time(record), record.levelname, f"{record.name}:", event]
        parts += [f"{k}={v}" for k, v in _fields(record).items() if v is not None]
        if error:
            parts.append(f"error={error}")
        return " ".join(parts).replace("\r", "").replace("\n", "\\n")


def configure(level: str | None = None, fmt: str | None = None, stream=None,
              logger: logging.Logger | None = None) -> None:
    """Log to stderr (or `stream`) at `level` (default WARNING) in `fmt` (text or json).

    `logger` (default: the root logger) gets this one handler instead of its others.
    """
    from command.config import ConfigError

    fmt = (fmt or "text").strip().lower()
    if fmt not in FORMATS:
        raise ConfigError(f"CMDCENTER_LOG_FORMAT must be text or json, got {fmt!r}")
    level_name = (level or "WARNING").strip().upper()
    if not isinstance(logging.getLevelName(level_name), int):
        raise ConfigError(f"CMDCENTER_LOG must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logger or logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_name)
    if logger is not None:
        return
    # the web layer logs each request itself (path without the query string); Werkzeug's own
    # access lines would repeat it with the query string
    logging.getLogger("werkzeug").setLevel(max(logging.WARNING, root.level))
