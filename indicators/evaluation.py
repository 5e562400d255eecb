"""Run every rule of an indicator over one series and turn verdicts into alert transitions.

Pure: the caller supplies the recent points (read once per batch), which points are new, and each
rule's open-alert severity; nothing here touches the database. The same functions serve the
pipeline, the staleness sweep, the tests and the benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from core.i18n import t
from core.levels import level
from indicators import rules
from indicators.catalog import AnomalyRule, ForecastRule, Indicator, NoDataRule, RateRule, severity_of
from indicators.rules import Point, Verdict

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
    rule_key: str,
    points: Sequence[Point],
    index: int,
    current: int,
    history: Sequence[Point],
) -> Verdict:
    kind = rule_type(rule_key)
    if kind == "threshold":
        return rules.threshold(indicator.thresholds, points, index, current)
    rule = next(r for r in indicator.rules if r.type == kind)
    if isinstance(rule, RateRule):
        return rules.rate(rule, points, index, current)
    if isinstance(rule, ForecastRule):
        return rules.forecast(indicator, rule, points, index, current)
    at, value = points[index]
    return rules.anomaly(indicator, rule, history, at, value, current)


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
    """
    found: list[Transition] = []
    if first_new >= len(points):
        return found
    for rule_key in indicator.rule_keys():
        current = open_severity.get(rule_key, 0)
        if rule_type(rule_key) == "nodata":
            found += _gaps(indicator, rule_key, points, first_new, current)
            continue
        for index in range(first_new, len(points)):
            verdict = _verdict(indicator, rule_key, points, index, current, history)
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
