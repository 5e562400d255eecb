"""/departments callbacks: the accountability figures from store.desk for the chosen period."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from dash import Dash, Input, Output, State
from werkzeug.exceptions import Forbidden

from callbacks.alerts import department_names, duration_text, owners
from core.i18n import t
from core.settings import Settings
from core.timeutil import utcnow
from indicators.catalog import severity_of
from layouts.components import level_text
from layouts.departments import PERIODS, DepartmentRow, departments_page, departments_table
from store import desk
from web.auth import current_clearance, current_identity, page_allowed, visible_indicators
from web.language import request_language
from web.runtime import WebRuntime


def overdue_limits(settings: Settings) -> dict[int, timedelta]:
    """The built-in overdue limits, with the deployment's `desk.overdue_after` on top."""
    configured = {severity_of(name): timedelta(seconds=s) for name, s in settings.desk.overdue_after.items()}
    return desk.OVERDUE_AFTER | configured


def overdue_rule(overdue_after: dict[int, timedelta], lang: str) -> str:
    """The SLA in words, most severe level first."""
    limits = ", ".join(
        f"{level_text(severity, lang)} {duration_text(limit, lang)}"
        for severity, limit in sorted(overdue_after.items(), reverse=True)
    )
    return t("dept.overdue_rule", lang, limits=limits)


def department_rows(
    runtime: WebRuntime, days: int, lang: str, classes: tuple[str, ...]
) -> list[DepartmentRow]:
    now = utcnow()
    names = department_names(runtime.catalog)
    figures = desk.department_figures(
        runtime.engine,
        owners(runtime.catalog),
        now - timedelta(days=days),
        now,
        overdue_limits(runtime.settings),
        visible_indicators(runtime, classes),
    )

    def shown(span: timedelta | None) -> str:
        return "—" if span is None else duration_text(span, lang)

    ordered = sorted(figures.values(), key=lambda f: (-f.overdue, -f.open, f.department))
    return [
        DepartmentRow(
            name=names[f.department].get(lang) if f.department in names else f.department,
            link=f"/alerts?department={quote(f.department, safe='')}",
            open=f.open,
            overdue=f.overdue,
            resolved=f.resolved,
            acknowledged=f.acknowledged,
            median_acknowledge=shown(f.median_acknowledge),
            median_resolve=shown(f.median_resolve),
        )
        for f in ordered
    ]


def _period(raw: object) -> int:
    try:
        days = int(str(raw))
    except ValueError:
        return PERIODS[0]
    return days if days in PERIODS else PERIODS[0]


def register(app: Dash, runtime: WebRuntime) -> dict:
    default = runtime.settings.default_language

    def page(lang: str | None = None, days: str | None = None, **_query) -> object:
        lang = request_language(default, lang)
        chosen = _period(days or PERIODS[0])
        rows = department_rows(runtime, chosen, lang, current_clearance())
        return departments_page(rows, chosen, overdue_rule(overdue_limits(runtime.settings), lang), lang)

    @app.callback(
        Output("dept-table", "children"),
        Input("dept-period", "value"),
        State("ui-lang", "data"),
        prevent_initial_call=True,
    )
    def change_period(days, lang):
        if not page_allowed("/departments", current_identity()):
            raise Forbidden("the accountability view is for duty officers")
        lang = request_language(default, lang)
        chosen = _period(days)
        return departments_table(department_rows(runtime, chosen, lang, current_clearance()), chosen, lang)

    return {"departments": page}
