"""Map pieces every page shares: the static frame (boundaries sent once per page load), the
district choropleth styled from a small `hideout`, and the level legend."""

from __future__ import annotations

from dataclasses import dataclass, field

import dash_leaflet as dl
from dash import html

from core.i18n import t
from core.levels import LEVELS, STALE_COLOUR


@dataclass(frozen=True)
class MapFrame:
    """The static part of a map, sent once per page load: boundaries, bounds, optional tiles.
    `district_bounds` holds each district's own box, so a page can zoom to one district without
    measuring its boundary again."""

    districts: dict
    bounds: list[list[float]]
    tile_url: str | None
    tile_attribution: str
    district_bounds: dict[str, list[list[float]]] = field(default_factory=dict)

    @property
    def centre(self) -> list[float]:
        (south, west), (north, east) = self.bounds
        return [(south + north) / 2, (west + east) / 2]


def tile_layers(frame: MapFrame) -> list:
    """An intranet tile server when the deployment has one; otherwise the boundaries stand alone."""
    if not frame.tile_url:
        return []
    return [dl.TileLayer(url=frame.tile_url, attribution=frame.tile_attribution)]


def district_layer(frame: MapFrame, hideout: dict, layer_id: str | dict) -> dl.GeoJSON:
    """The choropleth: colours come from `hideout` (see callbacks.views.district_hideout), so a
    refresh sends the hideout only, never the boundaries again."""
    return dl.GeoJSON(
        id=layer_id,
        data=frame.districts,
        hideout=hideout,
        style={"variable": "citybrain.districtStyle"},
        onEachFeature={"variable": "citybrain.districtTooltip"},
    )


def level_legend(lang: str) -> html.Div:
    """Normal and the four levels, plus the grey of a district with no fresh value."""
    entries = [(lvl.colour, t(lvl.name_key, lang)) for lvl in LEVELS]
    entries.append((STALE_COLOUR, t("map.legend.no_data", lang)))
    return html.Div(
        [html.Span([html.I(style={"background": colour}), text]) for colour, text in entries],
        className="map-legend",
    )
