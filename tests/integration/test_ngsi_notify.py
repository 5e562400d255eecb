"""POST /api/v1/ngsi/<source>/notify against the real app and store (SQLite and PostgreSQL): the
Smart Data Models examples as NGSI-v2 and NGSI-LD notifications go through the one pipeline
(readings, quarantine, alerts, the run log, the audit), and every refusal says why."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from core.settings import SourceSettings
from core.timeutil import utcnow
from store.models import Alert, AuditEntry, Reading, RejectedRecord, Series, SourceRun
from store.sync import sync_sources
from store.users import create_token, create_user

SDM = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "sdm"
# The examples lie in Spain and Portugal: each source maps their ids to Wuxi stations.
EXAMPLES = {
    "Madrid-AmbientObserved-28079004-2016-03-15T11:00:00": "1188A",
    "Vitoria-NoiseLevelObserved-2016-12-28T11:00:00_2016-12-28T12:00:00": "NS01",
    "TrafficFlowObserved-Valladolid-osm-60821110": "RD01",
    "Spain-WeatherObserved-Valladolid-2016-11-30T07:00:00.00Z": "RV02",
    "Valladolid.2016-11-30T07-00-00.00Z": "RV02",
    "urn:ngsi-ld:AirQualityObserved:wuxi-xuelang": "1188A",
}
BROKER_TOKEN = "eco-orion-broker-7f3a9c"  # the source's own notify_token
MODELS = ("AirQualityObserved", "NoiseLevelObserved", "TrafficFlowObserved", "WeatherObserved")
T_AIR, T_NOISE = datetime(2016, 3, 15, 3, tzinfo=UTC), datetime(2016, 12, 28, 12, tzinfo=UTC)
T_TRAFFIC, T_WEATHER = datetime(2016, 12, 7, 11, 15, tzinfo=UTC), datetime(2016, 11, 30, 7, tzinfo=UTC)
# What the v2 normalized examples give (tests/unit/test_ngsi.py holds every form).
V2_READINGS = {
    ("weather.temperature", "320211", T_AIR, 12.2),
    ("weather.wind_speed", "320211", T_AIR, 0.64),
    ("env.no2", "1188A", T_AIR, 69.0),
    ("env.noise", "NS01", T_NOISE, 67.8),
    ("traffic.road_volume", "RD01", T_TRAFFIC, 2364.0),
    ("traffic.road_speed", "RD01", T_TRAFFIC, 52.6),
    ("weather.temperature", "320206", T_WEATHER, 3.3),
    ("weather.wind_speed", "320206", T_WEATHER, 2.0),
    ("water.river_level", "RV02", T_WEATHER, 0.5),
    ("weather.rainfall", "320206", T_WEATHER, 0.1),
}
LD_READINGS = (V2_READINGS - {("weather.rainfall", "320206", T_WEATHER, 0.1)}) | {
    ("weather.rainfall", "320211", T_AIR, 0.0),
    ("weather.rainfall", "320206", T_WEATHER, 0.0),
}


def example(model: str, name: str) -> dict:
    if not SDM.is_dir():
        pytest.skip(f"{SDM} is absent: the Smart Data Models examples are shared test data outside the repo")
    return json.loads((SDM / model / name).read_text(encoding="utf-8"))


def v2_notification() -> dict:
    data = [example(model, "example-normalized.json") for model in MODELS]
    return {"subscriptionId": "57458eb60962ef754e7c0998", "data": data}


def ld_notification() -> dict:
    return {
        "id": "urn:ngsi-ld:Notification:5fd0fa684eb81930c97005f3",
        "type": "Notification",
        "subscriptionId": "urn:ngsi-ld:Subscription:wuxi-environment",
        "notifiedAt": "2024-05-01T08:00:00.000Z",
        "data": [example(model, "example-normalized.jsonld") for model in MODELS],
    }


@pytest.fixture
def server(ingest):
    """The app of a production-like deployment with four sources and an admin's and an officer's token."""
    from web.app_factory import create_dash

    own = {"testValue": "test.plain"}
    sources = [
        SourceSettings(
            id="eco-orion",
            type="ngsi",
            every=3600,
            options={
                "url": "http://orion.invalid:1026",
                "entity_map": EXAMPLES,
                "attributes": {"AirQualityObserved": own},
                "notify_token": BROKER_TOKEN,
            },
        ),
        SourceSettings(
            id="eco-ld",
            type="ngsi",
            every=3600,
            options={"url": "http://scorpio.invalid:9090", "api": "ld", "entity_map": EXAMPLES},
        ),
        SourceSettings(id="unmapped", type="ngsi", every=3600, options={"url": "http://orion.invalid:1026"}),
        SourceSettings(
            id="paused", type="ngsi", every=3600, enabled=False, options={"url": "http://x.invalid"}
        ),
    ]
    with ingest.sessions() as session:
        sync_sources(session, [*ingest.settings.sources, *sources])
        ada = create_user(session, "ada", "ada-password-1", "admin")
        otto = create_user(session, "otto", "otto-password-1", "officer")
        tokens = {
            name: create_token(session, "api", f"{name}'s", user.id)[1]
            for name, user in (("ada", ada), ("otto", otto))
        }
        session.commit()
    settings = ingest.settings.model_copy(
        update={"auth": ingest.settings.auth.model_copy(update={"anonymous": False})}
    )
    app = create_dash(settings, ingest.engine, ingest.city, ingest.catalog, "test").server
    app.config["TESTING"] = True
    app.citybrain_tokens = tokens
    app.citybrain_ingest = ingest
    return app


def post(server, source: str, body: object, who: str | None = "ada", content_type: str = "application/json"):
    headers = {"Authorization": f"Bearer {server.citybrain_tokens[who]}"} if who else {}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return server.test_client().post(
        f"/api/v1/ngsi/{source}/notify", data=data, headers=headers, content_type=content_type
    )


def readings(server, source: str) -> set[tuple]:
    with server.citybrain_ingest.sessions() as session:
        rows = session.execute(
            select(Series.indicator_key, Series.entity, Reading.observed_at, Reading.value)
            .join(Series, Series.id == Reading.series_id)
            .where(Reading.source_id == source)
        )
        return {(key, entity, at, round(value, 6)) for key, entity, at, value in rows}


def refused(response, status: int, code: str, *words: str) -> None:
    assert response.status_code == status, response.data
    body = response.get_json()
    assert body["error"] == code and all(word in body["reason"] for word in words), body


def test_a_v2_notification_of_the_examples_is_stored_as_one_run(server):
    response = post(server, "eco-orion", v2_notification())
    assert response.status_code == 204 and response.data == b""
    assert readings(server, "eco-orion") == V2_READINGS
    with server.citybrain_ingest.sessions() as session:
        run = session.scalars(select(SourceRun).where(SourceRun.source_id == "eco-orion")).one()
        rejected = session.scalars(select(RejectedRecord).where(RejectedRecord.run_id == run.id)).one()
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "source.notify")).one()
    assert (run.status, run.fetched, run.accepted, run.rejected) == ("partial", 11, 10, 1)
    assert rejected.reason == "a boolean (False) is not a measurement"  # the example's precipitation
    assert json.loads(rejected.raw)["precipitation"]["value"] is False
    assert (audit.actor, audit.target) == ("ada", "source:eco-orion") and f"run {run.id}" in audit.detail
    assert post(server, "eco-orion", v2_notification()).status_code == 204  # sent again: nothing twice
    assert readings(server, "eco-orion") == V2_READINGS


def test_an_ld_notification_as_json_ld(server):
    response = post(server, "eco-ld", ld_notification(), content_type="application/ld+json")
    assert response.status_code == 204, response.data
    assert readings(server, "eco-ld") == LD_READINGS


def test_a_notification_raises_its_alert_before_the_answer(server):
    now = (utcnow() - timedelta(minutes=1)).replace(microsecond=0)
    entity = {
        "id": "urn:ngsi-ld:AirQualityObserved:wuxi-xuelang",
        "type": "AirQualityObserved",
        "dateObserved": now.isoformat(),
        "testValue": 250,
    }
    assert post(server, "eco-orion", {"subscriptionId": "s1", "data": [entity]}).status_code == 204
    with server.citybrain_ingest.sessions() as session:
        alert = session.scalars(select(Alert).where(Alert.rule_key == "test.plain:threshold")).one()
    assert (alert.state, alert.severity, alert.value) == ("active", 3, 250.0)


def test_who_may_notify(server):
    refused(post(server, "eco-orion", v2_notification(), who=None), 401, "unauthorized")
    refused(post(server, "eco-orion", v2_notification(), who="otto"), 403, "forbidden", "officer")
    server.citybrain_tokens["bad"] = "not-a-token"
    refused(post(server, "eco-orion", v2_notification(), who="bad"), 401, "unauthorized")
    assert readings(server, "eco-orion") == set()


def test_bodies_that_are_no_notification(server):
    refused(
        post(server, "eco-orion", b"{not json", content_type="application/json"), 400, "bad_request", "line 1"
    )
    refused(
        post(server, "eco-orion", [{"id": "x", "type": "AirQualityObserved"}]), 400, "bad_request", "object"
    )
    refused(post(server, "eco-orion", {"data": []}), 400, "bad_request", "subscriptionId")
    refused(
        post(server, "eco-orion", {"subscriptionId": "s", "data": {"id": "x"}}), 400, "bad_request", "data"
    )
    refused(post(server, "eco-orion", b"<xml/>", content_type="text/xml"), 415, "unsupported_media_type")
    padding = {"subscriptionId": "s", "data": [], "padding": "x" * (1024 * 1024)}
    refused(post(server, "eco-orion", padding), 413, "too_large")
    with server.citybrain_ingest.sessions() as session:
        assert session.scalars(select(SourceRun).where(SourceRun.source_id == "eco-orion")).all() == []


def test_sources_that_take_no_notification(server):
    refused(post(server, "nowhere", v2_notification()), 404, "not_found", "nowhere")
    refused(post(server, "wuxi-sim", v2_notification()), 404, "not_found", "wuxi-sim")  # not an ngsi source
    refused(post(server, "paused", v2_notification()), 422, "unprocessable", "disabled")


def test_a_notification_of_nothing_usable_is_refused_and_quarantined(server):
    """Without an entity_map the examples lie outside the city: every reading is rejected."""
    response = post(server, "unmapped", v2_notification())
    refused(response, 422, "unprocessable", "none of the", "unknown station or region")
    with server.citybrain_ingest.sessions() as session:
        run = session.scalars(select(SourceRun).where(SourceRun.source_id == "unmapped")).one()
        quarantined = session.scalars(select(RejectedRecord).where(RejectedRecord.run_id == run.id)).all()
    assert run.status == "partial" and run.accepted == 0 and len(quarantined) == run.rejected == 11


def test_the_receiver_is_in_the_openapi_document(server):
    doc = server.test_client().get("/api/v1/openapi.json").get_json()
    operation = doc["paths"]["/api/v1/ngsi/{source_id}/notify"]["post"]
    assert {"204", "400", "401", "403", "404", "413", "415", "422"} == set(operation["responses"])
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    body = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert set(body["required"]) == {"subscriptionId", "data"}


def post_as_broker(server, source: str, body: object, token: str):
    return server.test_client().post(
        f"/api/v1/ngsi/{source}/notify", json=body, headers={"X-CityBrain-Source-Token": token}
    )


def test_the_brokers_own_token_opens_its_source_and_nothing_else(server):
    """A broker needs no user's API token: the source's notify_token (sent in the subscription's
    header) lets it post to that source only; a wrong or borrowed token answers as an unknown one."""
    assert post_as_broker(server, "eco-orion", v2_notification(), BROKER_TOKEN).status_code == 204
    assert readings(server, "eco-orion") == V2_READINGS
    for source in ("eco-ld", "unmapped", "no-such-source"):  # no token of their own, or no source
        refused(post_as_broker(server, source, v2_notification(), BROKER_TOKEN), 401, "unauthorized", source)
    refused(post_as_broker(server, "eco-orion", v2_notification(), BROKER_TOKEN + "x"), 401, "unauthorized")
    client = server.test_client()
    assert client.get("/api/v1/alerts", headers={"X-CityBrain-Source-Token": BROKER_TOKEN}).status_code == 401
    with server.citybrain_ingest.sessions() as session:
        entries = session.execute(select(AuditEntry.actor, AuditEntry.action)).all()
    assert ("source-token:eco-orion", "source.notify") in entries
    assert entries.count(("source-token", "api.refused")) == 4


@pytest.mark.parametrize(
    ("token", "words"),
    [
        ("short", ("notify_token", "16 characters")),
        ("${CITYBRAIN_NO_SUCH_SECRET}", ("notify_token", "not set")),
    ],
)
def test_a_weak_or_missing_notify_token_is_a_config_error_naming_the_field(token, words):
    from datasources.ngsi import Options

    with pytest.raises(ValueError) as caught:
        Options.model_validate({"url": "http://orion.invalid:1026", "notify_token": token})
    assert all(word in str(caught.value) for word in words)
