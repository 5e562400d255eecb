"""Run every rule of an indicator over one series and turn verdicts into alert transitions.

Pure: the caller supplies the recent points (read once per batch), which points are new, and each
rule's open-alert severity; nothing here touches the database. The same functions serve the
pipeline, the staleness sweep, the tests and the benchmark.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from core.i18n import t
from core.levels import level
from core.timeutil import MICROSECOND
from indicators import rules
from indicators.catalog import AnomalyRule, ForecastRule, Indicator, NoDataRule, RateRule, severity_of
from indicators.rules import FORECAST_CLEAR_FACTOR, RATE_CLEAR_SHARE, Point, Verdict

LOOKBACK_MARGIN = 2


@dataclass(frozen=True)
class Transition:
    """A change of one rule's level on one series: opened, escalated, deescalated, resolved."""

    rule_key: str
    kind: str
    at: datetime
    from_severity: int
    to_severity: int
    value: float | None
    facts: dict = field(default_factory=dict, compare=False)
    predicted_at: datetime | None = None


def rule_type(rule_key: str) -> str:
    return rule_key.rsplit(":", 1)[1]


def lookback(indicator: Indicator) -> timedelta:
    """How much history before the new points the window rules need."""
    needed = indicator.cadence * LOOKBACK_MARGIN
    if indicator.thresholds:
        needed += indicator.thresholds.hold + indicator.cadence * indicator.thresholds.readings
    for rule in indicator.rules:
        if isinstance(rule, RateRule):
            needed = max(needed, rule.within + indicator.cadence)
        elif isinstance(rule, ForecastRule):
            needed = max(needed, rule.window + indicator.cadence)
    return timedelta(seconds=needed)


def anomaly_rule(indicator: Indicator) -> AnomalyRule | None:
    return next((r for r in indicator.rules if isinstance(r, AnomalyRule)), None)


def nodata_rule(indicator: Indicator) -> NoDataRule | None:
    return next((r for r in indicator.rules if isinstance(r, NoDataRule)), None)


def _kind(before: int, after: int) -> str:
    if before == 0:
        return "opened"
    if after == 0:
        return "resolved"
    return "escalated" if after > before else "deescalated"


def _verdict(
    indicator: Indicator,
    kind: str,
    points: Sequence[Point],
    index: int,
    current: int,
    history: Sequence[Point],
) -> Verdict:
    if kind == "threshold":
        return rules.threshold(indicator.thresholds, points, index, current)
    rule = next(r for r in indicator.rules if r.type == kind)
    if isinstance(rule, RateRule):
        return rules.rate(rule, points, index, current)
    if isinstance(rule, ForecastRule):
        return rules.forecast(indicator, rule, points, index, current)
    at, value = points[index]
    return rules.anomaly(indicator, rule, history, at, value, current)


class SeriesWindow(NamedTuple):
    """One series to judge: the lookback window followed by the new points (time-ordered), where
    the new points start, each rule's open-alert severity, and the long past an anomaly rule
    compares with."""

    points: Sequence[Point]
    first_new: int
    open_severity: dict[str, int]
    history: Sequence[Point] = ()


