"""Report validation: every bad input names its field and code; good input is normalised."""

from datetime import datetime, timezone

import pytest

from command.errors import DomainError
from command.incidents.schemas import fingerprint, mask_phone, validate

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
GOOD = {"id": "r-1", "type": "dispute", "occurred_at": "2026-11-26T09:30:00+08:00",
        "lon": 120.2, "lat": 30.05, "title": "邻里纠纷"}


def err(raw) -> DomainError:
    with pytest.raises(DomainError) as info:
        validate(raw, now=NOW)
    return info.value


def test_good_report_is_normalised():
    report = validate({**GOOD, "type": "矛盾纠纷", "title": "  邻里纠纷 "}, now=NOW)
    assert report.type == "dispute"
    assert report.title == "邻里纠纷"
    assert report.severity == 4
    assert report.crs == "wgs84"


def test_time_without_zone_is_shanghai():
    report = validate({**GOOD, "occurred_at": "2026-11-26T09:30:00"}, now=NOW)
    assert report.occurred == datetime(2026, 11, 26, 1, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("change, code, field", [
    ({"id": None}, "missing_field", "id"),
    ({"id": ""}, "missing_field", "id"),
    ({"id": "x" * 129}, "out_of_range", "id"),
    ({"type": None}, "missing_field", "type"),
    ({"type": "火星事件"}, "unknown_type", "type"),
    ({"occurred_at": None}, "missing_field", "occurred_at"),
    ({"occurred_at": "yesterday"}, "invalid_field", "occurred_at"),
    ({"occurred_at": "2099-01-01T00:00:00+08:00"}, "future_time", "occurred_at"),
    ({"title": None}, "missing_field", "title"),
    ({"title": "x" * 201}, "out_of_range", "title"),
    ({"description": "x" * 5001}, "out_of_range", "description"),
    ({"severity": 7}, "out_of_range", "severity"),
    ({"severity": 0}, "out_of_range", "severity"),
    ({"severity": "high"}, "invalid_field", "severity"),
    ({"severity": True}, "invalid_field", "severity"),
    ({"lon": 200}, "out_of_range", "lon"),
    ({"lat": -91}, "out_of_range", "lat"),
    ({"lon": float("nan")}, "invalid_field", "lon"),
    ({"lon": float("inf")}, "invalid_field", "lon"),
    ({"lon": "120"}, "invalid_field", "lon"),
    ({"lat": None}, "missing_field", "lat"),
    ({"crs": "mars"}, "invalid_field", "crs"),
    ({"people": -1}, "out_of_range", "people"),
    ({"people": 2.5}, "invalid_field", "people"),
    ({"phone": "call me"}, "invalid_field", "phone"),
])
def test_bad_field_is_named(change, code, field):
    raw = {**GOOD, **change}
    raw = {k: v for k, v in raw.items() if v is not None}
    error = err(raw)
    assert (error.code, error.field) == (code, field), error.message
    assert error.message


def test_not_an_object():
    assert err(["x"]).code == "invalid_field"


def test_grid_alone_is_enough_for_a_place():
    raw = {k: v for k, v in GOOD.items() if k not in ("lon", "lat")}
    assert validate({**raw, "grid": "DEMO-T01-G01"}, now=NOW).grid == "DEMO-T01-G01"


def test_html_is_kept_as_text():
    report = validate({**GOOD, "title": "<script>alert(1)</script>"}, now=NOW)
    assert report.title == "<script>alert(1)</script>"


def test_fingerprint_ignores_label_vs_code_and_time_zone():
    a = validate(GOOD, now=NOW)
    b = validate({**GOOD, "type": "矛盾纠纷", "occurred_at": "2026-11-26T01:30:00Z"}, now=NOW)
    c = validate({**GOOD, "title": "另一件事"}, now=NOW)
    assert fingerprint(a, 120.2, 30.05) == fingerprint(b, 120.2, 30.05)
    assert fingerprint(a, 120.2, 30.05) != fingerprint(c, 120.2, 30.05)


@pytest.mark.parametrize("raw, shown", [
    ("13812341234", "138****1234"), ("138-1234-1234", "138****1234"), (None, None), ("123", "***"),
])
def test_phone_is_masked(raw, shown):
    assert mask_phone(raw) == shown
