"""/indicators/<key> in real Chromium at a leader's laptop size (1366x768), in both languages: the
trend with its warning bands, ranges that move the address, drilling down city -> district ->
station and back (buttons, map and the back button), both downloads holding exactly the plotted
points, and a copied address reproducing the view in a new page."""

from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, click_shape

pytestmark = pytest.mark.browser
WIDTH, HEIGHT = 1366, 768
LOCALES = {"zh-CN": "zh-CN", "en": "en-GB"}
TEXT = {
    "zh-CN": {"hourly": "小时均值", "binhu": "滨湖区各站点", "city": "无锡", "time": "时间(Asia/Shanghai)"},
    "en": {
        "hourly": "hourly means",
        "binhu": "Stations in Binhu",
        "city": "Wuxi",
        "time": "Time (Asia/Shanghai)",
    },
}
PLOTTED = """() => {
  const graph = document.querySelector('#detail-chart .js-plotly-plot');
  const line = graph.data[graph.data.length - 1];
  return line.x.map((x, i) => [x, line.y[i]]).filter(p => p[0] !== null);
}"""


def open_detail(page_at, live_app, lang: str, address: str = "/indicators/env.aqi"):
    page = page_at(WIDTH, HEIGHT, locale=LOCALES[lang])
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_app["url"] + address)
    page.wait_for_selector("#detail-chart .main-svg", timeout=30_000)
    page.wait_for_selector(".leaflet-detail-districts-pane path", timeout=15_000)
    return page, errors


def search_of(page) -> str:
    return page.evaluate("window.location.search")


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_trend_draws_its_bands_and_ranges_move_the_address(live_app, page_at, lang):
    page, errors = open_detail(page_at, live_app, lang)
    bands = page.locator("#detail-chart .layer-below .shapelayer path")
    assert bands.count() >= 2  # at least the blue band and its limit line behind the AQI line
    fills = page.eval_on_selector_all(
        "#detail-chart .layer-below .shapelayer path", "paths => paths.map(p => p.style.fill)"
    )
    assert "rgb(31, 111, 235)" in fills  # IV blue (#1f6feb)
    assert len(page.evaluate(PLOTTED)) > 12
    expect(page.locator("[data-range='24h']")).to_have_attribute("aria-pressed", "true")
    page.screenshot(path=str(ARTIFACTS / f"detail-24h-{lang}.png"))
    page.locator("[data-range='7d']").click()
    expect(page).to_have_url(re.compile(r"/indicators/env\.aqi\?range=7d$"))
    expect(page.locator("#detail-heading")).to_contain_text(TEXT[lang]["hourly"])
    expect(page.locator("[data-range='7d']")).to_have_attribute("aria-pressed", "true")
    page.locator("[data-range='1h']").click()
    expect(page).to_have_url(re.compile(r"\?range=1h$"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"\?range=7d$"))
    expect(page.locator("[data-range='7d']")).to_have_attribute("aria-pressed", "true", timeout=15_000)
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll == WIDTH, "no sideways scrolling on a 1366 px laptop"
    assert not errors, errors


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_drill_down_to_a_district_and_a_station_and_back(live_app, page_at, lang):
    page, errors = open_detail(page_at, live_app, lang)
    height = page.locator("#detail-chart").bounding_box()["height"]
    assert height > 200
    page.locator(".detail-bar[data-code='320211']").click()
    expect(page).to_have_url(re.compile(r"range=24h&region=320211$"))
    expect(page.locator("#detail-breakdown-title")).to_have_text(TEXT[lang]["binhu"])
    expect(page.locator(".detail-bar[data-code='1188A']")).to_be_visible()
    page.wait_for_selector("#detail-map path.station-marker")
    page.locator(".detail-bar[data-code='1188A']").click()
    expect(page).to_have_url(re.compile(r"region=320211&entity=1188A$"))
    expect(page.locator("#detail-crumbs .crumb")).to_have_count(3)
    expect(page.locator(".detail-bar.selected")).to_have_attribute("data-code", "1188A")
    assert page.locator("#detail-chart").bounding_box()["height"] == height  # redrawn in place
    page.screenshot(path=str(ARTIFACTS / f"detail-station-{lang}.png"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"region=320211$"))
    expect(page.locator("#detail-crumbs .crumb")).to_have_count(2, timeout=15_000)
    page.locator("#detail-crumbs button.crumb").first.click()
    expect(page).to_have_url(re.compile(r"\?range=24h$"))
    expect(page.locator("#detail-crumbs .crumb")).to_have_text([TEXT[lang]["city"]])
    click_shape(page, ".leaflet-detail-districts-pane path", 0)  # a district on the map, once it stops flying
    expect(page).to_have_url(re.compile(r"region=\d{6}$"))
    expect(page.locator("#detail-crumbs .crumb")).to_have_count(2)
    assert not errors, errors


