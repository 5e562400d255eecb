"""/indicators/<key>: one indicator in depth, for a leader on a laptop. Pure functions of a
DetailView (callbacks/indicator_detail.py builds it); the parts a navigation changes are separate
functions so the callback can send just them, never the boundaries or the whole page again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import dash_leaflet as dl
from dash import dcc, html

from core.i18n import t
from core.levels import level
from core.timeutil import as_utc, local_text
from indicators.period_stats import Change, PeriodStats, Zone
from layouts.components import format_value, level_text
from layouts.maps import MapFrame, district_layer, level_legend, tile_layers

RANGES = ("1h", "24h", "7d", "30d")
CUSTOM = "custom"
INPUT_FORMAT = "%Y-%m-%dT%H:%M"
LINE_COLOUR = "#4cc3ff"
SPREAD_COLOUR = "rgba(76, 195, 255, 0.18)"
PREVIOUS_COLOUR = "#c792ea"
LAST_YEAR_COLOUR = "#e6eefc"
GRID_COLOUR = "#1d3557"
BAND_OPACITY = 0.16
CHART_HEIGHT = "19rem"
GAP_STEPS = 2  # a pause longer than this many bucket steps breaks the line instead of bridging it


@dataclass(frozen=True)
class Line:
    """A series drawn on the chart: aware UTC times (already moved onto the shown window), values,
    and the times as the city's wall-clock text the chart plots (converted once, in the cached view)."""

    times: tuple[datetime, ...]
    values: tuple[float, ...]
    x: tuple[str, ...]


@dataclass(frozen=True)
class SeriesView:
    """The shown series, one point per bucket, with the spread of readings behind each point; `x`
    as in Line."""

    times: tuple[datetime, ...]
    values: tuple[float, ...]
    lows: tuple[float, ...]
    highs: tuple[float, ...]
    counts: tuple[int, ...]
    x: tuple[str, ...]


@dataclass(frozen=True)
class Crumb:
    scope: str
    label: str


@dataclass(frozen=True)
class BarView:
    """One district or station of the breakdown, with its value's level colour."""

    code: str
    name: str
    value: float
    severity: int
    colour: str
    selected: bool


@dataclass(frozen=True)
class DetailView:
    key: str
    name: str
    unit: str
    decimals: int
    zone: str
    range_name: str
    start: datetime
    end: datetime
    resolution: str
    step_seconds: float
    scope: str
    scope_name: str
    place: str | None
    crumbs: tuple[Crumb, ...]
    series: SeriesView
    previous: Line
    last_year: Line
    limits: tuple[tuple[int, float], ...]
    zones: tuple[Zone, ...]
    bounds: tuple[float, float]
    stats: PeriodStats
    vs_previous: Change | None
    vs_last_year: Change | None
    breakdown_scope: str | None
    breakdown_title: str
    bars: tuple[BarView, ...]
    district_hideout: dict
    stations: dict
    focus: dict
    map_bounds: list[list[float]]
    version: int


def wall_clock(at: datetime, zone: ZoneInfo) -> datetime:
    """A UTC instant as the city's wall-clock time without zone (charts and spreadsheets show it
    as it is; the zone is stated beside it)."""
    return as_utc(at).astimezone(zone).replace(tzinfo=None)


def wall_clock_text(times: Sequence[datetime], zone: ZoneInfo) -> tuple[str, ...]:
    """Times as the city's wall-clock ISO text, as the chart's date axis takes them."""
    return tuple(at.astimezone(zone).replace(tzinfo=None).isoformat() for at in times)


