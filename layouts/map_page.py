"""/map: the whole window is the city map. Pure functions of the views below.

The page is built once per load: the boundaries, the layer control and its overlays, the legends and
the (closed or open) district panel. A refresh sends only what changed: the choropleth's `hideout`,
the stations, alerts and heat cells as small GeoJSON, and the panel's body. Districts are SVG shapes
a keyboard cannot reach, so the toolbar's district picker opens the same panel a click does.
"""

from __future__ import annotations

from dataclasses import dataclass

import dash_leaflet as dl
from dash import dcc, html

from core.i18n import t
from core.levels import STALE_COLOUR, level
from layouts.alerts import dropdown_labels
from layouts.components import level_badge
from layouts.maps import MapFrame, district_layer, level_legend, tile_layers

# Purple to pale pink: apart from the warning levels' blue, yellow, orange and red and from normal's
# green, so heat never reads as a warning. The style function and the legend both use it.
HEAT_RAMP = ("#6d28d9", "#c026d3", "#f472b6", "#fde7f3")


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class ChoiceGroup:
    """Indicators of one domain in the picker."""

    label: str
    choices: tuple[Choice, ...]


@dataclass(frozen=True)
class ChoroplethView:
    key: str
    name: str
    unit: str
    hideout: dict


@dataclass(frozen=True)
class StationLayerView:
    """One domain's stations: one overlay in the layer control."""

    domain: str
    name: str
    features: dict
    cluster: bool


@dataclass(frozen=True)
class AlertLayerView:
    features: dict
    unplaced: int


@dataclass(frozen=True)
class HeatView:
    """The density grid of one indicator; `what` says in words what the colour means."""

    name: str
    what: str
    peak_text: str
    features: dict
    cell: tuple[float, float]  # a cell's width and height in degrees


@dataclass(frozen=True)
class LayersView:
    stations: tuple[StationLayerView, ...]
    alerts: AlertLayerView
    heat: HeatView | None
    updated_text: str


@dataclass(frozen=True)
class VitalSign:
    key: str
    name: str
    value_text: str
    unit: str
    severity: int
    delayed_text: str | None
    href: str


@dataclass(frozen=True)
class VitalGroup:
    label: str
    signs: tuple[VitalSign, ...]


@dataclass(frozen=True)
class DistrictPanelView:
    code: str
    name: str
    groups: tuple[VitalGroup, ...]


@dataclass(frozen=True)
class MapPageView:
    live_key: list[int]  # (data version, minute): what the refresh compares with
    indicators: tuple[ChoiceGroup, ...]
    districts: tuple[Choice, ...]
    choropleth: ChoroplethView | None
    layers: LayersView
    panel: DistrictPanelView | None


def indicator_options(groups: tuple[ChoiceGroup, ...]) -> list[dict]:
    """The picker's options: each domain a disabled heading, its indicators under it."""
    options: list[dict] = []
    for group in groups:
        options.append(
            {
                "label": html.Span(group.label, className="option-group"),
                "value": f"domain:{group.label}",
                "disabled": True,
                "search": "",
            }
        )
        options += [
            {"label": c.label, "value": c.value, "search": f"{c.label} {c.value} {group.label}"}
            for c in group.choices
        ]
    return options


def choropleth_title(choropleth: ChoroplethView | None, lang: str) -> str:
    if choropleth is None:
        return t("map.legend.no_indicator", lang)
    return f"{choropleth.name} {choropleth.unit}".strip()


def heat_legend(heat: HeatView | None, lang: str) -> list:
    if heat is None:
        return [html.P(t("map.heat.unavailable", lang), className="legend-note")]
    ramp = f"linear-gradient(90deg, {', '.join(HEAT_RAMP)})"
    return [
        html.H3(heat.name),
        html.P(heat.what, className="legend-note"),
        html.Div(
            [
                html.Span("0"),
                html.I(className="heat-ramp", style={"background": ramp}, **{"aria-hidden": "true"}),
                html.Span(heat.peak_text),
            ],
            className="heat-scale",
        ),
    ]


def alerts_note(alerts: AlertLayerView, lang: str) -> str:
    return t("map.alerts.unplaced", lang, count=alerts.unplaced) if alerts.unplaced else ""


