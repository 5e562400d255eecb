"""The read API: the only way the UI reads data. Plain functions returning plain values.

Kept apart from the write side so callbacks cannot change anything by accident, and so that
every function here can be memoized on the data version.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, func, select
from sqlalchemy.orm import Session

from core.timeutil import utcnow
from store.models import OPEN_STATES, Alert, IndicatorRow, RejectedRecord, Series, Source, SourceRun
from store.models import Reading as ReadingRow


@dataclass(frozen=True)
class Latest:
    """The city-wide value of an indicator now, and where it came from."""

    indicator: str
    value: float | None
    observed_at: datetime | None
    severity: int
    entities: int
    trend: float | None


@dataclass(frozen=True)
class EntityValue:
    code: str
    value: float | None
    observed_at: datetime | None
    severity: int


@dataclass(frozen=True)
class AlertRow:
    id: int
    indicator: str
    entity: str
    state: str
    severity: int
    value: float | None
    opened_at: datetime
    updated_at: datetime
    explanation_zh: str
    explanation_en: str


def _combine(values: list[float], aggregation: str) -> float | None:
    if not values:
        return None
    if aggregation == "sum":
        return sum(values)
    if aggregation == "max":
        return max(values)
    if aggregation == "min":
        return min(values)
    return sum(values) / len(values)


@dataclass(frozen=True)
class IndicatorDefinition:
    aggregation: str
    cadence: float


def indicator_definitions(connection: Connection, keys: Collection[str]) -> dict[str, IndicatorDefinition]:
    """Aggregation and cadence of the indicators, from the catalog as the store mirrors it."""
    rows = connection.execute(
        select(
            IndicatorRow.key,
            IndicatorRow.definition["aggregation"].as_string(),
            IndicatorRow.definition["cadence"].as_float(),
        ).where(IndicatorRow.key.in_(list(keys)))
    )
    return {
        key: IndicatorDefinition(aggregation or "mean", cadence or 300.0)
        for key, aggregation, cadence in rows
    }


def _aggregations(engine: Engine, keys: Collection[str]) -> dict[str, str]:
    with engine.connect() as connection:
        return {key: d.aggregation for key, d in indicator_definitions(connection, keys).items()}


def latest(
    engine: Engine, keys: list[str], trend_window: timedelta = timedelta(hours=1)
) -> dict[str, Latest]:
    """City-wide latest value of each indicator, aggregated over its entities, with its trend."""
    aggregations = _aggregations(engine, keys)
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Series.id,
                Series.indicator_key,
                Series.last_value,
                Series.last_observed_at,
                Series.last_severity,
            ).where(Series.indicator_key.in_(keys))
        ).all()
        past = _values_at(connection, [r.id for r in rows], utcnow() - trend_window)
    grouped: dict[str, list] = defaultdict(list)
    for row in rows:
        if row.last_value is not None:
            grouped[row.indicator_key].append(row)
    result = {}
    for key in keys:
        group = grouped.get(key, [])
        aggregation = aggregations.get(key, "mean")
        now_value = _combine([r.last_value for r in group], aggregation)
        then = [past[r.id] for r in group if r.id in past]
        before = _combine(then, aggregation) if len(then) == len(group) else None
        result[key] = Latest(
            indicator=key,
            value=now_value,
            observed_at=max((r.last_observed_at for r in group), default=None),
            severity=max((r.last_severity for r in group), default=0),
            entities=len(group),
            trend=(now_value - before) if now_value is not None and before is not None else None,
        )
    return result


def _values_at(connection, series_ids: list[int], at: datetime) -> dict[int, float]:
    """Each series' value at the last reading on or before `at` (within an hour before it)."""
    if not series_ids:
        return {}
    newest = (
        select(ReadingRow.series_id, func.max(ReadingRow.observed_at).label("at"))
        .where(
            ReadingRow.series_id.in_(series_ids),
            ReadingRow.observed_at <= at,
            ReadingRow.observed_at > at - timedelta(hours=1),
        )
        .group_by(ReadingRow.series_id)
        .subquery()
    )
    rows = connection.execute(
        select(ReadingRow.series_id, ReadingRow.value).join(
            newest, and_(ReadingRow.series_id == newest.c.series_id, ReadingRow.observed_at == newest.c.at)
        )
    )
    return dict(rows.all())