def duration_text(seconds: float, lang: str) -> str:
    minutes = int(round(seconds / 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return t("detail.duration.days", lang, days=days, hours=hours)
    if hours:
        return t("detail.duration.hours", lang, hours=hours, minutes=mins)
    return t("detail.duration.minutes", lang, minutes=mins)


def range_text(view: DetailView, lang: str) -> str:
    zone = ZoneInfo(view.zone)
    period = (
        f"{local_text(view.start, zone, '%Y-%m-%d %H:%M')} – {local_text(view.end, zone, '%Y-%m-%d %H:%M')}"
    )
    return t("detail.range.shown", lang, period=period, zone=view.zone)


# --- the chart ------------------------------------------------------------------------------------


def _broken(times: Sequence[datetime], x: Sequence[str], values: Sequence[float], step: float):
    """x and y with a None wherever the data pauses, so no line is invented."""
    xs: list[str | None] = []
    ys: list[float | None] = []
    for index, (at, label, value) in enumerate(zip(times, x, values, strict=True)):
        if index and (at - times[index - 1]).total_seconds() > GAP_STEPS * step:
            xs.append(None)
            ys.append(None)
        xs.append(label)
        ys.append(value)
    return xs, ys


def value_range(view: DetailView) -> tuple[float, float]:
    """The shown values and the nearest warning limit, padded, inside the physical bounds."""
    seen = [*view.series.lows, *view.series.highs, *view.previous.values, *view.last_year.values]
    if view.limits:
        seen.append(view.limits[0][1])
    low_bound, high_bound = view.bounds
    if not seen:
        return low_bound, high_bound
    low, high = min(seen), max(seen)
    pad = (high - low) * 0.08 or max(abs(high) * 0.1, 1.0)
    return max(low - pad, low_bound), min(high + pad, high_bound)


def _bands(view: DetailView, y_range: tuple[float, float]) -> tuple[list[dict], list[dict]]:
    """The warning levels as coloured bands behind the line, each labelled at its limit."""
    low, high = y_range
    shapes, labels = [], []
    for zone in view.zones:
        if zone.severity == 0 or zone.high <= low or zone.low >= high:
            continue
        colour = level(zone.severity).colour
        shapes.append(
            {
                "type": "rect",
                "xref": "paper",
                "yref": "y",
                "x0": 0,
                "x1": 1,
                "y0": max(zone.low, low),
                "y1": min(zone.high, high),
                "fillcolor": colour,
                "opacity": BAND_OPACITY,
                "line": {"width": 0},
                "layer": "below",
            }
        )
    for severity, limit in view.limits:
        if not low <= limit <= high:
            continue
        colour = level(severity).colour
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "yref": "y",
                "x0": 0,
                "x1": 1,
                "y0": limit,
                "y1": limit,
                "line": {"color": colour, "width": 1, "dash": "dot"},
                "layer": "below",
            }
        )
        labels.append(
            {
                "xref": "paper",
                "yref": "y",
                "x": 1,
                "y": limit,
                "xanchor": "right",
                "yanchor": "bottom",
                "showarrow": False,
                "text": f"{level(severity).roman} {limit:g}",
                "font": {"color": colour, "size": 13},
            }
        )
    return shapes, labels


