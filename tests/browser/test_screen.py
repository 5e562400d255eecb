"""/screen in real Chromium at the wall's sizes, in both languages: the page fills the screen
exactly, every figure is a number, no text is small or cut, the map shows every district; the
playlist rotates the map without re-sending boundaries; a failing source shows as an outage."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

from indicators.catalog import load_catalog
from tests.browser.conftest import ARTIFACTS, free_port, served
from tests.conftest import demo_config

pytestmark = pytest.mark.browser
NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?$")
FIGURES = (
    ".kpi-value, [data-testid=index-value], .sub-value .number, .weather-value .number, .trend-value .number"
)
DATA_PAYLOAD = 1_000_000

# The smallest computed font of any visible text, and where it is.
MIN_FONT_JS = """() => {
  let smallest = [1e9, ''];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.textContent.trim()) continue;
    const el = node.parentElement, box = el.getBoundingClientRect(), style = getComputedStyle(el);
    if (!box.width || !box.height || style.visibility === 'hidden') continue;
    if (box.right <= 0 || box.bottom <= 0 || box.left >= innerWidth || box.top >= innerHeight) continue;
    const size = parseFloat(style.fontSize);
    if (size < smallest[0]) smallest = [size, node.textContent.trim().slice(0, 40)];
  }
  return smallest;
}"""

# Texts of the wall that stick out of their panel (partly inside, partly out), and labels that
# ellipsis or clamping shortened.
CUT_JS = """() => {
  const cut = [];
  for (const el of document.querySelectorAll('.screen *')) {
    if (el.closest('.leaflet-container') || !el.childElementCount && !el.textContent.trim()) continue;
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const panel = el.closest('.panel, .screen-status, .screen-page');
    if (!panel) continue;
    const a = el.getBoundingClientRect(), b = panel.getBoundingClientRect();
    if (!a.width || getComputedStyle(el).visibility === 'hidden') continue;
    const inside = a.left >= b.left - 1 && a.right <= b.right + 1
      && a.top >= b.top - 1 && a.bottom <= b.bottom + 1;
    const outside = a.right <= b.left || a.left >= b.right || a.bottom <= b.top || a.top >= b.bottom;
    if (!inside && !outside) cut.push(el.className + ': ' + el.textContent.trim().slice(0, 40));
  }
  for (const el of document.querySelectorAll('.kpi-name, .sub-name, .trend-name, .weather-name')) {
    const halfLine = parseFloat(getComputedStyle(el).fontSize) / 2;
    if (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + halfLine)
      cut.push('shortened ' + el.className + ': ' + el.textContent.trim());
  }
  return cut;
}"""


def public_kpis() -> list[str]:
    """The demo's KPIs a visitor who is not signed in may see."""
    catalog = load_catalog()
    config = demo_config()
    return [key for key in config["screen"]["kpis"] if catalog[key].classification == "public"]


def is_data(url: str, base: str) -> bool:
    """The page's own bytes (document, layout, callbacks), not the cached JavaScript libraries."""
    path = url.removeprefix(base).split("?")[0]
    return path == "/screen" or (
        path.startswith("/_dash-") and not path.startswith("/_dash-component-suites")
    )


def open_screen(page, url: str):
    page.goto(url + "/screen")
    page.wait_for_function(
        "document.querySelectorAll('.leaflet-districts-pane path.district-shape').length === 7",
        timeout=30_000,
    )
    page.wait_for_selector(".station-marker, .screen-cluster", timeout=15_000)


def test_healthz_says_healthy(live_app):
    with urllib.request.urlopen(live_app["url"] + "/healthz", timeout=5) as response:
        report = json.load(response)
        assert response.status == 200
    assert report["status"] in ("ok", "degraded")
    assert report["database"]["ok"] is True
    assert report["scheduler"]["alive"] is True
    sources = {source["id"]: source for source in report["sources"]}
    assert set(sources) == {"wuxi-sim", "wuxi-hotline"}
    assert all(source["last_status"] in ("ok", "partial") for source in sources.values()), sources


