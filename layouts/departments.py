"""/departments: each department's record over a period (考核), as a plain table a screen reader can
walk, with the overdue rule spelled out above it."""

from __future__ import annotations

from dataclasses import dataclass

from dash import dcc, html

from core.i18n import t

PERIODS = (7, 30, 90)


@dataclass(frozen=True)
class DepartmentRow:
    name: str
    link: str
    open: int
    overdue: int
    resolved: int
    acknowledged: int
    median_acknowledge: str
    median_resolve: str


HEADERS = (
    "dept.col.department",
    "dept.col.open",
    "dept.col.overdue",
    "dept.col.resolved",
    "dept.col.acknowledged",
    "dept.col.median_acknowledge",
    "dept.col.median_resolve",
)


def _row(row: DepartmentRow) -> html.Tr:
    return html.Tr(
        [
            html.Th(dcc.Link(row.name, href=row.link), scope="row"),
            html.Td(str(row.open), className="number"),
            html.Td(str(row.overdue), className="number" + (" overdue" if row.overdue else "")),
            html.Td(str(row.resolved), className="number"),
            html.Td(str(row.acknowledged), className="number"),
            html.Td(row.median_acknowledge, className="number"),
            html.Td(row.median_resolve, className="number"),
        ],
        className="dept-row",
    )


def departments_table(rows: list[DepartmentRow], days: int, lang: str) -> html.Table:
    return html.Table(
        [
            html.Caption(t("dept.caption", lang, days=days), className="visually-hidden"),
            html.Thead(
                html.Tr(
                    [
                        html.Th(t(key, lang), scope="col", className="number" if n else None)
                        for n, key in enumerate(HEADERS)
                    ]
                )
            ),
            html.Tbody([_row(r) for r in rows]),
        ],
        className="table dept-table",
    )


def departments_page(rows: list[DepartmentRow], days: int, overdue_rule: str, lang: str) -> html.Div:
    return html.Div(
        html.Section(
            [
                html.H2(t("dept.title", lang), id="dept-title"),
                html.Div(
                    [
                        html.Span(t("dept.period", lang), id="dept-period-label"),
                        dcc.RadioItems(
                            id="dept-period",
                            options=[{"label": t("dept.days", lang, days=d), "value": d} for d in PERIODS],
                            value=days,
                            inline=True,
                            className="period",
                        ),
                    ],
                    className="filters",
                    role="group",
                    **{"aria-labelledby": "dept-period-label"},
                ),
                html.P(t("dept.help", lang), className="hint"),
                html.P(overdue_rule, className="hint", id="dept-overdue-rule"),
                html.Div(departments_table(rows, days, lang), id="dept-table", className="table-wrap"),
            ],
            className="panel",
            **{"aria-labelledby": "dept-title"},
        ),
        className="departments-page",
    )