def chart_figure(view: DetailView, lang: str) -> dict:
    """The series with its low–high spread, the comparison lines dashed, the levels behind."""
    zone = ZoneInfo(view.zone)
    series, step = view.series, view.step_seconds
    hover = f"%{{y:,.{view.decimals}f}} {view.unit}".strip()
    traces = []
    if any(lo != hi for lo, hi in zip(series.lows, series.highs, strict=True)):
        x, highs = _broken(series.times, series.x, series.highs, step)
        _, lows = _broken(series.times, series.x, series.lows, step)
        traces.append(
            {
                "x": x,
                "y": highs,
                "mode": "lines",
                "line": {"width": 0},
                "hoverinfo": "skip",
                "showlegend": False,
                "name": t("detail.chart.spread", lang),
            }
        )
        traces.append(
            {
                "x": x,
                "y": lows,
                "mode": "lines",
                "line": {"width": 0},
                "fill": "tonexty",
                "fillcolor": SPREAD_COLOUR,
                "name": t("detail.chart.spread", lang),
                "hoverinfo": "skip",
            }
        )
    for line, name, colour, dash in (
        (view.previous, t("detail.chart.previous", lang), PREVIOUS_COLOUR, "dash"),
        (view.last_year, t("detail.chart.last_year", lang), LAST_YEAR_COLOUR, "longdash"),
    ):
        if line.times:
            x, y = _broken(line.times, line.x, line.values, step)
            traces.append(
                {
                    "x": x,
                    "y": y,
                    "mode": "lines",
                    "name": name,
                    "hovertemplate": hover,
                    "line": {"color": colour, "width": 1.5, "dash": dash},
                }
            )
    x, y = _broken(series.times, series.x, series.values, step)
    traces.append(
        {
            "x": x,
            "y": y,
            "mode": "lines+markers" if len(x) < 60 else "lines",
            "name": t("detail.chart.value", lang),
            "hovertemplate": hover,
            "line": {"color": LINE_COLOUR, "width": 2.2},
            "marker": {"size": 5},
        }
    )
    y_range = value_range(view)
    shapes, labels = _bands(view, y_range)
    if not series.times:
        labels.append(
            {
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "showarrow": False,
                "text": t("detail.chart.empty", lang),
                "font": {"size": 16, "color": "#9fb3d1"},
            }
        )
    start, end = wall_clock(view.start, zone).isoformat(), wall_clock(view.end, zone).isoformat()
    return {
        "data": traces,
        "layout": {
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "#0a1628",
            "font": {"color": "#e6eefc", "size": 14},
            "margin": {"l": 56, "r": 16, "t": 32, "b": 40},
            "hovermode": "x unified",
            "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom", "font": {"size": 13}},
            "xaxis": {
                "type": "date",
                "range": [start, end],
                "hoverformat": "%Y-%m-%d %H:%M",
                "gridcolor": GRID_COLOUR,
                "tickformatstops": [
                    {"dtickrange": [None, 86_400_000], "value": "%H:%M<br>%m-%d"},
                    {"dtickrange": [86_400_000, None], "value": "%m-%d"},
                ],
            },
            "yaxis": {
                "range": list(y_range),
                "gridcolor": GRID_COLOUR,
                "zeroline": False,
                "title": {"text": view.unit, "font": {"size": 13}},
            },
            "shapes": shapes,
            "annotations": labels,
        },
    }


# --- the parts a navigation replaces -------------------------------------------------------------


def crumbs(view: DetailView, lang: str) -> list:
    """City › district › station: every step but the current one goes back up."""
    parts: list = []
    for index, crumb in enumerate(view.crumbs):
        if index:
            parts.append(html.Span("›", className="crumb-sep", **{"aria-hidden": "true"}))
        if crumb.scope == view.scope:
            parts.append(html.Span(crumb.label, className="crumb current", **{"aria-current": "location"}))
        else:
            parts.append(
                html.Button(
                    crumb.label,
                    id={"type": "detail-crumb", "scope": crumb.scope},
                    className="crumb crumb-button",
                    title=t("detail.crumb.back", lang, place=crumb.label),
                )
            )
    return parts


def heading(view: DetailView, lang: str) -> list:
    resolution = t(f"detail.resolution.{view.resolution}", lang)
    return [
        html.Span(view.scope_name, className="detail-scope"),
        html.Span(f"{range_text(view, lang)} · {resolution}", className="detail-period"),
    ]


def _stat_row(label: str, value: str, note: str = "") -> html.Tr:
    return html.Tr(
        [
            html.Th(label, scope="row"),
            html.Td(value, className="number"),
            html.Td(note, className="stat-note"),
        ]
    )


