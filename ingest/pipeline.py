"""One ingest run of one source: fetch -> validate -> store -> evaluate -> bump the data version.

The scheduler, the CLI and the tests all call `run_source`; nothing else talks to a data source.
A source that raises or hangs ends its own run as failed and never delays another source.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.records import ValidReading
from core.timeutil import floor_time, utcnow
from datasources.base import Batch
from indicators.composite import CITY_KEY, index_values, is_composite
from indicators.evaluation import anomaly_rule, evaluate_series, lookback
from indicators.validation import Rejection
from ingest.context import IngestContext
from store.alerts import apply_transitions, open_alerts, refresh_series_level, silences_between
from store.models import RejectedRecord, Series, Source, SourceRun
from store.readings import upsert_readings
from store.state import bump_data_version
from store.windows import points

log = logging.getLogger(__name__)
COMPOSITE_SOURCE = "composite"
COMPOSITE_STEP = timedelta(minutes=5)


@dataclass(frozen=True)
class RunResult:
    source_id: str
    run_id: int | None
    status: str
    fetched: int = 0
    accepted: int = 0
    rejected: int = 0
    error: str | None = None


class SourceTimeout(Exception):
    pass


def _fetch(ctx: IngestContext, source: Source, since: str | None, until: datetime, timeout: float) -> Batch:
    """Fetch in a worker thread so a hung source costs one thread, not the scheduler."""
    previous = ctx.hung.get(source.id)
    if previous is not None and previous.is_alive():
        raise SourceTimeout("the previous fetch of this source is still hanging; run skipped")
    adapter = ctx.adapter(source)
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["batch"] = adapter.fetch(since, until)
        except BaseException as exc:  # noqa: BLE001 - reported as the run's error
            outcome["error"] = exc

    worker = threading.Thread(target=work, name=f"fetch-{source.id}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        ctx.hung[source.id] = worker
        raise SourceTimeout(f"fetch did not finish within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["batch"]  # type: ignore[return-value]


def _evaluate(ctx: IngestContext, session: Session, touched: dict[int, list[ValidReading]]) -> None:
    """Every rule over the series this batch touched (incremental: nothing else is read)."""
    if not touched:
        return
    series_rows = session.execute(
        select(Series.id, Series.indicator_key, Series.entity).where(Series.id.in_(list(touched)))
    ).all()
    alerts = open_alerts(session, touched)
    by_series: dict[int, dict[str, int]] = {}
    for (series_id, key), alert in alerts.items():
        by_series.setdefault(series_id, {})[key] = alert.severity
    firsts = {sid: min(r.observed_at for r in readings) for sid, readings in touched.items()}
    windows = points(
        session, {s.id: firsts[s.id] - lookback(ctx.catalog[s.indicator_key]) for s in series_rows}
    )
    long_past = {}
    for s in series_rows:
        rule = anomaly_rule(ctx.catalog[s.indicator_key])
        if rule is not None:
            long_past[s.id] = firsts[s.id] - timedelta(days=7 * rule.weeks, seconds=rule.tolerance)
    histories = points(session, long_past) if long_past else {}
    silences = silences_between(
        session, min(firsts.values()), max(r.observed_at for rs in touched.values() for r in rs)
    )
    for s in series_rows:
        indicator = ctx.catalog[s.indicator_key]
        window = windows.get(s.id, [])
        first_new = bisect.bisect_left(window, firsts[s.id], key=lambda p: p[0])
        found = evaluate_series(
            indicator, window, first_new, by_series.get(s.id, {}), histories.get(s.id, ())
        )
        if found:
            apply_transitions(session, s, found, alerts, ctx.explainer(indicator, s.entity), silences)
    refresh_series_level(session, touched)


def _composite(ctx: IngestContext, session: Session, accepted: list[ValidReading]) -> list[ValidReading]:
    """City Operations Index readings for every 5-minute bucket in which this batch moved an
    indicator that counts (one with thresholds); a batch of other indicators changes nothing.

    Series the batch did not touch count with their latest stored value.
    """
    if CITY_KEY not in ctx.catalog or not accepted:
        return []
    latest = {
        (key, entity): value
        for key, entity, value in session.execute(
            select(Series.indicator_key, Series.entity, Series.last_value)
        )
        if value is not None and not is_composite(key) and key in ctx.catalog
    }
    buckets: dict[datetime, list[ValidReading]] = {}
    for reading in accepted:
        if not is_composite(reading.indicator) and ctx.catalog[reading.indicator].thresholds is not None:
            buckets.setdefault(floor_time(reading.observed_at, COMPOSITE_STEP), []).append(reading)
    city = ctx.settings.city.adcode
    found = []
    for bucket in sorted(buckets):
        for reading in buckets[bucket]:
            latest[(reading.indicator, reading.entity)] = reading.value
        values = ((ctx.catalog[key], value) for (key, _), value in latest.items())
        for key, value in index_values(values, ctx.settings.composite_weights).items():
            if key in ctx.catalog:
                found.append(ValidReading(key, city, bucket, value))
    return found


def _quarantine(session: Session, source_id: str, run_id: int, rejected: list[Rejection]) -> None:
    now = utcnow()
    session.add_all(
        RejectedRecord(
            source_id=source_id, run_id=run_id, created_at=now, field=r.field, reason=r.reason, raw=r.raw
        )
        for r in rejected
    )


def _start_run(ctx: IngestContext, source_id: str) -> tuple[Source, int]:
    with ctx.sessions() as session:
        source = session.get(Source, source_id)
        if source is None:
            raise LookupError(f"no source {source_id!r} is configured")
        run = SourceRun(source_id=source_id, started_at=utcnow(), status="running")
        session.add(run)
        session.commit()
        session.expunge(source)
        return source, run.id


def _finish_failed(ctx: IngestContext, run_id: int, status: str, error: str) -> None:
    with ctx.sessions() as session:
        run = session.get(SourceRun, run_id)
        run.status, run.error, run.finished_at = status, error[:4000], utcnow()
        session.commit()


def run_source(
    ctx: IngestContext,
    source_id: str,
    *,
    since: str | None = None,
    until: datetime | None = None,
    timeout: float | None = None,
) -> RunResult:
    """Run one source once; `since` defaults to the stored watermark, `until` to now."""
    source, run_id = _start_run(ctx, source_id)
    until = until or utcnow()
    since = since if since is not None else source.watermark
    try:
        batch = _fetch(ctx, source, since, until, timeout or ctx.settings.scheduler.run_timeout)
    except SourceTimeout as exc:
        log.warning("source %s: %s", source_id, exc)
        _finish_failed(ctx, run_id, "timeout", str(exc))
        return RunResult(source_id, run_id, "timeout", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - any adapter failure ends this run only
        log.exception("source %s failed", source_id)
        message = f"{type(exc).__name__}: {exc}"
        _finish_failed(ctx, run_id, "error", message)
        return RunResult(source_id, run_id, "error", error=message)
    accepted, rejected = ctx.validator.validate(batch.records)
    try:
        with ctx.sessions() as session:
            touched = upsert_readings(session, accepted, source_id, ctx.region_of) if accepted else {}
            composite = _composite(ctx, session, accepted)
            if composite:
                touched |= upsert_readings(session, composite, COMPOSITE_SOURCE, ctx.region_of)
            _evaluate(ctx, session, touched)
            _quarantine(session, source_id, run_id, rejected)
            run = session.get(SourceRun, run_id)
            run.status = "ok" if not rejected else "partial"
            run.fetched, run.accepted, run.rejected = len(batch.records), len(accepted), len(rejected)
            run.finished_at = utcnow()
            if batch.watermark is not None:
                session.get(Source, source_id).watermark = batch.watermark
            bump_data_version(session)
            session.commit()
    except Exception as exc:  # noqa: BLE001 - a storage failure ends this run only
        log.exception("source %s: storing failed", source_id)
        message = f"{type(exc).__name__}: {exc}"
        _finish_failed(ctx, run_id, "error", message)
        return RunResult(source_id, run_id, "error", len(batch.records), error=message)
    status = "ok" if not rejected else "partial"
    return RunResult(source_id, run_id, status, len(batch.records), len(accepted), len(rejected))


def backfill(
    ctx: IngestContext,
    source_id: str,
    start: datetime,
    end: datetime,
    chunk: timedelta = timedelta(days=1),
    progress: Callable[[int, int, RunResult], None] | None = None,
) -> list[RunResult]:
    """Replay [start, end] in chunks so a long history shows progress and bounded memory."""
    steps = max(1, -(-int((end - start).total_seconds()) // int(chunk.total_seconds())))
    results = []
    for index in range(steps):
        chunk_start = start + index * chunk
        chunk_end = min(end, chunk_start + chunk)
        result = run_source(
            ctx,
            source_id,
            since=chunk_start.isoformat(),
            until=chunk_end,
            timeout=max(ctx.settings.scheduler.run_timeout, 600),
        )
        results.append(result)
        if progress:
            progress(index + 1, steps, result)
    return results
