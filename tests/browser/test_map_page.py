"""/map in real Chromium, at a desk PC's and a laptop's size, in both languages: the map fills the
window, every district is drawn, the layer control switches layers and their legends, the picker
changes the address and the colours, a click on a district opens its panel of vital signs (Escape
closes it), and a refresh sends the changed data but never the boundaries again.

The deployment leaves one district indicator (weather.visibility) without data, so picking it turns
every district grey: a colour change the test can count on whatever the simulated levels are.
"""

from __future__ import annotations

import re
import sqlite3

import pytest
from playwright.sync_api import Page, expect

from core.i18n import t
from core.levels import STALE_COLOUR
from indicators.catalog import load_catalog
from tests.browser.conftest import ARTIFACTS, click_shape, free_port, served, settle
from tests.conftest import demo_config

pytestmark = pytest.mark.browser
NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?$")
WAIT = 20_000  # ms: the test machine is shared, a callback can queue behind a refresh for seconds
SIZES_AND_LANGUAGES = [(1920, 1080, "zh-CN", "zh-CN"), (1366, 768, "en-GB", "en")]
NO_DATA = "weather.visibility"
CLUSTER_ABOVE = 20  # traffic has 22 stations: it clusters; the other domains do not
SHAPE = ".leaflet-districts-pane path.district-shape"
SHAPES = f"document.querySelectorAll({SHAPE!r})"
FILLS = f"Array.from({SHAPES}, p => p.getAttribute('fill'))"


@pytest.fixture(autouse=True, scope="module")
def patient_expectations():
    """Callbacks queue behind the 2 s refresh on a busy machine: every expectation waits up to WAIT."""
    expect.set_options(timeout=WAIT)
    yield
    expect.set_options(timeout=5_000)


@pytest.fixture(scope="module")
def map_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("map")
    config = demo_config()
    config["database"]["url"] = f"sqlite:///{folder / 'citybrain.db'}"
    config["server"]["port"] = free_port()
    config["scheduler"]["backfill"] = "3h"
    config["screen"]["refresh"] = "2s"
    config["map"]["cluster_above"] = CLUSTER_ABOVE
    for source in config["sources"]:
        if source["id"] == "wuxi-sim":
            source["options"]["exclude"] = [*source["options"]["exclude"], NO_DATA]
        else:
            source["backfill"] = "3h"  # the heat needs the last hour only
    with served(config, folder) as app:
        yield app | {"db": folder / "citybrain.db"}


def open_map(page: Page, url: str, query: str = "") -> tuple[list[str], list[str]]:
    errors, requests = [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{url}/map{query}")
    page.wait_for_function(
        f"{SHAPES}.length === 7",
        timeout=30_000,
    )
    page.wait_for_selector(".heat-cell", state="attached", timeout=15_000)
    settle(page, SHAPE)
    return errors, requests


def overlay(page: Page, key: str, lang: str, **values):
    return page.locator(".leaflet-control-layers-overlays label", has_text=t(key, lang, **values)).locator(
        "input"
    )


@pytest.mark.parametrize("width, height, locale, lang", SIZES_AND_LANGUAGES)
def test_the_map_fills_the_window_with_every_layer(map_server, page_at, width, height, locale, lang):
    page = page_at(width, height, locale=locale)
    errors, requests = open_map(page, map_server["url"])
    page.wait_for_selector(".station-marker", timeout=15_000)

    assert page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]") == [
        width,
        height,
    ]
    canvas = page.locator("#map-map").bounding_box()
    header = page.locator(".app-header").bounding_box()
    assert canvas["width"] == width and canvas["y"] == pytest.approx(header["height"], abs=1)
    assert canvas["y"] + canvas["height"] == pytest.approx(height, abs=1)

    names = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    expected = [t("map.layer.districts", lang), t("map.layer.heat", lang)]
    expected += [
        t("map.layer.stations", lang, domain=t(f"domain.{d}", lang))
        for d in ("traffic", "environment", "water", "health", "government")
    ]
    expected.append(t("map.layer.alerts", lang))
    assert [n.strip() for n in names] == expected  # energy's substations are internal: not for visitors
    assert page.locator(".leaflet-control-layers-overlays input:checked").count() == len(expected)
    assert page.locator(".leaflet-stations-environment-pane .station-marker").count() == 19
    assert page.locator(".station-cluster").count() > 0  # traffic: 22 stations > 20, clustered
    assert page.locator(".heat-cell").count() > 20
    expect(page.locator("#map-legend-heat h3")).to_have_text(
        "12345热线来电量" if lang == "zh-CN" else "12345 hotline calls"
    )
    expect(page.locator("#map-legend-title")).to_have_text(
        re.compile(re.escape("空气质量指数" if lang == "zh-CN" else "Air quality index"))
    )
    expect(page.locator("#map-legend-heat .legend-note")).to_contain_text("12345")
    hotline_unit = "次/小时" if lang == "zh-CN" else "calls/h"  # the catalog's unit in the page's language
    expect(page.locator("#map-legend-heat .heat-scale")).to_contain_text(hotline_unit)
    expect(page.locator(".nav-link", has_text=t("nav.map", lang))).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / f"map-{lang}-{width}x{height}.png"))
    assert not errors, errors
    outside = [u for u in requests if not u.startswith((map_server["url"], "data:", "blob:"))]
    assert not outside, f"loaded from outside the deployment (intranet-only): {outside}"