def by_district(engine: Engine, key: str) -> dict[str, EntityValue]:
    """Latest value of one indicator per district: its own series, or its stations aggregated."""
    aggregation = _aggregations(engine, [key]).get(key, "mean")
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Series.region_code, Series.last_value, Series.last_observed_at, Series.last_severity
            ).where(Series.indicator_key == key, Series.last_value.is_not(None))
        ).all()
    grouped: dict[str, list] = defaultdict(list)
    for row in rows:
        grouped[row.region_code].append(row)
    return {code: _combined(code, group, aggregation) for code, group in grouped.items()}


def _combined(code: str, rows: list, aggregation: str) -> EntityValue:
    """Several series' latest values as one (a district's stations): combined by the indicator's
    aggregation, at the newest of their times, at the worst of their levels."""
    return EntityValue(
        code,
        _combine([r.last_value for r in rows], aggregation),
        max(r.last_observed_at for r in rows),
        max(r.last_severity for r in rows),
    )


def entity_values(engine: Engine, keys: list[str]) -> dict[str, dict[str, EntityValue]]:
    """Latest value of each indicator at each of its entities: indicator -> entity -> value."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Series.indicator_key,
                Series.entity,
                Series.last_value,
                Series.last_observed_at,
                Series.last_severity,
            ).where(Series.indicator_key.in_(keys))
        ).all()
    result: dict[str, dict[str, EntityValue]] = defaultdict(dict)
    for row in rows:
        result[row.indicator_key][row.entity] = EntityValue(
            row.entity, row.last_value, row.last_observed_at, row.last_severity
        )
    return dict(result)


def district_values(engine: Engine, code: str, keys: Collection[str]) -> dict[str, EntityValue]:
    """Latest value of each of these indicators in one district (its own series, or its stations
    combined by the indicator's aggregation), as `by_district` gives it for one indicator; indicators
    with no value there are left out."""
    if not keys:
        return {}
    aggregations = _aggregations(engine, sorted(keys))
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Series.indicator_key, Series.last_value, Series.last_observed_at, Series.last_severity
            ).where(
                Series.region_code == code,
                Series.indicator_key.in_(sorted(keys)),
                Series.last_value.is_not(None),
            )
        ).all()
    grouped: dict[str, list] = defaultdict(list)
    for row in rows:
        grouped[row.indicator_key].append(row)
    return {key: _combined(code, group, aggregations.get(key, "mean")) for key, group in grouped.items()}


def open_alerts(engine: Engine, limit: int = 50, indicators: Collection[str] | None = None) -> list[AlertRow]:
    """Open alerts (active or acknowledged), the most severe and newest first.

    `indicators` limits them to what the requester may see (None: every indicator).
    """
    query = (
        select(Alert, Series.indicator_key, Series.entity)
        .join(Series, Series.id == Alert.series_id)
        .where(Alert.state.in_(OPEN_STATES))
        .order_by(Alert.severity.desc(), Alert.opened_at.desc())
        .limit(limit)
    )
    if indicators is not None:
        query = query.where(Series.indicator_key.in_(sorted(indicators)))
    with Session(engine) as session:
        rows = session.execute(query).all()
    return [
        AlertRow(
            id=row.Alert.id,
            indicator=row.indicator_key,
            entity=row.entity,
            state=row.Alert.state,
            severity=row.Alert.severity,
            value=row.Alert.value,
            opened_at=row.Alert.opened_at,
            updated_at=row.Alert.updated_at,
            explanation_zh=row.Alert.explanation_zh,
            explanation_en=row.Alert.explanation_en,
        )
        for row in rows
    ]


def alert_counts(engine: Engine, indicators: Collection[str] | None = None) -> dict[int, int]:
    """Open alerts per severity, of the indicators the requester may see (None: all)."""
    query = select(Alert.severity, func.count()).where(Alert.state.in_(OPEN_STATES)).group_by(Alert.severity)
    if indicators is not None:
        query = query.join(Series, Series.id == Alert.series_id).where(
            Series.indicator_key.in_(sorted(indicators))
        )
    with engine.connect() as connection:
        return dict(connection.execute(query).all())


@dataclass(frozen=True)
class SourceHealth:
    id: str
    type: str
    enabled: bool
    every_s: float
    last_status: str | None
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_error: str | None
    accepted: int
    rejected: int
    newest_observed_at: datetime | None = None
    cadence_s: float | None = None

    @property
    def expected_s(self) -> float:
        """How far apart its readings should come: its schedule, or its fastest indicator's
        cadence when that is slower (an hourly feed polled every minute is not late after 3)."""
        return max(self.cadence_s or 0, self.every_s)


def source_health(engine: Engine) -> list[SourceHealth]:
    """Every source with its latest run."""
    with Session(engine) as session:
        newest = (
            select(SourceRun.source_id, func.max(SourceRun.id).label("run_id"))
            .group_by(SourceRun.source_id)
            .subquery()
        )
        rows = session.execute(
            select(Source, SourceRun)
            .outerjoin(newest, newest.c.source_id == Source.id)
            .outerjoin(SourceRun, SourceRun.id == newest.c.run_id)
            .order_by(Source.id)
        ).all()
    return [
        SourceHealth(
            id=source.id,
            type=source.type,
            enabled=source.enabled,
            every_s=source.every_s,
            last_status=run.status if run else None,
            last_started_at=run.started_at if run else None,
            last_finished_at=run.finished_at if run else None,
            last_error=run.error if run else None,
            accepted=run.accepted if run else 0,
            rejected=run.rejected if run else 0,
            newest_observed_at=source.newest_observed_at,
            cadence_s=source.cadence_s,
        )
        for source, run in rows
    ]


@dataclass(frozen=True)
class RejectedRow:
    id: int
    source_id: str
    run_id: int
    created_at: datetime
    field: str
    reason: str
    raw: str


def rejected_records(engine: Engine, source_id: str | None = None, limit: int = 1000) -> list[RejectedRow]:
    """The newest quarantined records, of one source or of all."""
    query = select(RejectedRecord).order_by(RejectedRecord.id.desc()).limit(limit)
    if source_id:
        query = query.where(RejectedRecord.source_id == source_id)
    with Session(engine) as session:
        return [
            RejectedRow(r.id, r.source_id, r.run_id, r.created_at, r.field, r.reason, r.raw)
            for r in session.scalars(query)
        ]


@dataclass(frozen=True)
class RunRow:
    id: int
    source_id: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    fetched: int
    accepted: int
    rejected: int
    error: str | None


def source_runs(engine: Engine, source_id: str, limit: int = 20) -> list[RunRow]:
    """A source's newest runs, newest first."""
    query = (
        select(SourceRun).where(SourceRun.source_id == source_id).order_by(SourceRun.id.desc()).limit(limit)
    )
    with Session(engine) as session:
        return [
            RunRow(
                r.id,
                r.source_id,
                r.started_at,
                r.finished_at,
                r.status,
                r.fetched,
                r.accepted,
                r.rejected,
                r.error,
            )
            for r in session.scalars(query)
        ]


@dataclass(frozen=True)
class ReadingPoint:
    series_id: int
    entity: str
    observed_at: datetime
    value: float
    quality: str


def readings_between(
    engine: Engine,
    key: str,
    start: datetime,
    end: datetime,
    entity: str | None = None,
    after: tuple[datetime, int] | None = None,
    limit: int = 1000,
) -> list[ReadingPoint]:
    """An indicator's readings in [start, end), oldest first, one page at a time.

    `after` is (observed_at, series_id) of the previous page's last reading: keyset paging stays as
    fast on the thousandth page as on the first, and a reading arriving meanwhile shifts nothing.
    """
    query = (
        select(
            ReadingRow.series_id, Series.entity, ReadingRow.observed_at, ReadingRow.value, ReadingRow.quality
        )
        .join(Series, Series.id == ReadingRow.series_id)
        .where(Series.indicator_key == key, ReadingRow.observed_at >= start, ReadingRow.observed_at < end)
        .order_by(ReadingRow.observed_at, ReadingRow.series_id)
        .limit(limit)
    )
    if entity is not None:
        query = query.where(Series.entity == entity)
    if after is not None:
        at, series_id = after
        later = ReadingRow.observed_at > at
        query = query.where(later | ((ReadingRow.observed_at == at) & (ReadingRow.series_id > series_id)))
    with engine.connect() as connection:
        return [ReadingPoint(*row) for row in connection.execute(query)]


@dataclass(frozen=True)
class AlertDetail:
    """An alert with everything a client outside the application may need about it."""

    id: int
    rule_key: str
    indicator: str
    entity: str
    state: str
    severity: int
    peak_severity: int
    value: float | None
    muted: bool
    opened_at: datetime
    observed_at: datetime | None
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    department: str | None
    explanation_zh: str
    explanation_en: str


def _alert_details(engine: Engine, query) -> list[AlertDetail]:
    with Session(engine) as session:
        rows = session.execute(query).all()
    return [
        AlertDetail(
            id=a.id,
            rule_key=a.rule_key,
            indicator=key,
            entity=entity,
            state=a.state,
            severity=a.severity,
            peak_severity=a.peak_severity,
            value=a.value,
            muted=a.muted,
            opened_at=a.opened_at,
            observed_at=a.observed_at,
            updated_at=a.updated_at,
            resolved_at=a.resolved_at,
            closed_at=a.closed_at,
            acknowledged_at=a.acknowledged_at,
            acknowledged_by=a.acknowledged_by,
            department=a.department,
            explanation_zh=a.explanation_zh,
            explanation_en=a.explanation_en,
        )
        for a, key, entity in rows
    ]


def find_alerts(
    engine: Engine,
    indicators: Collection[str],
    states: Collection[str] | None = None,
    min_severity: int | None = None,
    entity: str | None = None,
    department: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[AlertDetail]:
    """Alerts of these indicators (what the requester may see), the most severe and newest first.

    `entity` matches the alert's own station or region, or the district a station lies in;
    `since` keeps the alerts changed at or after it (what a client polling for news wants).
    """
    query = (
        select(Alert, Series.indicator_key, Series.entity)
        .join(Series, Series.id == Alert.series_id)
        .where(Series.indicator_key.in_(sorted(indicators)))
        .order_by(Alert.severity.desc(), Alert.opened_at.desc(), Alert.id.desc())
        .limit(limit)
    )
    if states is not None:
        query = query.where(Alert.state.in_(sorted(states)))
    if min_severity is not None:
        query = query.where(Alert.severity >= min_severity)
    if entity is not None:
        query = query.where((Series.entity == entity) | (Series.region_code == entity))
    if department is not None:
        query = query.where(Alert.department == department)
    if since is not None:
        query = query.where(Alert.updated_at >= since)
    return _alert_details(engine, query)


def alert_detail(engine: Engine, alert_id: int) -> AlertDetail | None:
    query = (
        select(Alert, Series.indicator_key, Series.entity)
        .join(Series, Series.id == Alert.series_id)
        .where(Alert.id == alert_id)
    )
    found = _alert_details(engine, query)
    return found[0] if found else None
