"""Boundary import as a flow on the core: levels, parents by containment, the demo replaced."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import box

from command import config
from command.bus import InProcessBus
from command.core import Core
from command.units import service as units
from command.units.flows import import_boundaries


@pytest.fixture
def core(tmp_path):
    c = Core(config.load(data_dir=tmp_path / "data"), bus=InProcessBus())
    yield c
    c.close()


def write(tmp_path, name, rows, crs="EPSG:4326"):
    gdf = gpd.GeoDataFrame({"code": [r[0] for r in rows], "name": [r[1] for r in rows]},
                           geometry=[r[2] for r in rows], crs=crs)
    path = tmp_path / name
    gdf.to_file(path, driver="GeoJSON")
    return str(path)


def test_township_then_grids_by_containment(core, tmp_path):
    towns = write(tmp_path, "t.geojson", [("T1", "甲镇", box(0, 0, 1, 1)),
                                          ("T2", "乙街道", box(1, 0, 2, 1))])
    grids = write(tmp_path, "g.geojson", [("G1", "一村网格", box(0, 0, 0.5, 1)),
                                          ("G2", "二村网格", box(0.5, 0, 1, 1)),
                                          ("G3", "三社区网格", box(1, 0, 2, 1))])
    first = import_boundaries(core, towns, level="township", code_field="code", name_field="name")
    assert first.replaced_demo is True
    second = import_boundaries(core, grids, level="grid", code_field="code", name_field="name")
    assert second.replaced_demo is False and second.kept == 2
    with core.read() as s:
        tree = {u["code"]: u for u in units.get_all(s)}
    assert {c: tree[c]["parent"] for c in ("G1", "G2", "G3")} == {"G1": "T1", "G2": "T1",
                                                                  "G3": "T2"}
    assert core.locator().locate_one(0.7, 0.5) == ("T1", "G2")


def test_reimporting_townships_drops_stale_grids(core, tmp_path):
    towns = write(tmp_path, "t.geojson", [("T1", "甲镇", box(0, 0, 1, 1))])
    grids = write(tmp_path, "g.geojson", [("G1", "一村网格", box(0, 0, 1, 1))])
    import_boundaries(core, towns, level="township", code_field="code", name_field="name")
    import_boundaries(core, grids, level="grid", code_field="code", name_field="name")
    import_boundaries(core, towns, level="township", code_field="code", name_field="name")
    with core.read() as s:
        assert [u["code"] for u in units.get_all(s) if u["level"] != "dept"] == ["T1"]
        assert sum(u["level"] == "dept" for u in units.get_all(s)) == 13  # configuration stays
