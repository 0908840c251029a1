import json
import zipfile

import geopandas
import numpy as np
import pytest
import shapely

from layers.crs import to_wgs84
from layers.importer import BoundaryImportError, ImportReport, read_boundaries

FIELDS = dict(code_field="CODE", name_field="NAME")


@pytest.fixture
def towns() -> geopandas.GeoDataFrame:
    """Return two adjacent township squares in the source schema of a GIS file."""
    return geopandas.GeoDataFrame(
        dict(CODE=["330101001", "330101002"], NAME=["甲镇", "乙街道"], PCODE=["330101", "330101"]),
        geometry=[shapely.box(120.0, 30.0, 120.1, 30.1), shapely.box(120.1, 30.0, 120.2, 30.1)],
        crs="EPSG:4326",
    )


def _check(report: ImportReport, level="township"):
    assert isinstance(report, ImportReport)
    assert list(report.units.columns) == ["code", "name", "level", "parent", "geometry"]
    assert report.units.crs.to_epsg() == 4326
    assert list(report.units.code) == ["330101001", "330101002"]
    assert list(report.units.name) == ["甲镇", "乙街道"]
    assert set(report.units.level) == {level}
    assert report.read == report.imported == 2
    assert report.repaired == [] and report.skipped == []


def test_geojson_with_parent_field(tmp_path, towns):
    path = tmp_path / "towns.geojson"
    towns.to_file(path)
    report = read_boundaries(path, level="township", parent_field="PCODE", **FIELDS)
    _check(report)
    assert list(report.units.parent) == ["330101", "330101"]
    towns.loc[1, "PCODE"] = None
    towns.to_file(path)
    report = read_boundaries(path, level="township", parent_field="PCODE", **FIELDS)
    assert report.units.parent.iloc[0] == "330101" and report.units.parent.iloc[1] is None
    assert report.units.geometry.iloc[0].equals(towns.geometry.iloc[0])


def test_shapefile_and_progress(tmp_path, towns):
    path = tmp_path / "towns.shp"
    towns.to_file(path, encoding="utf-8")
    calls = []
    report = read_boundaries(path, level="township", progress=lambda done, total: calls.append((done, total)), **FIELDS)
    _check(report)
    assert calls and calls[-1] == (2, 2)


@pytest.mark.parametrize("folder", ["", "data/"])
def test_zipped_shapefile(tmp_path, towns, folder):
    shp_dir = tmp_path / "shp"
    shp_dir.mkdir()
    towns.to_file(shp_dir / "towns.shp", encoding="utf-8")
    archive = tmp_path / "towns.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in shp_dir.iterdir():
            z.write(f, folder + f.name)
    _check(read_boundaries(archive, level="township", **FIELDS))


def test_geopackage_layer(tmp_path, towns):
    path = tmp_path / "units.gpkg"
    towns.to_file(path, layer="towns")
    county = geopandas.GeoDataFrame(dict(CODE=["330101"], NAME=["县"]), geometry=[shapely.box(120, 30, 120.2, 30.1)], crs=4326)
    county.to_file(path, layer="county")
    _check(read_boundaries(path, layer="towns", level="township", **FIELDS))
    report = read_boundaries(path, layer="county", level="county", parent_field=None, **FIELDS)
    assert list(report.units.code) == ["330101"] and report.units.parent.iloc[0] is None
    with pytest.raises(BoundaryImportError, match="several layers.*towns"):
        read_boundaries(path, level="township", **FIELDS)
    with pytest.raises(BoundaryImportError, match="no layer 'roads'"):
        read_boundaries(path, layer="roads", level="township", **FIELDS)


def test_topojson(tmp_path):
    topo = {
        "type": "Topology",
        "transform": {"scale": [0.001, 0.001], "translate": [120, 30]},
        "objects": {"towns": {"type": "GeometryCollection", "geometries": [
            {"type": "Polygon", "arcs": [[0, 1]], "properties": {"CODE": "330101001", "NAME": "甲镇"}},
            {"type": "Polygon", "arcs": [[-1, 2]], "properties": {"CODE": "330101002", "NAME": "乙街道"}},
        ]}},
        "arcs": [
            [[100, 0], [0, 100]],
            [[100, 100], [-100, 0], [0, -100], [100, 0]],
            [[100, 0], [100, 0], [0, 100], [-100, 0]],
        ],
    }
    path = tmp_path / "towns.topojson"
    path.write_text(json.dumps(topo, ensure_ascii=False), encoding="utf-8")
    report = read_boundaries(path, level="township", **FIELDS)
    _check(report)
    first, second = report.units.geometry
    assert first.normalize().equals(shapely.box(120.0, 30.0, 120.1, 30.1).normalize())
    assert second.normalize().equals(shapely.box(120.1, 30.0, 120.2, 30.1).normalize())


