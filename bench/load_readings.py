"""Load N readings of the demo city into a migrated SQLite file, fast, for benchmarks at scale.

    .venv/bin/python bench/load_readings.py --readings 10000000 --db var/bench10m.db

Every series the simulator produces for the demo city (glitches off, station outages kept: real
gaps) at its 5-minute cadence, as many days back as needed, day by day. The readings go in with
the driver alone (sqlite3 `executemany`, one transaction per day, rows in key order), around the
pipeline, so no rules run; then the rollups are rebuilt from them (`citybrain rollups rebuild`
logic) and each series' latest value is set. The file records how many readings it holds
(app_state `bench_readings`), so `bench_database` reuses a complete one and rebuilds anything else.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: the repository's packages
    sys.path.insert(0, str(REPO))

from sqlalchemy import select, text  # noqa: E402

from app import Deployment, open_store  # noqa: E402
from bench.demo import demo_deployment  # noqa: E402
from bench.scale import sqlite_time  # noqa: E402
from core.timeutil import floor_time  # noqa: E402
from datasources.base import AdapterContext  # noqa: E402
from datasources.registry import build  # noqa: E402
from store.models import AppState  # noqa: E402
from store.readings import series_ids  # noqa: E402
from store.rollups import rebuild_rollups  # noqa: E402

MARK = "bench_readings"
END_MARK = "bench_end"
INSERT = (
    "INSERT INTO readings (series_id, observed_at, value, quality, source_id, ingested_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
LATEST = """
UPDATE series SET
  last_observed_at = (SELECT max(observed_at) FROM readings WHERE series_id = series.id),
  last_value = (SELECT value FROM readings WHERE series_id = series.id ORDER BY observed_at DESC LIMIT 1)
"""


def default_path(readings: int) -> Path:
    """var/bench10m.db for 10,000,000 readings: one file per size, so sizes never overwrite each other."""
    size = f"{readings // 1_000_000}m" if readings % 1_000_000 == 0 else str(readings)
    return REPO / "var" / f"bench{size}.db"


def bench_database(readings: int, path: Path | None = None, say: Callable[[str], None] = print) -> Path:
    """The path of a SQLite file holding `readings` demo readings and their rollups: the file
    already there if it is complete (a previous load of the same size), else built now."""
    path = path or default_path(readings)
    if path.exists() and _marked(path) == readings:
        return path
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    load(readings, path, say)
    return path


def data_end(path: Path) -> datetime:
    """The time the loaded readings end at (the benchmarks' "now")."""
    with sqlite3.connect(path) as connection:
        (value,) = connection.execute("SELECT value FROM app_state WHERE key = ?", (END_MARK,)).fetchone()
    return datetime.fromisoformat(value)


def load(readings: int, path: Path, say: Callable[[str], None] = print) -> None:
    deployment = bench_deployment(path)
    engine, sessions = open_store(deployment)
    simulator = build(
        "simulator",
        {"glitch_rate": 0},
        AdapterContext(deployment.city, deployment.catalog, deployment.settings.tz, "bench"),
    )
    region_of = {s.code: s.region_code for s in deployment.city.stations}
    region_of.update({r.code: r.code for r in deployment.city.regions})
    with sessions() as session:
        ids = series_ids(session, ((s.indicator.key, s.entity) for s in simulator.series), region_of)
        session.commit()
    per_day = len(simulator.series) * round(timedelta(days=1) / timedelta(seconds=simulator.options.step))
    end = floor_time(datetime.now(UTC), timedelta(minutes=5))
    say(
        f"{len(ids)} series, about {per_day:,} readings a day, "
        f"loaded day by day back from {end:%Y-%m-%d %H:%M} UTC"
    )
    engine.dispose()

    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA cache_size=-524288")
    ingested = sqlite_time(datetime.now(UTC))
    loaded, generating, inserting = 0, 0.0, 0.0
    day = end
    while loaded < readings:
        started = time.perf_counter()
        batch = simulator.fetch((day - timedelta(days=1)).isoformat(), day)
        texts: dict[datetime, str] = {}
        rows = []
        for record in batch.records:
            at = texts.get(record.observed_at)
            if at is None:
                at = texts[record.observed_at] = sqlite_time(record.observed_at)
            rows.append((ids[(record.indicator, record.entity)], at, record.value, "ok", "bench", ingested))
        if loaded + len(rows) > readings:  # the oldest day: only its latest readings
            rows.sort(key=itemgetter(1), reverse=True)
            del rows[readings - loaded :]
        rows.sort()
        generated = time.perf_counter()
        connection.execute("BEGIN")
        connection.executemany(INSERT, rows)
        connection.execute("COMMIT")
        inserting += time.perf_counter() - generated
        generating += generated - started
        loaded += len(rows)
        day -= timedelta(days=1)
        say(
            f"  {day:%Y-%m-%d}: {loaded:>12,} readings ({loaded / readings:6.1%}); "
            f"insert {loaded / inserting:,.0f} rows/s, simulator {loaded / generating:,.0f} rows/s"
        )
    say(
        f"loaded {loaded:,} readings: insert {inserting:.0f} s ({loaded / inserting:,.0f} rows/s), "
        f"simulator {generating:.0f} s"
    )
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    _roll_up(path, deployment, say)
    _mark(path, loaded, end)


def bench_deployment(path: Path) -> Deployment:
    """The demo deployment on the benchmark file."""
    return demo_deployment(f"sqlite:///{path.resolve()}")


def _roll_up(path: Path, deployment: Deployment, say: Callable[[str], None]) -> None:
    from store.db import make_engine

    engine = make_engine(f"sqlite:///{path.resolve()}")
    started = time.perf_counter()

    def progress(done: int, total: int, rolled: int) -> None:
        rate = rolled / (time.perf_counter() - started)
        say(f"  rollups: {done}/{total} series, {rolled:,} readings ({rate:,.0f} readings/s)")

    with engine.connect() as connection:
        rolled = rebuild_rollups(connection, deployment.settings.tz, progress)
        with connection.begin():
            connection.execute(text(LATEST))
    say(f"rollups rebuilt from {rolled:,} readings in {time.perf_counter() - started:.0f} s")
    engine.dispose()


def _mark(path: Path, readings: int, end: datetime) -> None:
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT OR REPLACE INTO app_state (key, value) VALUES (?, ?)",
            [(MARK, str(readings)), (END_MARK, end.isoformat())],
        )


def _marked(path: Path) -> int | None:
    from store.db import make_engine

    engine = make_engine(f"sqlite:///{path.resolve()}")
    try:
        with engine.connect() as connection:
            value = connection.execute(select(AppState.value).where(AppState.key == MARK)).scalar()
    except Exception:  # noqa: BLE001 - an unreadable or half-built file is simply rebuilt
        value = None
    finally:
        engine.dispose()
    return int(value) if value else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path, help="default: var/bench<size>.db, e.g. var/bench10m.db")
    parser.add_argument("--force", action="store_true", help="rebuild even if the file is complete")
    args = parser.parse_args(argv)
    path = args.db or default_path(args.readings)
    if args.force:
        path.unlink(missing_ok=True)
    started = time.perf_counter()
    bench_database(args.readings, path)
    print(f"{path}: ready in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
