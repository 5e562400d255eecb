"""Sensors over MQTT: subscribe in the background, buffer what arrives, hand it over at each run.

MQTT pushes while the pipeline pulls, so the adapter keeps one paho client per source (the ingest
context caches adapter instances) whose network thread fills a bounded, thread-safe buffer; each
run drains it. paho reconnects with backoff after the broker restarts and on_connect subscribes
again. Every message becomes records: a payload that cannot be read still becomes a record whose
unreadable field validation rejects, with the topic and payload as raw text, and a full buffer
that dropped messages says so in the batch.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import Field, field_validator, model_validator

from core.settings import parse_duration
from core.timeutil import utcnow
from datasources import base
from datasources.base import AdapterContext, Batch, Record
from datasources.fields import expand_env, map_code, time_text
from datasources.sql import read_time
from indicators.validation import RAW_LIMIT

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
RECONNECT_MIN, RECONNECT_MAX = 1, 30  # seconds; paho doubles the wait after each failed attempt
_PLACEHOLDER = re.compile(r"^\{([A-Za-z_]\w*)\}$")
NOT_AN_OBJECT = "<payload is not a JSON object>"


@dataclass(frozen=True)
class TopicPattern:
    """A subscription with named segments: `city/air/{entity}/{indicator}` subscribes to
    `city/air/+/+` and reads the entity and the indicator from the topic of each message."""

    text: str
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> TopicPattern:
        segments = tuple(text.split("/"))
        for index, segment in enumerate(segments):
            if segment == "#" and index != len(segments) - 1:
                raise ValueError(f"{text!r}: '#' must be the last level")
            if segment in ("+", "#") or _PLACEHOLDER.match(segment):
                continue
            if any(char in segment for char in "+#{}"):
                raise ValueError(f"{text!r}: '+', '#' and {{name}} must fill a whole level, not {segment!r}")
        if not text:
            raise ValueError("a topic pattern must not be empty")
        return cls(text, segments)

    @property
    def names(self) -> set[str]:
        return {m.group(1) for s in self.segments if (m := _PLACEHOLDER.match(s))}

    @property
    def filter(self) -> str:
        return "/".join("+" if _PLACEHOLDER.match(s) else s for s in self.segments)

    def match(self, topic: str) -> dict[str, str] | None:
        """The named segments of `topic`, or None if the topic does not match the pattern."""
        levels = topic.split("/")
        found: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment == "#":
                return found
            if index >= len(levels):
                return None
            named = _PLACEHOLDER.match(segment)
            if named:
                found[named.group(1)] = levels[index]
            elif segment != "+" and segment != levels[index]:
                return None
        return found if len(levels) == len(self.segments) else None


class Options(base.Options):
    """The broker, the topics, and where each field of a reading is found in a message."""

    broker: str = Field(description="mqtt://host:port or mqtts://host:port; ${NAME} reads the environment")
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    client_id: str | None = Field(default=None, description="default: citybrain-<source id>-<random>")
    qos: Literal[0, 1, 2] = 1
    persistent_session: bool = Field(
        default=False, description="the broker keeps the subscription and queues QoS 1/2 messages while away"
    )
    ca_file: str | None = Field(default=None, description="CA bundle for mqtts (default: the system's)")
    keepalive: int = Field(default=30, ge=5, le=3600)
    connect_timeout: float = Field(default=10.0, description="how long a run waits for the broker")
    topics: list[str] = Field(min_length=1, description="patterns with +, # and {entity}/{indicator} levels")
    entity: str | None = Field(default=None, description="a constant entity code for every message")
    entity_field: str | None = Field(default=None, description="payload field (dotted path) of the entity")
    indicator: str | None = Field(default=None, description="a constant indicator key for every message")
    indicator_field: str | None = None
    observed_at_field: str | None = Field(default=None, description="default: the time the message arrived")
    timestamp_unit: Literal["s", "ms"] = Field(default="s", description="unit of numeric (epoch) times")
    value_field: str | None = Field(default=None, description="default: the payload is the value itself")
    values: dict[str, str] | None = Field(default=None, description="wide payloads: field path -> indicator")
    entity_map: dict[str, str] = Field(default_factory=dict, description="sensor code -> city code")
    indicator_map: dict[str, str] = Field(default_factory=dict, description="sensor name -> indicator key")
    max_buffer: int = Field(default=100_000, ge=1, le=10_000_000)

    @field_validator("broker", "username", "password")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        return None if value is None else expand_env(value)

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError("expected mqtt://host:port or mqtts://host:port")
        if parts.username or parts.password:
            raise ValueError("put credentials in username and password, not in the URL")
        try:
            parts.port  # noqa: B018 - raises on a port that is no number
        except ValueError:
            raise ValueError("the port must be a number from 1 to 65535") from None
        return value

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: list[str]) -> list[str]:
        for text in value:
            TopicPattern.parse(text)
        return value

    @field_validator("connect_timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _mapping(self) -> Options:
        patterns = [TopicPattern.parse(t) for t in self.topics]
        if self.persistent_session and not self.client_id:
            raise ValueError(
                "persistent_session needs a fixed client_id (the broker keeps the session by it)"
            )
        _one_source("entity", self.entity, self.entity_field, patterns)
        if self.values is not None:
            if not self.values:
                raise ValueError("values must map at least one payload field to an indicator")
            if (
                self.value_field
                or self.indicator
                or self.indicator_field
                or any("indicator" in p.names for p in patterns)
            ):
                raise ValueError(
                    "values (wide payloads) excludes value_field, indicator, indicator_field and {indicator}"
                )
        else:
            _one_source("indicator", self.indicator, self.indicator_field, patterns)
        bare = self.value_field is None and self.values is None
        fields = [f for f in ("entity_field", "indicator_field", "observed_at_field") if getattr(self, f)]
        if bare and fields:
            raise ValueError(f"{fields[0]} reads a JSON payload: set value_field too (or values)")
        return self


def _one_source(name: str, constant: str | None, field: str | None, patterns: list[TopicPattern]) -> None:
    """A reading's entity (or indicator) comes from exactly one place: a constant, a payload field,
    or a {name} level in every topic pattern."""
    in_topics = [name in p.names for p in patterns]
    given = [
        w for w, on in ((name, constant), (f"{name}_field", field), (f"{{{name}}}", any(in_topics))) if on
    ]
    if len(given) > 1:
        raise ValueError(f"the {name} comes from one place, not from {' and '.join(given)}")
    if not given:
        raise ValueError(f"set {name}, {name}_field or a {{{name}}} level in the topics")
    if given[0].startswith("{") and not all(in_topics):
        missing = next(p.text for p, on in zip(patterns, in_topics, strict=True) if not on)
        raise ValueError(f"topic {missing!r} has no {{{name}}} level")


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    arrived: datetime


def lookup(payload: object, path: str) -> object:
    """A field by dotted path (`data.pm25`, `readings.0.value`), or a marker naming what is missing
    (validation's reason then quotes it)."""
    if not isinstance(payload, dict):
        return NOT_AN_OBJECT
    node: Any = payload
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return f"<no field {path!r}>"
    return node


class MessageReader:
    """Turns one message into records, by the options' mapping of topic levels and payload fields."""

    def __init__(self, options: Options, zone: ZoneInfo) -> None:
        self.options = options
        self.zone = zone
        self.patterns = [TopicPattern.parse(t) for t in options.topics]

    def records(self, message: Message) -> list[Record]:
        """The readings of one message; a field that cannot be read goes through for validation
        to reject, with the topic and payload as raw text."""
        options = self.options
        text = message.payload.decode("utf-8", errors="replace")
        raw = f"{message.topic} {text}"[:RAW_LIMIT]
        topic = next((found for p in self.patterns if (found := p.match(message.topic)) is not None), {})
        payload = _parse(text)

        def field(path: str) -> object:
            return lookup(payload, path)

        entity = options.entity or (
            field(options.entity_field) if options.entity_field else topic.get("entity")
        )
        entity = map_code(entity, options.entity_map)
        observed_at = self._time(
            field(options.observed_at_field) if options.observed_at_field else message.arrived
        )
        if options.values is not None:
            pairs = [(key, field(path)) for path, key in options.values.items()]
        else:
            indicator = options.indicator or (
                field(options.indicator_field) if options.indicator_field else topic.get("indicator")
            )
            value = field(options.value_field) if options.value_field else payload
            pairs = [(map_code(indicator, options.indicator_map), value)]
        return [Record(indicator, entity, observed_at, value, raw) for indicator, value in pairs]

    def _time(self, value: object) -> object:
        if (
            self.options.timestamp_unit == "ms"
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        ):
            value = value / 1000
        at = read_time(value, self.zone)
        return at if at is not None else time_text(value)


def _parse(text: str) -> object:
    """JSON if it is, else the text itself (a bare value such as `35.2` is JSON too)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class BufferCounts:
    buffered: int
    dropped: int


class MqttAdapter:
    """One paho client per source; `fetch` drains what arrived since the last run."""

    Options: ClassVar[type[base.Options]] = Options
    backfills: ClassVar[bool] = False

    def __init__(self, options: Options, context: AdapterContext) -> None:
        self.options = options
        self.context = context
        self.reader = MessageReader(options, context.timezone)
        parts = urlsplit(options.broker)
        self.host, self.port = parts.hostname or "", parts.port or DEFAULT_PORTS[parts.scheme]
        self.address = f"{parts.scheme}://{self.host}:{self.port}"
        self._lock = threading.Lock()
        self._buffer: deque[Message] = deque(maxlen=options.max_buffer)
        self._dropped = 0
        self._ready = threading.Event()  # connected and subscribed
        self._problem = "not connected yet"
        self._refusal: str | None = None  # why the broker refused the last login, if it did
        self._refused: list[str] = []  # subscriptions the broker refused
        self.client = self._client(parts.scheme == "mqtts")
        self.client.connect_async(self.host, self.port, keepalive=options.keepalive)
        self.client.loop_start()

    def _client(self, tls: bool) -> mqtt.Client:
        options = self.options
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=options.client_id or f"citybrain-{self.context.source_id}-{uuid.uuid4().hex[:8]}",
            clean_session=not options.persistent_session,
            protocol=mqtt.MQTTv311,
        )
        if options.username is not None:
            client.username_pw_set(options.username, options.password)
        if tls:
            client.tls_set(ca_certs=options.ca_file)
        client.reconnect_delay_set(RECONNECT_MIN, RECONNECT_MAX)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    # --- paho callbacks (the network thread) ---

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self._refusal = f"the broker refused the connection ({reason}); retrying"
            log.warning("source %s: MQTT broker %s: %s", self.context.source_id, self.address, self._refusal)
            return
        self._refusal = None
        client.subscribe([(p.filter, self.options.qos) for p in self.reader.patterns])

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self._problem = "cannot reach the broker; retrying"

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list, _props: Any
    ) -> None:
        self._refused = [
            f"{p.filter} ({reason})"
            for p, reason in zip(self.reader.patterns, reasons, strict=False)
            if reason.is_failure
        ]
        self._ready.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        """A refused login ends in a disconnect too; the refusal is the better reason to report."""
        dropped = self._ready.is_set() and reason.is_failure  # not our own close()
        self._ready.clear()
        self._problem = self._refusal or f"disconnected ({reason}); reconnecting"
        if dropped:
            log.warning("source %s: MQTT broker %s %s", self.context.source_id, self.address, self._problem)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            if len(self._buffer) == self._buffer.maxlen:
                self._dropped += 1
            self._buffer.append(Message(message.topic, message.payload, utcnow()))

    # --- the pipeline's side ---

    def counts(self) -> BufferCounts:
        """What waits for the next run, and what a full buffer dropped since the last one."""
        with self._lock:
            return BufferCounts(len(self._buffer), self._dropped)

    def fetch(self, since: str | None, until: datetime) -> Batch:
        """Every message buffered since the last run; fails (keeping the buffer) while the broker
        is unreachable or refuses a subscription."""
        if not self._ready.wait(self.options.connect_timeout):
            raise ConnectionError(f"MQTT broker {self.address}: {self._problem}")
        if self._refused:
            raise PermissionError(
                f"MQTT broker {self.address} refused the subscription to {', '.join(self._refused)}"
            )
        with self._lock:
            messages = list(self._buffer)
            self._buffer.clear()
            dropped, self._dropped = self._dropped, 0
        records = [record for message in messages for record in self.reader.records(message)]
        if dropped:
            records.append(self._overflow(dropped))
        return Batch(records, messages[-1].arrived.isoformat() if messages else since)

    def close(self) -> None:
        """Stop the network thread and leave the broker (the lead's shutdown calls this)."""
        self.client.disconnect()
        self.client.loop_stop()

    def _overflow(self, dropped: int) -> Record:
        """A record validation rejects, so the run's log and quarantine show the loss."""
        log.warning(
            "source %s: the MQTT buffer (max_buffer=%d) was full; dropped the %d oldest message(s)",
            self.context.source_id,
            self.options.max_buffer,
            dropped,
        )
        note = f"<buffer full: {dropped} oldest messages dropped>"
        raw = f"the buffer of {self.options.max_buffer} messages was full: the {dropped} oldest were dropped"
        return Record(note, None, utcnow(), None, raw)
