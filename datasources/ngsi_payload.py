"""Reading FIWARE NGSI payloads: NGSI-v2 and NGSI-LD, key-values and normalized, in one shape.

Brokers, exports and notifications disagree on the form of the same entity: a bare value, a v2
`{"type": "Number", "value": ..., "metadata": {...}}`, an LD `{"type": "Property", "value": ...,
"observedAt": ..., "unitCode": ...}`, a JSON-LD `{"@type": "DateTime", "@value": ...}` wrapper.
Everything here reduces them to `Attr` (value, unit, own time) so the mapping never cares which
form arrived. Nothing here knows the city or the catalog.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from shapely.errors import ShapelyError
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from core.timeutil import as_utc


class NgsiError(Exception):
    """The whole payload (or the whole fetch) is unusable: not one record can be made of it."""


# Members of an NGSI-LD entity that are not attributes.
_ENTITY_MEMBERS = {"id", "type", "@context", "scope", "createdAt", "modifiedAt", "deletedAt"}
# Keys that mark an attribute in normalized form (v2 and LD; LD Relationship has `object`).
_NORMALIZED_KEYS = ("value", "object", "languageMap", "vocab", "json", "valueList", "objectList")
# v2 metadata naming an attribute's own observation time (IoT Agents write TimeInstant).
_TIME_METADATA = ("TimeInstant", "timestamp", "observedAt", "dateObserved")


@dataclass(frozen=True)
class Attr:
    """One attribute in any form: its value (wrappers removed), unit code and own observation time."""

    name: str
    value: Any
    unit: str | None = None
    observed: Any = None
    source: Any = None


@dataclass(frozen=True)
class Entity:
    """An entity with short names: attributes keyed by `canonical` name, the payload kept for `raw`.

    `types` holds every type of an NGSI-LD entity that has several; `type` is the first.
    """

    id: str
    types: tuple[str, ...]
    attrs: dict[str, Attr]
    source: dict[str, Any]

    @property
    def type(self) -> str:
        return self.types[0] if self.types else ""

    def get(self, name: str) -> Attr | None:
        return self.attrs.get(canonical(name))


@dataclass(frozen=True)
class Period:
    """An observation instant (start None) or interval, both ends aware UTC."""

    end: datetime
    start: datetime | None = None

    @property
    def seconds(self) -> float | None:
        return (self.end - self.start).total_seconds() if self.start is not None else None


def canonical(name: str) -> str:
    """Attribute names compared loosely: `NO2`, `no2`, `PM2.5` and `pm25` name the same measurand
    (the Smart Data Models spelled them differently over the years)."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def short_name(name: str) -> str:
    """An LD broker queried without the model's @context answers with expanded IRIs
    (`https://smartdatamodels.org/dataModel.Environment/no2`); the term is the last segment."""
    if "://" in name or name.startswith("urn:"):
        return re.split(r"[/#:]", name.rstrip("/#"))[-1]
    return name


def bare_id(entity_id: str, entity_type: str) -> str:
    """The v2 id of an LD id: Smart Data Models write `urn:ngsi-ld:<Type>:<v2 id>`."""
    prefix = f"urn:ngsi-ld:{entity_type}:"
    return entity_id[len(prefix) :] if entity_id.startswith(prefix) else entity_id


def unwrap(value: Any) -> Any:
    """`{"@type": "DateTime", "@value": x}` (JSON-LD typed literal) -> x."""
    while isinstance(value, dict) and "@value" in value:
        value = value["@value"]
    return value


def _is_normalized(raw: Any) -> bool:
    return isinstance(raw, dict) and "type" in raw and any(key in raw for key in _NORMALIZED_KEYS)


def _metadata(raw: dict[str, Any], key: str) -> Any:
    meta = raw.get("metadata")
    if not isinstance(meta, dict) or key not in meta:
        return None
    item = meta[key]
    return unwrap(item.get("value")) if isinstance(item, dict) and "value" in item else unwrap(item)


