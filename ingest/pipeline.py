"""One ingest run of one source: fetch -> validate -> store -> evaluate -> bump the data version.

The scheduler, the CLI and the tests all call `run_source`; nothing else talks to a data source.
A source that raises or hangs ends its own run as failed and never delays another source.
"""

from __future__ import annotations

import bisect
import gc
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter, itemgetter
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.records import ValidReading
from core.timeutil import floor_time, utcnow
from datasources.base import Batch
from indicators.composite import CITY_KEY, index_values, is_composite
from indicators.evaluation import Evaluator, SeriesWindow, lookback
from indicators.validation import Rejection
from ingest.context import IngestContext
from store.alerts import (
    AlertWriter,
    OpenAlert,
    open_alerts,
    series_levels,
    silences_between,
    write_series_levels,
)
from store.models import RejectedRecord, Series, Source, SourceRun
from store.readings import upsert_readings
from store.state import bump_data_version
from store.windows import id_in, points

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


def _fetch(
    ctx: IngestContext,
    source: Source,
    since: str | None,
    until: datetime,
    timeout: float,
    options: dict | None = None,
) -> Batch:
    """Fetch in a worker thread so a hung source costs one thread, not the scheduler."""
    previous = ctx.hung.get(source.id)
    if previous is not None and previous.is_alive():
        raise SourceTimeout("the previous fetch of this source is still hanging; run skipped")
    adapter = ctx.adapter(source) if options is None else ctx.build_adapter(source, options)
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


class SeriesRow(NamedTuple):
    """A touched series, from its readings (what `AlertWriter` needs of a series)."""

    id: int
    indicator_key: str
    entity: str


