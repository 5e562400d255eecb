"""Hourly and daily rollups of readings, kept exact on every ingest (docs/rollups.md).

A long chart must not scan millions of readings, so each series also has one row per UTC hour and
one per local day holding count, sum, lowest and highest reading. Readings are upserted (a re-sent
reading may carry a new value, an old one may arrive late), so a touched bucket is RECOMPUTED from
its readings, never incremented: the result is the same whatever the order or repetition of
batches. All the work is one INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE per table,
with the touched series and their time spans travelling as one parameter (JSON on SQLite, arrays on
PostgreSQL), as in store/windows.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, func, select, text
from sqlalchemy.orm import Session

from core.records import ValidReading
from core.timeutil import floor_time
from store.models import SQLITE_TIME, Reading, ReadingDaily, ReadingHourly, Series

HOUR = timedelta(hours=1)
Span = tuple[datetime, datetime]
# (series_id, bucket start, bucket end): one bucket of one series to recompute.
Window = tuple[int, datetime, datetime]

_COUNTS = "count(*), sum(r.value), min(r.value), max(r.value)"
_MERGED = "sum(h.n), sum(h.total), min(h.low), max(h.high)"
_UPSERT = (
    "ON CONFLICT (series_id, bucket) DO UPDATE SET "
    "n = excluded.n, total = excluded.total, low = excluded.low, high = excluded.high"
)
# SQLite stores times as text, compared as text. A window is [sid, start, end, bucket]: start and
# end in the shortest form a writer may have used (the sqlite3 driver leaves out a zero fraction,
# SQLAlchemy writes ".000000"; the short form sorts at or before both), the bucket in SQLAlchemy's
# form, as the read side binds it. `WHERE true` keeps the parser from reading ON CONFLICT as a join
# constraint.
_SQLITE_HOURLY = f"""
INSERT INTO readings_hourly (series_id, bucket, n, total, low, high)
SELECT r.series_id, strftime('%Y-%m-%d %H:00:00.000000', r.observed_at) AS hour, {_COUNTS}
FROM json_each(:windows) AS w JOIN readings AS r
  ON r.series_id = w.value ->> 0 AND r.observed_at >= w.value ->> 1 AND r.observed_at < w.value ->> 2
WHERE true GROUP BY r.series_id, hour
{_UPSERT}
"""
_SQLITE_DAILY = """
INSERT INTO readings_daily (series_id, bucket, n, total, low, high)
SELECT w.value ->> 0, w.value ->> 3, {counts}
FROM json_each(:windows) AS w JOIN {source} ON {alias}.series_id = w.value ->> 0
  AND {alias}.{time} >= w.value ->> 1 AND {alias}.{time} < w.value ->> 2
