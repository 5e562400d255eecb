"""The detail page's view from a real store (SQLite and PostgreSQL), on hand-made readings whose
statistics, comparisons and breakdown are known exactly: raw readings for a day, the hourly rollup
for a week."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callbacks.detail_state import DetailState, Window, resolve_window
from callbacks.detail_views import DetailViews
from core.records import ValidReading
from core.timeutil import as_utc
from store.readings import upsert_readings
from store.rollups import refresh_rollups, spans_of
from store.state import bump_data_version
from web.runtime import WebRuntime

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY_LOCAL = datetime(2026, 1, 10, 0, 0)  # the shown day, on the city's wall clock
DAY = as_utc(DAY_LOCAL, SHANGHAI)
HOUR = 3600


def every_five_minutes(start: datetime, hours: int) -> list[datetime]:
    return [start + timedelta(minutes=5 * i) for i in range(hours * 12)]


def xuelang(index: int) -> float:
    """Station 1188A on the shown day: 12 h at 50, 6 h at 160 (III yellow), 6 h at 320 (I red)."""
    return 50.0 if index < 144 else (160.0 if index < 216 else 320.0)


def load_history(ingest):
    """The shown day at three air stations (two in Binhu 320211, one in Xishan 320205), the day
    before at one of them, two hours of the same day last year, and two district indicators."""
    readings = []
    for index, at in enumerate(every_five_minutes(DAY, 24)):
        readings += [
            ValidReading("env.aqi", "1188A", at, xuelang(index)),
            ValidReading("env.aqi", "1191A", at, 100.0),
            ValidReading("env.aqi", "1192A", at, 40.0),
            ValidReading("safety.crowd_density", "320211", at, 3.0),
            ValidReading("weather.visibility", "320211", at, 800.0 if index < 144 else 150.0),
        ]
    readings += [
        ValidReading("env.aqi", "1188A", at, 80.0) for at in every_five_minutes(DAY - timedelta(days=1), 24)
    ]
    last_year = as_utc(DAY_LOCAL.replace(year=2025), SHANGHAI)
    readings += [ValidReading("env.aqi", "1188A", at, 60.0) for at in every_five_minutes(last_year, 2)]
    with ingest.sessions() as session:
        touched = upsert_readings(session, readings, "test", ingest.region_of)
        refresh_rollups(session, spans_of(touched), ingest.settings.tz)
        bump_data_version(session)
        session.commit()
    return ingest


@pytest.fixture
def history(ingest):
    return load_history(ingest)


@pytest.fixture
def views(history):
    runtime = WebRuntime(history.settings, history.engine, history.city, history.catalog, None, "test")
    return DetailViews(runtime)


def day_state(**place) -> DetailState:
    return DetailState("custom", DAY_LOCAL, DAY_LOCAL + timedelta(days=1), **place)


def build(views, state: DetailState, key: str = "env.aqi", lang: str = "en"):
    window = resolve_window(state, DAY, SHANGHAI)
    return views.build(views.runtime.catalog[key], state, window, 1, lang)


def test_a_station_day_gives_exact_statistics_and_comparisons(views):
    view = build(views, day_state(region="320211", entity="1188A"))
    assert view.resolution == "raw" and view.scope == "station" and view.scope_name == "Xuelang"
    assert len(view.series.times) == 288 and view.series.times[0] == DAY
    stats = view.stats
    assert (stats.minimum, stats.maximum) == (50.0, 320.0)
    assert stats.mean == pytest.approx((50 * 12 + 160 * 6 + 320 * 6) / 24)
    assert stats.covered_seconds == 24 * HOUR
    assert {held.severity: held.seconds / HOUR for held in stats.levels} == {1: 12, 2: 12, 3: 6, 4: 6}
    assert stats.maximum_at == DAY + timedelta(hours=18)
    assert view.vs_previous.other == pytest.approx(80.0)
    assert view.vs_previous.percent == pytest.approx((145 - 80) / 80 * 100)
    assert view.vs_last_year.other == pytest.approx(60.0)
    assert view.last_year.times[0] == DAY and len(view.last_year.times) == 24
    assert view.previous.times[0] == DAY and set(view.previous.values) == {80.0}
    assert [c.label for c in view.crumbs] == ["Wuxi", "Binhu", "Xuelang"]


def test_a_district_combines_its_stations_and_lists_them_worst_first(views):
    view = build(views, day_state(region="320211"))
    assert view.scope == "district" and view.breakdown_scope == "station"
    assert [(bar.code, bar.value) for bar in view.bars] == [("1188A", pytest.approx(145.0)), ("1191A", 100.0)]
    assert [bar.severity for bar in view.bars] == [1, 0]
    assert view.series.values[0] == pytest.approx((50 + 100) / 2)
    assert view.series.lows[0] == pytest.approx(75.0)  # each station's own spread, combined by mean
    marked = {f["properties"]["code"]: f["properties"]["severity"] for f in view.stations["features"]}
    assert marked == {"1188A": 1, "1191A": 0, "1194A": 0}  # Rongxiang has no data: grey, level 0
    assert view.focus["district"]["features"][0]["properties"]["code"] == "320211"
    assert view.map_bounds != views.frame.bounds
    assert view.vs_last_year is not None  # Binhu's line last year is Xuelang's two hours


def test_the_city_breaks_down_by_district(views):
    view = build(views, day_state())
    assert view.scope == "city" and view.breakdown_scope == "district"
    assert [(bar.code, bar.value) for bar in view.bars] == [
        ("320211", pytest.approx(122.5)),
        ("320205", 40.0),
    ]
    districts = view.district_hideout["districts"]
    assert districts["320211"]["severity"] == 1 and districts["320206"]["colour"] == "#6b7280"
    assert view.stations["features"] == []


def test_a_week_reads_the_hourly_rollup(views):
    start = DAY_LOCAL - timedelta(days=6)
    view = build(views, DetailState("custom", start, DAY_LOCAL + timedelta(days=1), "320211", "1188A"))
    assert view.resolution == "hour" and len(view.series.times) == 48
    assert view.stats.mean == pytest.approx((80 * 24 + 145 * 24) / 48)
    assert {held.severity: held.seconds / HOUR for held in view.stats.levels} == {1: 12, 2: 12, 3: 6, 4: 6}
    assert view.vs_previous is None  # the week before holds no readings


def test_lower_is_worse_and_district_indicators_stop_at_the_district(views):
    view = build(views, day_state(region="320211"), key="weather.visibility")
    assert view.breakdown_scope == "district" and view.scope == "district"
    assert [bar.code for bar in view.bars] == ["320211"] and view.bars[0].selected
    # visibility below 500 m is yellow, below 200 m orange: the last 12 hours
    assert {held.severity: held.seconds / HOUR for held in view.stats.levels} == {2: 12, 3: 12, 4: 0}
    assert [(zone.severity, zone.low, zone.high) for zone in view.zones] == [
        (4, 0, 50),
        (3, 50, 200),
        (2, 200, 500),
        (0, 500, 50000),
    ]


def test_a_city_indicator_has_no_breakdown_and_an_empty_period_says_so(views):
    view = build(views, day_state(), key="index.city", lang="zh-CN")
    assert view.breakdown_scope is None and view.bars == () and view.series.times == ()
    assert view.stats.mean is None and view.vs_previous is None and view.vs_last_year is None
    assert view.scope_name == "无锡"


def test_relative_windows_end_on_the_next_whole_minute_or_hour():
    now = as_utc(datetime(2026, 1, 10, 8, 17, 30), SHANGHAI)
    day = resolve_window(DetailState("24h"), now, SHANGHAI)
    assert day == Window(day.end - timedelta(hours=24), as_utc(datetime(2026, 1, 10, 8, 18), SHANGHAI))
    week = resolve_window(DetailState("7d"), now, SHANGHAI)
    assert week.end == as_utc(datetime(2026, 1, 10, 9, 0), SHANGHAI)
    assert resolve_window(DetailState("7d"), week.end, SHANGHAI) == week
