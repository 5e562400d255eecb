"""/alerts, the duty officers' desk: pure functions of their views.

The page is static scaffolding that callbacks fill: the list and counts refresh with the data, while
the action form (the note the officer is typing) is never re-rendered by a refresh. Announcements
go to a live region that exists from the start, so screen readers read each one out. The rows'
buttons carry the alert's id in `data-desk-open` / `data-desk-ack` and one listener in
assets/alerts.js handles them all: hundreds of pattern-matched ids would slow the browser down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import plotly.graph_objects as go
from dash import dcc, html

from core.i18n import t
from core.levels import LEVELS, level
from layouts.components import level_badge

DESK_LEVELS = tuple(reversed(LEVELS[1:]))  # I red first


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass(frozen=True)
class FilterChoice:
    """One filter: its URL name, its options, and what is chosen."""

    name: str
    label_key: str
    options: tuple[Option, ...]
    chosen: tuple[str, ...]
    placeholder_key: str


@dataclass(frozen=True)
class RowView:
    id: int
    severity: int
    state: str
    state_text: str
    title: str
    explanation: str
    value_text: str
    department: str
    assigned: bool
    opened_text: str
    age_text: str
    muted: bool
    can_acknowledge: bool


@dataclass(frozen=True)
class ListView:
    rows: tuple[RowView, ...]
    total: int
    counts: dict[int, int]

    @property
    def bulk_ids(self) -> list[int]:
        """The listed blue and yellow alerts that can still be acknowledged (what bulk acts on)."""
        return [r.id for r in self.rows if r.can_acknowledge and r.severity <= 2]


@dataclass(frozen=True)
class ChartView:
    name: str
    unit: str
    times: tuple[datetime, ...]
    values: tuple[float, ...]
    thresholds: tuple[tuple[int, float], ...]
    opened_at: datetime
    resolved_at: datetime | None
    severity: int


@dataclass(frozen=True)
class EventView:
    time_text: str
    actor: str
    what: str
    note: str


@dataclass(frozen=True)
class PanelView:
    id: int
    severity: int
    state: str
    state_text: str
    title: str
    explanation: str
    facts: tuple[tuple[str, str], ...]
    chart: ChartView
    events: tuple[EventView, ...]
    can_acknowledge: bool
    can_comment: bool
    can_close: bool
    can_assign: bool
    note_required: bool
    department: str | None
    version: int


def _aria(**values: str) -> dict[str, str]:
    return {f"aria-{k.replace('_', '-')}": v for k, v in values.items()}


def level_counts(counts: dict[int, int], lang: str) -> list[html.Div]:
    return [
        html.Div(
            [level_badge(lvl.severity, lang), html.Span(str(counts.get(lvl.severity, 0)), className="count")],
            className=f"level-count level-{lvl.severity}",
            **{"data-severity": str(lvl.severity)},
        )
        for lvl in DESK_LEVELS
    ]


def _row(row: RowView, lang: str) -> html.Tr:
    state = [html.Span(row.state_text, className=f"state-pill state-{row.state}")]
    if row.muted:
        state.append(
            html.Span(t("desk.muted", lang), className="muted-pill", title=t("desk.muted_help", lang))
        )
    action = (
        html.Button(
            t("desk.acknowledge", lang),
            className="button small" + (" primary" if row.severity >= 3 else ""),
            **_aria(label=t("desk.acknowledge_label", lang, title=row.title)),
            **{"data-desk-ack": str(row.id)},
        )
        if row.can_acknowledge
        else None
    )
    return html.Tr(
        [
            html.Td(level_badge(row.severity, lang)),
            html.Th(
                [
                    html.Button(
                        row.title,
                        className="link-button",
                        title=t("desk.open_label", lang),
                        **{"data-desk-open": str(row.id)},
                    ),
                    html.Span(row.value_text, className="row-value"),
                    html.Div(row.explanation, className="row-explanation"),
                ],
                scope="row",
            ),
            html.Td(state),
            html.Td(row.department, className="assigned" if row.assigned else "owner"),
            html.Td([html.Div(row.opened_text), html.Div(row.age_text, className="age")], className="opened"),
            html.Td(action),
        ],
        className=f"desk-row level-{row.severity} state-{row.state}",
        **{"data-alert": str(row.id), "data-severity": str(row.severity)},
    )


HEADERS = (
    "desk.col.level",
    "desk.col.alert",
    "desk.col.state",
    "desk.col.department",
    "desk.col.opened",
)


def alert_table(view: ListView, lang: str) -> html.Div:
    if not view.rows:
        return html.Div(t("desk.none", lang), className="empty")
    headers = [html.Th(t(key, lang), scope="col") for key in HEADERS]
    headers.append(html.Th(html.Span(t("desk.col.actions", lang), className="visually-hidden"), scope="col"))
    parts = [
        html.Table(
            [
                html.Caption(t("desk.caption", lang), className="visually-hidden"),
                html.Thead(html.Tr(headers)),
                html.Tbody([_row(r, lang) for r in view.rows]),
            ],
            className="table desk-table",
        )
    ]
    if view.total > len(view.rows):
        parts.append(html.P(t("desk.more", lang, shown=len(view.rows), total=view.total), className="empty"))
    return html.Div(parts)


def bulk_label(count: int, lang: str) -> str:
    return t("desk.bulk.button", lang, count=count)


def announcement(rows: list[RowView], lang: str) -> list:
    """The banner's text: each new orange or red alert, with a button that opens it."""
    return [
        html.Div(
            [
                level_badge(row.severity, lang),
                html.Span(t("desk.announce.new", lang, level=t(level(row.severity).name_key, lang))),
                html.Span(row.explanation, className="announce-text"),
                html.Button(
                    t("desk.announce.show", lang),
                    className="button small",
                    **_aria(label=t("desk.open_label", lang) + f" {row.title}"),
                    **{"data-desk-open": str(row.id)},
                ),
            ],
            className="announce-item",
        )
        for row in rows
    ]


