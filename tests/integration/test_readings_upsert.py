"""The readings upsert through the driver (sqlite3 executemany, PostgreSQL COPY + merge) stores
exactly what SQLAlchemy would have: the same time text on SQLite, found by the ORM's own queries;
and two writers of one series never collide."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from core.records import ValidReading
from store.models import Reading, Series
from store.readings import group_by_series, store_grouped, upsert_readings
from store.windows import appended_only

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def test_times_are_stored_in_the_orms_format(ingest):
    shanghai = T0.astimezone(ZoneInfo("Asia/Shanghai"))
    batch = [
        ValidReading("env.aqi", "1188A", shanghai, 50.0),
        ValidReading("env.aqi", "1188A", T0 + timedelta(microseconds=250), 51.0),
    ]
    with ingest.sessions() as session:
        upsert_readings(session, batch, "t", ingest.region_of)
        session.commit()
        found = session.scalars(select(Reading.value).where(Reading.observed_at == T0)).all()
        later = session.scalars(select(Reading.value).where(Reading.observed_at > T0)).all()
        if session.get_bind().dialect.name == "sqlite":
            texts = session.scalars(text("SELECT observed_at FROM readings ORDER BY observed_at")).all()
            assert texts == ["2026-11-01 08:00:00.000000", "2026-11-01 08:00:00.000250"]
    assert found == [50.0] and later == [51.0]


def test_the_later_of_two_readings_at_one_instant_wins_and_sets_the_latest(ingest):
    batch = [
        ValidReading("env.aqi", "1188A", T0, 50.0),
        ValidReading("env.aqi", "1188A", T0.astimezone(ZoneInfo("Asia/Shanghai")), 60.0, "suspect"),
    ]
    with ingest.sessions() as session:
        touched = upsert_readings(session, batch, "t", ingest.region_of)
        session.commit()
        rows = session.execute(select(Reading.value, Reading.quality)).all()
        series = session.scalars(select(Series)).one()
    assert [len(readings) for readings in touched.values()] == [2]
    assert rows == [(60.0, "suspect")]
    assert (series.last_observed_at, series.last_value) == (T0, 60.0)


def test_a_failed_run_leaves_nothing_behind(ingest):
    """The rows travel in the caller's transaction: a rollback takes them back, and the staging
    table (PostgreSQL) is empty for the next upsert on the same connection."""
    with ingest.sessions() as session:
        upsert_readings(session, [ValidReading("env.aqi", "1188A", T0, 50.0)], "t", ingest.region_of)
        session.rollback()
        assert session.scalars(select(Reading.value)).all() == []
        upsert_readings(session, [ValidReading("env.aqi", "1189A", T0, 70.0)], "t", ingest.region_of)
        upsert_readings(session, [ValidReading("env.aqi", "1190A", T0, 80.0)], "t", ingest.region_of)
        session.commit()
        assert sorted(session.scalars(select(Reading.value)).all()) == [70.0, 80.0]


def test_naive_times_are_refused(ingest):
    with ingest.sessions() as session, pytest.raises(ValueError, match="naive"):
        upsert_readings(
            session, [ValidReading("env.aqi", "1188A", datetime(2026, 11, 1), 50.0)], "t", ingest.region_of
        )


def test_a_second_writer_of_the_same_series_waits_and_then_merges(ingest):
    """What a writer learns before it writes (that it only appends, so PostgreSQL may copy its
    rows straight in) stays true: a second writer of the same series waits for the first's commit,
    then finds its rows and merges over them instead of failing on the key. On SQLite the
    database's single writer lock gives the same order."""
    if ingest.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: there is no second writer to wait")
    times = [T0 + timedelta(minutes=5 * i) for i in range(4)]
    first_batch = [ValidReading("env.aqi", "1188A", at, 50.0) for at in times]
    second_batch = [ValidReading("env.aqi", "1188A", at, 60.0) for at in times]
    done = threading.Event()
    failures: list[BaseException] = []

    def write(session, batch, source_id):
        touched = group_by_series(session, batch, ingest.region_of)
        appended = appended_only(session, {sid: rs[0].observed_at for sid, rs in touched.items()})
        store_grouped(session, touched, source_id, appended)
        return appended

    def second() -> None:
        try:
            with ingest.sessions() as other:
                assert write(other, second_batch, "b") == set()  # the first's rows are there by now
                other.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
        done.set()

    with ingest.sessions() as session:  # the series exists: nothing but the lock makes one wait
        upsert_readings(session, [ValidReading("env.aqi", "1188A", T0 - timedelta(hours=1), 40.0)], "old", {})
        session.commit()
    with ingest.sessions() as session:
        assert len(write(session, first_batch, "a")) == 1  # appended: copied straight in
        writer = threading.Thread(target=second)
        writer.start()
        assert not done.wait(1.0), "the second writer did not wait for the first"
        session.commit()
    assert done.wait(30) and not failures, failures
    writer.join()
    with ingest.sessions() as session:
        stored = session.execute(select(Reading.value, Reading.source_id).order_by(Reading.observed_at)).all()
    assert stored == [(40.0, "old")] + [(60.0, "b")] * 4
