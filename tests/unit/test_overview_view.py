"""The overview's search, filters, address and change against yesterday, and its cards' markup."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from dash._pages import _parse_query_string
from hypothesis import given
from hypothesis import strategies as st

from callbacks.overview import (
    DOMAIN_ORDER,
    MINUS,
    change_view,
    filter_domains,
    normalise,
    offered_domains,
    parse_query,
    query_string,
    search_text,
    search_tokens,
)
from indicators.catalog import DOMAINS, load_catalog
from layouts.overview import (
    SEARCH_LIMIT,
    CardView,
    ChangeView,
    DomainView,
    OverviewQuery,
    domain_sections,
    indicator_card,
)

CATALOG = load_catalog()
UNKNOWN = ChangeView("—", 0, "unknown")


def card(key: str, severity: int = 0, **changes) -> CardView:
    indicator = CATALOG.get(key)
    fields = dict(
        key=key,
        name=indicator.name.en if indicator else key,
        unit=indicator.unit if indicator else "",
        value_text="35.2",
        has_value=True,
        severity=severity,
        time_text="14:05",
        delayed_minutes=None,
        sparkline=(1.0, None, 2.0),
        sparkline_label="Last 24 h: 1.0 → 2.0",
        change=UNKNOWN,
        search_text=search_text(indicator) if indicator else normalise(key),
    )
    return CardView(**(fields | changes))


def catalog_domains() -> tuple[DomainView, ...]:
    """Every catalog indicator as a card, grouped like the page; severity cycles through 0..4."""
    indicators = list(CATALOG)
    return tuple(
        DomainView(d, tuple(card(i.key, indicators.index(i) % 5) for i in indicators if i.domain == d))
        for d in DOMAIN_ORDER
        if any(i.domain == d for i in indicators)
    )


def keys(domains: tuple[DomainView, ...]) -> list[str]:
    return [c.key for d in domains for c in d.cards]


# --- search ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("pm2.5", {"env.pm25"}),
        ("PM2.5", {"env.pm25"}),
        ("ＰＭ２．５", {"env.pm25"}),  # full width, as a Chinese input method types it
        ("空气", {"env.aqi"}),
        ("river", {"env.dissolved_oxygen", "env.ammonia_nitrogen", "water.river_level"}),
        ("River LEVEL", {"water.river_level"}),
        ("env.aqi", {"env.aqi"}),
    ],
)
def test_search_finds_by_either_name_or_key(text, expected):
    found = keys(filter_domains(catalog_domains(), OverviewQuery(text=text)))
    assert set(found) == expected


def test_search_by_domain_name_in_either_language():
    traffic = {i.key for i in CATALOG if i.domain == "traffic"}
    assert traffic <= set(keys(filter_domains(catalog_domains(), OverviewQuery(text="交通"))))
    assert traffic <= set(keys(filter_domains(catalog_domains(), OverviewQuery(text="traffic"))))


def test_every_word_must_match():
    assert keys(filter_domains(catalog_domains(), OverviewQuery(text="pm 2.5"))) == ["env.pm25"]
    assert keys(filter_domains(catalog_domains(), OverviewQuery(text="pm2.5 river"))) == []


def test_blank_search_keeps_everything():
    assert search_tokens("  \t ") == []
    assert keys(filter_domains(catalog_domains(), OverviewQuery(text=""))) == keys(catalog_domains())


# --- domain and level filters -----------------------------------------------------------------------


def test_domain_filter_keeps_only_the_chosen_domains_in_page_order():
    kept = filter_domains(catalog_domains(), OverviewQuery(domains=("water", "traffic")))
    assert [d.domain for d in kept] == ["traffic", "water"]
    assert set(keys(kept)) == {i.key for i in CATALOG if i.domain in ("water", "traffic")}


@pytest.mark.parametrize("least", [1, 2, 3, 4])
def test_level_filter_keeps_that_level_and_worse(least):
    kept = filter_domains(catalog_domains(), OverviewQuery(level=least))
    assert kept
    assert all(c.severity >= least for d in kept for c in d.cards)
    every = [c for d in catalog_domains() for c in d.cards]
    assert len(keys(kept)) == sum(1 for c in every if c.severity >= least)


def test_filters_combine_and_nothing_left_is_an_empty_page():
    kept = filter_domains(catalog_domains(), OverviewQuery(text="river", domains=("traffic",)))
    assert kept == ()
    message = domain_sections(kept, "en")[0]
    assert message.id == "overview-empty"
    assert "No indicator matches" in str(message.to_plotly_json())


def test_the_composite_index_comes_first():
    assert DOMAIN_ORDER[0] == "composite"
    assert sorted(DOMAIN_ORDER) == sorted(DOMAINS)


WORDS = st.sampled_from(["air", "river", "pm2.5", "交通", "水位", "index", "x", "Road", "  "])
CARDS = st.lists(
    st.builds(
        lambda n, severity, words: card(f"t.c{n}", severity, search_text=normalise(" ".join(words))),
        st.integers(0, 10_000),
        st.integers(0, 4),
        st.lists(WORDS, max_size=4),
    ),
    max_size=12,
)
QUERIES = st.builds(
    OverviewQuery,
    text=st.lists(WORDS, max_size=3).map(" ".join),
    domains=st.lists(st.sampled_from(DOMAINS), max_size=3, unique=True).map(tuple),
    level=st.integers(0, 4),
)


@given(st.lists(st.tuples(st.sampled_from(DOMAINS), CARDS), max_size=5, unique_by=lambda p: p[0]), QUERIES)
def test_filtering_keeps_exactly_the_matching_cards_in_order(groups, query):
    domains = tuple(DomainView(d, tuple(cards)) for d, cards in groups)
    kept = filter_domains(domains, query)
    tokens = search_tokens(query.text)

    def wanted(domain: str, c: CardView) -> bool:
        in_domain = not query.domains or domain in query.domains
        return in_domain and c.severity >= query.level and all(tok in c.search_text for tok in tokens)

    expected = [(d.domain, c.key) for d in domains for c in d.cards if wanted(d.domain, c)]
    assert [(d.domain, c.key) for d in kept for c in d.cards] == expected
    assert all(d.cards for d in kept)


# --- the address --------------------------------------------------------------------------------------


def test_parse_query_drops_what_is_not_offered():
    offered = ("composite", "traffic", "water")
    query = parse_query("  river ", "water,bogus,traffic", "9", offered)
    assert query == OverviewQuery(text="river", domains=("traffic", "water"), level=0)
    assert parse_query(None, None, None, offered) == OverviewQuery()
    assert parse_query(["a", "b"], ["water", "traffic"], "3", offered).level == 3
    assert parse_query("x" * 500, None, "x", offered).text == "x" * SEARCH_LIMIT


def test_query_string_is_empty_without_filters():
    assert query_string(OverviewQuery()) == ""
    assert (
        query_string(OverviewQuery("pm2.5", ("traffic", "water"), 2))
        == "?q=pm2.5&domain=traffic,water&level=2"
    )


TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=40).map(str.strip)


@given(TEXT, st.lists(st.sampled_from(DOMAINS), unique=True), st.integers(0, 4))
def test_the_address_reproduces_the_filters(text, chosen, least):
    """What the page writes into the address is what the page reads back from it (as Dash parses
    a query string for the page's layout)."""
    query = OverviewQuery(text, tuple(d for d in DOMAINS if d in chosen), least)
    raw = _parse_query_string(query_string(query))
    assert parse_query(raw.get("q"), raw.get("domain"), raw.get("level"), DOMAINS) == query


# --- change against yesterday --------------------------------------------------------------------------


def test_no_value_now_or_yesterday_is_unknown():
    assert change_view(None, 3.0, True, 1) == UNKNOWN
    assert change_view(3.0, None, True, 1) == UNKNOWN
    assert change_view(math.nan, 3.0, True, 1) == UNKNOWN


def test_a_rise_is_worse_when_higher_is_worse():
    assert change_view(52.0, 40.0, True, 1) == ChangeView("+12.0 (+30.0%)", 1, "worse")
    assert change_view(52.0, 40.0, False, 1) == ChangeView("+12.0 (+30.0%)", 1, "better")


def test_a_fall_uses_a_real_minus_sign():
    assert change_view(30.0, 40.0, True, 0) == ChangeView(f"{MINUS}10 ({MINUS}25.0%)", -1, "better")
    assert change_view(30.0, 40.0, False, 0) == ChangeView(f"{MINUS}10 ({MINUS}25.0%)", -1, "worse")


def test_a_change_that_rounds_to_nothing_is_steady():
    assert change_view(40.04, 40.0, True, 1) == ChangeView("0.0 (0.1%)", 0, "steady")
    assert change_view(40.0, 40.0, False, 0) == ChangeView("0 (0.0%)", 0, "steady")


def test_from_zero_there_is_no_percentage():
    assert change_view(5.0, 0.0, True, 0) == ChangeView("+5", 1, "worse")
    assert change_view(12345.0, 10.0, True, 0).text == "+12,335 (+123,350.0%)"


FINITE = st.floats(-1e9, 1e9, allow_nan=False)


@given(FINITE, FINITE, st.booleans(), st.integers(0, 4))
def test_change_arrow_sign_and_verdict_agree(now, then, higher_is_worse, decimals):
    change = change_view(now, then, higher_is_worse, decimals)
    flipped = change_view(now, then, not higher_is_worse, decimals)
    assert change.direction in (-1, 0, 1)
    assert change.text.startswith({1: "+", -1: MINUS, 0: "0"}[change.direction])
    if change.direction == 0:
        assert change.verdict == flipped.verdict == "steady"
    else:
        assert {change.verdict, flipped.verdict} == {"better", "worse"}
        assert (now > then) == (change.direction > 0)
        assert (change.verdict == "worse") == ((change.direction > 0) == higher_is_worse)


# --- the card --------------------------------------------------------------------------------------------


def find(component, predicate) -> list:
    found = [component] if predicate(component) else []
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if hasattr(child, "to_plotly_json"):
            found += find(child, predicate)
    return found


def test_card_is_one_link_named_by_what_it_shows():
    shown = card(
        "env.pm25", 2, change=ChangeView("+3.2 (+10.0%)", 1, "worse"), value_text="35.2", time_text="14:05"
    )
    item = indicator_card(shown, "en")
    links = find(item, lambda c: type(c).__name__ == "Link")
    assert len(links) == 1 and links[0].href == "/indicators/env.pm25"
    label = find(links[0], lambda c: getattr(c, "className", "") == "visually-hidden")[0].children
    assert label == (
        "PM2.5 concentration, 35.2 µg/m³, level: Yellow (serious), "
        "vs yesterday +3.2 (+10.0%), worse, as of 14:05"
    )
    visual = find(links[0], lambda c: getattr(c, "className", "") == "ov-visual")[0]
    assert visual.to_plotly_json()["props"]["aria-hidden"] == "true"
    assert item.to_plotly_json()["props"]["data-severity"] == "2"


def test_stale_card_is_greyed_and_says_how_late():
    item = indicator_card(card("env.aqi", 0, delayed_minutes=42), "zh-CN")
    link = find(item, lambda c: type(c).__name__ == "Link")[0]
    assert "stale" in link.className
    assert link.style == {"borderLeftColor": "#6b7280"}
    assert "数据延迟 42 分钟" in str(item.to_plotly_json())


def test_card_without_a_reading_says_no_data():
    item = indicator_card(card("env.aqi", 0, has_value=False, value_text="—"), "en")
    assert find(item, lambda c: "ov-no-data" in (getattr(c, "className", "") or ""))
    assert "level:" not in find(item, lambda c: getattr(c, "className", "") == "visually-hidden")[0].children


def test_offered_domains_follow_the_clearance_in_page_order():
    runtime = SimpleNamespace(catalog=CATALOG)
    assert offered_domains(runtime, ("internal", "public", "restricted")) == tuple(
        d for d in DOMAIN_ORDER if any(i.domain == d for i in CATALOG)
    )
    assert offered_domains(runtime, ()) == ()
