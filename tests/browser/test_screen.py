"""/screen in real Chromium at the wall display's size: districts drawn, KPIs are numbers."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser
NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?$")


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


@pytest.mark.parametrize("width, height", [(1920, 1080), (3840, 2160)])
def test_wall_screen_shows_the_city(live_app, page_at, width, height):
    page = page_at(width, height, locale="zh-CN")
    errors, requests = [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(live_app["url"] + "/screen")
    page.wait_for_selector(".leaflet-districts-pane path.district-shape", timeout=30_000)
    page.wait_for_function(
        "document.querySelectorAll('.leaflet-districts-pane path.district-shape').length === 7",
        timeout=15_000,
    )
    page.wait_for_selector(".station-marker", timeout=15_000)
    values = page.locator(".kpi-card .kpi-value").all_inner_texts()
    assert len(values) >= 6
    assert all(NUMBER.match(v.strip()) for v in values), values
    assert "无锡" in page.locator("h1").inner_text()
    page.wait_for_function("document.getElementById('clock').textContent.length > 8")
    scroll = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert scroll == [width, height]
    assert page.title() != "Updating..."
    page.screenshot(path=str(ARTIFACTS / f"screen-{width}x{height}.png"))
    assert not errors, errors
    outside = [url for url in requests if not url.startswith((live_app["url"], "data:", "blob:"))]
    assert not outside, f"loaded from outside the deployment (intranet-only): {outside}"
    assert len(requests) > 10


def test_wall_screen_in_english(live_app, page_at):
    page = page_at(1920, 1080, locale="en-GB")
    page.goto(live_app["url"] + "/screen")
    page.wait_for_selector(".kpi-card")
    assert "Wuxi" in page.locator("h1").inner_text()
    assert "Vital signs" in page.locator(".screen-left h2").inner_text()
    page.locator("#lang-zh").click()
    expect(page.locator("h1")).to_contain_text("无锡", timeout=15_000)
    page.goto(live_app["url"] + "/screen")
    expect(page.locator(".screen-left h2")).to_have_text("城市体征")
