"""The history read API on both dialects, against values worked out by hand: entities combined by
each aggregation, gaps, entity and district filters, raw cadence buckets, local-midnight days,
breakdowns, sparklines with empty hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.records import ValidReading
from store.history import Bucket, breakdown, city_values_at, indicator_history, pick_resolution, sparklines
from store.readings import upsert_readings
from store.rollups import refresh_rollups, spans_of

T0 = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)  # 08:00 in Wuxi
H = timedelta(hours=1)
M = timedelta(minutes=1)
# Road stations: RD01 and RD02 in 320213, RD05 in 320211, RD09 in 320205.
LAYOUT = [
    ("RD01", 0 * M, 10.0),
    ("RD01", 30 * M, 20.0),
    ("RD05", 5 * M, 30.0),
    ("RD01", H + 10 * M, 40.0),
    ("RD09", H + 20 * M, 100.0),
    ("RD09", H + 25 * M, 300.0),
    ("RD05", 3 * H, 5.0),
]
# Per hour, the stations' (mean, low, high): 00h RD01 (15, 10, 20), RD05 (30, 30, 30);
# 01h RD01 (40, 40, 40), RD09 (200, 100, 300); 02h nothing; 03h RD05 (5, 5, 5).
COMBINED = {
    "traffic.road_volume": [(45, 40, 50), (240, 140, 340)],  # sum
    "traffic.road_speed": [(22.5, 20, 25), (120, 70, 170)],  # mean
    "energy.load_rate": [(30, 30, 30), (200, 100, 300)],  # max
    "env.dissolved_oxygen": [(15, 10, 20), (40, 40, 40)],  # min
}


def store(ingest, readings: list[ValidReading]) -> None:
    """As the pipeline stores a batch: readings, then the rollups of what they touched."""
    with ingest.sessions() as session:
        touched = upsert_readings(session, readings, "test", ingest.region_of)
        refresh_rollups(session, spans_of(touched), ingest.settings.tz)
        session.commit()


def layout(key: str, extra: tuple = ()) -> list[ValidReading]:
    return [ValidReading(key, entity, T0 + offset, value) for entity, offset, value in (*LAYOUT, *extra)]


def points(buckets: list[Bucket]) -> list[tuple]:
    return [(b.at, b.value, b.low, b.high, b.count) for b in buckets]


@pytest.mark.parametrize("key", list(COMBINED))
def test_hourly_history_combines_the_stations_by_the_aggregation(ingest, key):
    store(ingest, layout(key))
    (v0, lo0, hi0), (v1, lo1, hi1) = COMBINED[key]
    found = indicator_history(ingest.engine, key, T0, T0 + 4 * H, resolution="hour")
    assert points(found) == [
        (T0, pytest.approx(v0), lo0, hi0, 3),
        (T0 + H, pytest.approx(v1), lo1, hi1, 3),
        (T0 + 3 * H, 5, 5, 5, 1),  # the empty hour 02:00 is a gap, not a zero
    ]


def test_entity_and_region_filters(ingest):
    store(ingest, layout("traffic.road_volume"))
    only_rd01 = indicator_history(ingest.engine, "traffic.road_volume", T0, T0 + 4 * H, entities=["RD01"])
    assert points(only_rd01) == [
        (T0, 10, 10, 10, 1),
        (T0 + 30 * M, 20, 20, 20, 1),
        (T0 + H + 10 * M, 40, 40, 40, 1),
    ]
    hourly = indicator_history(
        ingest.engine, "traffic.road_volume", T0, T0 + 4 * H, entities=["RD01"], resolution="hour"
    )
    assert points(hourly) == [(T0, 15, 10, 20, 2), (T0 + H, 40, 40, 40, 1)]
    in_320211 = indicator_history(
        ingest.engine, "traffic.road_volume", T0, T0 + 4 * H, region="320211", resolution="hour"
    )
    assert points(in_320211) == [(T0, 30, 30, 30, 1), (T0 + 3 * H, 5, 5, 5, 1)]
    assert indicator_history(ingest.engine, "traffic.road_volume", T0, T0 + 4 * H, region="320282") == []
    assert indicator_history(ingest.engine, "no.such_indicator", T0, T0 + 4 * H) == []


def test_raw_history_is_the_readings_or_cadence_buckets(ingest):
    """One entity: its readings as they are, [start, end). Several: 5-minute buckets (the cadence)."""
    store(
        ingest,
        [
            ValidReading("traffic.road_volume", "RD01", T0, 7.0),
            ValidReading("traffic.road_volume", "RD01", T0 + 1 * M, 10.0),
            ValidReading("traffic.road_volume", "RD01", T0 + 3 * M, 20.0),
            ValidReading("traffic.road_volume", "RD05", T0 + 4 * M, 30.0),
            ValidReading("traffic.road_volume", "RD05", T0 + 6 * M, 50.0),
            ValidReading("traffic.road_volume", "RD05", T0 + 10 * M, 60.0),
        ],
    )
    start, end = T0, T0 + 10 * M
    assert pick_resolution(start, end) == "raw"
    rd01 = indicator_history(ingest.engine, "traffic.road_volume", start, end, entities=["RD01"])
    assert points(rd01) == [(T0, 7, 7, 7, 1), (T0 + M, 10, 10, 10, 1), (T0 + 3 * M, 20, 20, 20, 1)]
    city = indicator_history(ingest.engine, "traffic.road_volume", start, end)
    # 00:00 slot: RD01 mean 37/3 (7..20), RD05 30; 00:05 slot: RD05 50 (60 is at `end`, outside).
    assert points(city) == [
        (T0, pytest.approx(37 / 3 + 30), 37, 50, 4),
        (T0 + 5 * M, 50, 50, 50, 1),
    ]


def test_daily_buckets_start_at_local_midnight(ingest):
    """Wuxi's midnight is 16:00 UTC: 15:59 and 16:00 UTC are on two different days."""
    midnight = datetime(2026, 11, 1, 16, 0, tzinfo=UTC)
    store(
        ingest,
        [
            ValidReading("traffic.road_volume", "RD01", midnight - M, 10.0),
            ValidReading("traffic.road_volume", "RD01", midnight, 20.0),
            ValidReading("traffic.road_volume", "RD01", midnight + 8 * H, 30.0),
            ValidReading("traffic.road_volume", "RD05", midnight + 9 * H, 4.0),
        ],
    )
    days = indicator_history(
        ingest.engine, "traffic.road_volume", midnight - 24 * H, midnight + 24 * H, resolution="day"
    )
    assert points(days) == [(midnight - 24 * H, 10, 10, 10, 1), (midnight, 29, 24, 34, 3)]
    # a start inside a day takes that whole day
    assert points(
        indicator_history(
            ingest.engine, "traffic.road_volume", midnight + 12 * H, midnight + 30 * H, resolution="day"
        )
    ) == [(midnight, 29, 24, 34, 3)]


