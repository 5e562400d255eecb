"""/map callbacks: build the map's views (memoized on the data version and the minute, so stale
figures turn grey during an outage) and keep them current.

A tick that finds the same version and minute sends nothing but the time; otherwise it sends the
choropleth's hideout, the stations, alerts and heat cells, and the open panel's body, never the
boundaries. The indicator and the district live in the address, so a link reproduces the view.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dash import ALL, ClientsideFunction, Dash, Input, Output, State, ctx, no_update

from callbacks.map_frame import map_frame
from callbacks.map_views import (
    alert_layer,
    district_choices,
    heat_view,
    indicator_choices,
    mappable_keys,
    panel_view,
    pick_indicator,
    places,
    station_layers,
)
from callbacks.views import district_hideout, live_key, station_features
from core.density import Grid, grid_over
from core.i18n import t
from core.timeutil import local_text, utcnow
from indicators.catalog import Indicator
from layouts.map_page import (
    ChoroplethView,
    DistrictPanelView,
    LayersView,
    MapPageView,
    alerts_note,
    choropleth_title,
    heat_legend,
    map_page,
    panel_body,
    panel_title,
    selected_hideout,
)
from layouts.maps import MapFrame
from store import history, queries
from web.auth import current_clearance, visible_indicators
from web.language import request_language
from web.runtime import WebRuntime

ALERTS_SHOWN = 500
HEAT_WINDOW = timedelta(hours=1)
HEAT_CELLS = 72  # cells along the heat grid's longer side
PAGE_CLASS = "map-page"
PanelOrNone = DistrictPanelView | None


def heat_grid(frame: MapFrame, bandwidth_km: float) -> Grid:
    """The city's box with two kernel widths of margin, so a district at the edge keeps its heat."""
    (south, west), (north, east) = frame.bounds
    return grid_over(south, west, north, east, long_side_cells=HEAT_CELLS, margin_km=2 * bandwidth_km)


def heat_values(runtime: WebRuntime, indicator: Indicator, now: datetime) -> dict[str, float]:
    """Each entity's mean over the last hour: per district, or per station (one query)."""
    start = now - HEAT_WINDOW
    per_entity = indicator.level == "station"
    return history.breakdown(runtime.engine, indicator.key, start, now, per_entity=per_entity)


def build_layers(runtime: WebRuntime, grid: Grid, lang: str, classes: tuple[str, ...]) -> LayersView:
    """Stations, open alerts and heat for one clearance: what it may not see is left out."""
    settings = runtime.settings
    engine = runtime.engine
    visible = visible_indicators(runtime, classes)
    now = utcnow()
    kinds = {
        kind: key
        for kind, key in settings.screen.stations_indicator.items()
        if key in runtime.catalog and (visible is None or key in visible)
    }
    features = station_features(runtime, queries.entity_values(engine, sorted(set(kinds.values()))), lang)
    located = places(runtime.city)
    heat = None
    indicator = runtime.catalog.get(settings.map.heatmap)
    if indicator is not None and (visible is None or indicator.key in visible):
        heat = heat_view(
            indicator.name.get(lang),
            indicator.unit_in(lang),
            indicator.level == "station",
            heat_values(runtime, indicator, now),
            located,
            grid,
            settings.map.heatmap_bandwidth_km,
            lang,
        )
    return LayersView(
        stations=station_layers(runtime.city, features, kinds, settings.map.cluster_above, lang),
        alerts=alert_layer(queries.open_alerts(engine, ALERTS_SHOWN, visible), located, lang),
        heat=heat,
        updated_text=local_text(now, settings.tz, "%H:%M:%S"),
    )


def build_choropleth(runtime: WebRuntime, key: str, lang: str) -> ChoroplethView:
    indicator = runtime.catalog[key]
    return ChoroplethView(
        key=key,
        name=indicator.name.get(lang),
        unit=indicator.unit_in(lang),
        hideout=district_hideout(runtime, key, queries.by_district(runtime.engine, key), lang),
    )


def build_panel(
    runtime: WebRuntime, code: str, lang: str, classes: tuple[str, ...], now: datetime
) -> DistrictPanelView | None:
    district = next((r for r in runtime.city.districts if r.code == code), None)
    if district is None:
        return None
    keys = [i.key for i in runtime.catalog.cleared(classes)]
    values = queries.district_values(runtime.engine, code, keys)
    return panel_view(runtime.catalog, district, values, lang, now)


