"""Reads the rule evaluation needs: recent points of many series in one query.

A batch touches thousands of series, so the ids (and each series' own start time) travel as ONE
bound parameter: JSON on SQLite, arrays on PostgreSQL. No statement with thousands of
placeholders to compile, no limit on the number of series, and the database joins each series
with exactly its own window instead of reading every series from the earliest start.

The points come back as columns (`Columns`): one number per point for the time and one for the
value, no Python object per point, because the batch evaluation's pre-checks work on whole arrays
and only the few series judged point by point need (datetime, value) pairs (`Columns.window`).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from itertools import repeat
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Float, Integer, any_, bindparam, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from core.timeutil import EPOCH, micros_since_epoch
from store.models import SQLITE_TIME, UTCDateTime

Point = tuple[datetime, float]
SERIES, TIME, VALUE = operator.itemgetter(0), operator.itemgetter(1), operator.itemgetter(2)

# The stored text format is SQLAlchemy's (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC), which sorts and
# compares as text. The series travel grouped by start time, `{"start": [id, ...], ...}`: a batch's
# series share a few start times, and a JSON of plain ids costs far less to build than one pair
# per series. No ORDER BY: each series' rows come together and in time order from the key
# already (SQLite's temporary B-tree for an ORDER BY costs more than checking that in numpy), and
# `_columns` sorts them should a plan ever return them otherwise.
SQLITE_WINDOWS = """
SELECT r.series_id, r.observed_at, r.value
FROM json_each(?) AS g, json_each(g.value) AS w JOIN readings AS r
  ON r.series_id = w.value AND r.observed_at >= g.key
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


class Columns(NamedTuple):
    """The points of many series as columns: series k (`series_ids[k]`) has rows
    starts[k]:starts[k + 1], time-ordered; times in whole microseconds since the Unix epoch, so
    they compare and subtract exactly as the datetimes they stand for. `moments` turns each time
    read back into the datetime (one object per distinct time: a batch's series share their
    observation times)."""

    series_ids: NDArray[np.int64]
    starts: NDArray[np.intp]
    micros: NDArray[np.int64]
    values: NDArray[np.float64]
    moments: Mapping[int, datetime]

    def find(self, series_ids: Sequence[int]) -> NDArray[np.intp]:
        """The position k of each of these series, -1 for one without points."""
        wanted = np.array(series_ids, dtype=np.int64)
        if not len(self.series_ids):
            return np.full(len(wanted), -1, dtype=np.intp)
        order = np.argsort(self.series_ids)
        found = order[np.minimum(np.searchsorted(self.series_ids, wanted, sorter=order), len(order) - 1)]
        return np.where(self.series_ids[found] == wanted, found, -1)

    def window(self, k: int) -> list[Point]:
        """Series k's points as (observed_at, value) pairs."""
        lo, hi = self.starts[k], self.starts[k + 1]
        times = map(self.moments.__getitem__, self.micros[lo:hi].tolist())
        return list(zip(times, self.values[lo:hi].tolist(), strict=True))


def id_in(session: Session, column: ColumnElement, ids: Collection[int]) -> ColumnElement[bool]:
    """`column IN ids` with the ids as one parameter."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Integer)))
    listed = func.json_each(json.dumps(list(ids))).table_valued("value")
    return column.in_(select(literal_column("value")).select_from(listed))


def columns(session: Session, since: Mapping[int, int]) -> Columns:
    """Each series' points from its own start (microseconds since the epoch) on, in one query."""
    if not since:
        return _EMPTY
    groups: dict[int, list[int]] = {}
    for series_id, start in since.items():
        groups.setdefault(start, []).append(series_id)
    if session.get_bind().dialect.name == "sqlite":
        windows = json.dumps({_sqlite_time(start): ids for start, ids in groups.items()})
        return _sqlite_columns(_sqlite_rows(session, SQLITE_WINDOWS, windows))
    starts = [_moment(start) for start in since.values()]
    return _postgres_columns(session.execute(POSTGRES_WINDOWS, {"ids": list(since), "starts": starts}).all())


