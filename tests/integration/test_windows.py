"""The evaluation's window read on both dialects: each series from its own start, time-ordered,
aware UTC times to the microsecond, and id lists far beyond SQLite's placeholder limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from core.records import ValidReading
from core.timeutil import micros_since_epoch
from store.models import Series
from store.readings import upsert_readings
from store.windows import Columns, appended_only, columns, columns_with, id_in, points

T0 = datetime(2026, 11, 2, 8, 0, 0, 123456, tzinfo=UTC)


def test_each_series_is_read_from_its_own_start(ingest):
    stored = {
        entity: [(T0 + timedelta(minutes=5 * i, microseconds=i), 100.0 + i + n / 7) for i in range(12)]
        for n, entity in enumerate(("W1", "W2", "W3"))
    }
    readings = [
        ValidReading("test.plain", entity, at, value)
        for entity, series in stored.items()
        for at, value in reversed(series)  # stored out of order
    ]
    with ingest.sessions() as session:
        ids = {
            (key, entity): sid
            for sid, rs in upsert_readings(session, readings, "test", ingest.region_of).items()
            for key, entity in {(r.indicator, r.entity) for r in rs}
        }
        starts = {
            ids[("test.plain", "W1")]: T0,
            ids[("test.plain", "W2")]: stored["W2"][7][0],  # exactly on a reading: included
            ids[("test.plain", "W3")]: stored["W3"][-1][0] + timedelta(microseconds=1),  # after all
        }
        found = points(session, starts)
        assert points(session, {}) == {}
        session.commit()
    assert found == {ids[("test.plain", "W1")]: stored["W1"], ids[("test.plain", "W2")]: stored["W2"][7:]}
    assert all(at.utcoffset() == timedelta(0) for window in found.values() for at, _ in window)


def test_id_lists_have_no_placeholder_limit(ingest):
    """SQLite refuses more than 32,766 bound parameters; the ids travel as one."""
    readings = [ValidReading("test.plain", f"P{n}", T0, 1.0) for n in range(3)]
    with ingest.sessions() as session:
        created = set(upsert_readings(session, readings, "test", ingest.region_of))
        many = [n for n in range(40_000) if n not in created] + sorted(created)[:2]
        found = session.scalars(select(Series.id).where(id_in(session, Series.id, many))).all()
        session.commit()
    assert sorted(found) == sorted(created)[:2]


def _as_lists(read: Columns) -> dict[int, list]:
    return {sid: read.window(k) for k, sid in enumerate(read.series_ids.tolist())}


def test_a_window_read_before_the_write_is_the_window_read_after_it(ingest):
    """For a series a batch only appends to, the rows before the batch plus the batch's own points
    (last of a repeated time wins) are what a full read gives once the batch is written; a batch
    whose points fall between stored ones, or re-send them, is not appended and is not offered."""
    old = [(T0 + timedelta(minutes=5 * i), float(i)) for i in range(10)]
    tail = [(T0 + timedelta(minutes=50 + 5 * i, microseconds=7), 50.0 + i) for i in range(6)]
    tail.append((tail[2][0], 99.0))
    between = [(T0 + timedelta(minutes=12), -1.0), (T0 + timedelta(minutes=32), -2.0)]
    resent = [(at, value + 0.5) for at, value in old[6:]]
    series = {"A": tail, "B": between, "C": resent}
    with ingest.sessions() as session:
        ids = {}
        for entity in series:
            rows = [ValidReading("test.plain", entity, at, value) for at, value in old]
            (ids[entity],) = upsert_readings(session, rows, "test", ingest.region_of)
        firsts = {ids[entity]: min(at for at, _ in new) for entity, new in series.items()}
        assert appended_only(session, firsts) == {ids["A"]}
        sid = ids["A"]
        since = {sid: micros_since_epoch(T0 + timedelta(minutes=3))}
        early = _as_lists(columns_with(session, since, {sid: micros_since_epoch(firsts[sid])}, {sid: tail}))
        for entity, new in series.items():
            upsert_readings(session, [ValidReading("test.plain", entity, at, v) for at, v in new], "t", {})
        full = _as_lists(columns(session, since))
        session.rollback()
    assert early == full
    assert full[sid][-4] == (tail[2][0], 99.0) and len(full[sid]) == 9 + 6
    assert all(at.utcoffset() == timedelta(0) for window in early.values() for at, _ in window)