def read_attr(name: str, raw: Any) -> Attr:
    """An attribute in key-values, v2 normalized or LD normalized form.

    An LD multi-attribute (a list of instances with `datasetId`) is read as its default instance.
    """
    if isinstance(raw, list) and raw and all(_is_normalized(item) for item in raw):
        defaults = [item for item in raw if "datasetId" not in item]
        raw = (defaults or raw)[0]
    if not _is_normalized(raw):
        return Attr(name, unwrap(raw), source=raw)
    value = raw.get("object") if raw.get("type") == "Relationship" else raw.get("value")
    unit = raw.get("unitCode") or _metadata(raw, "unitCode")
    observed = raw.get("observedAt")
    for key in _TIME_METADATA:
        if observed is not None:
            break
        observed = _metadata(raw, key)
    return Attr(name, unwrap(value), str(unit) if unit else None, unwrap(observed), raw)


def read_entity(obj: dict[str, Any]) -> Entity:
    declared = obj.get("type")
    types = tuple(short_name(str(t)) for t in (declared if isinstance(declared, list) else [declared]) if t)
    attrs: dict[str, Attr] = {}
    for key, raw in obj.items():
        if key in _ENTITY_MEMBERS:
            continue
        name = short_name(key)
        attrs.setdefault(canonical(name), read_attr(name, raw))
    return Entity(str(obj.get("id") or ""), types, attrs, obj)


def entities_of(payload: Any, where: str) -> list[Any]:
    """The entities of a query response (a JSON array), of one entity, or of a notification
    (v2 `{"subscriptionId", "data"}`, LD `{"type": "Notification", "data"}`); `where` names the
    payload in the error."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        data = payload.get("data")
        if isinstance(data, list) and ("subscriptionId" in payload or payload.get("type") == "Notification"):
            return data
        if "id" in payload and "type" in payload and payload.get("type") != "Notification":
            return [payload]
    raise NgsiError(
        f"{where}: expected a JSON array of entities, one entity, or a notification "
        '(NGSI-v2 {"subscriptionId", "data": [...]}, NGSI-LD {"type": "Notification", "data": [...]})'
    )


def parse_json(text: str | bytes, where: str) -> Any:
    """JSON or an NgsiError naming `where` and the line and column at fault."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise NgsiError(
            f"{where}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except UnicodeDecodeError as exc:
        raise NgsiError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _instant(text: str, zone: ZoneInfo) -> datetime | None:
    try:
        return as_utc(datetime.fromisoformat(text.strip()), zone)
    except ValueError:
        return None


def period_of(value: Any, zone: ZoneInfo) -> Period | None:
    """An ISO-8601 instant or `start/end` interval (zone-less times are the city's), else None."""
    value = unwrap(value)
    if not isinstance(value, str) or not value.strip():
        return None
    if "/" in value:
        first, _, second = value.partition("/")
        start, end = _instant(first, zone), _instant(second, zone)
        if start is None or end is None or end < start:
            return None
        return Period(end, start)
    moment = _instant(value, zone)
    return Period(moment) if moment is not None else None


def modified_at(obj: Any) -> datetime | None:
    """When the broker last changed the entity: LD `modifiedAt` (options=sysAttrs) or v2 `dateModified`."""
    if not isinstance(obj, dict):
        return None
    value = obj.get("modifiedAt")
    if value is None:
        value = read_attr("dateModified", obj.get("dateModified")).value
    period = period_of(value, ZoneInfo("UTC"))
    return period.end if period is not None else None


def _geo_point(text: str) -> BaseGeometry | None:
    """NGSI-v2's legacy `geo:point`: "latitude, longitude"."""
    parts = text.split(",")
    try:
        lat, lon = (float(part) for part in parts)
    except ValueError:
        return None
    return Point(lon, lat) if all(map(math.isfinite, (lat, lon))) else None


def geometry_of(entity: Entity) -> BaseGeometry | None:
    """The entity's `location` as a shapely geometry (GeoJSON or geo:point), None if absent or broken."""
    location = entity.get("location")
    if location is None:
        return None
    if isinstance(location.value, str):
        return _geo_point(location.value)
    if not isinstance(location.value, dict):
        return None
    try:
        geometry = shape(location.value)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError, ShapelyError):
        return None
    return None if geometry.is_empty else geometry
