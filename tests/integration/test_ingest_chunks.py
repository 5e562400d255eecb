"""A large batch is stored in parts (one transaction each) on both dialects: the same readings,
rejections and alerts as in one part, duplicates found across parts, the watermark moved once at
the end, a failure half-way reported with what was stored; runs of one source never interleave."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import ClassVar

import pytest
from sqlalchemy import func, select, update

import datasources.registry as registry
import ingest.pipeline as pipeline
from core.records import Record
from core.timeutil import utcnow
from datasources.base import Batch, Options
from ingest.pipeline import ingest_records, run_source
from store.models import Alert, AlertEvent, Reading, RejectedRecord, Source, SourceRun
from store.sync import sync_sources


class ListAdapter:
    RECORDS: ClassVar[list[Record]] = []
    Options = Options
    backfills = False

    def __init__(self, options, context):
        pass

    def fetch(self, since, until):
        return Batch(list(self.RECORDS), watermark=f"up to {until.isoformat()}")


@pytest.fixture
def listed(monkeypatch, ingest):
    from core.settings import SourceSettings

    real = registry.available()
    monkeypatch.setattr(
        registry, "available", lambda: dict(real) | {"list": SimpleNamespace(load=lambda: ListAdapter)}
    )
    with ingest.sessions() as session:
        sync_sources(session, [*ingest.settings.sources, SourceSettings(id="listed", type="list", every=60)])
        session.commit()
    monkeypatch.setattr(pipeline, "CHUNK_RECORDS", 4)
    return ingest


def at(minutes_ago: int) -> datetime:
    return (utcnow() - timedelta(minutes=minutes_ago)).replace(second=0, microsecond=0)


def stored(ctx) -> dict[tuple[int, datetime], float]:
    with ctx.sessions() as session:
        rows = session.execute(
            select(Reading.series_id, Reading.observed_at, Reading.value).where(Reading.source_id == "listed")
        )
        return {(sid, when): value for sid, when, value in rows}


def test_parts_store_what_one_part_stores(listed, monkeypatch):
    ListAdapter.RECORDS = [
        Record("env.aqi", code, at(m), 40 + m) for m in range(0, 50, 5) for code in ("1188A", "1189A")
    ]
    ListAdapter.RECORDS.insert(7, Record("env.aqi", "NOPE", at(5), 50, raw="unknown"))
    result = run_source(listed, "listed")
    assert (result.status, result.fetched, result.accepted, result.rejected) == ("partial", 21, 20, 1)
    in_parts = stored(listed)
    with listed.sessions() as session:
        run = session.get(SourceRun, result.run_id)
        assert (run.status, run.fetched, run.accepted, run.rejected) == ("partial", 21, 20, 1)
        assert session.get(Source, "listed").watermark.startswith("up to ")
        assert session.scalars(select(RejectedRecord.raw)).all() == ["unknown"]
        session.execute(update(Source).values(watermark=None))
        session.execute(Reading.__table__.delete().where(Reading.source_id == "listed"))
        session.commit()
    monkeypatch.setattr(pipeline, "CHUNK_RECORDS", 100_000)
    run_source(listed, "listed")
    assert stored(listed) == in_parts and len(in_parts) == 20


def test_a_duplicate_in_a_later_part_is_still_a_duplicate(listed):
    first = Record("env.aqi", "1188A", at(30), 80, raw="first")
    ListAdapter.RECORDS = [first] + [Record("env.aqi", "1189A", at(m), 50) for m in range(0, 30, 5)]
    ListAdapter.RECORDS += [
        Record("env.aqi", "1188A", at(30), 99, raw="second"),
        Record("env.aqi", "1188A", first.observed_at, 80, raw="again"),
    ]
    result = run_source(listed, "listed")
    assert (result.fetched, result.accepted, result.rejected) == (9, 8, 1)  # "again" repeats "first": fine
    with listed.sessions() as session:
        rejection = session.scalars(select(RejectedRecord)).one()
    assert rejection.raw == "second"
    assert rejection.reason == "duplicate in the same batch with a different value (80 kept, 99 rejected)"
    assert sorted(stored(listed).values()).count(80.0) == 1 and 99.0 not in stored(listed).values()


def test_rule_state_carries_from_part_to_part(listed):
    """A threshold alert opens in the first part, escalates in the second, resolves in the third."""
    values = [90, 90, 160, 160, 220, 220, 180, 180, 60, 60, 60, 60]
    ListAdapter.RECORDS = [Record("test.plain", "1188A", at(60 - 5 * i), v) for i, v in enumerate(values)]
    run_source(listed, "listed")
    with listed.sessions() as session:
        alert = session.scalars(select(Alert).where(Alert.rule_key == "test.plain:threshold")).one()
        events = select(AlertEvent.kind).where(AlertEvent.alert_id == alert.id).order_by(AlertEvent.at)
        kinds = session.scalars(events).all()
    assert kinds == ["opened", "escalated", "deescalated", "resolved"]
    assert alert.state == "resolved" and alert.peak_severity == 3


def test_a_failure_half_way_keeps_what_was_stored_and_the_watermark(listed, monkeypatch):
    ListAdapter.RECORDS = [Record("env.aqi", "1188A", at(m), 50) for m in range(0, 60, 5)]
    real, calls = pipeline.store_grouped, []

    def failing_second_part(session, touched, source_id, *appended):
        if source_id == "listed":
            calls.append(sum(map(len, touched.values())))
            if len(calls) == 2:
                raise RuntimeError("disk full")
        return real(session, touched, source_id, *appended)

    monkeypatch.setattr(pipeline, "store_grouped", failing_second_part)
    result = run_source(listed, "listed")
    assert result.status == "error" and result.accepted == 4
    assert result.error == "RuntimeError: disk full (after 1 of 3 parts were stored: 4 readings)"
    assert len(stored(listed)) == 4
    with listed.sessions() as session:
        run = session.get(SourceRun, result.run_id)
        assert (run.status, run.accepted) == ("error", 4)
        assert session.get(Source, "listed").watermark is None


def test_pushed_records_leave_the_watermark_alone(listed):
    with listed.sessions() as session:
        session.get(Source, "listed").watermark = "bookmark"
        session.commit()
    records = [Record("env.aqi", "1188A", at(m), 50) for m in range(0, 30, 5)]
    result = ingest_records(listed, "listed", records)
    assert (result.status, result.fetched, result.accepted) == ("ok", 6, 6)
    with listed.sessions() as session:
        assert session.get(Source, "listed").watermark == "bookmark"
        assert session.get(SourceRun, result.run_id).status == "ok"


def test_runs_of_one_source_wait_for_each_other(listed):
    """A run that starts while another transaction holds the source waits until it ends."""
    finished = threading.Event()

    def push() -> None:
        ingest_records(listed, "listed", [Record("env.aqi", "1188A", at(5), 50)])
        finished.set()

    with listed.sessions() as session:
        pipeline._claim_source(session, "listed")
        pusher = threading.Thread(target=push)
        pusher.start()
        time.sleep(1.5)
        assert not finished.is_set() and stored(listed) == {}
        session.commit()
    pusher.join(30)
    assert finished.is_set() and len(stored(listed)) == 1
    with listed.sessions() as session:
        assert (
            session.scalar(select(func.count()).select_from(SourceRun).where(SourceRun.status == "ok")) == 1
        )
