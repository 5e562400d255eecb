"""Benchmark (make bench): the pages' server-side callbacks on 10 million readings (SQLite).

Issue 5's targets: the `/screen` refresh callback p95 <= 100 ms, <= 20 ms on a cache hit; the
30-day `/indicators/<key>` callback p95 <= 300 ms. Each callback is posted to the real Dash app
(Flask test client, the same JSON the browser sends), so the figure includes the guard, the view
build, the layout and the JSON encoding. "Miss" clears the cache before every call; "hit" reuses
it. Next to them, in the same run, the bare SQL for the same data with the sqlite3 driver alone:
what reading the rows costs with nothing on top.

The database is bench/load_readings.py's (built once, reused; BENCH_TOTAL sets its size).
"""

from __future__ import annotations

import os
import sqlite3
from datetime import timedelta

import pytest

from bench.load_readings import bench_database, bench_deployment, data_end
from bench.scale import ROLLUP_ROWS, ROLLUP_SUMS, series_ids_sql, sqlite_time, timed
from core.timeutil import utcnow
from tests.dash_requests import callback_body, router

pytestmark = pytest.mark.bench
TOTAL = int(os.environ.get("BENCH_TOTAL", 10_000_000))
DETAIL_KEY = "env.aqi"

SCREEN_SQL = (
    "SELECT indicator_key, entity, last_value, last_observed_at, last_severity FROM series",
    "SELECT a.*, s.indicator_key, s.entity FROM alerts AS a JOIN series AS s ON s.id = a.series_id "
    "WHERE a.state IN ('active', 'acknowledged') ORDER BY a.severity DESC, a.opened_at DESC",
    "SELECT source_id, max(id) FROM source_runs GROUP BY source_id",
)


@pytest.fixture(scope="module")
def scale_app():
    """The demo deployment's Dash app on the benchmark database, the database's path, the deployment."""
    from store.db import make_engine
    from web.app_factory import create_dash

    path = bench_database(TOTAL)
    lag = utcnow() - data_end(path)
    if lag > timedelta(hours=6):
        pytest.skip(f"{path} ends {lag} ago: the pages show the last 24 h; delete it to rebuild it")
    deployment = bench_deployment(path)
    engine = make_engine(deployment.settings.database.url)
    app = create_dash(deployment.settings, engine, deployment.city, deployment.catalog, "bench")
    yield app, path, deployment
    engine.dispose()


def post(client, body: dict) -> int:
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.data[:300]
    return len(response.data)


def test_page_callbacks_at_scale(scale_app):
    app, path, deployment = scale_app
    client = app.server.test_client()
    cache = next(iter(app.server.extensions["cache"].values()))
    screen = callback_body(
        app,
        "screen-state.data",
        {
            "screen-tick.n_intervals": 1,
            "screen-map-key.data": deployment.settings.screen.choropleth,
            "ui-lang.data": "zh-CN",
        },
    )
    detail = router(f"/indicators/{DETAIL_KEY}", "?range=30d")

    def miss(body: dict):
        def call() -> int:
            cache.clear()
            return post(client, body)

        return call

    rows = []
    for name, body in (("/screen refresh", screen), (f"/indicators/{DETAIL_KEY}?range=30d", detail)):
        miss_p50, miss_p95, size = timed(miss(body))
        hit_p50, hit_p95, _ = timed(lambda b=body: post(client, b))
        rows.append((name, miss_p50, miss_p95, hit_p50, hit_p95, size))

    raw = sqlite3.connect(path)
    end = data_end(path)
    kpis = deployment.settings.screen.kpis
    aqi_ids, kpi_ids = series_ids_sql(raw, [DETAIL_KEY]), series_ids_sql(raw, kpis)
    day = (sqlite_time(end - timedelta(hours=24)), sqlite_time(end))
    month = (sqlite_time(end - timedelta(days=30)), sqlite_time(end))

    def screen_sql() -> None:
        for sql in SCREEN_SQL:
            raw.execute(sql).fetchall()
        raw.execute(ROLLUP_ROWS.format(ids=kpi_ids), day).fetchall()

    def detail_sql() -> None:
        raw.execute(ROLLUP_ROWS.format(ids=aqi_ids), month).fetchall()
        raw.execute(ROLLUP_SUMS.format(ids=aqi_ids), month).fetchall()

    bare = [timed(screen_sql)[:2], timed(detail_sql)[:2]]
    readings = raw.execute("SELECT count(*) FROM readings").fetchone()[0]
    raw.close()

    print(f"\npage callbacks on SQLite, {readings:,} readings, p50 / p95 in ms (Flask test client)")
    print(f"{'callback':<34}{'miss':>16}{'hit':>16}{'bare SQL':>16}{'reply':>10}")
    for (name, m50, m95, h50, h95, size), (b50, b95) in zip(rows, bare, strict=True):
        print(
            f"{name:<34}{m50:>7.1f} / {m95:<6.1f}{h50:>7.1f} / {h95:<6.1f}{b50:>7.1f} / {b95:<6.1f}"
            f"{size / 1024:>7.0f} KB"
        )
    assert all(size > 1000 for *_, size in rows), "a callback answered with nothing"
