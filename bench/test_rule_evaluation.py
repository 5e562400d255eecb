"""Benchmark (make bench): evaluate the warning rules of 10,000 series after one batch.

Each series has 2 h of 5-minute history and receives one new reading; the figure is the whole
incremental evaluation (read the windows, run every rule, write the transitions). Baseline, in the
same run: just reading the same rows through the same read (`store.windows.columns`), with the
cycle collector paused as the evaluation runs, so both are measured alike. Target: under 0.5 s on
the 2-core machine. Other work on the machine slows both: compare with the baseline of the same
run, and see the CPU time this process spent.
"""

from __future__ import annotations

import os
import random
import time
from datetime import timedelta
from statistics import median

import pytest
from sqlalchemy import func, select

from core.records import ValidReading
from core.timeutil import MICROSECOND, floor_time, micros_since_epoch, utcnow
from store.models import Alert, Reading
from store.readings import upsert_readings
from store.windows import columns

pytestmark = pytest.mark.bench
SERIES = int(os.environ.get("BENCH_SERIES", 10_000))
HISTORY = 24
REPEATS = int(os.environ.get("BENCH_REPEATS", 5))
KEYS = (
    "env.aqi",
    "env.pm25",
    "traffic.road_speed",
    "water.river_level",
    "water.waterlogging_depth",
    "energy.load_rate",
    "gov.hall_wait",
    "health.er_wait",
    "env.noise",
    "traffic.parking_occupancy",
)


def value_for(indicator, rng: random.Random) -> float:
    low, high = indicator.bounds
    limits = [limit for _, limit in indicator.thresholds.limits()] if indicator.thresholds else [high]
    centre = limits[0] * (0.8 if indicator.thresholds and indicator.thresholds.direction == "above" else 1.2)
    return min(high, max(low, rng.gauss(centre, abs(centre) * 0.15 + 0.01)))


def test_evaluate_10000_series(tmp_path):
    from bench.demo import demo_context
    from indicators.evaluation import lookback
    from ingest.pipeline import _collector_paused, _evaluate

    ctx = demo_context(f"sqlite:///{tmp_path / 'bench.db'}")
    sessions = ctx.sessions
    rng = random.Random(7)
    keys = [k for k in KEYS if k in ctx.catalog]
    pairs = [(keys[i % len(keys)], f"B{i:05d}") for i in range(SERIES)]
    now = floor_time(utcnow(), timedelta(minutes=5))
    history = [
        ValidReading(k, e, now - timedelta(minutes=5 * (HISTORY - j)), value_for(ctx.catalog[k], rng))
        for k, e in pairs
        for j in range(HISTORY)
    ]
    with sessions() as session:
        upsert_readings(session, history, "bench", {})
        session.commit()
    del history

    timings, baselines, cpu, baseline_cpu = [], [], [], []
    for repeat in range(REPEATS):
        at = now + timedelta(minutes=5 * repeat)
        batch = [ValidReading(k, e, at, value_for(ctx.catalog[k], rng)) for k, e in pairs]
        with sessions() as session:
            touched = upsert_readings(session, batch, "bench", {})
            session.commit()
            since = {
                sid: micros_since_epoch(at) - lookback(ctx.catalog[rs[0].indicator]) // MICROSECOND
                for sid, rs in touched.items()
            }
            with _collector_paused():
                started, cpu_started = time.perf_counter(), time.process_time()
                rows = len(columns(session, since).values)
                baselines.append(time.perf_counter() - started)
                baseline_cpu.append(time.process_time() - cpu_started)
            started, cpu_started = time.perf_counter(), time.process_time()
            _evaluate(ctx, session, touched)
            session.flush()
            timings.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            session.commit()
    with sessions() as session:
        alerts = session.scalar(select(func.count()).select_from(Alert))
        stored = session.scalar(select(func.count()).select_from(Reading))
    evaluation, baseline = median(timings), median(baselines)
    print(
        f"\nrule evaluation, {SERIES} series x 1 new reading ({rows} window rows read, {stored} rows stored, "
        f"{alerts} alerts):\n"
        f"  evaluate (read windows + all rules + write transitions): median {evaluation * 1000:.0f} ms "
        f"(min {min(timings) * 1000:.0f}, max {max(timings) * 1000:.0f}; CPU median "
        f"{median(cpu) * 1000:.0f}) = {rows / evaluation:,.0f} rows/s\n"
        f"  baseline (read the same rows only):                      median {baseline * 1000:.0f} ms "
        f"(CPU median {median(baseline_cpu) * 1000:.0f}) = {rows / baseline:,.0f} rows/s\n"
        f"  ratio evaluate / baseline: {evaluation / baseline:.1f}x (CPU "
        f"{median(cpu) / median(baseline_cpu):.1f}x); target < 500 ms: "
        f"{'met' if evaluation < 0.5 else 'NOT met'}"
    )
    assert alerts > 0
