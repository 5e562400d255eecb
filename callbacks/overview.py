"""/ callbacks: every catalog indicator's city-wide value, grouped by domain."""

from __future__ import annotations

from dash import Dash, Input, Output, State

from callbacks.views import kpi_view
from core.timeutil import utcnow
from indicators.catalog import DOMAINS
from layouts.overview import DomainView, domain_sections, overview
from store import queries
from store.state import data_version
from web.auth import current_clearance
from web.language import request_language
from web.runtime import WebRuntime


def build_domains(runtime: WebRuntime, lang: str, classes: tuple[str, ...]) -> list[DomainView]:
    """The indicators of the classifications the requester may see, by domain."""
    keys = [i.key for i in runtime.catalog if i.classification in classes]
    latest = queries.latest(runtime.engine, keys)
    now = utcnow()
    domains = []
    for domain in DOMAINS:
        kpis = [
            kpi_view(runtime, latest[i.key], lang, now)
            for i in runtime.catalog
            if i.domain == domain and i.key in latest
        ]
        if kpis:
            domains.append(DomainView(domain, kpis))
    return domains


def register(app: Dash, runtime: WebRuntime) -> dict:
    refresh_ms = int(runtime.settings.screen.refresh * 1000)
    default = runtime.settings.default_language

    @runtime.cache.memoize()
    def cached_domains(version: int, lang: str, classes: tuple[str, ...]) -> list[DomainView]:
        return build_domains(runtime, lang, classes)

    def page(lang: str | None = None, **_query) -> object:
        lang = request_language(default, lang)
        return overview(
            cached_domains(data_version(runtime.engine), lang, current_clearance()), lang, refresh_ms
        )

    @app.callback(
        Output("overview-domains", "children"),
        Input("overview-tick", "n_intervals"),
        State("ui-lang", "data"),
        prevent_initial_call=True,
    )
    def refresh(_tick: int, lang: str):
        lang = request_language(default, lang)
        return domain_sections(cached_domains(data_version(runtime.engine), lang, current_clearance()), lang)

    return {"overview": page}