def _vital_sign(sign: VitalSign, lang: str) -> html.Li:
    when = [html.Span(sign.delayed_text, className="vital-delayed")] if sign.delayed_text else []
    return html.Li(
        [
            dcc.Link(sign.name, href=sign.href, className="vital-name"),
            html.Span(
                [
                    html.Span(sign.value_text, className="vital-value"),
                    html.Span(sign.unit, className="vital-unit"),
                ],
                className="vital-reading",
            ),
            level_badge(0 if sign.delayed_text else sign.severity, lang),
            *when,
        ],
        className=f"vital level-{sign.severity}" + (" stale" if sign.delayed_text else ""),
        style={"borderColor": STALE_COLOUR if sign.delayed_text else level(sign.severity).colour},
        **{"data-key": sign.key},
    )


def panel_body(panel: DistrictPanelView | None, lang: str) -> list:
    if panel is None:
        return []
    if not panel.groups:
        return [html.P(t("map.panel.empty", lang), className="empty")]
    body: list = []
    for group in panel.groups:
        body += [
            html.H3(group.label),
            html.Ul([_vital_sign(s, lang) for s in group.signs], className="vitals"),
        ]
    return body


def panel_title(panel: DistrictPanelView | None, lang: str) -> str:
    return t("map.panel.title", lang, district=panel.name) if panel else ""


def _panel(panel: DistrictPanelView | None, lang: str) -> html.Section:
    return html.Section(
        [
            html.Div(
                [
                    html.H2(panel_title(panel, lang), id="map-panel-title", tabIndex="-1"),
                    html.Button(
                        "×",
                        id="map-panel-close",
                        className="button small",
                        title=t("map.panel.close", lang),
                        **{"aria-label": t("map.panel.close", lang)},
                    ),
                ],
                className="panel-head",
            ),
            html.P(t("map.panel.hint", lang), className="hint"),
            html.Div(panel_body(panel, lang), id="map-panel-body", className="map-panel-body"),
        ],
        id="map-panel",
        className="map-panel panel",
        hidden=panel is None,
        role="region",
        **{"aria-labelledby": "map-panel-title"},
    )


def _station_overlay(layer: StationLayerView) -> dl.Overlay:
    return dl.Overlay(
        dl.Pane(
            dl.GeoJSON(
                id={"type": "map-stations", "domain": layer.domain},
                data=layer.features,
                cluster=layer.cluster,
                clusterToLayer={"variable": "citybrain.stationCluster"},
                zoomToBoundsOnClick=layer.cluster,
                pointToLayer={"variable": "citybrain.mapStationMarker"},
                onEachFeature={"variable": "citybrain.stationTooltip"},
                pane=f"stations-{layer.domain}",
            ),
            name=f"stations-{layer.domain}",
            style={"zIndex": 420},
        ),
        name=layer.name,
        checked=True,
    )


def selected_hideout(choropleth: ChoroplethView | None, district: str | None) -> dict:
    """The choropleth's colours plus the district whose panel is open (drawn with a bright edge)."""
    colours = choropleth.hideout if choropleth else {"districts": {}, "stale": STALE_COLOUR}
    return {**colours, "selected": district}


def _districts(frame: MapFrame, view: MapPageView) -> dl.GeoJSON:
    layer = district_layer(
        frame, selected_hideout(view.choropleth, view.panel.code if view.panel else None), "map-districts"
    )
    layer.style = {"variable": "citybrain.mapDistrictStyle"}
    return layer


