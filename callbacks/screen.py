"""/screen callbacks: build the wall display's view (memoized on the data version) and refresh it
when the version moves. A tick that finds the same version sends nothing back."""

from __future__ import annotations

from dash import Dash, Input, Output, State, no_update
from shapely.geometry import shape

from callbacks.views import alert_views, district_hideout, kpi_view, station_features
from core.i18n import t
from core.timeutil import local_text, utcnow
from layouts.components import alert_list
from layouts.screen import MapFrame, ScreenView, alert_counts, kpi_grid, screen
from store import queries
from store.state import data_version
from web.auth import current_clearance, visible_indicators
from web.language import request_language
from web.runtime import WebRuntime

ALERTS_SHOWN = 12


def district_bounds(runtime: WebRuntime) -> list[list[float]]:
    """[[south, west], [north, east]] around every district, so the map fits any city."""
    boxes = [shape(r.geometry).bounds for r in runtime.city.districts]
    west, south = min(b[0] for b in boxes), min(b[1] for b in boxes)
    east, north = max(b[2] for b in boxes), max(b[3] for b in boxes)
    return [[south, west], [north, east]]


def map_frame(runtime: WebRuntime) -> MapFrame:
    """Boundaries are static: built once per process and sent once per page load."""
    features = [
        {
            "type": "Feature",
            "geometry": r.geometry,
            "properties": {"code": r.code, "name_zh": r.name.zh, "name_en": r.name.en},
        }
        for r in runtime.city.districts
    ]
    settings = runtime.settings
    return MapFrame(
        districts={"type": "FeatureCollection", "features": features},
        bounds=district_bounds(runtime),
        tile_url=settings.map.tile_url,
        tile_attribution=settings.map.tile_attribution,
    )


def build_view(runtime: WebRuntime, version: int, lang: str, classes: tuple[str, ...]) -> ScreenView:
    """The wall's view for one clearance: indicators it may not see are left out, alerts included."""
    settings = runtime.settings.screen
    engine = runtime.engine
    now = utcnow()
    visible = visible_indicators(runtime, classes)
    kpis = [key for key in settings.kpis if visible is None or key in visible]
    latest = queries.latest(engine, kpis)
    choropleth = runtime.catalog[settings.choropleth]
    station_keys = sorted(
        k for k in set(settings.stations_indicator.values()) if visible is None or k in visible
    )
    return ScreenView(
        version=version,
        kpis=[kpi_view(runtime, latest[key], lang, now) for key in kpis],
        choropleth_name=choropleth.name.get(lang),
        choropleth_unit=choropleth.unit,
        district_hideout=district_hideout(
            runtime, choropleth.key, queries.by_district(engine, choropleth.key), lang
        ),
        stations=station_features(runtime, queries.entity_values(engine, station_keys), lang),
        alerts=alert_views(runtime, queries.open_alerts(engine, ALERTS_SHOWN, visible), lang),
        counts=queries.alert_counts(engine, visible),
        updated_text=local_text(now, runtime.settings.tz, "%H:%M:%S"),
    )


def register(app: Dash, runtime: WebRuntime) -> dict:
    frame = map_frame(runtime)
    refresh_ms = int(runtime.settings.screen.refresh * 1000)
    default = runtime.settings.default_language

    @runtime.cache.memoize()
    def cached_view(version: int, lang: str, classes: tuple[str, ...]) -> ScreenView:
        return build_view(runtime, version, lang, classes)

    def page(lang: str | None = None, **_query) -> object:
        lang = request_language(default, lang)
        return screen(
            cached_view(data_version(runtime.engine), lang, current_clearance()), frame, lang, refresh_ms
        )

    @app.callback(
        Output("screen-version", "data"),
        Output("screen-kpis", "children"),
        Output("screen-districts", "hideout"),
        Output("screen-stations", "data"),
        Output("screen-alerts", "children"),
        Output("screen-alert-counts", "children"),
        Output("screen-updated", "children"),
        Input("screen-tick", "n_intervals"),
        State("screen-version", "data"),
        State("ui-lang", "data"),
        prevent_initial_call=True,
    )
    def refresh(_tick: int, shown: int, lang: str):
        version = data_version(runtime.engine)
        lang = request_language(default, lang)
        if version == shown:
            return (no_update,) * 6 + (
                t("screen.updated", lang, time=local_text(utcnow(), runtime.settings.tz, "%H:%M:%S")),
            )
        view = cached_view(version, lang, current_clearance())
        return (
            version,
            kpi_grid(view, lang),
            view.district_hideout,
            view.stations,
            alert_list(view.alerts, lang),
            alert_counts(view, lang),
            t("screen.updated", lang, time=view.updated_text),
        )

    return {"screen": page}
