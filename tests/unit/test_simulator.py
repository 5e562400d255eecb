"""The simulator: deterministic, inside the catalog's bounds, and alive (storms, rush hours, warnings)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from pydantic import ValidationError

from core.city import City, RegionInfo, StationInfo, load_city
from core.settings import Names
from datasources.base import Adapter, AdapterContext
from datasources.simulator import MODELS, Options, SimulatorAdapter
from indicators.catalog import Catalog, Indicator, load_catalog
from indicators.composite import is_composite

REPO = Path(__file__).resolve().parents[2]
ZONE = ZoneInfo("Asia/Shanghai")
LIANGXI = "320213"
# A Monday, 00:00 in Wuxi.
MONDAY = datetime(2026, 11, 23, tzinfo=ZONE).astimezone(UTC)


@pytest.fixture(scope="module")
def context() -> AdapterContext:
    city = load_city(REPO / "assets/geo/wuxi_districts.geojson", REPO / "config/cities/wuxi/stations.csv")
    return AdapterContext(city, load_catalog(), ZONE, "sim")


def make(context: AdapterContext, **options: object) -> SimulatorAdapter:
    return SimulatorAdapter(Options.model_validate(options), context)


def fetch_range(adapter: SimulatorAdapter, start: datetime, end: datetime, chunk=timedelta(days=1)):
    """Records of (start, end] fetched chunk by chunk, the way the pipeline backfills."""
    records, since = [], start.isoformat()
    while datetime.fromisoformat(since) < end:
        until = min(datetime.fromisoformat(since) + chunk, end)
        batch = adapter.fetch(since, until)
        records += batch.records
        since = batch.watermark
    return records


def rows(records) -> list[tuple]:
    """The records' fields in a fixed order (a fetch groups records by series, not by time)."""
    return sorted((r.indicator, r.entity, r.observed_at, str(r.value), r.raw) for r in records)


def by_series(records) -> dict[tuple[str, str], list[tuple[datetime, float]]]:
    series = defaultdict(list)
    for r in records:
        series[(r.indicator, r.entity)].append((r.observed_at, r.value))
    return series


# --- the protocol and options -------------------------------------------------------------------


def test_it_is_an_adapter_that_backfills(context):
    adapter = make(context)
    assert isinstance(adapter, Adapter)
    assert SimulatorAdapter.backfills is True


def test_step_accepts_a_duration_and_unknown_options_are_errors():
    assert Options.model_validate({"step": "5m"}).step == 300
    assert Options.model_validate({"step": "1h"}).step == 3600
    with pytest.raises(ValidationError):
        Options.model_validate({"stepp": "5m"})
    with pytest.raises(ValidationError):
        Options.model_validate({"glitch_rate": -0.1})


def test_asking_for_an_indicator_it_cannot_simulate_names_it(context):
    with pytest.raises(ValueError, match="traffic.nonsense"):
        make(context, indicators=["traffic.tpi", "traffic.nonsense"])


def test_indicators_option_restricts_the_series(context):
    batch = make(context, indicators=["env.aqi", "traffic.tpi"]).fetch(None, MONDAY)
    assert {r.indicator for r in batch.records} == {"env.aqi", "traffic.tpi"}


def test_exclude_option_leaves_those_indicators_out(context):
    everything = {s.indicator.key for s in make(context).series}
    adapter = make(context, exclude=["env.aqi", "hotline.calls_12345"], outage_rate=0)
    assert {s.indicator.key for s in adapter.series} == everything - {"env.aqi", "hotline.calls_12345"}
    batch = adapter.fetch((MONDAY - timedelta(minutes=30)).isoformat(), MONDAY)
    assert {r.indicator for r in batch.records} == everything - {"env.aqi", "hotline.calls_12345"}
    both = make(context, indicators=["env.aqi", "env.pm25", "traffic.tpi"], exclude=["env.pm25"])
    assert {s.indicator.key for s in both.series} == {"env.aqi", "traffic.tpi"}


def test_excluding_an_unknown_key_names_it(context):
    with pytest.raises(ValueError, match="env.nonsense"):
        make(context, exclude=["env.aqi", "env.nonsense"])


def test_excluding_an_indicator_does_not_change_the_others(context):
    """The AQI is made of its pollutants' readings whether or not they are simulated themselves."""
    since, until = (MONDAY + timedelta(hours=8)).isoformat(), MONDAY + timedelta(hours=12)
    whole = make(context, indicators=["env.aqi", "env.pm25", "env.o3"]).fetch(since, until).records
    alone = make(context, indicators=["env.aqi", "env.o3"], exclude=["env.o3"]).fetch(since, until).records
    assert rows(alone) == rows([r for r in whole if r.indicator == "env.aqi"])