def _overlays(frame: MapFrame, view: MapPageView, lang: str) -> list[dl.Overlay]:
    heat = view.layers.heat
    overlays = [
        dl.Overlay(
            dl.Pane(_districts(frame, view), name="districts", style={"zIndex": 405}),
            name=t("map.layer.districts", lang),
            checked=True,
        ),
        dl.Overlay(
            dl.Pane(
                dl.GeoJSON(
                    id="map-heat",
                    data=heat.features if heat else None,
                    pointToLayer={"variable": "citybrain.heatCell"},
                    style={"variable": "citybrain.heatStyle"},
                    hideout={"ramp": HEAT_RAMP, "cell": list(heat.cell) if heat else [0, 0]},
                    pane="heat",
                ),
                name="heat",
                style={"zIndex": 412},
            ),
            name=t("map.layer.heat", lang),
            checked=True,
        ),
    ]
    overlays += [_station_overlay(layer) for layer in view.layers.stations]
    overlays.append(
        dl.Overlay(
            dl.GeoJSON(
                id="map-alerts",
                data=view.layers.alerts.features,
                pointToLayer={"variable": "citybrain.alertMarker"},
                onEachFeature={"variable": "citybrain.alertTooltip"},
            ),
            name=t("map.layer.alerts", lang),
            checked=True,
        )
    )
    return overlays


def _map(frame: MapFrame, view: MapPageView, lang: str) -> dl.Map:
    overlays = _overlays(frame, view, lang)
    control = dl.LayersControl(
        overlays,
        id="map-layers",
        # dash-leaflet only keeps `overlays` current when it starts with the ones switched on
        overlays=[o.name for o in overlays if o.checked],
        collapsed=False,
        position="topright",
        sortLayers=False,
    )
    return dl.Map(
        [*tile_layers(frame), control],
        id="map-map",
        center=frame.centre,
        zoom=9,
        viewport={"bounds": frame.bounds, "transition": "fitBounds", "options": {"padding": [24, 24]}},
        zoomSnap=0.25,
        attributionControl=bool(frame.tile_url),
        className="map-canvas",
        style={"background": "transparent"},
    )


def _toolbar(view: MapPageView, lang: str) -> html.Div:
    chosen = view.choropleth.key if view.choropleth else None
    return html.Div(
        [
            html.Div(
                [
                    html.Label(t("map.picker.indicator", lang), htmlFor="map-indicator"),
                    dcc.Dropdown(
                        id="map-indicator",
                        options=indicator_options(view.indicators),
                        value=chosen,
                        clearable=False,
                        labels=dropdown_labels(lang),
                        maxHeight=420,
                        className="dropdown",
                    ),
                ],
                className="filter",
            ),
            html.Div(
                [
                    html.Label(t("map.picker.district", lang), htmlFor="map-district"),
                    dcc.Dropdown(
                        id="map-district",
                        options=[{"label": c.label, "value": c.value} for c in view.districts],
                        value=view.panel.code if view.panel else None,
                        placeholder=t("map.picker.district_none", lang),
                        labels=dropdown_labels(lang),
                        className="dropdown",
                    ),
                ],
                className="filter",
            ),
        ],
        className="map-toolbar panel",
        role="group",
        **{"aria-label": t("map.toolbar", lang)},
    )


def _legends(view: MapPageView, lang: str) -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    html.H3(choropleth_title(view.choropleth, lang), id="map-legend-title"),
                    level_legend(lang),
                ],
                id="map-legend-districts",
                className="legend-block",
                **{"data-layer": t("map.layer.districts", lang)},
            ),
            html.Div(
                heat_legend(view.layers.heat, lang),
                id="map-legend-heat",
                className="legend-block",
                **{"data-layer": t("map.layer.heat", lang)},
            ),
            html.P(alerts_note(view.layers.alerts, lang), id="map-alerts-note", className="legend-note"),
            html.P(
                t("map.updated", lang, time=view.layers.updated_text), id="map-updated", className="updated"
            ),
        ],
        className="map-legends panel",
        role="group",
        **{"aria-label": t("map.legend.label", lang)},
    )


def map_page(view: MapPageView, frame: MapFrame, lang: str, refresh_ms: int) -> html.Div:
    return html.Div(
        [
            dcc.Interval(id="map-tick", interval=refresh_ms),
            dcc.Store(id="map-version", data=view.live_key),
            dcc.Store(id="map-url"),
            dcc.Store(id="map-focused"),
            html.H2(t("map.title", lang), className="visually-hidden"),
            _map(frame, view, lang),
            _toolbar(view, lang),
            _legends(view, lang),
            _panel(view.panel, lang),
        ],
        id="map-page",
        className="map-page" + (" panel-open" if view.panel else ""),
    )
