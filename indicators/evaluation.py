"""Plain threshold evaluation: the level a series is at, and the alert transitions it causes.

Pure functions over values and the open alert's state, so they are tested without a database.
The warning-engine issue adds hysteresis, durations, rate-of-change, no-data and forecast rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from core.i18n import t
from core.levels import level
from indicators.catalog import Indicator


@dataclass(frozen=True)
class Transition:
    """A change of an alert's level: opened (0 -> n), escalated, de-escalated, resolved (n -> 0)."""

    kind: str
    at: datetime
    from_severity: int
    to_severity: int
    value: float


EXPLAIN_KEYS = {"above": "explain.threshold_above", "below": "explain.threshold_below"}


def rule_key(indicator: Indicator) -> str:
    return f"{indicator.key}:threshold"


def transitions(
    indicator: Indicator, points: Iterable[tuple[datetime, float]], open_severity: int
) -> list[Transition]:
    """Walk the points in time order from the open alert's severity (0 when none is open)."""
    if indicator.thresholds is None:
        return []
    found = []
    current = open_severity
    for at, value in sorted(points, key=lambda p: p[0]):
        severity = indicator.thresholds.severity(value)
        if severity == current:
            continue
        if current == 0:
            kind = "opened"
        elif severity == 0:
            kind = "resolved"
        else:
            kind = "escalated" if severity > current else "deescalated"
        found.append(Transition(kind, at, current, severity, value))
        current = severity
    return found


def _with_unit(number: str, unit: str) -> str:
    return f"{number} {unit}" if unit else number


def explain(indicator: Indicator, entity_name: str, value: float, severity: int, lang: str) -> str:
    """One sentence saying why the alert exists, in the reader's language."""
    limit = dict(indicator.thresholds.limits())[severity] if indicator.thresholds else value
    lvl = level(severity)
    direction = indicator.thresholds.direction if indicator.thresholds else "above"
    return t(
        EXPLAIN_KEYS[direction],
        lang,
        indicator=indicator.name.get(lang),
        entity=entity_name,
        value=_with_unit(f"{value:.{indicator.decimals}f}", indicator.unit),
        limit=_with_unit(f"{limit:g}", indicator.unit),
        roman=lvl.roman,
        colour=t(lvl.short_key, lang),
    )
