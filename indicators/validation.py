"""Validation: every record either becomes a valid reading or a rejection with a readable reason.

Bad input never stops the good records of the same run, and is never dropped silently: the
pipeline keeps each rejection in quarantine with the field at fault.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from core.records import Record, ValidReading
from core.timeutil import as_utc, utcnow
from indicators.catalog import Catalog

FUTURE_TOLERANCE = timedelta(minutes=5)
RAW_LIMIT = 2000


@dataclass(frozen=True)
class Rejection:
    field: str
    reason: str
    raw: str


class _Invalid(Exception):
    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field, self.reason = field, reason


def parse_time(value: object, zone: ZoneInfo) -> datetime:
    """An aware UTC datetime from a datetime, an ISO-8601 string or epoch seconds."""
    if isinstance(value, datetime):
        return as_utc(value, zone)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return as_utc(datetime.fromtimestamp(value, ZoneInfo("UTC")))
        except (OverflowError, OSError, ValueError):
            raise _Invalid("observed_at", f"epoch seconds out of range: {value!r}") from None
    if isinstance(value, str) and value.strip():
        text = value.strip().replace("Z", "+00:00")
        try:
            return as_utc(datetime.fromisoformat(text), zone)
        except ValueError:
            pass
    raise _Invalid("observed_at", f"unreadable timestamp {str(value)[:60]!r}")


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise _Invalid("value", f"a boolean ({value}) is not a measurement")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise _Invalid("value", f"not a number: {str(value)[:60]!r}") from None
    if not math.isfinite(number):
        raise _Invalid("value", f"not a finite number: {value!r}")
    return number


class Validator:
    """Checks records against the catalog and the city's entities."""

    def __init__(self, catalog: Catalog, entities: set[str], zone: ZoneInfo):
        self.catalog, self.entities, self.zone = catalog, entities, zone

    def _check(self, record: Record, now: datetime) -> ValidReading:
        indicator = self.catalog.get(str(record.indicator)) if record.indicator else None
        if indicator is None:
            raise _Invalid("indicator", f"unknown indicator {str(record.indicator)[:60]!r}")
        entity = str(record.entity) if record.entity is not None else ""
        if entity not in self.entities:
            raise _Invalid("entity", f"unknown station or region {entity[:60]!r}")
        observed_at = parse_time(record.observed_at, self.zone)
        if observed_at > now + FUTURE_TOLERANCE:
            raise _Invalid("observed_at", f"in the future ({observed_at.isoformat()})")
        value = _number(record.value)
        if not indicator.in_bounds(value):
            low, high = indicator.bounds
            raise _Invalid(
                "value", f"{value:g} is outside the physical bounds [{low:g}, {high:g}] of {indicator.key}"
            )
        return ValidReading(indicator.key, entity, observed_at, value, record.quality or "ok")

    def validate(self, records: Iterable[Record]) -> tuple[list[ValidReading], list[Rejection]]:
        now = utcnow()
        accepted: dict[tuple[str, str, datetime], ValidReading] = {}
        rejected: list[Rejection] = []
        for record in records:
            raw = (record.raw or repr(record))[:RAW_LIMIT]
            try:
                reading = self._check(record, now)
            except _Invalid as problem:
                rejected.append(Rejection(problem.field, problem.reason, raw))
                continue
            key = (reading.indicator, reading.entity, reading.observed_at)
            earlier = accepted.get(key)
            if earlier is not None and earlier.value != reading.value:
                rejected.append(
                    Rejection(
                        "value",
                        f"duplicate in the same batch with a different value "
                        f"({earlier.value:g} kept, {reading.value:g} rejected)",
                        raw,
                    )
                )
                continue
            accepted[key] = reading
        return list(accepted.values()), rejected
