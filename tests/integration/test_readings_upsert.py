"""The readings upsert through the driver (sqlite3 executemany, PostgreSQL COPY + merge) stores
exactly what SQLAlchemy would have: the same time text on SQLite, found by the ORM's own queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from core.records import ValidReading
from store.models import Reading, Series
from store.readings import upsert_readings

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