class SeriesBatch(NamedTuple):
    """Many series of one indicator to judge, as columns: what `SeriesWindow` holds per series,
    without a Python object per point.

    Series k's window is rows lo[k]:hi[k] of `micros` and `values` (time-ordered; other rows may
    belong to other indicators' series), its new points start at row first[k]. Times are whole
    microseconds from any origin shared within a series, so they compare and subtract exactly as
    the datetimes. `points(k)` gives the same window as (datetime, value) pairs and `history(k)`
    the long past of an anomaly rule: built only for the few series judged point by point.
    """

    micros: NDArray[np.int64]
    values: NDArray[np.float64]
    lo: NDArray[np.intp]
    first: NDArray[np.intp]
    hi: NDArray[np.intp]
    open_severity: Sequence[Mapping[str, int]]
    points: Callable[[int], Sequence[Point]]
    history: Callable[[int], Sequence[Point]]

    @classmethod
    def of(cls, windows: Sequence[SeriesWindow]) -> SeriesBatch:
        """The columns of series given as point lists (tests, one series at a time)."""
        lengths = np.array([len(w.points) for w in windows], dtype=np.intp)
        hi = np.cumsum(lengths, dtype=np.intp)
        lo = hi - lengths
        micros = [(at - w.points[0][0]) // MICROSECOND for w in windows for at, _ in w.points]
        return cls(
            np.array(micros, dtype=np.int64),
            np.array([value for w in windows for _, value in w.points], dtype=np.float64),
            lo,
            lo + np.minimum([w.first_new for w in windows], lengths).astype(np.intp),
            hi,
            [w.open_severity for w in windows],
            lambda k: windows[k].points,
            lambda k: windows[k].history,
        )


def bisect_rows(
    micros: NDArray[np.int64], lo: NDArray[np.intp], hi: NDArray[np.intp], target: NDArray[np.int64]
) -> NDArray[np.intp]:
    """`bisect.bisect_left(micros, target[i], lo[i], hi[i])` for every i at once: the same steps,
    so the same answer."""
    lo, hi = lo.copy(), hi.copy()
    active = np.flatnonzero(lo < hi)
    while len(active):
        low, high = lo[active], hi[active]
        middle = (low + high) // 2
        below = micros[middle] < target[active]
        lo[active] = np.where(below, middle + 1, low)
        hi[active] = np.where(below, high, middle)
        active = active[lo[active] < hi[active]]
    return lo


def _segments(
    ufunc: np.ufunc, values: NDArray[np.float64], start: NDArray[np.intp], stop: NDArray[np.intp]
) -> NDArray[np.float64]:
    """ufunc.reduce over values[start[i]:stop[i]] for every i (each segment non-empty). A NaN
    anywhere in a segment makes np.maximum and np.minimum answer NaN."""
    edges = np.empty(2 * len(start), dtype=np.intp)
    edges[0::2], edges[1::2] = start, stop
    return ufunc.reduceat(np.append(values, 0.0), edges)[0::2]


class _NewRows(NamedTuple):
    """The windows of a batch's series that have new points, gathered next to one another (series
    j is rows lo[j]:hi[j], new from first[j]), and every new point: its row and its series."""

    micros: NDArray[np.int64]
    values: NDArray[np.float64]
    lo: NDArray[np.intp]
    first: NDArray[np.intp]
    hi: NDArray[np.intp]
    row: NDArray[np.intp]
    owner: NDArray[np.intp]

    @classmethod
    def of(cls, batch: SeriesBatch, series: NDArray[np.intp]) -> _NewRows:
        lengths = batch.hi[series] - batch.lo[series]
        hi = np.cumsum(lengths, dtype=np.intp)
        lo = hi - lengths
        rows = np.arange(hi[-1] if len(hi) else 0) + np.repeat(batch.lo[series] - lo, lengths)
        first = batch.first[series] - batch.lo[series] + lo
        counts = hi - first
        owner = np.repeat(np.arange(len(series)), counts)
        row = first[owner] + np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
        return cls(batch.micros[rows], batch.values[rows], lo, first, hi, row, owner)

    def everywhere(self, holds: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """Per series: does `holds` (one per new point) hold at each of its new points?"""
        return np.bincount(self.owner, weights=~holds, minlength=len(self.lo)) == 0

    def since(self, reach: int) -> NDArray[np.intp]:
        """Per new point, the first row of its window of `reach` microseconds: the rules'
        `bisect_left(points, at - reach, hi=index, key=TIME)`."""
        return bisect_rows(self.micros, self.lo[self.owner], self.row, self.micros[self.row] - reach)


class Evaluator:
    """One indicator's rules, prepared once per batch: judging a series then costs only the judging.

    Each rule is first put to an exact pre-check over the whole batch at once (`steady`): most
    series of a batch stay where they are, far from every level and without a gap, or still
    where their open alert is, and the answer "no change" then needs no per-point judgement.
    Exact, never a guess: a pre-check says "no change" only where the rule's full evaluation
    (`rule_transitions`) finds no transition; tests/unit/test_quiet_rules.py compares the two on
    random windows.
    """

    def __init__(self, indicator: Indicator):
        self.indicator = indicator
        self.keys = [(key, rule_type(key)) for key in indicator.rule_keys()]
        self.rate = next((r for r in indicator.rules if isinstance(r, RateRule)), None)
        self.forecast = next((r for r in indicator.rules if isinstance(r, ForecastRule)), None)
        self.anomaly = anomaly_rule(indicator)
        nodata = nodata_rule(indicator)
        self.silence = timedelta(seconds=nodata.after * indicator.cadence) if nodata else None

    def evaluate(self, series: SeriesWindow) -> list[Transition]:
        """Judge points[first_new:] under every rule, each from its open alert's severity."""
        return self.evaluate_many(SeriesBatch.of([series]))[0]

    def evaluate_many(self, batch: SeriesBatch) -> list[list[Transition]]:
        """`evaluate` for every series of the batch: the rules the pre-checks cannot show steady
        are judged point by point on the series' points."""
        found: list[list[Transition]] = [[] for _ in range(len(batch.lo))]
        steady = self.steady(batch)
        built: dict[int, Sequence[Point]] = {}
        for rule_key, _ in self.keys:
            for k in np.flatnonzero(~steady[rule_key]).tolist():
                points = built.get(k)
                if points is None:
                    points = built[k] = batch.points(k)
                current = batch.open_severity[k].get(rule_key, 0)
                first_new = int(batch.first[k] - batch.lo[k])
                found[k] += rule_transitions(
                    self.indicator, rule_key, points, first_new, current, batch.history(k)
                )
        return found

    def steady(self, batch: SeriesBatch) -> dict[str, NDArray[np.bool_]]:
        """Per rule key, True for each series where the rule stays at its open alert's severity
        (0 without one) at every new point, so judging it point by point would find nothing;
        True as well for a series without new points. Anomaly rules are always judged in full.

        Each check takes the rule's own comparisons and float operations, on the same windows
        (found by the same bisection; times in whole microseconds, so as exact as the datetimes);
        wherever numpy could differ from Python (NaN, whose ordering differs) it answers False.
        """
        has_new = np.flatnonzero(batch.first < batch.hi)
        new = _NewRows.of(batch, has_new)
        position = np.full(len(batch.lo), -1)
        position[has_new] = np.arange(len(has_new))
        current = {key: np.zeros(len(has_new), dtype=np.int64) for key, _ in self.keys}
        for k, open_severity in enumerate(batch.open_severity):
            if open_severity and position[k] >= 0:
                for key, severity in open_severity.items():
                    if key in current:
                        current[key][position[k]] = severity
        answers: dict[str, NDArray[np.bool_]] = {}
        for rule_key, kind in self.keys:
            if kind == "threshold":
                stays = self._steady_threshold(new, current[rule_key])
            elif kind == "rate":
                stays = self._steady_rate(new, current[rule_key])
            elif kind == "forecast":
                stays = self._steady_forecast(new, current[rule_key])
            elif kind == "nodata":
                silent = np.diff(new.micros) > self.silence // MICROSECOND
                gaps = np.concatenate(([0], np.cumsum(silent)))
                # silent[i - 1] is the gap ending at row i; a series' first row has none.
                quiet = gaps[new.hi - 1] == gaps[np.maximum(new.first, new.lo + 1) - 1]
                stays = quiet & (current[rule_key] == 0)  # an open no-data alert resolves
            else:
                stays = np.zeros(len(has_new), dtype=bool)
            answer = np.ones(len(batch.lo), dtype=bool)
            answer[has_new] = stays
            answers[rule_key] = answer
        return answers

    def _steady_threshold(self, new: _NewRows, current: NDArray[np.int64]) -> NDArray[np.bool_]:
        """`rules.threshold` enters a level above `current` only where the run of points reaching
        that level's limit, ending at the point, is long enough; the limits are ordered, so that
        run lies within the run reaching the mildest limit above `current`, no longer, no earlier
        in time. Failing that, the level stays while the value reaches its clear value."""
        thresholds = self.indicator.thresholds
        limits = dict(thresholds.limits())
        point_values = new.values[new.row]
        steady = np.zeros(len(current), dtype=bool)
        for severity in sorted(set(current.tolist())):
            if severity and severity not in limits:
                continue
            holds = np.ones(len(new.row), dtype=bool)
            higher = [limit for level, limit in limits.items() if level > severity]
            if higher:
                holds &= ~self._may_enter(new, higher[0])
            if severity:
                holds &= thresholds.reaches(point_values, thresholds.clear_value(severity))
            chosen = current == severity
            steady[chosen] = new.everywhere(holds | ~chosen[new.owner])[chosen]
        return steady

    def _may_enter(self, new: _NewRows, limit: float) -> NDArray[np.bool_]:
        """Per new point: the run of points reaching `limit` ending there holds the rule's count
        of readings for its duration (`rules._run_start`)."""
        thresholds = self.indicator.thresholds
        reach = thresholds.reaches(new.values, limit)
        breaks = np.maximum.accumulate(np.where(reach, -1, np.arange(len(reach))))
        start = np.minimum(np.maximum(breaks[new.row] + 1, new.lo[new.owner]), new.row)
        held = (new.micros[new.row] - new.micros[start]) / 1e6
        return reach[new.row] & (new.row - start + 1 >= thresholds.readings) & (held >= thresholds.hold)

    def _steady_rate(self, new: _NewRows, current: NDArray[np.int64]) -> NDArray[np.bool_]:
        """`rules.rate` at every new point: the change over its window against the change the
        rule needs (half of it to stay); a window of one point gives 0."""
        rule = self.rate
        start = new.since(timedelta(seconds=rule.within) // MICROSECOND)
        rising = rule.change > 0
        extreme = _segments(np.minimum if rising else np.maximum, new.values, start, new.row + 1)
        with np.errstate(over="ignore", invalid="ignore"):  # infinities: inf - inf is NaN
            moved = new.values[new.row] - extreme
        alerted = current[new.owner] != 0
        needed = np.where(alerted, rule.change * RATE_CLEAR_SHARE, rule.change * 1.0)
        firing = (moved >= needed if rising else moved <= needed) & (new.row > start)
        severity = np.where(firing, severity_of(rule.level), 0)
        return new.everywhere((severity == current[new.owner]) & ~np.isnan(moved))

    def _steady_forecast(self, new: _NewRows, current: NDArray[np.int64]) -> NDArray[np.bool_]:
        """`rules.forecast` at every new point: windows too short or already at the target give
        0; the others' trends are fitted all at once, grouped by window length, their times in
        seconds from the window's first point as `timedelta.total_seconds` computes them (whole
        microseconds / 10**6, one correctly rounded division)."""
        rule = self.forecast
        limit = rules.forecast_limit(self.indicator, rule)
        start = new.since(timedelta(seconds=rule.window) // MICROSECOND)
        length = new.row - start + 1
        fitted = (length >= rule.min_points) & ~self.indicator.thresholds.reaches(new.values[new.row], limit)
        alerted = current[new.owner] != 0
        horizons = np.where(alerted, rule.horizon * FORECAST_CLEAR_FACTOR, rule.horizon * 1.0)
        certain = np.ones(len(new.row), dtype=bool)
        fires = np.zeros(len(new.row), dtype=bool)
        for size in sorted(set(length[fitted].tolist())):
            chosen = np.flatnonzero(fitted & (length == size))
            rows = start[chosen, None] + np.arange(size)
            seconds = (new.micros[rows] - new.micros[start[chosen], None]) / 1e6
            certain[chosen], fires[chosen] = rules.forecast_fires(
                self.indicator, rule, seconds, new.values[rows], horizons[chosen]
            )
        severity = np.where(fires, severity_of(rule.level), 0)
        return new.everywhere(certain & (severity == current[new.owner]))


def evaluate_series(
    indicator: Indicator,
    points: Sequence[Point],
    first_new: int,
    open_severity: dict[str, int],
    history: Sequence[Point] = (),
) -> list[Transition]:
    """Judge points[first_new:] under every rule, each starting from its open alert's severity.

    `points` holds the lookback window followed by the new points, time-ordered; `history` the
    long past an anomaly rule compares with. A no-data alert resolves at the first new point.
    A batch prepares one `Evaluator` per indicator instead.
    """
    return Evaluator(indicator).evaluate(SeriesWindow(points, first_new, open_severity, history))


def rule_transitions(
    indicator: Indicator,
    rule_key: str,
    points: Sequence[Point],
    first_new: int,
    current: int,
    history: Sequence[Point] = (),
) -> list[Transition]:
    """The full evaluation of one rule: every new point judged in turn from `current`."""
    kind = rule_type(rule_key)
    if kind == "nodata":
        return _gaps(indicator, rule_key, points, first_new, current)
    found = []
    for index in range(first_new, len(points)):
        verdict = _verdict(indicator, kind, points, index, current, history)
        if verdict.severity != current:
            at, value = points[index]
            found.append(
                Transition(
                    rule_key,
                    _kind(current, verdict.severity),
                    at,
                    current,
                    verdict.severity,
                    value,
                    verdict.facts,
                    verdict.predicted_at,
                )
            )
            current = verdict.severity
    return found


def _gaps(
    indicator: Indicator, rule_key: str, points: Sequence[Point], first_new: int, current: int
) -> list[Transition]:
    """Silences between consecutive points longer than the no-data limit (history and late data),
    and the end of an outage the staleness sweep opened."""
    rule = nodata_rule(indicator)
    limit = timedelta(seconds=rule.after * indicator.cadence)
    severity = severity_of(rule.level)
    found = []
    for index in range(first_new, len(points)):
        at, value = points[index]
        if current:
            found.append(Transition(rule_key, "resolved", at, current, 0, value))
            current = 0
            continue
        if index == 0 or at - points[index - 1][0] <= limit:
            continue
        last_seen = points[index - 1][0]
        facts = {"minutes": limit.total_seconds() / 60, "cadence": indicator.cadence / 60}
        found.append(Transition(rule_key, "opened", last_seen + limit, 0, severity, None, facts))
        found.append(Transition(rule_key, "resolved", at, severity, 0, value))
    return found


def stale_transition(
    indicator: Indicator, rule_key: str, last_seen: datetime | None, now: datetime, current: int
) -> Transition | None:
    """The staleness sweep: open a no-data alert once nothing came for `after` x the cadence."""
    rule = nodata_rule(indicator)
    if rule is None or last_seen is None or current:
        return None
    silent = (now - last_seen).total_seconds()
    if silent < rule.after * indicator.cadence:
        return None
    severity = severity_of(rule.level)
    facts = {"minutes": silent / 60, "cadence": indicator.cadence / 60, "last_seen": last_seen}
    return Transition(rule_key, "opened", now, 0, severity, None, facts)


EXPLAIN_KEYS = {
    ("threshold", "above"): "explain.threshold_above",
    ("threshold", "below"): "explain.threshold_below",
    ("threshold_for", "above"): "explain.threshold_above_for",
    ("threshold_for", "below"): "explain.threshold_below_for",
    ("rate", "rise"): "explain.rate_rise",
    ("rate", "fall"): "explain.rate_fall",
    ("nodata", ""): "explain.nodata",
    ("forecast", ""): "explain.forecast",
    ("anomaly", "high"): "explain.anomaly_high",
    ("anomaly", "low"): "explain.anomaly_low",
}
WEEKDAY_KEYS = tuple(f"weekday.{day}" for day in range(7))


def _number(indicator: Indicator, value: float | None, lang: str) -> str:
    if value is None:
        return "—"
    text = f"{value:.{indicator.decimals}f}"
    unit = indicator.unit_in(lang)
    return f"{text} {unit}" if unit else text


def _message(indicator: Indicator, step: Transition, lang: str) -> tuple[str, dict]:
    """The message key and its values, by rule type."""
    kind, facts = rule_type(step.rule_key), step.facts
    if kind == "threshold":
        hold = indicator.thresholds.hold
        since = facts.get("since")
        key = ("threshold_for" if hold and since else "threshold", indicator.thresholds.direction)
        minutes = round((step.at - since).total_seconds() / 60) if since else 0
        return EXPLAIN_KEYS[key], {"limit": _number(indicator, facts.get("limit"), lang), "minutes": minutes}
    if kind == "rate":
        moved = facts.get("moved", 0.0)
        key = EXPLAIN_KEYS[("rate", "rise" if moved >= 0 else "fall")]
        return key, {"moved": _number(indicator, abs(moved), lang), "minutes": round(facts.get("minutes", 0))}
    if kind == "nodata":
        return EXPLAIN_KEYS[("nodata", "")], {
            "minutes": round(facts.get("minutes", 0)),
            "cadence": round(facts.get("cadence", 0)),
        }
    if kind == "forecast":
        return EXPLAIN_KEYS[("forecast", "")], {
            "limit": _number(indicator, facts.get("limit"), lang),
            "minutes": round(facts.get("minutes", 0)),
        }
    high = facts.get("z", 0) >= 0
    return EXPLAIN_KEYS[("anomaly", "high" if high else "low")], {
        "baseline": _number(indicator, facts.get("baseline"), lang),
        "z": f"{facts.get('z', 0):.1f}",
    }


def explain(indicator: Indicator, entity_name: str, step: Transition, lang: str, zone: ZoneInfo) -> str:
    """One sentence in the reader's language saying why the alert is at its level."""
    key, values = _message(indicator, step, lang)
    lvl = level(step.to_severity)
    local = step.at.astimezone(zone)
    predicted = step.predicted_at.astimezone(zone).strftime("%H:%M") if step.predicted_at else ""
    target = step.facts.get("target")
    return t(
        key,
        lang,
        indicator=indicator.name.get(lang),
        entity=entity_name,
        value=_number(indicator, step.value, lang),
        roman=lvl.roman,
        colour=t(lvl.short_key, lang),
        time=predicted,
        target=t(f"level.short.{target}", lang) if target else "",
        weekday=t(WEEKDAY_KEYS[local.weekday()], lang),
        **values,
    )
