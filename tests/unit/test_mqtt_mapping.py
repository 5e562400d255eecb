"""The mqtt adapter's topic patterns, options and message mapping (no broker needed here;
tests/integration/test_mqtt_adapter.py runs against the real Mosquitto)."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from core.city import load_city
from datasources.base import AdapterContext
from datasources.mqtt import Message, MessageReader, MqttAdapter, Options, TopicPattern, lookup
from datasources.registry import option_problems
from indicators.catalog import load_catalog
from indicators.validation import Validator

REPO = Path(__file__).resolve().parents[2]
ZONE = ZoneInfo("Asia/Shanghai")
BROKER = "mqtt://127.0.0.1:1883"
ARRIVED = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)


@pytest.fixture(scope="module")
def context() -> AdapterContext:
    city = load_city(REPO / "assets/geo/wuxi_districts.geojson", REPO / "config/cities/wuxi/stations.csv")
    return AdapterContext(city, load_catalog(), ZONE, "sensors")


@pytest.fixture
def validator(context) -> Validator:
    return Validator(context.catalog, context.city.entity_codes(), ZONE)


def reader(**options: object) -> MessageReader:
    return MessageReader(Options.model_validate({"broker": BROKER, **options}), ZONE)


def message(topic: str, payload: object) -> Message:
    body = (
        payload
        if isinstance(payload, bytes)
        else (payload if isinstance(payload, str) else json.dumps(payload))
    )
    return Message(topic, body.encode() if isinstance(body, str) else body, ARRIVED)


def problems(**options: object) -> list[str]:
    return option_problems("mqtt", {"broker": BROKER, **options}, "sources.2 (sensors)")


# --- topic patterns -----------------------------------------------------------------------------


def test_named_levels_subscribe_as_plus_and_are_read_from_the_topic():
    pattern = TopicPattern.parse("city/air/{entity}/{indicator}")
    assert pattern.filter == "city/air/+/+"
    assert pattern.match("city/air/1188A/env.pm25") == {"entity": "1188A", "indicator": "env.pm25"}
    assert pattern.match("city/air/1188A") is None
    assert pattern.match("city/water/1188A/env.pm25") is None
    assert TopicPattern.parse("city/+/{entity}/#").match("city/x/RV01/level/raw") == {"entity": "RV01"}
    assert TopicPattern.parse("city/#").match("city") == {}


@pytest.mark.parametrize(
    ("text", "reason"),
    [("a/#/b", "last level"), ("a/b+", "whole level"), ("a/{entity}x", "whole level"), ("", "empty")],
)
def test_bad_patterns_are_refused(text, reason):
    with pytest.raises(ValueError, match=reason):
        TopicPattern.parse(text)


_LEVEL = st.sampled_from(["a", "b", "city", "1188A", ""])


@given(
    pattern=st.lists(st.sampled_from(["a", "b", "city", "+", "{entity}"]), min_size=1, max_size=4).flatmap(
        lambda levels: st.booleans().map(lambda hash_: levels + ["#"] if hash_ else levels)
    ),
    topic=st.lists(_LEVEL, min_size=1, max_size=6),
)
def test_patterns_match_exactly_what_the_broker_delivers(pattern, topic):
    parsed = TopicPattern.parse("/".join(pattern))
    text = "/".join(topic)
    assert (parsed.match(text) is not None) == mqtt.topic_matches_sub(parsed.filter, text)


# --- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key", "message"),
    [
        ({"topics": ["a/{entity}/{indicator}"], "broker": "http://h:1883"}, "broker", "mqtt://host:port"),
        ({"topics": ["a/{entity}/{indicator}"], "broker": "mqtt://h:port"}, "broker", "port"),
        ({"topics": ["a/{entity}/{indicator}"], "broker": "mqtt://u:p@h"}, "broker", "username and password"),
        ({"topics": ["a/{entity}/{indicator}"], "password": "${NO_SUCH_MQTT_SECRET}"}, "password", "NO_SUCH"),
        ({"topics": []}, "topics", "at least 1"),
        ({"topics": ["a/#/b"]}, "topics", "last level"),
        ({"topics": ["a/{entity}/{indicator}"], "qos": 3}, "qos", "0, 1 or 2"),
        ({"topics": ["a/{indicator}"]}, "", "set entity, entity_field or a {entity} level"),
        (
            {"topics": ["a/{entity}/{indicator}", "b/{indicator}"]},
            "",
            "topic 'b/{indicator}' has no {entity}",
        ),
        ({"topics": ["a/{entity}/{indicator}"], "entity": "1188A"}, "", "not from entity and {entity}"),
        ({"topics": ["a/{entity}"], "values": {"pm25": "env.pm25"}, "indicator": "env.aqi"}, "", "excludes"),
        (
            {"topics": ["a/{entity}"], "indicator": "env.aqi", "observed_at_field": "ts"},
            "",
            "set value_field",
        ),
        ({"topics": ["a/{entity}/{indicator}"], "persistent_session": True}, "", "client_id"),
        ({"topics": ["a/{entity}/{indicator}"], "connect_timeout": "never"}, "connect_timeout", "duration"),
    ],
)
def test_config_errors_name_the_option(monkeypatch, options, key, message):
    monkeypatch.delenv("NO_SUCH_MQTT_SECRET", raising=False)
    found = problems(**options)
    assert len(found) == 1, found
    assert found[0].startswith(f"sources.2 (sensors).options.{key}".rstrip(".")) and message in found[0], (
        found
    )


def test_credentials_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SENSOR_MQTT_PASSWORD", "s3cret")
    options = Options.model_validate(
        {
            "broker": BROKER,
            "topics": ["a/{entity}/{indicator}"],
            "username": "cb",
            "password": "${SENSOR_MQTT_PASSWORD}",
        }
    )
    assert options.password == "s3cret" and "s3cret" not in repr(options)


# --- messages to records ------------------------------------------------------------------------


def test_topic_levels_and_bare_values(validator):
    read = reader(topics=["city/air/{entity}/{indicator}"], indicator_map={"pm25": "env.pm25"})
    records = read.records(message("city/air/1188A/pm25", "35.2"))
    accepted, rejected = validator.validate(records)
    assert [(r.indicator, r.entity, r.observed_at, r.value) for r in accepted] == [
        ("env.pm25", "1188A", ARRIVED, 35.2)
    ]
    assert rejected == []
    assert records[0].raw == "city/air/1188A/pm25 35.2"


def test_json_fields_by_dotted_path_with_epoch_milliseconds(validator):
    read = reader(
        topics=["gw/+/up"],
        entity_field="device.id",
        entity_map={"dev-7": "1189A"},
        indicator="env.aqi",
        value_field="data.readings.0",
        observed_at_field="ts",
        timestamp_unit="ms",
    )
    at = ARRIVED - timedelta(minutes=4)
    payload = {"device": {"id": "dev-7"}, "ts": int(at.timestamp() * 1000), "data": {"readings": [88, 90]}}
    accepted, rejected = validator.validate(read.records(message("gw/42/up", payload)))
    assert [(r.indicator, r.entity, r.observed_at, r.value) for r in accepted] == [
        ("env.aqi", "1189A", at, 88.0)
    ]


def test_wide_payloads_give_one_record_per_indicator(validator):
    read = reader(
        topics=["city/air/{entity}"],
        values={"pm25": "env.pm25", "aqi": "env.aqi", "extra.o3": "env.o3"},
        observed_at_field="time",
    )
    local = (ARRIVED - timedelta(minutes=2)).astimezone(ZONE).replace(tzinfo=None).isoformat()
    payload = {"time": local, "pm25": 41, "aqi": 62, "extra": {"o3": 120}}
    accepted, rejected = validator.validate(read.records(message("city/air/1190A", payload)))
    assert sorted((r.indicator, r.value) for r in accepted) == [
        ("env.aqi", 62),
        ("env.o3", 120),
        ("env.pm25", 41),
    ]
    assert {r.observed_at for r in accepted} == {ARRIVED - timedelta(minutes=2)} and rejected == []


def test_malformed_payloads_are_rejected_with_topic_and_payload(validator):
    read = reader(
        topics=["city/air/{entity}"],
        indicator="env.pm25",
        value_field="value",
        observed_at_field="ts",
    )
    now = ARRIVED.isoformat()
    cases = {
        "not json {": ("observed_at", "unreadable timestamp '<payload is not a JSON object>'"),
        json.dumps({"ts": now}): ("value", "not a number: \"<no field 'value'>\""),
        json.dumps({"value": 3}): ("observed_at", "unreadable timestamp \"<no field 'ts'>\""),
        json.dumps({"ts": now, "value": "n/a"}): ("value", "not a number: 'n/a'"),
        json.dumps({"ts": 1e30, "value": 3}): ("observed_at", "unreadable timestamp '1e+30'"),
        json.dumps([1, 2]): ("observed_at", "unreadable timestamp '<payload is not a JSON object>'"),
    }
    records = [r for payload in cases for r in read.records(message("city/air/1191A", payload))]
    accepted, rejected = validator.validate(records)
    assert accepted == []
    assert [(r.field, r.reason) for r in rejected] == list(cases.values())
    assert [r.raw for r in rejected] == [f"city/air/1191A {payload}" for payload in cases]


def test_raw_text_is_truncated_and_undecodable_bytes_survive(validator):
    read = reader(topics=["city/air/{entity}/{indicator}"])
    (record,) = read.records(message("city/air/1188A/env.pm25", b"\xff\xfe" + b"9" * 5000))
    assert len(record.raw) == 2000 and record.raw.startswith("city/air/1188A/env.pm25 \ufffd\ufffd999")
    _, rejected = validator.validate([record])
    assert rejected[0].field == "value"


def test_lookup_names_what_is_missing():
    assert lookup({"a": {"b": [1, {"c": 2}]}}, "a.b.1.c") == 2
    assert lookup({"a": {"b": [1]}}, "a.b.3") == "<no field 'a.b.3'>"
    assert lookup("text", "a") == "<payload is not a JSON object>"


# --- the client, without a broker --------------------------------------------------------------


def test_an_unreachable_broker_fails_the_fetch_and_close_is_prompt(context):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free, and nothing listens once the probe closes
    options = Options.model_validate(
        {
            "broker": f"mqtt://127.0.0.1:{port}",
            "topics": ["a/{entity}/{indicator}"],
            "connect_timeout": "0.5s",
        }
    )
    adapter = MqttAdapter(options, context)
    try:
        with pytest.raises(ConnectionError, match=rf"MQTT broker mqtt://127.0.0.1:{port}: cannot reach"):
            adapter.fetch(None, datetime.now(UTC))
    finally:
        started = time.monotonic()
        adapter.close()
        assert time.monotonic() - started < 3
        assert not [t for t in threading.enumerate() if t.name.startswith("paho-mqtt-client-")]


def test_a_refused_subscription_fails_the_fetch(context):
    """Brokers with ACLs answer a forbidden subscription with a failure code in the SUBACK."""
    options = Options.model_validate(
        {
            "broker": "mqtt://127.0.0.1:1",
            "topics": ["open/{entity}/{indicator}", "secret/{entity}/{indicator}"],
        }
    )
    adapter = MqttAdapter(options, context)
    try:
        granted, denied = (
            ReasonCode(PacketTypes.SUBACK, "Granted QoS 1"),
            ReasonCode(PacketTypes.SUBACK, identifier=0x87),
        )
        adapter._on_subscribe(adapter.client, None, 1, [granted, denied], None)
        with pytest.raises(
            PermissionError, match=r"refused the subscription to secret/\+/\+ \(Not authorized\)"
        ):
            adapter.fetch(None, datetime.now(UTC))
    finally:
        adapter.close()
