"""FIWARE NGSI-v2 and NGSI-LD: a context broker, an export file or a notification, as readings.

A context broker holds the current state of its entities, not their history, so `fetch` asks for
every entity of the mapped types (paged with offset+limit) and keeps those the broker changed
since the watermark: the latest modification time it reported (v2 `dateModified`, LD `modifiedAt`
of options=sysAttrs). The broker's own clock orders changes, so an observation that arrives late
is still picked up, which a watermark on observation times would lose. A re-sent reading is an
idempotent upsert in the store anyway.

Each mapped attribute (datasources/ngsi_models.py) becomes one record of its indicator, at the
station or region datasources/ngsi_places.py resolves; anything wrong with it (a Boolean where a
number belongs, an unknown unit code, an unreadable date, no city entity near) travels on as a
record the validator rejects with the reason, so it lands in quarantine with the payload's text.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
from pydantic import Field, field_validator, model_validator

from core.geo import gcj02_to_wgs84, transform_geometry
from core.records import Record
from core.settings import REPO_ROOT, parse_duration
from datasources import base
from datasources.base import AdapterContext, Batch
from datasources.fields import expand_env, missing_variables
from datasources.ngsi_models import DERIVED, SMART_DATA_MODELS, AttributeMap, UnitError, measurands, merged
from datasources.ngsi_payload import (
    Attr,
    Entity,
    NgsiError,
    canonical,
    entities_of,
    geometry_of,
    modified_at,
    parse_json,
    period_of,
    read_entity,
)
from datasources.ngsi_places import Locator
from indicators.catalog import Catalog, Indicator

log = logging.getLogger(__name__)

RAW_LIMIT = 2000
# Entity-level observation times, tried in order after the attribute's own: the end of an
# observation period first (TrafficFlowObserved and NoiseLevelObserved state one).
ENTITY_TIMES = (
    "dateObservedTo",
    "dateObserved",
    "TimeInstant",
    "observedAt",
    "timestamp",
    "observationDateTime",
)
MISSING_TIME = "no dateObserved, observedAt or TimeInstant"
NOT_AN_ENTITY = "(not an NGSI entity: no type)"
_PATHS = {"v2": "/v2/entities", "ld": "/ngsi-ld/v1/entities"}
_COUNT_HEADERS = {"v2": "Fiware-Total-Count", "ld": "NGSILD-Results-Count"}
_JSON_LD_CONTEXT = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


class Options(base.Options):
    """Where the entities come from (a broker `url` or an export `file`), and how they map."""

    url: str | None = Field(default=None, description="the context broker, e.g. http://orion:1026")
    file: Path | None = Field(
        default=None, description="a JSON export: entities, one entity or a notification"
    )
    api: Literal["v2", "ld"] = Field(default="v2", description="NGSI-v2 (Orion) or NGSI-LD")
    types: list[str] | None = Field(
        default=None, min_length=1, description="entity types to query (default: every mapped type)"
    )
    q: str | None = Field(default=None, description="a filter in the broker's query language, sent as q")
    service: str | None = Field(default=None, description="tenant: Fiware-Service (v2), NGSILD-Tenant (LD)")
    service_path: str | None = Field(default=None, description="Fiware-ServicePath (v2 only)")
    context: str | None = Field(default=None, description="the @context URL sent as Link header (LD only)")
    headers: dict[str, str] = Field(
        default_factory=dict, description="extra headers, e.g. X-Auth-Token; values may use ${ENV_VARIABLE}"
    )
    notify_token: str | None = Field(
        default=None,
        min_length=1,
        description="a secret the broker sends as the X-CityBrain-Source-Token header of its "
        "notifications (the subscription's httpCustom headers or receiverInfo): it lets the broker "
        "post to this source's /notify and nothing else, without a user's API token; may use "
        "${ENV_VARIABLE}",
    )
    page_size: int = Field(default=100, ge=1, le=1000, description="entities per request (limit)")
    timeout: float = Field(default=30.0, description="seconds per request")
    entity_map: dict[str, str] = Field(
        default_factory=dict, description="NGSI entity id -> the city's station or region code"
    )
    max_distance: float = Field(
        default=500.0, gt=0, description="metres from an entity's location to the station it is read as"
    )
    coordinates: Literal["wgs84", "gcj02"] = Field(
        default="wgs84", description="datum of the entities' locations (NGSI says WGS84; AMap-fed: GCJ-02)"
    )
    attributes: dict[str, dict[str, AttributeMap | None]] = Field(
        default_factory=dict,
        description="per entity type: attribute -> indicator key or mapping; null drops a built-in one",
    )

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)

    @field_validator("attributes", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        """`pm1: env.pm1` is short for `pm1: {indicator: env.pm1}`."""
        if not isinstance(value, dict):
            return value
        return {
            kind: (
                {name: {"indicator": rule} if isinstance(rule, str) else rule for name, rule in attrs.items()}
                if isinstance(attrs, dict)
                else attrs
            )
            for kind, attrs in value.items()
        }

    @field_validator("headers")
    @classmethod
    def _variables_set(cls, headers: dict[str, str]) -> dict[str, str]:
        problems = [
            f"{name}: environment variable {variable} is not set"
            for name, value in headers.items()
            for variable in missing_variables(value)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return headers

    @field_validator("notify_token")
    @classmethod
    def _token_set(cls, value: str | None) -> str | None:
        missing = missing_variables(value) if value is not None else []
        if missing:
            raise ValueError(f"environment variable {missing[0]} is not set")
        if value is not None and len(expand_env(value)) < 16:
            raise ValueError("use at least 16 characters: the token is the broker's only credential")
        return value

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        parts = urlsplit(value) if value is not None else None
        if parts is not None and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise ValueError("expected an http:// or https:// URL of the context broker")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Options:
        if (self.url is None) == (self.file is None):
            raise ValueError("give exactly one of url (a context broker) and file (an export)")
        if self.api == "ld" and self.service_path is not None:
            raise ValueError("service_path is NGSI-v2's Fiware-ServicePath; NGSI-LD has none")
        if self.api == "v2" and self.context is not None:
            raise ValueError("context is NGSI-LD's @context; NGSI-v2 has none")
        return self


@dataclass(frozen=True)
class Draft:
    """A record before same-key readings of different NGSI entities are combined."""

    indicator: Any
    entity: Any
    observed_at: Any
    value: Any
    raw: str
    ngsi_id: str

    def record(self) -> Record:
        return Record(self.indicator, self.entity, self.observed_at, self.value, self.raw)


class EntityReader:
    """Turns NGSI entities into records: mapping, units, times and places; no I/O."""

    def __init__(
        self,
        mappings: dict[str, dict[str, AttributeMap]],
        catalog: Catalog,
        locator: Locator,
        zone: ZoneInfo,
        gcj02: bool = False,
    ):
        self.mappings, self.catalog, self.locator = mappings, catalog, locator
        self.zone, self.gcj02 = zone, gcj02

    def records(self, entities: Iterable[Any]) -> list[Record]:
        unmapped: Counter[str] = Counter()
        drafts: list[Draft] = []
        for obj in entities:
            drafts.extend(self._drafts(obj, unmapped))
        if unmapped:
            log.info("NGSI entities of types with no mapping skipped: %s", dict(unmapped))
        return combine(drafts, self.catalog)

    def _drafts(self, obj: Any, unmapped: Counter[str]) -> list[Draft]:
        if not isinstance(obj, dict) or not obj.get("type"):
            entity_id = obj.get("id") if isinstance(obj, dict) else None
            return [Draft(NOT_AN_ENTITY, entity_id, None, None, _text(obj), str(entity_id or ""))]
        entity = read_entity(obj)
        kind = next((t for t in entity.types if t in self.mappings), None)
        if kind is None:
            unmapped[entity.type] += 1
            return []
        rules = self.mappings[kind]
        geometry = geometry_of(entity)
        if geometry is not None and self.gcj02:
            geometry = transform_geometry(geometry, gcj02_to_wgs84)
        listed = measurands(entity)
        period = self._period(entity)
        drafts = []
        for name, rule in rules.items():
            attr = entity.attrs.get(name) or listed.get(name)
            if attr is None and name in DERIVED:
                attr = DERIVED[name](entity)
            if attr is None:
                continue
            indicator = self.catalog[rule.indicator]
            observed, time_name = self._observed(entity, attr, rule)
            value = _value(attr, rule, indicator, period)
            code = self.locator.locate(entity.id, kind, geometry, indicator) or entity.id
            drafts.append(
                Draft(indicator.key, code, observed, value, _raw(entity, attr, time_name), entity.id)
            )
        return drafts

    def _when(self, value: Any) -> Any:
        """The end of an instant or interval as aware UTC; unreadable text stays for the validator."""
        period = period_of(value, self.zone)
        if period is not None:
            return period.end
        return _text(value) if isinstance(value, dict | list) else value

    def _observed(self, entity: Entity, attr: Attr, rule: AttributeMap) -> tuple[Any, str | None]:
        """The attribute's own time, else the mapping's time attributes, else the entity's."""
        if attr.observed is not None:
            return self._when(attr.observed), None
        for name in (*rule.time, *ENTITY_TIMES):
            found = entity.get(name)
            if found is not None and found.value not in (None, ""):
                return self._when(found.value), found.name
        return MISSING_TIME, None

    def _period(self, entity: Entity) -> float | None:
        """Seconds the observation lasted, from dateObservedFrom/To or a dateObserved interval."""
        start, end = entity.get("dateObservedFrom"), entity.get("dateObservedTo")
        if start is not None and end is not None:
            first, last = period_of(start.value, self.zone), period_of(end.value, self.zone)
            if first is not None and last is not None:
                return (last.end - first.end).total_seconds()
        observed = entity.get("dateObserved")
        interval = period_of(observed.value, self.zone) if observed is not None else None
        return interval.seconds if interval is not None else None


