"""The sql adapter's configuration and row mapping: read-only check, env references, columns, times.

Row mapping runs against real SQLite files; PostgreSQL is in tests/integration/test_sql_adapter.py.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from core.city import load_city
from datasources.base import AdapterContext
from datasources.fields import expand_env
from datasources.registry import option_problems
from datasources.sql import Options, SqlAdapter, check_read_only
from indicators.catalog import load_catalog
from indicators.validation import Validator

REPO = Path(__file__).resolve().parents[2]
ZONE = ZoneInfo("Asia/Shanghai")
QUERY = "SELECT station, ts, aqi FROM air WHERE ts > :since ORDER BY ts"
LONG = {"observed_at_column": "ts", "entity_column": "station", "indicator": "env.aqi", "value_column": "aqi"}


@pytest.fixture(scope="module")
def context() -> AdapterContext:
    city = load_city(REPO / "assets/geo/wuxi_districts.geojson", REPO / "config/cities/wuxi/stations.csv")
    return AdapterContext(city, load_catalog(), ZONE, "dept")


@pytest.fixture
def validator(context) -> Validator:
    return Validator(context.catalog, context.city.entity_codes(), ZONE)


def problems(**options: object) -> list[str]:
    return option_problems("sql", options, "sources.3 (dept)")


def air_db(tmp_path: Path, rows: list[tuple], columns: str = "station TEXT, ts TEXT, aqi REAL") -> str:
    """A department's SQLite file with one table `air`; its URL."""
    path = tmp_path / "env.db"
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE air ({columns})")
        if rows:
            db.executemany(f"INSERT INTO air VALUES ({', '.join('?' * len(rows[0]))})", rows)
    return f"sqlite:///{path}"


def local(minutes_ago: int) -> str:
    """A recent time in the city's zone, as a department's SQLite text column holds it."""
    moment = datetime.now(ZONE) - timedelta(minutes=minutes_ago)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


# --- the read-only check ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        QUERY,
        "  select * from air where ts > :since;  ",
        "WITH recent AS (SELECT * FROM air WHERE ts > :since) SELECT * FROM recent",
        "(SELECT a FROM x WHERE ts > :since) UNION (SELECT a FROM y WHERE ts > :since)",
        "SELECT updated_at, deleted, \"update\", 'DELETE; DROP' AS note FROM t WHERE ts > :since",
        "SELECT $body$; DELETE FROM t$body$ AS s -- ; DROP TABLE t\nFROM t /* ; INSERT */",
        "SELECT 站点, 时间 FROM 空气 WHERE 时间 > :since",
    ],
)
def test_read_only_statements_pass(sql):
    check_read_only(sql)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("DELETE FROM air", "not DELETE"),
        ("UPDATE air SET aqi = 0", "not UPDATE"),
        ("DROP TABLE air", "not DROP"),
        ("PRAGMA query_only = OFF", "not PRAGMA"),
        ("SELECT 1; DELETE FROM air", "single statement"),
        ("SELECT 1;; SELECT 2", "single statement"),
        ("WITH gone AS (DELETE FROM air RETURNING *) SELECT * FROM gone", "must not contain DELETE"),
        ("SELECT * INTO copy FROM air", "must not contain INTO"),
        ("SELECT * FROM air FOR UPDATE", "must not contain UPDATE"),
        ("SELECT E'\\'; DELETE FROM air; --'", "single statement"),
        ("SELECT 1 /* unterminated; DELETE FROM air", "single statement"),
        ("  -- only a comment\n", "empty"),
    ],
)
def test_writes_and_several_statements_are_refused(sql, reason):
    with pytest.raises(ValueError, match=reason):
        check_read_only(sql)


@given(st.text(alphabet=st.characters(exclude_characters="\\\x00")))
def test_any_string_literal_is_just_data(content):
    literal = "'" + content.replace("'", "''") + "'"
    statement = f"SELECT {literal} AS note FROM air WHERE ts > :since"
    check_read_only(statement)
    with pytest.raises(ValueError):
        check_read_only(f"{statement}; DELETE FROM air")


# --- options ------------------------------------------------------------------------------------


