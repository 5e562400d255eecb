"""GCJ-02 <-> WGS84 conversion: boundaries from AMap must land on WGS84 tiles within centimetres."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon

from core.geo import gcj02_to_wgs84, transform_geometry, wgs84_to_gcj02

GEOD = Geod(ellps="WGS84")
ROUND_TRIP_TOLERANCE_DEG = 1e-6

CHINESE_CITIES = {
    "Beijing": (116.397, 39.909),
    "Shanghai": (121.47, 31.23),
    "Wuxi": (120.30, 31.57),
    "Guangzhou": (113.26, 23.13),
    "Chengdu": (104.07, 30.67),
    "Harbin": (126.63, 45.75),
    "Lhasa": (91.11, 29.65),
    "Urumqi": (87.62, 43.83),
}
FOREIGN_POINTS = {
    "London": (-0.1276, 51.5072),
    "New York": (-74.006, 40.7128),
    "Sydney": (151.2093, -33.8688),
    "Moscow": (37.6173, 55.7558),
}


def _offset_metres(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    return GEOD.inv(lon, lat, gcj_lon, gcj_lat)[2]


def test_known_point_beijing_offset() -> None:
    gcj_lon, gcj_lat = wgs84_to_gcj02(116.397, 39.909)
    assert 0.005 < gcj_lon - 116.397 < 0.007
    assert 0.0008 < gcj_lat - 39.909 < 0.002


def test_round_trip_over_china_grid() -> None:
    lon, lat = np.meshgrid(np.linspace(73.5, 134.5, 120), np.linspace(18.5, 53.0, 80))
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert back_lon.shape == lon.shape
    assert np.max(np.abs(back_lon - lon)) < ROUND_TRIP_TOLERANCE_DEG
    assert np.max(np.abs(back_lat - lat)) < ROUND_TRIP_TOLERANCE_DEG


@given(
    lon=st.floats(min_value=73.5, max_value=134.5),
    lat=st.floats(min_value=18.5, max_value=53.0),
)
def test_round_trip_property(lon: float, lat: float) -> None:
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert abs(back_lon - lon) < ROUND_TRIP_TOLERANCE_DEG
    assert abs(back_lat - lat) < ROUND_TRIP_TOLERANCE_DEG


def test_offset_magnitude_in_eastern_china_grid() -> None:
    lon, lat = np.meshgrid(np.linspace(100, 122, 60), np.linspace(22, 42, 60))
    offsets = _offset_metres(lon, lat)
    assert offsets.min() > 100
    assert offsets.max() < 700


@pytest.mark.parametrize("city", sorted(CHINESE_CITIES))
def test_offset_magnitude_at_cities(city: str) -> None:
    lon, lat = CHINESE_CITIES[city]
    assert 100 < _offset_metres(np.array(lon), np.array(lat)) < 700


@pytest.mark.parametrize("place", sorted(FOREIGN_POINTS))
def test_points_outside_china_unchanged(place: str) -> None:
    lon, lat = FOREIGN_POINTS[place]
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)


def test_mixed_array_only_shifts_chinese_points() -> None:
    lon = np.array([116.397, -0.1276])
    lat = np.array([39.909, 51.5072])
    wgs_lon, wgs_lat = gcj02_to_wgs84(lon, lat)
    assert wgs_lon[0] != lon[0] and wgs_lat[0] != lat[0]
    assert (wgs_lon[1], wgs_lat[1]) == (lon[1], lat[1])


def test_scalar_in_scalar_out() -> None:
    lon, lat = gcj02_to_wgs84(120.3, 31.57)
    assert isinstance(lon, float) and isinstance(lat, float)


def test_transform_geometry_matches_pointwise_conversion() -> None:
    shell = [(120.0, 31.0), (120.4, 31.0), (120.4, 31.4), (120.0, 31.4), (120.0, 31.0)]
    hole = [(120.1, 31.1), (120.2, 31.1), (120.2, 31.2), (120.1, 31.1)]
    geom = MultiPolygon([Polygon(shell, [hole]), Polygon([(119.8, 31.0), (119.9, 31.0), (119.9, 31.1)])])
    converted = transform_geometry(geom, gcj02_to_wgs84)
    assert converted.geom_type == "MultiPolygon"
    assert len(converted.geoms) == 2
    assert len(converted.geoms[0].interiors) == 1
    expected = [gcj02_to_wgs84(x, y) for x, y in shell]
    np.testing.assert_allclose(np.asarray(converted.geoms[0].exterior.coords), expected)
