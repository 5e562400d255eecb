"""The built-in vital-sign catalog: broad, bilingual, owned, standard-based, and all simulated."""

from __future__ import annotations

import csv
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from core.city import load_city
from datasources.base import AdapterContext
from datasources.simulator import MODELS, Options, SimulatorAdapter
from indicators.catalog import AnomalyRule, ForecastRule, Indicator, NoDataRule, RateRule, load_catalog
from indicators.evaluation import Transition, explain

REPO = Path(__file__).resolve().parents[2]
CATALOG_YAML = REPO / "indicators" / "catalog.yaml"
STATIONS_CSV = REPO / "config" / "cities" / "wuxi" / "stations.csv"
VITAL_DOMAINS = (
    "traffic",
    "environment",
    "water",
    "energy",
    "safety",
    "city_management",
    "emergency",
    "health",
    "economy",
    "government",
)
# Keys the wall screen configuration and the docs refer to: they must stay.
LONG_STANDING = (
    "traffic.tpi",
    "traffic.road_speed",
    "traffic.parking_occupancy",
    "env.aqi",
    "env.pm25",
    "env.noise",
    "water.river_level",
    "water.waterlogging_depth",
    "energy.load_rate",
    "hotline.calls_12345",
    "safety.calls_110",
    "weather.rainfall",
    "gov.hall_wait",
    "health.er_wait",
)

UTC_NOON = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def vital() -> list[Indicator]:
    """The entries of the built-in catalog file itself, in file order."""
    entries = yaml.safe_load(CATALOG_YAML.read_text(encoding="utf-8"))["indicators"]
    return [Indicator.model_validate(entry) for entry in entries]


@pytest.fixture(scope="module")
def by_key(vital) -> dict[str, Indicator]:
    return {indicator.key: indicator for indicator in vital}


def test_the_file_loads_as_the_catalog_with_unique_keys(vital):
    keys = [indicator.key for indicator in vital]
    assert len(keys) == len(set(keys))
    catalog = load_catalog()
    assert all(catalog[key] == indicator for key, indicator in zip(keys, vital, strict=True))


def test_at_least_forty_indicators_across_all_ten_domains(vital):
    assert len(vital) >= 40
    domains = Counter(indicator.domain for indicator in vital)
    assert set(domains) == set(VITAL_DOMAINS)
    assert min(domains.values()) >= 3


def test_the_long_standing_keys_are_kept(by_key):
    assert set(LONG_STANDING) <= set(by_key)


def test_every_rule_type_is_present(vital):
    kinds = {type(rule) for indicator in vital for rule in indicator.rules}
    assert kinds == {RateRule, NoDataRule, ForecastRule, AnomalyRule}


def test_the_rules_the_operations_centre_relies_on(by_key):
    river = {rule.type: rule for rule in by_key["water.river_level"].rules}
    assert river["rate"].change == pytest.approx(0.15) and river["rate"].within == 3600
    assert river["forecast"].target == "yellow" and river["forecast"].horizon == 7200
    assert river["forecast"].window == 3600
    assert {rule.type for rule in by_key["water.waterlogging_depth"].rules} >= {"rate", "nodata"}
    speed = {rule.type: rule for rule in by_key["traffic.road_speed"].rules}
    assert speed["rate"].change < 0
    assert any(
        rule.type == "forecast" and rule.target == "orange" for rule in by_key["energy.load_rate"].rules
    )


def test_anomaly_indicators_have_no_fixed_thresholds(vital, by_key):
    hotline = by_key["hotline.calls_12345"]
    assert hotline.thresholds is None
    (anomaly,) = [rule for rule in hotline.rules if isinstance(rule, AnomalyRule)]
    assert (anomaly.weeks, anomaly.min_weeks, anomaly.z) == (4, 3, 3.5)
    for indicator in vital:
        if any(isinstance(rule, AnomalyRule) for rule in indicator.rules):
            assert indicator.thresholds is None, indicator.key


def test_most_station_indicators_watch_for_missing_data(vital):
    station = [indicator for indicator in vital if indicator.level == "station"]
    watched = [i for i in station if any(isinstance(rule, NoDataRule) for rule in i.rules)]
    assert len(watched) >= 0.8 * len(station)
    for indicator in watched:
        (rule,) = [rule for rule in indicator.rules if isinstance(rule, NoDataRule)]
        assert rule.after == 3 and rule.level == "blue"


def test_station_kinds_exist_in_the_wuxi_stations_file(vital):
    with STATIONS_CSV.open(encoding="utf-8-sig", newline="") as handle:
        kinds = {row["kind"] for row in csv.DictReader(handle)}
    for indicator in vital:
        assert set(indicator.station_kinds) <= kinds, indicator.key
        assert (indicator.level == "station") == bool(indicator.station_kinds), indicator.key