WHERE true GROUP BY w.value ->> 0, w.value ->> 3
{upsert}
"""
_POSTGRES_WINDOWS = (
    "unnest(CAST(:ids AS INTEGER[]), CAST(:starts AS TIMESTAMPTZ[]), CAST(:ends AS TIMESTAMPTZ[])) "
    "AS w(series_id, since, until)"
)
_POSTGRES_HOURLY = f"""
INSERT INTO readings_hourly (series_id, bucket, n, total, low, high)
SELECT r.series_id, date_trunc('hour', r.observed_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', {_COUNTS}
FROM {_POSTGRES_WINDOWS} JOIN readings AS r
  ON r.series_id = w.series_id AND r.observed_at >= w.since AND r.observed_at < w.until
GROUP BY 1, 2
{_UPSERT}
"""
_POSTGRES_DAILY = """
INSERT INTO readings_daily (series_id, bucket, n, total, low, high)
SELECT w.series_id, w.since, {counts}
FROM {windows} JOIN {source} ON {alias}.series_id = w.series_id
  AND {alias}.{time} >= w.since AND {alias}.{time} < w.until
GROUP BY w.series_id, w.since
{upsert}
"""


def spans_of(touched: Mapping[int, Sequence[ValidReading]]) -> dict[int, Span]:
    """Each touched series' first and last reading time (what `upsert_readings` returns, reduced)."""
    spans = {}
    for series_id, readings in touched.items():
        times = [reading.observed_at for reading in readings]
        spans[series_id] = (min(times), max(times))
    return spans


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant a local calendar day starts. Where a DST change skips midnight, the day
    starts at the change (zoneinfo reads a skipped time with the offset before it)."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def local_days(first: datetime, last: datetime, tz: ZoneInfo) -> tuple[Span, ...]:
    """[start, end) in UTC of every local day from the one holding `first` to the one holding `last`."""
    return _days_between(first.astimezone(tz).date(), last.astimezone(tz).date(), tz)


@lru_cache(maxsize=512)
def _days_between(day: date, final: date, tz: ZoneInfo) -> tuple[Span, ...]:
    """Cached: the series of one batch nearly always share their days."""
    days = []
    while day <= final:
        following = day + timedelta(days=1)
        days.append((local_midnight(day, tz), local_midnight(following, tz)))
        day = following
    return tuple(days)


def refresh_rollups(
    session_or_connection: Session | Connection, spans: Mapping[int, Span], tz: ZoneInfo
) -> None:
    """Recompute every hourly and daily bucket that holds a reading of `spans` (series id ->
    first and last time written), from the stored readings, in the caller's transaction."""
    if not spans:
        return
    connection = (
        session_or_connection.connection()
        if isinstance(session_or_connection, Session)
        else session_or_connection
    )
    hours = [
        (sid, floor_time(first, HOUR), floor_time(last, HOUR) + HOUR) for sid, (first, last) in spans.items()
    ]
    days = [
        (sid, start, end)
        for sid, (first, last) in spans.items()
        for start, end in local_days(first, last, tz)
    ]
    postgres = connection.dialect.name == "postgresql"
    connection.execute(text(_POSTGRES_HOURLY if postgres else _SQLITE_HOURLY), _windows(hours, postgres))
    connection.execute(_daily_statement(postgres, _hour_aligned(days)), _windows(days, postgres))


def _hour_aligned(days: Iterable[Window]) -> bool:
    """Whether every day starts on a whole UTC hour (every zone in use today but a few with half-
    or quarter-hour offsets): then a day is a set of hourly buckets, 24 rows instead of a scan."""
    return all(start.minute == start.second == 0 and end.minute == end.second == 0 for _, start, end in days)


def _daily_statement(postgres: bool, from_hours: bool):
    if from_hours:
        parts = {"counts": _MERGED, "source": "readings_hourly AS h", "alias": "h", "time": "bucket"}
    else:
        parts = {"counts": _COUNTS, "source": "readings AS r", "alias": "r", "time": "observed_at"}
    if postgres:
        return text(_POSTGRES_DAILY.format(windows=_POSTGRES_WINDOWS, upsert=_UPSERT, **parts))
    return text(_SQLITE_DAILY.format(upsert=_UPSERT, **parts))


def _windows(windows: Sequence[Window], postgres: bool) -> dict[str, object]:
    """The buckets to recompute as ONE bound parameter per column (no placeholder limit)."""
    if postgres:
        ids, starts, ends = zip(*windows, strict=True)
        return {"ids": list(ids), "starts": list(starts), "ends": list(ends)}
    texts: dict[datetime, tuple[str, str]] = {}

    def stored(at: datetime) -> tuple[str, str]:
        found = texts.get(at)
        if found is None:
            naive = at.astimezone(UTC).replace(tzinfo=None)
            found = texts[at] = (naive.isoformat(sep=" "), naive.strftime(SQLITE_TIME))
        return found

    return {
        "windows": json.dumps(
            [(sid, stored(start)[0], stored(end)[0], stored(start)[1]) for sid, start, end in windows]
        )
    }


def rebuild_rollups(
    connection: Connection,
    tz: ZoneInfo,
    progress: Callable[[int, int, int], None] | None = None,
    chunk: int = 50,
) -> int:
    """Recompute both rollups of every series from its readings, `chunk` series per transaction:
    for readings loaded around the pipeline (bulk loads) or after the city's zone changed.

    `progress(series_done, series_total, readings_done)` is called after each chunk; returns the
    number of readings rolled up.
    """
    with connection.begin():
        series_ids = connection.scalars(select(Series.id).order_by(Series.id)).all()
    rolled = 0
    for start in range(0, len(series_ids), chunk):
        ids = series_ids[start : start + chunk]
        with connection.begin():
            connection.execute(delete(ReadingHourly).where(ReadingHourly.series_id.in_(ids)))
            connection.execute(delete(ReadingDaily).where(ReadingDaily.series_id.in_(ids)))
            refresh_rollups(connection, _stored_spans(connection, ids), tz)
            rolled += connection.scalar(
                select(func.coalesce(func.sum(ReadingHourly.n), 0)).where(ReadingHourly.series_id.in_(ids))
            )
        if progress:
            progress(start + len(ids), len(series_ids), rolled)
    return rolled


def _stored_spans(connection: Connection, ids: Sequence[int]) -> dict[int, Span]:
    """Each series' first and last stored reading: two index seeks per series, no scan."""
    outer = Series.__table__.alias("s")

    def edge(pick) -> object:
        return select(pick(Reading.observed_at)).where(Reading.series_id == outer.c.id).scalar_subquery()

    rows = connection.execute(
        select(outer.c.id, edge(func.min), edge(func.max)).where(outer.c.id.in_(ids))
    ).all()
    return {sid: (first, last) for sid, first, last in rows if first is not None}