def _number(value: Any) -> float | None:
    """A JSON number or numeric text; a Boolean is not a measurement (the validator says so)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _value(attr: Attr, rule: AttributeMap, indicator: Indicator, period: float | None) -> Any:
    """The value in the indicator's unit, or what the validator should reject, explained."""
    number = _number(attr.value)
    if number is None:
        return attr.value
    try:
        return rule.value(number, attr.unit, indicator.unit, period)
    except UnitError as exc:
        return f"{number:g} {exc}"


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)[:RAW_LIMIT]


def _raw(entity: Entity, attr: Attr, time_name: str | None) -> str:
    """The payload's text of one reading: the entity's id and type, the attribute, its time, location."""
    fields: dict[str, Any] = {"id": entity.id, "type": entity.source.get("type"), attr.name: attr.source}
    if time_name is not None:
        fields[time_name] = entity.get(time_name).source  # type: ignore[union-attr]
    location = entity.get("location")
    if location is not None:
        fields["location"] = location.source
    return _text(fields)


def _combinable(draft: Draft, catalog: Catalog) -> tuple[str, str, datetime] | None:
    indicator = catalog.get(draft.indicator) if isinstance(draft.indicator, str) else None
    if indicator is None or not isinstance(draft.observed_at, datetime) or not isinstance(draft.value, float):
        return None
    if not math.isfinite(draft.value) or not indicator.in_bounds(draft.value):
        return None
    return draft.indicator, str(draft.entity), draft.observed_at


