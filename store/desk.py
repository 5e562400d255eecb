"""The duty desk's side of the store: the desk's reads, dispatch to a department, bulk acknowledgement
and the departments' accountability figures (考核).

Departments are named by the text the catalog gives (its Chinese name, what notifications route
on); an alert belongs to the department it was assigned to (派单), else to its indicator's owning
department. The store does not read the catalog: callers pass `owners` (indicator key -> owning
department) and the indicator keys the requester may see.

Writes follow store.alerts: each officer's action is one conditional UPDATE that bumps the alert's
version, so of two officers acting at once exactly one is recorded and the other gets
`AlertConflict` naming who acted.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from core.levels import ORANGE, RED, YELLOW
from core.timeutil import utcnow
from store.alerts import AlertConflict, acknowledge
from store.models import OPEN_STATES, Alert, AlertEvent, Series
from store.windows import id_in

# How long an alert of each level (by the most severe level it reached) may stay open before the
# accountability view counts it overdue. A deployment passes its own to `department_figures`.
OVERDUE_AFTER: dict[int, timedelta] = {
    RED.severity: timedelta(minutes=30),
    ORANGE.severity: timedelta(hours=2),
    YELLOW.severity: timedelta(hours=8),
    1: timedelta(hours=24),
}
DESK_STATES = ("active", "acknowledged", "resolved")  # what the desk shows unless filtered: not closed
STATES = (*DESK_STATES, "closed")
BULK_MAX_SEVERITY = YELLOW.severity  # only blue and yellow alerts are acknowledged in bulk
ANNOUNCE_FROM = ORANGE.severity  # orange and red alerts announce themselves on the desk
ASSIGNED = "assigned"
DEPARTMENT_LIMIT = 64


@dataclass(frozen=True)
class DeskFilter:
    """What the officer narrowed the desk to. Empty tuples mean "any"; `indicators` is the set the
    requester may see, already narrowed to the chosen domains (None: every indicator)."""

    levels: tuple[int, ...] = ()
    states: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    indicators: frozenset[str] | None = None


@dataclass(frozen=True)
class DeskAlert:
    id: int
    rule_key: str
    indicator: str
    entity: str
    region_code: str | None
    state: str
    severity: int
    peak_severity: int
    value: float | None
    muted: bool
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    department: str | None
    assigned_at: datetime | None
    assigned_by: str | None
    explanation_zh: str
    explanation_en: str
    version: int

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def acknowledgeable(self) -> bool:
        """Active, or resolved before anyone acknowledged it (it stays on the desk until closed)."""
        return self.state == "active" or (self.state == "resolved" and self.acknowledged_at is None)


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    actor: str
    kind: str
    from_severity: int | None
    to_severity: int | None
    note: str
    department: str | None = None


@dataclass(frozen=True)
class BulkOutcome:
    """What a bulk acknowledgement did with each alert it was given."""

    done: tuple[int, ...] = ()
    too_severe: tuple[int, ...] = ()
    taken: dict[int, str | None] = field(default_factory=dict)  # already acknowledged: id -> by whom
    missing: tuple[int, ...] = ()  # unknown, or of an indicator the requester may not see


def note_required(severity: int) -> bool:
    """A red (I) alert is acknowledged only with a note saying what is being done."""
    return severity >= RED.severity


def _columns():
    return (
        Alert.id,
        Alert.rule_key,
        Series.indicator_key,
        Series.entity,
        Series.region_code,
        Alert.state,
        Alert.severity,
        Alert.peak_severity,
        Alert.value,
        Alert.muted,
        Alert.opened_at,
        Alert.updated_at,
        Alert.resolved_at,
        Alert.acknowledged_at,
        Alert.acknowledged_by,
        Alert.department,
        Alert.assigned_at,
        Alert.assigned_by,
        Alert.explanation_zh,
        Alert.explanation_en,
        Alert.version,
    )


def _owned_by(owners: Mapping[str, str], departments: Collection[str]) -> list[str]:
    return sorted(key for key, department in owners.items() if department in departments)


def _narrow(query, where: DeskFilter, owners: Mapping[str, str], levels: bool = True):
    if where.indicators is not None:
        query = query.where(Series.indicator_key.in_(sorted(where.indicators)))
    if levels and where.levels:
        query = query.where(Alert.severity.in_(where.levels))
    if where.districts:
        query = query.where(Series.region_code.in_(where.districts))
    if where.departments:
        unassigned = and_(
            Alert.department.is_(None), Series.indicator_key.in_(_owned_by(owners, where.departments))
        )
        query = query.where(or_(Alert.department.in_(where.departments), unassigned))
    return query


def desk_alerts(
    engine: Engine, where: DeskFilter, owners: Mapping[str, str], limit: int = 300
) -> tuple[list[DeskAlert], int]:
    """The desk's list and how many match in all: open alerts first, then resolved ones (until
    closed), then closed ones if asked for; within each, the most severe first, then the longest
    waiting."""
    states = where.states or DESK_STATES
    rank = case({"active": 0, "acknowledged": 0, "resolved": 1}, value=Alert.state, else_=2)
    query = _narrow(
        select(*_columns()).join(Series, Series.id == Alert.series_id).where(Alert.state.in_(states)),
        where,
        owners,
    )
    counted = _narrow(
        select(func.count()).select_from(Alert).join(Series, Series.id == Alert.series_id),
        where,
        owners,
    ).where(Alert.state.in_(states))
    query = query.order_by(rank, Alert.severity.desc(), Alert.opened_at, Alert.id).limit(limit)
    with engine.connect() as connection:
        rows = [DeskAlert(*row) for row in connection.execute(query)]
        total = connection.execute(counted).scalar_one()
    return rows, total


def level_counts(engine: Engine, where: DeskFilter, owners: Mapping[str, str]) -> dict[int, int]:
    """Open alerts per level under every filter but the level (so the counts show what it hides)."""
    query = _narrow(
        select(Alert.severity, func.count())
        .join(Series, Series.id == Alert.series_id)
        .where(Alert.state.in_(OPEN_STATES))
        .group_by(Alert.severity),
        where,
        owners,
        levels=False,
    )
    with engine.connect() as connection:
        return dict(connection.execute(query).all())


def urgent(engine: Engine, indicators: Collection[str] | None) -> list[DeskAlert]:
    """Open orange and red alerts outside maintenance windows, whatever the desk's filters: the
    ones that announce themselves."""
    query = (
        select(*_columns())
        .join(Series, Series.id == Alert.series_id)
        .where(Alert.state.in_(OPEN_STATES), Alert.severity >= ANNOUNCE_FROM, Alert.muted.is_(False))
        .order_by(Alert.severity.desc(), Alert.opened_at.desc())
    )
    if indicators is not None:
        query = query.where(Series.indicator_key.in_(sorted(indicators)))
    with engine.connect() as connection:
        return [DeskAlert(*row) for row in connection.execute(query)]


def desk_alert(engine: Engine, alert_id: int, indicators: Collection[str] | None) -> DeskAlert | None:
    """One alert, if it exists and is of an indicator the requester may see."""
    query = select(*_columns()).join(Series, Series.id == Alert.series_id).where(Alert.id == alert_id)
    if indicators is not None:
        query = query.where(Series.indicator_key.in_(sorted(indicators)))
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return DeskAlert(*row) if row else None


def assignment_note(department: str, note: str) -> str:
    """An `assigned` event keeps its department on the note's first line (events have no column
    for it), so the timeline shows every dispatch, not just the latest."""
    return f"{department}\n{note}"


def _entry(row: AlertEvent) -> TimelineEntry:
    note, department = row.note, None
    if row.kind == ASSIGNED:
        department, _, note = note.partition("\n")
    return TimelineEntry(row.at, row.actor, row.kind, row.from_severity, row.to_severity, note, department)


def timeline(engine: Engine, alert_id: int) -> list[TimelineEntry]:
    """Every event of an alert, oldest first."""
    query = select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.at, AlertEvent.id)
    with Session(engine) as session:
        return [_entry(row) for row in session.scalars(query)]


def history_window(
    alert: DeskAlert,
    now: datetime,
    before: timedelta = timedelta(hours=3),
    after: timedelta = timedelta(hours=1),
    longest: timedelta = timedelta(days=2),
) -> tuple[datetime, datetime]:
    """The stretch of the series worth drawing: from a while before the alert opened to a while
    after it resolved (or now), at most `longest` (the most recent part of a long alert)."""
    end = min(now, (alert.resolved_at or now) + after)
    start = max(alert.opened_at - before, end - longest)
    return start, end


def _latest_actor(session: Session, alert_id: int) -> str | None:
    return session.scalar(
        select(AlertEvent.actor)
        .where(AlertEvent.alert_id == alert_id)
        .order_by(AlertEvent.id.desc())
        .limit(1)
    )


def assign(
    session: Session, alert_id: int, department: str, actor: str, note: str = "", version: int | None = None
) -> Alert:
    """Dispatch an open alert to a department (派单), or re-dispatch it.

    `version` is the alert's version the officer was looking at: if anyone changed the alert since
    (another dispatch, an acknowledgement, a comment), nothing is written and `AlertConflict` names
    who acted last. Without it, only the state is checked.
    """
    department = department.strip()
    if not department or len(department) > DEPARTMENT_LIMIT or "\n" in department:
        raise ValueError(f"not a department name: {department!r}")
    now = utcnow()
    conditions = [Alert.id == alert_id, Alert.state.in_(OPEN_STATES)]
    if version is not None:
        conditions.append(Alert.version == version)
    done = session.execute(
        update(Alert)
        .where(*conditions)
        .values(
            department=department,
            assigned_at=now,
            assigned_by=actor,
            updated_at=now,
            version=Alert.version + 1,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    alert = session.get(Alert, alert_id, populate_existing=True)
    if alert is None:
        raise LookupError(f"no alert {alert_id}")
    if not done:
        raise AlertConflict(alert_id, alert.state, _latest_actor(session, alert_id))
    session.add(
        AlertEvent(
            alert_id=alert_id,
            at=now,
            actor=actor,
            kind=ASSIGNED,
            note=assignment_note(department, note),
            from_severity=alert.severity,
            to_severity=alert.severity,
        )
    )
    return alert


def bulk_acknowledge(
    session: Session,
    alert_ids: Iterable[int],
    actor: str,
    note: str = "",
    indicators: Collection[str] | None = None,
) -> BulkOutcome:
    """Acknowledge a storm of blue and yellow alerts at once; orange and red ones are left for an
    officer to acknowledge one by one. Alerts are taken in id order, so two officers' bulk actions
    lock rows in the same order and never deadlock."""
    wanted = sorted(set(alert_ids))
    if not wanted:
        return BulkOutcome()
    rows = session.execute(
        select(Alert.id, Alert.severity, Series.indicator_key)
        .join(Series, Series.id == Alert.series_id)
        .where(id_in(session, Alert.id, wanted))
    ).all()
    found = {
        alert_id: severity for alert_id, severity, key in rows if indicators is None or key in indicators
    }
    done, too_severe, taken = [], [], {}
    for alert_id in sorted(found):
        if found[alert_id] > BULK_MAX_SEVERITY:
            too_severe.append(alert_id)
            continue
        try:
            acknowledge(session, alert_id, actor, note)
        except AlertConflict as conflict:
            taken[alert_id] = conflict.by
        else:
            done.append(alert_id)
    missing = tuple(alert_id for alert_id in wanted if alert_id not in found)
    return BulkOutcome(tuple(done), tuple(too_severe), taken, missing)


@dataclass(frozen=True)
class DepartmentFigures:
    """One department's record: `open` and `overdue` are now; the rest are over the period."""

    department: str
    open: int = 0
    overdue: int = 0
    resolved: int = 0
    acknowledged: int = 0
    median_acknowledge: timedelta | None = None
    median_resolve: timedelta | None = None


