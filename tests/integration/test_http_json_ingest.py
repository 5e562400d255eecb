"""An http_json source end to end: a real local department API -> run_source -> the real store."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from core.settings import SourceSettings
from core.timeutil import utcnow
from ingest.pipeline import run_source
from store.models import Reading, RejectedRecord, Source, SourceRun
from store.sync import sync_sources


class DepartmentApi(ThreadingHTTPServer):
    """The environment bureau's open API: wide AQI + PM2.5 records, with an ETag."""

    daemon_threads = True

    def __init__(self, items: list[Any]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.items = items
        self.requests: list[dict[str, str]] = []

    @property
    def etag(self) -> str:
        return f'"{len(self.items)}"'


class _Handler(BaseHTTPRequestHandler):
    server: DepartmentApi

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.server.requests.append(dict(self.headers.items()))
        if self.headers.get("If-None-Match") == self.server.etag:
            self.send_response(304)
            self.end_headers()
            return
        body = json.dumps({"result": {"list": self.server.items}}, ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", self.server.etag)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's signature
        pass


def _items() -> list[Any]:
    """Four good wide records of real Wuxi air stations (by the bureau's own ids), two bad ones."""
    at = [(utcnow() - timedelta(minutes=m)).replace(microsecond=0).isoformat() for m in (20, 15, 10)]
    return [
        {"siteId": 11, "time": at[0], "aqi": 62, "pm25": 38},
        {"siteId": 12, "time": at[0], "aqi": 75, "pm25": 49},
        {"siteId": 11, "time": at[1], "aqi": 64, "pm25": "—"},  # pm25 rejected, aqi kept
        {"siteId": 99, "time": at[2], "aqi": 50, "pm25": 20},  # not in entity_map: both rejected
    ]


@pytest.fixture
def department():
    api = DepartmentApi(_items())
    thread = threading.Thread(target=api.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield api
    api.shutdown()
    api.server_close()


def _configure(ingest, api: DepartmentApi, **extra: Any) -> None:
    options = {
        "url": f"http://127.0.0.1:{api.server_address[1]}/open/air/realtime",
        "headers": {"Authorization": "Bearer ${DEPT_TOKEN}"},
        "backoff": 0.01,
        "mapping": {
            "records": "$.result.list[*]",
            "entity": "$.siteId",
            "entity_map": {"11": "1188A", "12": "1189A"},
            "observed_at": "$.time",
            "fields": {"$.aqi": "env.aqi", "$.pm25": "env.pm25"},
        },
    } | extra
    source = SourceSettings(id="dept-air", type="http_json", every=300, options=options)
    with ingest.sessions() as session:
        sync_sources(session, list(ingest.settings.sources) + [source])
        session.commit()


def _counts(ingest) -> tuple[int, int]:
    with ingest.sessions() as session:
        readings = session.scalar(select(func.count()).where(Reading.source_id == "dept-air"))
        rejected = session.scalar(select(func.count()).where(RejectedRecord.source_id == "dept-air"))
    return readings, rejected


def test_an_http_json_source_runs_end_to_end(ingest, department, monkeypatch):
    monkeypatch.setenv("DEPT_TOKEN", "air-2026")
    _configure(ingest, department)

    first = run_source(ingest, "dept-air")
    assert (first.status, first.fetched, first.accepted, first.rejected) == ("partial", 8, 5, 3)
    assert department.requests[0]["Authorization"] == "Bearer air-2026"
    assert _counts(ingest) == (5, 3)
    with ingest.sessions() as session:
        reasons = sorted((r.field, r.reason) for r in session.scalars(select(RejectedRecord)))
        watermark = json.loads(session.get(Source, "dept-air").watermark)
    assert reasons == [
        ("entity", "unknown station or region '99'"),
        ("entity", "unknown station or region '99'"),
        ("value", "not a number: '—'"),
    ]
    assert watermark["etag"] == '"4"'

    second = run_source(ingest, "dept-air")  # unchanged: a 304, nothing fetched, nothing stored twice
    assert (second.status, second.fetched, second.accepted, second.rejected) == ("ok", 0, 0, 0)
    assert department.requests[1]["If-None-Match"] == '"4"'
    assert _counts(ingest) == (5, 3)
    with ingest.sessions() as session:
        assert json.loads(session.get(Source, "dept-air").watermark) == watermark
        runs = session.scalar(select(func.count()).where(SourceRun.source_id == "dept-air"))
    assert runs == 2


def test_a_resent_answer_updates_and_never_duplicates(ingest, department, monkeypatch):
    monkeypatch.setenv("DEPT_TOKEN", "air-2026")
    _configure(ingest, department, conditional=False)
    run_source(ingest, "dept-air")
    department.items[0]["aqi"] = 66  # the bureau corrects a reading and sends everything again
    again = run_source(ingest, "dept-air")
    assert (again.fetched, again.accepted) == (8, 5)
    assert "If-None-Match" not in department.requests[1]
    with ingest.sessions() as session:
        values = session.scalars(
            select(Reading.value).where(Reading.source_id == "dept-air").order_by(Reading.observed_at)
        ).all()
    assert len(values) == 5 and 66 in values and 62 not in values


def test_an_unreachable_department_fails_the_run_and_keeps_the_watermark(ingest, department, monkeypatch):
    monkeypatch.setenv("DEPT_TOKEN", "air-2026")
    _configure(ingest, department, retries=1)
    run_source(ingest, "dept-air")
    with ingest.sessions() as session:
        watermark = session.get(Source, "dept-air").watermark
    department.shutdown()
    department.server_close()
    result = run_source(ingest, "dept-air")
    assert result.status == "error"
    assert "HttpJsonError: GET http://127.0.0.1:" in result.error and "2 attempt(s)" in result.error
    with ingest.sessions() as session:
        assert session.get(Source, "dept-air").watermark == watermark
