"""What the REST API takes and gives, as pydantic models.

The views validate every query string and body with these models and build every response through
them, and web/openapi.py generates the OpenAPI document from the same classes: the document
describes what the code does because it is made of the code, not copied beside it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from core.timeutil import as_utc
from indicators.catalog import DOMAINS, severity_of

MAX_READINGS = 5000
DEFAULT_READINGS = 1000
MAX_ALERTS = 500
DEFAULT_ALERTS = 100
MAX_KEYS = 100
NOTE_LIMIT = 2000

Domain = Literal[DOMAINS]  # type: ignore[valid-type]
LevelName = Literal["blue", "yellow", "orange", "red"]
SeverityName = Literal["normal", "blue", "yellow", "orange", "red"]
AlertState = Literal["active", "acknowledged", "resolved", "closed"]

# A '+' in a query string arrives as a space: "…T08:00:00 08:00" means "…T08:00:00+08:00".
_SPACED_OFFSET = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


def _restore_plus(value: object) -> object:
    return _SPACED_OFFSET.sub(r"\1+\2", value.strip()) if isinstance(value, str) else value


UtcTime = Annotated[
    datetime,
    BeforeValidator(_restore_plus),
    AfterValidator(as_utc),
    Field(description="ISO-8601; without an offset it is read as UTC"),
]


class _Query(BaseModel):
    """A query string: unknown parameters are refused, so a typo is a 400, not a silent no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class IndicatorsQuery(_Query):
    domain: Domain | None = Field(None, description="only the indicators of this domain")


class LatestQuery(_Query):
    indicators: str | None = Field(
        None,
        max_length=4000,
        description="comma-separated indicator keys; default: every indicator you may see",
    )
    entity: str | None = Field(
        None, min_length=1, max_length=32, description="also give the value at this station or region"
    )
    by: Literal["entity"] | None = Field(None, description="'entity': also give the value at every entity")

    @field_validator("indicators")
    @classmethod
    def _keys(cls, value: str | None) -> str | None:
        if value is None:
            return None
        keys = [key.strip() for key in value.split(",")]
        if not all(keys):
            raise ValueError("an empty key in the comma-separated list")
        if len(keys) > MAX_KEYS:
            raise ValueError(f"at most {MAX_KEYS} keys")
        return value

    def keys(self) -> list[str] | None:
        """The requested keys in order, each once (None: all)."""
        if self.indicators is None:
            return None
        return list(dict.fromkeys(key.strip() for key in self.indicators.split(",")))


class ReadingsQuery(_Query):
    indicator: str = Field(min_length=1, max_length=64, description="the indicator key")
    entity: str | None = Field(
        None, min_length=1, max_length=32, description="one station or region; default: every entity"
    )
    start: UtcTime | None = Field(None, description="from this time on (inclusive); default: 24 h before end")
    end: UtcTime | None = Field(None, description="up to this time (exclusive); default: now")
    limit: int = Field(DEFAULT_READINGS, ge=1, le=MAX_READINGS, description="readings per page")
    cursor: str | None = Field(
        None, max_length=200, description="`next_cursor` of the previous page, to read the next one"
    )

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if value is not None and start is not None and value <= start:
            raise ValueError("end must be after start")
        return value


class AlertsQuery(_Query):
    state: Literal["open", "active", "acknowledged", "resolved", "closed", "all"] = Field(
        "open", description="'open' is active or acknowledged"
    )
    level: Annotated[int, Field(ge=1, le=4)] | LevelName | None = Field(
        None, description="the least severity: 1 (IV blue) .. 4 (I red), or its colour"
    )
    domain: Domain | None = Field(None, description="only alerts of indicators of this domain")
    entity: str | None = Field(
        None, max_length=32, description="a station or region code; a district also matches its stations"
    )
    department: str | None = Field(None, max_length=64, description="the department the alert is assigned to")
    since: UtcTime | None = Field(None, description="only alerts changed at or after this time")
    limit: int = Field(DEFAULT_ALERTS, ge=1, le=MAX_ALERTS, description="at most this many alerts")

    def min_severity(self) -> int | None:
        if self.level is None or isinstance(self.level, int):
            return self.level
        return severity_of(self.level)


class AcknowledgeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    note: str = Field(
        "", max_length=NOTE_LIMIT, description="what is being done about it; required for a red (I) alert"
    )


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)


class LocalText(_Out):
    """A text in both languages of the application."""

    zh: str = Field(alias="zh-CN")
    en: str


class ThresholdsOut(_Out):
    direction: Literal["above", "below"] = Field(description="'above': higher values are worse")
    blue: float | None
    yellow: float | None
    orange: float | None
    red: float | None


class IndicatorOut(_Out):
    key: str
    domain: Domain
    name: LocalText
    unit: str
    entity_level: Literal["city", "district", "station"] = Field(description="where it is measured")
    aggregation: Literal["mean", "sum", "max", "min"] = Field(description="how entities make the city value")
    cadence_s: float = Field(description="seconds between two readings of one entity")
    decimals: int
    bounds: tuple[float, float] = Field(description="physically possible values; others are rejected")
    higher_is_worse: bool
    classification: Literal["public", "internal", "restricted"]
    department: LocalText = Field(description="the department responsible for it")
    thresholds: ThresholdsOut | None
    standard: str | None = Field(description="the standard the thresholds come from")


class IndicatorList(_Out):
    indicators: list[IndicatorOut]


class EntityLatestOut(_Out):
    entity: str
    name: LocalText | None
    value: float | None
    observed_at: datetime | None
    severity: int = Field(description="0 normal, 1 (IV blue) .. 4 (I red)")
    level: SeverityName


class LatestOut(_Out):
    indicator: str
    name: LocalText
    unit: str
    value: float | None = Field(description="the city-wide value: the entities' latest values aggregated")
    observed_at: datetime | None
    severity: int = Field(description="the highest level of its entities: 0 normal .. 4 (I red)")
    level: SeverityName
    reporting: int = Field(description="how many entities have a value")
    trend: float | None = Field(description="change over the last hour")
    entities: list[EntityLatestOut] | None = Field(
        None, description="per entity, with ?by=entity (all) or ?entity= (that one)"
    )


class LatestList(_Out):
    latest: list[LatestOut]


class ReadingOut(_Out):
    entity: str
    observed_at: datetime
    value: float
    quality: str


class ReadingsPage(_Out):
    indicator: str
    unit: str
    start: datetime
    end: datetime
    readings: list[ReadingOut] = Field(description="oldest first")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class AlertOut(_Out):
    id: int
    indicator: str
    indicator_name: LocalText
    domain: Domain
    entity: str
    entity_name: LocalText | None
    rule: str = Field(description="<indicator>:<rule type>")
    state: AlertState
    severity: int = Field(description="1 (IV blue) .. 4 (I red)")
    level: SeverityName
    peak_severity: int
    value: float | None
    unit: str
    opened_at: datetime
    observed_at: datetime | None
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    department: str | None = Field(description="the department it is assigned to")
    muted: bool = Field(description="raised during a maintenance window")
    explanation: LocalText


class AlertList(_Out):
    alerts: list[AlertOut] = Field(description="the most severe first, then the newest")
    more: bool = Field(description="more alerts match than `limit` allowed")


class AcknowledgeResult(_Out):
    alert: AlertOut
    note: str = Field(description="the note as recorded in the alert's timeline")


class ErrorOut(_Out):
    error: str = Field(description="a short code: bad_request, unauthorized, forbidden, not_found, ...")
    reason: str = Field(description="what was wrong, in plain words")
    parameter: str | None = Field(None, description="the query parameter or body field at fault")
    state: str | None = Field(None, description="on 409: the alert's state now")
    acknowledged_by: str | None = Field(None, description="on 409: who acknowledged the alert first")
