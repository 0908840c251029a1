import geopandas
import numpy as np
import prcoords
import pytest
import shapely

from layers.crs import CRS_NAMES, geometry_to_wgs84, to_wgs84


def _metres(lon1, lat1, lon2, lat2):
    return np.array([
        prcoords.Coords(a, b).distance(prcoords.Coords(c, d))
        for a, b, c, d in zip(lat1, lon1, lat2, lon2)
    ])


@pytest.fixture
def wgs_points():
    rng = np.random.default_rng(7)
    return rng.uniform(75, 133, 300), rng.uniform(19, 52, 300)


@pytest.mark.parametrize("name, forward, inverse", [
    ("gcj02", prcoords.wgs_gcj, prcoords.gcj_wgs_bored),
    ("bd09", prcoords.wgs_bd, prcoords.bd_wgs_bored),
])
def test_inverse_matches_prcoords_and_round_trips(wgs_points, name, forward, inverse):
    lon, lat = wgs_points
    shifted = [forward((b, a)) for a, b in zip(lon, lat)]
    slon = np.array([s.lon for s in shifted])
    slat = np.array([s.lat for s in shifted])
    wlon, wlat = to_wgs84(slon, slat, name)
    reference = [inverse((b, a)) for a, b in zip(slon, slat)]
    assert _metres(wlon, wlat, [r.lon for r in reference], [r.lat for r in reference]).max() < 1.0
    assert _metres(wlon, wlat, lon, lat).max() < 0.01


def test_identity_for_wgs84_and_cgcs2000():
    for name in ("wgs84", "cgcs2000"):
        lon, lat = to_wgs84([120.1, 121.2], [30.0, 31.0], name)
        assert lon.dtype == float and list(lon) == [120.1, 121.2] and list(lat) == [30.0, 31.0]


def test_scalar_input_and_gcj_offset_size():
    lon, lat = to_wgs84(120.2, 30.1, "gcj02")
    assert lon.shape == () and 300 < _metres([lon], [lat], [120.2], [30.1])[0] < 700


def test_outside_china_unchanged_and_nan_kept():
    lon, lat = to_wgs84([-73.9, np.nan], [40.7, 30.0], "gcj02")
    assert lon[0] == -73.9 and lat[0] == 40.7 and np.isnan(lon[1])


def test_unknown_crs_names_allowed_values():
    with pytest.raises(ValueError) as err:
        to_wgs84(1, 2, "baidu")
    for name in CRS_NAMES:
        assert name in str(err.value)


def test_geometry_to_wgs84_from_gcj_and_epsg():
    square = shapely.box(120.2, 30.1, 120.21, 30.11)
    gdf = geopandas.GeoDataFrame(geometry=[square], crs="EPSG:4326")
    out = geometry_to_wgs84(gdf, "gcj02")
    assert out.crs.to_epsg() == 4326
    x, y = shapely.get_coordinates(out.geometry.iloc[0]).T
    ex, ey = to_wgs84(*shapely.get_coordinates(square).T, "gcj02")
    assert np.allclose(x, ex) and np.allclose(y, ey)
    projected = gdf.to_crs(4549)  # CGCS2000 / 3-degree Gauss-Kruger CM 120E
    back = geometry_to_wgs84(projected.set_crs(None, allow_override=True), "EPSG:4549")
    assert np.allclose(shapely.get_coordinates(back.geometry.iloc[0]), shapely.get_coordinates(square), atol=1e-7)
    assert geometry_to_wgs84(gdf.set_crs(4490, allow_override=True), "cgcs2000").crs.to_epsg() == 4326