def test_the_layer_control_switches_layers_and_their_legends(map_server, page_at):
    page = page_at(1920, 1080, locale="zh-CN")
    errors, _ = open_map(page, map_server["url"])
    heat, districts = overlay(page, "map.layer.heat", "zh-CN"), overlay(page, "map.layer.districts", "zh-CN")
    environment = overlay(page, "map.layer.stations", "zh-CN", domain=t("domain.environment", "zh-CN"))
    warnings = overlay(page, "map.layer.alerts", "zh-CN")
    alerts_shown = page.locator(".alert-marker").count()

    heat.uncheck()
    expect(page.locator(".heat-cell")).to_have_count(0)
    expect(page.locator("#map-legend-heat")).to_be_hidden()
    environment.uncheck()
    expect(page.locator(".leaflet-stations-environment-pane .station-marker")).to_have_count(0)
    expect(page.locator(".leaflet-stations-water-pane .station-marker")).not_to_have_count(0)
    districts.uncheck()
    expect(page.locator("path.district-shape")).to_have_count(0)
    expect(page.locator("#map-legend-districts")).to_be_hidden()
    warnings.uncheck()
    expect(page.locator(".alert-marker")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "map-layers-off-1920x1080.png"))

    for box in (heat, environment, districts, warnings):
        box.check()
    expect(page.locator("path.district-shape")).to_have_count(7)
    expect(page.locator("#map-legend-districts")).to_be_visible()
    expect(page.locator("#map-legend-heat")).to_be_visible()
    expect(page.locator(".leaflet-stations-environment-pane .station-marker")).to_have_count(19)
    expect(page.locator(".alert-marker")).to_have_count(alerts_shown)
    assert page.locator(".heat-cell").count() > 20
    assert not errors, errors


def pick(page: Page, name: str, lang: str) -> None:
    """Open the picker, search for the indicator by its name, choose it."""
    page.locator("#map-indicator").click()
    page.get_by_placeholder(t("desk.dropdown.search", lang)).fill(name)
    page.get_by_role("option", name=name, exact=True).click()


@pytest.mark.parametrize("width, height, locale, lang", SIZES_AND_LANGUAGES)
def test_picking_an_indicator_changes_the_address_and_the_colours(
    map_server, page_at, width, height, locale, lang
):
    catalog = load_catalog()
    page = page_at(width, height, locale=locale)
    errors, _ = open_map(page, map_server["url"], "?indicator=env.aqi")
    before = page.evaluate(FILLS)
    assert any(fill != STALE_COLOUR for fill in before), before  # AQI has fresh data everywhere

    pick(page, catalog[NO_DATA].name.get(lang), lang)
    expect(page).to_have_url(re.compile(rf"/map\?indicator={re.escape(NO_DATA)}$"))
    expect(page.locator("#map-legend-title")).to_contain_text(catalog[NO_DATA].name.get(lang))
    page.wait_for_function(f"{FILLS}.every(fill => fill === '{STALE_COLOUR}')", timeout=WAIT)

    pick(page, catalog["traffic.tpi"].name.get(lang), lang)
    expect(page).to_have_url(re.compile(r"/map\?indicator=traffic\.tpi$"))
    page.wait_for_function(f"{FILLS}.some(fill => fill !== '{STALE_COLOUR}')", timeout=WAIT)
    assert t("map.picker.indicator", lang) in page.locator(".map-toolbar").inner_text()

    page.reload()  # the address reproduces the view
    page.wait_for_selector(".leaflet-districts-pane path.district-shape")
    tpi = catalog["traffic.tpi"]
    expect(page.locator("#map-legend-title")).to_have_text(f"{tpi.name.get(lang)} {tpi.unit}".strip())
    assert not errors, errors


