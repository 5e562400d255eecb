"""The detail page's address and drawing: a query always gives a valid state and comes back the
same; the chart draws its bands, breaks at pauses and says when it is empty; the bars and crumbs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callbacks.detail_state import (
    DetailState,
    Window,
    custom_window_error,
    key_of,
    last_year_window,
    parse_state,
    query_of,
)
from callbacks.detail_views import worst_first
from callbacks.indicator_detail import clicked_code
from core.city import load_city
from core.levels import level
from indicators.catalog import load_catalog
from layouts.indicator_detail import (
    SeriesView,
    bars,
    chart_figure,
    crumbs,
    range_classes,
    value_range,
    wall_clock_text,
)
from tests.conftest import REPO
from tests.unit.test_detail_export import T0, make_view

SHANGHAI = ZoneInfo("Asia/Shanghai")
CATALOG = load_catalog()
CITY = load_city(REPO / "assets/geo/wuxi_districts.geojson", REPO / "config/cities/wuxi/stations.csv")
STATIONS = {s.code: s for s in CITY.stations}
DISTRICTS = {d.code: d for d in CITY.districts}


def state(key: str, **query) -> DetailState:
    return parse_state(query, CATALOG[key], STATIONS, DISTRICTS)


def test_a_station_brings_its_district_and_the_address_comes_back_the_same():
    chosen = state("env.aqi", range="7d", entity="1188A", region="320205")
    assert chosen == DetailState("7d", None, None, "320211", "1188A")
    assert chosen.search() == "?range=7d&region=320211&entity=1188A"
    assert state("env.aqi", **query_of(chosen.search())) == chosen


def test_what_does_not_fit_the_indicator_is_dropped():
    assert state("env.aqi", range="3y", region="999999", entity="R001") == DetailState()
    assert state("env.aqi", region=["320205", "320211"]).region == "320205"  # a repeated parameter
    assert state("weather.visibility", region="320205", entity="1188A") == DetailState(region="320205")
    assert state("index.city", region="320205") == DetailState()
    assert state("env.aqi", entity="320205").entity is None  # a district is not a station


def test_a_custom_window_needs_both_ends_in_order_within_a_year():
    chosen = state("env.aqi", range="custom", start="2026-01-10T08:00", end="2026-01-11T08:30:59")
    assert (chosen.start, chosen.end) == (datetime(2026, 1, 10, 8, 0), datetime(2026, 1, 11, 8, 30))
    assert chosen.search() == "?range=custom&start=2026-01-10T08:00&end=2026-01-11T08:30"
    assert state("env.aqi", range="custom", start="2026-01-11T08:00", end="2026-01-10T08:00") == DetailState()
    assert state("env.aqi", range="custom", start="yesterday", end="2026-01-10T08:00") == DetailState()
    assert custom_window_error(None, datetime(2026, 1, 1)) == "detail.custom.incomplete"
    assert custom_window_error(datetime(2025, 1, 1), datetime(2026, 1, 3)) == "detail.custom.too_long"
    assert custom_window_error(datetime(2026, 1, 1), datetime(2026, 1, 1)) == "detail.custom.order"


def test_last_year_is_the_same_wall_clock_period():
    window = Window(datetime(2024, 2, 27, 16, tzinfo=UTC), datetime(2024, 3, 1, 16, tzinfo=UTC))
    before = last_year_window(window, SHANGHAI)
    assert before == Window(datetime(2023, 2, 27, 16, tzinfo=UTC), datetime(2023, 3, 1, 16, tzinfo=UTC))
    leap = Window(datetime(2024, 2, 29, 4, tzinfo=UTC), datetime(2024, 2, 29, 5, tzinfo=UTC))
    assert last_year_window(leap, SHANGHAI).start == datetime(2023, 2, 28, 4, tzinfo=UTC)


def test_addresses_and_clicks_name_their_codes():
    assert key_of("/indicators/env.aqi") == "env.aqi" and key_of("/indicators/env%2Eaqi/") == "env.aqi"
    assert key_of(None) == ""
    assert clicked_code({"type": "Feature", "properties": {"code": "320205"}}) == "320205"
    assert clicked_code(None) is None and clicked_code({"properties": {}}) is None


def test_worst_first_follows_the_direction():
    values = {"a": 3.0, "b": 9.0, "c": 3.0}
    assert worst_first(CATALOG["env.aqi"], values) == ["b", "a", "c"]
    assert worst_first(CATALOG["weather.visibility"], values) == ["a", "c", "b"]


def shapes_by_colour(figure: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for shape in figure["layout"]["shapes"]:
        if shape["type"] == "rect":
            found.setdefault(shape["fillcolor"], []).append(shape)
    return found


def test_the_chart_draws_the_levels_in_reach_behind_the_line():
    figure = chart_figure(make_view(), "en")
    low, high = figure["layout"]["yaxis"]["range"]
    assert low == pytest.approx(30 - (125.5 - 30) * 0.08) and high == pytest.approx(
        125.5 + (125.5 - 30) * 0.08
    )
    bands = shapes_by_colour(figure)
    assert set(bands) == {level(1).colour, level(2).colour}  # orange (150) and red are out of reach
    assert bands[level(1).colour][0]["y0"] == 75 and bands[level(2).colour][0]["y1"] == high
    assert all(shape["layer"] == "below" for shape in figure["layout"]["shapes"])
    names = [trace["name"] for trace in figure["data"]]
    assert names == ["Lowest–highest reading", "Lowest–highest reading", "Previous period", "Value"]
    assert figure["data"][-1]["x"][0] == "2026-01-10T00:00:00"  # the city's wall clock


def test_the_line_breaks_where_data_pauses_and_an_empty_period_says_so():
    times = (T0, T0 + timedelta(hours=1), T0 + timedelta(hours=5))
    x = wall_clock_text(times, SHANGHAI)
    view = make_view(
        series=SeriesView(times, (1.0, 2.0, 3.0), (1.0, 2.0, 3.0), (1.0, 2.0, 3.0), (1, 1, 1), x)
    )
    line = chart_figure(view, "en")["data"][-1]
    assert line["y"] == [1.0, 2.0, None, 3.0]
    assert len(chart_figure(view, "en")["data"]) == 2  # no spread when every point is one reading
    empty = replace(
        view,
        series=SeriesView((), (), (), (), (), ()),
        previous=replace(view.previous, times=(), values=(), x=()),
    )
    figure = chart_figure(empty, "zh-CN")
    assert any(note["text"] == "该时段无数据" for note in figure["layout"]["annotations"])
    assert value_range(empty)[0] < 75 < value_range(empty)[1]  # the nearest limit stays in view


def test_bars_are_buttons_naming_place_value_and_level():
    view = make_view()
    items = bars(view, "en").children
    button = items[0].children
    assert button.id == {"type": "detail-bar", "code": "1192A"}
    assert getattr(button, "aria-label") == "Dongting: 73.2 µg/m³, Normal"
    assert "bars" not in str(bars(replace(view, breakdown_scope=None), "en").className)


def test_crumbs_go_back_up_and_mark_where_we_are():
    parts = crumbs(make_view(), "en")
    assert parts[0].id == {"type": "detail-crumb", "scope": "city"}
    assert parts[-1].children == "Xishan" and getattr(parts[-1], "aria-current") == "location"
    assert range_classes("7d") == (
        ["button range", "button range", "button range active", "button range"],
        ["false", "false", "true", "false"],
    )