def stats_table(view: DetailView, lang: str) -> html.Table:
    """Minimum, maximum, mean, and how long each level (or a worse one) held."""
    stats, zone, unit = view.stats, ZoneInfo(view.zone), view.unit
    rows = [
        _stat_row(
            t("detail.stats.min", lang),
            f"{format_value(stats.minimum, view.decimals)} {unit}".strip(),
            local_text(stats.minimum_at, zone) if stats.minimum_at else "",
        ),
        _stat_row(
            t("detail.stats.max", lang),
            f"{format_value(stats.maximum, view.decimals)} {unit}".strip(),
            local_text(stats.maximum_at, zone) if stats.maximum_at else "",
        ),
        _stat_row(t("detail.stats.mean", lang), f"{format_value(stats.mean, view.decimals)} {unit}".strip()),
        _stat_row(t("detail.stats.covered", lang), duration_text(stats.covered_seconds, lang)),
    ]
    for held in reversed(stats.levels):
        share = held.seconds / stats.covered_seconds * 100 if stats.covered_seconds else 0.0
        rows.append(
            html.Tr(
                [
                    html.Th(
                        [
                            html.I(className="swatch", style={"background": level(held.severity).colour}),
                            t("detail.stats.level_time", lang, level=level_text(held.severity, lang)),
                        ],
                        scope="row",
                    ),
                    html.Td(duration_text(held.seconds, lang), className="number"),
                    html.Td(f"{share:.0f} %", className="stat-note number"),
                ],
                className=f"level-time level-{held.severity}",
            )
        )
    caption = t("detail.stats.caption", lang) if stats.levels else t("detail.stats.no_levels", lang)
    return html.Table(
        [html.Caption(caption, className="stats-caption"), html.Tbody(rows)],
        className="table stats-table",
        id="detail-stats-table",
    )


def _comparison(label: str, compared: Change | None, missing: str, view: DetailView, lang: str) -> html.Li:
    if compared is None:
        return html.Li(
            [html.Span(label, className="compare-label"), html.Span(missing, className="compare-none")]
        )
    shown = round(compared.difference, view.decimals)
    arrow, sign = ("▲", "+") if shown > 0 else (("▼", "−") if shown < 0 else ("▶", "±"))
    percent = "" if compared.percent is None else f" ({sign}{abs(compared.percent):.1f} %)"
    change_text = f"{arrow} {sign}{format_value(abs(shown), view.decimals)}{percent}"
    return html.Li(
        [
            html.Span(label, className="compare-label"),
            html.Span(
                t(
                    "detail.compare.means",
                    lang,
                    current=format_value(compared.current, view.decimals),
                    other=format_value(compared.other, view.decimals),
                ),
                className="compare-means",
            ),
            html.Span(
                change_text,
                className="compare-change",
            ),
        ]
    )


def comparisons(view: DetailView, lang: str) -> html.Ul:
    """环比 and 同比 of the means, or a plain "no data" where the other period has none."""
    return html.Ul(
        [
            _comparison(
                t("detail.compare.previous", lang),
                view.vs_previous,
                t("detail.compare.no_previous", lang),
                view,
                lang,
            ),
            _comparison(
                t("detail.compare.last_year", lang),
                view.vs_last_year,
                t("detail.compare.no_last_year", lang),
                view,
                lang,
            ),
        ],
        className="compare-list",
    )


def bars(view: DetailView, lang: str) -> html.Div | html.Ol:
    """The breakdown as a sorted bar chart of buttons (worst first): clicking one drills down."""
    if view.breakdown_scope is None:
        return html.Div(t("detail.breakdown.citywide", lang), className="empty")
    if not view.bars:
        return html.Div(t("detail.breakdown.empty", lang), className="empty")
    largest = max(abs(bar.value) for bar in view.bars) or 1.0
    items = []
    for bar in view.bars:
        value_text = f"{format_value(bar.value, view.decimals)} {view.unit}".strip()
        items.append(
            html.Li(
                html.Button(
                    [
                        html.Span(bar.name, className="bar-name"),
                        html.Span(
                            html.Span(
                                className="bar-fill",
                                style={
                                    "width": f"{abs(bar.value) / largest * 100:.1f}%",
                                    "background": bar.colour,
                                },
                            ),
                            className="bar-track",
                        ),
                        html.Span(value_text, className="bar-value"),
                    ],
                    id={"type": "detail-bar", "code": bar.code},
                    className="detail-bar" + (" selected" if bar.selected else ""),
                    title=t("detail.breakdown.open", lang, place=bar.name),
                    **{
                        "aria-label": f"{bar.name}: {value_text}, {level_text(bar.severity, lang)}",
                        "aria-pressed": "true" if bar.selected else "false",
                        "data-code": bar.code,
                    },
                )
            )
        )
    return html.Ol(items, className="detail-bars")


