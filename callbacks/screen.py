"""/screen callbacks: build the wall's view and keep it current with small updates.

The view is memoized per data version AND minute: a source outage brings no new data (the version
stands still), yet "delayed N min" and the outage banner must advance. A refresh sends only the
panels whose content changed (the client keeps a digest per panel) and patches the map's
`hideout` objects; the boundaries and station points travel once, with the page. The playlist
rotates the map's indicator by patching the districts' hideout, or lays a page over the map.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime

import geobuf
from dash import ClientsideFunction, Dash, Input, Output, Patch, State, no_update

from callbacks.map_frame import map_frame
from callbacks.map_views import alert_layer, places
from callbacks.views import (
    alert_views,
    delayed_minutes,
    district_hideout,
    format_value,
    freshness_view,
    is_stale,
    kpi_view,
    legend_items,
    live_key,
)
from core.i18n import t
from core.levels import level
from core.timeutil import local_text, utcnow
from indicators.catalog import DOMAINS, Indicator
from indicators.composite import CITY_KEY, domain_key
from indicators.period_stats import Zone, level_zones
from layouts.screen import (
    GaugeView,
    MapIndicator,
    ReadingView,
    ScreenView,
    Step,
    TickerItem,
    TrendView,
    alert_counts,
    alerts_page,
    freshness_panel,
    gauge_panel,
    kpi_grid,
    map_legend,
    screen,
    sources_page,
    stage_class,
    ticker,
    trend_cells,
    weather_items,
)
from store import history, queries
from store.queries import AlertRow, EntityValue, Latest
from web.auth import current_clearance, visible_indicators
from web.language import request_language
from web.runtime import WebRuntime

ALERTS_ON_MAP = 1000  # the most severe open alerts are marked on the map; the counts cover all
ALERTS_PAGE = 14
TICKER_ITEMS = 12
TREND_HOURS = 24
PULSING = 60  # animated warning markers at most (the most severe): hundreds would bog a wall down
PULSE_FROM = 2  # yellow and above pulse; blue warnings are marked by a still ring


@dataclass(frozen=True)
class StationLayer:
    """The station points of one clearance, sent once: geobuf without properties (20,000 stations
    are ~370 kB in base64). dash-leaflet numbers features by position, and `stations` holds what
    each position is, so a level travels as {position: level} in the hideout."""

    data: str
    stations: tuple[tuple[str, str], ...]  # (station code, the indicator that colours it)


def station_layer(runtime: WebRuntime, visible: frozenset[str] | None) -> StationLayer:
    """Stations whose colouring indicator the clearance may see (a hidden indicator hides the
    places that measure it too)."""
    mapping = runtime.settings.screen.stations_indicator
    chosen = [
        (station, mapping[station.kind])
        for station in runtime.city.stations
        if station.kind in mapping and (visible is None or mapping[station.kind] in visible)
    ]
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [s.lon, s.lat]},
                "properties": {},
            }
            for s, _ in chosen
        ],
    }
    data = base64.b64encode(geobuf.encode(collection)).decode("ascii")
    return StationLayer(data, tuple((s.code, key) for s, key in chosen))


def reading_view(indicator: Indicator, latest: Latest, name: str, now: datetime, lang: str) -> ReadingView:
    return ReadingView(
        key=indicator.key,
        name=name,
        unit=indicator.unit_in(lang),
        value_text=format_value(latest.value, indicator.decimals),
        severity=latest.severity,
        delayed_minutes=delayed_minutes(indicator, latest.observed_at, now),
        missing=latest.value is None,
    )


def scale_fraction(indicator: Indicator, value: float | None) -> float | None:
    low, high = indicator.bounds
    return None if value is None else min(max((value - low) / (high - low), 0.0), 1.0)


def gauge_view(runtime: WebRuntime, latest: dict[str, Latest], lang: str, now: datetime) -> GaugeView | None:
    """The City Operations Index with the sub-index of every domain that has ever had data."""
    if CITY_KEY not in latest:
        return None
    city = runtime.catalog[CITY_KEY]
    low, high = city.bounds
    zones = level_zones(city.thresholds, city.bounds) if city.thresholds else (Zone(0, low, high),)
    bands = tuple(
        ((zone.low - low) / (high - low), (zone.high - low) / (high - low), level(zone.severity).colour)
        for zone in zones
    )
    domains = [
        (runtime.catalog[domain_key(d)], latest[domain_key(d)], t(f"domain.{d}", lang))
        for d in DOMAINS
        if domain_key(d) in latest and latest[domain_key(d)].entities > 0
    ]
    return GaugeView(
        city=reading_view(city, latest[CITY_KEY], city.name.get(lang), now, lang),
        fraction=scale_fraction(city, latest[CITY_KEY].value),
        bands=bands,
        domains=tuple(reading_view(ind, value, name, now, lang) for ind, value, name in domains),
        domain_fractions=tuple(scale_fraction(ind, value.value) for ind, value, _ in domains),
    )


def trend_views(
    runtime: WebRuntime,
    keys: list[str],
    lines: dict[str, list[float | None]],
    latest: dict[str, Latest],
    lang: str,
    now: datetime,
) -> tuple[TrendView, ...]:
    trends = []
    for key in keys:
        indicator = runtime.catalog[key]
        reading = reading_view(indicator, latest[key], indicator.name.get(lang), now, lang)
        values = tuple(lines.get(key, ()))
        known = [v for v in values if v is not None]
        first = format_value(known[0] if known else None, indicator.decimals)
        last = format_value(known[-1] if known else None, indicator.decimals)
        label = t(
            "screen.trend_label",
            lang,
            name=reading.name,
            first=first,
            last=last,
            unit=indicator.unit_in(lang),
        )
        trends.append(TrendView(reading, values, label.strip()))
    return tuple(trends)


def station_levels(
    runtime: WebRuntime, layer: StationLayer, values: dict[str, dict[str, EntityValue]], now: datetime
) -> dict[str, int]:
    """Position -> level for the stations that are not plainly normal: warning (1-4), or -1 when
    the station has no current reading (greyed, never shown as normal)."""
    levels: dict[str, int] = {}
    for position, (code, key) in enumerate(layer.stations):
        value = values.get(key, {}).get(code)
        if is_stale(runtime.catalog[key], value, now):
            levels[str(position)] = -1
        elif value.severity:
            levels[str(position)] = value.severity
    return levels


def alert_markers(rows: list[AlertRow], located: dict[str, tuple[float, float]], lang: str) -> dict:
    """The /map page's alert markers (one per station or district, worst level; the whole city has no
    place). The rows come most severe first, so the markers that pulse are the most severe ones."""
    features = alert_layer(rows, located, lang).features
    for position, feature in enumerate(features["features"]):
        properties = feature["properties"]
        properties["pulse"] = properties["severity"] >= PULSE_FROM and position < PULSING
    return features


def ticker_items(runtime: WebRuntime, rows: list[AlertRow], lang: str) -> tuple[TickerItem, ...]:
    newest = sorted(rows, key=lambda row: (row.opened_at, row.id), reverse=True)[:TICKER_ITEMS]
    return tuple(
        TickerItem(
            id=row.id,
            severity=row.severity,
            time_text=local_text(row.opened_at, runtime.settings.tz, "%H:%M"),
            text=row.explanation_zh if lang == "zh-CN" else row.explanation_en,
        )
        for row in newest
    )


def map_indicator(runtime: WebRuntime, key: str, lang: str) -> MapIndicator:
    indicator = runtime.catalog[key]
    hideout = district_hideout(runtime, key, queries.by_district(runtime.engine, key), lang)
    title = indicator.name.get(lang) + (f" ({indicator.unit_in(lang)})" if indicator.unit_in(lang) else "")
    return MapIndicator(key, title, hideout["districts"], tuple(legend_items(indicator, lang)))


def playlist(runtime: WebRuntime, maps: dict[str, MapIndicator]) -> tuple[Step, ...]:
    """The configured rotation without the indicators this clearance may not see."""
    steps = tuple(
        Step(step.indicator, step.page, int(step.seconds * 1000))
        for step in runtime.settings.screen.steps()
        if step.page is not None or step.indicator in maps
    )
    if steps:
        return steps
    return (Step(next(iter(maps), None), None, int(runtime.settings.screen.refresh * 1000)),)


def build_view(
    runtime: WebRuntime,
    layer: StationLayer,
    located: dict[str, tuple[float, float]],
    lang: str,
    classes: tuple[str, ...],
) -> ScreenView:
    """The wall's view for one clearance: indicators it may not see are left out, alerts included."""
    settings = runtime.settings.screen
    engine = runtime.engine
    now = utcnow()
    visible = visible_indicators(runtime, classes)

    def shown(keys: list[str]) -> list[str]:
        return [key for key in keys if key in runtime.catalog and (visible is None or key in visible)]

    kpis, weather, trends = shown(settings.kpis), shown(settings.weather), shown(settings.sparkline_keys())
    indices = shown([CITY_KEY] + [domain_key(d) for d in DOMAINS])
    latest = queries.latest(engine, list(dict.fromkeys(kpis + weather + trends + indices)))
    maps = {key: map_indicator(runtime, key, lang) for key in shown(settings.map_indicators())}
    open_rows = queries.open_alerts(engine, ALERTS_ON_MAP, visible)
    station_keys = sorted({key for _, key in layer.stations})
    return ScreenView(
        kpis=tuple(kpi_view(runtime, latest[key], lang, now) for key in kpis),
        weather=tuple(
            reading_view(runtime.catalog[key], latest[key], runtime.catalog[key].name.get(lang), now, lang)
            for key in weather
        ),
        freshness=freshness_view(queries.source_health(engine), now, runtime.settings.tz, lang),
        gauge=gauge_view(runtime, latest, lang, now),
        counts=queries.alert_counts(engine, visible),
        ticker=ticker_items(runtime, open_rows, lang),
        trends=trend_views(
            runtime, trends, history.sparklines(engine, trends, now, TREND_HOURS), latest, lang, now
        ),
        maps=maps,
        steps=playlist(runtime, maps),
        station_levels=station_levels(runtime, layer, queries.entity_values(engine, station_keys), now),
        alert_markers=alert_markers(open_rows, located, lang),
        alerts=tuple(alert_views(runtime, open_rows[:ALERTS_PAGE], lang)),
        updated_text=local_text(now, runtime.settings.tz, "%H:%M:%S"),
        pages={"alerts": t("screen.page.alerts", lang), "sources": t("screen.page.sources", lang)},
    )


