"""The gunicorn entry point serves the app from a migrated store without migrating itself."""

from __future__ import annotations

import json


def test_create_wsgi_serves_healthz_and_pages(ingest, monkeypatch):
    from app import create_wsgi
    from store.state import beat

    with ingest.sessions() as session:
        beat(session)
    server = create_wsgi()
    client = server.test_client()
    response = client.get("/healthz")
    report = json.loads(response.data)
    assert response.status_code == 200 and report["database"]["ok"] and report["scheduler"]["alive"]
    assert client.get("/screen").status_code == 200
    layout = client.get("/_dash-layout", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert b"Wuxi City Operations Center" in layout.data


def test_healthz_is_503_without_a_scheduler(ingest):
    from app import create_wsgi

    response = create_wsgi().test_client().get("/healthz")
    assert response.status_code == 503
    assert json.loads(response.data)["scheduler"]["alive"] is False