_AGGREGATE = {"mean": lambda v: sum(v) / len(v), "sum": sum, "max": max, "min": min}


def combine(drafts: list[Draft], catalog: Catalog) -> list[Record]:
    """One record per (indicator, entity, time): the lanes of a road add up, two sensors at one
    station average, by the indicator's aggregation; the same NGSI entity twice counts once.

    Only valid readings are combined; a bad one travels alone so the validator names it.
    """
    groups: dict[tuple[str, str, datetime], dict[str, Draft]] = {}
    order: list[Draft | tuple[str, str, datetime]] = []
    for draft in drafts:
        key = _combinable(draft, catalog)
        if key is None:
            order.append(draft)
            continue
        if key not in groups:
            groups[key] = {}
            order.append(key)
        groups[key][draft.ngsi_id] = draft
    records = []
    for item in order:
        if isinstance(item, Draft):
            records.append(item.record())
            continue
        members = list(groups[item].values())
        if len(members) == 1:
            records.append(members[0].record())
            continue
        value = _AGGREGATE[catalog[item[0]].aggregation]([m.value for m in members])
        records.append(Record(*item, value, "\n".join(m.raw for m in members)[:RAW_LIMIT]))
    return records


def notification_records(body: str | bytes | dict | list, reader: EntityReader) -> list[Record]:
    """The records of one notification body (v2 or LD; or a bare entity array), for an HTTP
    receiver to hand to the pipeline. Raises NgsiError only when the body is no notification."""
    payload = parse_json(body, "notification") if isinstance(body, str | bytes) else body
    return reader.records(entities_of(payload, "notification"))


