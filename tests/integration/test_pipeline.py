"""The pipeline end to end on both dialects, with well-behaved, raising and hanging adapters."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import ClassVar

import pytest
from sqlalchemy import func, select

import datasources.registry as registry
from core.records import Record
from core.timeutil import utcnow
from datasources.base import Batch, Options
from ingest.pipeline import run_source
from store.models import Alert, AlertEvent, Reading, RejectedRecord, Series, Source, SourceRun
from store.state import data_version
from store.sync import sync_sources

RELEASE = threading.Event()


class ScriptedAdapter:
    """Returns whatever the test put in SCRIPT for its source id."""

    SCRIPT: ClassVar[dict[str, list[Record]]] = {}
    Options = Options
    backfills = False

    def __init__(self, options, context):
        self.source_id = context.source_id

    def fetch(self, since, until):
        return Batch(list(self.SCRIPT.get(self.source_id, [])), watermark=until.isoformat())


class RaisingAdapter(ScriptedAdapter):
    def fetch(self, since, until):
        raise ConnectionError("department server refused the connection")


class HangingAdapter(ScriptedAdapter):
    def fetch(self, since, until):
        RELEASE.wait(30)
        return Batch([])


@pytest.fixture
def adapters(monkeypatch, ingest):
    """Register test adapters the way entry points are, and configure one source of each."""
    kinds = {"scripted": ScriptedAdapter, "raising": RaisingAdapter, "hanging": HangingAdapter}
    real = registry.available()
    fake = dict(real) | {name: SimpleNamespace(load=lambda c=cls: c) for name, cls in kinds.items()}
    monkeypatch.setattr(registry, "available", lambda: fake)
    from core.settings import SourceSettings

    sources = [SourceSettings(id=name, type=name, every=60) for name in kinds]
    with ingest.sessions() as session:
        sync_sources(session, list(ingest.settings.sources) + sources)
        session.commit()
    RELEASE.clear()
    yield ingest
    RELEASE.set()


def now_minus(minutes: int) -> datetime:
    return (utcnow() - timedelta(minutes=minutes)).replace(second=0, microsecond=0)


def test_valid_and_invalid_records_of_one_run(adapters):
    ScriptedAdapter.SCRIPT["scripted"] = [
        Record("env.aqi", "1188A", now_minus(10), 80, raw='{"aqi": 80}'),
        Record("env.aqi", "1188A", now_minus(5), "85", raw='{"aqi": "85"}'),
        Record("env.aqi", "1188A", now_minus(5), 99, raw="dup"),
        Record("env.aqi", "NOPE", now_minus(5), 50, raw="unknown entity"),
        Record("env.nothing", "1188A", now_minus(5), 50, raw="unknown indicator"),
        Record("env.aqi", "1189A", "yesterday-ish", 50, raw="bad time"),
        Record("env.aqi", "1189A", now_minus(-120), 50, raw="future"),
        Record("env.aqi", "1189A", now_minus(5), float("nan"), raw="nan"),
        Record("env.aqi", "1189A", now_minus(5), -3, raw="negative"),
        Record("env.aqi", "1189A", now_minus(5), True, raw="bool"),
    ]
    version = data_version(adapters.engine)
    result = run_source(adapters, "scripted")
    assert (result.status, result.fetched, result.accepted, result.rejected) == ("partial", 10, 2, 8)
    assert data_version(adapters.engine) == version + 1
    with adapters.sessions() as session:
        assert session.scalar(select(func.count()).where(Reading.source_id == "scripted")) == 2
        reasons = {r.raw: (r.field, r.reason) for r in session.scalars(select(RejectedRecord))}
        run = session.get(SourceRun, result.run_id)
    assert (run.status, run.fetched, run.accepted, run.rejected) == ("partial", 10, 2, 8)
    assert reasons["dup"][0] == "value" and "duplicate" in reasons["dup"][1]
    assert reasons["unknown entity"] == ("entity", "unknown station or region 'NOPE'")
    assert reasons["unknown indicator"][0] == "indicator"
    assert reasons["bad time"][0] == "observed_at"
    assert "future" in reasons["future"][1]
    assert reasons["nan"][0] == "value" and "finite" in reasons["nan"][1]
    assert "outside the physical bounds" in reasons["negative"][1]
    assert "boolean" in reasons["bool"][1]


def test_an_empty_batch_is_a_successful_run(adapters):
    ScriptedAdapter.SCRIPT["scripted"] = []
    version = data_version(adapters.engine)
    result = run_source(adapters, "scripted")
    assert (result.status, result.fetched, result.accepted, result.rejected) == ("ok", 0, 0, 0)
    assert data_version(adapters.engine) == version + 1


def test_rerunning_the_same_batch_stores_nothing_twice(adapters):
    ScriptedAdapter.SCRIPT["scripted"] = [
        Record("env.aqi", "1188A", now_minus(m), 60) for m in range(0, 60, 5)
    ]
    run_source(adapters, "scripted")
    run_source(adapters, "scripted")
    with adapters.sessions() as session:
        assert session.scalar(select(func.count()).where(Reading.source_id == "scripted")) == 12


def test_threshold_alert_opens_escalates_and_resolves(adapters):
    times = [now_minus(m) for m in (30, 25, 20, 15, 10)]
    ScriptedAdapter.SCRIPT["scripted"] = [
        Record("test.plain", "1188A", at, v) for at, v in zip(times, (90, 160, 220, 180, 60), strict=True)
    ]
    run_source(adapters, "scripted")
    with adapters.sessions() as session:
        alert = session.scalars(select(Alert).where(Alert.rule_key == "test.plain:threshold")).one()
        kinds = [
            e.kind
            for e in session.scalars(
                select(AlertEvent).where(AlertEvent.alert_id == alert.id).order_by(AlertEvent.at)
            )
        ]
    assert kinds == ["opened", "escalated", "deescalated", "resolved"]
    assert alert.state == "resolved" and alert.peak_severity == 3
    assert "雪浪" in alert.explanation_zh and "Xuelang" in alert.explanation_en
    assert "level III" in alert.explanation_en


def test_one_open_alert_per_rule_and_series_across_runs(adapters):
    for minutes, value in ((20, 160), (15, 170), (10, 230)):
        ScriptedAdapter.SCRIPT["scripted"] = [Record("test.plain", "1188A", now_minus(minutes), value)]
        run_source(adapters, "scripted")
    with adapters.sessions() as session:
        alerts = session.scalars(select(Alert).where(Alert.rule_key == "test.plain:threshold")).all()
    assert len(alerts) == 1 and alerts[0].state == "active" and alerts[0].severity == 3


def test_a_raising_source_logs_an_error_and_stores_nothing(adapters):
    result = run_source(adapters, "raising")
    assert result.status == "error"
    assert "ConnectionError: department server refused the connection" in result.error
    with adapters.sessions() as session:
        run = session.get(SourceRun, result.run_id)
        assert run.status == "error" and run.finished_at is not None
        assert session.get(Source, "raising").watermark is None


def test_a_hanging_source_times_out_without_delaying_others(adapters):
    ScriptedAdapter.SCRIPT["scripted"] = [Record("env.aqi", "1188A", now_minus(5), 70)]
    results = {}

    def run(source_id: str, timeout: float) -> None:
        started = time.monotonic()
        results[source_id] = (run_source(adapters, source_id, timeout=timeout), time.monotonic() - started)

    hanging = threading.Thread(target=run, args=("hanging", 2.0))
    hanging.start()
    time.sleep(0.2)
    run("scripted", 10.0)
    hanging.join(20)
    scripted_result, scripted_seconds = results["scripted"]
    hanging_result, hanging_seconds = results["hanging"]
    assert scripted_result.status == "ok" and scripted_seconds < 2.0
    assert hanging_result.status == "timeout" and 1.9 <= hanging_seconds < 10
    again = run_source(adapters, "hanging", timeout=1.0)
    assert again.status == "timeout" and "still hanging" in again.error


def test_simulator_source_runs(ingest):
    until = utcnow()
    result = run_source(ingest, "wuxi-sim", since=(until - timedelta(hours=1)).isoformat(), until=until)
    assert result.status in ("ok", "partial")
    assert result.accepted > 500
    with ingest.sessions() as session:
        assert session.get(Source, "wuxi-sim").watermark is not None
        stored = session.scalar(select(func.count()).where(Reading.source_id == "wuxi-sim"))
        index = session.execute(
            select(Reading.observed_at, Reading.value)
            .join(Series)
            .where(Series.indicator_key == "index.city")
        ).all()
    assert stored == result.accepted
    assert len(index) == 12  # one per 5-minute bucket of the hour
    assert all(0 <= value <= 100 for _, value in index)
    with ingest.sessions() as session:
        watermark = session.get(Source, "wuxi-sim").watermark
    assert datetime.fromisoformat(watermark) <= until.astimezone(UTC)


def test_scheduler_runs_every_source_and_beats(adapters):
    from core.settings import SourceSettings
    from ingest.scheduler import build_scheduler
    from store.state import last_heartbeat

    ScriptedAdapter.SCRIPT["scripted"] = [Record("env.aqi", "1188A", now_minus(5), 70)]
    extra = [SourceSettings(id=name, type=name, every=1) for name in ("scripted", "raising", "hanging")]
    adapters.settings = adapters.settings.model_copy(
        update={
            "sources": extra,
            "scheduler": adapters.settings.scheduler.model_copy(update={"run_timeout": 1.0}),
        }
    )
    scheduler = build_scheduler(adapters)
    scheduler.start()
    try:
        time.sleep(4.5)
    finally:
        scheduler.shutdown(wait=False)
    with adapters.sessions() as session:
        runs = session.execute(select(SourceRun.source_id, SourceRun.status)).all()
    statuses = {}
    for source_id, status in runs:
        statuses.setdefault(source_id, []).append(status)
    assert statuses["scripted"].count("ok") >= 3, statuses
    assert "error" in statuses["raising"] and len(statuses["raising"]) >= 3
    assert "timeout" in statuses["hanging"]
    beat = last_heartbeat(adapters.engine)
    assert beat is not None and (utcnow() - beat).total_seconds() < 10


def test_indicators_without_thresholds_leave_the_index_alone(adapters):
    ScriptedAdapter.SCRIPT["scripted"] = [Record("hotline.calls_12345", "320213", now_minus(30), 80)]
    run_source(adapters, "scripted")
    with adapters.sessions() as session:
        index = session.scalar(
            select(func.count()).select_from(Reading).join(Series).where(Series.indicator_key == "index.city")
        )
    assert index == 0