def test_a_month_city_wide_is_one_row_per_hour(ingest):
    start = datetime(2026, 10, 1, 16, 0, tzinfo=UTC)
    readings = [
        ValidReading("traffic.road_volume", station, start + i * H + 5 * M, float(n + 1))
        for i in range(30 * 24)
        for n, station in enumerate(("RD01", "RD05", "RD09"))
    ]
    store(ingest, readings)
    found = indicator_history(ingest.engine, "traffic.road_volume", start, start + timedelta(days=30))
    assert len(found) == 720
    assert {(b.value, b.low, b.high, b.count) for b in found} == {(6, 6, 6, 3)}
    assert [b.at for b in found] == [start + i * H for i in range(720)]
    days = indicator_history(ingest.engine, "traffic.road_volume", start, start + timedelta(days=120))
    assert [(b.at, b.value, b.count) for b in days] == [(start + i * 24 * H, 6, 72) for i in range(30)]


def test_breakdown_by_district_and_by_station(ingest):
    extra = (("RD02", 10 * M, 7.0),)
    store(ingest, layout("traffic.road_volume", extra) + layout("traffic.road_speed", extra))
    store(
        ingest,
        [
            ValidReading("traffic.tpi", "320205", T0 + M, 3.0),
            ValidReading("traffic.tpi", "320205", T0 + 2 * H, 5.0),
            ValidReading("traffic.tpi", "320200", T0 + M, 9.0),  # the city's own series: no district
        ],
    )
    # Each station's mean over the range: RD01 70/3, RD02 7, RD05 17.5, RD09 200.
    for start, end in ((T0, T0 + 4 * H), (T0 - timedelta(days=5), T0 + timedelta(days=1))):
        assert breakdown(ingest.engine, "traffic.road_volume", start, end) == {
            "320213": pytest.approx(70 / 3 + 7),
            "320211": pytest.approx(17.5),
            "320205": pytest.approx(200),
        }
        assert breakdown(ingest.engine, "traffic.road_speed", start, end) == {
            "320213": pytest.approx((70 / 3 + 7) / 2),
            "320211": pytest.approx(17.5),
            "320205": pytest.approx(200),
        }
        assert breakdown(ingest.engine, "traffic.road_volume", start, end, region="320213") == {
            "RD01": pytest.approx(70 / 3),
            "RD02": pytest.approx(7),
        }
        assert breakdown(ingest.engine, "traffic.tpi", start, end) == {"320205": pytest.approx(4)}
    assert breakdown(ingest.engine, "traffic.road_volume", T0 + 4 * H, T0 + 5 * H) == {}