# The rows before each series' first new point, and how many stored rows there are from it on.
# As for SQLITE_WINDOWS, the series travel grouped by their times: {since: {until: [id, ...]}} and
# {until: [id, ...]} (a batch's series share a few), and the text times compare as stored.
SQLITE_BEFORE = """
SELECT r.series_id, r.observed_at, r.value
FROM json_each(?) AS g, json_each(g.value) AS u, json_each(u.value) AS w JOIN readings AS r
  ON r.series_id = w.value AND r.observed_at >= g.key AND r.observed_at < u.key
"""
SQLITE_FROM_COUNTS = """
SELECT w.value, (SELECT count(*) FROM readings AS r WHERE r.series_id = w.value AND r.observed_at >= g.key)
FROM json_each(?) AS g, json_each(g.value) AS w
"""
POSTGRES_BEFORE = text(
    """
SELECT r.series_id, r.observed_at, r.value
FROM unnest(CAST(:ids AS INTEGER[]), CAST(:starts AS TIMESTAMPTZ[]), CAST(:untils AS TIMESTAMPTZ[]))
  AS w(series_id, since, until)
JOIN readings AS r ON r.series_id = w.series_id AND r.observed_at >= w.since AND r.observed_at < w.until
ORDER BY r.series_id, r.observed_at
"""
).columns(series_id=Integer, observed_at=UTCDateTime, value=Float)
POSTGRES_FROM_COUNTS = text(
    """
SELECT w.series_id, (SELECT count(*) FROM readings AS r
                     WHERE r.series_id = w.series_id AND r.observed_at >= w.until)
FROM unnest(CAST(:ids AS INTEGER[]), CAST(:untils AS TIMESTAMPTZ[])) AS w(series_id, until)
"""
)


def columns_with(
    session: Session,
    since: Mapping[int, int],
    until: Mapping[int, int],
    written: Mapping[int, Sequence[tuple[datetime, float]]],
) -> Columns:
    """What `columns(session, since)` gives once `written[series]` (its points from `until` on,
    any order; of a repeated time the last counts, as stored) is written: the database's rows
    in [since, until), then the written points. Read before the write, for series that
    `appended_only` named (no stored row from `until` on), so nothing of the batch is read back.
    """
    read = _rows_before(session, {sid: (since[sid], until[sid]) for sid in since})
    kept = {sid: dict(written[sid]) for sid in sorted(since)}  # time -> value
    ids: list[int] = []
    times: list[datetime] = []
    values: list[float] = []
    for sid, points in kept.items():
        ids.extend(repeat(sid, len(points)))
        times.extend(points)
        values.extend(points.values())
    micros_of = {at: micros_since_epoch(at) for at in set(times)}
    moments = {micros: _moment(micros) for micros in micros_of.values()}  # UTC, as a read gives
    moments.update(read.moments)
    return _columns(
        np.concatenate([np.repeat(read.series_ids, np.diff(read.starts)), np.array(ids, np.int64)]),
        np.concatenate([read.micros, np.fromiter(map(micros_of.__getitem__, times), np.int64, len(times))]),
        np.concatenate([read.values, np.array(values, np.float64)]),
        moments,
    )


def appended_only(session: Session, firsts: Mapping[int, datetime]) -> set[int]:
    """Before a write: the series that hold no row at or after their first new point, to which
    the write only appends."""
    counts = _counts_from(session, {sid: micros_since_epoch(at) for sid, at in firsts.items()})
    return {sid for sid in firsts if not counts.get(sid)}


def _counts_from(session: Session, untils: Mapping[int, int]) -> dict[int, int]:
    """How many rows each series holds from its own time on."""
    if not untils:
        return {}
    if session.get_bind().dialect.name == "sqlite":
        grouped: dict[str, list[int]] = {}
        for sid, until in untils.items():
            grouped.setdefault(_sqlite_time(until), []).append(sid)
        return dict(_sqlite_rows(session, SQLITE_FROM_COUNTS, json.dumps(grouped)))
    bound = {"ids": list(untils), "untils": [_moment(until) for until in untils.values()]}
    return dict(session.execute(POSTGRES_FROM_COUNTS, bound).all())


