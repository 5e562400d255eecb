"""The sql adapter against real department databases (PostgreSQL and a SQLite file), and end to end
through run_source into the real store."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DBAPIError

from core.city import load_city
from core.settings import SourceSettings
from core.timeutil import utcnow
from datasources.base import AdapterContext
from datasources.sql import Options, SqlAdapter
from indicators.catalog import load_catalog
from indicators.validation import Validator
from ingest.pipeline import run_source
from store.models import Reading, RejectedRecord, Source
from store.sync import sync_sources

REPO = Path(__file__).resolve().parents[2]
ZONE = ZoneInfo("Asia/Shanghai")
WIDE = {
    "query": "SELECT site_code, sample_time, pm25, aqi FROM dept.air_hourly "
    "WHERE sample_time > :since ORDER BY sample_time",
    "observed_at_column": "sample_time",
    "entity_column": "site_code",
    "values": {"pm25": "env.pm25", "aqi": "env.aqi"},
    "entity_map": {"32020001": "1188A", "32020002": "1189A"},
}


@pytest.fixture(scope="module")
def context() -> AdapterContext:
    city = load_city(REPO / "assets/geo/wuxi_districts.geojson", REPO / "config/cities/wuxi/stations.csv")
    return AdapterContext(city, load_catalog(), ZONE, "dept-air")


@pytest.fixture
def validator(context) -> Validator:
    return Validator(context.catalog, context.city.entity_codes(), ZONE)


@dataclass
class Department:
    """A department's database the test writes to as the department would."""

    url: str
    execute: Callable[..., None]
    options: dict

    def insert(self, rows: list[tuple[str, datetime, float | None, int | None]]) -> None:
        for site, at, pm25, aqi in rows:
            self.execute(
                "INSERT INTO dept.air_hourly VALUES (:site, :at, :pm25, :aqi)",
                {"site": site, "at": self.stamp(at), "pm25": pm25, "aqi": aqi},
            )

    def stamp(self, at: datetime) -> object:
        return at if self.url.startswith("postgresql") else at.astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S")


def _executor(url: str, **engine_args) -> tuple[Callable[..., None], Callable[[], None]]:
    engine = create_engine(url, **engine_args)

    def execute(sql: str, params: dict | None = None) -> None:
        with engine.begin() as connection:
            connection.execute(text(sql), params or {})

    return execute, engine.dispose


@pytest.fixture
def postgres_department(postgres_url) -> Iterator[Department]:
    """A department schema in a fresh PostgreSQL database (apart from any store tables there)."""
    execute, dispose = _executor(postgres_url)
    execute("CREATE SCHEMA dept")
    execute(
        "CREATE TABLE dept.air_hourly "
        "(site_code text, sample_time timestamptz, pm25 numeric(6,1), aqi integer)"
    )
    yield Department(postgres_url, execute, {"url": postgres_url, **WIDE})
    dispose()


@pytest.fixture
def sqlite_department(tmp_path) -> Iterator[Department]:
    """The same department table in a SQLite file, times as local text (as SQLite apps store them)."""
    url = f"sqlite:///{tmp_path / 'dept.db'}"
    execute, dispose = _executor(url)
    execute("CREATE TABLE air_hourly (site_code TEXT, sample_time TEXT, pm25 REAL, aqi INTEGER)")

    def unqualified(sql: str, params: dict | None = None) -> None:
        execute(sql.replace("dept.air_hourly", "air_hourly"), params)

    query = WIDE["query"].replace("dept.air_hourly", "air_hourly")
    yield Department(url, unqualified, {"url": url, **WIDE, "query": query})
    dispose()


@pytest.fixture(params=["postgres", "sqlite"])
def department(request) -> Department:
    return request.getfixturevalue(f"{request.param}_department")


def minutes_ago(minutes: int, now: datetime) -> datetime:
    return now - timedelta(minutes=minutes)


@pytest.mark.postgres
def test_incremental_runs_return_only_new_rows(department, context, validator):
    now = utcnow().replace(second=0, microsecond=0)
    department.insert(
        [
            ("32020001", minutes_ago(40, now), 31.5, 58),
            ("32020002", minutes_ago(40, now), 44.0, 72),
            ("32020001", minutes_ago(30, now), 33.0, None),
            ("99999999", minutes_ago(30, now), 12.0, 30),
        ]
    )
    adapter = SqlAdapter(Options.model_validate(department.options), context)
    first = adapter.fetch(None, now)
    accepted, rejected = validator.validate(first.records)
    assert sorted((r.indicator, r.entity, r.value) for r in accepted) == [
        ("env.aqi", "1188A", 58.0),
        ("env.aqi", "1189A", 72.0),
        ("env.pm25", "1188A", 31.5),
        ("env.pm25", "1188A", 33.0),
        ("env.pm25", "1189A", 44.0),
    ]
    assert sorted((r.field, r.reason) for r in rejected) == [
        ("entity", "unknown station or region '99999999'"),
        ("entity", "unknown station or region '99999999'"),
        ("value", "not a number: 'None'"),
    ]
    assert first.watermark == minutes_ago(30, now).isoformat()

    department.insert(
        [("32020002", minutes_ago(20, now), 50.0, 80), ("32020001", minutes_ago(10, now), 29.0, 55)]
    )
    second = adapter.fetch(first.watermark, now)
    assert sorted((r.entity, r.observed_at, r.value) for r in second.records if r.indicator == "env.aqi") == [
        ("1188A", minutes_ago(10, now), 55),
        ("1189A", minutes_ago(20, now), 80),
    ]
    assert second.watermark == minutes_ago(10, now).isoformat()
    third = adapter.fetch(second.watermark, now)
    assert third.records == [] and third.watermark == second.watermark