def test_both_downloads_hold_exactly_the_plotted_points(live_app, page_at):
    page, errors = open_detail(page_at, live_app, "en", "/indicators/env.aqi?range=24h&region=320211")
    plotted = page.evaluate(PLOTTED)
    with page.expect_download() as caught:
        page.locator("#detail-csv").click()
    file = caught.value
    assert file.suggested_filename == "env.aqi_24h_320211.csv"
    text = open(file.path(), encoding="utf-8-sig").read()
    rows = list(csv.reader(io.StringIO(text)))
    header = rows.index(
        [
            TEXT["en"]["time"],
            "Value",
            "Lowest",
            "Highest",
            "Readings",
            "Previous period",
            "Same period last year",
        ]
    )
    series = []
    for row in rows[header + 1 :]:
        if not row:
            break
        if row[1]:
            series.append(row)
    assert [row[0] for row in series] == [x[:16].replace("T", " ") for x, _ in plotted]
    assert [float(row[1]) for row in series] == [round(y) for _, y in plotted]
    assert ["Place", "Wuxi › Binhu"] in rows
    with page.expect_download() as caught:
        page.locator("#detail-xlsx").click()
    book = load_workbook(io.BytesIO(open(caught.value.path(), "rb").read()))
    assert caught.value.suggested_filename == "env.aqi_24h_320211.xlsx"
    sheet = book["Series"]
    assert sheet["A1"].value == TEXT["en"]["time"] and sheet["A2"].number_format == "yyyy-mm-dd hh:mm"
    values = [row for row in sheet.iter_rows(min_row=2, values_only=True) if row[1] is not None]
    assert [row[1] for row in values] == pytest.approx([y for _, y in plotted])
    assert not errors, errors


def test_a_custom_period_and_a_shared_address_reproduce_the_view(live_app, page_at):
    page, errors = open_detail(
        page_at, live_app, "zh-CN", "/indicators/env.aqi?range=24h&region=320211&entity=1188A"
    )
    start = page.input_value("#detail-start")
    end = page.input_value("#detail-end")
    page.fill("#detail-start", end)
    page.fill("#detail-end", start)
    page.locator("#detail-apply").click()
    expect(page.locator("#detail-range-error")).to_have_text("开始时间须早于结束时间。")
    page.fill("#detail-start", start[:11] + "00:00")
    page.fill("#detail-end", end)
    page.locator("#detail-apply").click()
    expect(page).to_have_url(re.compile(r"range=custom&start=.*&end=.*&region=320211&entity=1188A$"))
    expect(page.locator("#detail-apply")).to_have_class(re.compile("active"))
    shared = page.url
    plotted = page.evaluate(PLOTTED)
    other, other_errors = open_detail(page_at, live_app, "en", shared.removeprefix(live_app["url"]))
    assert search_of(other) == search_of(page)
    expect(other.locator("#detail-crumbs .crumb")).to_have_text(["Wuxi", "Binhu", "Xuelang"])
    expect(other.locator(".detail-bar.selected")).to_have_attribute("data-code", "1188A")
    assert (
        other.input_value("#detail-start") == start[:11] + "00:00" and other.input_value("#detail-end") == end
    )
    assert other.evaluate(PLOTTED)[: len(plotted) - 2] == plotted[: len(plotted) - 2]
    other.screenshot(path=str(ARTIFACTS / "detail-shared-en.png"))
    assert not errors and not other_errors, errors + other_errors