# --- determinism --------------------------------------------------------------------------------


def test_same_seed_gives_the_same_records_in_another_instance(context):
    until = MONDAY + timedelta(hours=9)
    since = (until - timedelta(hours=3)).isoformat()
    first = make(context).fetch(since, until)
    second = make(context).fetch(since, until)
    assert rows(first.records) == rows(second.records)
    complete = make(context, outage_rate=0)
    assert len(complete.fetch(since, until).records) == 36 * len(complete.series)
    assert len(first.records) <= 36 * len(complete.series)


def test_a_window_in_one_call_equals_it_in_two_adjacent_calls(context):
    adapter = make(context, glitch_rate=0.01)
    start = MONDAY + timedelta(hours=7, minutes=35)
    middle, end = start + timedelta(minutes=55), start + timedelta(hours=2)
    whole = adapter.fetch(start.isoformat(), end)
    part1 = adapter.fetch(start.isoformat(), middle)
    part2 = adapter.fetch(part1.watermark, end)
    assert whole.records and part1.records and part2.records
    assert rows(whole.records) == rows(part1.records + part2.records)


def test_a_multi_day_backfill_equals_day_chunks_and_the_live_latest_bucket(context):
    """Storm memory (rivers) spans days; no value may depend on where a fetch window starts."""
    adapter = make(context)
    start, end = MONDAY, MONDAY + timedelta(days=3)
    one_call = adapter.fetch(start.isoformat(), end).records
    assert rows(one_call) == rows(fetch_range(adapter, start, end, timedelta(hours=7)))
    live = adapter.fetch(None, end).records
    assert rows(live) == rows([r for r in one_call if r.observed_at == end])


def test_a_different_seed_gives_different_values(context):
    until = MONDAY + timedelta(hours=12)
    since = (until - timedelta(hours=1)).isoformat()
    one = [r.value for r in make(context, glitch_rate=0, outage_rate=0).fetch(since, until).records]
    other = [r.value for r in make(context, glitch_rate=0, outage_rate=0, seed=7).fetch(since, until).records]
    assert len(one) == len(other)
    assert sum(a != b for a, b in zip(one, other, strict=True)) > 0.5 * len(one)


# --- the watermark ------------------------------------------------------------------------------


def test_since_none_gives_only_the_latest_bucket(context):
    adapter = make(context, outage_rate=0)
    until = MONDAY + timedelta(hours=10, minutes=7, seconds=30)
    batch = adapter.fetch(None, until)
    latest = MONDAY + timedelta(hours=10, minutes=5)
    assert {r.observed_at for r in batch.records} == {latest}
    assert len(batch.records) == len(adapter.series)
    assert batch.watermark == latest.isoformat()


def test_watermark_is_the_last_bucket_and_refetching_returns_nothing(context):
    adapter = make(context)
    since = MONDAY + timedelta(minutes=2)
    until = MONDAY + timedelta(hours=1, minutes=4)
    batch = adapter.fetch(since.isoformat(), until)
    times = sorted({r.observed_at for r in batch.records})
    assert times[0] == MONDAY + timedelta(minutes=5)
    assert times[-1] == MONDAY + timedelta(hours=1)
    assert len(times) == 12
    assert all(
        r.observed_at.tzinfo is not None and r.observed_at.utcoffset() == timedelta(0) for r in batch.records
    )
    assert batch.watermark == times[-1].isoformat()
    again = adapter.fetch(batch.watermark, until)
    assert again.records == []
    assert again.watermark == batch.watermark


def test_buckets_follow_the_step(context):
    adapter = make(context, step="15m")
    batch = adapter.fetch(MONDAY.isoformat(), MONDAY + timedelta(hours=1))
    assert sorted({r.observed_at for r in batch.records}) == [
        MONDAY + timedelta(minutes=m) for m in (15, 30, 45, 60)
    ]


# --- what the records contain -------------------------------------------------------------------


@pytest.fixture(scope="module")
def three_days(context):
    """Three clean days (no glitches) of the whole simulated city."""
    return fetch_range(make(context, glitch_rate=0), MONDAY, MONDAY + timedelta(days=3))


