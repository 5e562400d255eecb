"""The store on both dialects: migrations apply, upserts are idempotent, latest values move forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from core.records import ValidReading
from store.models import Reading, Series
from store.readings import upsert_readings
from store.state import bump_data_version, data_version

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def readings(n: int, value: float = 50.0, start: datetime = T0) -> list[ValidReading]:
    return [
        ValidReading("env.aqi", code, start + timedelta(minutes=5 * i), value + i)
        for i in range(n)
        for code in ("1188A", "1189A")
    ]


def count(session) -> int:
    return session.scalar(select(func.count()).select_from(Reading))


def test_upsert_is_idempotent_and_updates_values(ingest):
    with ingest.sessions() as session:
        upsert_readings(session, readings(50), "test", ingest.region_of)
        session.commit()
        assert count(session) == 100
        upsert_readings(session, readings(50), "test", ingest.region_of)
        session.commit()
        assert count(session) == 100
        upsert_readings(session, readings(50, value=70.0), "test", ingest.region_of)
        session.commit()
        assert count(session) == 100
        values = session.scalars(select(Reading.value).order_by(Reading.value)).all()
        assert min(values) == 70.0


def test_times_come_back_as_aware_utc(ingest):
    shanghai = datetime(2026, 11, 1, 16, 0, tzinfo=ingest.settings.tz)
    with ingest.sessions() as session:
        upsert_readings(session, [ValidReading("env.aqi", "1188A", shanghai, 80.0)], "t", ingest.region_of)
        session.commit()
        stored = session.scalar(select(Reading.observed_at))
    assert stored == datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    assert stored.tzinfo is not None


def test_latest_value_moves_forward_only(ingest):
    with ingest.sessions() as session:
        upsert_readings(session, readings(10), "t", ingest.region_of)
        session.commit()
        late = [ValidReading("env.aqi", "1188A", T0 - timedelta(hours=3), 999.0)]
        upsert_readings(session, late, "t", ingest.region_of)
        session.commit()
        series = session.scalars(select(Series).where(Series.entity == "1188A")).one()
    assert series.last_observed_at == T0 + timedelta(minutes=45)
    assert series.last_value == 59.0
    assert series.region_code == "320211"


def test_large_batch_in_chunks(ingest):
    many = [
        ValidReading("traffic.road_speed", "RD01", T0 + timedelta(seconds=i), 40.0) for i in range(12_001)
    ]
    with ingest.sessions() as session:
        upsert_readings(session, many, "t", ingest.region_of)
        session.commit()
        assert count(session) == 12_001


def test_data_version_increments(ingest):
    before = data_version(ingest.engine)
    with ingest.sessions() as session:
        bump_data_version(session)
        session.commit()
        bump_data_version(session)
        session.commit()
    assert data_version(ingest.engine) == before + 2
