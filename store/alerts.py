"""The write side for alerts: system transitions from the rules, and officers' lifecycle actions.

One open alert per (rule, series), enforced by a partial unique index. States:
active -> acknowledged -> resolved -> closed; a resolved alert stays visible until an officer
closes it. Every change is an event with time, actor and note. Officers' actions are single
conditional UPDATEs, so two officers acting at once record exactly one action.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.orm import Session

from core.timeutil import utcnow
from indicators.evaluation import Transition, rule_type
from store.models import OPEN_STATES, Alert, AlertEvent, Series, Silence

SYSTEM = "system"


class SeriesRef(Protocol):
    """What the alert writer needs of a series: a Series row or a light (id, key, entity) row."""

    id: int
    indicator_key: str
    entity: str


Explainer = Callable[[Transition, str], str]


class AlertConflict(Exception):
    """The alert is not in a state that allows the action (someone else acted first)."""

    def __init__(self, alert_id: int, state: str, by: str | None):
        self.alert_id, self.state, self.by = alert_id, state, by
        super().__init__(f"alert {alert_id} is {state}" + (f" (by {by})" if by else ""))


def open_alerts(session: Session, series_ids: Iterable[int]) -> dict[tuple[int, str], Alert]:
    """The open alerts of these series, keyed by (series id, rule key)."""
    ids = list(series_ids)
    if not ids:
        return {}
    rows = session.scalars(select(Alert).where(Alert.series_id.in_(ids), Alert.state.in_(OPEN_STATES)))
    return {(a.series_id, a.rule_key): a for a in rows}


def silences_between(session: Session, start: datetime, end: datetime) -> list[Silence]:
    """The maintenance windows overlapping [start, end]: read once per batch, matched in memory."""
    return list(session.scalars(select(Silence).where(Silence.starts_at <= end, Silence.ends_at > start)))


def is_silenced(
    silences: Iterable[Silence], indicator_key: str, rule_key: str, entity: str, at: datetime
) -> bool:
    """Does a maintenance window cover this alert at this time? Empty fields match everything."""
    kind = rule_type(rule_key)
    return any(
        s.starts_at <= at < s.ends_at
        and s.indicator_key in (None, indicator_key)
        and s.rule_type in (None, kind)
        and s.entity in (None, entity)
        for s in silences
    )


def _event(
    session: Session,
    alert: Alert,
    at: datetime,
    actor: str,
    kind: str,
    note: str = "",
    before: int | None = None,
    after: int | None = None,
) -> None:
    session.add(
        AlertEvent(
            alert_id=alert.id,
            at=at,
            actor=actor,
            kind=kind,
            note=note,
            from_severity=before,
            to_severity=after,
        )
    )


def apply_transitions(
    session: Session,
    series: SeriesRef,
    found: list[Transition],
    alerts: dict[tuple[int, str], Alert],
    explain: Explainer,
    silences: Iterable[Silence] = (),
) -> None:
    """Persist the system's transitions of one series (in time order); `silences` mute new alerts."""
    for step in found:
        key = (series.id, step.rule_key)
        alert = alerts.get(key)
        if step.kind == "opened":
            alert = Alert(
                rule_key=step.rule_key,
                series_id=series.id,
                state="active",
                severity=step.to_severity,
                peak_severity=step.to_severity,
                opened_at=step.at,
                muted=is_silenced(silences, series.indicator_key, step.rule_key, series.entity, step.at),
            )
            session.add(alert)
            alerts[key] = alert
        elif alert is None:
            continue
        if step.kind == "resolved":
            alert.state, alert.resolved_at, alert.predicted_at = "resolved", step.at, None
            del alerts[key]
        else:
            alert.severity = step.to_severity
            alert.peak_severity = max(alert.peak_severity, step.to_severity)
            alert.explanation_zh = explain(step, "zh-CN")
            alert.explanation_en = explain(step, "en")
            alert.predicted_at = step.predicted_at
        if step.value is not None:
            alert.value = step.value
        alert.observed_at = max(alert.observed_at or step.at, step.at)
        alert.updated_at = step.at
        session.flush()
        _event(session, alert, step.at, SYSTEM, step.kind, before=step.from_severity, after=step.to_severity)


def refresh_series_level(session: Session, series_ids: Iterable[int]) -> None:
    """A series' level is the highest of its open alerts (what the map and cards colour by)."""
    ids = list(series_ids)
    if not ids:
        return
    session.flush()
    levels = dict.fromkeys(ids, 0)
    rows = session.execute(
        select(Alert.series_id, Alert.severity).where(Alert.series_id.in_(ids), Alert.state.in_(OPEN_STATES))
    )
    for series_id, severity in rows:
        levels[series_id] = max(levels[series_id], severity)
    current = dict(session.execute(select(Series.id, Series.last_severity).where(Series.id.in_(ids))).all())
    changed = [{"sid": sid, "level": level} for sid, level in levels.items() if current.get(sid) != level]
    if changed:
        table = Series.__table__
        session.connection().execute(
            update(table).where(table.c.id == bindparam("sid")).values(last_severity=bindparam("level")),
            changed,
        )


def _act(
    session: Session, alert_id: int, actor: str, note: str, kind: str, allowed: tuple[str, ...], changes: dict
) -> Alert:
    now = utcnow()
    done = session.execute(
        update(Alert)
        .where(and_(Alert.id == alert_id, Alert.state.in_(allowed)))
        .values(updated_at=now, version=Alert.version + 1, **changes)
        .execution_options(synchronize_session=False)
    ).rowcount
    alert = session.get(Alert, alert_id, populate_existing=True)
    if alert is None:
        raise LookupError(f"no alert {alert_id}")
    if not done:
        raise AlertConflict(alert_id, alert.state, alert.acknowledged_by)
    _event(session, alert, now, actor, kind, note, alert.severity, alert.severity)
    return alert


def acknowledge(session: Session, alert_id: int, actor: str, note: str = "") -> Alert:
    """active -> acknowledged (a resolved alert nobody acknowledged can be acknowledged too)."""
    alert = session.get(Alert, alert_id)
    if alert is not None and alert.state == "resolved" and alert.acknowledged_at is None:
        return _act(
            session,
            alert_id,
            actor,
            note,
            "acknowledged",
            ("resolved",),
            {"acknowledged_at": utcnow(), "acknowledged_by": actor},
        )
    return _act(
        session,
        alert_id,
        actor,
        note,
        "acknowledged",
        ("active",),
        {"state": "acknowledged", "acknowledged_at": utcnow(), "acknowledged_by": actor},
    )


def close(session: Session, alert_id: int, actor: str, note: str = "") -> Alert:
    """resolved -> closed: an officer confirms the matter is over."""
    return _act(
        session, alert_id, actor, note, "closed", ("resolved",), {"state": "closed", "closed_at": utcnow()}
    )


def comment(session: Session, alert_id: int, actor: str, note: str) -> Alert:
    if not note.strip():
        raise ValueError("a comment needs text")
    return _act(session, alert_id, actor, note, "commented", ("active", "acknowledged", "resolved"), {})


def add_silence(
    session: Session,
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    reason: str = "",
    indicator_key: str | None = None,
    rule_type_name: str | None = None,
    entity: str | None = None,
) -> Silence:
    if ends_at <= starts_at:
        raise ValueError("a silence must end after it starts")
    silence = Silence(
        indicator_key=indicator_key,
        rule_type=rule_type_name,
        entity=entity,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        created_by=created_by,
        created_at=utcnow(),
    )
    session.add(silence)
    session.flush()
    return silence