def test_gcj02_input_is_shifted_back(tmp_path, towns):
    path = tmp_path / "amap.geojson"
    towns.to_file(path)
    report = read_boundaries(path, level="township", crs="gcj02", **FIELDS)
    got = shapely.get_coordinates(report.units.geometry.iloc[0])
    expected = np.column_stack(to_wgs84(*shapely.get_coordinates(towns.geometry.iloc[0]).T, "gcj02"))
    assert np.allclose(got, expected)
    shift = np.abs(got - shapely.get_coordinates(towns.geometry.iloc[0]))
    assert shift.max() > 0.002  # hundreds of metres


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_projected_file_and_missing_crs(tmp_path, towns):
    path = tmp_path / "projected.gpkg"
    towns.to_crs(4549).to_file(path)
    report = read_boundaries(path, level="township", **FIELDS)
    assert np.allclose(report.units.total_bounds, towns.total_bounds, atol=1e-7)
    bare = tmp_path / "bare.shp"  # a Shapefile without .prj has no CRS at all
    towns.to_crs(4549).set_crs(None, allow_override=True).to_file(bare, encoding="utf-8")
    with pytest.raises(BoundaryImportError, match="no coordinate system"):
        read_boundaries(bare, level="township", **FIELDS)
    report = read_boundaries(bare, level="township", crs="EPSG:4549", **FIELDS)
    assert np.allclose(report.units.total_bounds, towns.total_bounds, atol=1e-7)
    # GeoJSON is WGS-84 by definition, so metres there need an explicit crs.
    metres = tmp_path / "metres.geojson"
    towns.to_crs(4549).set_crs(None, allow_override=True).to_file(metres)
    with pytest.raises(BoundaryImportError, match="not longitude/latitude"):
        read_boundaries(metres, level="township", **FIELDS)


def test_bow_tie_repaired_or_refused(tmp_path, towns):
    bow_tie = shapely.Polygon([(120.0, 30.0), (120.1, 30.1), (120.1, 30.0), (120.0, 30.1)])
    towns.loc[0, "geometry"] = bow_tie
    path = tmp_path / "bad.geojson"
    towns.to_file(path)
    report = read_boundaries(path, level="township", **FIELDS)
    assert report.repaired == ["330101001"]
    fixed = report.units.geometry.iloc[0]
    assert fixed.is_valid and fixed.geom_type == "MultiPolygon" and np.isclose(fixed.area, 0.005)
    with pytest.raises(BoundaryImportError) as err:
        read_boundaries(path, level="township", repair=False, **FIELDS)
    assert err.value.problems and "330101001" in err.value.problems[0]
    assert "330101001" in str(err.value)


def test_non_polygons_skipped(tmp_path, towns):
    towns.loc[1, "geometry"] = shapely.Point(120.15, 30.05)
    path = tmp_path / "mixed.gpkg"
    towns.to_file(path)
    report = read_boundaries(path, level="township", **FIELDS)
    assert report.read == 2 and report.imported == 1
    assert report.skipped[0][0] == "330101002" and "Point" in report.skipped[0][1]


def test_missing_field_lists_available(tmp_path, towns):
    path = tmp_path / "towns.geojson"
    towns.to_file(path)
    with pytest.raises(BoundaryImportError) as err:
        read_boundaries(path, level="township", code_field="XZQDM", name_field="NAME")
    message = str(err.value)
    assert "XZQDM" in message and "CODE" in message and "PCODE" in message


def test_empty_and_duplicate_codes(tmp_path, towns):
    rows = geopandas.GeoDataFrame(
        dict(CODE=["A", "A", None], NAME=["甲", "乙", "丙"]),
        geometry=[shapely.box(0, 0, 1, 1)] * 3, crs=4326,
    )
    path = tmp_path / "dups.geojson"
    rows.to_file(path)
    with pytest.raises(BoundaryImportError) as err:
        read_boundaries(path, level="township", **FIELDS)
    assert any("duplicate code A" in p for p in err.value.problems)
    assert any("row 3" in p for p in err.value.problems)


@pytest.mark.parametrize("content", [b'{"type": "FeatureCollection", "features": [ {"type": ', b"\x00\x01garbage"])
def test_corrupt_or_missing_file(tmp_path, content):
    path = tmp_path / "broken.geojson"
    path.write_bytes(content)
    with pytest.raises(BoundaryImportError) as err:
        read_boundaries(path, level="township", **FIELDS)
    assert "broken.geojson" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(BoundaryImportError, match="not found"):
        read_boundaries(tmp_path / "nope.shp", level="township", **FIELDS)
    bad_zip = tmp_path / "bad.zip"
    bad_zip.write_bytes(b"not a zip")
    with pytest.raises(BoundaryImportError, match="zip"):
        read_boundaries(bad_zip, level="township", **FIELDS)


def test_parent_by_containment(tmp_path, two_squares):
    parents = two_squares[two_squares.level == "township"]
    grids = geopandas.GeoDataFrame(
        dict(CODE=["G1", "G2", "G3", "G4"], NAME=["一村网格", "二村网格", "三村网格", "外村网格"]),
        geometry=[
            shapely.box(120.1, 30.1, 120.4, 30.4),            # inside T1
            shapely.box(121.2, 30.2, 121.6, 30.6),            # inside T2
            shapely.box(120.95, 30.0, 121.9, 30.2),           # mostly T2, straddles the border
            shapely.box(125.0, 30.0, 125.1, 30.1),            # outside every township
        ],
        crs=4326,
    )
    path = tmp_path / "grids.geojson"
    grids.to_file(path)
    report = read_boundaries(path, level="grid", parents=parents, **FIELDS)
    assert dict(zip(report.units.code, report.units.parent)) == {"G1": "T1", "G2": "T2", "G3": "T2"}
    assert report.skipped == [("G4", "no parent unit contains it")]
    assert report.read == 4 and report.imported == 3


def test_unknown_crs_is_an_import_error(tmp_path, towns):
    path = tmp_path / "towns.geojson"
    towns.to_file(path)
    with pytest.raises(BoundaryImportError, match="gcj02"):
        read_boundaries(path, level="township", crs="mars", **FIELDS)
