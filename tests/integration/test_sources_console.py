"""The sources console: health and freshness from real runs, quarantine with reasons, "run now"."""

from __future__ import annotations

from datetime import timedelta

import pytest

from callbacks.sources import freshness, rejected_views, source_views
from core.settings import SourceSettings
from core.timeutil import utcnow
from ingest.pipeline import run_source
from ingest.scheduler import _pick_up_run_requests, build_scheduler
from store.queries import SourceHealth
from store.state import run_requests
from store.sync import sync_sources
from tests.integration.test_auth import build_app, callback_body, sign_in


@pytest.fixture
def glitchy(ingest):
    """The simulator with many malformed records, so a run is partly rejected."""
    source = SourceSettings(
        id="glitchy", type="simulator", every=60, options={"glitch_rate": 0.2, "indicators": ["env.aqi"]}
    )
    ingest.settings.sources.append(source)
    with ingest.sessions() as session:
        sync_sources(session, ingest.settings.sources)
        session.commit()
    yield ingest
    ingest.settings.sources.remove(source)


def runtime_of(ingest):
    from types import SimpleNamespace

    return SimpleNamespace(settings=ingest.settings, engine=ingest.engine, catalog=ingest.catalog)


def test_health_freshness_and_quarantine_come_from_real_runs(glitchy):
    result = run_source(glitchy, "glitchy", since=(utcnow() - timedelta(hours=2)).isoformat())
    assert result.status == "partial" and result.rejected > 0 and result.accepted > 0
    views = {v.id: v for v in source_views(runtime_of(glitchy), "en")}
    view = views["glitchy"]
    assert (view.status, view.accepted, view.rejected) == ("partial", result.accepted, result.rejected)
    assert view.fresh_state == "fresh" and view.type == "simulator"
    assert views["wuxi-sim"].status == "never" and views["wuxi-sim"].fresh_state == "none"
    rejected = rejected_views(runtime_of(glitchy), "glitchy")
    assert len(rejected) == result.rejected
    assert all(r.reason and r.field and r.raw for r in rejected)
    assert rejected_views(runtime_of(glitchy), "wuxi-hotline") == []


def test_freshness_is_judged_against_the_expected_cadence():
    now = utcnow()

    def health(minutes_old: float) -> SourceHealth:
        return SourceHealth(
            "s", "csv", True, 60, "ok", now, now, None, 1, 0, now - timedelta(minutes=minutes_old), 300
        )

    assert freshness(health(4), now, "en") == ("4 min ago", "fresh")
    assert freshness(health(20), now, "en")[1] == "late"
    assert freshness(health(45), now, "zh-CN") == ("45 分钟前", "stale")


def test_run_now_is_for_admins_and_reaches_the_scheduler(ingest, tmp_path):
    app = build_app(ingest, tmp_path, anonymous=False)
    body = callback_body(app, "sources-run-status")
    body["inputs"] = [
        [{"id": {"type": "source-run", "source": "wuxi-hotline"}, "property": "n_clicks", "value": 1}]
    ]
    body["changedPropIds"] = ['{"source":"wuxi-hotline","type":"source-run"}.n_clicks']
    body["state"] = [{"id": "ui-lang", "property": "data", "value": "en"}]
    officer = app.server.test_client()
    sign_in(officer, "otto")
    assert officer.get("/sources").status_code == 200
    assert officer.post("/_dash-update-component", json=body).status_code == 403
    admin = app.server.test_client()
    sign_in(admin, "ada")
    answer = admin.post("/_dash-update-component", json=body)
    assert answer.status_code == 200 and b"Run of wuxi-hotline requested" in answer.data
    assert run_requests(ingest.engine)["wuxi-hotline"][1] == "ada"

    scheduler = build_scheduler(ingest)
    scheduler.start(paused=True)
    try:
        job = scheduler.get_job("source:wuxi-hotline")
        job.modify(next_run_time=utcnow() + timedelta(hours=1))
        _pick_up_run_requests(ingest, scheduler)
        assert scheduler.get_job("source:wuxi-hotline").next_run_time <= utcnow()
        assert run_requests(ingest.engine) == {}
    finally:
        scheduler.shutdown(wait=False)
