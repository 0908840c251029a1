"""Alert thresholds: defaults load, a file and explicit values override, bad values are named."""

import pytest

from alerts.config import load_config


def test_defaults_load_every_section():
    cfg = load_config()
    assert cfg.severity.red_max == 1 and cfg.severity.orange_max == 2
    assert cfg.mass_gathering.reports >= 2
    assert cfg.spike.alpha == pytest.approx(0.05 / 24)
    assert cfg.repeat_place.types == ("dispute", "petition")
    assert cfg.feed_silence.quantile == 0.99


def test_file_then_explicit_values_override(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text("[spike]\nwindow_minutes = 30\nweeks = 6\n\n[mass_gathering]\npeople = 50\n",
                    encoding="utf-8")
    cfg = load_config(path, overrides={"spike": {"weeks": 8}})
    assert cfg.spike.window_minutes == 30
    assert cfg.spike.windows_per_day == 48
    assert cfg.spike.weeks == 8  # explicit beats the file
    assert cfg.mass_gathering.people == 50
    assert cfg.mass_gathering.radius_m == load_config().mass_gathering.radius_m  # untouched


@pytest.mark.parametrize(("overrides", "key"), [
    ({"spike": {"weeks": 0}}, "spike.weeks"),
    ({"spike": {"weeks": "4"}}, "spike.weeks"),
    ({"spike": {"false_alarm_per_cell_day": -0.1}}, "spike.false_alarm_per_cell_day"),
    ({"spike": {"method": "gauss"}}, "spike.method"),
    ({"spike": {"trend_p": 1.5}}, "spike.trend_p"),
    ({"spike": {"prior_weeks": -1}}, "spike.prior_weeks"),
    ({"spike": {"windw_minutes": 30}}, "spike.windw_minutes"),
    ({"mass_gathering": {"people_red": 10}}, "mass_gathering.people_red"),
    ({"mass_gathering": {"cluster_level": "purple"}}, "mass_gathering.cluster_level"),
    ({"mass_gathering": {"radius_m": True}}, "mass_gathering.radius_m"),
    ({"repeat_place": {"types": ["dispute", "quarrel"]}}, "repeat_place.types"),
    ({"repeat_place": {"count_orange": 2}}, "repeat_place.count_orange"),
    ({"feed_silence": {"quantile": 1.0}}, "feed_silence.quantile"),
    ({"severity": {"orange_max": 5}}, "severity.orange_max"),
    ({"alarms": {"x": 1}}, "alarms"),
])
def test_bad_values_raise_naming_the_key(overrides, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        load_config(overrides=overrides)


def test_bad_value_in_a_file_names_the_key(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text("[feed_silence]\nfloor_seconds = 0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"feed_silence\.floor_seconds"):
        load_config(path)
