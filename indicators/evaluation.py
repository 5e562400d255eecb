"""Run every rule of an indicator over one series and turn verdicts into alert transitions.

Pure: the caller supplies the recent points (read once per batch), which points are new, and each
rule's open-alert severity; nothing here touches the database. The same functions serve the
pipeline, the staleness sweep, the tests and the benchmark.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np

from core.i18n import t
from core.levels import level
from indicators import rules
from indicators.catalog import AnomalyRule, ForecastRule, Indicator, NoDataRule, RateRule, severity_of
from indicators.rules import TIME, Point, Verdict

LOOKBACK_MARGIN = 2
VALUE = itemgetter(1)


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


class Evaluator:
    """One indicator's rules, prepared once per batch: judging a series then costs only the judging.

    A rule with no open alert is first put to an exact pre-check: most series of a batch are far
    from every level and have no gap, and the answer "nothing" then needs no per-point judgement
    (`quiet`); the forecast's trend is fitted for all the batch's series at once
    (`_calm_forecasts`). Exact, never a guess: a pre-check says "nothing" only where the rule's
    full evaluation (`rule_transitions`) finds no transition; tests/unit/test_quiet_rules.py
    compares the two on random windows.
    """

    def __init__(self, indicator: Indicator):
        self.indicator = indicator
        self.keys = [(key, rule_type(key)) for key in indicator.rule_keys()]
        thresholds = indicator.thresholds
        self.above = thresholds is not None and thresholds.direction == "above"
        self.mildest = thresholds.limits()[0][1] if thresholds else None
        self.rate = next((r for r in indicator.rules if isinstance(r, RateRule)), None)
        self.forecast = next((r for r in indicator.rules if isinstance(r, ForecastRule)), None)
        self.anomaly = anomaly_rule(indicator)
        nodata = nodata_rule(indicator)
        self.silence = timedelta(seconds=nodata.after * indicator.cadence) if nodata else None

    def evaluate(self, series: SeriesWindow) -> list[Transition]:
        """Judge points[first_new:] under every rule, each from its open alert's severity."""
        return self.evaluate_many([series])[0]

    def evaluate_many(self, batch: Sequence[SeriesWindow]) -> list[list[Transition]]:
        """`evaluate` for many series of this indicator."""
        calm = self._calm_forecasts(batch) if self.forecast else set()
        return [self._judge(series, number in calm) for number, series in enumerate(batch)]

    def _judge(self, series: SeriesWindow, calm_forecast: bool) -> list[Transition]:
        points, first_new, open_severity, history = series
        found: list[Transition] = []
        if first_new >= len(points):
            return found
        new = points[first_new:]
        for rule_key, kind in self.keys:
            current = open_severity.get(rule_key, 0) if open_severity else 0
            if current:
                quiet = False
            elif kind == "forecast":
                quiet = calm_forecast
            else:
                quiet = self.quiet(kind, points, first_new, new)
            if not quiet:
                found += rule_transitions(self.indicator, rule_key, points, first_new, current, history)
        return found

    def quiet(self, kind: str, points: Sequence[Point], first_new: int, new: Sequence[Point]) -> bool:
        """True only when the rule, with no open alert, cannot change at any new point
        (`new` = points[first_new:]).

        - threshold: entering any level needs its limit reached at the point judged, and the
          mildest limit is reached first; no new point reaching it, no level;
        - rate: the change a point shows is at most the newest extreme minus the window's
          opposite extreme (float subtraction is monotone, so the bound holds as computed);
        - nodata: no new point follows a silence longer than the limit.
        Each comparison answers False for a NaN, that is "not quiet". Anomaly rules are always
        judged in full; forecasts in `_calm_forecasts`.
        """
        if kind == "threshold":
            if self.above:
                return max(map(VALUE, new)) < self.mildest
            return min(map(VALUE, new)) > self.mildest
        if kind == "rate":
            change = self.rate.change
            if change > 0:
                return max(map(VALUE, new)) - min(map(VALUE, points)) < change
            return min(map(VALUE, new)) - max(map(VALUE, points)) > change
        if kind == "nodata":
            limit = self.silence
            if first_new == len(points) - 1:
                return first_new == 0 or new[0][0] - points[first_new - 1][0] <= limit
            return all(
                points[i][0] - points[i - 1][0] <= limit for i in range(max(first_new, 1), len(points))
            )
        return False

    def _calm_forecasts(self, batch: Sequence[SeriesWindow]) -> set[int]:
        """The series (by position) whose forecast, with no open alert, fires at no new point.

        Windows too short or already at the target cannot fire; the others' trends are fitted
        all at once, grouped by window length, with the same float operations as the rule. The
        series of a batch mostly share their observation times: each distinct run of times is
        turned into seconds once.
        """
        rule, key = self.forecast, f"{self.indicator.key}:forecast"
        thresholds, limit = self.indicator.thresholds, rules.forecast_limit(self.indicator, rule)
        calm: set[int] = set()
        fits: dict[int, list[tuple[int, list[float], list[float]]]] = defaultdict(list)
        seconds: dict[tuple[datetime, ...], list[float]] = {}
        for number, (points, first_new, open_severity, _) in enumerate(batch):
            if open_severity.get(key):
                continue
            calm.add(number)
            for index in range(first_new, len(points)):
                window = rules.forecast_window(rule, points, index)
                if len(window) < rule.min_points or thresholds.reaches(points[index][1], limit):
                    continue
                times = tuple(map(TIME, window))
                if times not in seconds:
                    seconds[times] = rules.window_seconds(window)
                fits[len(window)].append((number, seconds[times], list(map(VALUE, window))))
        for rows in fits.values():
            times = np.array([times for _, times, _ in rows])
            values = np.array([values for _, _, values in rows])
            fires = rules.forecast_may_fire(self.indicator, rule, times, values)
            calm.difference_update(number for (number, _, _), fire in zip(rows, fires, strict=True) if fire)
        return calm


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


