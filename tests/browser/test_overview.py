"""/ in real Chromium at a leader's laptop size (1366x768), in Chinese and English: cards show
numbers, search and filters narrow and land in the address, the address reproduces the view, a card
opens its indicator by click and by keyboard, and only what the reader may see is shown."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from callbacks.overview import DOMAIN_ORDER
from core.i18n import t
from core.levels import level
from indicators.catalog import load_catalog
from store.state import bump_data_version
from tests.browser.conftest import ARTIFACTS, free_port, served
from tests.conftest import demo_config

pytestmark = pytest.mark.browser
NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?$")
CHANGE = re.compile(r"^[▲▼▶] [+−]?[\d,]+(\.\d+)? ?(\([+−]?[\d,]+\.\d%\))?$")
CATALOG = load_catalog()
PUBLIC = [i.key for i in CATALOG if i.classification == "public"]
CARDS = "[data-testid=overview-card]"
HEADINGS = {"zh-CN": ("城市体征", "交通"), "en": ("City vital signs", "Traffic")}


@pytest.fixture(scope="module")
def overview_app(tmp_path_factory):
    """The demo deployment with 25 hours of history, so every card has a yesterday to compare with;
    refreshing every 2 s, so a test sees the periodic refresh without waiting long."""
    folder = tmp_path_factory.mktemp("overview")
    config = demo_config()
    config["database"]["url"] = f"sqlite:///{folder / 'citybrain.db'}"
    config["server"]["port"] = free_port()
    config["scheduler"]["backfill"] = "25h"
    config["screen"]["refresh"] = "2s"
    with served(config, folder) as app:
        yield app | {"db": folder / "citybrain.db"}


def shown_keys(page: Page) -> list[str]:
    return page.locator(CARDS).evaluate_all("cards => cards.map(c => c.dataset.key)")


def open_overview(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(f"{CARDS}, #overview-empty", timeout=30_000)


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def search(page: Page, text: str) -> None:
    """Type as a person would and wait until the list has answered."""
    before = page.locator("#overview-count").inner_text()
    page.locator("#overview-search").fill(text)
    expect(page.locator("#overview-count")).not_to_have_text(before, timeout=20_000)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_public_indicator_is_a_card_with_numbers(overview_app, page_at, lang):
    page = page_at(1366, 768, locale=lang)
    errors, requests = [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: requests.append(request.url))
    open_overview(page, overview_app["url"] + "/")
    assert sorted(shown_keys(page)) == sorted(PUBLIC)
    title, traffic = HEADINGS[lang]
    expect(page.locator("#overview-title")).to_have_text(title)
    expect(page.locator("#ov-domain-traffic")).to_contain_text(traffic)
    values = page.locator(f"{CARDS} .ov-value").all_inner_texts()
    assert all(NUMBER.match(v) for v in values), values
    changes = page.locator(f"{CARDS} .ov-change-value").all_inner_texts()
    assert all(CHANGE.match(c) for c in changes), changes
    sparks = page.locator(f"{CARDS} img.ov-spark").evaluate_all("imgs => imgs.map(i => i.src)")
    assert len(sparks) == len(PUBLIC) and all("%3Cpath%20d%3D%22M" in s for s in sparks)
    assert page.evaluate("document.documentElement.scrollWidth") == 1366
    page.screenshot(path=str(ARTIFACTS / f"overview-{lang}-1366x768.png"))
    assert not errors, errors
    outside = [u for u in requests if not u.startswith((overview_app["url"], "data:", "blob:"))]
    assert not outside, outside


@pytest.mark.parametrize(
    "text, expected",
    [
        ("pm2.5", {"env.pm25"}),
        ("空气", {"env.aqi"}),
        ("RIVER level", {"water.river_level"}),
    ],
)
def test_search_narrows_lands_in_the_address_and_survives_a_reload(overview_app, page_at, text, expected):
    page = page_at(1366, 768, locale="en")
    open_overview(page, overview_app["url"] + "/")
    search(page, text)
    assert set(shown_keys(page)) == expected
    expect(page.locator("#overview-count")).to_have_text(f"{len(expected)} of {len(PUBLIC)} indicators")
    page.wait_for_function(f"new URLSearchParams(location.search).get('q') === {text!r}")
    page.reload()
    page.wait_for_selector(CARDS)
    assert set(shown_keys(page)) == expected
    expect(page.locator("#overview-search")).to_have_value(text)


def cards_on_page(page: Page) -> list[tuple[str, str, int]]:
    """(key, domain, severity) of every card shown, in page order."""
    return page.locator(CARDS).evaluate_all(
        "cards => cards.map(c => "
        "[c.dataset.key, c.closest('section').dataset.domain, Number(c.dataset.severity)])"
    )


def test_domain_and_level_filters_land_in_the_address_and_the_address_reproduces_them(overview_app, page_at):
    page = page_at(1366, 768, locale="zh-CN")
    open_overview(page, overview_app["url"] + "/")
    every = cards_on_page(page)
    # The domain of the worst card (the simulated city warns somewhere most of the time), and water.
    worst = max(every, key=lambda card: card[2])[1]
    chosen = [d for d in DOMAIN_ORDER if d in {worst, "water"}]
    for domain in chosen:
        page.locator("#overview-domain label", has_text=t(f"domain.{domain}", "zh-CN")).click()
    page.locator("#overview-level label", has_text="有预警").click()
    page.wait_for_function("new URLSearchParams(location.search).get('level') === '1'")
    assert query_of(page) == {"domain": [",".join(chosen)], "level": ["1"]}
    filtered = cards_on_page(page)
    assert all(domain in chosen and severity >= 1 for _, domain, severity in filtered), filtered
    if any(severity >= 1 for _, domain, severity in every if domain in chosen):
        assert filtered
    expect(page.locator("#overview-count")).to_have_text(f"共 {len(PUBLIC)} 项指标，显示 {len(filtered)} 项")
    page.screenshot(path=str(ARTIFACTS / "overview-filtered-zh-CN-1366x768.png"))

    page.goto(page.url)
    page.wait_for_selector(f"{CARDS}, #overview-empty")
    assert [key for key, _, _ in cards_on_page(page)] == [key for key, _, _ in filtered]
    expect(page.locator("#overview-level input[value='1']")).to_be_checked()
    for domain in chosen:
        expect(page.locator(f"#overview-domain input[value='{domain}']")).to_be_checked()

    page.locator("#overview-clear").click()
    page.wait_for_function("location.search === ''")
    expect(page.locator(CARDS)).to_have_count(len(PUBLIC))
    expect(page.locator("#overview-clear")).to_be_hidden()


def test_nothing_matching_says_so(overview_app, page_at):
    page = page_at(1366, 768, locale="en")
    open_overview(page, overview_app["url"] + "/?q=no-such-indicator")
    expect(page.locator("#overview-empty")).to_contain_text("No indicator matches these filters.")
    expect(page.locator(CARDS)).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "overview-empty-en-1366x768.png"))


def test_filters_survive_the_periodic_refresh(overview_app, page_at):
    page = page_at(1366, 768, locale="en")
    open_overview(page, overview_app["url"] + "/?q=river")
    expected = shown_keys(page)
    assert expected
    page.locator(f"{CARDS} a").first.focus()

    def refreshed(response) -> bool:
        return "_dash-update-component" in response.url and "overview-domains" in (
            response.request.post_data or ""
        )

    with page.expect_response(refreshed, timeout=15_000) as answer:
        engine = create_engine(f"sqlite:///{overview_app['db']}")
        with Session(engine) as session:
            bump_data_version(session)
            session.commit()
        engine.dispose()
    assert answer.value.ok
    page.wait_for_timeout(300)
    assert shown_keys(page) == expected
    assert query_of(page) == {"q": ["river"]}
    assert page.evaluate("document.activeElement.getAttribute('href')") == f"/indicators/{expected[0]}"


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_card_opens_its_indicator_by_click_and_by_keyboard(overview_app, page_at, lang):
    page = page_at(1366, 768, locale=lang)
    base = overview_app["url"]
    open_overview(page, f"{base}/?lang={lang}&q=pm2.5")
    card = page.locator(f"{CARDS}[data-key='env.pm25']")
    value = card.locator(".ov-value").inner_text()
    severity = int(card.get_attribute("data-severity"))
    spoken = t("overview.card.separator", lang).join(
        [
            CATALOG["env.pm25"].name.get(lang),
            f"{value} µg/m³",
            t("overview.card.level", lang, level=t(level(severity).name_key, lang)),
        ]
    )
    link = card.get_by_role("link")
    expect(link).to_have_accessible_name(re.compile("^" + re.escape(spoken)))
    expect(link).to_have_attribute("href", "/indicators/env.pm25")
    link.click()
    page.wait_for_url(f"{base}/indicators/env.pm25")
    page.go_back()
    page.wait_for_selector(CARDS)
    assert query_of(page) == {"lang": [lang], "q": ["pm2.5"]}
    assert shown_keys(page) == ["env.pm25"]

    open_overview(page, f"{base}/")
    page.locator("#overview-search").focus()
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('ov-card')"):
            break
    else:
        pytest.fail("no card could be reached with the Tab key")
    target = page.evaluate("document.activeElement.getAttribute('href')")
    assert target.startswith("/indicators/")
    page.keyboard.press("Enter")
    page.wait_for_url(base + target)


def test_only_what_the_reader_may_see(overview_app, page_at):
    hidden = {i.key for i in CATALOG if i.classification != "public"}
    assert hidden
    page = page_at(1366, 768, locale="en")
    open_overview(page, overview_app["url"] + "/?q=crowd")
    expect(page.locator("#overview-empty")).to_be_visible()
    page.goto(overview_app["url"] + "/login?next=/")
    page.fill("#login-username", "officer")
    page.fill("#login-password", "officer-demo")
    page.locator("form.login-form button[type=submit]").click()
    page.wait_for_url(overview_app["url"] + "/")
    page.wait_for_selector(CARDS)
    assert hidden <= set(shown_keys(page))
    assert len(shown_keys(page)) == len(CATALOG)