def changed_since(
    entities: list[Any], since: str | None, seen: frozenset[str]
) -> tuple[list[Any], str | None, frozenset[str]]:
    """Entities the broker changed after the watermark `since`, the new watermark, and the entities
    modified at exactly the new watermark.

    Modification times can tie (a broker with second resolution): an entity modified at exactly
    the watermark is kept unless it is in `seen`, the ones already sent at that instant, so a tie
    neither loses an update nor re-sends one. An entity without a modification time is kept.
    """
    after = _instant(since)
    latest, at_latest = after, set(seen) if after is not None else set()
    fresh = []
    for obj in entities:
        moment, key = modified_at(obj), _key(obj)
        if moment is None or after is None or moment > after or (moment == after and key not in seen):
            fresh.append(obj)
        if moment is None:
            continue
        if latest is None or moment > latest:
            latest, at_latest = moment, {key}
        elif moment == latest:
            at_latest.add(key)
    watermark = latest.isoformat() if latest is not None else since
    return fresh, watermark, frozenset(at_latest)


def _instant(watermark: str | None) -> datetime | None:
    if watermark is None:
        return None
    try:
        moment = datetime.fromisoformat(watermark)
    except ValueError:
        log.warning("NGSI watermark %r is no ISO-8601 time: fetching every entity", watermark)
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _key(obj: Any) -> str:
    return f"{obj.get('type')}\x1f{obj.get('id')}" if isinstance(obj, dict) else ""


class Broker:
    """GET /v2/entities or /ngsi-ld/v1/entities, one type at a time, every page."""

    def __init__(self, url: str, options: Options, types: list[str]):
        url = url.rstrip("/")
        self.url = url if url.endswith("/entities") else url + _PATHS[options.api]
        self.api, self.types, self.q = options.api, types, options.q
        self.page_size, self.timeout = options.page_size, options.timeout
        self.headers = {"Accept": "application/json"}
        if options.api == "v2":
            self.headers |= _present(
                {"Fiware-Service": options.service, "Fiware-ServicePath": options.service_path}
            )
        else:
            link = f"<{options.context}>; {_JSON_LD_CONTEXT}" if options.context else None
            self.headers |= _present({"NGSILD-Tenant": options.service, "Link": link})
        self.headers |= {name: expand_env(value) for name, value in options.headers.items()}

    def entities(self) -> list[Any]:
        with httpx.Client(timeout=self.timeout, headers=self.headers) as client:
            return [entity for kind in self.types for entity in self._query(client, kind)]

    def _query(self, client: httpx.Client, kind: str) -> list[Any]:
        found: list[Any] = []
        previous_first: object = None
        while True:
            page, total = self._page(client, kind, len(found))
            first = _key(page[0]) if page else None
            if found and first == previous_first:
                raise NgsiError(f"GET {self.url}: the broker answered offset {len(found)} with the same page")
            found.extend(page)
            if not page or len(page) < self.page_size or (total is not None and len(found) >= total):
                return found
            previous_first = first

    def _page(self, client: httpx.Client, kind: str, offset: int) -> tuple[list[Any], int | None]:
        params: dict[str, Any] = {"type": kind, "limit": self.page_size, "offset": offset}
        if self.api == "v2":
            params |= {"options": "count", "attrs": "*,dateModified"}
        else:
            params |= {"count": "true", "options": "sysAttrs"}
        if self.q:
            params["q"] = self.q
        try:
            response = client.get(self.url, params=params)
        except httpx.HTTPError as exc:
            raise NgsiError(
                f"GET {self.url} (type {kind}, offset {offset}): {type(exc).__name__}: {exc}"
            ) from exc
        if response.status_code >= 400:
            status = f"HTTP {response.status_code} {response.reason_phrase}"
            raise NgsiError(f"GET {response.url}: {status}: {response.text[:300]}")
        body = parse_json(response.content, f"GET {response.url}")
        if not isinstance(body, list):
            raise NgsiError(
                f"GET {response.url}: expected a JSON array of entities, got {type(body).__name__}"
            )
        count = response.headers.get(_COUNT_HEADERS[self.api], "")
        return body, int(count) if count.strip().isdigit() else None


