"""Benchmark (make bench): the history read API on 10 million readings (SQLite), against bare SQL.

The database is the demo city loaded by bench/load_readings.py (built once, reused while complete;
BENCH_TOTAL sets its size). Each case runs ~30 times after one warm-up and reports p50 / p95:

- the API call the pages make (store/history.py, through SQLAlchemy),
- in the same run, with the sqlite3 driver alone, the raw-readings GROUP BY that the rollup
  replaces (the same numbers computed from readings), and a plain SELECT of the rollup rows the
  API reads (the floor: what reading the rows costs with nothing on top).

Cases: a 30-day city-wide history, a 30-day district breakdown, 24-hour sparklines of the 15
wall-screen indicators. The API's results are checked against the raw GROUP BY.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.load_readings import bench_database, bench_deployment, data_end
from bench.scale import ROLLUP_ROWS, ROLLUP_SUMS, RUNS, series_ids_sql, sqlite_time, timed
from core.timeutil import floor_time
from store.db import make_engine
from store.history import breakdown, indicator_history, sparklines

pytestmark = pytest.mark.bench
TOTAL = int(os.environ.get("BENCH_TOTAL", 10_000_000))
KEY = "env.aqi"  # 13 air stations, mean

RAW_HISTORY = """
SELECT hour, avg(mean), avg(low), avg(high), sum(n) FROM (
  SELECT strftime('%Y-%m-%d %H:00:00', observed_at) AS hour, avg(value) AS mean, min(value) AS low,
         max(value) AS high, count(*) AS n
  FROM readings WHERE series_id IN ({ids}) AND observed_at >= ? AND observed_at < ?
  GROUP BY series_id, hour)
GROUP BY hour ORDER BY hour
"""
RAW_BREAKDOWN = """
SELECT s.region_code, avg(m.mean) FROM (
  SELECT series_id, avg(value) AS mean FROM readings
  WHERE series_id IN ({ids}) AND observed_at >= ? AND observed_at < ? GROUP BY series_id) AS m
JOIN series AS s ON s.id = m.series_id GROUP BY s.region_code
"""
RAW_SPARKLINES = """
SELECT series_id, strftime('%Y-%m-%d %H:00:00', observed_at) AS hour, avg(value), count(*)
FROM readings WHERE series_id IN ({ids}) AND observed_at >= ? AND observed_at < ?
GROUP BY series_id, hour
"""


@pytest.fixture(scope="module")
def scale_db() -> Path:
    """The benchmark database (the lead's page benchmarks use the same function)."""
    return bench_database(TOTAL)


def test_history_api_at_scale(scale_db):
    end = floor_time(data_end(scale_db), timedelta(hours=1))  # whole hours: raw SQL sees the same data
    start = end - timedelta(days=30)
    keys = bench_deployment(scale_db).settings.screen.kpis
    engine = make_engine(f"sqlite:///{scale_db}")
    raw = sqlite3.connect(scale_db)
    readings = raw.execute("SELECT count(*) FROM readings").fetchone()[0]
    aqi_ids, kpi_ids = series_ids_sql(raw, [KEY]), series_ids_sql(raw, keys)
    month = (sqlite_time(start), sqlite_time(end))
    day = (sqlite_time(end - timedelta(hours=24)), sqlite_time(end))
    rows = []

    def case(name, api, raw_sql, rollup_sql, params):
        api_p50, api_p95, found = timed(api)
        raw_p50, raw_p95, raw_found = timed(lambda: raw.execute(raw_sql, params).fetchall())
        floor_p50, floor_p95, floor_rows = timed(lambda: raw.execute(rollup_sql, params).fetchall())
        rows.append((name, api_p50, api_p95, raw_p50, raw_p95, floor_p50, floor_p95, len(floor_rows)))
        return found, raw_found

    history, raw_history = case(
        f"history 30 d, {KEY} city-wide",
        lambda: indicator_history(engine, KEY, start, end),
        RAW_HISTORY.format(ids=aqi_ids),
        ROLLUP_ROWS.format(ids=aqi_ids),
        month,
    )
    by_district, raw_districts = case(
        f"breakdown 30 d, {KEY} by district",
        lambda: breakdown(engine, KEY, start, end),
        RAW_BREAKDOWN.format(ids=aqi_ids),
        ROLLUP_SUMS.format(ids=aqi_ids),
        month,
    )
    lines, _ = case(
        f"sparklines 24 h, {len(keys)} keys",
        lambda: sparklines(engine, keys, end),
        RAW_SPARKLINES.format(ids=kpi_ids),
        ROLLUP_ROWS.format(ids=kpi_ids),
        day,
    )
    raw.close()
    engine.dispose()

    print(f"\nhistory read API on SQLite, {readings:,} readings, p50 / p95 in ms over {RUNS} runs")
    print(f"{'case':38} {'API':>17} {'raw GROUP BY':>17} {'rollup SELECT':>17} {'rows':>6}")
    for name, *figures, count in rows:
        cells = [f"{figures[i]:8.1f} /{figures[i + 1]:7.1f}" for i in (0, 2, 4)]
        print(f"{name:38} {cells[0]:>17} {cells[1]:>17} {cells[2]:>17} {count:>6}")

    by_hour = {datetime.fromisoformat(hour).replace(tzinfo=UTC): value for hour, value, *_ in raw_history}
    assert [b.at for b in history] == sorted(by_hour) and len(history) <= 720  # 720 once 30 days are loaded
    assert [b.value for b in history] == pytest.approx([by_hour[b.at] for b in history])
    assert by_district == pytest.approx(dict(raw_districts))
    assert set(lines) == set(keys) and all(len(values) == 24 for values in lines.values())