def test_every_record_is_a_catalog_indicator_on_a_known_entity_within_bounds(context, three_days):
    codes = context.city.entity_codes()
    for record in three_days:
        indicator = context.catalog[record.indicator]
        assert record.entity in codes
        assert isinstance(record.value, float) and math.isfinite(record.value)
        assert indicator.in_bounds(record.value), (record.indicator, record.value)


def test_raw_is_the_compact_json_of_the_record(three_days):
    for record in three_days[::997]:
        assert json.loads(record.raw) == {
            "indicator": record.indicator,
            "entity": record.entity,
            "observed_at": record.observed_at.isoformat(),
            "value": record.value,
        }
        assert " " not in record.raw


def test_many_indicators_across_many_domains(context, three_days):
    keys = {r.indicator for r in three_days}
    assert len(keys) >= 40
    assert len({context.catalog[k].domain for k in keys}) == 10
    # every built-in vital sign is simulated; the composite indices are the pipeline's to compute
    assert keys == {k for k in context.catalog.keys() if not is_composite(k)}
    assert keys <= set(MODELS)


def test_series_are_one_per_entity_of_the_indicator_level(context):
    adapter = make(context)
    entities = defaultdict(set)
    for series in adapter.series:
        entities[series.indicator.key].add(series.entity)
    districts = {d.code for d in context.city.districts}
    assert entities["traffic.tpi"] == districts
    assert entities["water.river_level"] == {s.code for s in context.city.stations_of("river")}
    assert entities["env.pm25"] == {s.code for s in context.city.stations_of("air")}


def test_unknown_catalog_keys_are_skipped_and_city_level_gets_the_city_code(context):
    extra = Indicator.model_validate(
        {
            "key": "economy.power_index",
            "domain": "economy",
            "name": {"zh-CN": "电力指数", "en": "Power index"},
            "bounds": [0, 100],
            "cadence": "5m",
            "level": "city",
            "department": {"zh-CN": "统计局", "en": "Statistics Bureau"},
        }
    )
    city_tpi = context.catalog["traffic.tpi"].model_copy(update={"level": "city"})
    catalog = Catalog([city_tpi, extra])
    adapter = SimulatorAdapter(Options(), AdapterContext(context.city, catalog, ZONE, "sim"))
    batch = adapter.fetch(None, MONDAY)
    assert [(r.indicator, r.entity) for r in batch.records] == [("traffic.tpi", "320200")]


def test_a_small_hand_built_city_works_without_districts():
    region = RegionInfo("100000", Names(zh="小城", en="Town"), "city", None, (120.0, 31.0), {})
    station = StationInfo("R1", Names(zh="河", en="River"), "river", "water", 120.0, 31.0, "100000")
    catalog = load_catalog()
    context = AdapterContext(City((region,), (station,)), catalog, ZONE, "sim")
    records = fetch_range(make(context, glitch_rate=0), MONDAY, MONDAY + timedelta(days=1))
    river = {i.key for i in catalog if i.level == "station" and "river" in i.station_kinds}
    city = {i.key for i in catalog if i.level == "city" and i.key in MODELS}
    assert {(r.indicator, r.entity) for r in records} == {(k, "R1") for k in river} | {
        (k, "100000") for k in city
    }
    assert all(3.0 <= r.value <= 4.6 for r in records if r.indicator == "water.river_level")
    assert all(catalog[r.indicator].in_bounds(r.value) for r in records)


def test_service_halls_report_no_wait_while_closed(three_days):
    for when, value in sorted((r.observed_at, r.value) for r in three_days if r.indicator == "gov.hall_wait"):
        local = when.astimezone(ZONE)
        hour = local.hour + local.minute / 60
        if hour < 8.5 or hour >= 17 or 12 <= hour < 13.5:
            assert value == 0.0


# --- glitches -----------------------------------------------------------------------------------


def is_malformed(record, catalog: Catalog, codes: set[str]) -> bool:
    value = record.value
    return (
        record.entity not in codes
        or not math.isfinite(value)
        or not catalog[record.indicator].in_bounds(value)
    )


def test_glitches_appear_at_about_the_glitch_rate(context):
    adapter = make(context, glitch_rate=0.01)
    records = fetch_range(adapter, MONDAY, MONDAY + timedelta(days=1))
    codes = context.city.entity_codes()
    bad = [r for r in records if is_malformed(r, context.catalog, codes)]
    assert 0.7 * 0.01 * len(records) < len(bad) < 1.3 * 0.01 * len(records)
    assert any(r.entity not in codes for r in bad)
    assert any(isinstance(r.value, float) and math.isnan(r.value) for r in bad)
    assert any(r.value < 0 for r in bad if math.isfinite(r.value))
    assert any(r.value >= 9999 for r in bad if math.isfinite(r.value))
    for record in bad:
        raw = json.loads(record.raw)
        assert raw["entity"] == record.entity
        assert raw["value"] == record.value or math.isnan(record.value)


