"""/ callbacks: every indicator the requester may see, by domain, with search and filters.

The cards are built once per data version and minute (so delays keep counting through an outage),
language and clearance (memoized); the filters are
applied to that cached view on every request, so typing in the search box never touches the
database. The filters live in the address (`?q=`,
`domain=`, `level=`), so a copied link reproduces the view.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from urllib.parse import quote

from dash import ClientsideFunction, Dash, Input, Output, State, no_update

from callbacks.views import delayed_minutes, live_key, query_values
from core.i18n import t
from core.levels import LEVELS
from core.timeutil import local_text, utcnow
from indicators.catalog import DOMAINS, Indicator
from layouts.components import format_value
from layouts.overview import (
    SEARCH_LIMIT,
    CardView,
    ChangeView,
    DomainView,
    OverviewQuery,
    count_text,
    domain_sections,
    overview,
)
from store import history, queries
from store.queries import Latest
from web.auth import current_clearance
from web.language import request_language
from web.runtime import WebRuntime

# The headline number first, then the domains in the catalog's order.
DOMAIN_ORDER = ("composite", *(d for d in DOMAINS if d != "composite"))
MINUS = "\u2212"


# --- search and filters --------------------------------------------------------------------------


def normalise(text: str) -> str:
    """Case- and width-insensitive form: full-width "ＰＭ２．５" from a Chinese input method matches
    "PM2.5", and "River" matches "river"."""
    return unicodedata.normalize("NFKC", text).casefold()


def search_tokens(text: str) -> list[str]:
    """Every word must occur somewhere in the card's names or key ("pm 2.5" finds PM2.5)."""
    return normalise(text).split()


def search_text(indicator: Indicator) -> str:
    """What a search looks in: the key, both names and both names of the domain."""
    domain = f"domain.{indicator.domain}"
    parts = (indicator.key, indicator.name.zh, indicator.name.en, t(domain, "zh-CN"), t(domain, "en"))
    return normalise(" ".join(parts))


def parse_query(text: object, domains: object, least: object, offered: Collection[str]) -> OverviewQuery:
    """Filters from the address or the controls; anything not offered is dropped, so a shared link
    cannot ask for a domain the reader may not see."""
    chosen = set(query_values(domains))
    try:
        level = int(str(least))
    except ValueError:
        level = 0
    return OverviewQuery(
        text=(text if isinstance(text, str) else "").strip()[:SEARCH_LIMIT],
        domains=tuple(d for d in offered if d in chosen),
        level=level if 0 <= level < len(LEVELS) else 0,
    )


def query_string(query: OverviewQuery) -> str:
    """The filters as the address writes them ("" when none is set)."""
    parts = []
    if query.text:
        parts.append("q=" + quote(query.text, safe=""))
    if query.domains:
        parts.append("domain=" + ",".join(quote(d, safe="") for d in query.domains))
    if query.level:
        parts.append(f"level={query.level}")
    return "?" + "&".join(parts) if parts else ""


def matches(card: CardView, tokens: Iterable[str], least: int) -> bool:
    return card.severity >= least and all(token in card.search_text for token in tokens)


def filter_domains(domains: Iterable[DomainView], query: OverviewQuery) -> tuple[DomainView, ...]:
    """The domains and cards that pass the filters; domains left empty are dropped."""
    tokens = search_tokens(query.text)
    kept = []
    for domain in domains:
        if query.domains and domain.domain not in query.domains:
            continue
        cards = tuple(c for c in domain.cards if matches(c, tokens, query.level))
        if cards:
            kept.append(DomainView(domain.domain, cards))
    return tuple(kept)


# --- change against yesterday ---------------------------------------------------------------------


def change_view(now: float | None, then: float | None, higher_is_worse: bool, decimals: int) -> ChangeView:
    """Now against the same hour yesterday, rounded as the value is shown: a change that rounds to
    nothing is "steady", so the arrow never contradicts the digits next to it."""
    if now is None or then is None or not (math.isfinite(now) and math.isfinite(then)):
        return ChangeView("—", 0, "unknown")
    delta = now - then
    magnitude = f"{abs(delta):,.{decimals}f}"
    direction = 0 if float(magnitude.replace(",", "")) == 0 else (1 if delta > 0 else -1)
    sign = {1: "+", -1: MINUS, 0: ""}[direction]
    text = sign + magnitude
    if then != 0:
        percent = f"{abs(delta) / abs(then) * 100:,.1f}"
        text += f" ({sign if float(percent.replace(',', '')) else ''}{percent}%)"
    if direction == 0:
        verdict = "steady"
    else:
        verdict = "worse" if (direction > 0) == higher_is_worse else "better"
    return ChangeView(text, direction, verdict)


# --- views ---------------------------------------------------------------------------------------


