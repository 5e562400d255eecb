"""/screen: the wall display. A pure function of a ScreenView; callbacks/screen.py builds the view.

The page is one grid sized to the viewport (rem units; the root font follows the screen height),
so the 1920x1080 design fills 3840x2160 exactly. The map's static parts (boundaries, station
points) are sent once with the page; every refresh changes only small `hideout` objects and
panel contents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dash_leaflet as dl
from dash import dcc, html

from core.i18n import t
from core.levels import LEVELS, STALE_COLOUR, level
from layouts.components import AlertView, KpiView, gauge, kpi_card, level_badge
from layouts.maps import MapFrame, district_layer, tile_layers
from layouts.sparkline import sparkline


@dataclass(frozen=True)
class ReadingView:
    """One city-wide value in a small space (weather, a sub-index, a sparkline's figure)."""

    key: str
    name: str
    unit: str
    value_text: str
    severity: int
    delayed_minutes: int | None = None
    missing: bool = False

    @property
    def stale(self) -> bool:
        return self.missing or self.delayed_minutes is not None


@dataclass(frozen=True)
class SourceStatus:
    id: str
    state: str  # "live", "down" or "waiting" (no reading yet)
    text: str


@dataclass(frozen=True)
class FreshnessView:
    state: str  # "live", "down", "waiting" or "none" (no source configured)
    text: str
    sources: tuple[SourceStatus, ...] = ()

    @property
    def outages(self) -> tuple[SourceStatus, ...]:
        return tuple(s for s in self.sources if s.state == "down")


@dataclass(frozen=True)
class GaugeView:
    city: ReadingView
    fraction: float | None  # where the value lies on the index's scale, 0-1
    bands: tuple[tuple[float, float, str], ...]  # (from, to, colour) as fractions of the scale
    domains: tuple[ReadingView, ...]
    domain_fractions: tuple[float | None, ...]


@dataclass(frozen=True)
class TrendView:
    reading: ReadingView
    values: tuple[float | None, ...]
    label: str  # the image's accessible text


@dataclass(frozen=True)
class TickerItem:
    id: int
    severity: int
    time_text: str
    text: str


@dataclass(frozen=True)
class MapIndicator:
    """What the map shows for one indicator of the playlist: title, district colours, legend."""

    key: str
    title: str
    districts: dict
    legend: tuple[tuple[str, str], ...]  # (colour, label)


@dataclass(frozen=True)
class Step:
    indicator: str | None
    page: str | None
    milliseconds: int


@dataclass(frozen=True)
class ScreenView:
    kpis: tuple[KpiView, ...]
    weather: tuple[ReadingView, ...]
    freshness: FreshnessView
    gauge: GaugeView | None
    counts: dict[int, int]
    ticker: tuple[TickerItem, ...]
    trends: tuple[TrendView, ...]
    maps: dict[str, MapIndicator]
    steps: tuple[Step, ...]
    station_levels: dict[str, int]  # station's position in the layer -> level; -1: no current data
    alert_markers: dict  # GeoJSON points: open alerts at their station or district centre
    alerts: tuple[AlertView, ...]
    updated_text: str = ""
    pages: dict[str, str] = field(default_factory=dict)  # page -> its title


STATION_PANE, ALERT_PANE = "stations", "alerts"


def reading_value(reading: ReadingView, lang: str, class_name: str) -> html.Span:
    """A value that cannot be mistaken for a current one when it is late or missing."""
    if reading.missing:
        return html.Span(t("screen.no_data", lang), className=f"{class_name} stale")
    return html.Span(
        [html.Span(reading.value_text, className="number"), html.Span(reading.unit, className="unit")],
        className=f"{class_name}" + (" stale" if reading.stale else f" level-{reading.severity}"),
    )


def weather_items(view: ScreenView, lang: str) -> list:
    return [
        html.Div(
            [
                html.Span(reading.name, className="weather-name"),
                reading_value(reading, lang, "weather-value"),
                *(
                    [html.Span(t("screen.delayed", lang, minutes=reading.delayed_minutes), className="late")]
                    if reading.delayed_minutes is not None
                    else []
                ),
            ],
            className="weather-item",
            style={} if reading.stale else {"borderColor": level(reading.severity).colour},
        )
        for reading in view.weather
    ]


def freshness_panel(view: ScreenView, lang: str) -> list:
    """The overall freshness, and an outage banner naming every source that is down."""
    fresh = view.freshness
    parts = [
        html.Div(
            [html.I(className=f"dot {fresh.state}", **{"aria-hidden": "true"}), fresh.text],
            className=f"freshness {fresh.state}",
        )
    ]
    if fresh.outages:
        parts.append(
            html.Div(
                [
                    html.Strong(t("screen.outage.title", lang), className="outage-title"),
                    *[
                        html.Span(
                            t("screen.source.named", lang, source=source.id, text=source.text),
                            className="outage-source",
                        )
                        for source in fresh.outages
                    ],
                ],
                className="outage-banner",
                role="alert",
            )
        )
    return parts


def kpi_grid(view: ScreenView, lang: str) -> list:
    return [kpi_card(kpi, lang) for kpi in view.kpis]


def _index_row(reading: ReadingView, fraction: float | None, lang: str) -> html.Div:
    width = 0 if fraction is None else round(100 * min(max(fraction, 0.0), 1.0))
    colour = STALE_COLOUR if reading.stale else level(reading.severity).colour
    return html.Div(
        [
            html.Span(reading.name, className="sub-name"),
            reading_value(reading, lang, "sub-value"),
            html.Div(html.I(style={"width": f"{width}%", "background": colour}), className="sub-bar"),
        ],
        className="sub-index",
        **{"data-testid": "sub-index"},
    )


def gauge_panel(view: ScreenView, lang: str) -> list:
    """The City Operations Index as a ring with its level, and the domain sub-indices beneath."""
    if view.gauge is None:
        return [html.Div(t("screen.no_data", lang), className="empty")]
    city = view.gauge.city
    colour = STALE_COLOUR if city.stale else level(city.severity).colour
    status = (
        t("screen.no_data", lang)
        if city.missing
        else t("screen.delayed", lang, minutes=city.delayed_minutes)
        if city.delayed_minutes is not None
        else level_badge(city.severity, lang)
    )
    return [
        html.Div(
            [
                gauge(view.gauge.fraction, view.gauge.bands, colour, f"{city.name}: {city.value_text}"),
                html.Div(
                    [
                        html.Span(
                            t("screen.no_data", lang) if city.missing else city.value_text,
                            className="gauge-value" + (" stale" if city.stale else ""),
                            **{"data-testid": "index-value"},
                        ),
                        html.Span(status, className="gauge-status"),
                    ],
                    className="gauge-centre",
                ),
            ],
            className="gauge-box",
        ),
        html.Div(
            [
                _index_row(reading, fraction, lang)
                for reading, fraction in zip(view.gauge.domains, view.gauge.domain_fractions, strict=True)
            ],
            className="sub-indices",
        ),
    ]


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


def ticker(view: ScreenView, lang: str) -> html.Ol | html.Div:
    """The newest open warnings, newest first; a new one slides in (unless motion is reduced)."""
    if not view.ticker:
        return html.Div(t("screen.no_alerts", lang), className="empty")
    return html.Ol(
        [
            html.Li(
                [
                    html.Span(item.time_text, className="ticker-time"),
                    level_badge(item.severity, lang),
                    html.Span(item.text, className="ticker-text"),
                ],
                className=f"ticker-item level-{item.severity}",
                key=str(item.id),
            )
            for item in view.ticker
        ],
        className="ticker",
    )


def trend_cells(view: ScreenView, lang: str) -> list:
    cells = []
    for trend in view.trends:
        reading = trend.reading
        colour = STALE_COLOUR if reading.stale else level(reading.severity).colour
        cells.append(
            html.Div(
                [
                    html.Div(reading.name, className="trend-name", title=reading.name),
                    html.Div(
                        [
                            reading_value(reading, lang, "trend-value"),
                            sparkline(trend.values, colour, trend.label, "trend-line"),
                        ],
                        className="trend-body",
                    ),
                ],
                className="trend-cell" + (" stale" if reading.stale else ""),
                **{"data-testid": "trend"},
            )
        )
    return cells


def map_legend(indicator: MapIndicator | None, lang: str) -> list:
    items = [
        html.Span([html.I(className="swatch", style={"background": colour}), label], className="legend-item")
        for colour, label in (indicator.legend if indicator else ())
    ]
    items.append(
        html.Span(
            [html.I(className="swatch pulse-sample"), t("screen.legend.alert", lang)], className="legend-item"
        )
    )
    return items


def alerts_page(view: ScreenView, lang: str) -> list:
    """The playlist's warnings page: open warnings, the most severe first."""
    rows = [
        html.Li(
            [
                level_badge(alert.severity, lang),
                html.Span(alert.explanation, className="board-text"),
                html.Span(alert.since_text, className="board-time"),
            ],
            className=f"board-item level-{alert.severity}",
        )
        for alert in view.alerts
    ]
    body = (
        html.Ol(rows, className="board") if rows else html.Div(t("screen.no_alerts", lang), className="empty")
    )
    return [html.H3(view.pages.get("alerts", ""), className="page-title"), body]


def sources_page(view: ScreenView, lang: str) -> list:
    """The playlist's sources page: every source's state in words."""
    rows = [
        html.Li(
            [
                html.I(className=f"dot {source.state}", **{"aria-hidden": "true"}),
                html.Span(source.id, className="board-source"),
                html.Span(source.text, className="board-text"),
            ],
            className=f"board-item source-{source.state}",
        )
        for source in view.freshness.sources
    ]
    body = html.Ol(rows, className="board") if rows else html.Div(view.freshness.text, className="empty")
    return [html.H3(view.pages.get("sources", ""), className="page-title"), body]


def _map(frame: MapFrame, view: ScreenView, stations: str, first: MapIndicator | None) -> dl.Map:
    districts = {"districts": first.districts if first else {}, "stale": STALE_COLOUR}
    layers = tile_layers(frame) + [
        dl.Pane(
            district_layer(frame, districts, "screen-districts"),
            name="districts",
            style={"zIndex": 410},
        ),
        dl.Pane(
            dl.GeoJSON(
                id="screen-stations",
                data=stations,
                format="geobuf",
                cluster=True,
                superClusterOptions={"radius": 56, "maxZoom": 15},
                zoomToBoundsOnClick=True,
                clusterToLayer={"variable": "citybrain.screenCluster"},
                pointToLayer={"variable": "citybrain.screenStation"},
                hideout={
                    "levels": view.station_levels,
                    "colours": [lvl.colour for lvl in LEVELS],
                    "stale": STALE_COLOUR,
                    "pane": STATION_PANE,
                },
            ),
            name=STATION_PANE,
            style={"zIndex": 420},
        ),
        dl.Pane(
            dl.GeoJSON(
                id="screen-alert-markers",
                data=view.alert_markers,
                pointToLayer={"variable": "citybrain.screenAlert"},
                onEachFeature={"variable": "citybrain.screenAlertTooltip"},
                hideout={"pane": ALERT_PANE, "colours": [lvl.colour for lvl in LEVELS]},
            ),
            name=ALERT_PANE,
            style={"zIndex": 430},
        ),
    ]
    return dl.Map(
        layers,
        center=frame.centre,
        zoom=9,
        viewport={"bounds": frame.bounds, "transition": "fitBounds", "options": {"padding": [12, 12]}},
        zoomSnap=0.25,
        attributionControl=bool(frame.tile_url),
        className="screen-map",
        id="screen-map",
        style={"background": "transparent"},
    )


def stage_class(step: Step | None) -> str:
    """The map, or one of the pages laid over it (the map stays mounted, so it never reloads)."""
    return "screen-stage" + (f" showing-{step.page}" if step and step.page else "")


def screen(
    view: ScreenView, frame: MapFrame, stations: str, lang: str, refresh_ms: int, state: dict
) -> html.Div:
    """The whole wall. `stations` is the station layer's geometry (geobuf, base64), sent once;
    `state` is what the refresh callback compares with (which data and panels the page shows)."""
    first_key = next((s.indicator for s in view.steps if s.indicator), next(iter(view.maps), None))
    first = view.maps.get(first_key) if first_key else None
    first_step = view.steps[0] if view.steps else None
    return html.Div(
        [
            dcc.Interval(id="screen-tick", interval=refresh_ms),
            dcc.Interval(
                id="screen-rotate",
                interval=first_step.milliseconds if first_step else 60_000,
                disabled=len(view.steps) < 2,
            ),
            dcc.Store(id="screen-state", data=state),
            dcc.Store(id="screen-step", data=0),
            dcc.Store(id="screen-map-key", data=first_key),
            html.Div(
                [
                    html.Div(
                        weather_items(view, lang),
                        id="screen-weather",
                        className="weather",
                        role="group",
                        **{"aria-label": t("screen.weather", lang)},
                    ),
                    html.Div(freshness_panel(view, lang), id="screen-freshness", className="freshness-box"),
                    html.Div(
                        t("screen.updated", lang, time=view.updated_text),
                        id="screen-updated",
                        className="updated",
                    ),
                ],
                className="screen-status",
            ),
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
                            html.Span(first.title if first else "", id="screen-map-indicator"),
                        ]
                    ),
                    html.Div(
                        [
                            _map(frame, view, stations, first),
                            html.Div(
                                alerts_page(view, lang), id="screen-page-alerts", className="screen-page"
                            ),
                            html.Div(
                                sources_page(view, lang), id="screen-page-sources", className="screen-page"
                            ),
                        ],
                        id="screen-stage",
                        className=stage_class(first_step),
                    ),
                    html.Div(map_legend(first, lang), id="screen-legend", className="map-legend"),
                ],
                className="screen-centre panel",
                **{"aria-label": t("screen.map_title", lang)},
            ),
            html.Section(
                [
                    html.H2(view.gauge.city.name if view.gauge else t("screen.index", lang)),
                    html.Div(gauge_panel(view, lang), id="screen-gauge", className="gauge-panel"),
                    html.H2(t("screen.active_alerts", lang)),
                    html.Div(alert_counts(view, lang), id="screen-alert-counts", className="level-counts"),
                    html.H2(t("screen.newest", lang), className="ticker-title"),
                    html.Div(
                        ticker(view, lang),
                        id="screen-ticker",
                        className="ticker-box",
                        **{"aria-live": "polite"},
                    ),
                ],
                className="screen-right panel",
                **{"aria-label": t("screen.active_alerts", lang)},
            ),
            html.Section(
                [
                    html.H2(t("screen.trends", lang)),
                    html.Div(trend_cells(view, lang), id="screen-trends", className="trends"),
                ],
                className="screen-bottom panel",
                **{"aria-label": t("screen.trends", lang)},
            ),
        ],
        className="screen",
    )