def _rows_before(session: Session, spans: Mapping[int, tuple[int, int]]) -> Columns:
    """Each series' rows with since <= observed_at < until, as columns."""
    if not spans:
        return _EMPTY
    if session.get_bind().dialect.name == "sqlite":
        nested: dict[str, dict[str, list[int]]] = {}
        for sid, (lo, hi) in spans.items():
            nested.setdefault(_sqlite_time(lo), {}).setdefault(_sqlite_time(hi), []).append(sid)
        return _sqlite_columns(_sqlite_rows(session, SQLITE_BEFORE, json.dumps(nested)))
    bound = {
        "ids": list(spans),
        "starts": [_moment(lo) for lo, _ in spans.values()],
        "untils": [_moment(hi) for _, hi in spans.values()],
    }
    return _postgres_columns(session.execute(POSTGRES_BEFORE, bound).all())


def _sqlite_rows(session: Session, sql: str, parameter: str) -> list[tuple]:
    """One statement with one parameter through the driver (no per-row conversion)."""
    cursor = session.connection().connection.cursor()
    try:
        return cursor.execute(sql, (parameter,)).fetchall()
    finally:
        cursor.close()


def _sqlite_columns(rows: list[tuple]) -> Columns:
    """Rows of (series, stored time text, value): each distinct time parsed once (the suffix
    makes `fromisoformat` return aware UTC times); the rows then map through a dict, in C."""
    texts = list(map(TIME, rows))
    return _from_rows(rows, texts, {text: datetime.fromisoformat(text + UTC_SUFFIX) for text in set(texts)})


def _postgres_columns(rows: Sequence) -> Columns:
    texts = list(map(TIME, rows))
    return _from_rows(rows, texts, {at: at for at in set(texts)})


def _from_rows(rows: Sequence, keys: list, moments: Mapping[object, datetime]) -> Columns:
    micros_of = {key: micros_since_epoch(at) for key, at in moments.items()}
    return _columns(
        np.fromiter(map(SERIES, rows), np.int64, len(rows)),
        np.fromiter(map(micros_of.__getitem__, keys), np.int64, len(rows)),
        np.fromiter(map(VALUE, rows), np.float64, len(rows)),
        {micros_of[key]: at for key, at in moments.items()},
    )


def _sqlite_time(micros: int) -> str:
    return _moment(micros).strftime(SQLITE_TIME)


def _moment(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def _columns(
    ids: NDArray[np.int64],
    times: NDArray[np.int64],
    numbers: NDArray[np.float64],
    moments: Mapping[int, datetime],
) -> Columns:
    """Columns from rows in any order. The read's rows come with each series' rows together and
    time-ordered already: checked (linear), sorted only if not."""
    if not len(ids):
        return Columns(ids, np.zeros(1, dtype=np.intp), times, numbers, moments)
    step = np.diff(ids)
    starts = np.concatenate(([0], np.flatnonzero(step) + 1, [len(ids)])).astype(np.intp)
    runs = np.sort(ids[starts[:-1]])
    if not (np.all((step != 0) | (np.diff(times) > 0)) and np.all(np.diff(runs) > 0)):
        order = np.lexsort((times, ids))
        ids, times, numbers = ids[order], times[order], numbers[order]
        starts = np.concatenate(([0], np.flatnonzero(np.diff(ids)) + 1, [len(ids)])).astype(np.intp)
    return Columns(ids[starts[:-1]], starts, times, numbers, moments)


def points(session: Session, since: Mapping[int, datetime]) -> dict[int, list[Point]]:
    """Each series' (observed_at, value) from its own start time on, time-ordered, in one query."""
    read = columns(session, {series_id: micros_since_epoch(at) for series_id, at in since.items()})
    return {series_id: read.window(k) for k, series_id in enumerate(read.series_ids.tolist())}


_EMPTY = _columns(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), {})
