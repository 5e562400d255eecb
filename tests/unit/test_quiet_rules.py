"""The evaluation's pre-checks are exact: on random windows, the batch evaluation (which skips the
per-point judgement of rules it can show stay at their level, checking whole batches as numpy
columns and fitting forecast trends for many series at once) finds exactly the transitions of
every rule judged point by point."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indicators.catalog import Indicator
from indicators.evaluation import (
    Evaluator,
    SeriesBatch,
    SeriesWindow,
    bisect_rows,
    evaluate_series,
    rule_transitions,
)
from indicators.rules import theil_sen, theil_sen_rows

T0 = datetime(2026, 11, 2, tzinfo=UTC)
LIMITS = {"blue": 10, "yellow": 20, "orange": 30, "red": 40}


def indicator(direction: str, hold: str, readings: int = 1) -> Indicator:
    sign = 1 if direction == "above" else -1
    limits = LIMITS if direction == "above" else {name: 50 - limit for name, limit in LIMITS.items()}
    return Indicator.model_validate(
        {
            "key": f"test.{direction}",
            "domain": "water",
            "name": {"zh-CN": "测试", "en": "Test"},
            "bounds": [-100, 200],
            "cadence": "5m",
            "level": "station",
            "station_kinds": ["river"],
            "department": {"zh-CN": "水利局", "en": "Water bureau"},
            "thresholds": {
                "direction": direction,
                "hysteresis": 2,
                "for": hold,
                "readings": readings,
                **limits,
            },
            "rules": [
                {"type": "rate", "change": sign * 6, "within": "15m", "level": "yellow"},
                {"type": "forecast", "target": "yellow", "horizon": "1h", "window": "30m", "min_points": 4},
                {"type": "nodata", "after": 3},
            ],
        }
    )


INDICATORS = [
    indicator(d, hold, readings)
    for d in ("above", "below")
    for hold, readings in (("0", 1), ("10m", 1), ("0", 3))
]
# Mostly the regular cadence; sometimes a microsecond off it (windows then start just before or
# after a point), early, equal, late (just before, at, just past the no-data limit of 15
# minutes, or well past it), or anything to the microsecond.
NODATA = timedelta(minutes=15)
CADENCE, MICROSECOND = timedelta(minutes=5), timedelta(microseconds=1)
GAPS = st.one_of(
    st.just(CADENCE),
    st.sampled_from([CADENCE - MICROSECOND, CADENCE + MICROSECOND]),
    st.sampled_from([timedelta(0), timedelta(minutes=1), timedelta(minutes=40)]),
    st.sampled_from([NODATA - timedelta(microseconds=1), NODATA, NODATA + timedelta(microseconds=1)]),
    st.integers(1, 3_600_000_000).map(lambda us: timedelta(microseconds=us)),
)
# Limits, clear values (limit -/+ hysteresis) and their neighbours at the rate rule's change.
BOUNDARIES = [float(v) for v in range(0, 52, 2)]
# Values no validated reading has, but the pure functions must still agree on.
EXTREMES = [1e308, -1e308, float("inf"), float("-inf"), float("nan"), 20.0, 5e-324]


@st.composite
def values(draw, count: int) -> list[float]:
    """Anywhere in range, or a walk on even numbers from a boundary (then values sit exactly on
    limits and clear values, and rises and falls of exactly the rate rule's change are common),
    or extremes."""
    shape = draw(st.sampled_from(["anywhere", "walk", "walk", "extreme"]))
    if shape == "anywhere":
        return draw(st.lists(st.floats(-20, 70, allow_nan=False), min_size=count, max_size=count))
    if shape == "extreme":
        return draw(st.lists(st.sampled_from(EXTREMES), min_size=count, max_size=count))
    value, walk = draw(st.sampled_from(BOUNDARIES)), []
    for _ in range(count):
        walk.append(value)
        value += draw(st.sampled_from([-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0]))
    return walk


@st.composite
def windows(draw, ind: Indicator) -> SeriesWindow:
    gaps = draw(st.lists(GAPS, min_size=1, max_size=16))
    times = [T0 + sum(gaps[: i + 1], timedelta()) for i in range(len(gaps))]
    points = list(zip(times, draw(values(len(times))), strict=True))
    # Often what a live batch brings (one new point, no open alert), else anything.
    first_new = draw(st.one_of(st.just(len(points) - 1), st.integers(0, len(points))))
    if draw(st.booleans()):
        return SeriesWindow(points, first_new, {})
    severities = st.sampled_from([0, 0, 0, 1, 2, 3, 4])
    open_severity = {key: draw(severities) for key in ind.rule_keys()}
    return SeriesWindow(points, first_new, {k: v for k, v in open_severity.items() if v})


def full(ind: Indicator, series: SeriesWindow) -> list:
    """Every rule judged point by point, no pre-check."""
    points, first_new, open_severity, history = series
    if first_new >= len(points):
        return []
    return [
        step
        for key in ind.rule_keys()
        for step in rule_transitions(ind, key, points, first_new, open_severity.get(key, 0), history)
    ]


def exactly(steps: list) -> list[str]:
    """Transitions with the facts too (Transition equality leaves them out); as text, so that a
    NaN value equals itself."""
    return [repr((step, step.facts)) for step in steps]


@st.composite
def batches(draw):
    ind = draw(st.sampled_from(INDICATORS))
    return ind, draw(st.lists(windows(ind), min_size=1, max_size=8))


@settings(max_examples=400, deadline=None)
@given(batches())
def test_batch_evaluation_equals_the_full_evaluation(case):
    ind, batch = case
    found = Evaluator(ind).evaluate_many(SeriesBatch.of(batch))
    assert [exactly(steps) for steps in found] == [exactly(full(ind, series)) for series in batch]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(INDICATORS).flatmap(lambda ind: st.tuples(st.just(ind), windows(ind))))
def test_one_series_equals_the_full_evaluation(case):
    ind, (points, first_new, open_severity, _) = case
    found = evaluate_series(ind, points, first_new, open_severity)
    assert exactly(found) == exactly(full(ind, SeriesWindow(points, first_new, open_severity)))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(3, 14).flatmap(
        lambda n: st.lists(
            st.tuples(
                st.lists(st.integers(1, 10**9), min_size=n, max_size=n),
                st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=n, max_size=n),
            ),
            min_size=1,
            max_size=5,
        )
    )
)
def test_theil_sen_rows_equal_theil_sen_bit_for_bit(rows):
    """Strictly increasing times (microsecond steps as seconds), any values."""
    times = [np.cumsum(steps) / 10**6 for steps, _ in rows]
    slopes, intercepts = theil_sen_rows(np.array(times), np.array([values for _, values in rows]))
    for row, (_, values) in enumerate(rows):
        assert (slopes[row], intercepts[row]) == theil_sen(list(times[row]), values)


@pytest.mark.parametrize("ind", INDICATORS[::3], ids=lambda ind: ind.thresholds.direction)
def test_a_trend_reaching_the_target_exactly_at_the_horizon_fires(ind):
    """Binary fractions make every step exact: the trend reaches yellow in exactly one hour."""
    sign = 1 if ind.thresholds.direction == "above" else -1
    slope, at_horizon = sign / 256, 20.0 if sign > 0 else 30.0
    last = at_horizon - slope * 3600
    points = [(T0 + timedelta(minutes=5 * i), last - slope * 300 * (5 - i)) for i in range(6)]
    series = SeriesWindow(points, 5, {})
    forecasts = [s for s in Evaluator(ind).evaluate(series) if s.rule_key.endswith(":forecast")]
    assert [(s.kind, s.facts["minutes"]) for s in forecasts] == [("opened", 60.0)]
    assert exactly(Evaluator(ind).evaluate(series)) == exactly(full(ind, series))


def series(values: list[float], last_gap: timedelta = CADENCE) -> list[tuple[datetime, float]]:
    times = [T0 + CADENCE * i for i in range(len(values) - 1)]
    return list(zip([*times, times[-1] + last_gap], values, strict=True))


def test_steady_series_are_not_judged_point_by_point():
    """The pre-checks do answer "no change" where judging every rule point by point finds
    nothing, right up to the rules' edges: a series far from every level; one silent for exactly
    the no-data limit; one at yellow and rising by half the rate rule's change, which keeps its
    alerts; one just past blue, too briefly for the 10 minutes blue needs; one whose trend
    reaches yellow in 70 minutes, past the forecast's hour but within the 75 minutes that keep
    its alert."""
    plain, held = INDICATORS[0], INDICATORS[1]
    slope, name = 1 / 256, plain.key
    cases = [
        (plain, SeriesWindow(series([3.0 + 0.1 * (i % 2) for i in range(12)]), 11, {})),
        (plain, SeriesWindow(series([3.0] * 12, NODATA), 11, {})),
        (
            plain,
            SeriesWindow(
                series([10 + 1.5 * i for i in range(12)]), 11, {f"{name}:threshold": 2, f"{name}:rate": 2}
            ),
        ),
        (held, SeriesWindow(series([7.0] * 11 + [10.5]), 11, {})),
        (
            plain,
            SeriesWindow(
                series([20 - slope * (4200 + 300 * (5 - i)) for i in range(6)]), 5, {f"{name}:forecast": 1}
            ),
        ),
    ]
    for ind, window in cases:
        steady = Evaluator(ind).steady(SeriesBatch.of([window]))
        assert {key: answer.tolist() for key, answer in steady.items()} == {
            key: [True] for key in ind.rule_keys()
        }
        assert full(ind, window) == []


def test_a_point_a_microsecond_before_the_forecast_window_is_left_out():
    """Three points in the last 30 minutes are too few for a trend (4 needed), so the open
    forecast alert resolves; the point a microsecond earlier, which would make a rising trend of
    four, is outside the window for the pre-check as for the rule."""
    ind = INDICATORS[0]
    times = [T0, T0 + timedelta(minutes=20, microseconds=1), T0 + timedelta(minutes=25, microseconds=1)]
    window = SeriesWindow(
        list(zip([*times, T0 + timedelta(minutes=30, microseconds=1)], [3.0, 7.0, 8.0, 9.0], strict=True)),
        3,
        {f"{ind.key}:forecast": 1},
    )
    found = Evaluator(ind).evaluate(window)
    assert [(step.kind, step.rule_key) for step in found] == [("resolved", f"{ind.key}:forecast")]
    assert exactly(found) == exactly(full(ind, window))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-5, 5), max_size=12).map(sorted),
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(-6, 6)), min_size=1, max_size=6),
)
def test_bisect_rows_equals_bisect_left(micros, searches):
    """Sorted runs with repeated times, searches of any range (empty ones too)."""
    bounds = [(min(lo, len(micros)), min(hi, len(micros)), target) for lo, hi, target in searches]
    found = bisect_rows(
        np.array(micros, dtype=np.int64),
        np.array([lo for lo, _, _ in bounds], dtype=np.intp),
        np.array([hi for _, hi, _ in bounds], dtype=np.intp),
        np.array([target for _, _, target in bounds], dtype=np.int64),
    )
    assert found.tolist() == [bisect.bisect_left(micros, target, lo, hi) for lo, hi, target in bounds]
