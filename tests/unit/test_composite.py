"""The City Operations Index: pressures, sub-indices and weights."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indicators.catalog import load_catalog
from indicators.composite import CITY_KEY, city_index, index_values, normal_anchor, pressure, sub_indices

CATALOG = load_catalog()
AQI, SPEED, RIVER = CATALOG["env.aqi"], CATALOG["traffic.road_speed"], CATALOG["water.river_level"]


def test_pressure_is_the_level_at_each_limit():
    assert pressure(AQI, 0) == 0
    assert pressure(AQI, 101) == pytest.approx(1)
    assert pressure(AQI, 151) == pytest.approx(2)
    assert pressure(AQI, 301) == pytest.approx(4)
    assert pressure(AQI, 500) == 4
    assert pressure(AQI, 126) == pytest.approx(1.5)


def test_lower_is_worse_and_the_normal_anchor():
    anchor = normal_anchor(SPEED)
    assert anchor > SPEED.thresholds.limit(1)
    assert pressure(SPEED, anchor + 10) == 0
    assert pressure(SPEED, SPEED.thresholds.limit(1)) == pytest.approx(1)
    assert pressure(RIVER, RIVER.normal) == 0


def test_indicators_without_thresholds_do_not_count():
    assert pressure(CATALOG["hotline.calls_12345"], 500) is None
    assert sub_indices([(CATALOG["hotline.calls_12345"], 500)]) == {}


@given(st.floats(min_value=0, max_value=500), st.floats(min_value=0, max_value=500))
def test_sub_index_falls_as_pressure_rises(a, b):
    low, high = sorted((a, b))
    assert sub_indices([(AQI, low)])["environment"] >= sub_indices([(AQI, high)])["environment"]


def test_weights():
    subs = {"traffic": 90.0, "environment": 60.0}
    assert city_index(subs, {}) == 75.0
    assert city_index(subs, {"traffic": 3}) == pytest.approx(82.5)
    assert city_index(subs, {"environment": 0}) == 90.0
    assert city_index({}, {}) is None


def test_index_values_names_the_series():
    values = index_values([(AQI, 101), (SPEED, 60)], {})
    assert values["index.environment"] == 75.0
    assert values["index.traffic"] == 100.0
    assert values[CITY_KEY] == 87.5
