"""What the benchmarks on bench/load_readings.py's database measure with: the timer, and the bare
SQL (sqlite3 driver alone) that reads the same rollup rows the pages' API reads, as the floor the
API's figures are set against."""

from __future__ import annotations

import os
import sqlite3
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from store.models import SQLITE_TIME

RUNS = int(os.environ.get("BENCH_RUNS", 30))
ROLLUP_ROWS = """
SELECT series_id, bucket, n, total, low, high FROM readings_hourly
WHERE series_id IN ({ids}) AND bucket >= ? AND bucket < ?
"""
ROLLUP_SUMS = """
SELECT series_id, sum(total), sum(n) FROM readings_hourly
WHERE series_id IN ({ids}) AND bucket >= ? AND bucket < ? GROUP BY series_id
"""


def timed(call: Callable[[], object], runs: int = RUNS) -> tuple[float, float, object]:
    """p50 and p95 in milliseconds over `runs` calls after one warm-up, and the last result."""
    result = call()
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - started)
    cuts = statistics.quantiles(seconds, n=20, method="inclusive")
    return statistics.median(seconds) * 1000, cuts[18] * 1000, result


def sqlite_time(at: datetime) -> str:
    """An aware time as SQLite holds it: raw SQL compares and inserts times as this text."""
    return at.astimezone(UTC).strftime(SQLITE_TIME)


def series_ids_sql(connection: sqlite3.Connection, keys: list[str]) -> str:
    """The ids of every series of these indicators, as the list an `IN ({ids})` takes."""
    marks = ", ".join("?" * len(keys))
    ids = connection.execute(f"SELECT id FROM series WHERE indicator_key IN ({marks})", keys).fetchall()
    return ", ".join(str(i) for (i,) in ids)
