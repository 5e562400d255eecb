"""The write side for readings: bulk, idempotent upsert on (indicator, entity, observed_at).

A re-sent reading updates the stored one and never duplicates it, on SQLite and PostgreSQL alike
(both speak INSERT ... ON CONFLICT DO UPDATE). A batch holds up to a few hundred thousand
readings, so the rows go to the driver directly, in key order, each distinct time converted once:
sqlite3's `executemany`, PostgreSQL's binary COPY into a temporary table merged with one INSERT.
SQLAlchemy's per-row parameter handling would cost more than the database's own work.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from itertools import repeat
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, Dialect, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.records import ValidReading
from core.timeutil import utcnow
from store.models import Reading, Series
from store.windows import id_in

COLUMNS = ("series_id", "observed_at", "value", "quality", "source_id", "ingested_at")
_ON_CONFLICT = "ON CONFLICT (series_id, observed_at) DO UPDATE SET " + ", ".join(
    f"{column} = excluded.{column}" for column in COLUMNS[2:]
)
_SQLITE_UPSERT = f"INSERT INTO readings ({', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?) {_ON_CONFLICT}"
# One staging table per connection; its rows never outlive the transaction that wrote them.
_STAGING = "citybrain_readings_in"
_POSTGRES_STAGING = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} "
    "(LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_POSTGRES_COPY = f"COPY {_STAGING} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_POSTGRES_COPY_DIRECT = f"COPY readings ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_POSTGRES_TYPES = ("int4", "timestamptz", "float8", "varchar", "varchar", "timestamptz")
_POSTGRES_MERGE = (
    f"INSERT INTO readings ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM {_STAGING} {_ON_CONFLICT}"
)
# Only forward: a late old reading leaves the latest value alone (equal times: the newer write wins).
_ADVANCE = (
    update(Series)
    .where(Series.id == bindparam("sid"))
    .where((Series.last_observed_at.is_(None)) | (Series.last_observed_at <= bindparam("at")))
    .values(last_observed_at=bindparam("at"), last_value=bindparam("value"))
)

Row = tuple[int, Any, float, str, str | None, Any]
_SERIES_OF = attrgetter("indicator", "entity")
_TIME_OF, _VALUE_OF, _QUALITY_OF = attrgetter("observed_at"), attrgetter("value"), attrgetter("quality")


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
    touched = group_by_series(session, readings, region_of)
    store_grouped(session, touched, source_id)
    return touched


def group_by_series(
    session: Session, readings: Sequence[ValidReading], region_of: Mapping[str, str | None]
) -> dict[int, list[ValidReading]]:
    """The readings grouped by series id, creating the series new to the store. Apart from
    `store_grouped` so that the ingest can read what the rules need before the write."""
    if not readings:
        return {}
    pairs = list(map(_SERIES_OF, readings))
    ids = series_ids(session, pairs, region_of)
    _lock_series(session, ids.values())
    touched: dict[int, list[ValidReading]] = {}
    for series_id, reading in zip(map(ids.__getitem__, pairs), readings, strict=True):
        group = touched.get(series_id)
        if group is None:
            touched[series_id] = [reading]
        else:
            group.append(reading)
    return touched


def _lock_series(session: Session, ids: Iterable[int]) -> None:
    """PostgreSQL: hold the series' rows until commit (in id order: no deadlock), so that what a
    writer learns of their readings before it writes stays true until it has written; another
    writer of the same series waits. SQLite's one writer holds the whole database already."""
    if session.get_bind().dialect.name == "postgresql":
        locked = select(Series.id).where(id_in(session, Series.id, sorted(set(ids))))
        session.execute(locked.order_by(Series.id).with_for_update())


def store_grouped(
    session: Session,
    touched: Mapping[int, list[ValidReading]],
    source_id: str | None,
    appended: Collection[int] = frozenset(),
) -> None:
    """Write grouped readings and move each series' latest value forward.

    Two readings of one series at the same instant store the later one, on both dialects
    (PostgreSQL refuses to update one row twice in a statement, so they are merged here).
    `appended`: series that hold no row from their first reading here on (`appended_only`, asked
    after `group_by_series` locked them), so none of their rows can meet a stored one: PostgreSQL
    copies those straight into `readings`, skipping the staging table and the conflict check.
    """
    if not touched:
        return
    connection = session.connection()
    stored_time = _StoredTimes(connection.dialect)
    now = stored_time[utcnow()]
    if connection.dialect.name == "postgresql":
        direct = {sid: readings for sid, readings in touched.items() if sid in appended}
        merged = {sid: readings for sid, readings in touched.items() if sid not in appended}
        copied, newest = _rows(direct, source_id, stored_time, now)
        rows, more = _rows(merged, source_id, stored_time, now)
        _copy_merge(connection, copied, rows)
        newest += more
    else:
        rows, newest = _rows(touched, source_id, stored_time, now)
        connection.exec_driver_sql(_SQLITE_UPSERT, rows)
    connection.execute(_ADVANCE, newest)


class _StoredTimes(dict):
    """Time -> the column type's own conversion of it (the text SQLite stores, aware UTC for
    PostgreSQL; a naive time raises), converted once per distinct time (a batch's readings share
    few) and looked up in C for the rest."""

    def __init__(self, dialect: Dialect):
        super().__init__()
        self.process = Reading.__table__.c.observed_at.type.dialect_impl(dialect).bind_processor(dialect)

    def __missing__(self, value: datetime) -> Any:
        stored = self[value] = self.process(value)
        return stored


def _rows(
    touched: Mapping[int, list[ValidReading]], source_id: str | None, stored_time: _StoredTimes, now: Any
) -> tuple[list[Row], list[dict[str, Any]]]:
    """The rows in key order (series, then time: the B-tree fills in order) with one row per key,
    and each series' newest reading for `series.last_*`. Column-wise, so the per-row work is C's."""
    rows: list[Row] = []
    newest = []
    for series_id in sorted(touched):
        readings = touched[series_id]
        by_time = dict(zip(map(_TIME_OF, readings), readings, strict=True))
        ordered = sorted(by_time)
        chosen = list(map(by_time.__getitem__, ordered))
        rows.extend(
            zip(
                repeat(series_id),
                map(stored_time.__getitem__, ordered),
                map(_VALUE_OF, chosen),
                map(_QUALITY_OF, chosen),
                repeat(source_id),
                repeat(now),
            )
        )
        newest.append({"sid": series_id, "at": ordered[-1], "value": chosen[-1].value})
    return rows, newest


def _copy_merge(connection: Connection, copied: list[Row], merged: list[Row]) -> None:
    """PostgreSQL: binary COPY of `copied` straight into readings; of `merged` into the staging
    table, then one INSERT ... ON CONFLICT into readings. All in the caller's transaction (a
    failure rolls the readings back with the rest of the run)."""
    cursor = connection.connection.driver_connection.cursor()
    try:
        if copied:
            with cursor.copy(_POSTGRES_COPY_DIRECT) as copy:
                copy.set_types(_POSTGRES_TYPES)
                for row in copied:
                    copy.write_row(row)
        if merged:
            cursor.execute(_POSTGRES_STAGING)
            with cursor.copy(_POSTGRES_COPY) as copy:
                copy.set_types(_POSTGRES_TYPES)
                for row in merged:
                    copy.write_row(row)
            cursor.execute(_POSTGRES_MERGE)
            cursor.execute(f"TRUNCATE {_STAGING}")
    finally:
        cursor.close()