@pytest.mark.parametrize("locale", ["zh-CN", "en-GB"])
@pytest.mark.parametrize("width, height", [(1920, 1080), (3840, 2160)])
def test_wall_screen_fills_the_display_with_the_whole_city(live_app, page_at, width, height, locale):
    page = page_at(width, height, locale=locale)
    errors, requests, payload = [], [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: requests.append(request.url))
    page.on("response", lambda response: payload.append((response.url, len(response.body()))))
    open_screen(page, live_app["url"])
    data = [(url, size) for url, size in payload if is_data(url, live_app["url"])]
    figures = page.locator(FIGURES).all_inner_texts()
    kpis = public_kpis()
    assert page.locator(".kpi-card").count() == len(kpis) and len(figures) >= len(kpis) + 1 + 10 + 4
    assert all(NUMBER.match(v.strip()) for v in figures), figures
    assert page.locator("[data-testid=sub-index]").count() == 10
    assert page.locator("#screen-freshness .freshness.live").count() == 1
    assert page.locator(".outage-banner").count() == 0
    assert ("无锡" if locale == "zh-CN" else "Wuxi") in page.locator("h1").inner_text()
    page.wait_for_function("document.getElementById('clock').textContent.length > 8")
    scroll = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert scroll == [width, height]
    smallest, where = page.evaluate(MIN_FONT_JS)
    assert smallest >= 14 * height / 1080 - 0.01, f"{smallest}px text at {width}x{height}: {where!r}"
    assert page.evaluate(CUT_JS) == []
    page.screenshot(path=str(ARTIFACTS / f"screen-{width}x{height}-{locale}.png"))
    assert not errors, errors
    outside = [url for url in requests if not url.startswith((live_app["url"], "data:", "blob:"))]
    assert not outside, f"loaded from outside the deployment (intranet-only): {outside}"
    assert 0 < sum(size for _, size in data) <= DATA_PAYLOAD, data


def test_wall_screen_switches_language(live_app, page_at):
    page = page_at(1920, 1080, locale="en-GB")
    page.goto(live_app["url"] + "/screen")
    page.wait_for_selector(".kpi-card")
    assert "Wuxi" in page.locator("h1").inner_text()
    assert "Vital signs" in page.locator(".screen-left h2").inner_text()
    page.locator("#lang-zh").click()
    expect(page.locator("h1")).to_contain_text("无锡", timeout=15_000)
    page.goto(live_app["url"] + "/screen")
    expect(page.locator(".screen-left h2")).to_have_text("城市体征")


@pytest.fixture(scope="module")
def rotating_app(tmp_path_factory):
    """A short playlist, and a department feed that cannot be reached (its runs fail)."""
    folder = tmp_path_factory.mktemp("playlist")
    config = demo_config()
    config["database"]["url"] = f"sqlite:///{folder / 'citybrain.db'}"
    config["server"]["port"] = free_port()
    config["scheduler"]["backfill"] = "1h"
    config["sources"][1]["backfill"] = "1h"
    config["screen"]["playlist"] = [
        {"indicator": "env.aqi", "seconds": 8},
        {"indicator": "traffic.tpi", "seconds": 8},
        {"page": "alerts", "seconds": 8},
    ]
    config["sources"].append(
        {
            "id": "dept-parking",
            "type": "http_json",
            "every": "30s",
            "options": {
                "url": f"http://127.0.0.1:{free_port()}/parking",
                "retries": 0,
                "timeout": "2s",
                "mapping": {
                    "indicator": "traffic.parking_occupancy",
                    "value": "$.v",
                    "entity": "$.id",
                    "observed_at": "$.t",
                },
            },
        }
    )
    with served(config, folder) as app:
        yield app


def test_playlist_rotates_the_map_by_hideout_and_an_outage_shows(rotating_app, page_at):
    page = page_at(1920, 1080, locale="en-GB")
    updates: list[tuple[str, bytes]] = []
    page.on(
        "response",
        lambda r: (
            updates.append((r.request.post_data or "", r.body()))
            if "_dash-update-component" in r.url
            else None
        ),
    )
    open_screen(page, rotating_app["url"])
    title = page.locator("#screen-map-indicator")
    expect(title).to_have_text("Air quality index (AQI)")
    legend = page.locator("#screen-legend").inner_text()
    expect(title).to_have_text("Traffic performance index", timeout=20_000)
    assert page.locator("#screen-legend").inner_text() != legend
    expect(page.locator("#screen-stage")).to_have_class(re.compile("showing-alerts"), timeout=20_000)
    expect(page.locator("#screen-page-alerts")).to_be_visible()
    expect(title).to_have_text("Air quality index (AQI)", timeout=20_000)
    expect(page.locator("#screen-page-alerts")).to_be_hidden()
    banner = page.locator(".outage-banner")
    expect(banner).to_contain_text("dept-parking", timeout=60_000)
    expect(banner).to_contain_text("last run failed")
    expect(page.locator("#screen-freshness .freshness.down")).to_contain_text("1 of 3 sources down")
    page.screenshot(path=str(ARTIFACTS / "screen-outage-1920x1080-en-GB.png"))
    later = [body for request, body in updates if "_pages_content" not in request]
    assert later, "no refresh or rotation reached the page"
    assert all(b"Polygon" not in body for body in later), "a refresh re-sent the district boundaries"
    rotations = [body for request, body in updates if "screen-step" in request]
    assert any(b"__dash_patch_update" in body for body in rotations), rotations[:1]