DROPDOWN_LABELS = (
    "select_all",
    "deselect_all",
    "selected_count",
    "search",
    "clear_search",
    "clear_selection",
    "no_options_found",
)


def dropdown_labels(lang: str) -> dict[str, str]:
    """The dropdown's own words (Dash ships them in English only)."""
    return {name: t(f"desk.dropdown.{name}", lang) for name in DROPDOWN_LABELS}


def _filter(choice: FilterChoice, lang: str) -> html.Div:
    component_id = f"desk-f-{choice.name}"
    return html.Div(
        [
            html.Label(t(choice.label_key, lang), htmlFor=component_id, id=f"{component_id}-label"),
            dcc.Dropdown(
                id=component_id,
                options=[{"label": o.label, "value": o.value} for o in choice.options],
                value=list(choice.chosen),
                multi=True,
                placeholder=t(choice.placeholder_key, lang),
                labels=dropdown_labels(lang),
                className="dropdown",
            ),
        ],
        className="filter",
    )


def history_figure(chart: ChartView, lang: str) -> go.Figure:
    """The series around the alert, its threshold lines in their level colours, the alert's span."""
    figure = go.Figure(
        go.Scatter(
            x=list(chart.times),
            y=list(chart.values),
            mode="lines+markers",
            marker={"size": 4},
            line={"color": "#4cc3ff", "width": 2},
            name=chart.name,
            hovertemplate="%{x|%m-%d %H:%M}  %{y}<extra></extra>",
        )
    )
    for severity, limit in chart.thresholds:
        lvl = level(severity)
        figure.add_hline(
            y=limit,
            line={"color": lvl.colour, "dash": "dash", "width": 1.5},
            annotation_text=f"{lvl.roman} {limit:g}",
            annotation_position="top left",
            annotation_font={"color": lvl.colour, "size": 11},
        )
    end = chart.resolved_at or (chart.times[-1] if chart.times else chart.opened_at)
    figure.add_vrect(
        x0=chart.opened_at, x1=end, fillcolor=level(chart.severity).colour, opacity=0.12, line_width=0
    )
    figure.update_layout(
        template="plotly_dark",
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="#0a1628",
        margin={"l": 48, "r": 12, "t": 8, "b": 32},
        height=230,
        showlegend=False,
        font={"size": 12},
        yaxis={"title": {"text": chart.unit}, "gridcolor": "#1d3557"},
        xaxis={
            "gridcolor": "#1d3557",
            "tickformatstops": [
                {"dtickrange": [None, 86_400_000], "value": "%H:%M"},
                {"dtickrange": [86_400_000, None], "value": "%m-%d"},
            ],
        },
    )
    if not chart.times:
        figure.add_annotation(text=t("desk.chart.empty", lang), showarrow=False, xref="paper", yref="paper")
    return figure