def _number(indicator: Indicator, value: float | None) -> str:
    if value is None:
        return "—"
    text = f"{value:.{indicator.decimals}f}"
    return f"{text} {indicator.unit}" if indicator.unit else text


def _message(indicator: Indicator, step: Transition) -> tuple[str, dict]:
    """The message key and its values, by rule type (language-independent parts)."""
    kind, facts = rule_type(step.rule_key), step.facts
    if kind == "threshold":
        hold = indicator.thresholds.hold
        since = facts.get("since")
        key = ("threshold_for" if hold and since else "threshold", indicator.thresholds.direction)
        minutes = round((step.at - since).total_seconds() / 60) if since else 0
        return EXPLAIN_KEYS[key], {"limit": _number(indicator, facts.get("limit")), "minutes": minutes}
    if kind == "rate":
        moved = facts.get("moved", 0.0)
        key = EXPLAIN_KEYS[("rate", "rise" if moved >= 0 else "fall")]
        return key, {"moved": _number(indicator, abs(moved)), "minutes": round(facts.get("minutes", 0))}
    if kind == "nodata":
        return EXPLAIN_KEYS[("nodata", "")], {
            "minutes": round(facts.get("minutes", 0)),
            "cadence": round(facts.get("cadence", 0)),
        }
    if kind == "forecast":
        return EXPLAIN_KEYS[("forecast", "")], {
            "limit": _number(indicator, facts.get("limit")),
            "minutes": round(facts.get("minutes", 0)),
        }
    high = facts.get("z", 0) >= 0
    return EXPLAIN_KEYS[("anomaly", "high" if high else "low")], {
        "baseline": _number(indicator, facts.get("baseline")),
        "z": f"{facts.get('z', 0):.1f}",
    }


def explain(indicator: Indicator, entity_name: str, step: Transition, lang: str, zone: ZoneInfo) -> str:
    """One sentence in the reader's language saying why the alert is at its level."""
    key, values = _message(indicator, step)
    lvl = level(step.to_severity)
    local = step.at.astimezone(zone)
    predicted = step.predicted_at.astimezone(zone).strftime("%H:%M") if step.predicted_at else ""
    target = step.facts.get("target")
    return t(
        key,
        lang,
        indicator=indicator.name.get(lang),
        entity=entity_name,
        value=_number(indicator, step.value),
        roman=lvl.roman,
        colour=t(lvl.short_key, lang),
        time=predicted,
        target=t(f"level.short.{target}", lang) if target else "",
        weekday=t(WEEKDAY_KEYS[local.weekday()], lang),
        **values,
    )
