"""Small reusable pieces shared by pages: level badges, KPI cards, the index gauge."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from dash import html

from core.i18n import t
from core.levels import STALE_COLOUR, level

MISSING = "—"


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

    @property
    def missing(self) -> bool:
        """No reading at all yet: shown as "no data", never as a zero."""
        return self.value_text == MISSING


@dataclass(frozen=True)
class AlertView:
    id: int
    severity: int
    state: str
    explanation: str
    since_text: str


TREND_ARROWS = {1: "▲", -1: "▼", 0: "▶"}
TREND_KEYS = {1: "trend.up", -1: "trend.down", 0: "trend.flat"}


def format_value(value: float | None, decimals: int) -> str:
    return "—" if value is None else f"{value:,.{decimals}f}"


def level_text(severity: int, lang: str) -> str:
    """The level's numeral and colour word ("II 橙色"), as every page and export writes it."""
    lvl = level(severity)
    return f"{lvl.roman} {t(lvl.short_key, lang)}".strip()


def level_badge(severity: int, lang: str) -> html.Span:
    """The level's numeral and colour word; the full name is the tooltip and the accessible name."""
    lvl = level(severity)
    return html.Span(
        level_text(severity, lang),
        className=f"badge level-{severity}",
        style={"backgroundColor": lvl.colour},
        title=t(lvl.name_key, lang),
        **{"aria-label": t(lvl.name_key, lang)},
    )


def kpi_card(kpi: KpiView, lang: str) -> html.Div:
    """One vital sign: value, unit, trend, level colour, and when it was last measured. Late or
    missing data is greyed and says so in words, so it is never read as a current value."""
    stale = kpi.delayed_minutes is not None or kpi.missing
    colour = STALE_COLOUR if stale else level(kpi.severity).colour
    if kpi.missing:
        when = t("screen.no_data", lang)
    elif kpi.delayed_minutes is not None:
        when = t("screen.delayed", lang, minutes=kpi.delayed_minutes)
    else:
        when = t("screen.as_of", lang, time=kpi.time_text)
    return html.Div(
        [
            html.Div(kpi.name, className="kpi-name", title=kpi.name),
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
        className=f"kpi-card level-{0 if stale else kpi.severity}" + (" stale" if stale else ""),
        style={"borderColor": colour},
        id={"type": "kpi", "key": kpi.key},
        **{"data-severity": str(kpi.severity), "data-testid": "kpi-card"},
    )


GAUGE_START, GAUGE_SWEEP = 135.0, 270.0  # degrees, clockwise from east: an open ring, gap at the bottom


def _arc(fraction_from: float, fraction_to: float, radius: float) -> str:
    """SVG path of the ring between two fractions (0-1) of the gauge's sweep."""

    def point(fraction: float) -> str:
        angle = math.radians(GAUGE_START + GAUGE_SWEEP * fraction)
        return f"{60 + radius * math.cos(angle):.2f},{60 + radius * math.sin(angle):.2f}"

    large = 1 if (fraction_to - fraction_from) * GAUGE_SWEEP > 180 else 0
    return f"M{point(fraction_from)}A{radius},{radius} 0 {large} 1 {point(fraction_to)}"


def gauge(
    fraction: float | None, bands: Sequence[tuple[float, float, str]], colour: str, label: str
) -> html.Img:
    """An open ring gauge as a small inline SVG: an outer scale coloured by the level bands
    (fractions 0-1 of the scale and their colours), an inner arc up to `fraction` in `colour`. The
    number itself is page text beside it, so it scales, reads aloud and can be tested."""
    scale = "".join(
        f'<path d="{_arc(start, end, 54)}" stroke="{band}" stroke-width="4" fill="none"/>'
        for start, end, band in bands
        if end > start
    )
    track = (
        f'<path d="{_arc(0, 1, 44)}" stroke="#1d3557" stroke-width="10" fill="none" stroke-linecap="round"/>'
    )
    shown = "" if fraction is None else min(max(fraction, 0.0), 1.0)
    value = (
        ""
        if shown == "" or shown <= 0
        else f'<path d="{_arc(0, shown, 44)}" stroke="{colour}" stroke-width="10" fill="none" '
        'stroke-linecap="round"/>'
    )
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 104">{scale}{track}{value}</svg>'
    return html.Img(src="data:image/svg+xml," + quote(svg), alt=label, title=label, className="gauge")