def panel_info(view: PanelView, lang: str) -> list:
    """What is known about the alert: refreshed with the data, never holding the officer's input."""
    facts = html.Dl(
        [part for label, value in view.facts for part in (html.Dt(label), html.Dd(value))], className="facts"
    )
    events = html.Ol(
        [
            html.Li(
                [
                    html.Time(e.time_text, className="event-time"),
                    html.Span(e.actor, className="event-actor"),
                    html.Span(e.what, className="event-what"),
                    html.P(e.note, className="event-note") if e.note else None,
                ],
                className="event",
            )
            for e in view.events
        ],
        className="timeline",
        id="desk-timeline",
    )
    return [
        html.Div(
            [
                level_badge(view.severity, lang),
                html.H2(view.title, id="desk-panel-title"),
                html.Span(view.state_text, className=f"state-pill state-{view.state}"),
            ],
            className="panel-head",
        ),
        html.P(view.explanation, className="explanation", id="desk-explanation"),
        facts,
        dcc.Graph(
            id="desk-chart",
            figure=history_figure(view.chart, lang),
            config={"displayModeBar": False, "responsive": True},
            className="desk-chart",
        ),
        html.H3(t("desk.timeline", lang)),
        events,
    ]


def _actions(departments: tuple[Option, ...], lang: str) -> html.Section:
    return html.Section(
        [
            html.H3(t("desk.actions.title", lang), id="desk-actions-title"),
            html.Div(
                [
                    html.Label(t("desk.note", lang), htmlFor="desk-note"),
                    html.Span(t("desk.note.hint", lang), id="desk-note-hint", className="hint"),
                ],
                className="note-label",
            ),
            dcc.Textarea(
                id="desk-note",
                value="",
                maxLength=2000,
                className="note",
            ),
            html.Div(
                [
                    html.Button(
                        t("desk.acknowledge_confirm", lang), id="desk-ack", className="button primary"
                    ),
                    html.Button(t("desk.comment", lang), id="desk-comment", className="button"),
                    html.Button(t("desk.close", lang), id="desk-close", className="button"),
                ],
                className="action-row",
            ),
            html.Div(
                [
                    html.Label(t("desk.assign_to", lang), htmlFor="desk-department"),
                    dcc.Dropdown(
                        id="desk-department",
                        options=[{"label": o.label, "value": o.value} for o in departments],
                        placeholder=t("desk.assign_choose", lang),
                        labels=dropdown_labels(lang),
                        className="dropdown",
                    ),
                    html.Button(t("desk.assign", lang), id="desk-assign", className="button"),
                ],
                className="assign-row",
                id="desk-assign-row",
            ),
        ],
        id="desk-actions",
        className="desk-actions",
        hidden=True,
        **_aria(labelledby="desk-actions-title"),
    )