def test_every_indicator_is_named_in_both_languages_and_owned(vital):
    for indicator in vital:
        assert indicator.name.zh.strip() and indicator.name.en.strip(), indicator.key
        assert indicator.department.zh.strip() and indicator.department.en.strip(), indicator.key
        assert indicator.name.zh != indicator.name.en, indicator.key
        assert indicator.cadence == 300, indicator.key  # the simulator's step


def test_a_unit_that_is_a_word_has_its_chinese_form(vital, by_key):
    """Symbols (µg/m³, km/h, MPa) read the same in both languages; words (households, calls/h,
    min) must not show in English on the Chinese pages."""
    words = [i.key for i in vital if re.search(r"[a-z]{3,}", i.unit) and not i.unit_zh]
    assert not words, f"units without unit_zh: {words}"
    outage = by_key["energy.outage_households"]
    assert (outage.unit_in("zh-CN"), outage.unit_in("en")) == ("户", "households")
    assert by_key["env.aqi"].unit_in("zh-CN") == by_key["env.aqi"].unit
    step = Transition("energy.outage_households:threshold", "opened", UTC_NOON, 0, 1, 620.0, {"limit": 500.0})
    sentence = explain(outage, "无锡", step, "zh-CN", ZoneInfo("Asia/Shanghai"))
    assert "620 户" in sentence and "500 户" in sentence and "households" not in sentence
    assert "620 households" in explain(outage, "Wuxi", step, "en", ZoneInfo("Asia/Shanghai"))


def test_classifications(vital, by_key):
    counts = Counter(indicator.classification for indicator in vital)
    assert counts["public"] > len(vital) / 2
    assert by_key["safety.calls_110"].classification == "internal"
    assert by_key["energy.load_rate"].classification == "internal"
    assert 1 <= counts["restricted"] <= 2


@pytest.mark.parametrize(
    ("key", "cited"),
    [
        ("env.aqi", ["HJ 633-2012"]),
        ("env.pm25", ["HJ 633-2012", "24-hour", "35, 75, 115, 150, 250"]),
        ("env.pm10", ["HJ 633-2012", "24-hour", "50, 150, 250, 350, 420"]),
        ("env.no2", ["HJ 633-2012", "1-hour", "100, 200, 700, 1200, 2340"]),
        ("env.o3", ["HJ 633-2012", "1-hour", "160, 200, 300, 400, 800"]),
        ("traffic.tpi", ["GB/T 33171"]),
        ("water.river_level", ["3.90", "4.53"]),
        ("env.dissolved_oxygen", ["GB 3838-2002"]),
        ("env.ammonia_nitrogen", ["GB 3838-2002"]),
        ("weather.temperature", ["35", "37", "40"]),
        ("weather.visibility", ["500", "200", "50"]),
    ],
)
def test_standards_are_cited(by_key, key, cited):
    standard = by_key[key].standard or ""
    for text in cited:
        assert text in standard, (key, text)


def test_thresholds_follow_the_cited_standards(by_key):
    def limits(key):
        return [limit for _, limit in by_key[key].thresholds.limits()]

    # each level starts where the sub-index passes IAQI 100, 150, 200 and 300
    assert limits("env.aqi") == [101, 151, 201, 301]
    assert limits("env.pm25") == [75, 115, 150, 250]
    assert limits("env.pm10") == [150, 250, 350, 420]
    assert limits("env.no2") == [200, 700, 1200, 2340]
    assert limits("env.o3") == [200, 300, 400, 800]
    assert limits("traffic.tpi") == [6, 7, 8, 9]
    assert by_key["water.river_level"].thresholds.limit(2) == 3.9
    assert by_key["water.river_level"].thresholds.limit(4) == 4.53
    assert by_key["env.dissolved_oxygen"].thresholds.direction == "below"
    assert by_key["env.dissolved_oxygen"].thresholds.limit(1) == 5
    assert by_key["env.ammonia_nitrogen"].thresholds.limit(1) == 1.0
    heat = by_key["weather.temperature"].thresholds
    assert (heat.yellow, heat.orange, heat.red) == (35, 37, 40)
    fog = by_key["weather.visibility"].thresholds
    assert (fog.direction, fog.yellow, fog.orange, fog.red) == ("below", 500, 200, 50)
    aqi = by_key["env.aqi"].thresholds
    assert aqi.hysteresis == 5 and aqi.hold == 900


def test_the_simulator_models_every_catalog_indicator(vital):
    assert {indicator.key for indicator in vital} <= set(MODELS)
    zone = ZoneInfo("Asia/Shanghai")
    city = load_city(REPO / "assets/geo/wuxi_districts.geojson", STATIONS_CSV)
    adapter = SimulatorAdapter(
        Options(outage_rate=0, glitch_rate=0), AdapterContext(city, load_catalog(), zone, "sim")
    )
    until = datetime(2026, 11, 23, 10, tzinfo=zone).astimezone(UTC)
    records = adapter.fetch((until - timedelta(hours=1)).isoformat(), until).records
    per_key = Counter(record.indicator for record in records)
    for indicator in vital:
        assert per_key[indicator.key] >= 12, indicator.key