def card_view(
    runtime: WebRuntime,
    latest: Latest,
    hourly: list[float | None],
    yesterday: float | None,
    lang: str,
    now: datetime,
) -> CardView:
    indicator = runtime.catalog[latest.indicator]
    known = [v for v in hourly if v is not None]
    first = format_value(known[0] if known else None, indicator.decimals)
    last = format_value(known[-1] if known else None, indicator.decimals)
    return CardView(
        key=indicator.key,
        name=indicator.name.get(lang),
        unit=indicator.unit_in(lang),
        value_text=format_value(latest.value, indicator.decimals),
        has_value=latest.value is not None,
        severity=latest.severity,
        time_text=local_text(latest.observed_at, runtime.settings.tz, "%H:%M"),
        delayed_minutes=delayed_minutes(indicator, latest.observed_at, now),
        sparkline=tuple(hourly),
        sparkline_label=t(
            "overview.sparkline", lang, first=first, last=last, unit=indicator.unit_in(lang)
        ).strip(),
        change=change_view(latest.value, yesterday, indicator.higher_is_worse, indicator.decimals),
        search_text=search_text(indicator),
    )


def offered_domains(runtime: WebRuntime, classes: tuple[str, ...]) -> tuple[str, ...]:
    """The domains holding an indicator the clearance may see, in page order."""
    seen = {i.domain for i in runtime.catalog.cleared(classes)}
    return tuple(d for d in DOMAIN_ORDER if d in seen)


def build_domains(runtime: WebRuntime, lang: str, classes: tuple[str, ...]) -> tuple[DomainView, ...]:
    """The indicators of the classifications the requester may see, by domain: three read-API calls
    for all of them (latest values, 24 hourly values, yesterday's hour), whatever their number."""
    visible = runtime.catalog.cleared(classes)
    keys = [i.key for i in visible]
    engine = runtime.engine
    now = utcnow()
    latest = queries.latest(engine, keys)
    hourly = history.sparklines(engine, keys, now, 24)
    yesterday = history.city_values_at(engine, keys, now - timedelta(hours=24))
    domains = []
    for domain in DOMAIN_ORDER:
        cards = tuple(
            card_view(runtime, latest[i.key], hourly[i.key], yesterday[i.key], lang, now)
            for i in visible
            if i.domain == domain
        )
        if cards:
            domains.append(DomainView(domain, cards))
    return tuple(domains)


def register(app: Dash, runtime: WebRuntime) -> dict:
    refresh_ms = int(runtime.settings.screen.refresh * 1000)
    default = runtime.settings.default_language

    @runtime.cache.memoize()
    def cached_domains(
        version: int, at_minute: int, lang: str, classes: tuple[str, ...]
    ) -> tuple[DomainView, ...]:
        return build_domains(runtime, lang, classes)

    def page(
        lang: str | None = None, q: object = None, domain: object = None, level: object = None, **_query
    ) -> object:
        lang = request_language(default, lang)
        classes = current_clearance()
        key = live_key(runtime.engine)
        domains = cached_domains(*key, lang, classes)
        offered = offered_domains(runtime, classes)
        query = parse_query(q, domain, level, offered)
        return overview(
            filter_domains(domains, query),
            sum(len(d.cards) for d in domains),
            query,
            offered,
            key,
            query_string(query),
            lang,
            refresh_ms,
        )

    @app.callback(
        Output("overview-version", "data"),
        Output("overview-domains", "children"),
        Output("overview-count", "children"),
        Output("overview-url", "data"),
        Output("overview-clear", "hidden"),
        Input("overview-tick", "n_intervals"),
        Input("overview-search", "value"),
        Input("overview-domain", "value"),
        Input("overview-level", "value"),
        State("overview-version", "data"),
        State("overview-url", "data"),
        State("ui-lang", "data"),
        prevent_initial_call=True,
    )
    def refresh(
        _tick: int,
        text: str | None,
        domains_chosen: list | None,
        least: str | None,
        shown_key: list[int],
        shown_query: str,
        lang: str,
    ):
        """Compares what is shown (version and filters) with what is asked, never with what set
        the callback off: Dash drops the answer of a call still running when a newer one starts
        (a tick right after a keystroke), so only the state on the page says what is drawn."""
        classes = current_clearance()
        key = live_key(runtime.engine)
        query = parse_query(text, domains_chosen, least, offered_domains(runtime, classes))
        if key == shown_key and query_string(query) == shown_query:
            return (no_update,) * 5
        lang = request_language(default, lang)
        domains = cached_domains(*key, lang, classes)
        kept = filter_domains(domains, query)
        return (
            key,
            domain_sections(kept, lang),
            count_text(sum(len(d.cards) for d in kept), sum(len(d.cards) for d in domains), lang),
            query_string(query),
            not query.active,
        )

    @app.callback(
        Output("overview-search", "value"),
        Output("overview-domain", "value"),
        Output("overview-level", "value"),
        Input("overview-clear", "n_clicks"),
        prevent_initial_call=True,
    )
    def clear(_clicks: int):
        return "", [], "0"

    app.clientside_callback(
        ClientsideFunction(namespace="citybrainOverview", function_name="syncUrl"),
        Output("overview-url-shown", "data"),
        Input("overview-url", "data"),
    )
    app.clientside_callback(
        ClientsideFunction(namespace="citybrainOverview", function_name="restoreFocus"),
        Output("overview-focus", "data"),
        Input("overview-version", "data"),
        prevent_initial_call=True,
    )

    return {"overview": page}
