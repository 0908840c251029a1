import numpy as np
import pytest

from layers.demo import demo_county
from layers.locate import Locator


def test_inside_outside_nan(two_squares):
    loc = Locator(two_squares)
    result = loc.locate([120.25, 121.75, 119.0, np.nan, np.inf], [30.5, 30.5, 30.5, 30.5, 30.5])
    assert list(result.township) == ["T1", "T2", None, None, None]
    assert list(result.grid) == ["T1-G1", "T2-G2", None, None, None]
    assert list(result.outside) == [False, False, True, True, True]
    assert result.township.dtype == object and result.outside.dtype == bool
    assert loc.locate_one(float("nan"), 30.0) == (None, None)
    assert loc.locate_one(119.0, 30.5) == (None, None)


def test_shared_edge_smallest_code_wins(two_squares):
    # Rows are shuffled so the answer cannot come from row order.
    for seed in range(5):
        loc = Locator(two_squares.sample(frac=1, random_state=seed))
        result = loc.locate([121.0, 121.0, 120.5], [30.5, 31.0, 30.25])
        assert list(result.township) == ["T1", "T1", "T1"]
        assert list(result.grid) == ["T1-G2", "T1-G2", "T1-G1"]
        assert loc.locate_one(121.0, 30.5) == ("T1", "T1-G2")


def test_grid_without_township_gets_parent(two_squares):
    units = two_squares[two_squares.code != "T2"]
    loc = Locator(units)
    assert loc.locate_one(121.75, 30.5) == (None, "T2-G2")  # parent T2 is not a known township
    units = two_squares.copy()
    units.loc[units.code == "T2", "geometry"] = units.loc[units.code == "T2", "geometry"].translate(5, 0)
    loc = Locator(units)
    assert loc.locate_one(121.75, 30.5) == ("T2", "T2-G2")
    result = loc.locate([121.75], [30.5])
    assert result.township[0] == "T2" and not result.outside[0]


def test_vectorised_equals_single_on_demo():
    units = demo_county()
    loc = Locator(units)
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = units.total_bounds
    lon = rng.uniform(minx, maxx, 3000)
    lat = rng.uniform(miny, maxy, 3000)
    result = loc.locate(lon, lat)
    for i in range(len(lon)):
        assert loc.locate_one(lon[i], lat[i]) == (result.township[i], result.grid[i])
    found = result.grid != None  # noqa: E711
    assert found.mean() > 0.5
    assert all(loc.unit(g)["parent"] == t for g, t in zip(result.grid[found], result.township[found]))


def test_point_in_unit_and_lookup(two_squares):
    loc = Locator(two_squares)
    for code in ("T1", "T2-G1"):
        lon, lat = loc.point_in(code)
        assert code in loc.locate_one(lon, lat)
    assert loc.point_in("T1") == loc.point_in("T1")
    assert loc.unit("T1-G1") == dict(code="T1-G1", name="甲一村网格", level="grid", parent="T1")
    assert loc.unit("C")["parent"] is None
    assert loc.has("T2") and not loc.has("nope")
    with pytest.raises(KeyError):
        loc.unit("nope")
    with pytest.raises(KeyError):
        loc.point_in("nope")


def test_empty_input(two_squares):
    result = Locator(two_squares).locate([], [])
    assert len(result.township) == len(result.grid) == len(result.outside) == 0


def test_bench_script_runs():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "bench_locate.py"
    spec = importlib.util.spec_from_file_location("bench_locate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.run(n=20_000, repeat=1)
    assert result["points"] == 20_000 and result["points_per_s"] > 0 and 0.4 < result["inside_share"] < 0.95