def _digest(value: object) -> str:
    return hashlib.blake2b(repr(value).encode(), digest_size=8).hexdigest()


def panel_digests(view: ScreenView, map_key: str | None) -> dict[str, str]:
    """A fingerprint per panel: a refresh re-sends a panel only when its fingerprint moved."""
    return {
        "kpis": _digest(view.kpis),
        "weather": _digest(view.weather),
        "freshness": _digest(view.freshness),
        "gauge": _digest(view.gauge),
        "counts": _digest(sorted(view.counts.items())),
        "ticker": _digest(view.ticker),
        "trends": _digest(view.trends),
        "districts": _digest((map_key, view.maps.get(map_key or ""))),
        "stations": _digest(view.station_levels),
        "markers": _digest(view.alert_markers),
        "alerts": _digest(view.alerts),
        "sources": _digest(view.freshness.sources),
    }


def register(app: Dash, runtime: WebRuntime) -> dict:
    frame = map_frame(runtime)
    located = places(runtime.city)
    refresh_ms = int(runtime.settings.screen.refresh * 1000)
    default = runtime.settings.default_language
    layers: dict[tuple[str, ...], StationLayer] = {}

    def layer_for(classes: tuple[str, ...]) -> StationLayer:
        """Built once per clearance and process: the stations never change while the app runs."""
        if classes not in layers:
            layers[classes] = station_layer(runtime, visible_indicators(runtime, classes))
        return layers[classes]

    @runtime.cache.memoize()
    def cached_view(version: int, at_minute: int, lang: str, classes: tuple[str, ...]) -> ScreenView:
        return build_view(runtime, layer_for(classes), located, lang, classes)

    def current_view(lang: str) -> tuple[list[int], ScreenView]:
        classes = current_clearance()
        key = live_key(runtime.engine)
        return key, cached_view(*key, lang, classes)

    def page(lang: str | None = None, **_query) -> object:
        lang = request_language(default, lang)
        key, view = current_view(lang)
        first = next((s.indicator for s in view.steps if s.indicator), next(iter(view.maps), None))
        state = {"key": key, "lang": lang, "digests": panel_digests(view, first)}
        return screen(view, frame, layer_for(current_clearance()).data, lang, refresh_ms, state)

    panels = (
        ("kpis", Output("screen-kpis", "children"), kpi_grid),
        ("weather", Output("screen-weather", "children"), weather_items),
        ("freshness", Output("screen-freshness", "children"), freshness_panel),
        ("gauge", Output("screen-gauge", "children"), gauge_panel),
        ("counts", Output("screen-alert-counts", "children"), alert_counts),
        ("ticker", Output("screen-ticker", "children"), ticker),
        ("trends", Output("screen-trends", "children"), trend_cells),
        ("alerts", Output("screen-page-alerts", "children"), alerts_page),
        ("sources", Output("screen-page-sources", "children"), sources_page),
    )

    @app.callback(
        Output("screen-state", "data"),
        Output("screen-updated", "children"),
        *(output for _, output, _ in panels),
        Output("screen-districts", "hideout"),
        Output("screen-stations", "hideout"),
        Output("screen-alert-markers", "data"),
        Input("screen-tick", "n_intervals"),
        State("screen-state", "data"),
        State("screen-map-key", "data"),
        State("ui-lang", "data"),
        prevent_initial_call=True,
    )
    def refresh(_tick: int, shown: dict | None, map_key: str | None, lang: str | None):
        lang = request_language(default, lang)
        key, view = current_view(lang)
        shown = shown or {}
        updated = t("screen.updated", lang, time=local_text(utcnow(), runtime.settings.tz, "%H:%M:%S"))
        if shown.get("key") == key and shown.get("lang") == lang:
            return (no_update, updated) + (no_update,) * (len(panels) + 3)
        before = shown.get("digests") or {}
        digests = panel_digests(view, map_key)

        def changed(name: str) -> bool:
            return before.get(name) != digests[name]

        contents = tuple(draw(view, lang) if changed(name) else no_update for name, _, draw in panels)
        districts = stations = no_update
        if changed("districts") and map_key in view.maps:
            districts = Patch()
            districts["districts"] = view.maps[map_key].districts
        if changed("stations"):
            stations = Patch()
            stations["levels"] = view.station_levels
        markers = view.alert_markers if changed("markers") else no_update
        state = {"key": key, "lang": lang, "digests": digests}
        return (state, updated) + contents + (districts, stations, markers)

    @app.callback(
        Output("screen-step", "data"),
        Output("screen-rotate", "interval"),
        Output("screen-map-key", "data"),
        Output("screen-districts", "hideout", allow_duplicate=True),
        Output("screen-map-indicator", "children"),
        Output("screen-legend", "children"),
        Output("screen-stage", "className"),
        Input("screen-rotate", "n_intervals"),
        State("screen-step", "data"),
        State("screen-map-key", "data"),
        State("ui-lang", "data"),
        prevent_initial_call=True,
    )
    def rotate(_tick: int, position: int | None, map_key: str | None, lang: str | None):
        lang = request_language(default, lang)
        _, view = current_view(lang)
        position = ((position or 0) + 1) % len(view.steps)
        step = view.steps[position]
        if step.indicator is None or step.indicator not in view.maps or step.indicator == map_key:
            return position, step.milliseconds, no_update, no_update, no_update, no_update, stage_class(step)
        shown = view.maps[step.indicator]
        districts = Patch()
        districts["districts"] = shown.districts
        return (
            position,
            step.milliseconds,
            step.indicator,
            districts,
            shown.title,
            map_legend(shown, lang),
            stage_class(step),
        )

    app.clientside_callback(
        ClientsideFunction("citybrain_screen", "clusterOptions"),
        Output("screen-stations", "superClusterOptions"),
        Input("screen-stations", "id"),
        State("screen-stations", "superClusterOptions"),
    )
    return {"screen": page}
