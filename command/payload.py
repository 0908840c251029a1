"""What arrives on the wire, decoded strictly: JSON with a bounded depth, text a database can hold.

Both doors (REST bodies, Socket.IO packets) decode through `loads`, so a body nested a million
levels deep or an integer of 5,000 digits is a clear `invalid_json`, never a crash. `NaN` and
`1e999` decode (as Python's json does) and are refused by the field that gets them, so one bad
report in a list costs only itself. `bad_text` finds strings no database column should get
(NUL, which PostgreSQL refuses, and unpaired surrogates, which no UTF-8 encoder takes); the
fields that store text refuse them with `invalid_field`.

>>> loads(b'{"a": [1, 2]}')
{'a': [1, 2]}
>>> loads("[" * 40 + "]" * 40)  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
PayloadError: JSON is nested deeper than 32 levels
"""

from __future__ import annotations

import json
import re
from typing import Any

from command.errors import DomainError

MAX_DEPTH = 32  # containers inside containers; a report list is 2, a matter with parties 4
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


class PayloadError(ValueError):
    """Bytes that are not JSON this server takes (a ValueError, as decoders raise)."""

    def as_domain(self) -> DomainError:
        """The `invalid_json` error a client is answered with."""
        return DomainError("invalid_json", str(self))


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH, wrapper_levels: int = 0) -> Any:
    """Decode JSON with nesting ≤ `max_depth`.

    `wrapper_levels` are containers around the payload that do not count (a Socket.IO event's
    array around its argument).
    """
    allowed = max_depth + wrapper_levels
    try:
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        value = json.loads(data)
    except RecursionError:
        raise PayloadError(f"JSON is nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError as exc:
        raise PayloadError(f"body is not UTF-8: {exc.reason} at byte {exc.start}") from None
    except ValueError as exc:  # JSONDecodeError, and integers over Python's digit limit
        raise PayloadError(f"not valid JSON: {exc}") from None
    if depth(value, stop=allowed + 1) > allowed:
        raise PayloadError(f"JSON is nested deeper than {max_depth} levels")
    return value


def depth(value: Any, *, stop: int | None = None) -> int:
    """How many containers deep `value` is (a scalar is 0); counting stops past `stop`.

    >>> depth({"a": [1, {"b": []}]})
    4
    """
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if stop is not None and deepest >= stop:
            return deepest
        stack.extend((child, level + 1) for child in children
                     if isinstance(child, (dict, list)))
    return deepest


def bad_text(value: Any, path: str = "") -> str | None:
    """The path of the first string (or key) holding NUL or an unpaired surrogate, else None.

    >>> bad_text({"parties": [{"name": "a\\x00b"}]})
    'parties[0].name'
    """
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if _BAD_TEXT.search(item):
                return where or "body"
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                child_path = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and _BAD_TEXT.search(key):
                    return where or "body"
                stack.append((child, child_path))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in reversed(list(enumerate(item))))
    return None


def clean_text(value: str) -> bool:
    """Whether a string is free of NUL and unpaired surrogates."""
    return _BAD_TEXT.search(value) is None


def check_text(value: Any) -> None:
    """Raise `invalid_field` (naming the field) if any string in `value` cannot be stored."""
    where = bad_text(value)
    if where is not None:
        raise DomainError("invalid_field", f"{where}: text may not contain NUL characters or "
                                           "unpaired surrogates", where)


class StrictJSON:
    """A json-module stand-in for python-socketio: packets decode like REST bodies.

    The packet is the event's array, one level above its argument, hence the extra level.
    """

    @staticmethod
    def loads(data, **_kwargs):
        return loads(data, wrapper_levels=1)

    @staticmethod
    def dumps(obj, **kwargs):
        return json.dumps(obj, **kwargs)
