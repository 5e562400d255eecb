"""The mqtt adapter against the real Mosquitto (CITYBRAIN_TEST_MQTT_URL, default mqtt://127.0.0.1:1883),
a private Mosquitto the test kills and restarts, and end to end through run_source into the store.

Every test publishes under its own random topic prefix, so parallel runs never see each other's
messages.
"""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import paho.mqtt.publish as publish
import pytest
from sqlalchemy import select

from core.city import load_city
from core.settings import SourceSettings
from core.timeutil import utcnow
from datasources.base import AdapterContext, Batch
from datasources.mqtt import MqttAdapter, Options
from indicators.catalog import load_catalog
from indicators.validation import Validator
from ingest.pipeline import run_source
from store.models import Reading, RejectedRecord, Source
from store.sync import sync_sources
from tests.conftest import unavailable

REPO = Path(__file__).resolve().parents[2]
ZONE = ZoneInfo("Asia/Shanghai")
MQTT_URL = os.environ.get("CITYBRAIN_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")

pytestmark = pytest.mark.mqtt


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.fixture
def broker() -> str:
    parts = urlsplit(MQTT_URL)
    if not _reachable(parts.hostname or "127.0.0.1", parts.port or 1883):
        unavailable(f"MQTT broker at {MQTT_URL} is not reachable", "CITYBRAIN_REQUIRE_SERVICES")
    return MQTT_URL


class PrivateBroker:
    """A Mosquitto process this test owns, so it can be killed and restarted on the same port."""

    def __init__(self, binary: str, directory: Path, config: list[str] | None = None):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.command = [binary, "-p", str(self.port)]
        if config is not None:
            path = directory / "mosquitto.conf"
            # Stay the user running the tests: run as root, mosquitto would switch to user
            # `mosquitto`, which cannot read files under pytest's private tmp_path.
            lines = [f"listener {self.port} 127.0.0.1", f"user {getpass.getuser()}", *config]
            path.write_text("\n".join(lines) + "\n")
            self.command = [binary, "-c", str(path)]
        self.log = directory / "mosquitto.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("a") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=out)
        deadline = time.monotonic() + 10
        while not _reachable("127.0.0.1", self.port):
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the private mosquitto did not start listening"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _binary(name: str) -> str:
    path = shutil.which(name) or f"/usr/sbin/{name}"
    if not os.access(path, os.X_OK):
        unavailable(f"{name} is not installed (needed for a private broker)", "CITYBRAIN_REQUIRE_SERVICES")
    return path


@pytest.fixture
def private_broker(tmp_path) -> Iterator[PrivateBroker]:
    private = PrivateBroker(_binary("mosquitto"), tmp_path)
    private.start()
    yield private
    private.stop()


@pytest.fixture
def locked_broker(tmp_path) -> Iterator[PrivateBroker]:
    """A private Mosquitto that admits only user `cb` with password `s3cret`."""
    passwords = tmp_path / "passwords"
    subprocess.run([_binary("mosquitto_passwd"), "-b", "-c", str(passwords), "cb", "s3cret"], check=True)
    passwords.chmod(0o644)
    private = PrivateBroker(
        _binary("mosquitto"), tmp_path, ["allow_anonymous false", f"password_file {passwords}"]
    )
    private.start()
    yield private
    private.stop()


@pytest.fixture(scope="module")
def context() -> AdapterContext:
    city = load_city(REPO / "assets/geo/wuxi_districts.geojson", REPO / "config/cities/wuxi/stations.csv")
    return AdapterContext(city, load_catalog(), ZONE, "sensors")


@pytest.fixture
def validator(context) -> Validator:
    return Validator(context.catalog, context.city.entity_codes(), ZONE)


@pytest.fixture
def prefix() -> str:
    return f"citybrain-test/{uuid.uuid4().hex}"


@pytest.fixture
def make(context) -> Iterator[Callable[..., MqttAdapter]]:
    """Adapters that the test closes afterwards, whatever happens."""
    made: list[MqttAdapter] = []

    def build(**options: object) -> MqttAdapter:
        adapter = MqttAdapter(Options.model_validate(options), context)
        made.append(adapter)
        return adapter

    yield build
    for adapter in made:
        adapter.close()


def send(url: str, *messages: tuple[str, str], auth: dict | None = None) -> None:
    parts = urlsplit(url)
    publish.multiple(
        [{"topic": topic, "payload": payload, "qos": 1} for topic, payload in messages],
        hostname=parts.hostname,
        port=parts.port or 1883,
        auth=auth,
    )


