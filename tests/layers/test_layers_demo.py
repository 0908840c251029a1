import re

import numpy as np
import shapely

from layers.demo import DEMO_COUNTY_CODE, demo_county


def test_counts_levels_and_parents():
    units = demo_county()
    assert list(units.columns) == ["code", "name", "level", "parent", "geometry"]
    assert units.crs.to_epsg() == 4326
    county = units[units.level == "county"]
    towns = units[units.level == "township"]
    grids = units[units.level == "grid"]
    assert len(county) == 1 and county.iloc[0].code == DEMO_COUNTY_CODE and county.iloc[0].parent is None
    assert len(towns) >= 10 and len(grids) >= 150
    assert set(towns.parent) == {DEMO_COUNTY_CODE}
    assert set(grids.parent) == set(towns.code)


def test_names_and_codes():
    units = demo_county()
    assert units.code.is_unique and units.name.is_unique
    assert not units.code.str.fullmatch(r"\d+").any()
    assert units.code.str.startswith("DEMO").all()
    towns = units[units.level == "township"]
    grids = units[units.level == "grid"]
    assert all(re.search(r"(镇|街道)$", n) for n in towns.name)
    assert all(re.search(r"(村|社区)网格$", n) for n in grids.name)


def test_tiling_is_exact():
    units = demo_county()
    geoms = dict(zip(units.code, units.geometry))
    county = geoms[DEMO_COUNTY_CODE]
    towns = units[units.level == "township"]
    assert np.isclose(shapely.area(towns.geometry.values).sum(), county.area, rtol=1e-9)
    assert shapely.symmetric_difference(shapely.union_all(towns.geometry.values), county).area < 1e-12
    for code, grids in units[units.level == "grid"].groupby("parent"):
        town = geoms[code]
        assert np.isclose(shapely.area(grids.geometry.values).sum(), town.area, rtol=1e-9)
        union = shapely.union_all(grids.geometry.values)
        assert shapely.symmetric_difference(union, town).area < 1e-12
    assert shapely.is_valid(units.geometry.values).all()
    assert set(units.geom_type) == {"Polygon"}


def test_shapes_are_not_rectangles_and_light():
    units = demo_county()
    rectangularity = shapely.area(units.geometry.values) / shapely.area(shapely.envelope(units.geometry.values))
    assert (rectangularity < 0.98).mean() > 0.9
    assert shapely.get_num_coordinates(units.geometry.values).sum() < 5000
    minx, miny, maxx, maxy = units.total_bounds
    assert 119.9 < minx < maxx < 120.55 and 29.85 < miny < maxy < 30.25


def test_deterministic_and_copied():
    a = demo_county()
    a.loc[0, "name"] = "changed"
    b = demo_county()
    assert b.loc[0, "name"] != "changed"
    assert b.equals(demo_county())
    assert shapely.equals_exact(b.geometry.values, demo_county().geometry.values, 0).all()
