"""Rollups on both dialects: after any sequence of ingests (re-sent readings with new values, late
readings, several zones across a DST change) the hourly and daily buckets equal an aggregation
computed in Python from the stored readings; the pipeline keeps them, `rebuild` redoes them, the
composition root fills them when an upgrade creates them beside readings already stored."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from core.records import ValidReading
from ingest.pipeline import run_source
from store.db import make_engine
from store.migrate import upgrade
from store.models import IndicatorRow, Reading, ReadingDaily, ReadingHourly, Series
from store.readings import upsert_readings
from store.rollups import local_days, rebuild_rollups, refresh_rollups, spans_of
from tests.conftest import demo_config

# Berlin springs forward at 01:00 UTC on 2026-03-29: that local day has 23 hours.
T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
STATIONS = ("1188A", "1189A", "1192A")
ZONES = ("Asia/Shanghai", "Europe/Berlin", "Asia/Kolkata")


def expected_rollups(points, tz: ZoneInfo) -> tuple[dict, dict]:
    """{(series_id, bucket): (n, total, low, high)} per hour and per local day, from the readings."""
    hourly, daily = defaultdict(list), defaultdict(list)
    for series_id, at, value in points:
        hourly[(series_id, at.replace(minute=0, second=0, microsecond=0))].append(value)
        local_day = at.astimezone(tz).date()
        midnight = datetime.combine(local_day, time(), tzinfo=tz).astimezone(UTC)
        daily[(series_id, midnight)].append(value)

    def summary(groups):
        return {key: (len(v), sum(v), min(v), max(v)) for key, v in groups.items()}

    return summary(hourly), summary(daily)


def stored_rollups(session_or_connection) -> tuple[dict, dict]:
    def rows(model):
        query = select(model.series_id, model.bucket, model.n, model.total, model.low, model.high)
        return {(sid, at): tuple(rest) for sid, at, *rest in session_or_connection.execute(query)}

    return rows(ReadingHourly), rows(ReadingDaily)


def assert_rollups_match_readings(session, tz: ZoneInfo) -> None:
    points = session.execute(select(Reading.series_id, Reading.observed_at, Reading.value)).all()
    hourly, daily = stored_rollups(session)
    want_hourly, want_daily = expected_rollups(points, tz)
    assert_same(hourly, want_hourly)
    assert_same(daily, want_daily)


def assert_same(found: dict, wanted: dict) -> None:
    assert found.keys() == wanted.keys()
    for key, (n, total, low, high) in wanted.items():
        assert found[key] == (n, pytest.approx(total), low, high), key


batches = st.lists(
    st.dictionaries(
        keys=st.tuples(st.sampled_from(STATIONS), st.integers(0, 3 * 24 * 60 - 1)),
        values=st.integers(0, 2000).map(lambda v: v / 4),
        min_size=1,
        max_size=25,
    ),
    min_size=1,
    max_size=5,
)


def test_rollups_equal_the_readings_after_any_ingests(ingest):
    """Random batches, each stored as the pipeline stores it (upsert, then refresh): the same
    (station, minute) re-sent with another value, batches far behind the newest one."""
    examples = 40 if ingest.engine.dialect.name == "sqlite" else 8

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(batches=batches, zone=st.sampled_from(ZONES))
    def check(batches, zone):
        tz = ZoneInfo(zone)
        with ingest.sessions() as session:  # rolled back: every example starts empty
            final = {}
            for batch in batches:
                readings = [
                    ValidReading("test.plain", station, T0 + timedelta(minutes=minute), value)
                    for (station, minute), value in batch.items()
                ]
                touched = upsert_readings(session, readings, "test", ingest.region_of)
                refresh_rollups(session, spans_of(touched), tz)
                final.update({(r.entity, r.observed_at): r.value for r in readings})
            assert_rollups_match_readings(session, tz)
            ids = dict(session.execute(select(Series.entity, Series.id)).all())
            want_hourly, _ = expected_rollups([(ids[e], at, v) for (e, at), v in final.items()], tz)
            assert_same(stored_rollups(session)[0], want_hourly)
            session.rollback()

    check()


def test_a_dst_day_is_23_hours_and_starts_at_local_midnight():
    berlin = ZoneInfo("Europe/Berlin")
    days = local_days(T0, T0 + timedelta(days=2), berlin)
    assert [end - start for start, end in days] == [
        timedelta(hours=24),
        timedelta(hours=23),
        timedelta(hours=24),
    ]
    assert days[1][0] == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    shanghai = local_days(T0, T0, ZoneInfo("Asia/Shanghai"))
    assert shanghai == ((datetime(2026, 3, 27, 16, 0, tzinfo=UTC), datetime(2026, 3, 28, 16, 0, tzinfo=UTC)),)


def test_the_pipeline_keeps_the_rollups(ingest):
    """Two overlapping simulator runs: the second re-sends the first one's last hour."""
    start = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
    first = run_source(ingest, "wuxi-sim", since=start.isoformat(), until=start + timedelta(hours=2))
    again = run_source(
        ingest, "wuxi-sim", since=(start + timedelta(hours=1)).isoformat(), until=start + timedelta(hours=3)
    )
    assert {first.status, again.status} <= {"ok", "partial"} and first.accepted and again.accepted
    with ingest.sessions() as session:
        assert session.scalar(select(ReadingDaily.bucket).limit(1)) is not None
        assert_rollups_match_readings(session, ingest.settings.tz)


