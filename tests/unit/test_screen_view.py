"""The wall's view logic: playlist settings, level bands and legends, source freshness and outages,
station levels, alert markers, the newest-first ticker, partial refreshes and the layout itself."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import geobuf
import pytest
from dash import html
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from callbacks.map_views import places
from callbacks.screen import (
    StationLayer,
    alert_markers,
    panel_digests,
    playlist,
    station_layer,
    station_levels,
    ticker_items,
)
from callbacks.views import freshness_view, legend_items, source_status
from core.city import StationInfo, load_city
from core.levels import STALE_COLOUR
from core.settings import DEFAULT_CONFIG, Names, PlaylistStep, ScreenSettings, load_settings
from indicators.catalog import load_catalog
from indicators.period_stats import Zone, level_zones
from layouts.components import KpiView, gauge, kpi_card
from layouts.maps import MapFrame
from layouts.screen import (
    FreshnessView,
    GaugeView,
    MapIndicator,
    ReadingView,
    ScreenView,
    SourceStatus,
    Step,
    TickerItem,
    TrendView,
    screen,
)
from store.queries import AlertRow, EntityValue, SourceHealth

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")
CATALOG = load_catalog()


def texts(component) -> list[str]:
    """Every string in a Dash component tree, in order."""
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, list | tuple):
            for child in node:
                walk(child)
        elif hasattr(node, "children"):
            walk(node.children)

    walk(component)
    return found


# --- settings ------------------------------------------------------------------------------------


def screen_settings(**extra) -> ScreenSettings:
    return ScreenSettings.model_validate({"kpis": ["env.aqi"], "choropleth": "env.aqi", **extra})


def test_a_step_names_an_indicator_or_a_page_and_lasts_at_least_five_seconds():
    assert PlaylistStep.model_validate({"indicator": "env.aqi", "seconds": "2m"}).seconds == 120
    assert PlaylistStep.model_validate({"page": "alerts"}).seconds == 60
    for bad in ({"indicator": "env.aqi", "page": "alerts"}, {"seconds": 30}, {"page": "weather"}):
        with pytest.raises(ValidationError):
            PlaylistStep.model_validate(bad)
    with pytest.raises(ValidationError, match="at least 5 s"):
        PlaylistStep.model_validate({"indicator": "env.aqi", "seconds": 2})


def test_without_a_playlist_the_map_holds_the_choropleth():
    settings = screen_settings()
    assert [(s.indicator, s.page) for s in settings.steps()] == [("env.aqi", None)]
    assert settings.map_indicators() == ["env.aqi"]


def test_the_playlist_rotates_indicators_and_pages_in_order():
    settings = screen_settings(
        playlist=[
            {"indicator": "traffic.tpi", "seconds": 30},
            {"page": "alerts"},
            {"indicator": "env.pm25"},
            {"indicator": "traffic.tpi"},
        ]
    )
    assert [s.indicator or s.page for s in settings.steps()] == [
        "traffic.tpi",
        "alerts",
        "env.pm25",
        "traffic.tpi",
    ]
    assert settings.map_indicators() == ["traffic.tpi", "env.pm25"]


def test_sparklines_default_to_the_first_eight_kpis():
    kpis = [i.key for i in CATALOG][:12]
    assert screen_settings(kpis=kpis).sparkline_keys() == kpis[:8]
    assert screen_settings(sparklines=["env.pm25"]).sparkline_keys() == ["env.pm25"]


def test_the_wall_holds_at_most_sixteen_kpis():
    with pytest.raises(ValidationError):
        screen_settings(kpis=[i.key for i in CATALOG][:17])


def test_unknown_indicators_are_named_by_their_key_path():
    settings = screen_settings(
        kpis=["env.aqi", "env.nope"],
        playlist=[{"page": "alerts"}, {"indicator": "water.nope"}],
        weather=["weather.temperature", "weather.fog"],
        sparklines=["env.aqi", "x.y"],
        stations_indicator={"air": "env.aqi", "dam": "water.dam"},
    )
    assert settings.unknown_indicators(CATALOG.keys()) == [
        "screen.kpis.1: unknown indicator 'env.nope'",
        "screen.stations_indicator.dam: unknown indicator 'water.dam'",
        "screen.playlist.1.indicator: unknown indicator 'water.nope'",
        "screen.weather.1: unknown indicator 'weather.fog'",
        "screen.sparklines.1: unknown indicator 'x.y'",
    ]


def test_the_default_weather_keys_exist_in_the_catalog():
    assert screen_settings().unknown_indicators(CATALOG.keys()) == []


# --- level bands and legends ---------------------------------------------------------------------


def test_bands_of_an_indicator_that_warns_above():
    aqi = CATALOG["env.aqi"]
    limits = [limit for _, limit in aqi.thresholds.limits()]
    bands = level_zones(aqi.thresholds, aqi.bounds)
    assert [b.severity for b in bands] == [0, 1, 2, 3, 4]
    assert [b.high for b in bands[:-1]] == limits


def test_bands_of_the_index_that_warns_below_put_red_at_the_bottom():
    index = CATALOG["index.city"]
    assert level_zones(index.thresholds, index.bounds) == (
        Zone(4, 0, 50),
        Zone(3, 50, 60),
        Zone(2, 60, 70),
        Zone(1, 70, 80),
        Zone(0, 80, 100),
    )


indicators_with_thresholds = [i for i in CATALOG if i.thresholds is not None]


@given(st.sampled_from(indicators_with_thresholds), st.floats(0.001, 0.999))
def test_a_value_inside_a_band_has_that_bands_level(indicator, where):
    bands = level_zones(indicator.thresholds, indicator.bounds)
    assert bands[0].low == indicator.bounds[0] and bands[-1].high == indicator.bounds[1]
    assert all(a.high == b.low for a, b in zip(bands, bands[1:], strict=False))
    for band in bands:
        if band.high > band.low:
            value = band.low + (band.high - band.low) * where
            assert indicator.thresholds.severity(value) == band.severity


def test_legend_says_where_each_level_begins():
    labels = [label for _, label in legend_items(CATALOG["index.city"], "en")]
    assert labels == [
        "Normal > 80.0",
        "Blue ≤ 80.0",
        "Yellow ≤ 70.0",
        "Orange ≤ 60.0",
        "Red ≤ 50.0",
        "No data / delayed",
    ]
    assert legend_items(CATALOG["env.aqi"], "zh-CN")[-1] == (STALE_COLOUR, "无数据 / 延迟")


# --- freshness and outages -----------------------------------------------------------------------


def health(source_id="sim", status="ok", newest_minutes=3.0, enabled=True, every=60.0, cadence=300.0):
    newest = None if newest_minutes is None else NOW - timedelta(minutes=newest_minutes)
    return SourceHealth(
        id=source_id,
        type="simulator",
        enabled=enabled,
        every_s=every,
        last_status=status,
        last_started_at=NOW - timedelta(minutes=1),
        last_finished_at=NOW - timedelta(minutes=1),
        last_error="connection refused by 10.0.0.8",
        accepted=10,
        rejected=0,
        newest_observed_at=newest,
        cadence_s=cadence,
    )


def test_a_source_whose_last_run_failed_is_down_even_with_fresh_data():
    status = source_status(health(status="error"), NOW, ZONE, "en")
    assert status.state == "down" and status.text == "last run failed at 13:59"
    assert "10.0.0.8" not in status.text  # the wall never shows a department's error text


def test_a_source_silent_for_three_intervals_is_down_with_its_silence_in_minutes():
    assert source_status(health(newest_minutes=14), NOW, ZONE, "en").state == "live"
    status = source_status(health(newest_minutes=25), NOW, ZONE, "en")
    assert (status.state, status.text) == ("down", "no readings for 25 min")
    timed_out = source_status(health(status="timeout", newest_minutes=40), NOW, ZONE, "zh-CN")
    assert timed_out.text == "13:59 最近一次运行超时 · 已 40 分钟无数据"


def test_freshness_counts_the_sources_down_and_lists_them():
    view = freshness_view(
        [health("a"), health("b", status="timeout"), health("c", enabled=False, status="error")],
        NOW,
        ZONE,
        "en",
    )
    assert view.state == "down" and view.text == "1 of 2 sources down"
    assert [s.id for s in view.outages] == ["b"]


def test_freshness_when_all_are_live_gives_the_oldest_newest_reading():
    view = freshness_view([health("a", newest_minutes=2), health("b", newest_minutes=7)], NOW, ZONE, "en")
    assert (view.state, view.text) == ("live", "All 2 sources live · data as of 13:53")
    waiting = freshness_view([health("a"), health("b", newest_minutes=None, status=None)], NOW, ZONE, "en")
    assert waiting.state == "waiting" and not waiting.outages
    assert freshness_view([], NOW, ZONE, "en").state == "none"


# --- map layers ----------------------------------------------------------------------------------


SETTINGS = load_settings(DEFAULT_CONFIG)


def runtime(stations=(), regions=(), mapping=None):
    settings = SimpleNamespace(
        screen=SimpleNamespace(
            stations_indicator=mapping or {"air": "env.aqi", "river": "water.river_level"}
        ),
        tz=ZONE,
    )
    return SimpleNamespace(
        catalog=CATALOG, settings=settings, city=SimpleNamespace(stations=stations, regions=regions)
    )


def station(code, kind, lon=120.3, lat=31.5):
    return StationInfo(code, Names(zh=code, en=code), kind, "environment", lon, lat, "320205")


def test_the_station_layer_holds_points_in_order_and_only_those_the_clearance_may_see():
    stations = (
        station("A1", "air", 120.1, 31.1),
        station("R1", "river", 120.2, 31.2),
        station("X", "camera"),
    )
    layer = station_layer(runtime(stations), visible=None)
    assert layer.stations == (("A1", "env.aqi"), ("R1", "water.river_level"))
    decoded = geobuf.decode(base64.b64decode(layer.data))
    assert [f["geometry"]["coordinates"] for f in decoded["features"]] == [[120.1, 31.1], [120.2, 31.2]]
    assert station_layer(runtime(stations), visible=frozenset({"env.aqi"})).stations == (("A1", "env.aqi"),)


def value(severity=0, minutes=2.0, number=50.0):
    return EntityValue("", number, NOW - timedelta(minutes=minutes), severity)


def test_station_levels_send_only_what_is_not_plainly_normal():
    layer = StationLayer("", (("A1", "env.aqi"), ("A2", "env.aqi"), ("A3", "env.aqi"), ("A4", "env.aqi")))
    values = {"env.aqi": {"A1": value(0), "A2": value(3), "A3": value(0, minutes=45)}}
    assert station_levels(runtime(), layer, values, NOW) == {"1": 3, "2": -1, "3": -1}


def alert(alert_id, entity, severity, minutes_ago, text="x"):
    opened = NOW - timedelta(minutes=minutes_ago)
    return AlertRow(alert_id, "env.aqi", entity, "active", severity, 1.0, opened, opened, "中文" + text, text)


def test_alerts_are_marked_once_per_place_with_the_worst_level():
    city = load_city(SETTINGS.city.boundaries, SETTINGS.city.stations)
    station, district = city.stations[0].code, "320205"
    rows = [
        alert(1, station, 4, 9, "b"),
        alert(2, station, 2, 5, "a"),
        alert(3, district, 1, 1),
        alert(4, "320200", 4, 1),  # the city as a whole
    ]
    rows += [alert(10 + i, station, 1, 20, f"more{i}") for i in range(3)]
    markers = alert_markers(rows, places(city), "en")["features"]
    by_entity = {f["properties"]["entity"]: f for f in markers}
    assert set(by_entity) == {station, district}  # the city-wide alert has no place on the map
    at_station = by_entity[station]["properties"]
    assert at_station["severity"] == 4 and at_station["count"] == 5
    assert at_station["text"].split("\n") == ["b", "a", "more0", "more1", "… and 1 more"]
    centre = next(r.center for r in city.districts if r.code == district)
    assert by_entity[district]["geometry"]["coordinates"] == list(centre)


def test_only_the_most_severe_few_dozen_markers_pulse():
    places = {f"S{i}": (120.0, 31.0) for i in range(100)}
    rows = [alert(i, f"S{i}", 3 if i < 70 else 1, 5) for i in range(100)]
    pulsing = [f["properties"]["pulse"] for f in alert_markers(rows, places, "en")["features"]]
    assert pulsing == [True] * 60 + [False] * 40  # blue ones never pulse, and at most 60 do


def test_the_ticker_shows_the_newest_first_whatever_their_level():
    rows = [alert(1, "S1", 4, 30), alert(2, "S2", 1, 2), alert(3, "S3", 2, 10)]
    items = ticker_items(runtime(), rows, "en")
    assert [i.id for i in items] == [2, 3, 1]
    assert items[0].time_text == "13:58"


def test_invisible_indicators_leave_the_playlist():
    settings = screen_settings(
        playlist=[{"indicator": "energy.load_rate", "seconds": 20}, {"page": "alerts", "seconds": 30}]
    )
    rt = SimpleNamespace(settings=SimpleNamespace(screen=settings))
    maps = {"env.aqi": MapIndicator("env.aqi", "AQI", {}, ())}
    assert playlist(rt, maps) == (Step(None, "alerts", 30_000),)
    rt.settings.screen = screen_settings(refresh=10, playlist=[{"indicator": "energy.load_rate"}])
    assert playlist(rt, maps) == (Step("env.aqi", None, 10_000),)


# --- partial refreshes and the layout ------------------------------------------------------------


def reading(key="env.aqi", value_text="42", severity=0, delayed=None, missing=False):
    return ReadingView(key, key, "", value_text, severity, delayed, missing)


def kpi(key="env.aqi", value_text="42", delayed=None):
    return KpiView(key, "AQI", "", value_text, 0, 0, "13:55", delayed)


def example_view(**changes) -> ScreenView:
    fields = dict(
        kpis=(kpi(), kpi("env.pm25", "—")),
        weather=(reading("weather.temperature", "7.5"),),
        freshness=FreshnessView(
            "down",
            "1 of 2 sources down",
            (SourceStatus("a", "live", "ok"), SourceStatus("b", "down", "failed")),
        ),
        gauge=GaugeView(
            reading("index.city", "88.0"),
            0.88,
            ((0, 0.5, "#e0312b"), (0.8, 1, "#2e9e5b")),
            (reading("index.traffic", "91.0"),),
            (0.91,),
        ),
        counts={1: 2},
        ticker=(TickerItem(5, 1, "13:50", "AQI high"),),
        trends=(TrendView(reading(), (1.0, None, 3.0), "AQI"),),
        maps={
            "env.aqi": MapIndicator(
                "env.aqi", "AQI", {"320205": {"colour": "#fff"}}, (("#2e9e5b", "Normal"),)
            )
        },
        steps=(Step("env.aqi", None, 60_000), Step(None, "alerts", 30_000)),
        station_levels={"3": 2},
        alert_markers={"type": "FeatureCollection", "features": []},
        alerts=(),
        updated_text="14:00:00",
        pages={"alerts": "Open warnings", "sources": "Data sources"},
    )
    fields.update(changes)
    return ScreenView(**fields)


def test_a_refresh_resends_only_the_panels_that_changed():
    before = panel_digests(example_view(), "env.aqi")
    after = panel_digests(example_view(station_levels={"3": 4}, counts={1: 2}), "env.aqi")
    assert {name for name in before if before[name] != after[name]} == {"stations"}
    other_map = panel_digests(example_view(), "traffic.tpi")
    assert {name for name in before if before[name] != other_map[name]} == {"districts"}


def test_the_page_shows_numbers_outages_and_never_a_zero_for_missing_data():
    frame = MapFrame({"type": "FeatureCollection", "features": []}, [[31, 120], [32, 121]], None, "")
    page = screen(example_view(), frame, "", "en", 10_000, {})
    shown = texts(page)
    assert "Data source outage:" in shown and "b: failed" in shown
    assert "88.0" in shown and "91.0" in shown and "7.5" in shown
    missing = next(card for card in page.children[6].children[1].children if card.id["key"] == "env.pm25")
    assert texts(missing)[1] == "—" and "no data" in texts(missing)  # never a zero


def test_a_missing_kpi_is_greyed_and_says_no_data():
    card = kpi_card(kpi(value_text="—"), "en")
    assert "stale" in card.className and "no data" in texts(card)
    late = kpi_card(kpi(delayed=12), "en")
    assert "stale" in late.className and "delayed 12 min" in texts(late)


def test_the_gauge_draws_its_value_arc_only_with_a_value():
    with_value, without = gauge(0.5, ((0, 1, "#2e9e5b"),), "#2e9e5b", "x"), gauge(None, (), "#2e9e5b", "x")
    assert with_value.src.count("path") > without.src.count("path")
    assert isinstance(with_value, html.Img)


def test_the_initial_state_matches_what_the_page_draws():
    digests = panel_digests(example_view(), "env.aqi")
    assert json.loads(json.dumps(digests)) == digests  # survives the browser's store