def test_breakdown_per_entity_is_every_district_at_once(ingest):
    """City-wide per entity in one query: the union of the per-district breakdowns."""
    extra = (("RD02", 10 * M, 7.0),)
    store(ingest, layout("traffic.road_volume", extra))
    for start, end in ((T0, T0 + 4 * H), (T0 - timedelta(days=5), T0 + timedelta(days=1))):
        union: dict[str, float] = {}
        for district in ("320213", "320211", "320205", "320282"):
            union.update(breakdown(ingest.engine, "traffic.road_volume", start, end, region=district))
        every = breakdown(ingest.engine, "traffic.road_volume", start, end, per_entity=True)
        assert every == union
        assert every == {
            "RD01": pytest.approx(70 / 3),
            "RD02": pytest.approx(7),
            "RD05": pytest.approx(17.5),
            "RD09": pytest.approx(200),
        }
    assert breakdown(ingest.engine, "traffic.road_volume", T0 + 4 * H, T0 + 5 * H, per_entity=True) == {}
    assert breakdown(ingest.engine, "no.such_indicator", T0, T0 + 4 * H, per_entity=True) == {}


def test_sparklines_have_one_entry_per_hour_and_none_for_gaps(ingest):
    store(ingest, layout("traffic.road_volume") + layout("traffic.road_speed"))
    keys = ["traffic.road_volume", "traffic.road_speed", "no.such_indicator"]
    aligned = sparklines(ingest.engine, keys, T0 + 4 * H, hours=4)
    assert aligned == {
        "traffic.road_volume": [45, 240, None, 5],
        "traffic.road_speed": [22.5, 120, None, 5],
        "no.such_indicator": [None] * 4,
    }
    assert sparklines(ingest.engine, keys[:1], T0 + 3 * H + 30 * M, hours=4) == {
        "traffic.road_volume": [45, 240, None, 5]
    }
    later = sparklines(ingest.engine, keys[:1], T0 + 4 * H + timedelta(seconds=1), hours=24)
    assert later["traffic.road_volume"] == [None] * 19 + [45, 240, None, 5, None]


def test_city_values_at_the_hour_holding_the_instant(ingest):
    store(ingest, layout("traffic.road_volume") + layout("energy.load_rate"))
    keys = ["traffic.road_volume", "energy.load_rate", "traffic.road_speed"]
    assert city_values_at(ingest.engine, keys, T0 + H + 59 * M) == {
        "traffic.road_volume": 240,
        "energy.load_rate": 200,
        "traffic.road_speed": None,
    }
    assert city_values_at(ingest.engine, keys[:1], T0 + 2 * H) == {"traffic.road_volume": None}


def test_resolution_by_range_length():
    assert pick_resolution(T0, T0 + 48 * H) == "raw"
    assert pick_resolution(T0, T0 + 48 * H + M) == "hour"
    assert pick_resolution(T0, T0 + timedelta(days=90)) == "hour"
    assert pick_resolution(T0, T0 + timedelta(days=90, minutes=1)) == "day"