def arrived(adapter: MqttAdapter, count: int, timeout: float = 10.0) -> None:
    """Wait until `count` messages reached the adapter's buffer (kept or dropped)."""
    deadline = time.monotonic() + timeout
    while (counts := adapter.counts()).buffered + counts.dropped < count:
        assert time.monotonic() < deadline, f"only {counts} of {count} messages arrived"
        time.sleep(0.02)


def ready(adapter: MqttAdapter) -> Batch:
    """The first fetch waits until the adapter is connected and subscribed."""
    batch = adapter.fetch(None, utcnow())
    assert batch.records == []
    return batch


def test_published_messages_become_records_and_each_run_drains(broker, prefix, make, validator):
    adapter = make(broker=broker, topics=[f"{prefix}/air/{{entity}}/{{indicator}}"])
    ready(adapter)
    before = utcnow()
    send(
        broker,
        (f"{prefix}/air/1188A/env.pm25", "35.2"),
        (f"{prefix}/air/1189A/env.aqi", "61"),
        (f"{prefix}/air/1190A/env.aqi", "n/a"),
    )
    arrived(adapter, 3)
    batch = adapter.fetch("2026-01-01T00:00:00+00:00", utcnow())
    accepted, rejected = validator.validate(batch.records)
    assert sorted((r.indicator, r.entity, r.value) for r in accepted) == [
        ("env.aqi", "1189A", 61.0),
        ("env.pm25", "1188A", 35.2),
    ]
    assert all(before <= r.observed_at <= utcnow() for r in accepted)
    assert [(r.field, r.raw) for r in rejected] == [("value", f"{prefix}/air/1190A/env.aqi n/a")]
    assert before <= datetime.fromisoformat(batch.watermark) <= utcnow()
    again = adapter.fetch(batch.watermark, utcnow())
    assert again.records == [] and again.watermark == batch.watermark


def test_json_payloads_wide_and_malformed(broker, prefix, make, validator):
    adapter = make(
        broker=broker,
        topics=[f"{prefix}/stations/+/telemetry"],
        entity_field="station",
        entity_map={"WX-EP-01": "1191A"},
        observed_at_field="time",
        values={"pm25": "env.pm25", "readings.aqi": "env.aqi"},
    )
    ready(adapter)
    at = (utcnow() - timedelta(minutes=3)).replace(microsecond=0)
    good = f'{{"station": "WX-EP-01", "time": "{at.isoformat()}", "pm25": 40, "readings": {{"aqi": 57}}}}'
    no_time = '{"station": "WX-EP-01", "pm25": 40, "readings": {"aqi": 57}}'
    send(
        broker,
        (f"{prefix}/stations/a/telemetry", good),
        (f"{prefix}/stations/b/telemetry", "<xml>not json</xml>"),
        (f"{prefix}/stations/c/telemetry", no_time),
    )
    arrived(adapter, 3)
    accepted, rejected = validator.validate(adapter.fetch(None, utcnow()).records)
    assert sorted((r.indicator, r.entity, r.observed_at, r.value) for r in accepted) == [
        ("env.aqi", "1191A", at, 57.0),
        ("env.pm25", "1191A", at, 40.0),
    ]
    assert (
        sorted((r.field, r.reason, r.raw) for r in rejected)
        == [
            ("entity", "unknown station or region '<payload is not a JSON object>'", raw)
            for raw in [f"{prefix}/stations/b/telemetry <xml>not json</xml>"] * 2
        ]
        + [
            (
                "observed_at",
                "unreadable timestamp \"<no field 'time'>\"",
                f"{prefix}/stations/c/telemetry {no_time}",
            )
        ]
        * 2
    )


def test_a_full_buffer_drops_the_oldest_and_says_so(broker, prefix, make, validator, caplog):
    adapter = make(broker=broker, topics=[f"{prefix}/{{entity}}"], indicator="env.aqi", max_buffer=3)
    ready(adapter)
    send(broker, *[(f"{prefix}/1188A", str(value)) for value in range(1, 6)])
    arrived(adapter, 5)
    with caplog.at_level(logging.WARNING, logger="datasources.mqtt"):
        batch = adapter.fetch(None, utcnow())
    assert [r.value for r in batch.records[:3]] == [3, 4, 5]
    _, rejected = validator.validate(batch.records)
    assert [(r.field, r.reason) for r in rejected] == [
        ("indicator", "unknown indicator '<buffer full: 2 oldest messages dropped>'")
    ]
    assert "the buffer of 3 messages was full: the 2 oldest were dropped" in rejected[0].raw
    assert "dropped the 2 oldest message(s)" in caplog.text
    assert adapter.counts().dropped == 0


