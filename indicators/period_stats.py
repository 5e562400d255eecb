"""Figures over the period a page shows: extremes, mean, and how long each warning level held.

They are computed from the very points the chart draws (one value per bucket, with the bucket's
lowest and highest reading), so the numbers beside a chart never disagree with it. Time counts only
where there is data: each point stands for the time until the next one, at most one bucket step, so
an outage is neither "normal" nor "red". A level's time uses `Thresholds.severity`, the same test the
warning engine uses, so a direction the catalog adds later is counted the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Protocol

from indicators.catalog import Thresholds


class Point(Protocol):
    """One bucket of a series (store.history.Bucket satisfies it)."""

    at: datetime
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class LevelTime:
    """How long the shown line was at this level or a more severe one."""

    severity: int
    limit: float
    seconds: float


@dataclass(frozen=True)
class PeriodStats:
    covered_seconds: float
    minimum: float | None
    minimum_at: datetime | None
    maximum: float | None
    maximum_at: datetime | None
    mean: float | None
    levels: tuple[LevelTime, ...]


@dataclass(frozen=True)
class Zone:
    """A value range in which the level is `severity` (0 normal), for drawing bands."""

    severity: int
    low: float
    high: float


@dataclass(frozen=True)
class Change:
    """This period against another: the difference of the means, and in percent when defined."""

    current: float
    other: float
    difference: float
    percent: float | None


def durations(points: Sequence[Point], step: timedelta, end: datetime) -> list[float]:
    """Seconds each point stands for: until the next point, at most `step`, never past `end`."""
    limit = step.total_seconds()
    spans = [min((b.at - a.at).total_seconds(), limit) for a, b in pairwise(points)]
    if points:
        spans.append(min((end - points[-1].at).total_seconds(), limit))
    return [max(span, 0.0) for span in spans]


def period_stats(
    points: Sequence[Point], thresholds: Thresholds | None, step: timedelta, end: datetime
) -> PeriodStats:
    """The figures of one shown series; `step` is the bucket length of its resolution."""
    spans = durations(points, step, end)
    covered = sum(spans)
    limits = thresholds.limits() if thresholds else ()
    if not points:
        return PeriodStats(0.0, None, None, None, None, None, tuple(LevelTime(s, v, 0.0) for s, v in limits))
    lowest = min(points, key=lambda p: p.low)
    highest = max(points, key=lambda p: p.high)
    if covered > 0:
        mean = sum(p.value * span for p, span in zip(points, spans, strict=True)) / covered
    else:
        mean = sum(p.value for p in points) / len(points)
    reached = [thresholds.severity(p.value) if thresholds else 0 for p in points]
    levels = tuple(
        LevelTime(
            severity,
            limit,
            sum(span for span, got in zip(spans, reached, strict=True) if got >= severity),
        )
        for severity, limit in limits
    )
    return PeriodStats(covered, lowest.low, lowest.at, highest.high, highest.at, mean, levels)


def level_zones(thresholds: Thresholds, bounds: tuple[float, float]) -> tuple[Zone, ...]:
    """The value axis cut at the limits, each piece labelled with the level it means.

    Each piece's level is read from `Thresholds.severity` at its middle rather than from the
    direction, so the bands follow whatever the catalog's rule says (above, below, ...).
    """
    low, high = bounds
    edges = sorted({low, high, *(limit for _, limit in thresholds.limits() if low < limit < high)})
    zones: list[Zone] = []
    for a, b in pairwise(edges):
        severity = thresholds.severity((a + b) / 2)
        if zones and zones[-1].severity == severity:
            zones[-1] = Zone(severity, zones[-1].low, b)
        else:
            zones.append(Zone(severity, a, b))
    return tuple(zones)


def change(current: float | None, other: float | None) -> Change | None:
    """None when either side has no data; no percent against zero."""
    if current is None or other is None:
        return None
    difference = current - other
    percent = difference / abs(other) * 100 if other != 0 else None
    return Change(current, other, difference, percent)
