"""/sources: every data source's health, and the records quarantined with their reasons.

Pure functions of their views. The sources are a plain table (screen readers announce rows and
headers); the rejected records, which can be thousands, are an AG Grid with a filter per column.
"""

from __future__ import annotations

from dataclasses import dataclass

import dash_ag_grid as dag
from dash import dcc, html

from core.i18n import t

GRID_THEME = {
    "function": "themeQuartz.withParams({backgroundColor: '#0d1a30', foregroundColor: '#e6eefc', "
    "accentColor: '#4cc3ff', borderColor: '#1d3557', fontSize: 14})"
}


@dataclass(frozen=True)
class SourceView:
    id: str
    type: str
    schedule: str
    status: str
    last_run: str
    accepted: int
    rejected: int
    freshness: str
    fresh_state: str  # fresh | late | stale | none
    next_run: str
    error: str
    requested: str


@dataclass(frozen=True)
class RejectedView:
    time: str
    source: str
    run: int
    field: str
    reason: str
    raw: str


STATUS_KEYS = {
    "ok": "sources.status.ok",
    "partial": "sources.status.partial",
    "error": "sources.status.error",
    "timeout": "sources.status.timeout",
    "running": "sources.status.running",
    "never": "sources.status.never",
}
HEADERS = (
    "sources.col.source",
    "sources.col.type",
    "sources.col.schedule",
    "sources.col.status",
    "sources.col.last_run",
    "sources.col.accepted",
    "sources.col.rejected",
    "sources.col.freshness",
    "sources.col.next_run",
)


def _row(view: SourceView, lang: str, can_run: bool) -> html.Tr:
    status = html.Span(
        t(STATUS_KEYS.get(view.status, "sources.status.never"), lang), className=f"status {view.status}"
    )
    cells = [
        html.Th(view.id, scope="row"),
        html.Td(view.type),
        html.Td(view.schedule),
        html.Td([status, html.Div(view.error, className="run-error")] if view.error else status),
        html.Td(view.last_run),
        html.Td(f"{view.accepted:,}", className="number"),
        html.Td(f"{view.rejected:,}", className="number" + (" warn" if view.rejected else "")),
        html.Td(view.freshness, className=f"fresh {view.fresh_state}"),
        html.Td(view.requested or view.next_run),
    ]
    if can_run:
        cells.append(
            html.Td(
                html.Button(
                    t("sources.run_now", lang),
                    id={"type": "source-run", "source": view.id},
                    className="button",
                    **{"aria-label": t("sources.run_now_label", lang, source=view.id)},
                )
            )
        )
    return html.Tr(cells)


def sources_table(views: list[SourceView], lang: str, can_run: bool) -> html.Table:
    headers = [html.Th(t(key, lang), scope="col") for key in HEADERS]
    if can_run:
        headers.append(
            html.Th(html.Span(t("sources.col.actions", lang), className="visually-hidden"), scope="col")
        )
    return html.Table(
        [
            html.Caption(t("sources.caption", lang), className="visually-hidden"),
            html.Thead(html.Tr(headers)),
            html.Tbody([_row(v, lang, can_run) for v in views]),
        ],
        className="table sources",
    )


def rejected_columns(lang: str) -> list[dict]:
    def column(field: str, key: str, **extra: object) -> dict:
        return {"field": field, "headerName": t(key, lang), **extra}

    return [
        column("time", "sources.rejected.time", width=150, sort="desc"),
        column("source", "sources.col.source", width=140),
        column("run", "sources.rejected.run", width=90, filter="agNumberColumnFilter"),
        column("field", "sources.rejected.field", width=120),
        column("reason", "sources.rejected.reason", flex=2, wrapText=True, autoHeight=True),
        column("raw", "sources.rejected.raw", flex=2, tooltipField="raw"),
    ]


def rejected_rows(rows: list[RejectedView]) -> list[dict]:
    return [r.__dict__ for r in rows]


def sources_page(
    views: list[SourceView], rejected: list[RejectedView], lang: str, can_run: bool, refresh_ms: int
) -> html.Div:
    options = [{"label": t("sources.all", lang), "value": ""}] + [
        {"label": v.id, "value": v.id} for v in views
    ]
    return html.Div(
        [
            dcc.Interval(id="sources-tick", interval=refresh_ms),
            html.Section(
                [
                    html.H2(t("sources.title", lang), id="sources-title"),
                    html.Div(sources_table(views, lang, can_run), id="sources-table", className="table-wrap"),
                    html.P(id="sources-run-status", role="status", className="run-status"),
                ],
                className="panel",
                **{"aria-labelledby": "sources-title"},
            ),
            html.Section(
                [
                    html.H2(t("sources.rejected.title", lang)),
                    html.Div(
                        [
                            html.Label(t("sources.rejected.source", lang), htmlFor="rejected-source"),
                            dcc.Dropdown(
                                id="rejected-source",
                                options=options,
                                value="",
                                clearable=False,
                                className="dropdown",
                            ),
                            html.Label(t("sources.rejected.search", lang), htmlFor="rejected-search"),
                            dcc.Input(id="rejected-search", type="search", debounce=True, className="search"),
                        ],
                        className="filters",
                    ),
                    dag.AgGrid(
                        id="rejected-grid",
                        columnDefs=rejected_columns(lang),
                        rowData=rejected_rows(rejected),
                        defaultColDef={
                            "filter": True,
                            "floatingFilter": True,
                            "sortable": True,
                            "resizable": True,
                        },
                        dashGridOptions={
                            "theme": GRID_THEME,
                            "pagination": True,
                            "paginationPageSize": 50,
                            "overlayNoRowsTemplate": t("sources.rejected.none", lang),
                        },
                        style={"height": "32rem"},
                    ),
                ],
                className="panel",
            ),
        ],
        className="sources-page",
    )