def register(app: Dash, runtime: WebRuntime) -> dict:
    frame = map_frame(runtime)
    grid = heat_grid(frame, runtime.settings.map.heatmap_bandwidth_km)
    refresh_ms = int(runtime.settings.screen.refresh * 1000)
    default = runtime.settings.default_language
    preferred = runtime.settings.screen.choropleth
    district_codes = {r.code for r in runtime.city.districts}

    @runtime.cache.memoize()
    def cached_layers(version: int, at_minute: int, lang: str, classes: tuple[str, ...]) -> LayersView:
        return build_layers(runtime, grid, lang, classes)

    @runtime.cache.memoize()
    def cached_choropleth(version: int, at_minute: int, lang: str, key: str) -> ChoroplethView:
        return build_choropleth(runtime, key, lang)

    @runtime.cache.memoize()
    def cached_panel(
        version: int, at_minute: int, lang: str, classes: tuple[str, ...], code: str
    ) -> PanelOrNone:
        return build_panel(runtime, code, lang, classes, utcnow())

    def page(lang: str | None = None, indicator: str | None = None, district: str | None = None, **_q):
        lang = request_language(default, lang)
        classes = current_clearance()
        live = live_key(runtime.engine)
        keys = mappable_keys(runtime.catalog, classes)
        key = pick_indicator(indicator, keys, preferred)
        view = MapPageView(
            live_key=live,
            indicators=indicator_choices(runtime.catalog, keys, lang),
            districts=district_choices(runtime.city, lang),
            choropleth=cached_choropleth(*live, lang, key) if key else None,
            layers=cached_layers(*live, lang, classes),
            panel=cached_panel(*live, lang, classes, district) if district in district_codes else None,
        )
        return map_page(view, frame, lang, refresh_ms)

    @app.callback(
        Output("map-version", "data"),
        Output("map-districts", "hideout"),
        Output("map-legend-title", "children"),
        Output({"type": "map-stations", "domain": ALL}, "data"),
        Output("map-alerts", "data"),
        Output("map-heat", "data"),
        Output("map-legend-heat", "children"),
        Output("map-alerts-note", "children"),
        Output("map-updated", "children"),
        Output("map-panel-body", "children", allow_duplicate=True),
        Input("map-tick", "n_intervals"),
        Input("map-indicator", "value"),
        State("map-version", "data"),
        State("map-district", "value"),
        State("ui-lang", "data"),
        prevent_initial_call=True,
    )
    def refresh(_tick: int, key: str | None, shown: list[int], district: str | None, lang: str):
        """Every tick the time; the layers, colours and open panel only when the live key (data
        version, minute) moved; the colours alone when the indicator changed."""
        lang = request_language(default, lang)
        classes = current_clearance()
        live = live_key(runtime.engine)
        stations = ctx.outputs_list[3]
        moved = live != shown
        colours = (no_update, no_update)
        if (moved or ctx.triggered_id == "map-indicator") and key in mappable_keys(runtime.catalog, classes):
            choropleth = cached_choropleth(*live, lang, key)
            colours = (selected_hideout(choropleth, district), choropleth_title(choropleth, lang))
        if not moved:
            now = t("map.updated", lang, time=local_text(utcnow(), runtime.settings.tz, "%H:%M:%S"))
            return (no_update, *colours, [no_update] * len(stations), *(no_update,) * 4, now, no_update)
        layers = cached_layers(*live, lang, classes)
        panel = cached_panel(*live, lang, classes, district) if district in district_codes else None
        by_domain = {layer.domain: layer.features for layer in layers.stations}
        return (
            live,
            *colours,
            [by_domain.get(output["id"]["domain"], no_update) for output in stations],
            layers.alerts.features,
            layers.heat.features if layers.heat else None,
            heat_legend(layers.heat, lang),
            alerts_note(layers.alerts, lang),
            t("map.updated", lang, time=layers.updated_text),
            panel_body(panel, lang) if panel else no_update,
        )

    @app.callback(
        Output("map-district", "value"),
        Input("map-districts", "n_clicks"),
        Input("map-panel-close", "n_clicks"),
        State("map-districts", "clickData"),
        prevent_initial_call=True,
    )
    def choose_district(_clicks: int, _closed: int, clicked: dict | None):
        if ctx.triggered_id == "map-panel-close":
            return None
        return ((clicked or {}).get("properties") or {}).get("code") or no_update

    @app.callback(
        Output("map-panel-title", "children"),
        Output("map-panel-body", "children"),
        Output("map-panel", "hidden"),
        Output("map-page", "className"),
        Input("map-district", "value"),
        State("map-version", "data"),
        State("ui-lang", "data"),
        prevent_initial_call=True,
    )
    def show_panel(code: str | None, live: list[int], lang: str):
        """Opens, changes or closes the panel; the refresh keeps an open panel's body current."""
        lang = request_language(default, lang)
        panel = cached_panel(*live, lang, current_clearance(), code) if code in district_codes else None
        opened = panel is not None
        return (
            panel_title(panel, lang),
            panel_body(panel, lang),
            not opened,
            PAGE_CLASS + (" panel-open" if opened else ""),
        )

    app.clientside_callback(
        ClientsideFunction(namespace="citybrainMap", function_name="syncUrl"),
        Output("map-url", "data"),
        Input("map-indicator", "value"),
        Input("map-district", "value"),
    )
    app.clientside_callback(
        ClientsideFunction(namespace="citybrainMap", function_name="selectDistrict"),
        Output("map-districts", "hideout", allow_duplicate=True),
        Input("map-district", "value"),
        State("map-districts", "hideout"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction(namespace="citybrainMap", function_name="focusPanel"),
        Output("map-focused", "data"),
        Input("map-panel", "hidden"),
        Input("map-panel-title", "children"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction(namespace="citybrainMap", function_name="showLegends"),
        Output("map-legend-districts", "hidden"),
        Output("map-legend-heat", "hidden"),
        Input("map-layers", "overlays"),
        prevent_initial_call=True,
    )
    return {"map": page}
