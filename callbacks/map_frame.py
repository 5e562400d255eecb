"""The static map frame of the configured city, built once per process for every map page."""

from __future__ import annotations

import weakref

from shapely.geometry import shape

from layouts.maps import MapFrame
from web.runtime import WebRuntime

Bounds = list[list[float]]

# One frame per live runtime, found by identity (a WebRuntime is not hashable); an entry is dropped
# when its runtime is collected, so an id is never mistaken for a later runtime's.
_frames: dict[int, MapFrame] = {}


def district_bounds(runtime: WebRuntime) -> dict[str, Bounds]:
    """[[south, west], [north, east]] of each district: what a page zooms to for one district."""
    found = {}
    for region in runtime.city.districts:
        west, south, east, north = shape(region.geometry).bounds
        found[region.code] = [[south, west], [north, east]]
    return found


def city_bounds(boxes: dict[str, Bounds]) -> Bounds:
    """The box around every district's box, so the map fits any city."""
    south = min(box[0][0] for box in boxes.values())
    west = min(box[0][1] for box in boxes.values())
    north = max(box[1][0] for box in boxes.values())
    east = max(box[1][1] for box in boxes.values())
    return [[south, west], [north, east]]


def map_frame(runtime: WebRuntime) -> MapFrame:
    """Boundaries are static: built on the first call for a runtime (every map page asks for it at
    start-up) and sent once per page load."""
    frame = _frames.get(id(runtime))
    if frame is None:
        frame = _frames[id(runtime)] = _build(runtime)
        weakref.finalize(runtime, _frames.pop, id(runtime), None)
    return frame


def _build(runtime: WebRuntime) -> MapFrame:
    features = [
        {
            "type": "Feature",
            "geometry": r.geometry,
            "properties": {"code": r.code, "name_zh": r.name.zh, "name_en": r.name.en},
        }
        for r in runtime.city.districts
    ]
    boxes = district_bounds(runtime)
    settings = runtime.settings
    return MapFrame(
        districts={"type": "FeatureCollection", "features": features},
        bounds=city_bounds(boxes),
        tile_url=settings.map.tile_url,
        tile_attribution=settings.map.tile_attribution,
        district_bounds=boxes,
    )
