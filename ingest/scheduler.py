"""APScheduler: one job per source at its cadence, plus a heartbeat that /healthz reads.

Jobs coalesce and never overlap (max_instances=1); each runs in its own pool thread, so a slow
source delays nobody. In-process for `make run`; `citybrain scheduler` runs it alone for
deployments with several web workers (exactly one scheduler per deployment).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from core.timeutil import utcnow
from datasources.registry import adapter_class
from ingest.context import IngestContext
from ingest.pipeline import backfill, run_source
from ingest.sweep import sweep_stale
from store.models import Source
from store.state import beat

log = logging.getLogger(__name__)
SWEEP_EVERY = 60


def _heartbeat(ctx: IngestContext) -> None:
    with ctx.sessions() as session:
        beat(session)


def _sweep(ctx: IngestContext) -> None:
    opened = sweep_stale(ctx)
    if opened:
        log.info("staleness sweep: %d no-data alert(s) opened", opened)


def _run_job(ctx: IngestContext, source_id: str) -> None:
    result = run_source(ctx, source_id)
    log.info(
        "source %s: %s fetched=%d accepted=%d rejected=%d%s",
        source_id,
        result.status,
        result.fetched,
        result.accepted,
        result.rejected,
        f" error={result.error}" if result.error else "",
    )


def backfill_new_sources(ctx: IngestContext, show_progress: bool = True) -> None:
    """Give every never-run source that can replay history its backfill window (one run a day)."""
    from tqdm import tqdm

    with ctx.sessions() as session:
        fresh = set(
            session.scalars(select(Source.id).where(Source.enabled.is_(True), Source.watermark.is_(None)))
        )
    end = utcnow()
    for source in ctx.settings.sources:
        if source.id not in fresh or not adapter_class(source.type).backfills:
            continue
        seconds = source.backfill or ctx.settings.scheduler.backfill
        days = max(1, -(-int(seconds) // 86400))
        with tqdm(total=days, desc=f"backfill {source.id}", unit="day", disable=not show_progress) as bar:

            def advance(_done: int, _total: int, result, _bar=bar) -> None:
                _bar.update(1)
                _bar.set_postfix(rows=result.accepted, rejected=result.rejected)

            backfill(ctx, source.id, end - timedelta(seconds=seconds), end, progress=advance)


def build_scheduler(ctx: IngestContext, blocking: bool = False) -> BaseScheduler:
    settings = ctx.settings.scheduler
    kind = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = kind(
        executors={"default": ThreadPoolExecutor(settings.workers)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        timezone="UTC",
    )
    scheduler.add_job(
        _heartbeat,
        IntervalTrigger(seconds=settings.heartbeat),
        args=[ctx],
        id="heartbeat",
        next_run_time=utcnow(),
    )
    scheduler.add_job(_sweep, IntervalTrigger(seconds=SWEEP_EVERY), args=[ctx], id="staleness-sweep")
    for source in ctx.settings.sources:
        if source.enabled:
            scheduler.add_job(
                _run_job,
                IntervalTrigger(seconds=source.every),
                args=[ctx, source.id],
                id=f"source:{source.id}",
                name=source.id,
                next_run_time=utcnow(),
            )
    return scheduler
