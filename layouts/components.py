"""Small reusable pieces shared by pages: level badges, KPI cards, alert items."""

from __future__ import annotations

from dataclasses import dataclass

from dash import html

from core.i18n import t
from core.levels import STALE_COLOUR, level


@dataclass(frozen=True)
class KpiView:
    key: str
    name: str
    unit: str
    value_text: str
    severity: int
    trend: int
    time_text: str
    delayed_minutes: int | None


@dataclass(frozen=True)
class AlertView:
    id: int
    severity: int
    state: str
    explanation: str
    since_text: str


TREND_ARROWS = {1: "▲", -1: "▼", 0: "▶"}
TREND_KEYS = {1: "trend.up", -1: "trend.down", 0: "trend.flat"}


def level_badge(severity: int, lang: str) -> html.Span:
    """The level's numeral and colour word; the full name is the tooltip and the accessible name."""
    lvl = level(severity)
    label = f"{lvl.roman} {t(lvl.short_key, lang)}".strip()
    return html.Span(
        label,
        className=f"badge level-{severity}",
        style={"backgroundColor": lvl.colour},
        title=t(lvl.name_key, lang),
        **{"aria-label": t(lvl.name_key, lang)},
    )


def kpi_card(kpi: KpiView, lang: str) -> html.Div:
    """One vital sign: value, unit, trend, level colour, and when it was last measured."""
    stale = kpi.delayed_minutes is not None
    colour = STALE_COLOUR if stale else level(kpi.severity).colour
    when = (
        t("screen.delayed", lang, minutes=kpi.delayed_minutes)
        if stale
        else t("screen.as_of", lang, time=kpi.time_text)
    )
    return html.Div(
        [
            html.Div(kpi.name, className="kpi-name"),
            html.Div(
                [
                    html.Span(kpi.value_text, className="kpi-value"),
                    html.Span(kpi.unit, className="kpi-unit"),
                    html.Span(
                        TREND_ARROWS[kpi.trend],
                        className=f"kpi-trend trend-{kpi.trend}",
                        title=t(TREND_KEYS[kpi.trend], lang),
                        **{"aria-label": t(TREND_KEYS[kpi.trend], lang)},
                    ),
                ],
                className="kpi-line",
            ),
            html.Div(when, className="kpi-time" + (" kpi-delayed" if stale else "")),
        ],
        className="kpi-card" + (" stale" if stale else ""),
        style={"borderColor": colour},
        id={"type": "kpi", "key": kpi.key},
        **{"data-severity": str(kpi.severity), "data-testid": "kpi-card"},
    )


def alert_item(alert: AlertView, lang: str) -> html.Li:
    return html.Li(
        [
            level_badge(alert.severity, lang),
            html.Span(alert.explanation, className="alert-text"),
            html.Span(
                alert.since_text + ("" if alert.state != "resolved" else " · " + t("alert.resolved", lang)),
                className="alert-since",
            ),
        ],
        className=f"alert-item level-{alert.severity} state-{alert.state}",
    )


def alert_list(alerts: list[AlertView], lang: str) -> html.Ul | html.Div:
    if not alerts:
        return html.Div(t("screen.no_alerts", lang), className="empty")
    return html.Ul([alert_item(a, lang) for a in alerts], className="alert-list")
