"""/sources callbacks: the console's views from the read API, and "run now" for administrators.

"Run now" only records a request in the store: the scheduler, in whichever process it runs,
claims it within seconds and brings the source's next run forward. So the web workers never fetch
from a department's system themselves.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dash import ALL, Dash, Input, Output, State, ctx, no_update
from sqlalchemy.orm import Session

from core.freshness import lateness
from core.i18n import t
from core.timeutil import local_text, utcnow
from layouts.sources import RejectedView, SourceView, rejected_rows, sources_page, sources_table
from store import queries
from store.state import request_run, run_requests
from web.auth import audit_write, current_identity, guard_outputs, require
from web.language import request_language
from web.runtime import WebRuntime

REJECTED_SHOWN = 2000


def _ago(seconds: float, lang: str) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return t("time.just_now", lang)
    if minutes < 120:
        return t("time.minutes_ago", lang, minutes=minutes)
    return t("time.hours_ago", lang, hours=minutes // 60)


def freshness(health: queries.SourceHealth, now: datetime, lang: str) -> tuple[str, str]:
    """How old the source's newest reading is, judged against what it should deliver."""
    if health.newest_observed_at is None:
        return t("sources.no_data", lang), "none"
    age = (now - health.newest_observed_at).total_seconds()
    return _ago(age, lang), lateness(age, health.expected_s)


def next_run_text(runtime: WebRuntime, health: queries.SourceHealth, now: datetime, lang: str) -> str:
    """When the interval schedule runs the source next (the scheduler's own clock may be a moment off)."""
    if not health.enabled:
        return t("sources.disabled", lang)
    if health.last_started_at is None:
        return t("sources.soon", lang)
    due = health.last_started_at + timedelta(seconds=health.every_s)
    return t("sources.soon", lang) if due <= now else local_text(due, runtime.settings.tz, "%H:%M:%S")


def source_view(
    runtime: WebRuntime,
    health: queries.SourceHealth,
    requested: tuple[datetime, str] | None,
    now: datetime,
    lang: str,
) -> SourceView:
    text, state = freshness(health, now, lang)
    status = health.last_status or "never"
    return SourceView(
        id=health.id,
        type=health.type,
        schedule=t("sources.every", lang, seconds=f"{health.every_s:g}"),
        status=status,
        last_run=local_text(health.last_started_at, runtime.settings.tz, "%m-%d %H:%M:%S"),
        accepted=health.accepted,
        rejected=health.rejected,
        freshness=text,
        fresh_state=state,
        next_run=next_run_text(runtime, health, now, lang),
        error=(health.last_error or "") if status in ("error", "timeout") else "",
        requested=t("sources.requested", lang, by=requested[1]) if requested else "",
    )


def source_views(runtime: WebRuntime, lang: str) -> list[SourceView]:
    now = utcnow()
    pending = run_requests(runtime.engine)
    return [
        source_view(runtime, h, pending.get(h.id), now, lang) for h in queries.source_health(runtime.engine)
    ]


def rejected_views(runtime: WebRuntime, source_id: str | None) -> list[RejectedView]:
    zone = runtime.settings.tz
    return [
        RejectedView(
            local_text(r.created_at, zone, "%m-%d %H:%M:%S"), r.source_id, r.run_id, r.field, r.reason, r.raw
        )
        for r in queries.rejected_records(runtime.engine, source_id or None, REJECTED_SHOWN)
    ]


def register(app: Dash, runtime: WebRuntime) -> dict:
    refresh_ms = int(runtime.settings.screen.refresh * 1000)
    default = runtime.settings.default_language
    known = {s.id for s in runtime.settings.sources}
    guard_outputs("source.run", "sources-run-status")

    def page(lang: str | None = None, **_query) -> object:
        lang = request_language(default, lang)
        can_run = current_identity().may("source.run")
        return sources_page(
            source_views(runtime, lang), rejected_views(runtime, None), lang, can_run, refresh_ms
        )

    @app.callback(
        Output("sources-table", "children"),
        Input("sources-tick", "n_intervals"),
        State("ui-lang", "data"),
        prevent_initial_call=True,
    )
    def refresh(_tick: int, lang: str):
        lang = request_language(default, lang)
        return sources_table(source_views(runtime, lang), lang, current_identity().may("source.run"))

    @app.callback(
        Output("rejected-grid", "rowData"),
        Output("rejected-grid", "dashGridOptions"),
        Input("rejected-source", "value"),
        Input("rejected-search", "value"),
        State("rejected-grid", "dashGridOptions"),
        prevent_initial_call=True,
    )
    def filter_rejected(source_id: str, search: str | None, options: dict):
        rows = (
            rejected_rows(rejected_views(runtime, source_id))
            if ctx.triggered_id == "rejected-source"
            else no_update
        )
        return rows, {**(options or {}), "quickFilterText": search or ""}

    @app.callback(
        Output("sources-run-status", "children"),
        Input({"type": "source-run", "source": ALL}, "n_clicks"),
        State("ui-lang", "data"),
        prevent_initial_call=True,
    )
    def run_now(clicks: list[int | None], lang: str):
        lang = request_language(default, lang)
        if not ctx.triggered_id or not any(clicks):
            return no_update
        identity = require("source.run")
        source_id = ctx.triggered_id["source"]
        if source_id not in known:
            return t("sources.unknown", lang, source=source_id)
        with Session(runtime.engine) as session:
            request_run(session, source_id, identity.name)
            session.commit()
        audit_write("source.run", source_id)
        return t("sources.run_requested", lang, source=source_id)

    return {"sources": page}
