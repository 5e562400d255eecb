"""/: every vital sign by domain, for a leader on a laptop. Pure functions of the views below.

Each card is one link to the indicator's page: its visible parts are hidden from screen readers
and a single sentence (name, value, unit, level, change, freshness) is the link's accessible name,
so a keyboard or screen-reader user hears one stop per indicator instead of a dozen fragments.
"""

from __future__ import annotations

from dataclasses import dataclass

from dash import dcc, html

from core.i18n import t
from core.levels import LEVELS, STALE_COLOUR, level
from layouts.components import level_badge, level_text
from layouts.sparkline import sparkline

SEARCH_LIMIT = 100
SPARK_COLOUR = "#9fc3ff"
CHANGE_ARROWS = {1: "▲", -1: "▼", 0: "▶"}


@dataclass(frozen=True)
class ChangeView:
    """The change against the same hour yesterday: `text` like "+3.2 (+5.1%)"; `verdict` one of
    better, worse, steady, unknown (no value yesterday)."""

    text: str
    direction: int
    verdict: str


@dataclass(frozen=True)
class CardView:
    key: str
    name: str
    unit: str
    value_text: str
    has_value: bool
    severity: int
    time_text: str
    delayed_minutes: int | None
    sparkline: tuple[float | None, ...]
    sparkline_label: str
    change: ChangeView
    search_text: str

    @property
    def href(self) -> str:
        return f"/indicators/{self.key}"


@dataclass(frozen=True)
class DomainView:
    domain: str
    cards: tuple[CardView, ...]


@dataclass(frozen=True)
class OverviewQuery:
    """The filters as chosen: search text, domains (none: all), least level (0: all)."""

    text: str = ""
    domains: tuple[str, ...] = ()
    level: int = 0

    @property
    def active(self) -> bool:
        return bool(self.text or self.domains or self.level)


def level_options(lang: str) -> list[dict]:
    """All, any warning (IV and above), III and above, II and above, I only."""
    options = [
        {"label": t("overview.level.all", lang), "value": "0"},
        {"label": t("overview.level.warnings", lang), "value": "1"},
    ]
    options += [
        {
            "label": t("overview.level.at_least", lang, level=level_text(lvl.severity, lang)),
            "value": str(lvl.severity),
        }
        for lvl in LEVELS[2:-1]
    ]
    options.append(
        {
            "label": t("overview.level.only", lang, level=level_text(LEVELS[-1].severity, lang)),
            "value": str(LEVELS[-1].severity),
        }
    )
    return options


def _change_text(change: ChangeView, lang: str) -> str:
    if change.verdict == "unknown":
        return t("overview.change.unknown", lang)
    return t(
        "overview.card.change", lang, change=change.text, verdict=t(f"overview.change.{change.verdict}", lang)
    )


def _freshness(card: CardView, lang: str) -> str:
    if card.delayed_minutes is not None:
        return t("overview.delayed", lang, minutes=card.delayed_minutes)
    return t("overview.as_of", lang, time=card.time_text)


def card_label(card: CardView, lang: str) -> str:
    """The card's accessible name: everything the card shows, as one sentence."""
    level_part = (
        t("overview.card.level", lang, level=t(level(card.severity).name_key, lang))
        if card.has_value
        else t("overview.no_data", lang)
    )
    parts = [
        card.name,
        t("overview.card.value", lang, value=card.value_text, unit=card.unit).strip(),
        level_part,
        _change_text(card.change, lang),
        _freshness(card, lang),
    ]
    return t("overview.card.separator", lang).join(parts)


def change_line(change: ChangeView, lang: str) -> html.Div:
    """ "vs yesterday ▲ +3.2 (+5.1%) worse": the arrow gives the direction, the word the judgement
    (colour alone would say nothing to a colour-blind reader)."""
    if change.verdict == "unknown":
        shown = [html.Span("—", className="ov-change-value")]
    else:
        shown = [
            html.Span(f"{CHANGE_ARROWS[change.direction]} {change.text}", className="ov-change-value"),
            html.Span(t(f"overview.change.{change.verdict}", lang), className="ov-verdict"),
        ]
    return html.Div(
        [html.Span(t("overview.vs_yesterday", lang), className="ov-change-label"), *shown],
        className=f"ov-change {change.verdict}",
        title=_change_text(change, lang),
    )


