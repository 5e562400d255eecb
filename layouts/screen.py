"""/screen: the wall display. A pure function of a ScreenView; the callbacks build the view."""

from __future__ import annotations

from dataclasses import dataclass, field

import dash_leaflet as dl
from dash import dcc, html

from core.i18n import t
from core.levels import LEVELS
from layouts.components import AlertView, KpiView, alert_list, kpi_card, level_badge


@dataclass(frozen=True)
class ScreenView:
    version: int
    kpis: list[KpiView]
    choropleth_name: str
    choropleth_unit: str
    district_hideout: dict
    stations: dict
    alerts: list[AlertView]
    counts: dict[int, int] = field(default_factory=dict)
    updated_text: str = ""


@dataclass(frozen=True)
class MapFrame:
    """The static part of the map, sent once per page load: boundaries, centre, optional tiles."""

    districts: dict
    bounds: list[list[float]]
    tile_url: str | None
    tile_attribution: str


def kpi_grid(view: ScreenView, lang: str) -> list:
    return [kpi_card(kpi, lang) for kpi in view.kpis]


def alert_counts(view: ScreenView, lang: str) -> list:
    return [
        html.Div(
            [
                level_badge(lvl.severity, lang),
                html.Span(str(view.counts.get(lvl.severity, 0)), className="count"),
            ],
            className="level-count",
        )
        for lvl in reversed(LEVELS[1:])
    ]


def _map(frame: MapFrame, view: ScreenView) -> dl.Map:
    layers: list = []
    if frame.tile_url:
        layers.append(dl.TileLayer(url=frame.tile_url, attribution=frame.tile_attribution))
    layers += [
        dl.Pane(
            dl.GeoJSON(
                id="screen-districts",
                data=frame.districts,
                hideout=view.district_hideout,
                style={"variable": "citybrain.districtStyle"},
                onEachFeature={"variable": "citybrain.districtTooltip"},
            ),
            name="districts",
            style={"zIndex": 410},
        ),
        dl.Pane(
            dl.GeoJSON(
                id="screen-stations",
                data=view.stations,
                pointToLayer={"variable": "citybrain.stationMarker"},
                onEachFeature={"variable": "citybrain.stationTooltip"},
            ),
            name="stations",
            style={"zIndex": 420},
        ),
    ]
    return dl.Map(
        layers,
        center=[(frame.bounds[0][0] + frame.bounds[1][0]) / 2, (frame.bounds[0][1] + frame.bounds[1][1]) / 2],
        zoom=9,
        viewport={"bounds": frame.bounds, "transition": "fitBounds", "options": {"padding": [12, 12]}},
        zoomSnap=0.25,
        attributionControl=bool(frame.tile_url),
        className="screen-map",
        id="screen-map",
        style={"background": "transparent"},
    )


def screen(view: ScreenView, frame: MapFrame, lang: str, refresh_ms: int) -> html.Div:
    return html.Div(
        [
            dcc.Interval(id="screen-tick", interval=refresh_ms),
            dcc.Store(id="screen-version", data=view.version),
            html.Section(
                [
                    html.H2(t("screen.vital_signs", lang)),
                    html.Div(kpi_grid(view, lang), id="screen-kpis", className="kpi-grid"),
                ],
                className="screen-left panel",
                **{"aria-label": t("screen.vital_signs", lang)},
            ),
            html.Section(
                [
                    html.H2(
                        [
                            t("screen.map_title", lang),
                            " · ",
                            html.Span(
                                f"{view.choropleth_name} {view.choropleth_unit}".strip(),
                                id="screen-map-indicator",
                            ),
                        ]
                    ),
                    _map(frame, view),
                    html.Div(
                        [
                            html.Span([html.I(style={"background": lvl.colour}), t(lvl.name_key, lang)])
                            for lvl in LEVELS
                        ],
                        className="map-legend",
                    ),
                ],
                className="screen-centre panel",
            ),
            html.Section(
                [
                    html.H2(t("screen.active_alerts", lang)),
                    html.Div(alert_counts(view, lang), id="screen-alert-counts", className="level-counts"),
                    html.Div(
                        alert_list(view.alerts, lang),
                        id="screen-alerts",
                        className="alerts-box",
                        **{"aria-live": "polite"},
                    ),
                    html.Div(
                        t("screen.updated", lang, time=view.updated_text),
                        id="screen-updated",
                        className="updated",
                    ),
                ],
                className="screen-right panel",
            ),
        ],
        className="screen",
    )