@contextmanager
def _collector_paused() -> Iterator[None]:
    """CPython's cycle collector off for one batch's evaluation.

    The evaluation allocates a few hundred thousand short-lived objects (rows, points, windows)
    with no reference cycles: reference counting frees every one of them, yet their number alone
    makes the collector scan the whole heap at least once per batch, for nothing (100-250 ms per
    10,000 series on the 2-core machine, as long as the rules take). Re-enabled once they are
    gone, so it finds nothing new to scan either.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def at_the_edge(session: Session, touched: dict[int, list[ValidReading]]) -> dict[int, list[ValidReading]]:
    """The series whose newest stored reading came in this batch.

    History replayed behind the live edge (`ingest --from` an old range, a late file) is stored but
    does not re-run the rules: starting the rules' state from today's open alerts at a past time
    would resolve, and reopen, alerts an officer is already handling.
    """
    if not touched:
        return touched
    query = select(Series.id, Series.last_observed_at).where(id_in(session, Series.id, touched))
    newest = dict(session.execute(query).all())
    return {
        sid: readings
        for sid, readings in touched.items()
        if newest.get(sid) is None or max(r.observed_at for r in readings) >= newest[sid]
    }


def _evaluate(ctx: IngestContext, session: Session, touched: dict[int, list[ValidReading]]) -> None:
    """Every rule over the series this batch touched (incremental: nothing else is read)."""
    if touched:
        with _collector_paused():
            _evaluate_batch(ctx, session, touched)


def _evaluate_batch(ctx: IngestContext, session: Session, touched: dict[int, list[ValidReading]]) -> None:
    """The evaluation proper; its windows are freed when it returns, before the collector resumes."""
    series_rows = [
        SeriesRow(sid, readings[0].indicator, readings[0].entity) for sid, readings in touched.items()
    ]
    alerts = open_alerts(session, touched)
    evaluators = {key: Evaluator(ctx.catalog[key]) for key in {s.indicator_key for s in series_rows}}
    batches = _judged_windows(session, series_rows, touched, alerts, evaluators)
    times = [r.observed_at for readings in touched.values() for r in readings]
    writer = AlertWriter(session, alerts, silences_between(session, min(times), max(times)))
    for key, batch in batches.items():
        evaluator = evaluators[key]
        found = evaluator.evaluate_many([series for _, series in batch])
        for (s, _), steps in zip(batch, found, strict=True):
            if steps:
                writer.apply(s, steps, ctx.explainer(evaluator.indicator, s.entity))
    writer.flush()
    write_series_levels(session, touched, series_levels(alerts))


def _judged_windows(
    session: Session,
    series_rows: list[SeriesRow],
    touched: dict[int, list[ValidReading]],
    alerts: dict[tuple[int, str], OpenAlert],
    evaluators: dict[str, Evaluator],
) -> dict[str, list[tuple[SeriesRow, SeriesWindow]]]:
    """Each touched series' window (all read in one query), where its new points start and its
    open alerts' severities, grouped by indicator."""
    open_severity: dict[int, dict[str, int]] = {}
    for (series_id, key), alert in alerts.items():
        open_severity.setdefault(series_id, {})[key] = alert.severity
    firsts = {sid: min(map(attrgetter("observed_at"), readings)) for sid, readings in touched.items()}
    reach = {key: lookback(evaluator.indicator) for key, evaluator in evaluators.items()}
    windows = points(session, {s.id: firsts[s.id] - reach[s.indicator_key] for s in series_rows})
    past = {
        key: timedelta(days=7 * e.anomaly.weeks, seconds=e.anomaly.tolerance)
        for key, e in evaluators.items()
        if e.anomaly is not None
    }
    long_past = {s.id: firsts[s.id] - past[s.indicator_key] for s in series_rows if s.indicator_key in past}
    histories = points(session, long_past) if long_past else {}
    batches: dict[str, list[tuple[SeriesRow, SeriesWindow]]] = {}
    time_of, none = itemgetter(0), {}
    for s in series_rows:
        window = windows.get(s.id, [])
        first_new = bisect.bisect_left(window, firsts[s.id], key=time_of)
        judged = SeriesWindow(window, first_new, open_severity.get(s.id, none), histories.get(s.id, ()))
        batches.setdefault(s.indicator_key, []).append((s, judged))
    return batches


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
    options: dict | None = None,
    keep_watermark: bool = False,
) -> RunResult:
    """Run one source once; `since` defaults to the stored watermark, `until` to now.

    A replay (`citybrain ingest --from`) passes `options` to read another file with the same mapping
    and `keep_watermark`: the stored watermark is neither used (None means "from the start") nor
    moved, so replaying history never disturbs the live feed.
    """
    source, run_id = _start_run(ctx, source_id)
    until = until or utcnow()
    if since is None and not keep_watermark:
        since = source.watermark
    try:
        batch = _fetch(ctx, source, since, until, timeout or ctx.settings.scheduler.run_timeout, options)
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
            _evaluate(ctx, session, at_the_edge(session, touched))
            _quarantine(session, source_id, run_id, rejected)
            run = session.get(SourceRun, run_id)
            run.status = "ok" if not rejected else "partial"
            run.fetched, run.accepted, run.rejected = len(batch.records), len(accepted), len(rejected)
            run.finished_at = utcnow()
            source_row = session.get(Source, source_id)
            if batch.watermark is not None and not keep_watermark:
                source_row.watermark = batch.watermark
            _note_freshness(ctx, source_row, accepted)
            bump_data_version(session)
            session.commit()
    except Exception as exc:  # noqa: BLE001 - a storage failure ends this run only
        log.exception("source %s: storing failed", source_id)
        message = f"{type(exc).__name__}: {exc}"
        _finish_failed(ctx, run_id, "error", message)
        return RunResult(source_id, run_id, "error", len(batch.records), error=message)
    status = "ok" if not rejected else "partial"
    return RunResult(source_id, run_id, status, len(batch.records), len(accepted), len(rejected))


def _note_freshness(ctx: IngestContext, source: Source, accepted: list[ValidReading]) -> None:
    """The source's newest reading and its fastest indicator's cadence, for the sources console."""
    if not accepted:
        return
    newest = max(r.observed_at for r in accepted)
    if source.newest_observed_at is None or newest > source.newest_observed_at:
        source.newest_observed_at = newest
    source.cadence_s = min(ctx.catalog[key].cadence for key in {r.indicator for r in accepted})


def backfill(
    ctx: IngestContext,
    source_id: str,
    start: datetime,
    end: datetime,
    chunk: timedelta = timedelta(days=1),
    progress: Callable[[int, int, RunResult], None] | None = None,
    keep_watermark: bool = False,
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
            keep_watermark=keep_watermark,
        )
        results.append(result)
        if progress:
            progress(index + 1, steps, result)
    return results
