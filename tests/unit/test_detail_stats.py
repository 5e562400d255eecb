"""The period statistics: exact on hand-made points, and the ordering of level times for any
series (time at red <= orange <= yellow <= blue <= time with data), in both directions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indicators.catalog import Thresholds
from indicators.period_stats import Zone, change, durations, level_zones, period_stats

T0 = datetime(2026, 1, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
AQI = Thresholds(direction="above", blue=101, yellow=151, orange=201, red=301)
VISIBILITY = Thresholds(direction="below", yellow=500, orange=200, red=50)


@dataclass(frozen=True)
class P:
    at: datetime
    value: float
    low: float
    high: float


def hourly(*values: float) -> list[P]:
    return [P(T0 + i * HOUR, v, v, v) for i, v in enumerate(values)]


def test_exact_figures_of_a_hand_made_day():
    points = hourly(50, 120, 160, 250, 320, 90)
    points[4] = P(points[4].at, 320, 300, 340)  # a spread inside the red hour
    stats = period_stats(points, AQI, HOUR, T0 + 6 * HOUR)
    assert stats.covered_seconds == 6 * 3600
    assert (stats.minimum, stats.minimum_at) == (50, T0)
    assert (stats.maximum, stats.maximum_at) == (340, T0 + 4 * HOUR)
    assert stats.mean == pytest.approx((50 + 120 + 160 + 250 + 320 + 90) / 6)
    assert [(held.severity, held.limit, held.seconds / 3600) for held in stats.levels] == [
        (1, 101, 4),
        (2, 151, 3),
        (3, 201, 2),
        (4, 301, 1),
    ]


def test_a_gap_counts_neither_as_normal_nor_as_a_level():
    points = [P(T0, 400, 400, 400), P(T0 + 5 * HOUR, 400, 400, 400)]
    stats = period_stats(points, AQI, HOUR, T0 + 10 * HOUR)
    assert stats.covered_seconds == 2 * 3600
    assert stats.levels[-1].seconds == 2 * 3600


def test_the_last_point_stops_at_the_end_of_the_window():
    assert durations(hourly(1, 2, 3), HOUR, T0 + 2 * HOUR + timedelta(minutes=20)) == [3600, 3600, 1200]
    assert durations([], HOUR, T0) == []


def test_the_mean_weighs_points_by_the_time_they_stand_for():
    points = [P(T0, 10, 10, 10), P(T0 + timedelta(minutes=5), 100, 100, 100)]
    stats = period_stats(points, None, HOUR, T0 + timedelta(minutes=65))
    assert stats.mean == pytest.approx((10 * 5 + 100 * 60) / 65)
    assert stats.levels == ()


def test_lower_is_worse_counts_the_time_at_or_below_each_limit():
    points = hourly(800, 450, 150, 40, 40)
    stats = period_stats(points, VISIBILITY, HOUR, T0 + 5 * HOUR)
    assert {held.severity: held.seconds / 3600 for held in stats.levels} == {2: 4, 3: 3, 4: 2}


def test_no_points_give_no_figures_but_every_level_at_zero():
    stats = period_stats([], AQI, HOUR, T0)
    assert (stats.minimum, stats.maximum, stats.mean, stats.covered_seconds) == (None, None, None, 0)
    assert [held.seconds for held in stats.levels] == [0, 0, 0, 0]


def test_level_zones_cut_the_axis_at_the_limits_in_either_direction():
    assert level_zones(AQI, (0, 500)) == (
        Zone(0, 0, 101),
        Zone(1, 101, 151),
        Zone(2, 151, 201),
        Zone(3, 201, 301),
        Zone(4, 301, 500),
    )
    assert level_zones(VISIBILITY, (0, 50000)) == (
        Zone(4, 0, 50),
        Zone(3, 50, 200),
        Zone(2, 200, 500),
        Zone(0, 500, 50000),
    )
    heat = Thresholds(direction="above", yellow=35, orange=37, red=50)
    assert level_zones(heat, (-30, 50))[-1] == Zone(3, 37, 50)  # a limit on the bound adds no band


def test_change_in_percent_only_against_a_nonzero_mean():
    assert change(110.0, 100.0).percent == pytest.approx(10.0)
    assert change(-5.0, -10.0).percent == pytest.approx(50.0)
    assert change(3.0, 0.0).percent is None and change(3.0, 0.0).difference == 3.0
    assert change(None, 1.0) is None and change(1.0, None) is None


values = st.floats(min_value=0, max_value=500, allow_nan=False)
series = st.lists(st.tuples(st.integers(1, 7200), values, values, values), min_size=0, max_size=60).map(
    lambda rows: [
        P(T0 + timedelta(seconds=sum(r[0] for r in rows[: i + 1])), mid, min(lo, mid), max(hi, mid))
        for i, (_gap, mid, lo, hi) in enumerate(rows)
    ]
)


@given(
    series,
    st.sampled_from([AQI, Thresholds(direction="below", blue=400, yellow=300, orange=200, red=100)]),
    st.integers(60, 7200),
    st.integers(0, 7200),
)
def test_more_severe_levels_never_last_longer(points, thresholds, step_seconds, tail):
    step = timedelta(seconds=step_seconds)
    end = (points[-1].at if points else T0) + timedelta(seconds=tail)
    stats = period_stats(points, thresholds, step, end)
    times = [held.seconds for held in stats.levels]
    assert all(worse <= milder for milder, worse in zip(times, times[1:], strict=False))
    assert all(0 <= held <= stats.covered_seconds + 1e-6 for held in times)
    if points:
        assert stats.covered_seconds <= (end - points[0].at).total_seconds() + 1e-6
        assert stats.minimum <= stats.mean + 1e-9 and stats.mean <= stats.maximum + 1e-9
        assert stats.covered_seconds <= step_seconds * len(points)