class ExportFile:
    """A JSON file of entities (or one entity, or a notification), re-read on every fetch."""

    def __init__(self, path: Path):
        self.path = path if path.is_absolute() else REPO_ROOT / path

    def entities(self) -> list[Any]:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise NgsiError(f"{self.path}: cannot read: {exc.strerror}") from exc
        return entities_of(parse_json(data, str(self.path)), str(self.path))


def _present(headers: dict[str, str | None]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if value}


def checked_mappings(options: Options, catalog: Catalog) -> dict[str, dict[str, AttributeMap]]:
    """The effective mapping: a built-in attribute whose indicator the catalog lacks is dropped, a
    deployment's one is an error; a unit that can never convert is an error naming both ends."""
    own = {(kind, canonical(name)): name for kind, attrs in options.attributes.items() for name in attrs}
    built_in = {(kind, canonical(name)): name for kind, attrs in SMART_DATA_MODELS.items() for name in attrs}
    usable: dict[str, dict[str, AttributeMap]] = {}
    for kind, attrs in merged(options.attributes).items():
        for name, rule in attrs.items():
            indicator = catalog.get(rule.indicator)
            where = f"attributes.{kind}.{own.get((kind, name)) or built_in.get((kind, name), name)}"
            if indicator is None:
                if (kind, name) in own:
                    raise ValueError(f"{where}: unknown indicator {rule.indicator!r}")
                continue
            try:
                rule.check(indicator.unit)
            except UnitError as exc:
                raise ValueError(
                    f"{where} -> {indicator.key} ({indicator.unit or 'no unit'}): {exc}"
                ) from None
            usable.setdefault(kind, {})[name] = rule
    return usable


class NgsiAdapter:
    """FIWARE entities from a context broker or an export file; notifications via `notification`."""

    Options: ClassVar[type[base.Options]] = Options
    backfills: ClassVar[bool] = False

    def __init__(self, options: Options, context: AdapterContext) -> None:
        self.options = options
        mappings = checked_mappings(options, context.catalog)
        locator = Locator(context.city, options.max_distance, options.entity_map)
        self.reader = EntityReader(
            mappings, context.catalog, locator, context.timezone, options.coordinates == "gcj02"
        )
        self.source: Broker | ExportFile
        if options.url is not None:
            self.source = Broker(options.url, options, options.types or sorted(mappings))
        else:
            self.source = ExportFile(options.file)  # type: ignore[arg-type]  # one of the two is set
        self._sent: tuple[str | None, frozenset[str]] = (None, frozenset())

    def fetch(self, since: str | None, until: datetime) -> Batch:
        """Entities changed since the watermark, as records. `until` does not filter: a broker
        holds the current state only, stamped by its own clock (hence no backfill)."""
        entities = self.source.entities()
        seen = self._sent[1] if self._sent[0] == since else frozenset()
        fresh, watermark, at_watermark = changed_since(entities, since, seen)
        records = self.reader.records(fresh)
        self._sent = (watermark, at_watermark)
        return Batch(records, watermark)

    def notification(self, body: str | bytes | dict | list) -> list[Record]:
        """The records of a subscription's notification body (for the HTTP receiver)."""
        return notification_records(body, self.reader)

    def accepts(self, token: str) -> bool:
        """Whether `token` is this source's notification token (compared in constant time)."""
        expected = self.options.notify_token
        return expected is not None and hmac.compare_digest(token.encode(), expand_env(expected).encode())
