"""The wall's view from a real store (SQLite and PostgreSQL): what a clearance sees, and what an
outage looks like an hour later: every figure delayed and greyed with its last value, never a zero."""

from __future__ import annotations

from datetime import timedelta

import pytest

from callbacks import screen as screen_callbacks
from callbacks import views
from callbacks.map_views import places
from callbacks.screen import build_view, station_layer
from core.levels import STALE_COLOUR
from core.timeutil import utcnow
from ingest.pipeline import run_source
from web.auth import visible_indicators
from web.runtime import WebRuntime


@pytest.fixture
def runtime(ingest):
    until = utcnow()
    run_source(ingest, "wuxi-sim", since=(until - timedelta(hours=1)).isoformat(), until=until)
    return WebRuntime(ingest.settings, ingest.engine, ingest.city, ingest.catalog, None, "test")


def view_for(runtime, classes: tuple[str, ...], lang: str = "en"):
    layer = station_layer(runtime, visible_indicators(runtime, classes))
    return layer, build_view(runtime, layer, places(runtime.city), lang, classes)


def test_a_visitor_sees_public_figures_and_a_source_that_never_ran_as_waiting(runtime):
    layer, view = view_for(runtime, ("public",))
    keys = [kpi.key for kpi in view.kpis]
    assert "energy.load_rate" not in keys and "env.aqi" in keys
    assert all(key != "energy.load_rate" for _, key in layer.stations)
    hotline = next(kpi for kpi in view.kpis if kpi.key == "hotline.calls_12345")
    assert hotline.missing and hotline.value_text == "—"  # its feed has not run: no data, not zero
    fresh = [kpi for kpi in view.kpis if kpi.key != "hotline.calls_12345"]
    assert all(kpi.delayed_minutes is None and not kpi.missing for kpi in fresh)
    assert view.gauge is not None and not view.gauge.city.missing and len(view.gauge.domains) >= 8
    assert len(view.maps["env.aqi"].districts) == len(runtime.city.districts)
    assert view.freshness.state == "waiting" and not view.freshness.outages
    assert all(0 <= int(position) < len(layer.stations) for position in view.station_levels)
    assert all(len(trend.values) == 24 for trend in view.trends)
    assert [step.indicator or step.page for step in view.steps][:3] == [
        "env.aqi",
        "traffic.tpi",
        "weather.rainfall",
    ]


def test_an_officer_sees_internal_figures_too(runtime):
    layer, view = view_for(runtime, ("internal", "public", "restricted"))
    assert "energy.load_rate" in [kpi.key for kpi in view.kpis]
    assert any(key == "energy.load_rate" for _, key in layer.stations)


def test_an_hour_of_silence_greys_everything_with_its_last_value(runtime, monkeypatch):
    _, before = view_for(runtime, ("public",))
    later = utcnow() + timedelta(hours=1)
    monkeypatch.setattr(screen_callbacks, "utcnow", lambda: later)
    monkeypatch.setattr(views, "utcnow", lambda: later)
    layer, after = view_for(runtime, ("public",))
    for old, new in zip(before.kpis, after.kpis, strict=True):
        assert new.value_text == old.value_text
        assert new.missing or new.delayed_minutes >= 60
    assert (
        after.gauge.city.delayed_minutes >= 60 and after.gauge.city.value_text == before.gauge.city.value_text
    )
    assert after.freshness.state == "down"
    assert [s.id for s in after.freshness.outages] == ["wuxi-sim"]
    assert after.freshness.outages[0].text.startswith("no readings for ")
    assert set(after.station_levels.values()) == {-1} and len(after.station_levels) == len(layer.stations)
    assert all(d["colour"] == STALE_COLOUR for d in after.maps["env.aqi"].districts.values())
