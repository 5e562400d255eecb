"""View building: stale data is flagged, trends have a tolerance, values are formatted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callbacks.views import delayed_minutes, trend_direction
from indicators.catalog import load_catalog
from layouts.components import format_value
from store.queries import Latest

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
AQI = load_catalog()["env.aqi"]


def latest(value, trend):
    return Latest("env.aqi", value, NOW, 0, 13, trend)


def test_fresh_data_is_not_delayed():
    assert delayed_minutes(AQI, NOW - timedelta(minutes=9), NOW) is None


def test_data_older_than_three_cadences_and_ten_minutes_is_delayed():
    assert delayed_minutes(AQI, NOW - timedelta(minutes=16), NOW) == 16
    assert delayed_minutes(AQI, None, NOW) is None


def test_trend_ignores_noise_below_one_percent():
    assert trend_direction(latest(100.0, 0.5), 0) == 0
    assert trend_direction(latest(100.0, 3.0), 0) == 1
    assert trend_direction(latest(100.0, -3.0), 0) == -1
    assert trend_direction(latest(None, None), 0) == 0


def test_format_value():
    assert format_value(None, 1) == "—"
    assert format_value(1234.567, 1) == "1,234.6"
    assert format_value(3.0, 0) == "3"