def _median(values: list[float]) -> timedelta | None:
    return timedelta(seconds=statistics.median(values)) if values else None


def department_figures(
    engine: Engine,
    owners: Mapping[str, str],
    since: datetime,
    now: datetime | None = None,
    overdue_after: Mapping[int, timedelta] = OVERDUE_AFTER,
    indicators: Collection[str] | None = None,
) -> dict[str, DepartmentFigures]:
    """Each department's open and overdue alerts now, and over [since, now] the alerts it resolved
    and the median times from opening to acknowledgement (of those acknowledged in the period) and
    to resolution (of those resolved in the period).

    Alerts muted by a maintenance window are left out: nobody is accountable for a planned outage.
    Every department in `owners` is listed, with zeros if it had nothing to do.
    """
    now = now or utcnow()
    query = (
        select(
            Alert.department,
            Series.indicator_key,
            Alert.state,
            Alert.peak_severity,
            Alert.opened_at,
            Alert.acknowledged_at,
            Alert.resolved_at,
        )
        .join(Series, Series.id == Alert.series_id)
        .where(
            Alert.muted.is_(False),
            or_(
                Alert.state.in_(OPEN_STATES),
                and_(Alert.resolved_at >= since, Alert.resolved_at <= now),
                and_(Alert.acknowledged_at >= since, Alert.acknowledged_at <= now),
            ),
        )
    )
    if indicators is not None:
        query = query.where(Series.indicator_key.in_(sorted(indicators)))
    counts: dict[str, dict[str, int]] = {d: {"open": 0, "overdue": 0} for d in owners.values()}
    to_ack: dict[str, list[float]] = {d: [] for d in counts}
    to_resolve: dict[str, list[float]] = {d: [] for d in counts}
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    for assigned, key, state, peak, opened, acked, resolved in rows:
        department = assigned or owners.get(key)
        if department is None:
            continue
        tally = counts.setdefault(department, {"open": 0, "overdue": 0})
        if state in OPEN_STATES:
            tally["open"] += 1
            limit = overdue_after.get(peak)
            if limit is not None and now - opened > limit:
                tally["overdue"] += 1
        if acked is not None and since <= acked <= now:
            to_ack.setdefault(department, []).append((acked - opened).total_seconds())
        if resolved is not None and since <= resolved <= now:
            to_resolve.setdefault(department, []).append((resolved - opened).total_seconds())
    return {
        department: DepartmentFigures(
            department=department,
            open=tally["open"],
            overdue=tally["overdue"],
            resolved=len(to_resolve.get(department, [])),
            acknowledged=len(to_ack.get(department, [])),
            median_acknowledge=_median(to_ack.get(department, [])),
            median_resolve=_median(to_resolve.get(department, [])),
        )
        for department, tally in counts.items()
    }