def range_classes(selected: str) -> tuple[list[str], list[str]]:
    """The range buttons' classes and aria-pressed values for `selected` (in RANGES order)."""
    return (
        ["button range" + (" active" if name == selected else "") for name in RANGES],
        ["true" if name == selected else "false" for name in RANGES],
    )


def apply_class(selected: str) -> str:
    """The custom period's button is lit while a custom period is shown."""
    return "button" + (" active" if selected == CUSTOM else "")


def range_buttons(selected: str, lang: str) -> list[html.Button]:
    classes, pressed = range_classes(selected)
    return [
        html.Button(
            t(f"detail.range.{name}", lang),
            id={"type": "detail-range", "range": name},
            className=class_name,
            **{"aria-pressed": is_pressed, "data-range": name},
        )
        for name, class_name, is_pressed in zip(RANGES, classes, pressed, strict=True)
    ]


def custom_inputs(view: DetailView) -> tuple[str, str]:
    """The shown window as the two date-time inputs' values (the city's wall clock)."""
    zone = ZoneInfo(view.zone)
    return (
        wall_clock(view.start, zone).strftime(INPUT_FORMAT),
        wall_clock(view.end, zone).strftime(INPUT_FORMAT),
    )


def focus_layers(view: DetailView) -> list:
    """The selected district outlined, and the selected station ringed, above the choropleth."""
    layers: list = []
    if view.focus.get("district"):
        layers.append(
            dl.GeoJSON(
                data=view.focus["district"],
                style={"color": "#ffffff", "weight": 3, "fill": False, "dashArray": "6 4"},
                interactive=False,
            )
        )
    if view.focus.get("station"):
        lon, lat = view.focus["station"]
        layers.append(
            dl.CircleMarker(
                center=[lat, lon], radius=14, color="#ffffff", weight=3, fill=False, interactive=False
            )
        )
    return layers


def _viewport(bounds: list[list[float]]) -> dict:
    return {"bounds": bounds, "transition": "flyToBounds", "options": {"padding": [16, 16]}}


# --- the page ------------------------------------------------------------------------------------


def _map(frame: MapFrame, view: DetailView) -> dl.Map:
    """Districts and the focus ring sit in panes below Leaflet's overlay pane, where the shared
    station markers land, so a station stays clickable above its district."""
    layers = tile_layers(frame) + [
        dl.Pane(
            district_layer(frame, view.district_hideout, "detail-districts"),
            name="detail-districts",
            style={"zIndex": 380},
        ),
        dl.Pane(
            dl.LayerGroup(focus_layers(view), id="detail-focus"),
            name="detail-focus",
            style={"zIndex": 390},
        ),
        dl.GeoJSON(
            id="detail-stations",
            data=view.stations,
            pointToLayer={"variable": "citybrain.stationMarker"},
            onEachFeature={"variable": "citybrain.stationTooltip"},
        ),
    ]
    return dl.Map(
        layers,
        center=frame.centre,
        zoom=8,
        viewport=_viewport(view.map_bounds),
        zoomSnap=0.25,
        attributionControl=bool(frame.tile_url),
        className="detail-map",
        id="detail-map",
        style={"background": "transparent"},
    )


