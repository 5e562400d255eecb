"""The write side for alerts: apply the transitions the rules found, one open alert per key.

Every change is an event with time, actor and note, so the timeline of an alert can be replayed.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from indicators.evaluation import Transition
from store.models import OPEN_STATES, Alert, AlertEvent, Series

SYSTEM = "system"


def open_alerts(session: Session, rule_keys_by_series: dict[int, str]) -> dict[int, Alert]:
    """The open alert of each (series, rule), keyed by series id."""
    if not rule_keys_by_series:
        return {}
    rows = session.scalars(
        select(Alert).where(Alert.series_id.in_(list(rule_keys_by_series)), Alert.state.in_(OPEN_STATES))
    )
    return {a.series_id: a for a in rows if rule_keys_by_series[a.series_id] == a.rule_key}


def apply_transitions(
    session: Session,
    series_id: int,
    rule_key: str,
    alert: Alert | None,
    found: list[Transition],
    explain: Callable[[float, int, str], str],
) -> Alert | None:
    """Persist the transitions of one series; returns the alert left open, if any."""
    for step in found:
        if step.kind == "opened":
            alert = Alert(
                rule_key=rule_key,
                series_id=series_id,
                state="active",
                severity=step.to_severity,
                peak_severity=step.to_severity,
                opened_at=step.at,
                resolved_at=None,
                closed_at=None,
            )
            session.add(alert)
        elif alert is None:
            continue
        if step.kind == "resolved":
            alert.state, alert.resolved_at = "resolved", step.at
        else:
            alert.severity = step.to_severity
            alert.peak_severity = max(alert.peak_severity, step.to_severity)
            alert.explanation_zh = explain(step.value, step.to_severity, "zh-CN")
            alert.explanation_en = explain(step.value, step.to_severity, "en")
        alert.value, alert.observed_at, alert.updated_at = step.value, step.at, step.at
        session.flush()
        session.add(
            AlertEvent(
                alert_id=alert.id,
                at=step.at,
                actor=SYSTEM,
                kind=step.kind,
                from_severity=step.from_severity,
                to_severity=step.to_severity,
                note="",
            )
        )
        if step.kind == "resolved":
            alert = None
    severity = alert.severity if alert is not None else 0
    session.execute(update(Series).where(Series.id == series_id).values(last_severity=severity))
    return alert