@pytest.mark.parametrize("width, height, locale, lang", SIZES_AND_LANGUAGES)
def test_a_click_on_a_district_opens_its_vital_signs_and_escape_closes_them(
    map_server, page_at, width, height, locale, lang
):
    page = page_at(width, height, locale=locale)
    errors, _ = open_map(page, map_server["url"])
    panel = page.locator("#map-panel")
    expect(panel).to_be_hidden()

    click_shape(page, SHAPE, 1)
    expect(panel).to_be_visible()
    match = re.search(r"district=(\d{6})", page.url)
    assert match, page.url
    code = match.group(1)
    page.wait_for_function("document.activeElement.id === 'map-panel-title'", timeout=WAIT)
    assert panel.get_attribute("role") == "region"
    assert panel.get_attribute("aria-labelledby") == "map-panel-title"
    title = page.locator("#map-panel-title").inner_text()
    chosen = page.locator("#map-district").inner_text()
    assert chosen.strip() and chosen.strip() in title  # the picker names the district too

    signs = panel.locator("li.vital")
    assert signs.count() >= 20  # the demo district reports most of the catalog
    assert "hotline.calls_12345" in [signs.nth(i).get_attribute("data-key") for i in range(signs.count())]
    values = panel.locator(".vital-value").all_inner_texts()
    assert all(NUMBER.match(v.strip()) for v in values), values
    assert panel.locator(".vital .badge").count() == signs.count()
    href = panel.locator("a.vital-name").first.get_attribute("href")
    assert re.fullmatch(rf"/indicators/[a-z_]+\.[a-z0-9_.]+\?region={code}", href), href
    assert NO_DATA not in [signs.nth(i).get_attribute("data-key") for i in range(signs.count())]
    # the panel pushes the layer control aside and the window still does not scroll
    control = page.locator(".leaflet-control-layers").bounding_box()
    assert control["x"] + control["width"] <= panel.bounding_box()["x"] + 1
    assert page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]") == [
        width,
        height,
    ]
    page.screenshot(path=str(ARTIFACTS / f"map-panel-{lang}-{width}x{height}.png"))

    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(page).not_to_have_url(re.compile("district="))
    page.wait_for_function("document.activeElement.id === 'map-map'", timeout=WAIT)

    # the address with a district opens its panel; the close button closes it too
    page.goto(f"{map_server['url']}/map?indicator=env.aqi&district={code}")
    expect(panel).to_be_visible()
    expect(page.locator("#map-panel-title")).to_have_text(title)
    page.locator("#map-panel-close").click()
    expect(panel).to_be_hidden()
    assert not errors, errors


def test_the_district_picker_opens_the_panel_from_the_keyboard(map_server, page_at):
    page = page_at(1366, 768, locale="en-GB")
    open_map(page, map_server["url"])
    page.locator("#map-district").focus()
    page.keyboard.press("Enter")  # opens the list; the search field takes the focus
    page.wait_for_function("document.activeElement.classList.contains('dash-dropdown-search')")
    page.keyboard.type("Binhu")
    expect(page.get_by_role("option")).to_have_count(1)
    page.keyboard.press("Enter")
    expect(page.locator("#map-panel")).to_be_visible()
    expect(page.locator("#map-panel-title")).to_have_text("Binhu: vital signs")
    expect(page).to_have_url(re.compile(r"district=320211"))
    page.wait_for_function(f"Array.from({SHAPES}).some(p => p.getAttribute('stroke') === '#ffffff')")
    page.keyboard.press("Escape")
    expect(page.locator("#map-panel")).to_be_hidden()


def test_a_refresh_sends_the_new_data_but_never_the_boundaries(map_server, page_at):
    page = page_at(1920, 1080, locale="zh-CN")
    errors, _ = open_map(page, map_server["url"], "?district=320205")
    replies: list[str] = []

    def keep(response):
        body = response.request.post_data or ""
        if "/_dash-update-component" in response.url and ("map-tick" in body or "map-version" in body):
            replies.append(response.text())

    page.on("response", keep)
    for _ in range(80):  # a tick or two with the same version
        if sum('"map-version"' not in r for r in replies) >= 2:
            break
        page.wait_for_timeout(250)
    quiet = [r for r in replies if '"map-version"' not in r]
    assert quiet, "no refresh tick seen"
    assert all("hideout" not in r and "FeatureCollection" not in r for r in quiet), quiet
    assert all('"map-updated"' in r for r in quiet)

    with sqlite3.connect(map_server["db"]) as db:  # a new data version, as an ingest run leaves it
        db.execute(
            "UPDATE app_state SET value = CAST(CAST(value AS INTEGER) + 1000 AS TEXT)"
            " WHERE key = 'data_version'"
        )
    for _ in range(80):
        if any('"hideout"' in r for r in replies):
            break
        page.wait_for_timeout(250)
    refreshed = [r for r in replies if '"hideout"' in r]
    assert refreshed, "the new version was not sent"
    reply = refreshed[-1]
    assert '"map-alerts"' in reply and '"map-heat"' in reply and "map-stations" in reply
    assert "name_zh" not in reply and "MultiPolygon" not in reply  # the boundaries stay where they are
    assert len(reply) < 400_000
    assert '"map-panel-body"' in reply  # the open panel follows the new version
    assert page.locator("#map-panel").is_visible()
    assert not errors, errors