def map_viewport(view: DetailView) -> dict:
    return _viewport(view.map_bounds)


def _toolbar(view: DetailView, lang: str) -> html.Div:
    start, end = custom_inputs(view)
    return html.Div(
        [
            html.Div(
                range_buttons(view.range_name, lang),
                className="range-buttons",
                role="group",
                **{"aria-label": t("detail.range.label", lang)},
            ),
            html.Div(
                [
                    html.Label(t("detail.custom.start", lang), htmlFor="detail-start"),
                    dcc.Input(id="detail-start", type="datetime-local", value=start, className="search"),
                    html.Label(t("detail.custom.end", lang), htmlFor="detail-end"),
                    dcc.Input(id="detail-end", type="datetime-local", value=end, className="search"),
                    html.Button(
                        t("detail.custom.apply", lang),
                        id="detail-apply",
                        className=apply_class(view.range_name),
                        title=t("detail.custom.hint", lang, zone=view.zone),
                    ),
                    html.Span(id="detail-range-error", className="form-error", role="alert"),
                ],
                className="custom-range",
                role="group",
                **{"aria-label": t("detail.custom.label", lang, zone=view.zone)},
            ),
            html.Div(
                [
                    html.Button(t("detail.export.csv", lang), id="detail-csv", className="button"),
                    html.Button(t("detail.export.excel", lang), id="detail-xlsx", className="button"),
                ],
                className="export-buttons",
                role="group",
                **{"aria-label": t("detail.export.label", lang)},
            ),
        ],
        className="detail-toolbar",
    )


def detail_page(view: DetailView, frame: MapFrame, path: str, search: str, lang: str) -> html.Div:
    """`path` and `search` are the address that reproduces this view."""
    return html.Div(
        [
            dcc.Location(id="detail-url", pathname=path, search=search, refresh=False),
            dcc.Store(id="detail-shown", data=shown_data(view)),
            dcc.Download(id="detail-download"),
            html.Div(
                [
                    html.H2([view.name, html.Span(view.unit, className="detail-unit")], id="detail-name"),
                    html.Nav(
                        crumbs(view, lang),
                        id="detail-crumbs",
                        className="crumbs",
                        **{"aria-label": t("detail.crumb.label", lang)},
                    ),
                    html.Div(heading(view, lang), id="detail-heading", className="detail-heading"),
                ],
                className="detail-head",
            ),
            _toolbar(view, lang),
            html.Div(
                [
                    html.Section(
                        [
                            dcc.Graph(
                                id="detail-chart",
                                figure=chart_figure(view, lang),
                                config={"displayModeBar": False},
                                responsive=True,
                                style={"height": CHART_HEIGHT},  # inline: the graph sets 100 % otherwise
                                className="detail-chart",
                            ),
                            html.Div(comparisons(view, lang), id="detail-compare", **{"aria-live": "polite"}),
                        ],
                        className="panel detail-trend",
                        **{"aria-label": t("detail.chart.label", lang)},
                    ),
                    html.Section(
                        [
                            html.H3(t("detail.stats.title", lang)),
                            html.Div(stats_table(view, lang), id="detail-stats"),
                        ],
                        className="panel detail-stats",
                    ),
                    html.Section(
                        [
                            html.H3(view.breakdown_title, id="detail-breakdown-title"),
                            html.Div(
                                [_map(frame, view), level_legend(lang)],
                                className="detail-map-box",
                                hidden=view.breakdown_scope is None,
                            ),
                            html.Div(bars(view, lang), id="detail-bars"),
                        ],
                        className="panel detail-breakdown",
                    ),
                ],
                className="detail-grid",
            ),
        ],
        className="detail",
    )


def shown_data(view: DetailView) -> dict:
    """What the export needs to fetch exactly the shown view again: its data version and window."""
    return {"version": view.version, "start": view.start.isoformat(), "end": view.end.isoformat()}
