"""Strict decoding of what arrives on the wire (command.payload)."""

import doctest

import pytest

from command import payload
from command.errors import DomainError
from command.payload import MAX_DEPTH, PayloadError, bad_text, check_text, depth, loads


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 1000, 100_000])
def test_too_deep_is_a_payload_error(levels):
    with pytest.raises(PayloadError, match=f"deeper than {MAX_DEPTH}"):
        loads("[" * levels + "]" * levels)


def test_at_the_limit_decodes():
    assert depth(loads("[" * MAX_DEPTH + "]" * MAX_DEPTH)) == MAX_DEPTH


def test_wrapper_levels_do_not_count():
    text = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    assert loads(text, wrapper_levels=1)
    with pytest.raises(PayloadError, match=f"deeper than {MAX_DEPTH} "):
        loads("[" + text + "]", wrapper_levels=1)


@pytest.mark.parametrize("data", [b"{", b"\xff\xfe{}", "1" * 5000, b"", "[1,]"])
def test_not_json(data):
    with pytest.raises(PayloadError):
        loads(data)


def test_nan_decodes_and_is_left_to_the_fields():
    assert loads('{"lon": NaN}')["lon"] != loads('{"lon": NaN}')["lon"]


def test_bad_text_names_the_path():
    assert bad_text({"a": ["ok", {"b": "x\x00"}]}) == "a[1].b"
    assert bad_text(["\ud800"]) == "[0]"
    assert bad_text({"k\x00": 1}) == "body"
    assert bad_text({"a": "中文 🙂 \u202e"}) is None
    with pytest.raises(DomainError) as info:
        check_text({"parties": [{"name": "a\x00"}]})
    assert (info.value.code, info.value.field) == ("invalid_field", "parties[0].name")


def test_the_docstring_examples_hold():
    result = doctest.testmod(payload)
    assert result.failed == 0 and result.attempted > 0