def test_env_references_are_expanded():
    environ = {"DB_USER": "ro", "DB_PASSWORD": "s3cret"}
    assert expand_env("postgresql://${DB_USER}:${DB_PASSWORD}@h/db", environ) == "postgresql://ro:s3cret@h/db"
    assert expand_env("sqlite:///plain.db", environ) == "sqlite:///plain.db"
    with pytest.raises(ValueError, match="environment variable DB_HOST is not set"):
        expand_env("postgresql://${DB_USER}@${DB_HOST}/db", environ)


def test_a_missing_env_variable_is_a_config_error_naming_the_key(monkeypatch):
    monkeypatch.delenv("DEPT_DB_URL", raising=False)
    found = problems(url="${DEPT_DB_URL}", query=QUERY, **LONG)
    assert found == [
        "sources.3 (dept).options.url: environment variable DEPT_DB_URL is not set (got '${DEPT_DB_URL}')"
    ]
    monkeypatch.setenv("DEPT_DB_URL", "postgresql+psycopg://ro:pw@10.0.0.5/env")
    assert problems(url="${DEPT_DB_URL}", query=QUERY, **LONG) == []


def test_the_password_stays_out_of_the_options_repr(monkeypatch):
    monkeypatch.setenv("DEPT_DB_PASSWORD", "s3cret")
    options = Options.model_validate(
        {"url": "postgresql://ro:${DEPT_DB_PASSWORD}@h/env", "query": QUERY, **LONG}
    )
    assert options.url == "postgresql://ro:s3cret@h/env"
    assert "s3cret" not in repr(options)


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        ({"query": "DELETE FROM air WHERE ts > :since"}, "query", "read-only SELECT or WITH"),
        ({"query": "SELECT * FROM air"}, "query", ":since"),
        ({"query": "SELECT * FROM air WHERE ts > :since AND site = :site"}, "query", ":site"),
        ({"url": "not a url"}, "url", "SQLAlchemy URL"),
        ({"url": "nosuchdb://h/x"}, "url", "SQLAlchemy URL"),
        ({"timezone": "Mars/Olympus"}, "timezone", "time zone"),
        ({"param_format": "unix"}, "param_format", "strftime"),
        ({"timeout": "soon"}, "timeout", "duration"),
        ({"max_rows": 0}, "max_rows", "greater than or equal to 1"),
        ({"entity": "1188A"}, "", "exactly one of entity_column or entity"),
        ({"indicator_column": "kind"}, "", "exactly one of indicator_column or indicator"),
        ({"values": {"pm25": "env.pm25"}}, "", "values (wide rows) excludes"),
        ({"value_column": None}, "", "value_column"),
        ({"colour": "red"}, "colour", "Extra inputs"),
    ],
)
def test_config_errors_name_the_option(changes, key, message):
    options = {"url": "sqlite:///dept.db", "query": QUERY, **LONG} | changes
    found = problems(**{k: v for k, v in options.items() if v is not None})
    assert len(found) == 1, found
    assert found[0].startswith(f"sources.3 (dept).options.{key}".rstrip(".")) and message in found[0], found


# --- rows to records ----------------------------------------------------------------------------


def test_long_rows_map_to_records_and_bad_cells_go_to_validation(tmp_path, context, validator):
    url = air_db(
        tmp_path,
        [
            ("S-01", local(30), "AQI", 61.0),
            ("S-02", local(30), "PM2.5", 35.5),
            ("S-01", local(20), "AQI", None),
            ("S-99", local(20), "AQI", 50.0),
            ("S-01", "yesterday", "AQI", 52.0),
            ("S-01", local(20), "SO2", 9.0),
        ],
        "station TEXT, ts TEXT, kind TEXT, val REAL",
    )
    adapter = SqlAdapter(
        Options.model_validate(
            {
                "url": url,
                "query": "SELECT station, ts, kind, val FROM air WHERE ts > :since ORDER BY ts",
                "observed_at_column": "TS",
                "entity_column": "station",
                "indicator_column": "kind",
                "value_column": "val",
                "entity_map": {"S-01": "1188A", "S-02": "1189A"},
                "indicator_map": {"AQI": "env.aqi", "PM2.5": "env.pm25"},
            }
        ),
        context,
    )
    batch = adapter.fetch(None, datetime.now(UTC))
    accepted, rejected = validator.validate(batch.records)
    assert sorted((r.indicator, r.entity, r.value) for r in accepted) == [
        ("env.aqi", "1188A", 61.0),
        ("env.pm25", "1189A", 35.5),
    ]
    reasons = sorted((r.field, r.reason) for r in rejected)
    assert reasons == [
        ("entity", "unknown station or region 'S-99'"),
        ("indicator", "unknown indicator 'SO2'"),
        ("observed_at", "unreadable timestamp 'yesterday'"),
        ("value", "not a number: 'None'"),
    ]
    assert all('"station": "S-' in r.raw for r in rejected)
    newest = max(r.observed_at for r in batch.records if isinstance(r.observed_at, datetime))
    assert batch.watermark == newest.isoformat() and newest > max(r.observed_at for r in accepted)