def indicator_card(card: CardView, lang: str) -> html.Li:
    """One vital sign as one link: value and unit, level, 24 h sparkline, change vs yesterday."""
    stale = card.delayed_minutes is not None
    border = STALE_COLOUR if stale else level(card.severity).colour
    badge = (
        level_badge(card.severity, lang)
        if card.has_value
        else html.Span(t("overview.no_data", lang), className="badge ov-no-data")
    )
    visual = html.Div(
        [
            html.Div(
                [html.Span(card.name, className="ov-name", title=card.name), badge], className="ov-head"
            ),
            html.Div(
                [
                    html.Span(card.value_text, className="ov-value"),
                    html.Span(card.unit, className="ov-unit"),
                    sparkline(
                        card.sparkline,
                        STALE_COLOUR if stale else SPARK_COLOUR,
                        card.sparkline_label,
                        "ov-spark",
                    ),
                ],
                className="ov-line",
            ),
            change_line(card.change, lang),
            html.Div(_freshness(card, lang), className="ov-time" + (" ov-delayed" if stale else "")),
        ],
        className="ov-visual",
        **{"aria-hidden": "true"},
    )
    return html.Li(
        dcc.Link(
            [html.Span(card_label(card, lang), className="visually-hidden"), visual],
            href=card.href,
            className="ov-card" + (" stale" if stale else ""),
            style={"borderLeftColor": border},
        ),
        className="ov-item",
        **{"data-key": card.key, "data-severity": str(card.severity), "data-testid": "overview-card"},
    )


def domain_sections(domains: tuple[DomainView, ...], lang: str) -> list:
    """The domains that still hold a card, or a message saying that nothing matches."""
    if not domains:
        return [
            html.Div(
                [
                    html.P(t("overview.empty", lang), className="ov-empty-title"),
                    html.P(t("overview.empty_hint", lang)),
                ],
                className="panel ov-empty",
                id="overview-empty",
            )
        ]
    return [
        html.Section(
            [
                html.H2(
                    [
                        t(f"domain.{d.domain}", lang),
                        html.Span(str(len(d.cards)), className="ov-domain-count"),
                    ],
                    id=f"ov-domain-{d.domain}",
                ),
                html.Ul([indicator_card(card, lang) for card in d.cards], className="ov-grid"),
            ],
            className="panel ov-domain",
            **{"aria-labelledby": f"ov-domain-{d.domain}", "data-domain": d.domain},
        )
        for d in domains
    ]


def count_text(shown: int, total: int, lang: str) -> str:
    return t("overview.count", lang, shown=shown, total=total)


def filter_bar(query: OverviewQuery, offered_domains: tuple[str, ...], lang: str) -> html.Div:
    """Search, level and domains; every choice is one click or one word."""
    return html.Div(
        [
            html.Div(
                [
                    html.Label(t("overview.search.label", lang), htmlFor="overview-search"),
                    dcc.Input(
                        id="overview-search",
                        type="search",
                        value=query.text,
                        debounce=0.3,
                        maxLength=SEARCH_LIMIT,
                        autoComplete="off",
                        placeholder=t("overview.search.placeholder", lang),
                        className="search",
                    ),
                ],
                className="ov-search",
            ),
            html.Fieldset(
                [
                    html.Legend(t("overview.level.label", lang)),
                    dcc.RadioItems(
                        id="overview-level",
                        options=level_options(lang),
                        value=str(query.level),
                        inline=True,
                        className="ov-choices",
                    ),
                ],
                className="ov-fieldset",
            ),
            html.Fieldset(
                [
                    html.Legend(t("overview.domain.label", lang)),
                    dcc.Checklist(
                        id="overview-domain",
                        options=[{"label": t(f"domain.{d}", lang), "value": d} for d in offered_domains],
                        value=list(query.domains),
                        inline=True,
                        className="ov-choices",
                    ),
                ],
                className="ov-fieldset ov-domains",
            ),
        ],
        className="ov-filters",
        role="search",
        **{"aria-label": t("overview.filters", lang)},
    )


def overview(
    shown: tuple[DomainView, ...],
    total: int,
    query: OverviewQuery,
    offered_domains: tuple[str, ...],
    live_key: list[int],
    url_query: str,
    lang: str,
    refresh_ms: int,
) -> html.Div:
    """`shown`: the domains after filtering; `url_query` the filters as the address writes them."""
    return html.Div(
        [
            dcc.Interval(id="overview-tick", interval=refresh_ms),
            dcc.Store(id="overview-version", data=live_key),
            dcc.Store(id="overview-url", data=url_query),
            dcc.Store(id="overview-url-shown", data=url_query),
            dcc.Store(id="overview-focus", data=""),
            html.Div(
                [
                    html.H2(t("overview.title", lang), id="overview-title"),
                    html.P(
                        count_text(sum(len(d.cards) for d in shown), total, lang),
                        id="overview-count",
                        className="ov-count",
                        role="status",
                    ),
                    html.Button(
                        t("overview.clear", lang),
                        id="overview-clear",
                        className="button small",
                        hidden=not query.active,
                    ),
                ],
                className="ov-top",
            ),
            filter_bar(query, offered_domains, lang),
            html.Div(domain_sections(shown, lang), id="overview-domains", className="ov-domains-list"),
        ],
        className="overview",
    )
