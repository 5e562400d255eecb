"""The write side for readings: bulk, idempotent upsert on (indicator, entity, observed_at).

A re-sent reading updates the stored one and never duplicates it, on SQLite and PostgreSQL alike
(both speak INSERT ... ON CONFLICT DO UPDATE).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.records import ValidReading
from core.timeutil import utcnow
from store.models import Reading, Series

CHUNK = 5000


def dialect_insert(session: Session, table):
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


def series_ids(
    session: Session, pairs: Iterable[tuple[str, str]], region_of: Mapping[str, str | None]
) -> dict[tuple[str, str], int]:
    """Ids of the (indicator, entity) series, creating the missing ones."""
    wanted = set(pairs)
    if not wanted:
        return {}
    known = {
        (row.indicator_key, row.entity): row.id
        for row in session.execute(select(Series.id, Series.indicator_key, Series.entity))
    }
    missing = [pair for pair in wanted if pair not in known]
    if missing:
        stmt = dialect_insert(session, Series).on_conflict_do_nothing(
            index_elements=["indicator_key", "entity"]
        )
        session.execute(
            stmt,
            [
                {"indicator_key": i, "entity": e, "region_code": region_of.get(e), "last_severity": 0}
                for i, e in missing
            ],
        )
        known = {
            (row.indicator_key, row.entity): row.id
            for row in session.execute(select(Series.id, Series.indicator_key, Series.entity))
        }
    return {pair: known[pair] for pair in wanted}


def upsert_readings(
    session: Session,
    readings: Sequence[ValidReading],
    source_id: str | None,
    region_of: Mapping[str, str | None],
) -> dict[int, list[ValidReading]]:
    """Store the readings; return them grouped by series id (what the rule evaluation needs)."""
    ids = series_ids(session, ((r.indicator, r.entity) for r in readings), region_of)
    now = utcnow()
    touched: dict[int, list[ValidReading]] = {}
    rows = []
    for reading in readings:
        series_id = ids[(reading.indicator, reading.entity)]
        touched.setdefault(series_id, []).append(reading)
        rows.append(
            {
                "series_id": series_id,
                "observed_at": reading.observed_at,
                "value": reading.value,
                "quality": reading.quality,
                "source_id": source_id,
                "ingested_at": now,
            }
        )
    stmt = dialect_insert(session, Reading.__table__)  # Core, not the ORM's per-row bulk path
    stmt = stmt.on_conflict_do_update(
        index_elements=["series_id", "observed_at"],
        set_={
            "value": stmt.excluded.value,
            "quality": stmt.excluded.quality,
            "source_id": stmt.excluded.source_id,
            "ingested_at": stmt.excluded.ingested_at,
        },
    )
    connection = session.connection()
    for start in range(0, len(rows), CHUNK):
        connection.execute(stmt, rows[start : start + CHUNK])
    _advance_latest(session, touched)
    return touched


def _advance_latest(session: Session, touched: Mapping[int, list[ValidReading]]) -> None:
    """Move each series' latest value forward (never backward: a late old reading changes nothing)."""
    current = dict(
        session.execute(select(Series.id, Series.last_observed_at).where(Series.id.in_(list(touched)))).all()
    )
    changes = []
    for series_id, readings in touched.items():
        newest = max(readings, key=lambda r: r.observed_at)
        last = current.get(series_id)
        if last is None or newest.observed_at >= last:
            changes.append({"sid": series_id, "at": newest.observed_at, "value": newest.value})
    if changes:
        session.connection().execute(
            update(Series)
            .where(Series.id == bindparam("sid"))
            .values(last_observed_at=bindparam("at"), last_value=bindparam("value")),
            changes,
        )