STORES = (
    "desk-version",
    "desk-known",
    "desk-selected",
    "desk-shown",
    "desk-alarm",
    "desk-focus",
    "desk-focused",
    "desk-url",
    "desk-played",
    "desk-panel-version",
    "desk-ack-done",
    "desk-assign-done",
    "desk-comment-done",
    "desk-close-done",
    "desk-bulk-done",
)


def desk_page(
    view: ListView,
    filters: tuple[FilterChoice, ...],
    departments: tuple[Option, ...],
    version: int,
    known: dict[str, int],
    selected: int | None,
    lang: str,
    refresh_ms: int,
) -> html.Div:
    initial = {"desk-version": version, "desk-known": known, "desk-shown": view.bulk_ids}
    if selected is not None:
        initial["desk-selected"] = {"id": selected, "focus": False}
    # Never None: a store mounting without data reports a change and would set off every callback
    # listening to it.
    stores = [dcc.Store(id=name, data=initial.get(name, {})) for name in STORES]
    bulk_count = len(view.bulk_ids)
    return html.Div(
        [
            dcc.Interval(id="desk-tick", interval=refresh_ms),
            *stores,
            dcc.Store(id="desk-sound-on", data=False),
            html.Div(
                [
                    html.Div(id="desk-announce-text", role="alert", **_aria(atomic="true")),
                    html.Button(
                        t("desk.announce.dismiss", lang),
                        id="desk-dismiss",
                        className="button small",
                        hidden=True,
                    ),
                ],
                id="desk-announce",
                className="announce",
            ),
            html.Div(
                [
                    html.H2(t("desk.title", lang), id="desk-title"),
                    html.Div(
                        level_counts(view.counts, lang),
                        id="desk-counts",
                        className="level-counts",
                        role="group",
                        **_aria(label=t("desk.counts", lang)),
                    ),
                    html.Button(
                        t("desk.sound.off", lang),
                        id="desk-sound",
                        className="button sound",
                        title=t("desk.sound.help", lang),
                        **_aria(pressed="false"),
                        **{"data-on": t("desk.sound.on", lang), "data-off": t("desk.sound.off", lang)},
                    ),
                ],
                className="desk-head",
            ),
            html.Div(
                [_filter(f, lang) for f in filters],
                className="filters desk-filters",
                role="search",
                **_aria(label=t("desk.filters", lang)),
            ),
            html.Div(
                [
                    html.Section(
                        [
                            html.Div(alert_table(view, lang), id="desk-list", className="table-wrap"),
                            html.Div(
                                [
                                    html.Label(
                                        t("desk.bulk.note", lang),
                                        htmlFor="desk-bulk-note",
                                        className="visually-hidden",
                                    ),
                                    dcc.Input(
                                        id="desk-bulk-note",
                                        type="text",
                                        maxLength=2000,
                                        placeholder=t("desk.bulk.note", lang),
                                        className="search",
                                    ),
                                    html.Button(
                                        bulk_label(bulk_count, lang),
                                        id="desk-bulk",
                                        className="button",
                                        disabled=bulk_count == 0,
                                    ),
                                    html.Span(t("desk.bulk.hint", lang), className="hint"),
                                    html.P(id="desk-bulk-status", role="status", className="run-status"),
                                ],
                                className="bulk",
                            ),
                        ],
                        className="panel desk-list",
                        **_aria(labelledby="desk-title"),
                    ),
                    html.Aside(
                        [
                            html.P(t("desk.panel.empty", lang), id="desk-panel-empty", className="empty"),
                            html.Div(id="desk-panel-info"),
                            _actions(departments, lang),
                            html.P(id="desk-action-status", role="status", className="run-status"),
                        ],
                        className="panel desk-panel",
                        id="desk-panel",
                        **_aria(label=t("desk.panel.label", lang)),
                    ),
                ],
                className="desk-main",
            ),
        ],
        className="desk-page",
    )
