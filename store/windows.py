"""Reads the rule evaluation needs: recent points of many series in one query.

A batch touches thousands of series, so the ids (and each series' own start time) travel as ONE
bound parameter: a JSON array on SQLite, arrays on PostgreSQL. No statement with thousands of
placeholders to compile, no limit on the number of series, and the database joins each series
with exactly its own window instead of reading every series from the earliest start.
"""

from __future__ import annotations

import bisect
import json
import operator
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from itertools import repeat

from sqlalchemy import Float, Integer, any_, bindparam, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from store.models import UTCDateTime

SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
Point = tuple[datetime, float]

# The stored text format is SQLAlchemy's (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC), which sorts and
# compares as text. No ORDER BY: the rows come in series and time order from the key already,
# and sorting the list in Python (linear on sorted input) is cheaper than SQLite's temporary
# B-tree while guaranteeing the order whatever plan SQLite picks.
SQLITE_WINDOWS = """
SELECT r.series_id, r.observed_at, r.value
FROM json_each(?) AS w JOIN readings AS r
  ON r.series_id = w.value ->> 0 AND r.observed_at >= w.value ->> 1
"""
UTC_SUFFIX = "+00:00"
POSTGRES_WINDOWS = text(
    """
SELECT r.series_id, r.observed_at, r.value
FROM unnest(CAST(:ids AS INTEGER[]), CAST(:starts AS TIMESTAMPTZ[])) AS w(series_id, since)
JOIN readings AS r ON r.series_id = w.series_id AND r.observed_at >= w.since
ORDER BY r.series_id, r.observed_at
"""
).columns(series_id=Integer, observed_at=UTCDateTime, value=Float)


def id_in(session: Session, column: ColumnElement, ids: Collection[int]) -> ColumnElement[bool]:
    """`column IN ids` with the ids as one parameter."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Integer)))
    listed = func.json_each(json.dumps(list(ids))).table_valued("value")
    return column.in_(select(literal_column("value")).select_from(listed))


def points(session: Session, since: Mapping[int, datetime]) -> dict[int, list[Point]]:
    """Each series' (observed_at, value) from its own start time on, time-ordered, in one query."""
    if not since:
        return {}
    if session.get_bind().dialect.name == "sqlite":
        bounds = {start: start.astimezone(UTC).strftime(SQLITE_TIME) for start in set(since.values())}
        windows = json.dumps(sorted((series_id, bounds[start]) for series_id, start in since.items()))
        cursor = session.connection().connection.cursor()
        try:
            rows = cursor.execute(SQLITE_WINDOWS, (windows,)).fetchall()
        finally:
            cursor.close()
        if not rows:
            return {}
        rows.sort()
        series_ids, texts, values = zip(*rows, strict=True)
        # Column-wise, so the per-row work stays in C; the suffix makes `fromisoformat` return
        # aware UTC times directly.
        times = map(datetime.fromisoformat, map(operator.add, texts, repeat(UTC_SUFFIX)))
        return _by_series(series_ids, list(zip(times, values, strict=True)))
    rows = session.execute(POSTGRES_WINDOWS, {"ids": list(since), "starts": list(since.values())}).all()
    if not rows:
        return {}
    series_ids, times, values = zip(*rows, strict=True)
    return _by_series(series_ids, list(zip(times, values, strict=True)))


def _by_series(series_ids: Sequence[int], found: list[Point]) -> dict[int, list[Point]]:
    """Cut the points of many series, ordered by series, into one list per series (slices)."""
    windows, start, end = {}, 0, len(series_ids)
    while start < end:
        series_id = series_ids[start]
        stop = bisect.bisect_right(series_ids, series_id, start)
        windows[series_id] = found[start:stop]
        start = stop
    return windows