def test_no_glitches_when_disabled(context, three_days):
    codes = context.city.entity_codes()
    assert not any(is_malformed(r, context.catalog, codes) for r in three_days)


# --- realistic behaviour ------------------------------------------------------------------------


def test_weekday_morning_rush_is_busier_than_the_night(context):
    adapter = make(context, indicators=["traffic.tpi"], glitch_rate=0, incident_rate=0)
    records = fetch_range(adapter, MONDAY, MONDAY + timedelta(days=7))
    rush, night, liangxi_rush = [], [], []
    for r in records:
        local = r.observed_at.astimezone(ZONE)
        hour = local.hour + local.minute / 60
        if local.weekday() < 5 and 7.5 <= hour <= 9:
            rush.append(r.value)
            if r.entity == LIANGXI:
                liangxi_rush.append(r.value)
        elif 1 <= hour < 5:
            night.append(r.value)
    assert np.mean(rush) > np.mean(night) + 1.5
    assert np.mean(night) < 2
    assert max(liangxi_rush) >= 5.5  # the old town nears congestion at rush hour


def test_heavy_rain_is_followed_by_higher_rivers_and_waterlogging(context):
    keys = ["weather.rainfall", "water.river_level", "water.waterlogging_depth"]
    adapter = make(context, indicators=keys, glitch_rate=0, incident_rate=0)
    start = datetime(2026, 7, 1, tzinfo=UTC)
    hours = 14 * 24
    records = fetch_range(adapter, start, start + timedelta(hours=hours))
    stations = {s.code: s.region_code for s in context.city.stations}
    hourly = defaultdict(lambda: np.zeros(hours + 1))
    counts = defaultdict(lambda: np.zeros(hours + 1))
    for r in records:
        district = r.entity if r.indicator == "weather.rainfall" else stations[r.entity]
        hour = int((r.observed_at - start).total_seconds() // 3600)
        hourly[(r.indicator, district)][hour] += r.value
        counts[(r.indicator, district)][hour] += 1
    mean = {key: hourly[key] / np.maximum(counts[key], 1) for key in hourly}

    heavy, dry = defaultdict(list), defaultdict(list)
    for district in (d.code for d in context.city.districts):
        rain = mean[("weather.rainfall", district)]
        for hour in range(12, hours - 6):
            after = slice(hour + 1, hour + 7)
            for key in keys[1:]:
                if (key, district) not in mean:
                    continue
                following = mean[(key, district)][after].mean()
                if rain[hour] >= 10:
                    heavy[key].append(following)
                elif rain[hour - 12 : hour + 7].max() == 0:
                    dry[key].append(following)
    for key in keys[1:]:
        assert len(heavy[key]) >= 3, f"no heavy rain in 14 days for {key}"
        assert np.mean(heavy[key]) > np.mean(dry[key]), key
    assert np.mean(heavy["water.river_level"]) > np.mean(dry["water.river_level"]) + 0.1
    assert np.mean(heavy["water.waterlogging_depth"]) > 5 > np.mean(dry["water.waterlogging_depth"])


def test_some_series_is_always_in_warning_within_two_hours(context, three_days):
    in_warning = defaultdict(int)
    for r in three_days:
        thresholds = context.catalog[r.indicator].thresholds
        if thresholds is not None and thresholds.severity(r.value) > 0:
            in_warning[r.observed_at] += 1
    times = [MONDAY + timedelta(minutes=5 * k) for k in range(1, 3 * 288 + 1)]
    counts = [in_warning.get(t, 0) for t in times]
    for first in range(len(counts) - 24):
        assert max(counts[first : first + 24]) > 0, f"no warning in the 2 h after {times[first]}"
    assert 1 < np.mean(counts) < 12


def test_incidents_reach_several_levels_and_respect_direction(context, three_days):
    severities = defaultdict(set)
    for r in three_days:
        thresholds = context.catalog[r.indicator].thresholds
        severity = thresholds.severity(r.value) if thresholds is not None else 0
        if severity:
            severities[r.indicator].add(severity)
    assert {1, 2, 3} <= set().union(*severities.values())
    assert "traffic.road_speed" in severities  # a "below" indicator warns too


def rises(points: list[tuple[datetime, float]], within: timedelta) -> float:
    """The largest rise (negative: fall) from any point to a later one at most `within` after it."""
    best = 0.0
    for i, (t0, v0) in enumerate(points):
        for t1, v1 in points[i + 1 :]:
            if t1 - t0 > within:
                break
            best = max(best, v1 - v0)
    return best


def test_storms_and_incidents_give_the_rate_rules_something_to_catch(context):
    """Within two summer weeks a river rises 0.15 m within an hour after rain, an underpass floods
    10 cm within half an hour, and a road's speed collapses by 20 km/h within 15 minutes."""
    keys = ["weather.rainfall", "water.river_level", "water.waterlogging_depth", "traffic.road_speed"]
    adapter = make(context, indicators=keys, glitch_rate=0)
    start = datetime(2026, 7, 1, tzinfo=UTC)
    series = by_series(fetch_range(adapter, start, start + timedelta(days=14)))
    river = {
        e: rises(sorted(p), timedelta(hours=1)) for (k, e), p in series.items() if k == "water.river_level"
    }
    assert max(river.values()) >= 0.15
    assert max(max(v for _, v in p) for (k, _), p in series.items() if k == "water.river_level") >= 3.6
    flood = [
        rises(sorted(p), timedelta(minutes=30))
        for (k, _), p in series.items()
        if k == "water.waterlogging_depth"
    ]
    assert max(flood) >= 10
    speed = [
        -rises([(t, -v) for t, v in sorted(p)], timedelta(minutes=15))
        for (k, _), p in series.items()
        if k == "traffic.road_speed"
    ]
    assert min(speed) <= -20
    # the river rise follows rain on its district
    stations = {s.code: s.region_code for s in context.city.stations}
    fast = [e for e, rise in river.items() if rise >= 0.15]
    assert any(max(v for _, v in series[("weather.rainfall", stations[e])]) >= 10 for e in fast)


# --- outages ------------------------------------------------------------------------------------


def silent_runs(present: set[datetime], buckets: list[datetime]) -> list[int]:
    """Lengths (in buckets) of the runs of consecutive buckets with nothing from an entity."""
    runs, run = [], 0
    for t in buckets:
        if t in present:
            if run:
                runs.append(run)
            run = 0
        else:
            run += 1
    return runs + ([run] if run else [])


# One station-level indicator per station kind (and two for the air stations).
STATION_KEYS = [
    "env.aqi",
    "env.pm25",
    "traffic.road_speed",
    "traffic.parking_occupancy",
    "water.river_level",
    "water.waterlogging_depth",
    "energy.load_rate",
    "gov.hall_wait",
    "health.er_wait",
    "env.noise",
]


def test_stations_go_silent_now_and_then(context):
    """About one station is out at any moment, for 20-120 minutes: long enough for the no-data rule
    (3 x 5 min) and rare enough that under 2 % of station buckets are missing."""
    adapter = make(context, indicators=STATION_KEYS, glitch_rate=0)
    start = MONDAY
    records = fetch_range(adapter, start, start + timedelta(days=7))
    buckets = [start + timedelta(minutes=5 * k) for k in range(1, 7 * 288 + 1)]
    seen = defaultdict(set)
    for r in records:
        seen[(r.indicator, r.entity)].add(r.observed_at)
    keys_of = defaultdict(set)
    for s in adapter.series:
        keys_of[s.entity].add(s.indicator.key)
    assert set(keys_of) == {s.code for s in context.city.stations}
    runs, out_at = [], np.zeros(len(buckets))
    for code, keys in keys_of.items():
        present = [seen[(key, code)] for key in keys]
        assert all(p == present[0] for p in present), f"{code}: an outage silences all its indicators"
        runs += silent_runs(present[0], buckets)
        out_at += [t not in present[0] for t in buckets]
    share = sum(runs) / (len(keys_of) * len(buckets))
    assert 0.003 < share < 0.02
    assert max(runs) * 5 >= 20 and sum(5 * r >= 20 for r in runs) >= 10
    assert max(runs) * 5 <= 240
    assert 0.5 < out_at.mean() < 2.5  # stations out at a time, on average


def test_no_outages_when_disabled(context):
    adapter = make(context, indicators=STATION_KEYS, glitch_rate=0, outage_rate=0)
    records = fetch_range(adapter, MONDAY, MONDAY + timedelta(days=2))
    assert len(records) == 2 * 288 * len(adapter.series)


def test_a_district_feed_goes_silent_very_rarely(context):
    adapter = make(context, indicators=["traffic.tpi", "weather.rainfall"], glitch_rate=0)
    start = MONDAY - timedelta(weeks=8)
    records = fetch_range(adapter, start, MONDAY, timedelta(days=7))
    buckets = [start + timedelta(minutes=5 * k) for k in range(1, 8 * 7 * 288 + 1)]
    seen = defaultdict(set)
    for r in records:
        seen[(r.indicator, r.entity)].add(r.observed_at)
    runs = []
    for district in context.city.districts:
        assert seen[("traffic.tpi", district.code)] == seen[("weather.rainfall", district.code)]
        runs += silent_runs(seen[("traffic.tpi", district.code)], buckets)
    assert runs and max(runs) * 5 >= 20
    assert sum(runs) / (len(context.city.districts) * len(buckets)) < 0.005


# --- hotline surges -----------------------------------------------------------------------------

WEEK_HOURS = 7 * 24


def hourly(records, start: datetime, hours: int) -> dict[str, np.ndarray]:
    """Per entity, the mean reading of each hour (start, start + 1 h], ... from `start`."""
    sums, counts = defaultdict(lambda: np.zeros(hours)), defaultdict(lambda: np.zeros(hours))
    for r in records:
        hour = int(((r.observed_at - start).total_seconds() - 1) // 3600)
        sums[r.entity][hour] += r.value
        counts[r.entity][hour] += 1
    return {e: sums[e] / np.maximum(counts[e], 1) for e in sums}


def robust_z(series: np.ndarray, hour: int, weeks: int = 4) -> float:
    """The hour against the same weekday-hour of the `weeks` previous weeks: (x - median) over
    1.4826 MAD, the spread floored at 5 % of the median (as the rules engine does) and one call."""
    past = np.array([series[hour - WEEK_HOURS * k] for k in range(1, weeks + 1)])
    centre = float(np.median(past))
    spread = max(1.4826 * float(np.median(np.abs(past - centre))), 0.05 * abs(centre), 1.0)
    return (series[hour] - centre) / spread


@pytest.fixture(scope="module")
def hotline_six_weeks(context):
    """Six weeks of 12345 calls per district, with and without surges (same seed, no outages)."""
    start = MONDAY - timedelta(weeks=5)
    options = {"indicators": ["hotline.calls_12345"], "glitch_rate": 0, "outage_rate": 0}
    end, chunk = start + timedelta(weeks=6), timedelta(days=7)
    surging = fetch_range(make(context, **options), start, end, chunk)
    calm = fetch_range(make(context, surge_rate=0, **options), start, end, chunk)
    return hourly(surging, start, 6 * WEEK_HOURS), hourly(calm, start, 6 * WEEK_HOURS)


def test_hotline_surges_are_rare_and_two_to_three_times_the_usual(hotline_six_weeks):
    surging, calm = hotline_six_weeks
    ratios, surge_hours, episodes = [], 0, 0
    for district, calls in surging.items():
        ratio = calls / calm[district]
        inside = ratio > 1.02
        surge_hours += inside.sum()
        starts = np.flatnonzero(inside & ~np.roll(inside, 1))
        episodes += len(starts)
        for first in starts:
            last = first
            while last + 1 < len(inside) and inside[last + 1]:
                last += 1
            ratios.append(ratio[first : last + 1].max())
    total_hours = len(surging) * 6 * WEEK_HOURS
    assert 0.3 * len(surging) * 6 < episodes < 3 * len(surging) * 6  # a few per district per month
    assert surge_hours < 0.05 * total_hours
    assert 1.8 <= np.median(ratios) <= 3.2


def test_hotline_surges_stand_out_against_past_weeks(hotline_six_weeks):
    surging, calm = hotline_six_weeks
    surge_z, normal_z = [], []
    for district, calls in surging.items():
        inside = calls != calm[district]
        near = inside | np.roll(inside, 1) | np.roll(inside, -1)
        for hour in range(4 * WEEK_HOURS, 6 * WEEK_HOURS):
            z = robust_z(calls, hour)
            if inside[hour]:
                surge_z.append(z)
            elif not near[hour]:
                normal_z.append(z)
    assert max(surge_z) > 3.5
    assert np.mean(np.array(surge_z) > 3.5) > 0.3
    assert np.mean(np.array(normal_z) > 3.5) < 0.01
    assert len(normal_z) > 1000
