"""Coordinate conversion between GCJ-02 and WGS84.

Chinese map providers (AMap, Tencent) publish coordinates in GCJ-02, the
state-mandated obfuscated datum, which is offset by a few hundred metres from
WGS84. Web map tiles such as OpenStreetMap, and GPS sensors, use WGS84, so
boundary data from those providers must be converted before it is drawn or
intersected with sensor positions. The forward transform is the well-known
published Krasovsky-ellipsoid formula; it has no closed-form inverse, so the
inverse is found by fixed-point iteration.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry.base import BaseGeometry

_SEMI_MAJOR_AXIS = 6378245.0
_ECCENTRICITY_SQ = 0.00669342162296594323
_CHINA_LON = (72.004, 137.8347)
_CHINA_LAT = (0.8293, 55.8271)
_INVERSE_TOLERANCE_DEG = 1e-7
_INVERSE_MAX_ITERATIONS = 50

Coordinates = tuple[NDArray[np.float64] | float, NDArray[np.float64] | float]
CoordinateFunction = Callable[[ArrayLike, ArrayLike], Coordinates]


def _in_china(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.bool_]:
    """GCJ-02 only applies inside this rough mainland box; elsewhere it equals WGS84."""
    return (lon >= _CHINA_LON[0]) & (lon <= _CHINA_LON[1]) & (lat >= _CHINA_LAT[0]) & (lat <= _CHINA_LAT[1])


def _lat_offset(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _lon_offset(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _gcj_delta(
    lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """GCJ-02 minus WGS84 in degrees at a WGS84 position, ignoring the China mask.

    Callers apply the mask themselves so the inverse iteration never jumps
    across the mask edge and oscillates.
    """
    x, y = lon - 105.0, lat - 35.0
    rad_lat = np.radians(lat)
    magic = 1.0 - _ECCENTRICITY_SQ * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (_lat_offset(x, y) * 180.0) / (
        (_SEMI_MAJOR_AXIS * (1.0 - _ECCENTRICITY_SQ)) / (magic * sqrt_magic) * np.pi
    )
    d_lon = (_lon_offset(x, y) * 180.0) / (_SEMI_MAJOR_AXIS / sqrt_magic * np.cos(rad_lat) * np.pi)
    return d_lon, d_lat


def _as_arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    lon_arr, lat_arr = np.broadcast_arrays(
        np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    )
    return lon_arr, lat_arr


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Coordinates:
    """Shift WGS84 positions to GCJ-02, e.g. to compare GPS fixes with AMap data.

    Accepts scalars or arrays; returns the same shape (0-d input gives floats).
    """
    lon_arr, lat_arr = _as_arrays(lon, lat)
    d_lon, d_lat = _gcj_delta(lon_arr, lat_arr)
    inside = _in_china(lon_arr, lat_arr)
    return np.where(inside, lon_arr + d_lon, lon_arr)[()], np.where(inside, lat_arr + d_lat, lat_arr)[()]


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Coordinates:
    """Recover WGS84 from GCJ-02 so AMap boundaries line up with WGS84 tiles and sensors.

    Iterates the forward transform until every point's residual is below 1e-7
    degrees (about 1 cm). Points outside mainland China are returned unchanged.
    Accepts scalars or arrays; returns the same shape (0-d input gives floats).
    """
    gcj_lon, gcj_lat = _as_arrays(lon, lat)
    wgs_lon, wgs_lat = gcj_lon.copy(), gcj_lat.copy()
    for _ in range(_INVERSE_MAX_ITERATIONS):
        d_lon, d_lat = _gcj_delta(wgs_lon, wgs_lat)
        err_lon = wgs_lon + d_lon - gcj_lon
        err_lat = wgs_lat + d_lat - gcj_lat
        wgs_lon -= err_lon
        wgs_lat -= err_lat
        residual = max(np.max(np.abs(err_lon), initial=0.0), np.max(np.abs(err_lat), initial=0.0))
        if residual < _INVERSE_TOLERANCE_DEG:
            break
    else:
        raise ArithmeticError("GCJ-02 inverse did not converge")
    inside = _in_china(gcj_lon, gcj_lat)
    return np.where(inside, wgs_lon, gcj_lon)[()], np.where(inside, wgs_lat, gcj_lat)[()]


def transform_geometry(geom: BaseGeometry, func: CoordinateFunction) -> BaseGeometry:
    """Apply a vectorised (lon, lat) -> (lon, lat) function to every vertex of a geometry.

    One call over all coordinates keeps conversion of detailed boundaries fast
    and preserves the geometry's structure (rings, parts, holes).
    """

    def _apply(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        new_lon, new_lat = func(coords[:, 0], coords[:, 1])
        return np.column_stack([new_lon, new_lat])

    return shapely.transform(geom, _apply)