def test_wide_rows_with_constants_and_skipped_nulls(tmp_path, context, validator):
    url = air_db(
        tmp_path,
        [(int((datetime.now(UTC) - timedelta(minutes=m)).timestamp()), 30.0 + m, None) for m in (15, 10)],
        "ts INTEGER, pm25 REAL, aqi INTEGER",
    )
    options = {
        "url": url,
        "query": "SELECT * FROM air WHERE ts > :since AND ts <= :until ORDER BY ts",
        "observed_at_column": "ts",
        "entity": "1190A",
        "values": {"pm25": "env.pm25", "aqi": "env.aqi"},
        "param_format": "epoch",
        "skip_nulls": True,
    }
    batch = SqlAdapter(Options.model_validate(options), context).fetch(None, datetime.now(UTC))
    accepted, rejected = validator.validate(batch.records)
    assert sorted(r.value for r in accepted) == [40.0, 45.0] and rejected == []
    assert {(r.indicator, r.entity) for r in accepted} == {("env.pm25", "1190A")}
    unskipped = SqlAdapter(Options.model_validate(options | {"skip_nulls": False}), context)
    _, rejected = validator.validate(unskipped.fetch(None, datetime.now(UTC)).records)
    assert [r.field for r in rejected] == ["value", "value"]


def test_first_run_window_start_and_until(tmp_path, context):
    url = air_db(tmp_path, [("1188A", f"2026-03-0{day} 08:00:00", 50.0 + day) for day in range(1, 8)])
    until = datetime(2026, 3, 5, 12, tzinfo=ZONE)

    def days(**options: object) -> list[int]:
        adapter = SqlAdapter(Options.model_validate({"url": url, "query": QUERY, **LONG} | options), context)
        batch = adapter.fetch(None, until)
        return [int(r.value) - 50 for r in batch.records]

    assert days() == [5, 6, 7]  # the last day before `until`, and the rows after it (no :until)
    assert days(first_window="3d") == [3, 4, 5, 6, 7]
    assert days(start="2026-03-02") == [2, 3, 4, 5, 6, 7]
    bounded = QUERY.replace("ORDER BY", "AND ts <= :until ORDER BY")
    assert days(start="2026-03-02", query=bounded) == [2, 3, 4, 5]


def test_the_watermark_never_passes_until(tmp_path, context):
    url = air_db(tmp_path, [("1188A", "2026-03-01 08:00:00", 50.0), ("1188A", "2026-09-01 08:00:00", 60.0)])
    adapter = SqlAdapter(Options.model_validate({"url": url, "query": QUERY, **LONG}), context)
    until = datetime(2026, 3, 2, tzinfo=UTC)
    batch = adapter.fetch("2026-02-28T00:00:00+00:00", until)
    assert len(batch.records) == 2
    assert batch.watermark == datetime(2026, 3, 1, 0, tzinfo=UTC).isoformat()


