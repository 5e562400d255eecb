"""Benchmark (make bench): a 50 MB CSV export through the `csv` adapter and the whole pipeline.

A department's yearly export can be that large. The figure is the end-to-end time of one run
(read, decode, map, validate, upsert, rules) and the process's peak memory; every valid row must be
stored and every bad one quarantined.
"""

from __future__ import annotations

import resource
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from store.models import Reading, RejectedRecord

pytestmark = pytest.mark.bench
TARGET_BYTES = 50 * 1024 * 1024
POLLUTANTS = ("env.aqi", "env.pm25", "env.pm10", "env.no2", "env.o3")


def write_export(path: Path, stations: list[str], zone) -> tuple[int, int]:
    """A long-layout export of hourly pollutants in GB18030; every 1000th row is broken: (good, bad)."""
    start = datetime.now(zone).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    good = bad = 0
    with path.open("w", encoding="gb18030", newline="") as out:
        out.write("监测时间,站点,指标,数值\n")
        hour = 0
        while out.tell() < TARGET_BYTES:
            at = (start - timedelta(hours=hour)).strftime("%Y/%m/%d %H:%M")
            for index, station in enumerate(stations):
                for position, key in enumerate(POLLUTANTS):
                    if (good + bad) % 1000 == 999:
                        out.write(f"{at},{station},{key},暂无\n")
                        bad += 1
                    else:
                        value = (hour * 7 + index * 13 + position * 5) % 150 + 10
                        out.write(f"{at},{station},{key},{value}\n")
                        good += 1
            hour += 1
    return good, bad


def test_a_50_mb_export(tmp_path):
    from bench.demo import demo_context
    from core.settings import SourceSettings
    from ingest.pipeline import run_source
    from store.sync import sync_sources

    ctx = demo_context(f"sqlite:///{tmp_path / 'bench.db'}")
    sessions = ctx.sessions
    stations = [s.code for s in ctx.city.stations if s.kind == "air"]
    export = tmp_path / "aqi_export.csv"
    good, bad = write_export(export, stations, ctx.settings.tz)
    source = SourceSettings(
        id="export",
        type="csv",
        every=3600,
        options={
            "path": str(export),
            "observed_at_column": "监测时间",
            "entity_column": "站点",
            "indicator_column": "指标",
            "value_column": "数值",
        },
    )
    ctx.settings.sources.append(source)
    with sessions() as session:
        sync_sources(session, ctx.settings.sources)
        session.commit()

    started = time.perf_counter()
    result = run_source(ctx, "export", timeout=3600)
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    with sessions() as session:
        stored = session.scalar(
            select(func.count()).select_from(Reading).where(Reading.source_id == "export")
        )
        quarantined = session.scalar(select(func.count()).select_from(RejectedRecord))
    size_mb = export.stat().st_size / 1024 / 1024
    print(
        f"\n50 MB export: {size_mb:.1f} MB, {good + bad:,} rows ({bad:,} broken), one run: {result.status} "
        f"in {elapsed:.1f} s = {(good + bad) / elapsed:,.0f} rows/s, {size_mb / elapsed:.2f} MB/s; "
        f"peak memory {peak_mb:,.0f} MB; stored {stored:,}, quarantined {quarantined:,}"
    )
    assert result.status == "partial", result.error
    assert stored == result.accepted == good
    assert quarantined == result.rejected == bad
