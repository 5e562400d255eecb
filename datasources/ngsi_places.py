"""Which city entity an NGSI entity's reading belongs to: a mapped code, the nearest station of
the right kind, or the district the entity lies in.

Distances are measured in metres in an azimuthal equidistant projection centred on the city (exact
along lines through the centre, well under 0.1 % off anywhere within a city's extent), so a road
segment given as a LineString is as near as its nearest point.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Transformer
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from core.city import City, StationInfo
from datasources.ngsi_payload import bare_id
from indicators.catalog import Indicator


class Locator:
    """Resolves (NGSI id, location, indicator) to a station or region code of the city."""

    def __init__(self, city: City, max_distance: float, entity_map: Mapping[str, str]):
        self.max_distance = max_distance
        self._stations = {s.code: s for s in city.stations}
        self._regions = {r.code: r for r in city.regions}
        known = self._stations.keys() | self._regions.keys()
        unknown = sorted(code for code in entity_map.values() if code not in known)
        if unknown:
            raise ValueError(f"entity_map: {unknown} are neither stations nor regions of the city")
        self._map = dict(entity_map)
        self._project = _projection(city)
        by_kind: dict[str, list[StationInfo]] = {}
        for station in city.stations:
            by_kind.setdefault(station.kind, []).append(station)
        self._kinds = {kind: self._points(stations) for kind, stations in by_kind.items()}
        self._areas = {
            level: [(r.code, _prepared(r.geometry)) for r in city.regions if r.level == level]
            for level in ("district", "city")
        }

    def mapped(self, ngsi_id: str, ngsi_type: str) -> str | None:
        """The code `entity_map` gives the entity, under its LD (urn) or its v2 id."""
        if ngsi_id in self._map:
            return self._map[ngsi_id]
        short = bare_id(ngsi_id, ngsi_type)
        return self._map.get(short, self._map.get(f"urn:ngsi-ld:{ngsi_type}:{short}"))

    def locate(
        self, ngsi_id: str, ngsi_type: str, geometry: BaseGeometry | None, indicator: Indicator
    ) -> str | None:
        """The entity a reading of `indicator` belongs to, at the indicator's level; None if none."""
        code = self.mapped(ngsi_id, ngsi_type)
        if code is not None:
            return self._lift(code, indicator.level)
        if geometry is None:
            return None
        if indicator.level == "station":
            nearest = self.nearest_station(geometry, indicator.station_kinds)
            if nearest is not None:
                return nearest
        return self.area(geometry, "city" if indicator.level == "city" else "district")

    def nearest_station(self, geometry: BaseGeometry, kinds: list[str]) -> str | None:
        """The nearest station of `kinds` within max_distance metres of the geometry."""
        projected = shapely.transform(geometry, self._to_metres)
        best: tuple[float, str] | None = None
        for kind in kinds:
            if kind not in self._kinds:
                continue
            codes, points = self._kinds[kind]
            distances = shapely.distance(projected, points)
            index = int(np.argmin(distances))
            if distances[index] <= self.max_distance and (best is None or distances[index] < best[0]):
                best = (float(distances[index]), codes[index])
        return best[1] if best is not None else None

    def area(self, geometry: BaseGeometry, level: str) -> str | None:
        """The region of `level` that holds the geometry (a line or area: a point on it)."""
        anchor = geometry if isinstance(geometry, Point) else geometry.representative_point()
        for code, polygon in self._areas[level]:
            if polygon.covers(anchor):
                return code
        return None

    def _lift(self, code: str, level: str) -> str:
        """A mapped station stands for its district (or city) for indicators of that level."""
        station = self._stations.get(code)
        if station is None or level == "station":
            return code
        if level == "district":
            return station.region_code
        region = self._regions[station.region_code]
        return region.parent_code or region.code

    def _points(self, stations: list[StationInfo]) -> tuple[list[str], NDArray[np.object_]]:
        x, y = self._project.transform([s.lon for s in stations], [s.lat for s in stations])
        return [s.code for s in stations], shapely.points(np.asarray(x), np.asarray(y))

    def _to_metres(self, coords: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = self._project.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])


def _projection(city: City) -> Transformer:
    centres = [r.center for r in city.regions if r.level == "city"] or [r.center for r in city.regions]
    if centres:
        lon, lat = centres[0]
    else:
        lon = float(np.mean([s.lon for s in city.stations])) if city.stations else 0.0
        lat = float(np.mean([s.lat for s in city.stations])) if city.stations else 0.0
    return Transformer.from_crs(
        "EPSG:4326", f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m", always_xy=True
    )


def _prepared(geometry: dict) -> BaseGeometry:
    polygon = shape(geometry)
    shapely.prepare(polygon)
    return polygon