def test_rebuild_replaces_every_bucket(ingest):
    """Readings loaded around the pipeline, stale buckets of another zone: rebuild makes them exact."""
    berlin = ZoneInfo("Europe/Berlin")
    readings = [
        ValidReading("test.plain", station, T0 + timedelta(minutes=7 * i), float(i % 50))
        for i in range(700)
        for station in STATIONS
    ]
    calls = []
    with ingest.sessions() as session:
        touched = upsert_readings(session, readings, "test", ingest.region_of)
        refresh_rollups(session, spans_of(touched), ingest.settings.tz)
        session.execute(
            insert(ReadingHourly).values(
                series_id=min(touched), bucket=T0 - timedelta(days=9), n=1, total=1, low=1, high=1
            )
        )
        session.commit()
    with ingest.engine.connect() as connection:
        rolled = rebuild_rollups(connection, berlin, lambda *args: calls.append(args), chunk=2)
    with ingest.sessions() as session:
        assert_rollups_match_readings(session, berlin)
    series = calls[-1][1]
    assert rolled == len(readings) == calls[-1][2]
    assert [c[0] for c in calls] == [min(2 * (i + 1), series) for i in range(len(calls))]


@pytest.mark.parametrize("entry", ["open_store", "db upgrade"])
def test_an_upgraded_database_with_readings_has_complete_rollups(
    database_url, monkeypatch, tmp_path, capsys, entry
):
    """A database with readings, upgraded from 0005 by the composition root (the app starting, or
    `citybrain db upgrade`): both tables complete, days in the city's zone. Once at the head, a
    later start leaves them alone."""
    import yaml

    from app import load_deployment, main, open_store

    upgrade(database_url, "0005")
    engine = make_engine(database_url)
    points = []
    with engine.begin() as connection:
        connection.execute(
            insert(IndicatorRow),
            [
                {
                    "key": "test.plain",
                    "domain": "environment",
                    "name_zh": "测",
                    "name_en": "t",
                    "unit": "",
                    "level": "station",
                    "classification": "public",
                    "definition": {},
                }
            ],
        )
        for n, station in enumerate(STATIONS):
            sid = connection.execute(
                insert(Series)
                .values(indicator_key="test.plain", entity=station, last_severity=0)
                .returning(Series.id)
            ).scalar_one()
            for i in range(0, 3 * 24 * 60, 11 + n):
                points.append((sid, T0 + timedelta(minutes=i, seconds=n), float((i * 7) % 113)))
        connection.execute(
            insert(Reading),
            [
                {"series_id": s, "observed_at": at, "value": v, "quality": "ok", "ingested_at": T0}
                for s, at, v in points
            ],
        )
    monkeypatch.setenv("CITYBRAIN_DATABASE_URL", database_url)
    monkeypatch.delenv("CITYBRAIN_CONFIG", raising=False)
    config = demo_config()
    config["indicator_catalogs"] = [str(REPO / "tests" / "data" / "test_indicators.yaml")]
    config["city"]["timezone"] = "Europe/Berlin"
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")

    def start() -> None:
        if entry == "open_store":
            opened, _ = open_store(load_deployment(path))
            opened.dispose()
        else:
            assert main(["--config", str(path), "db", "upgrade"]) == 0

    start()
    assert f"rollups filled from {len(points):,} readings" in capsys.readouterr().out
    with engine.connect() as connection:
        hourly, daily = stored_rollups(connection)
    want_hourly, want_daily = expected_rollups(points, ZoneInfo("Europe/Berlin"))
    assert_same(hourly, want_hourly)
    assert_same(daily, want_daily)

    start()
    assert "rollups filled" not in capsys.readouterr().out
    engine.dispose()


def test_the_rebuild_command(ingest, tmp_path, capsys):
    """`citybrain rollups rebuild` on readings written around the pipeline (no rollups yet)."""
    from app import main

    readings = [
        ValidReading("test.plain", "1188A", T0 + timedelta(minutes=5 * i), float(i)) for i in range(100)
    ]
    with ingest.sessions() as session:
        upsert_readings(session, readings, "test", ingest.region_of)
        session.commit()
        assert stored_rollups(session) == ({}, {})
    assert main(["--config", str(tmp_path / "deploy.yaml"), "rollups", "rebuild"]) == 0
    assert "rollups rebuilt from 100 readings" in capsys.readouterr().out
    with ingest.sessions() as session:
        assert_rollups_match_readings(session, ingest.settings.tz)
