"""Fixtures for layers tests: tiny hand-built units with an explicit CRS."""

import geopandas
import pytest
import shapely


@pytest.fixture
def two_squares() -> geopandas.GeoDataFrame:
    """Return a county of two unit-square townships, each split into two grids."""
    rows = [
        ("C", "县", "county", None, shapely.box(120, 30, 122, 31)),
        ("T2", "乙镇", "township", "C", shapely.box(121, 30, 122, 31)),
        ("T1", "甲镇", "township", "C", shapely.box(120, 30, 121, 31)),
        ("T1-G1", "甲一村网格", "grid", "T1", shapely.box(120, 30, 120.5, 31)),
        ("T1-G2", "甲二村网格", "grid", "T1", shapely.box(120.5, 30, 121, 31)),
        ("T2-G1", "乙一村网格", "grid", "T2", shapely.box(121, 30, 121.5, 31)),
        ("T2-G2", "乙二村网格", "grid", "T2", shapely.box(121.5, 30, 122, 31)),
    ]
    return geopandas.GeoDataFrame(
        [dict(code=c, name=n, level=lv, parent=p, geometry=g) for c, n, lv, p, g in rows],
        geometry="geometry", crs="EPSG:4326",
    )
