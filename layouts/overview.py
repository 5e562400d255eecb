"""/: every vital sign by domain, for a leader on a laptop. Pure function of its view."""

from __future__ import annotations

from dataclasses import dataclass

from dash import dcc, html

from core.i18n import t
from layouts.components import KpiView, kpi_card


@dataclass(frozen=True)
class DomainView:
    domain: str
    kpis: list[KpiView]


def domain_sections(domains: list[DomainView], lang: str) -> list[html.Section]:
    return [
        html.Section(
            [
                html.H2(t(f"domain.{d.domain}", lang)),
                html.Div([kpi_card(k, lang) for k in d.kpis], className="kpi-grid wide"),
            ],
            className="panel domain",
        )
        for d in domains
    ]


def overview(domains: list[DomainView], lang: str, refresh_ms: int) -> html.Div:
    return html.Div(
        [
            dcc.Interval(id="overview-tick", interval=refresh_ms),
            html.Div(domain_sections(domains, lang), id="overview-domains"),
        ],
        className="overview",
    )