def test_the_adapter_reconnects_after_the_broker_restarts(private_broker, prefix, make, validator):
    topic = f"{prefix}/air/{{entity}}/{{indicator}}"
    adapter = make(broker=private_broker.url, topics=[topic], connect_timeout="1s")
    ready(adapter)
    send(private_broker.url, (f"{prefix}/air/1188A/env.aqi", "50"))
    arrived(adapter, 1)
    assert [r.value for r in adapter.fetch(None, utcnow()).records] == [50]

    private_broker.stop()
    deadline = time.monotonic() + 10
    with pytest.raises(ConnectionError, match=rf"MQTT broker {private_broker.url}: "):
        while time.monotonic() < deadline:
            adapter.fetch(None, utcnow())
    private_broker.start()
    deadline = time.monotonic() + 45  # paho's backoff doubles from 1 s up to 30 s
    while True:
        try:
            ready(adapter)
            break
        except ConnectionError:
            assert time.monotonic() < deadline, "the adapter did not reconnect"
    send(private_broker.url, (f"{prefix}/air/1189A/env.aqi", "70"))
    arrived(adapter, 1)
    accepted, _ = validator.validate(adapter.fetch(None, utcnow()).records)
    assert [(r.entity, r.value) for r in accepted] == [("1189A", 70.0)]


def test_a_persistent_session_gets_what_was_sent_while_away(private_broker, prefix, make):
    options = {
        "broker": private_broker.url,
        "topics": [f"{prefix}/{{entity}}"],
        "indicator": "env.aqi",
        "persistent_session": True,
        "client_id": f"citybrain-test-{uuid.uuid4().hex[:8]}",
    }
    first = make(**options)
    ready(first)
    first.close()
    send(private_broker.url, (f"{prefix}/1188A", "42"))
    second = make(**options)  # the broker delivers the queued message as soon as it reconnects
    arrived(second, 1)
    assert [r.value for r in second.fetch(None, utcnow()).records] == [42]


def test_credentials_from_the_environment_and_a_refused_login(locked_broker, prefix, make, monkeypatch):
    monkeypatch.setenv("SENSOR_MQTT_PASSWORD", "s3cret")
    options = {"broker": locked_broker.url, "topics": [f"{prefix}/{{entity}}"], "indicator": "env.aqi"}
    admitted = make(**options, username="cb", password="${SENSOR_MQTT_PASSWORD}")
    ready(admitted)
    send(locked_broker.url, (f"{prefix}/1188A", "64"), auth={"username": "cb", "password": "s3cret"})
    arrived(admitted, 1)
    assert [r.value for r in admitted.fetch(None, utcnow()).records] == [64]
    refused = make(**options, username="cb", password="wrong", connect_timeout="2s")
    with pytest.raises(ConnectionError, match=r"the broker refused the connection \(Not authorized\)"):
        refused.fetch(None, utcnow())


def test_run_source_end_to_end_into_the_store(broker, prefix, ingest):
    options = {"broker": broker, "topics": [f"{prefix}/air/{{entity}}/{{indicator}}"]}
    with ingest.sessions() as session:
        sync_sources(
            session, [*ingest.settings.sources, SourceSettings(id="sensors", type="mqtt", options=options)]
        )
        session.commit()
        source = session.get(Source, "sensors")
        session.expunge(source)
    adapter = ingest.adapter(source)
    try:
        first = run_source(ingest, "sensors")
        assert (first.status, first.fetched) == ("ok", 0)
        send(
            broker,
            (f"{prefix}/air/1188A/env.aqi", "72"),
            (f"{prefix}/air/1189A/env.pm25", "48.5"),
            (f"{prefix}/air/NOPE/env.aqi", "10"),
        )
        arrived(adapter, 3)
        second = run_source(ingest, "sensors")
        assert (second.status, second.fetched, second.accepted, second.rejected) == ("partial", 3, 2, 1)
        with ingest.sessions() as session:
            stored = session.scalars(
                select(Reading.value).where(Reading.source_id == "sensors").order_by(Reading.value)
            ).all()
            raws = session.scalars(
                select(RejectedRecord.raw).where(RejectedRecord.source_id == "sensors")
            ).all()
            watermark = session.get(Source, "sensors").watermark
        assert stored == [48.5, 72.0]
        assert raws == [f"{prefix}/air/NOPE/env.aqi 10"]
        assert datetime.fromisoformat(watermark) <= datetime.now(UTC)
    finally:
        adapter.close()
