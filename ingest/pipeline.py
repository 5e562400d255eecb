"""One ingest run of one source: fetch -> validate -> store -> evaluate -> bump the data version.

The scheduler, the CLI and the tests all call `run_source`; nothing else talks to a data source.
A source that raises or hangs ends its own run as failed and never delays another source.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import NamedTuple

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.records import Record, ValidReading
from core.timeutil import MICROSECOND, floor_time, micros_since_epoch, utcnow
from datasources.base import Batch
from indicators.composite import CITY_KEY, RunningIndex
from indicators.evaluation import Evaluator, SeriesBatch, bisect_rows, lookback
from indicators.validation import BatchCheck, Rejection
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
from store.readings import group_by_series, store_grouped, upsert_readings
from store.rollups import Span, refresh_rollups, spans_of
from store.state import bump_data_version
from store.windows import appended_only, columns, columns_with, id_in, points

log = logging.getLogger(__name__)
_POINT_OF = attrgetter("observed_at", "value")
COMPOSITE_SOURCE = "composite"
COMPOSITE_STEP = timedelta(minutes=5)
# Records validated and stored per transaction: bounds a run's memory and the time it holds the
# database's write lock, and is large enough that a part's fixed costs (reading every series'
# latest value for the index, the rules' windows) stay small per reading.
CHUNK_RECORDS = 100_000


@dataclass(frozen=True)
class RunResult:
    source_id: str
    run_id: int | None
    status: str
    fetched: int = 0
    accepted: int = 0
    rejected: int = 0
    error: str | None = None


@dataclass
class _Storing:
    """A run while its parts are stored: what each part needs, and the counts stored so far."""

    ctx: IngestContext
    source_id: str
    run_id: int
    fetched: int
    check: BatchCheck
    accepted: int = 0
    rejected: int = 0


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


def at_the_edge(session: Session, spans: Mapping[int, Span]) -> set[int]:
    """The series (of `spans`: id -> first and last time of a batch) whose newest stored reading
    is, or will be once written, the batch's.

    History replayed behind the live edge (`ingest --from` an old range, a late file) is stored but
    does not re-run the rules: starting the rules' state from today's open alerts at a past time
    would resolve, and reopen, alerts an officer is already handling.
    """
    if not spans:
        return set()
    query = select(Series.id, Series.last_observed_at).where(id_in(session, Series.id, spans))
    newest = dict(session.execute(query).all())
    return {sid for sid, (_, last) in spans.items() if newest.get(sid) is None or last >= newest[sid]}


def _evaluate(ctx: IngestContext, session: Session, touched: dict[int, list[ValidReading]]) -> None:
    """Every rule over the series this batch touched and stored (incremental: nothing else is read)."""
    if touched:
        evaluation = _Evaluation(ctx, session, touched, spans_of(touched))
        evaluation.judge()
        evaluation.write(session)


class _Evaluation:
    """One batch's rule evaluation in three steps: the reads (windows, open alerts, silences), the
    judging (the rules and the alert changes they make, no database: it may run in another thread
    while the database is busy writing the readings), and the writes.

    `stored=False`: the readings are not written yet, and every series in `touched` is one the
    write only appends to (`appended_only`), so the windows are exactly what they will be.
    """

    def __init__(
        self,
        ctx: IngestContext,
        session: Session,
        touched: dict[int, list[ValidReading]],
        spans: Mapping[int, Span],
        stored: bool = True,
    ):
        self.ctx, self.touched = ctx, touched
        self.by_indicator: dict[str, list[int]] = {}
        for sid, readings in touched.items():
            self.by_indicator.setdefault(readings[0].indicator, []).append(sid)
        self.alerts = open_alerts(session, touched) if touched else {}
        self.evaluators = {key: Evaluator(ctx.catalog[key]) for key in self.by_indicator}
        firsts = {sid: spans[sid][0] for sid in touched}
        self.batches = _judged_windows(
            session, self.by_indicator, touched, firsts, self.alerts, self.evaluators, stored
        )
        lasts = [spans[sid][1] for sid in touched]
        silences = silences_between(session, min(firsts.values()), max(lasts)) if touched else []
        self.writer = AlertWriter(session, self.alerts, silences)

    def judge(self) -> None:
        """The rules over every window; the windows are dropped once judged."""
        with _collector_paused():
            for key, batch in self.batches.items():
                evaluator = self.evaluators[key]
                for sid, steps in zip(self.by_indicator[key], evaluator.evaluate_many(batch), strict=True):
                    if steps:
                        entity = self.touched[sid][0].entity
                        explain = self.ctx.explainer(evaluator.indicator, entity)
                        self.writer.apply(SeriesRow(sid, key, entity), steps, explain)
            self.batches = {}

    def write(self, session: Session) -> None:
        if not self.touched:
            return
        self.writer.flush()
        write_series_levels(session, self.touched, series_levels(self.alerts))


def _judged_windows(
    session: Session,
    by_indicator: dict[str, list[int]],
    touched: dict[int, list[ValidReading]],
    firsts: Mapping[int, datetime],
    alerts: dict[tuple[int, str], OpenAlert],
    evaluators: dict[str, Evaluator],
    stored: bool = True,
) -> dict[str, SeriesBatch]:
    """Each indicator's touched series (in `by_indicator` order) as one batch: their windows (all
    read in one query), where their new points start and their open alerts' severities. Not yet
    `stored`: the batch's points are added to what is read (see `_Evaluation`)."""
    open_severity: dict[int, dict[str, int]] = {}
    for (series_id, key), alert in alerts.items():
        open_severity.setdefault(series_id, {})[key] = alert.severity
    written = {} if stored else {sid: list(map(_POINT_OF, readings)) for sid, readings in touched.items()}
    new_from = {sid: micros_since_epoch(at) for sid, at in firsts.items()}
    reach = {key: lookback(evaluator.indicator) // MICROSECOND for key, evaluator in evaluators.items()}
    since = {sid: new_from[sid] - reach[key] for key, sids in by_indicator.items() for sid in sids}
    read = columns(session, since) if stored else columns_with(session, since, new_from, written)
    past = {
        key: timedelta(days=7 * e.anomaly.weeks, seconds=e.anomaly.tolerance)
        for key, e in evaluators.items()
        if e.anomaly is not None
    }
    long_past = {sid: firsts[sid] - past[key] for key in past for sid in by_indicator[key]}
    histories = points(session, long_past) if long_past else {}
    if not stored:  # appended only: all that is read lies before the batch's points
        for sid in long_past:
            histories[sid] = histories.get(sid, []) + sorted(dict(written[sid]).items())
    found = read.find([sid for sids in by_indicator.values() for sid in sids])
    batches, none, offset = {}, {}, 0
    for key, sids in by_indicator.items():
        k = found[offset : offset + len(sids)]
        offset += len(sids)
        lo = np.where(k >= 0, read.starts[k], 0)
        hi = np.where(k >= 0, read.starts[k + 1], 0)
        starts = np.fromiter(map(new_from.__getitem__, sids), np.int64, len(sids))
        batches[key] = SeriesBatch(
            read.micros,
            read.values,
            lo,
            bisect_rows(read.micros, lo, hi, starts),
            hi,
            [open_severity.get(sid, none) for sid in sids],
            lambda n, k=k: read.window(int(k[n])),
            lambda n, sids=sids: histories.get(sids[n], ()),
        )
    return batches


def _composite(ctx: IngestContext, session: Session, accepted: list[ValidReading]) -> list[ValidReading]:
    """City Operations Index readings for every 5-minute bucket in which this batch moved an
    indicator that counts (one with thresholds); a batch of other indicators changes nothing.

    Series the batch did not touch count with their latest stored value.
    """
    if CITY_KEY not in ctx.catalog or not accepted:
        return []
    index = RunningIndex(ctx.catalog, ctx.settings.composite_weights)
    counting = index.counting
    buckets: dict[datetime, dict[tuple[str, str], float]] = {}
    bucket_of: dict[datetime, dict[tuple[str, str], float]] = {}
    for reading in accepted:
        if reading.indicator in counting:
            at = reading.observed_at
            bucket = bucket_of.get(at)
            if bucket is None:
                bucket = bucket_of[at] = buckets.setdefault(floor_time(at, COMPOSITE_STEP), {})
            bucket[(reading.indicator, reading.entity)] = reading.value
    if not buckets:
        return []
    stored = session.execute(select(Series.indicator_key, Series.entity, Series.last_value))
    index.set(((key, entity), value) for key, entity, value in stored if value is not None)
    city = ctx.settings.city.adcode
    found = []
    for bucket in sorted(buckets):
        index.set(buckets[bucket].items())
        found.extend(
            ValidReading(key, city, bucket, value)
            for key, value in index.values().items()
            if key in ctx.catalog
        )
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
    parts = _parts(batch.records)
    fetched, watermark = len(batch.records), batch.watermark
    del batch  # the parts hold the records now, and each part's go as soon as it is stored
    return _store(ctx, source_id, run_id, parts, fetched, None if keep_watermark else watermark)


def ingest_records(ctx: IngestContext, source_id: str, records: list[Record]) -> RunResult:
    """One run of a source with records it pushed to us (an NGSI notification) instead of fetched.

    Logged in source_runs like any run; the watermark is the fetch's bookmark and stays as it is.
    Runs of one source never overlap, whichever process starts them (see `_claim_source`).
    """
    _, run_id = _start_run(ctx, source_id)
    return _store(ctx, source_id, run_id, _parts(records), len(records), None)


def _parts(records: list[Record]) -> deque[list[Record]]:
    """The batch cut into parts of CHUNK_RECORDS records (always at least one part, maybe empty)."""
    return deque(records[start : start + CHUNK_RECORDS] for start in range(0, len(records), CHUNK_RECORDS))


def _store(
    ctx: IngestContext,
    source_id: str,
    run_id: int,
    parts: deque[list[Record]],
    fetched: int,
    watermark: str | None,
) -> RunResult:
    """Validate and store a fetched batch one part at a time, each part in its own transaction.

    A large export (1.5 million rows) then needs the memory of one part, not of the whole file,
    besides the records themselves. Duplicates are still found across the whole batch. The run's
    counts grow with each part; the watermark moves with the last part only, so a run that fails
    half-way is fetched again in full next time (what was stored is upserted again, unchanged).
    """
    run = _Storing(ctx, source_id, run_id, fetched, ctx.validator.batch())
    stored, count = 0, max(1, len(parts))
    while True:
        last = len(parts) <= 1
        try:
            with _collector_paused():
                _store_part(run, parts.popleft() if parts else [], last, watermark)
        except Exception as exc:  # noqa: BLE001 - a storage failure ends this run only
            log.exception("source %s: storing failed", source_id)
            message = f"{type(exc).__name__}: {exc}"
            if stored:
                message += f" (after {stored} of {count} parts were stored: {run.accepted} readings)"
            _finish_failed(ctx, run_id, "error", message)
            return RunResult(source_id, run_id, "error", fetched, run.accepted, run.rejected, message)
        stored += 1
        if last:
            status = "ok" if not run.rejected else "partial"
            return RunResult(source_id, run_id, status, fetched, run.accepted, run.rejected)


@contextmanager
def _judging_meanwhile(session: Session, evaluation: _Evaluation) -> Iterator[None]:
    """Judge `evaluation` while the block writes. On PostgreSQL in a second thread: the write is
    mostly the server's work, during which the driver releases the interpreter's lock, so the
    rules run on the other core. SQLite's driver takes that lock back for every row it inserts,
    and a busy second thread would make each row wait its turn: there the rules run first."""
    if session.get_bind().dialect.name != "postgresql":
        evaluation.judge()
        yield
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        judging = pool.submit(evaluation.judge)
        try:
            yield
        except BaseException:
            wait([judging])  # the write's own failure is the one to report
            raise
        judging.result()


def _claim_source(session: Session, source_id: str) -> None:
    """Hold the source's row for this transaction, so runs of one source never interleave even
    when they start in different processes (a web worker storing a notification while the
    scheduler runs the same source): the rule evaluation of one would otherwise miss the alerts
    the other is opening. On SQLite this is the database's write lock, taken before any read."""
    claim = update(Source).where(Source.id == source_id).values(watermark=Source.watermark)
    session.execute(claim, execution_options={"synchronize_session": False})


def _store_part(run: _Storing, records: list[Record], last: bool, watermark: str | None) -> None:
    """Validate one part and store it in one transaction: readings, the composite index, rollups,
    the rules, the quarantine and the run's counts; with the last part, the run's end and the
    watermark. The part's objects are gone when this returns, before the collector resumes."""
    ctx, source_id = run.ctx, run.source_id
    accepted, rejected = run.check.check(records)
    del records
    with ctx.sessions() as session:
        _claim_source(session, source_id)
        touched = group_by_series(session, accepted, ctx.region_of)
        spans = spans_of(touched)
        edge = at_the_edge(session, spans)
        appended = appended_only(session, {sid: spans[sid][0] for sid in edge})
        early = _Evaluation(ctx, session, {sid: touched[sid] for sid in appended}, spans, stored=False)
        with _judging_meanwhile(session, early):
            store_grouped(session, touched, source_id, appended)
            composite = _composite(ctx, session, accepted)
            combined = upsert_readings(session, composite, COMPOSITE_SOURCE, ctx.region_of)
            spans |= spans_of(combined)
            refresh_rollups(session, spans, ctx.settings.tz)
        early.write(session)
        later = {sid: touched[sid] for sid in edge - appended}
        later |= {sid: combined[sid] for sid in at_the_edge(session, {sid: spans[sid] for sid in combined})}
        _evaluate(ctx, session, later)
        _quarantine(session, source_id, run.run_id, rejected)
        row = session.get(SourceRun, run.run_id)
        row.fetched = run.fetched
        row.accepted, row.rejected = run.accepted + len(accepted), run.rejected + len(rejected)
        source = session.get(Source, source_id)
        if last:
            row.status = "ok" if not row.rejected else "partial"
            row.finished_at = utcnow()
            if watermark is not None:
                source.watermark = watermark
        _note_freshness(ctx, source, accepted)
        bump_data_version(session)
        session.commit()
    run.accepted, run.rejected = run.accepted + len(accepted), run.rejected + len(rejected)


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
