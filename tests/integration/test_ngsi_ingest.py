"""The NGSI adapter end to end: a context broker the test runs (NGSI-v2 and NGSI-LD, paged, with
tenants and modification times) -> run_source -> the real store, on SQLite and PostgreSQL.

The broker serves copies of the Smart Data Models examples moved onto Wuxi's stations (the
originals lie in Spain and Portugal), plus one left in Madrid, which no city entity holds.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
from datetime import UTC
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import select

from core.settings import SourceSettings
from ingest.pipeline import run_source
from store.models import Reading, RejectedRecord, Series, Source
from store.sync import sync_sources

REPO = Path(__file__).resolve().parents[2]
SDM = REPO.parent / "shared" / "testdata" / "sdm"
CONTEXT = "https://smart-data-models.github.io/data-models/context.jsonld"
LOADED = "2024-05-01T00:00:00.000Z"  # every entity loaded in one batch: a tie on the watermark
FORMS = {"v2": "example-normalized.json", "ld": "example-normalized.jsonld"}


class Broker:
    """The state and behaviour of the test's context broker; the handler below serves it."""

    def __init__(self) -> None:
        self.entities: dict[str, list[tuple[dict, str]]] = {"v2": [], "ld": []}
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.tenant, self.service_path = "wuxi", "/environment"
        self.fail_with: int | None = None
        self.ignore_offset = False
        self.url = ""

    def answer(self, api: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, dict, object]:
        if self.fail_with:
            return self.fail_with, {}, {"error": "InternalError", "description": "database unavailable"}
        if api == "v2":
            tenant_ok = headers.get("fiware-service") == self.tenant
            tenant_ok &= headers.get("fiware-servicepath") == self.service_path
        else:
            tenant_ok = headers.get("ngsild-tenant") == self.tenant
            tenant_ok &= f"<{CONTEXT}>" in headers.get("link", "")  # else the type expands elsewhere
        selected = [(e, m) for e, m in self.entities[api] if tenant_ok and e["type"] == params.get("type")]
        offset, limit = int(params.get("offset", 0)), int(params.get("limit", 20))
        page = selected[:limit] if self.ignore_offset else selected[offset : offset + limit]
        body = []
        for entity, modified in page:
            entity = copy.deepcopy(entity)
            if api == "v2" and "dateModified" in params.get("attrs", ""):
                entity["dateModified"] = {"type": "DateTime", "value": modified, "metadata": {}}
            if api == "ld" and "sysAttrs" in params.get("options", ""):
                entity["modifiedAt"] = modified
            body.append(entity)
        count = {}
        if api == "v2" and "count" in params.get("options", ""):
            count = {"Fiware-Total-Count": str(len(selected))}
        if api == "ld" and params.get("count") == "true":
            count = {"NGSILD-Results-Count": str(len(selected))}
        return 200, count, body


