"""Plain thresholds: levels are monotone in the value and transitions replay to the final level."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from indicators.catalog import Thresholds, load_catalog
from indicators.evaluation import explain, transitions

CATALOG = load_catalog()
AQI = CATALOG["env.aqi"]
SPEED = CATALOG["traffic.road_speed"]
T0 = datetime(2026, 11, 23, tzinfo=UTC)
values = st.floats(min_value=0, max_value=500, allow_nan=False)


@given(values, values)
def test_level_is_monotone_in_the_value_for_higher_is_worse(a, b):
    low, high = sorted((a, b))
    assert AQI.thresholds.severity(low) <= AQI.thresholds.severity(high)


@given(st.floats(min_value=0, max_value=150), st.floats(min_value=0, max_value=150))
def test_level_is_monotone_for_lower_is_worse(a, b):
    low, high = sorted((a, b))
    assert SPEED.thresholds.severity(low) >= SPEED.thresholds.severity(high)


def test_band_edges_follow_hj_633():
    assert [AQI.thresholds.severity(v) for v in (100, 101, 150, 151, 201, 300, 301)] == [0, 1, 1, 2, 3, 3, 4]


@given(st.lists(values, max_size=40), st.integers(min_value=0, max_value=4))
def test_transitions_replay_to_the_level_of_the_last_value(series, start):
    points = [(T0 + timedelta(minutes=5 * i), v) for i, v in enumerate(series)]
    found = transitions(AQI, points, start)
    level = start
    for step in found:
        assert step.from_severity == level and step.to_severity != level
        assert (step.kind == "opened") == (level == 0)
        assert (step.kind == "resolved") == (step.to_severity == 0)
        level = step.to_severity
    expected = AQI.thresholds.severity(series[-1]) if series else start
    assert level == expected


def test_transitions_sort_by_time():
    points = [(T0 + timedelta(minutes=10), 50.0), (T0, 320.0)]
    assert [s.kind for s in transitions(AQI, points, 0)] == ["opened", "resolved"]


def test_explanation_in_both_languages():
    assert explain(AQI, "雪浪", 320, 4, "zh-CN") == "雪浪空气质量指数为320，达到或超过301（I级红色预警）"
    assert explain(SPEED, "Renmin Road", 7, 4, "en") == (
        "Road segment speed at Renmin Road is 7 km/h, at or below 8 km/h (level I, Red)"
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"direction": "above", "blue": 100, "yellow": 90}, "level yellow (90.0) must be above level blue"),
        ({"direction": "below", "blue": 10, "yellow": 20}, "level yellow (20.0) must be below level blue"),
        ({"direction": "above"}, "at least one"),
    ],
)
def test_inconsistent_thresholds_are_rejected(bad, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Thresholds.model_validate(bad)


def test_catalog_error_names_the_indicator(tmp_path):
    from core.settings import ConfigError

    path = tmp_path / "extra.yaml"
    path.write_text(
        "indicators:\n  - key: env.aqi\n    domain: environment\n    name: {zh-CN: x, en: x}\n"
        "    bounds: [0, 500]\n    cadence: 1h\n    level: station\n    station_kinds: [air]\n"
        "    department: {zh-CN: x, en: x}\n    thresholds: {blue: 200, yellow: 150}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"indicators\.0 \(env\.aqi\)\.thresholds: level yellow"):
        load_catalog([path])
