"""The leaders' pages stay honest through an outage: their memo keys on the data version AND the
minute, so an hour with no new data (the version stands still) still shows "delayed N min" on / and
in the /map panel, through real requests to the app with its real cache."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest

from callbacks import map_page, overview, views
from core.i18n import t
from core.timeutil import utcnow
from ingest.pipeline import run_source
from tests.dash_requests import router
from tests.integration.test_auth import build_app

DISTRICT = "320211"
ENGLISH = {"Accept-Language": "en"}


@pytest.fixture
def app(ingest, tmp_path):
    until = utcnow()
    run_source(ingest, "wuxi-sim", since=(until - timedelta(hours=1)).isoformat(), until=until)
    return build_app(ingest, tmp_path, anonymous=True)


def page_text(client, path: str, search: str = "") -> str:
    response = client.post("/_dash-update-component", json=router(path, search), headers=ENGLISH)
    assert response.status_code == 200, response.text
    return response.text


def an_hour_later(monkeypatch) -> None:
    later = utcnow() + timedelta(hours=1)
    clock = time.time() + 3600
    monkeypatch.setattr(views, "time", SimpleNamespace(time=lambda: clock))
    for module in (views, overview, map_page):
        monkeypatch.setattr(module, "utcnow", lambda: later)


def test_an_hour_of_silence_shows_as_delayed_on_the_overview_and_the_map_panel(app, monkeypatch):
    """Some figures may already be late (the service hall is closed at night), so the test counts:
    an hour later every figure with data is delayed, many more than before."""
    client = app.server.test_client()
    delayed = t("overview.delayed", "en", minutes=60).split("60")[0]  # "delayed "
    cards_before = page_text(client, "/").count(delayed)
    panel_before = page_text(client, "/map", f"?district={DISTRICT}").count("vital-delayed")

    an_hour_later(monkeypatch)  # no ingest: the data version stands still
    cards_after = page_text(client, "/").count(delayed)
    panel_after = page_text(client, "/map", f"?district={DISTRICT}").count("vital-delayed")
    assert cards_after >= cards_before + 20, (cards_before, cards_after)
    assert panel_after >= panel_before + 10, (panel_before, panel_after)
