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
from notify.dispatch import Outcome, run_escalation, run_outbox
from store.models import Source
from store.state import beat, run_requests, take_run_request

log = logging.getLogger(__name__)
SWEEP_EVERY = 60
ESCALATION_EVERY = 60
RUN_REQUEST_EVERY = 3


def _heartbeat(ctx: IngestContext) -> None:
    with ctx.sessions() as session:
        beat(session)


def _sweep(ctx: IngestContext) -> None:
    opened = sweep_stale(ctx)
    if opened:
        log.info("staleness sweep: %d no-data alert(s) opened", opened)


def _log_outcome(job: str, outcome: Outcome) -> None:
    if outcome.sent or outcome.retrying or outcome.failed:
        log.info("%s: sent=%d retrying=%d failed=%d", job, outcome.sent, outcome.retrying, outcome.failed)


def _notify(ctx: IngestContext) -> None:
    _log_outcome("notifications", run_outbox(ctx))


def _escalate(ctx: IngestContext) -> None:
    _log_outcome("escalation", run_escalation(ctx))


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


def _pick_up_run_requests(ctx: IngestContext, scheduler: BaseScheduler) -> None:
    """An admin's "run now" from the sources console: bring the source's next run forward."""
    pending = run_requests(ctx.engine)
    for source_id, (_when, by) in pending.items():
        with ctx.sessions() as session:
            claimed = take_run_request(session, source_id)
            session.commit()
        job = scheduler.get_job(f"source:{source_id}")
        if claimed and job is not None:
            log.info("source %s: run requested by %s", source_id, by)
            job.modify(next_run_time=utcnow())


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
    requests = IntervalTrigger(seconds=RUN_REQUEST_EVERY)
    scheduler.add_job(_pick_up_run_requests, requests, args=[ctx, scheduler], id="run-requests")
    notifications = ctx.settings.notifications
    if notifications.active:
        every = IntervalTrigger(seconds=notifications.dispatch_every)
        scheduler.add_job(_notify, every, args=[ctx], id="notifications")
        scheduler.add_job(_escalate, IntervalTrigger(seconds=ESCALATION_EVERY), args=[ctx], id="escalation")
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