def test_max_rows_cuts_before_a_time_it_could_not_finish(tmp_path, context):
    rows = [("1188A", "2026-03-01 08:00:00", 1.0), ("1189A", "2026-03-01 08:00:00", 2.0)]
    rows += [("1188A", "2026-03-01 08:05:00", 3.0), ("1189A", "2026-03-01 08:05:00", 4.0)]
    rows += [("1190A", "2026-03-01 08:05:00", 5.0), ("1188A", "2026-03-01 08:10:00", 6.0)]
    url = air_db(tmp_path, rows)
    adapter = SqlAdapter(Options.model_validate({"url": url, "query": QUERY, **LONG, "max_rows": 4}), context)
    until = datetime(2026, 3, 2, tzinfo=UTC)
    seen, since = [], "2026-02-28T00:00:00+00:00"
    for _ in range(3):
        batch = adapter.fetch(since, until)
        seen.append(sorted(r.value for r in batch.records))
        since = batch.watermark
    assert seen == [[1.0, 2.0], [3.0, 4.0, 5.0, 6.0], []]
    crowded = SqlAdapter(Options.model_validate({"url": url, "query": QUERY, **LONG, "max_rows": 2}), context)
    with pytest.raises(RuntimeError, match="max_rows: more than 2 rows observed at"):
        crowded.fetch("2026-03-01T00:04:00+00:00", until)


def test_a_missing_column_or_file_fails_the_fetch_naming_it(tmp_path, context):
    url = air_db(tmp_path, [])
    options = {"url": url, "query": QUERY, **LONG, "value_column": "pm25"}
    with pytest.raises(
        LookupError, match=r"value_column: column 'pm25' is not in the query's result \(columns: "
    ):
        SqlAdapter(Options.model_validate(options), context).fetch(None, datetime.now(UTC))
    gone = {"url": f"sqlite:///{tmp_path / 'gone.db'}", "query": QUERY, **LONG}
    with pytest.raises(FileNotFoundError, match="gone.db"):
        SqlAdapter(Options.model_validate(gone), context).fetch(None, datetime.now(UTC))
    assert not (tmp_path / "gone.db").exists()


@pytest.mark.parametrize(
    ("param_format", "expected"),
    [
        ("datetime", datetime(2026, 3, 1, 0, 30, tzinfo=UTC)),
        ("naive", datetime(2026, 3, 1, 8, 30)),
        ("epoch", datetime(2026, 3, 1, 0, 30, tzinfo=UTC).timestamp()),
        ("epoch_ms", int(datetime(2026, 3, 1, 0, 30, tzinfo=UTC).timestamp()) * 1000),
        ("%Y%m%d%H%M", "202603010830"),
        ("auto", "2026-03-01 08:30:00"),
    ],
)
def test_since_is_bound_as_the_column_compares_it(tmp_path, context, param_format, expected):
    url = air_db(tmp_path, [])
    options = Options.model_validate({"url": url, "query": QUERY, **LONG, "param_format": param_format})
    adapter = SqlAdapter(options, context)
    assert adapter._param(datetime(2026, 3, 1, 0, 30, tzinfo=UTC)) == expected


def test_a_write_that_slips_past_the_check_is_refused_by_sqlite(tmp_path, context):
    url = air_db(tmp_path, [("1188A", local(5), 50.0)])
    unchecked = Options.model_construct(
        url=url, query="DELETE FROM air WHERE ts > :since RETURNING station, ts, aqi", **LONG
    )
    with pytest.raises(Exception, match="readonly|read-only|query_only"):
        SqlAdapter(unchecked, context).fetch(None, datetime.now(UTC))
    with sqlite3.connect(tmp_path / "env.db") as db:
        assert db.execute("SELECT count(*) FROM air").fetchone() == (1,)


def test_a_slow_sqlite_query_times_out(tmp_path, context):
    url = air_db(tmp_path, [])
    slow = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
        "SELECT '1188A' AS station, :since AS ts, 1 AS aqi FROM n WHERE i > 1000000000"
    )
    adapter = SqlAdapter(
        Options.model_validate({"url": url, "query": slow, **LONG, "timeout": "0.5s"}), context
    )
    with pytest.raises(TimeoutError, match="timeout: the query ran longer than 0.5 s"):
        adapter.fetch(None, datetime.now(UTC))


def test_options_reject_a_bad_start():
    with pytest.raises(ValidationError, match="start"):
        Options.model_validate({"url": "sqlite:///x.db", "query": QUERY, **LONG, "start": "soon"})
