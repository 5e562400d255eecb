"""The warning rules, evaluated per (rule, series) over the series' recent points.

Pure functions: each takes the points (time-ordered), the index of the point being judged and the
rule's current severity (the open alert's, 0 when none), and returns the severity the rule asks for
at that point, with what the explanation needs. Nothing here reads the database.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import combinations
from operator import itemgetter

import numpy as np
from numpy.typing import NDArray

from indicators.catalog import AnomalyRule, ForecastRule, Indicator, RateRule, Thresholds, severity_of

Point = tuple[datetime, float]
TIME = itemgetter(0)
SAFE_MAGNITUDE = 1e150
RATE_CLEAR_SHARE = 0.5
FORECAST_CLEAR_FACTOR = 1.25
ANOMALY_CLEAR_SHARE = 0.7


@dataclass(frozen=True)
class Verdict:
    """What a rule says at one point: the severity and the facts its explanation cites."""

    severity: int
    facts: dict = field(default_factory=dict)
    predicted_at: datetime | None = None


def _run_start(points: Sequence[Point], index: int, reaches) -> tuple[datetime | None, int]:
    """Start time and length of the run of consecutive points, ending at `index`, that reach."""
    start, count = None, 0
    for position in range(index, -1, -1):
        if not reaches(points[position][1]):
            break
        start, count = points[position][0], count + 1
    return start, count


def threshold(thresholds: Thresholds, points: Sequence[Point], index: int, current: int) -> Verdict:
    """Levels with hysteresis (leave only past the clear value) and a minimum duration to enter."""
    at, value = points[index]
    entered, held_since = 0, None
    for severity, limit in thresholds.limits():
        if severity <= current:
            continue
        start, count = _run_start(points, index, lambda v, lim=limit: thresholds.reaches(v, lim))
        if (
            start is not None
            and count >= thresholds.readings
            and (at - start).total_seconds() >= thresholds.hold
        ):
            entered, held_since = severity, start
    if entered > current:
        return Verdict(entered, {"value": value, "limit": thresholds.limit(entered), "since": held_since})
    if current and not thresholds.reaches(value, thresholds.clear_value(current)):
        lower = [
            s
            for s, _ in thresholds.limits()
            if s < current and thresholds.reaches(value, thresholds.clear_value(s))
        ]
        current = max(lower, default=0)
    if current:
        return Verdict(current, {"value": value, "limit": thresholds.limit(current)})
    return Verdict(0, {"value": value})


def rate(rule: RateRule, points: Sequence[Point], index: int, current: int) -> Verdict:
    """A rise (or fall) of `change` within `within`; stays while at least half of it remains."""
    at, value = points[index]
    earliest = at - timedelta(seconds=rule.within)
    window = [v for _, v in points[bisect.bisect_left(points, earliest, hi=index, key=TIME) : index + 1]]
    if len(window) < 2:
        return Verdict(0, {"value": value})
    moved = value - (min(window) if rule.change > 0 else max(window))
    needed = rule.change * (RATE_CLEAR_SHARE if current else 1.0)
    firing = moved >= needed if rule.change > 0 else moved <= needed
    facts = {"value": value, "moved": moved, "minutes": rule.within / 60}
    return Verdict(severity_of(rule.level) if firing else 0, facts)


def theil_sen(times: Sequence[float], values: Sequence[float]) -> tuple[float, float]:
    """Robust slope (median of pairwise slopes) and intercept: one outlier cannot fake a trend.

    Plain Python for one window: a dozen points, where numpy's call overhead costs more than the
    sums. Many windows at once: `theil_sen_rows`.
    """
    pairs = list(zip(times, values, strict=True))
    slopes = [(vj - vi) / (tj - ti) for (ti, vi), (tj, vj) in combinations(pairs, 2) if tj > ti]
    if not slopes:
        return 0.0, statistics.median(values)
    slope = statistics.median(slopes)
    return slope, statistics.median([v - slope * t for t, v in pairs])


def _median_rows(rows: NDArray[np.float64]) -> NDArray[np.float64]:
    """`statistics.median` of each row (no NaN): the middle order statistic, or (a + b) / 2 of the
    two; selected with a partition, which places the same values there as a full sort."""
    middle = rows.shape[1] // 2
    if rows.shape[1] % 2:
        return np.partition(rows, middle, axis=1)[:, middle]
    ordered = np.partition(rows, (middle - 1, middle), axis=1)
    return (ordered[:, middle - 1] + ordered[:, middle]) / 2


def theil_sen_rows(
    times: NDArray[np.float64], values: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """`theil_sen` of each row (windows of one length, times strictly increasing) for thousands
    of series at once. The same float operations as `theil_sen`, so each row's slope and
    intercept equal its result bit for bit."""
    first, second = np.triu_indices(times.shape[1], 1)
    slope = _median_rows((values[:, second] - values[:, first]) / (times[:, second] - times[:, first]))
    return slope, _median_rows(values - slope[:, None] * times)


def forecast_limit(indicator: Indicator, rule: ForecastRule) -> float:
    """The limit of the level the forecast looks out for."""
    return indicator.thresholds.limit(severity_of(rule.target))


def forecast_window(rule: ForecastRule, points: Sequence[Point], index: int) -> Sequence[Point]:
    """The points the trend is fitted on: those within `window` up to the judged one."""
    earliest = points[index][0] - timedelta(seconds=rule.window)
    return points[bisect.bisect_left(points, earliest, hi=index, key=TIME) : index + 1]


def window_seconds(window: Sequence[Point]) -> list[float]:
    """Seconds since the window's first point: the trend's x axis."""
    origin = window[0][0]
    return [(t - origin).total_seconds() for t, _ in window]


def forecast(
    indicator: Indicator, rule: ForecastRule, points: Sequence[Point], index: int, current: int
) -> Verdict:
    """Will the robust trend of the recent window cross the target level within the horizon?"""
    thresholds = indicator.thresholds
    at, value = points[index]
    limit = forecast_limit(indicator, rule)
    window = forecast_window(rule, points, index)
    if len(window) < rule.min_points or thresholds.reaches(value, limit):
        return Verdict(0, {"value": value})
    times = window_seconds(window)
    slope, intercept = theil_sen(times, [v for _, v in window])
    worsening = slope > 0 if thresholds.direction == "above" else slope < 0
    if not worsening:
        return Verdict(0, {"value": value})
    fitted = intercept + slope * times[-1]
    seconds = (limit - fitted) / slope
    horizon = rule.horizon * (FORECAST_CLEAR_FACTOR if current else 1.0)
    if not 0 < seconds <= horizon:
        return Verdict(0, {"value": value})
    predicted = at + timedelta(seconds=seconds)
    facts = {
        "value": value,
        "limit": limit,
        "target": rule.target,
        "minutes": seconds / 60,
        "slope_per_hour": slope * 3600,
        "predicted_at": predicted,
    }
    return Verdict(severity_of(rule.level), facts, predicted)


def forecast_fires(
    indicator: Indicator,
    rule: ForecastRule,
    times: NDArray[np.float64],
    values: NDArray[np.float64],
    horizons: NDArray[np.float64],
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """`forecast` over many windows at once (rows of one length; the caller has already dropped
    windows too short or already at the target): whether each row's trend reaches the target
    within its horizon (`rule.horizon`, or the longer one of an open alert), and where that answer
    is certainly the rule's own.

    Not certain, so the caller judges them in full: times not strictly increasing (the rule skips
    pairs of equal times), or values not finite or so large that differences overflow (NaN sorts
    differently in numpy and Python). Elsewhere the float operations are the rule's.
    """
    increasing = (np.diff(times, axis=1) > 0).all(axis=1)
    certain = increasing & (np.abs(values) < SAFE_MAGNITUDE).all(axis=1)
    slope, intercept = theil_sen_rows(times[certain], values[certain])
    fitted = intercept + slope * times[certain, -1]
    with np.errstate(all="ignore"):
        seconds = (forecast_limit(indicator, rule) - fitted) / slope
    worsening = slope > 0 if indicator.thresholds.direction == "above" else slope < 0
    fires = np.zeros(len(times), dtype=bool)
    fires[certain] = worsening & (seconds > 0) & (seconds <= horizons[certain])
    return certain, fires


def baseline(history: Sequence[Point], at: datetime, rule: AnomalyRule) -> list[float]:
    """The series' value at the same time of the week in each of the past `weeks` weeks."""
    times = [t for t, _ in history]
    found = []
    for week in range(1, rule.weeks + 1):
        centre = at - timedelta(days=7 * week)
        low = bisect.bisect_left(times, centre - timedelta(seconds=rule.tolerance))
        high = bisect.bisect_right(times, centre + timedelta(seconds=rule.tolerance))
        if high > low:
            found.append(statistics.fmean(v for _, v in history[low:high]))
    return found


def anomaly(
    indicator: Indicator,
    rule: AnomalyRule,
    history: Sequence[Point],
    at: datetime,
    value: float,
    current: int,
) -> Verdict:
    """Robust z-score against the same weekday-hour of past weeks (median and MAD)."""
    past = baseline(history, at, rule)
    if len(past) < rule.min_weeks:
        return Verdict(0, {"value": value, "weeks": len(past)})
    centre = statistics.median(past)
    spread = 1.4826 * statistics.median(abs(v - centre) for v in past)
    spread = max(spread, 0.05 * abs(centre), 10**-indicator.decimals)
    z = (value - centre) / spread
    signed = z if indicator.higher_is_worse else -z
    needed = rule.z * (ANOMALY_CLEAR_SHARE if current else 1.0)
    facts = {"value": value, "baseline": centre, "z": z, "weeks": len(past)}
    return Verdict(severity_of(rule.level) if signed >= needed else 0, facts)