@pytest.mark.postgres
def test_naive_local_times_compare_in_the_city_zone(postgres_url, context):
    """A `timestamp without time zone` column of wall-clock time: the session speaks the city's zone,
    so :since (a UTC instant) compares right whatever the server's own time zone."""
    execute, dispose = _executor(postgres_url)
    execute("CREATE TABLE aqi_local (station text, local_time timestamp, aqi integer)")
    now = utcnow().replace(second=0, microsecond=0)
    for minutes in (50, 40, 30):
        wall = minutes_ago(minutes, now).astimezone(ZONE).replace(tzinfo=None)
        execute("INSERT INTO aqi_local VALUES ('1188A', :at, :aqi)", {"at": wall, "aqi": minutes})
    options = {
        "url": postgres_url,
        "query": "SELECT * FROM aqi_local WHERE local_time > :since AND local_time <= :until ORDER BY 2",
        "observed_at_column": "local_time",
        "entity_column": "station",
        "indicator": "env.aqi",
        "value_column": "aqi",
    }
    adapter = SqlAdapter(Options.model_validate(options), context)
    batch = adapter.fetch(minutes_ago(45, now).isoformat(), minutes_ago(35, now))
    assert [(r.observed_at, r.value) for r in batch.records] == [(minutes_ago(40, now), 40)]
    assert batch.watermark == minutes_ago(40, now).isoformat()
    dispose()


@pytest.mark.postgres
def test_postgres_refuses_writes_and_the_check_refuses_them_first(postgres_department, context):
    department = postgres_department
    department.insert([("32020001", utcnow() - timedelta(minutes=5), 30.0, 50)])
    with pytest.raises(ValidationError, match="query"):
        Options.model_validate(
            department.options | {"query": "DELETE FROM dept.air_hourly WHERE sample_time > :since"}
        )
    # A SELECT can still write through a function; the read-only session stops it.
    department.execute("CREATE SEQUENCE dept.counter")
    department.execute(
        "CREATE FUNCTION dept.purge() RETURNS integer LANGUAGE sql AS "
        "'DELETE FROM dept.air_hourly RETURNING 1'"
    )
    for condition in ("nextval('dept.counter') > 0", "dept.purge() = 1"):
        sneaky = WIDE["query"].replace("ORDER BY", f"AND {condition} ORDER BY")
        adapter = SqlAdapter(Options.model_validate(department.options | {"query": sneaky}), context)
        with pytest.raises(DBAPIError, match="read-only transaction"):
            adapter.fetch(None, utcnow())
    engine = create_engine(department.url)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM dept.air_hourly")) == 1
        assert connection.scalar(text("SELECT last_value FROM dept.counter")) == 1
        assert connection.scalar(text("SELECT is_called FROM dept.counter")) is False
    engine.dispose()


@pytest.mark.postgres
def test_a_slow_postgres_query_hits_the_statement_timeout(postgres_department, context):
    slow = WIDE["query"].replace("FROM dept.air_hourly", "FROM dept.air_hourly, pg_sleep(10)")
    options = postgres_department.options | {"query": slow, "timeout": "1s"}
    postgres_department.insert([("32020001", utcnow() - timedelta(minutes=5), 30.0, 50)])
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="longer than 1 s"):
        SqlAdapter(Options.model_validate(options), context).fetch(None, utcnow())
    assert time.monotonic() - started < 5


@pytest.mark.postgres
def test_run_source_end_to_end_into_the_store(ingest, postgres_department, monkeypatch):
    """Configured like a city would (URL from the environment), run by the pipeline twice."""
    monkeypatch.setenv("CITYBRAIN_TEST_DEPT_URL", postgres_department.url)
    options = postgres_department.options | {"url": "${CITYBRAIN_TEST_DEPT_URL}", "first_window": "2h"}
    with ingest.sessions() as session:
        sync_sources(
            session, [*ingest.settings.sources, SourceSettings(id="dept-air", type="sql", options=options)]
        )
        session.commit()
    now = utcnow().replace(second=0, microsecond=0)
    postgres_department.insert(
        [
            ("32020001", minutes_ago(30, now), 31.5, 58),
            ("32020002", minutes_ago(30, now), 44.0, 72),
            ("32020003", minutes_ago(20, now), 12.0, 30),
        ]
    )
    first = run_source(ingest, "dept-air")
    assert (first.status, first.fetched, first.accepted, first.rejected) == ("partial", 6, 4, 2)
    postgres_department.insert([("32020001", minutes_ago(10, now), 35.0, 61)])
    second = run_source(ingest, "dept-air")
    assert (second.status, second.fetched, second.accepted, second.rejected) == ("ok", 2, 2, 0)
    with ingest.sessions() as session:
        stored = session.scalar(select(func.count()).where(Reading.source_id == "dept-air"))
        raws = session.scalars(select(RejectedRecord.raw).where(RejectedRecord.source_id == "dept-air")).all()
        watermark = session.get(Source, "dept-air").watermark
        adapter = ingest.adapter(session.get(Source, "dept-air"))
    assert stored == 6
    assert len(raws) == 2 and all('"site_code": "32020003"' in raw for raw in raws)
    assert datetime.fromisoformat(watermark) == minutes_ago(10, now).astimezone(UTC)
    adapter.close()
