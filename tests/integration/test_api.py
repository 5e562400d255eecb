"""The REST API through the Flask test client against a real store (SQLite and PostgreSQL).

Readings and alerts come from the real pipeline (a scripted source run by `run_source`); users and
tokens from the store's own functions. Every refusal is checked with a hand-made request.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import ClassVar
from urllib.parse import quote

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

import datasources.registry as registry
from core.records import Record, ValidReading
from core.settings import SourceSettings
from core.timeutil import utcnow
from datasources.base import Batch, Options
from ingest.context import IngestContext
from ingest.pipeline import run_source
from store.models import Alert, AlertEvent, AuditEntry, IndicatorRow, Reading, Series
from store.readings import upsert_readings
from store.state import data_version
from store.sync import sync_sources
from store.users import create_token, create_user, find_user, revoke_token, set_disabled
from web.api_models import MAX_READINGS
from web.auth import SESSION_USER

ROLES = {"vera": "viewer", "otto": "officer", "olga": "officer", "ada": "admin"}
RESTRICTED, INTERNAL, PUBLIC = "safety.crowd_density", "safety.traffic_accidents", "test.plain"
XSS = "<script>alert('x')</script><img src=x onerror=alert(1)>"
# Tests of the web layer alone run on SQLite; those whose answers come from SQL run on both dialects.
web_only = pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
SQL_LIKE = ("' OR 1=1 --", "1; DROP TABLE alerts; --", '" OR ""="', "x') UNION SELECT * FROM users --")


class ScriptedAdapter:
    SCRIPT: ClassVar[list[Record]] = []
    Options = Options
    backfills = False

    def __init__(self, options, context):
        pass

    def fetch(self, since, until):
        return Batch(list(self.SCRIPT), watermark=until.isoformat())


def minutes_ago(minutes: int):
    return (utcnow() - timedelta(minutes=minutes)).replace(second=0, microsecond=0)


def the_script() -> list[Record]:
    """A red and a yellow alert of a public indicator, a red one of a restricted indicator."""
    now = minutes_ago(0)

    def at(minutes: int):
        return now - timedelta(minutes=minutes)

    records = [Record(PUBLIC, "1188A", at(m), 20 + 30 * (11 - m // 5)) for m in range(0, 60, 5)]
    records += [Record(PUBLIC, "1189A", at(m), 160) for m in range(0, 30, 5)]
    records += [Record(RESTRICTED, "320211", at(m), 6.0) for m in range(0, 30, 5)]
    records += [Record(INTERNAL, "320211", at(m), 2) for m in range(0, 30, 5)]
    return records


@dataclass
class World:
    """The store after one pipeline run of the script, with an API token for each user."""

    ctx: IngestContext
    tokens: dict[str, str]
    token_ids: dict[str, int]

    def sessions(self) -> Session:
        return self.ctx.sessions()


@pytest.fixture
def store(monkeypatch, ingest) -> World:
    fake = dict(registry.available()) | {"scripted": SimpleNamespace(load=lambda: ScriptedAdapter)}
    monkeypatch.setattr(registry, "available", lambda: fake)
    with ingest.sessions() as session:
        sync_sources(
            session, [*ingest.settings.sources, SourceSettings(id="scripted", type="scripted", every=60)]
        )
        session.commit()
    monkeypatch.setattr(ScriptedAdapter, "SCRIPT", the_script())
    result = run_source(ingest, "scripted")
    assert result.status == "ok", result
    tokens = {}
    with ingest.sessions() as session:
        for name, role in ROLES.items():
            user = create_user(session, name, f"{name}-password-1", role)
            tokens[name] = create_token(session, "api", f"{name}'s script", user.id)
        session.commit()
    return World(
        ingest,
        {name: plain for name, (_, plain) in tokens.items()},
        {name: token.id for name, (token, _) in tokens.items()},
    )


def make_app(world: World, **auth):
    from web.app_factory import create_dash

    ctx = world.ctx
    settings = ctx.settings.model_copy(update={"auth": ctx.settings.auth.model_copy(update=auth)})
    app = create_dash(settings, ctx.engine, ctx.city, ctx.catalog, "test")
    app.server.config["TESTING"] = True
    return app.server


@pytest.fixture
def api(store):
    """A production-like deployment: every request needs credentials."""
    return make_app(store, anonymous=False)


@pytest.fixture
def demo(store):
    """The demo deployment: anonymous visitors may read public indicators."""
    return make_app(store, anonymous=True)


def bearer(ctx, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ctx.tokens[name]}"}


def get(server, path: str, ctx=None, name: str | None = None, **params):
    headers = bearer(ctx, name) if name else {}
    return server.test_client().get(path, headers=headers, query_string=params or None)


def alert_id(ctx, key: str, entity: str) -> int:
    with ctx.sessions() as session:
        return session.scalars(
            select(Alert.id)
            .join(Series, Series.id == Alert.series_id)
            .where(Series.indicator_key == key, Series.entity == entity)
        ).one()


def ack(server, world: World, name: str | None, target: int, body: object = None):
    headers = bearer(world, name) if name else {}
    return server.test_client().post(
        f"/api/v1/alerts/{target}/acknowledge", headers=headers, json={} if body is None else body
    )


def assert_error(response, status: int, code: str, parameter: str | None = None) -> dict:
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == code and body["reason"]
    if parameter is not None:
        assert body["parameter"] == parameter and parameter in body["reason"]
    return body


# --- authentication ---------------------------------------------------------------------------


@web_only
def test_every_endpoint_needs_credentials_in_a_production_config(api, store):
    alert = alert_id(store, PUBLIC, "1188A")
    for path in ("/api/v1/indicators", f"/api/v1/indicators/{PUBLIC}", "/api/v1/latest", "/api/v1/alerts"):
        response = get(api, path)
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(get(api, "/api/v1/readings", indicator=PUBLIC), 401, "unauthorized")
    assert_error(ack(api, store, None, alert, {"note": "x"}), 401, "unauthorized")
    assert get(api, "/api/v1/indicators", store, "vera").status_code == 200


@web_only
def test_unknown_revoked_and_disabled_tokens_are_refused(demo, store):
    """Even where anonymous reading is allowed, a bad token is a 401, never a silent downgrade."""
    client = demo.test_client()
    assert client.get("/api/v1/indicators").status_code == 200  # anonymous demo visitor
    for header in ("Bearer not-a-token", "Bearer ", f"Basic {store.tokens['otto']}", store.tokens["otto"]):
        assert_error(client.get("/api/v1/indicators", headers={"Authorization": header}), 401, "unauthorized")
    assert get(demo, "/api/v1/indicators", store, "otto").status_code == 200
    with store.sessions() as session:
        assert revoke_token(session, store.token_ids["otto"])
        set_disabled(session, "olga", True)
        session.commit()
    assert_error(get(demo, "/api/v1/indicators", store, "otto"), 401, "unauthorized")
    assert_error(get(demo, "/api/v1/indicators", store, "olga"), 401, "unauthorized")
    assert_error(
        ack(demo, store, "otto", alert_id(store, PUBLIC, "1189A"), {"note": "n"}), 401, "unauthorized"
    )


@web_only
def test_a_display_token_is_not_an_api_token(api, store):
    with store.sessions() as session:
        _, plain = create_token(session, "display", "wall")
        session.commit()
    response = api.test_client().get("/api/v1/indicators", headers={"Authorization": f"Bearer {plain}"})
    assert_error(response, 401, "unauthorized")


@web_only
def test_the_signed_in_browser_session_works_too(api, store):
    with store.sessions() as session:
        otto = find_user(session, "otto").id
    client = api.test_client()
    with client.session_transaction() as cookie:
        cookie[SESSION_USER] = otto
    response = client.get(f"/api/v1/indicators/{RESTRICTED}")
    assert response.status_code == 200 and response.get_json()["key"] == RESTRICTED
    # a form post from another site cannot carry JSON: the write refuses anything else
    form = client.post(f"/api/v1/alerts/{alert_id(store, PUBLIC, '1189A')}/acknowledge", data={"note": "x"})
    assert_error(form, 415, "unsupported_media_type")
    assert alert_state(store, alert_id(store, PUBLIC, "1189A")) == "active"


# --- reading ----------------------------------------------------------------------------------


@web_only
def test_indicators_list_filter_and_one(api, store):
    body = get(api, "/api/v1/indicators", store, "otto").get_json()
    keys = [i["key"] for i in body["indicators"]]
    assert keys == [i.key for i in store.ctx.catalog]
    crowd = next(i for i in body["indicators"] if i["key"] == RESTRICTED)
    assert crowd["name"] == {"zh-CN": "重点区域人员密度", "en": "Crowd density at key places"}
    assert crowd["classification"] == "restricted" and crowd["thresholds"]["red"] == 5
    assert crowd["department"]["en"] == "Public Security Bureau" and crowd["entity_level"] == "district"
    safety = get(api, "/api/v1/indicators", store, "otto", domain="safety").get_json()["indicators"]
    assert safety and {i["domain"] for i in safety} == {"safety"}
    one = get(api, f"/api/v1/indicators/{PUBLIC}", store, "vera")
    assert one.status_code == 200 and one.get_json()["name"]["zh-CN"] == "测试指标"
    assert "测试指标".encode() in one.data  # Chinese as text, not \u escapes
    assert_error(
        get(api, "/api/v1/indicators", store, "otto", domain="nowhere"), 400, "bad_request", "domain"
    )
    assert_error(get(api, "/api/v1/indicators", store, "otto", domian="safety"), 400, "bad_request", "domian")
    assert_error(get(api, "/api/v1/indicators/env.nothing", store, "otto"), 404, "not_found")


def test_latest_city_wide_and_per_entity(api, store):
    body = get(api, "/api/v1/latest", store, "vera", indicators=f"{PUBLIC},env.aqi").get_json()["latest"]
    assert [item["indicator"] for item in body] == [PUBLIC, "env.aqi"]
    plain = body[0]
    assert plain["value"] == pytest.approx((350 + 160) / 2) and plain["reporting"] == 2
    assert plain["severity"] == 4 and plain["level"] == "red" and plain["entities"] is None
    assert plain["observed_at"].endswith("Z") and plain["name"]["en"] == "Test indicator"
    assert body[1]["value"] is None and body[1]["reporting"] == 0
    by_entity = get(api, "/api/v1/latest", store, "vera", indicators=PUBLIC, by="entity").get_json()["latest"]
    entities = {e["entity"]: e for e in by_entity[0]["entities"]}
    assert entities.keys() == {"1188A", "1189A"}
    assert entities["1189A"]["value"] == 160 and entities["1189A"]["level"] == "yellow"
    assert entities["1188A"]["name"] == {"zh-CN": "雪浪", "en": "Xuelang"}
    one = get(api, "/api/v1/latest", store, "vera", indicators=PUBLIC, entity="1189A").get_json()["latest"][0]
    assert [e["entity"] for e in one["entities"]] == ["1189A"]
    every = get(api, "/api/v1/latest", store, "otto").get_json()["latest"]
    assert RESTRICTED in {item["indicator"] for item in every}
    assert_error(
        get(api, "/api/v1/latest", store, "vera", indicators="env.nothing"), 404, "not_found", "indicators"
    )
    assert_error(get(api, "/api/v1/latest", store, "vera", entity="NOPE"), 404, "not_found", "entity")
    assert_error(get(api, "/api/v1/latest", store, "vera", by="district"), 400, "bad_request", "by")
    assert_error(
        get(api, "/api/v1/latest", store, "vera", indicators=f"{PUBLIC},,"), 400, "bad_request", "indicators"
    )


def test_readings_by_range_with_cursor_paging(api, store):
    everything = get(api, "/api/v1/readings", store, "vera", indicator=PUBLIC).get_json()
    points = everything["readings"]
    assert len(points) == 18 and everything["next_cursor"] is None
    assert [p["observed_at"] for p in points] == sorted(p["observed_at"] for p in points)
    pages = read_pages(api, store, indicator=PUBLIC, limit=5)
    assert [len(page) for page in pages] == [5, 5, 5, 3]
    assert [p for page in pages for p in page] == points
    xuelang = [p["observed_at"] for p in points if p["entity"] == "1188A"]
    start, end = xuelang[7], xuelang[10].replace("Z", "+00:00")  # an unencoded '+' arrives as a space
    ranged = get(
        api, f"/api/v1/readings?indicator={PUBLIC}&entity=1188A&start={start}&end={end}", store, "vera"
    )
    assert ranged.status_code == 200, ranged.data
    values = [(p["entity"], p["value"]) for p in ranged.get_json()["readings"]]
    assert values == [("1188A", 230.0), ("1188A", 260.0), ("1188A", 290.0)]
    backwards = {"start": minutes_ago(5).isoformat(), "end": minutes_ago(10).isoformat()}
    for params, parameter in (
        ({"limit": 5001}, "limit"),
        ({"limit": 10**12}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": "ten"}, "limit"),
        (backwards, "end"),
        ({"start": "soon"}, "start"),
        ({"start": minutes_ago(-60).isoformat()}, "start"),  # after the default end, now
        ({"cursor": "!!"}, "cursor"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
        ({"entity": ""}, "entity"),
        ({"indicators": PUBLIC}, "indicators"),
    ):
        response = get(api, "/api/v1/readings", store, "vera", **({"indicator": PUBLIC} | params))
        assert_error(response, 400, "bad_request", parameter)
    assert_error(get(api, "/api/v1/readings", store, "vera"), 400, "bad_request", "indicator")
    assert_error(
        get(api, "/api/v1/readings", store, "vera", indicator="env.nothing"), 404, "not_found", "indicator"
    )
    twice = api.test_client().get(
        f"/api/v1/readings?indicator={PUBLIC}&limit=1&limit=2", headers=bearer(store, "vera")
    )
    assert_error(twice, 400, "bad_request", "limit")


def read_pages(server, world: World, **params) -> list[list[dict]]:
    """Every page of a readings query, following the cursors."""
    pages, cursor = [], None
    while True:
        response = get(
            server, "/api/v1/readings", world, "vera", **params, **({"cursor": cursor} if cursor else {})
        )
        assert response.status_code == 200, response.data
        pages.append(response.get_json()["readings"])
        cursor = response.get_json()["next_cursor"]
        if cursor is None:
            return pages


@web_only
def test_a_page_never_exceeds_the_hard_cap(api, store):
    start = minutes_ago(60 * 24 * 30)
    readings = [
        ValidReading(PUBLIC, "1190A", start + timedelta(minutes=m), 50.0) for m in range(MAX_READINGS + 7)
    ]
    with store.sessions() as session:
        upsert_readings(session, readings, "bulk", store.ctx.region_of)
        session.commit()
    window = {"indicator": PUBLIC, "entity": "1190A", "start": start.isoformat(), "limit": MAX_READINGS}
    pages = read_pages(api, store, **window)
    assert [len(page) for page in pages] == [MAX_READINGS, 7]
    assert len({p["observed_at"] for page in pages for p in page}) == MAX_READINGS + 7


def test_alerts_with_filters(api, store):
    red_public, yellow = alert_id(store, PUBLIC, "1188A"), alert_id(store, PUBLIC, "1189A")
    red_restricted = alert_id(store, RESTRICTED, "320211")
    with store.sessions() as session:
        session.execute(update(Alert).where(Alert.id == yellow).values(department="环保局"))
        session.commit()

    def ids(name="otto", **params):
        response = get(api, "/api/v1/alerts", store, name, **params)
        assert response.status_code == 200, response.data
        return [a["id"] for a in response.get_json()["alerts"]]

    everything = get(api, "/api/v1/alerts", store, "otto").get_json()
    assert [a["severity"] for a in everything["alerts"]] == sorted(
        (a["severity"] for a in everything["alerts"]), reverse=True
    )
    assert {red_public, red_restricted, yellow} <= set(ids()) and not everything["more"]
    first = next(a for a in everything["alerts"] if a["id"] == red_public)
    assert first["level"] == "red" and first["state"] == "active" and first["rule"] == f"{PUBLIC}:threshold"
    assert first["explanation"]["zh-CN"] and first["explanation"]["en"] and first["opened_at"].endswith("Z")
    assert first["entity_name"]["en"] == "Xuelang" and first["indicator_name"]["zh-CN"] == "测试指标"
    reds = get(api, "/api/v1/alerts", store, "otto", level=4).get_json()["alerts"]
    assert {red_public, red_restricted} <= {a["id"] for a in reds} and {a["severity"] for a in reds} == {4}
    assert (
        ids(level="orange") == ids(level=3) and yellow not in ids(level=3) and yellow in ids(level="yellow")
    )
    safety = get(api, "/api/v1/alerts", store, "otto", domain="safety").get_json()["alerts"]
    assert {a["id"] for a in safety} == {red_restricted} and {a["domain"] for a in safety} == {"safety"}
    assert set(ids(domain="environment")) == {red_public, yellow}
    assert ids(entity="1188A") == [red_public]
    assert set(ids(entity="320211")) == {red_public, red_restricted}  # Binhu: its own and its stations'
    assert ids(department="环保局") == [yellow]
    assert ids(state="acknowledged") == [] and ids(state="closed") == []
    assert ids(since=(utcnow() + timedelta(minutes=1)).isoformat()) == []
    assert len(ids(limit=1)) == 1 and get(api, "/api/v1/alerts", store, "otto", limit=1).get_json()["more"]
    assert_error(get(api, "/api/v1/alerts", store, "otto", level=5), 400, "bad_request", "level")
    assert_error(get(api, "/api/v1/alerts", store, "otto", state="open;"), 400, "bad_request", "state")
    assert_error(get(api, "/api/v1/alerts", store, "otto", limit=501), 400, "bad_request", "limit")


# --- restricted data --------------------------------------------------------------------------


def test_restricted_indicators_are_absent_for_a_viewer_and_an_anonymous_visitor(demo, store):
    restricted_alert = alert_id(store, RESTRICTED, "320211")
    for name, unseen in (("vera", {RESTRICTED}), (None, {RESTRICTED, INTERNAL})):
        listed = {i["key"] for i in get(demo, "/api/v1/indicators", store, name).get_json()["indicators"]}
        assert PUBLIC in listed and not listed & unseen
        latest = {i["indicator"] for i in get(demo, "/api/v1/latest", store, name).get_json()["latest"]}
        assert PUBLIC in latest and not latest & unseen
        alerts = get(demo, "/api/v1/alerts", store, name, state="all").get_json()["alerts"]
        assert alerts and not {a["indicator"] for a in alerts} & unseen
        assert restricted_alert not in {
            a["id"] for a in get(demo, "/api/v1/alerts", store, name, domain="safety").get_json()["alerts"]
        }
        for key in unseen:
            hidden = assert_error(get(demo, f"/api/v1/indicators/{key}", store, name), 404, "not_found")
            unknown = assert_error(get(demo, "/api/v1/indicators/x.unknown", store, name), 404, "not_found")
            assert hidden["reason"].replace(key, "?") == unknown["reason"].replace("x.unknown", "?")
            assert_error(get(demo, "/api/v1/readings", store, name, indicator=key), 404, "not_found")
            assert_error(get(demo, "/api/v1/latest", store, name, indicators=key), 404, "not_found")
        for path in ("/api/v1/indicators", "/api/v1/latest", "/api/v1/alerts?state=all"):
            response = get(demo, path, store, name)
            assert b"crowd" not in response.data.lower() and "人员密度".encode() not in response.data
    officer = {i["key"] for i in get(demo, "/api/v1/indicators", store, "otto").get_json()["indicators"]}
    assert {RESTRICTED, INTERNAL} <= officer
    assert restricted_alert in {
        a["id"] for a in get(demo, "/api/v1/alerts", store, "otto").get_json()["alerts"]
    }
    assert get(demo, "/api/v1/readings", store, "otto", indicator=RESTRICTED).get_json()["readings"]


@web_only
def test_the_deployment_decides_who_is_cleared(store):
    """Restricted data for admins only: an officer can neither see nor acknowledge a restricted alert."""
    strict = make_app(store, clearance={"public": ["viewer", "officer", "admin"], "restricted": ["admin"]})
    target = alert_id(store, RESTRICTED, "320211")
    keys = {i["key"] for i in get(strict, "/api/v1/indicators", store, "otto").get_json()["indicators"]}
    assert PUBLIC in keys and RESTRICTED not in keys and INTERNAL not in keys
    assert_error(ack(strict, store, "otto", target, {"note": "on it"}), 404, "not_found")
    assert alert_state(store, target) == "active"
    assert ack(strict, store, "ada", target, {"note": "on it"}).status_code == 200


# --- acknowledging ----------------------------------------------------------------------------


def alert_state(ctx, target: int) -> str:
    with ctx.sessions() as session:
        return session.get(Alert, target).state


def events(ctx, target: int) -> list[tuple[str, str, str]]:
    with ctx.sessions() as session:
        rows = session.scalars(
            select(AlertEvent).where(AlertEvent.alert_id == target).order_by(AlertEvent.id)
        )
        return [(e.kind, e.actor, e.note) for e in rows]


def audit_log(ctx) -> list[tuple[str, str, str, str]]:
    with ctx.sessions() as session:
        return [
            (a.actor, a.action, a.target, a.detail)
            for a in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]


@web_only
def test_only_officers_and_admins_acknowledge(demo, store):
    target = alert_id(store, PUBLIC, "1189A")
    assert_error(ack(demo, store, "vera", target, {"note": "seen"}), 403, "forbidden")
    assert_error(ack(demo, store, None, target, {"note": "seen"}), 401, "unauthorized")
    with store.sessions() as session:
        _, display = create_token(session, "display", "duty room wall")
        session.commit()
    wall = demo.test_client()
    assert wall.get(f"/screen?display={display}").status_code == 200  # the wall's signed session
    assert wall.get("/api/v1/alerts").status_code == 200
    forged = wall.post(f"/api/v1/alerts/{target}/acknowledge", json={"note": "seen"})
    assert_error(forged, 403, "forbidden")
    assert alert_state(store, target) == "active"
    refused = [(a[0], a[1]) for a in audit_log(store) if a[1] == "api.refused"]
    assert refused == [("vera", "api.refused"), ("display:duty room wall", "api.refused")]
    version = data_version(store.ctx.engine)
    done = ack(demo, store, "ada", target, {"note": "on it"})
    assert done.status_code == 200, done.data
    alert = done.get_json()["alert"]
    assert alert["state"] == "acknowledged" and alert["acknowledged_by"] == "ada" and alert["acknowledged_at"]
    assert events(store, target)[-1] == ("acknowledged", "ada", "on it")
    assert ("ada", "alert.acknowledge", f"alert:{target}", "on it") in audit_log(store)
    assert data_version(store.ctx.engine) == version + 1  # cached pages are out of date


@web_only
def test_a_red_alert_needs_a_note(api, store):
    red = alert_id(store, PUBLIC, "1188A")
    for body in ({}, {"note": ""}, {"note": "   \n "}):
        assert_error(ack(api, store, "otto", red, body), 422, "unprocessable", "note")
    assert alert_state(store, red) == "active"
    assert ack(api, store, "otto", red, {"note": "environment team dispatched"}).status_code == 200
    yellow = alert_id(store, PUBLIC, "1189A")
    assert ack(api, store, "otto", yellow).status_code == 200  # below red, no note needed


@web_only
def test_acknowledge_refuses_bad_requests(api, store):
    target = alert_id(store, PUBLIC, "1189A")
    assert_error(ack(api, store, "otto", 999999, {"note": "x"}), 404, "not_found")
    assert_error(ack(api, store, "otto", target, {"note": 5}), 400, "bad_request", "note")
    assert_error(
        ack(api, store, "otto", target, {"note": "x", "state": "closed"}), 400, "bad_request", "state"
    )
    assert_error(ack(api, store, "otto", target, ["note"]), 400, "bad_request", "body")
    assert_error(ack(api, store, "otto", target, {"note": "x" * 2001}), 400, "bad_request", "note")
    raw = api.test_client().post(
        f"/api/v1/alerts/{target}/acknowledge",
        headers=bearer(store, "otto") | {"Content-Type": "application/json"},
        data="{not json",
    )
    assert_error(raw, 400, "bad_request", "body")
    assert_error(ack(api, store, "otto", target, {"note": "x" * 70_000}), 413, "too_large")
    assert alert_state(store, target) == "active"


def test_a_second_acknowledgement_is_a_conflict_naming_the_first(api, store):
    target = alert_id(store, PUBLIC, "1189A")
    assert ack(api, store, "otto", target, {"note": "first"}).status_code == 200
    body = assert_error(ack(api, store, "olga", target, {"note": "second"}), 409, "conflict")
    assert body["acknowledged_by"] == "otto" and body["state"] == "acknowledged" and "otto" in body["reason"]
    assert [e for e in events(store, target) if e[0] == "acknowledged"] == [("acknowledged", "otto", "first")]


def test_two_officers_acknowledge_at_the_same_moment(api, store):
    target = alert_id(store, PUBLIC, "1188A")
    barrier = threading.Barrier(2)
    outcomes = {}

    def officer(name: str) -> None:
        client = api.test_client()
        barrier.wait()
        outcomes[name] = client.post(
            f"/api/v1/alerts/{target}/acknowledge",
            headers=bearer(store, name),
            json={"note": f"{name} on it"},
        )

    threads = [threading.Thread(target=officer, args=(name,)) for name in ("otto", "olga")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(r.status_code for r in outcomes.values()) == [200, 409]
    winner = next(n for n, r in outcomes.items() if r.status_code == 200)
    loser = next(n for n in outcomes if n != winner)
    assert outcomes[loser].get_json()["acknowledged_by"] == winner
    assert outcomes[winner].get_json()["alert"]["acknowledged_by"] == winner
    assert [e for e in events(store, target) if e[0] == "acknowledged"] == [
        ("acknowledged", winner, f"{winner} on it")
    ]
    acks = [a for a in audit_log(store) if a[1] == "alert.acknowledge"]
    assert acks == [(winner, "alert.acknowledge", f"alert:{target}", f"{winner} on it")]


@web_only
def test_xss_looking_notes_are_stored_and_returned_as_plain_json_strings(api, store):
    target = alert_id(store, PUBLIC, "1188A")
    response = ack(api, store, "otto", target, {"note": XSS})
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.get_json()["note"] == XSS
    assert json.dumps(XSS, ensure_ascii=False).encode() in response.data
    assert events(store, target)[-1] == ("acknowledged", "otto", XSS)
    conflict = ack(api, store, "olga", target, {"note": XSS})
    assert conflict.status_code == 409 and conflict.mimetype == "application/json"


# --- hostile input ----------------------------------------------------------------------------


def test_sql_looking_values_are_harmless(api, store):
    before = table_sizes(store)
    for value in SQL_LIKE:
        assert get(api, "/api/v1/alerts", store, "otto", entity=value, state="all").get_json()["alerts"] == []
        assert get(api, "/api/v1/alerts", store, "otto", department=value).get_json()["alerts"] == []
        assert_error(get(api, "/api/v1/alerts", store, "otto", domain=value), 400, "bad_request", "domain")
        assert_error(get(api, "/api/v1/readings", store, "otto", indicator=value), 404, "not_found")
        assert_error(
            get(api, "/api/v1/readings", store, "otto", indicator=PUBLIC, entity=value), 404, "not_found"
        )
        assert_error(get(api, "/api/v1/latest", store, "otto", indicators=value), 404, "not_found")
        assert_error(get(api, f"/api/v1/indicators/{quote(value, safe='')}", store, "otto"), 404, "not_found")
        assert get(api, "/api/v1/readings", store, "otto", indicator=PUBLIC, cursor=value).status_code == 400
        assert_error(get(api, "/api/v1/alerts", store, "otto", since=value), 400, "bad_request", "since")
        bad_token = api.test_client().get("/api/v1/alerts", headers={"Authorization": f"Bearer {value}"})
        assert_error(bad_token, 401, "unauthorized")
    target = alert_id(store, PUBLIC, "1189A")
    assert ack(api, store, "otto", target, {"note": SQL_LIKE[1]}).status_code == 200
    assert events(store, target)[-1] == ("acknowledged", "otto", SQL_LIKE[1])
    assert table_sizes(store) == before | {"events": before["events"] + 1}


def table_sizes(ctx) -> dict[str, int]:
    with ctx.sessions() as session:
        return {
            name: session.scalar(select(func.count()).select_from(model))
            for name, model in (
                ("alerts", Alert),
                ("events", AlertEvent),
                ("readings", Reading),
                ("indicators", IndicatorRow),
            )
        }


@web_only
def test_unknown_paths_and_methods_answer_json(api, store):
    assert_error(get(api, "/api/v1/nothing/here", store, "otto"), 404, "not_found")
    wrong = api.test_client().post("/api/v1/indicators", headers=bearer(store, "otto"), json={})
    assert_error(wrong, 405, "method_not_allowed")
    assert wrong.headers["Allow"] == "GET"
    target = alert_id(store, PUBLIC, "1189A")
    read = get(api, f"/api/v1/alerts/{target}/acknowledge", store, "otto")
    assert_error(read, 405, "method_not_allowed")
    assert get(api, "/api/v1/indicators", store, "otto").headers["Cache-Control"] == "no-store"


# --- the OpenAPI document ---------------------------------------------------------------------


def refs(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


@web_only
def test_the_openapi_document_describes_every_route(api, store):
    response = api.test_client().get("/api/v1/openapi.json")  # no credentials needed
    assert response.status_code == 200 and response.mimetype == "application/json"
    doc = response.get_json()
    assert re.fullmatch(r"3\.1\.\d+", doc["openapi"]) and doc["info"]["title"] and doc["info"]["version"]
    assert doc["components"]["securitySchemes"]["bearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearerToken"]["description"],
    }
    assert {} not in doc["security"]  # this deployment needs credentials
    served = {}
    for rule in api.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and rule.endpoint != "api_v1._no_such_route":
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            served[path] = {m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert {path: set(item) for path, item in doc["paths"].items()} == served
    schemas = doc["components"]["schemas"]
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    operation_ids = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            operation_ids.append(operation["operationId"])
            if "204" in operation["responses"]:  # done, no body (the NGSI notification receiver)
                assert "content" not in operation["responses"]["204"]
            else:
                assert operation["responses"]["200"]["content"]["application/json"]["schema"]
            assert all(re.fullmatch(r"[1-5]\d\d", code) for code in operation["responses"])
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), path
            for parameter in operation.get("parameters", []):
                assert parameter["in"] in ("path", "query") and "schema" in parameter
                assert {"type": "null"} not in parameter["schema"].get("anyOf", [])  # absent, never null
            if operation.get("security") != []:
                assert "401" in operation["responses"], (method, path)
    assert len(operation_ids) == len(set(operation_ids))
    readings = doc["paths"]["/api/v1/readings"]["get"]
    limit = next(p for p in readings["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 5000 and not limit["required"]
    assert next(p for p in readings["parameters"] if p["name"] == "indicator")["required"]
    ack_op = doc["paths"]["/api/v1/alerts/{alert_id}/acknowledge"]["post"]
    assert {"403", "409", "422"} <= set(ack_op["responses"]) and ack_op["requestBody"]["required"]
    assert schemas["LocalText"]["properties"].keys() == {"zh-CN", "en"}


@web_only
def test_the_demo_document_says_anonymous_reading_is_allowed(demo):
    assert {} in demo.test_client().get("/api/v1/openapi.json").get_json()["security"]
