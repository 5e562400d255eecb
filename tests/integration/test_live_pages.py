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
    client = app.server.test_client()
    delayed = t("overview.delayed", "en", minutes=60).split("60")[0]  # "delayed "
    assert delayed not in page_text(client, "/")
    assert "vital-delayed" not in page_text(client, "/map", f"?district={DISTRICT}")

    an_hour_later(monkeypatch)  # no ingest: the data version stands still
    assert delayed in page_text(client, "/")
    assert "vital-delayed" in page_text(client, "/map", f"?district={DISTRICT}")
