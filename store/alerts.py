"""The write side for alerts: system transitions from the rules, and officers' lifecycle actions.

One open alert per (rule, series), enforced by a partial unique index. States:
active -> acknowledged -> resolved -> closed; a resolved alert stays visible until an officer
closes it. Every change is an event with time, actor and note. Officers' actions are single
conditional UPDATEs, so two officers acting at once record exactly one action.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import and_, bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from core.timeutil import utcnow
from indicators.evaluation import Transition, rule_type
from store.models import OPEN_STATES, Alert, AlertEvent, Silence
from store.windows import id_in

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


@dataclass
class OpenAlert:
    """An open alert as the evaluation tracks it: a light row, not an ORM object.

    `changes` holds the columns to write at the next flush (for a new alert, its whole row; `id`
    is None until it is inserted).
    """

    id: int | None
    severity: int
    peak_severity: int
    observed_at: datetime | None
    changes: dict = field(default_factory=dict)


def open_alerts(session: Session, series_ids: Collection[int]) -> dict[tuple[int, str], OpenAlert]:
    """The open alerts of these series, keyed by (series id, rule key)."""
    if not series_ids:
        return {}
    table = Alert.__table__
    columns = (table.c.id, table.c.series_id, table.c.rule_key, table.c.severity)
    rows = session.connection().execute(
        select(*columns, table.c.peak_severity, table.c.observed_at).where(
            id_in(session, table.c.series_id, series_ids), table.c.state.in_(OPEN_STATES)
        )
    )
    return {(sid, key): OpenAlert(aid, sev, peak, seen) for aid, sid, key, sev, peak, seen in rows}


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


class AlertWriter:
    """The system's transitions of a whole batch, written in a few executemany statements.

    A batch that opens hundreds of alerts would otherwise cost an ORM flush per alert (one INSERT
    for the alert to get its id, one for its event). Changes are collected per alert; `flush`
    updates the changed alerts grouped by the set of columns they change (so an escalation never
    writes `state` over an officer's acknowledgement), inserts the new ones (their ids returned),
    then inserts the events. ORM objects of these alerts the session holds are expired.
    """

    def __init__(
        self,
        session: Session,
        alerts: dict[tuple[int, str], OpenAlert],
        silences: Iterable[Silence] = (),
    ):
        self.session, self.alerts, self.silences = session, alerts, list(silences)
        self._new: list[OpenAlert] = []
        self._changed: dict[int, OpenAlert] = {}
        self._events: list[tuple[OpenAlert, dict]] = []

    def apply(self, series: SeriesRef, found: list[Transition], explain: Explainer) -> None:
        """Record one series' transitions (in time order) against its open alerts."""
        for step in found:
            key = (series.id, step.rule_key)
            alert = self.alerts.get(key)
            if step.kind == "opened":
                alert = self._opened(series, step)
                self.alerts[key] = alert
            elif alert is None:
                continue
            elif alert.id is not None:
                self._changed[alert.id] = alert
            changes = alert.changes
            if step.kind == "resolved":
                changes.update(state="resolved", resolved_at=step.at, predicted_at=None)
                del self.alerts[key]
            else:
                alert.severity = step.to_severity
                alert.peak_severity = max(alert.peak_severity, step.to_severity)
                changes.update(
                    severity=alert.severity,
                    peak_severity=alert.peak_severity,
                    explanation_zh=explain(step, "zh-CN"),
                    explanation_en=explain(step, "en"),
                    predicted_at=step.predicted_at,
                )
            if step.value is not None:
                changes["value"] = step.value
            alert.observed_at = max(alert.observed_at or step.at, step.at)
            changes.update(observed_at=alert.observed_at, updated_at=step.at)
            self._events.append(
                (
                    alert,
                    {
                        "at": step.at,
                        "kind": step.kind,
                        "from_severity": step.from_severity,
                        "to_severity": step.to_severity,
                    },
                )
            )

    def _opened(self, series: SeriesRef, step: Transition) -> OpenAlert:
        muted = is_silenced(self.silences, series.indicator_key, step.rule_key, series.entity, step.at)
        row = {
            "rule_key": step.rule_key,
            "series_id": series.id,
            "state": "active",
            "opened_at": step.at,
            "muted": muted,
            "resolved_at": None,
            "value": None,
        }
        alert = OpenAlert(None, 0, 0, None, row)
        self._new.append(alert)
        return alert

    def flush(self) -> None:
        """Write everything recorded since the last flush."""
        if not self._events:
            return
        self.session.flush()
        connection = self.session.connection()
        table, events = Alert.__table__, AlertEvent.__table__
        # Existing alerts first: one that resolved in this batch must leave the open-alert index
        # before a new alert of the same rule and series is inserted.
        groups: dict[tuple[str, ...], list[dict]] = {}
        for alert_id, alert in self._changed.items():
            groups.setdefault(tuple(sorted(alert.changes)), []).append(alert.changes | {"alert_id": alert_id})
        for rows in groups.values():
            connection.execute(update(table).where(table.c.id == bindparam("alert_id")), rows)
        if self._new:
            # Matched back by key, not by position: SQLite returns no guaranteed order, and asking
            # SQLAlchemy to sort would send one INSERT per row. A rule opens at most once at a
            # given time on a series, so the key is unique within a batch.
            pending = {
                (a.changes["series_id"], a.changes["rule_key"], a.changes["opened_at"]): a for a in self._new
            }
            inserted = connection.execute(
                insert(table).returning(table.c.id, table.c.series_id, table.c.rule_key, table.c.opened_at),
                [alert.changes for alert in self._new],
            )
            for alert_id, *key in inserted:
                pending[tuple(key)].id = alert_id
        connection.execute(
            insert(events),
            [row | {"alert_id": alert.id, "actor": SYSTEM, "note": ""} for alert, row in self._events],
        )
        _expire_loaded(self.session, self._changed)
        for alert in self._new + list(self._changed.values()):
            alert.changes = {}
        self._new, self._changed, self._events = [], {}, []


def _expire_loaded(session: Session, alert_ids: Collection[int]) -> None:
    """Alerts this session already holds as ORM objects were changed behind its back: reload them."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Alert) and obj.id in alert_ids:
            session.expire(obj)


def apply_transitions(
    session: Session,
    series: SeriesRef,
    found: list[Transition],
    alerts: dict[tuple[int, str], OpenAlert],
    explain: Explainer,
    silences: Iterable[Silence] = (),
) -> None:
    """Persist the system's transitions of one series (in time order); `silences` mute new alerts."""
    writer = AlertWriter(session, alerts, silences)
    writer.apply(series, found, explain)
    writer.flush()


def series_levels(alerts: Mapping[tuple[int, str], OpenAlert]) -> dict[int, int]:
    """The level of each series with an open alert: the highest severity among them."""
    levels: dict[int, int] = {}
    for (series_id, _), alert in alerts.items():
        levels[series_id] = max(levels.get(series_id, 0), alert.severity)
    return levels


# One statement for a whole batch: the (series, level) pairs travel as one parameter, so 10,000
# series cost no per-row parameter processing. On SQLite grouped by level ({"level": [id, ...]}).
SQLITE_SERIES_LEVELS = text(
    """
UPDATE series SET last_severity = CAST(g.key AS INTEGER)
FROM json_each(:levels) AS g, json_each(g.value) AS w
WHERE series.id = w.value AND series.last_severity != CAST(g.key AS INTEGER)
"""
)
POSTGRES_SERIES_LEVELS = text(
    """
UPDATE series SET last_severity = w.level
FROM unnest(CAST(:ids AS INTEGER[]), CAST(:levels AS SMALLINT[])) AS w(id, level)
WHERE series.id = w.id AND series.last_severity != w.level
"""
)


def write_series_levels(session: Session, series_ids: Collection[int], levels: Mapping[int, int]) -> None:
    """Store the level of each of these series (what the map and cards colour by): `levels` for
    those with an open alert, 0 for the others; rows already right are not rewritten.

    Set-wise, so a batch of 10,000 series reads nothing back and sends one statement.
    """
    wanted = dict.fromkeys(series_ids, 0) | dict(levels)
    if not wanted:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(POSTGRES_SERIES_LEVELS, {"ids": list(wanted), "levels": list(wanted.values())})
        return
    groups: dict[int, list[int]] = {}
    for series_id, level in wanted.items():
        groups.setdefault(level, []).append(series_id)
    connection.execute(SQLITE_SERIES_LEVELS, {"levels": json.dumps(groups)})


def refresh_series_level(session: Session, series_ids: Collection[int]) -> None:
    """A series' level is the highest of its open alerts (what the map and cards colour by)."""
    if not series_ids:
        return
    session.flush()
    write_series_levels(session, series_ids, series_levels(open_alerts(session, series_ids)))


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