class Handler(BaseHTTPRequestHandler):
    broker: Broker

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.broker.requests.append((url.path, params, headers))
        api = {"/v2/entities": "v2", "/ngsi-ld/v1/entities": "ld"}.get(url.path)
        if api is None:
            status, extra, body = 404, {}, {"error": "NotFound"}
        else:
            status, extra, body = self.broker.answer(api, params, headers)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def broker():
    state = Broker()
    handler = type("BoundHandler", (Handler,), {"broker": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def example(model: str, api: str) -> dict:
    if not SDM.is_dir():
        pytest.skip(f"{SDM} is absent: the Smart Data Models examples are shared test data outside the repo")
    return json.loads((SDM / model / FORMS[api]).read_text(encoding="utf-8"))


def moved(entity: dict, geometry: dict, suffix: str = "", **values: float) -> dict:
    """A copy of an example at `geometry` (its location keeps its form), with a new id suffix and values."""
    entity = copy.deepcopy(entity)
    entity["id"] += suffix
    entity["location"]["value"] = geometry
    for name, value in values.items():
        entity[name]["value"] = value
    return entity


def station(ingest, code: str) -> tuple[float, float]:
    found = next(s for s in ingest.city.stations if s.code == code)
    return found.lon, found.lat


def near(ingest, code: str) -> dict:
    lon, lat = station(ingest, code)
    return {"type": "Point", "coordinates": [lon + 0.0005, lat]}  # about 50 m east


def load(broker: Broker, ingest, api: str) -> None:
    """The examples on Wuxi's stations: three lanes of one road, and one air entity left in Madrid."""
    lon, lat = station(ingest, "RD01")
    road = {"type": "LineString", "coordinates": [[lon - 0.001, lat - 0.0005], [lon + 0.001, lat + 0.0005]]}
    traffic = example("TrafficFlowObserved", api)
    air = example("AirQualityObserved", api)
    entities = [
        moved(air, near(ingest, "1188A")),
        moved(air, air["location"]["value"], "-madrid"),
        moved(example("NoiseLevelObserved", api), near(ingest, "NS01")),
        moved(example("OffStreetParking", api), near(ingest, "PK01")),
        moved(example("ParkingSpot", api), near(ingest, "PK02")),
        moved(traffic, road, "-lane1"),
        moved(traffic, road, "-lane2", intensity=150, averageVehicleSpeed=48.0),
        moved(traffic, road, "-lane3", intensity=120, averageVehicleSpeed=44.0),
        moved(example("WaterQualityObserved", api), near(ingest, "RV01")),
        moved(example("WeatherObserved", api), near(ingest, "RV02")),
    ]
    broker.entities[api] = [(entity, LOADED) for entity in entities]


def configure(ingest, source_id: str, options: dict) -> None:
    source = SourceSettings(id=source_id, type="ngsi", every=60, options=options)
    with ingest.sessions() as session:
        sync_sources(session, [*ingest.settings.sources, source])
        session.commit()


def stored(ingest, source_id: str) -> set[tuple]:
    with ingest.sessions() as session:
        rows = session.execute(
            select(Series.indicator_key, Series.entity, Reading.observed_at, Reading.value)
            .join(Series, Series.id == Reading.series_id)
            .where(Reading.source_id == source_id)
        ).all()
    return {(key, entity, at.astimezone(UTC).isoformat(), round(value, 6)) for key, entity, at, value in rows}


def rejections(ingest, source_id: str) -> list[tuple[str, str]]:
    with ingest.sessions() as session:
        rows = session.scalars(select(RejectedRecord).where(RejectedRecord.source_id == source_id)).all()
        return sorted((r.field, r.reason) for r in rows)


T_AIR, T_TRAFFIC, T_WEATHER = (
    "2016-03-15T03:00:00+00:00",
    "2016-12-07T11:15:00+00:00",
    "2016-11-30T07:00:00+00:00",
)
MADRID = "unknown station or region 'Madrid-AmbientObserved-28079004-2016-03-15T11:00:00-madrid'"
COMMON = {
    ("env.no2", "1188A", T_AIR, 69.0),
    ("weather.temperature", "320211", T_AIR, 12.2),
    ("weather.wind_speed", "320211", T_AIR, 0.64),
    ("env.noise", "NS01", "2016-12-28T12:00:00+00:00", 67.8),
    ("traffic.parking_occupancy", "PK01", "2018-09-21T12:00:00+00:00", 68.0),
    ("traffic.road_volume", "RD01", T_TRAFFIC, (197 + 150 + 120) * 12.0),  # three lanes, 5 minutes
    ("traffic.road_speed", "RD01", T_TRAFFIC, round((52.6 + 48.0 + 44.0) / 3, 6)),
    ("weather.temperature", "320206", T_WEATHER, 3.3),
    ("weather.wind_speed", "320206", T_WEATHER, 2.0),
    ("water.river_level", "RV02", T_WEATHER, 0.5),
}


def test_an_ngsi_v2_broker_end_to_end(ingest, broker):
    load(broker, ingest, "v2")
    options = {"url": broker.url, "service": "wuxi", "service_path": "/environment", "page_size": 2}
    configure(ingest, "orion-v2", options)

    first = run_source(ingest, "orion-v2")
    assert (first.status, first.fetched, first.accepted, first.rejected) == ("partial", 16, 11, 5), first
    assert stored(ingest, "orion-v2") == COMMON | {("weather.rainfall", "320206", T_WEATHER, 0.1)}
    # The relocated air entity's precipitation is a Boolean in this form; the Madrid copy's four
    # readings have no city entity.
    assert rejections(ingest, "orion-v2") == sorted(
        [("value", "a boolean (False) is not a measurement")] + [("entity", MADRID)] * 4
    )

    traffic = [p for _, p, _ in broker.requests if p.get("type") == "TrafficFlowObserved"]
    assert [p["offset"] for p in traffic] == ["0", "2"]  # three lanes in pages of two
    assert all(p["options"] == "count" and "dateModified" in p["attrs"] for _, p, _ in broker.requests)
    assert {p["type"] for _, p, _ in broker.requests} == {
        "AirQualityObserved",
        "NoiseLevelObserved",
        "OffStreetParking",
        "TrafficFlowObserved",
        "WaterQualityObserved",
        "WeatherObserved",
    }
    with ingest.sessions() as session:
        assert session.get(Source, "orion-v2").watermark == "2024-05-01T00:00:00+00:00"

    again = run_source(ingest, "orion-v2")  # nothing changed: every entity ties the watermark
    assert (again.status, again.fetched) == ("ok", 0)

    noise, _ = broker.entities["v2"][2]
    noise = copy.deepcopy(noise)
    noise["LAeq"]["value"] = 71.5
    noise["dateObservedTo"]["value"] = "2016-12-28T13:00:00.00Z"
    broker.entities["v2"][2] = (noise, "2024-05-01T00:01:00.000Z")
    third = run_source(ingest, "orion-v2")
    assert (third.status, third.fetched, third.accepted) == ("ok", 1, 1)
    assert ("env.noise", "NS01", "2016-12-28T13:00:00+00:00", 71.5) in stored(ingest, "orion-v2")


def test_an_ngsi_ld_broker_end_to_end(ingest, broker, monkeypatch):
    load(broker, ingest, "ld")
    monkeypatch.setenv("NGSI_TEST_TOKEN", "s3cret")
    options = {
        "url": broker.url,
        "api": "ld",
        "service": "wuxi",
        "context": CONTEXT,
        "page_size": 2,
        "headers": {"X-Auth-Token": "${NGSI_TEST_TOKEN}"},
    }
    configure(ingest, "orion-ld", options)

    first = run_source(ingest, "orion-ld")
    assert (first.status, first.fetched, first.accepted, first.rejected) == ("partial", 16, 12, 4), first
    dry = {("weather.rainfall", "320211", T_AIR, 0.0), ("weather.rainfall", "320206", T_WEATHER, 0.0)}
    assert stored(ingest, "orion-ld") == COMMON | dry
    reasons = rejections(ingest, "orion-ld")
    assert len(reasons) == 4 and all(
        field == "entity"
        and reason.startswith("unknown station or region 'urn:ngsi-ld:AirQualityObserved:Madrid")
        for field, reason in reasons
    )
    traffic = [p for _, p, _ in broker.requests if p.get("type") == "TrafficFlowObserved"]
    assert [p["offset"] for p in traffic] == ["0", "2"]
    _, params, headers = broker.requests[0]
    assert params["count"] == "true" and params["options"] == "sysAttrs"
    assert headers["ngsild-tenant"] == "wuxi" and headers["link"].startswith(f"<{CONTEXT}>; rel=")
    assert headers["x-auth-token"] == "s3cret"  # from the environment, not the configuration
    assert run_source(ingest, "orion-ld").fetched == 0


def test_a_failing_broker_fails_the_run_naming_it(ingest, broker):
    configure(ingest, "orion-down", {"url": broker.url})
    broker.fail_with = 500
    result = run_source(ingest, "orion-down")
    assert result.status == "error"
    assert "NgsiError: GET http://127.0.0.1" in result.error and "HTTP 500" in result.error
    assert "database unavailable" in result.error

    broker.fail_with, broker.ignore_offset = None, True
    load(broker, ingest, "v2")
    configure(
        ingest,
        "orion-down",
        {"url": broker.url, "service": "wuxi", "service_path": "/environment", "page_size": 2},
    )
    result = run_source(ingest, "orion-down")
    assert result.status == "error" and "answered offset 2 with the same page" in result.error
    with ingest.sessions() as session:
        assert session.get(Source, "orion-down").watermark is None


def test_an_unreachable_broker(ingest):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure(ingest, "orion-gone", {"url": f"http://127.0.0.1:{port}", "timeout": "2s"})
    result = run_source(ingest, "orion-gone")
    assert result.status == "error" and "ConnectError" in result.error and str(port) in result.error
