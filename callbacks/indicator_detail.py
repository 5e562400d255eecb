"""/indicators/<key> callbacks. The address holds the whole view (range, custom window, district,
station), so a shared link reproduces it: the page is built from the query, and every navigation
(range button, custom window, map, bar, breadcrumb) computes the next query, pushes it onto the
browser's history and redraws only what changed. The back button re-renders the page from the
address it returns to.

Views are memoized on (data version, key, state, window, language) and read history only through
store/history.py (rollups for long ranges). An indicator the requester may not see gets exactly what
an unknown key gets: the not-found page, and callbacks that do nothing; every entry point checks
`visible()` before it reaches a view, so the views need no clearance of their own.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dash import ALL, Dash, Input, Output, State, ctx, dcc, no_update
from dash.exceptions import PreventUpdate

from callbacks.detail_export import csv_bytes, file_name, xlsx_bytes
from callbacks.detail_state import (
    MAX_CUSTOM_DAYS,
    PREFIX,
    DetailState,
    Window,
    custom_window_error,
    key_of,
    parse_state,
    parse_wall_clock,
    query_of,
    resolve_window,
)
from callbacks.detail_views import DetailViews
from core.i18n import t
from core.timeutil import as_utc, utcnow
from indicators.catalog import Indicator
from layouts.indicator_detail import (
    CUSTOM,
    INPUT_FORMAT,
    RANGES,
    DetailView,
    apply_class,
    bars,
    chart_figure,
    comparisons,
    crumbs,
    custom_inputs,
    detail_page,
    focus_layers,
    heading,
    map_viewport,
    range_classes,
    shown_data,
    stats_table,
)
from layouts.pages import not_found
from store.state import data_version
from web.auth import current_clearance
from web.language import request_language
from web.runtime import WebRuntime


def clicked_code(data: object) -> str | None:
    """The code of the feature a map click names (dash-leaflet hands over the clicked feature)."""
    if isinstance(data, dict):
        code = (data.get("properties") or {}).get("code")
        return str(code) if code else None
    return None


def register(app: Dash, runtime: WebRuntime) -> dict:
    default = runtime.settings.default_language
    views = DetailViews(runtime)
    zone = runtime.settings.tz

    def visible(key: str | None) -> Indicator | None:
        """The indicator, if it exists AND the requester's clearance covers it; both failures look
        the same to the requester."""
        indicator = runtime.catalog.get(key or "")
        if indicator is None or indicator.classification not in current_clearance():
            return None
        return indicator

    @runtime.cache.memoize()
    def cached_view(version: int, key: str, state: DetailState, window: Window, lang: str) -> DetailView:
        """One view for every requester: it holds nothing but the indicator's own history, and only
        those `visible()` clears ever reach it, so no clearance needs its own copy."""
        return views.build(runtime.catalog[key], state, window, version, lang)

    def current_view(indicator: Indicator, state: DetailState, lang: str) -> DetailView:
        window = resolve_window(state, utcnow(), zone)
        return cached_view(data_version(runtime.engine), indicator.key, state, window, lang)

    def page(key: str | None = None, lang: str | None = None, **query) -> object:
        lang = request_language(default, lang)
        indicator = visible(key)
        if indicator is None:
            return not_found(lang)
        state = parse_state(query, indicator, views.stations, views.districts)
        view = current_view(indicator, state, lang)
        return detail_page(view, views.frame, PREFIX + indicator.key, state.search(), lang)

    def moved(
        state: DetailState,
        trigger: object,
        district_click: object,
        station_click: object,
        start_text: object,
        end_text: object,
    ) -> tuple[dict[str, str] | None, str | None]:
        """The next address's query after a click, or an error message key (custom window)."""
        query = state.query()
        if isinstance(trigger, dict) and trigger.get("type") == "detail-range":
            return {**query, "range": trigger["range"], "start": "", "end": ""}, None
        if trigger == "detail-apply":
            start, end = parse_wall_clock(start_text), parse_wall_clock(end_text)
            error = custom_window_error(start, end)
            if error:
                return None, error
            return {
                **query,
                "range": CUSTOM,
                "start": start.strftime(INPUT_FORMAT),
                "end": end.strftime(INPUT_FORMAT),
            }, None
        if isinstance(trigger, dict) and trigger.get("type") == "detail-crumb":
            drop = ("region", "entity") if trigger["scope"] == "city" else ("entity",)
            return {k: v for k, v in query.items() if k not in drop}, None
        code = None
        if isinstance(trigger, dict) and trigger.get("type") == "detail-bar":
            code = trigger["code"]
        elif trigger == "detail-districts":
            code = clicked_code(district_click)
        elif trigger == "detail-stations":
            code = clicked_code(station_click)
        if code in views.districts:
            return {k: v for k, v in query.items() if k != "entity"} | {"region": code}, None
        if code in views.stations:
            return {**query, "entity": code}, None
        return None, None

    range_outputs = (
        Output({"type": "detail-range", "range": ALL}, "className"),
        Output({"type": "detail-range", "range": ALL}, "aria-pressed"),
    )

    @app.callback(
        Output("detail-url", "search"),
        Output("detail-shown", "data"),
        Output("detail-crumbs", "children"),
        Output("detail-heading", "children"),
        *range_outputs,
        Output("detail-apply", "className"),
        Output("detail-start", "value"),
        Output("detail-end", "value"),
        Output("detail-range-error", "children"),
        Output("detail-chart", "figure"),
        Output("detail-compare", "children"),
        Output("detail-stats", "children"),
        Output("detail-breakdown-title", "children"),
        Output("detail-bars", "children"),
        Output("detail-districts", "hideout"),
        Output("detail-stations", "data"),
        Output("detail-focus", "children"),
        Output("detail-map", "viewport"),
        Input({"type": "detail-range", "range": ALL}, "n_clicks"),
        Input("detail-apply", "n_clicks"),
        Input({"type": "detail-crumb", "scope": ALL}, "n_clicks"),
        Input({"type": "detail-bar", "code": ALL}, "n_clicks"),
        Input("detail-districts", "n_clicks"),
        Input("detail-stations", "n_clicks"),
        State("detail-districts", "clickData"),
        State("detail-stations", "clickData"),
        State("detail-start", "value"),
        State("detail-end", "value"),
        State("detail-url", "pathname"),
        State("detail-url", "search"),
        State("ui-lang", "data"),
        prevent_initial_call=True,
    )
    def navigate(*args):
        *_clicks, district_click, station_click, start_text, end_text, path, search, lang = args
        indicator = visible(key_of(path))
        if indicator is None or not any(item.get("value") for item in ctx.triggered):
            raise PreventUpdate  # unknown or not cleared, or buttons redrawn without a click
        lang = request_language(default, lang)
        state = parse_state(query_of(search), indicator, views.stations, views.districts)
        query, error = moved(state, ctx.triggered_id, district_click, station_click, start_text, end_text)
        if error:
            keep = [no_update] * len(RANGES)  # the range buttons' outputs are lists
            message = t(error, lang, days=MAX_CUSTOM_DAYS)
            return (no_update,) * 4 + (keep, keep) + (no_update,) * 3 + (message,) + (no_update,) * 9
        if query is None:
            raise PreventUpdate
        state = parse_state(query, indicator, views.stations, views.districts)
        view = current_view(indicator, state, lang)
        classes, pressed = range_classes(view.range_name)
        start_value, end_value = custom_inputs(view)
        return (
            state.search(),
            shown_data(view),
            crumbs(view, lang),
            heading(view, lang),
            classes,
            pressed,
            apply_class(view.range_name),
            start_value,
            end_value,
            "",
            chart_figure(view, lang),
            comparisons(view, lang),
            stats_table(view, lang),
            view.breakdown_title,
            bars(view, lang),
            view.district_hideout,
            view.stations,
            focus_layers(view),
            map_viewport(view),
        )

    @app.callback(
        Output("detail-download", "data"),
        Input("detail-csv", "n_clicks"),
        Input("detail-xlsx", "n_clicks"),
        State("detail-url", "pathname"),
        State("detail-url", "search"),
        State("detail-shown", "data"),
        State("ui-lang", "data"),
        prevent_initial_call=True,
    )
    def download(_csv, _xlsx, path, search, shown, lang):
        """The file of exactly the view on the screen: its data version and window, not "now"."""
        indicator = visible(key_of(path))
        if indicator is None or not isinstance(shown, dict):
            raise PreventUpdate
        lang = request_language(default, lang)
        try:
            version = int(shown["version"])
            window = Window(
                as_utc(datetime.fromisoformat(shown["start"])), as_utc(datetime.fromisoformat(shown["end"]))
            )
        except (KeyError, TypeError, ValueError):
            raise PreventUpdate from None
        if version > data_version(runtime.engine) or not (
            timedelta(0) < window.end - window.start <= timedelta(days=MAX_CUSTOM_DAYS)
        ):
            raise PreventUpdate  # a forged version would plant this data under a future key
        state = parse_state(query_of(search), indicator, views.stations, views.districts)
        view = cached_view(version, indicator.key, state, window, lang)
        if ctx.triggered_id == "detail-xlsx":
            return dcc.send_bytes(xlsx_bytes(view, lang), file_name(view, "xlsx"))
        return dcc.send_bytes(csv_bytes(view, lang), file_name(view, "csv"))

    return {"indicator_detail": page}
