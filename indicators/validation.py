"""Validation: every record either becomes a valid reading or a rejection with a readable reason.

Bad input never stops the good records of the same run, and is never dropped silently: the
pipeline keeps each rejection in quarantine with the field at fault.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from core.records import Record, ValidReading
from core.timeutil import as_utc, utcnow
from indicators.catalog import Catalog

FUTURE_TOLERANCE = timedelta(minutes=5)
RAW_LIMIT = 2000
TIME_CACHE = 50_000


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
        """One batch: its valid readings and its rejections."""
        return self.batch().check(records)

    def batch(self) -> BatchCheck:
        """The check of one batch fed in parts (a large file is stored a chunk at a time)."""
        return BatchCheck(self, utcnow())

    def _quick(self, now: datetime) -> Callable[[Record], ValidReading | None]:
        """The check of an ordinary record (text names, a datetime or text time, a number) with
        what a batch repeats looked up once: indicators by name, times by value (a batch has
        hundreds of thousands of records but few distinct times). None whenever anything is
        unusual or wrong: `_check` then decides, with its reasons, so the verdicts are the same.
        """
        indicators = {indicator.key: indicator for indicator in self.catalog}
        entities, zone, latest, isfinite = self.entities, self.zone, now + FUTURE_TOLERANCE, math.isfinite
        times: dict[object, datetime | None] = {}

        def quick(record: Record) -> ValidReading | None:
            indicator = indicators.get(record.indicator) if type(record.indicator) is str else None
            entity = record.entity
            if indicator is None or type(entity) is not str or entity not in entities:
                return None
            stamp = record.observed_at
            kind = type(stamp)
            # Only times equal to each other just when they are the same instant are looked up:
            # text, and exact datetimes at fold 0 (wall-clock times that differ only in `fold`
            # compare equal, yet are an hour apart when a DST change repeats them).
            cacheable = kind is str or (kind is datetime and not stamp.fold)
            observed_at = times.get(stamp, False) if cacheable else None
            if observed_at is False:
                try:
                    observed_at = parse_time(stamp, zone)
                except _Invalid:
                    observed_at = None
                if observed_at is not None and observed_at > latest:
                    observed_at = None
                if len(times) >= TIME_CACHE:  # times that hardly repeat: keep the cache small
                    times.clear()
                times[stamp] = observed_at
            value = record.value
            if observed_at is None or type(value) not in _NUMBERS:
                return None
            try:
                number = float(value)
            except (ValueError, OverflowError):
                return None
            low, high = indicator.bounds
            if not low <= number <= high or not isfinite(number):
                return None
            return ValidReading(indicator.key, entity, observed_at, number, record.quality or "ok")

        return quick


class BatchCheck:
    """Validation of one fetched batch, in as many parts as the pipeline cuts it into.

    A record repeating an earlier one of the same batch (same indicator, entity and time) with
    another value is rejected, the first kept, even when the two fall in different parts; one
    with the same value is accepted again (storing it twice changes nothing).
    """

    def __init__(self, validator: Validator, now: datetime):
        self.full, self.now = validator._check, now
        self.quick = validator._quick(now)
        self.kept: dict[tuple[str, str, datetime], float] = {}

    def check(self, records: Iterable[Record]) -> tuple[list[ValidReading], list[Rejection]]:
        """The valid readings of `records` (one per indicator, entity and time) and the rejections."""
        quick, full, now, kept = self.quick, self.full, self.now, self.kept
        accepted: dict[tuple[str, str, datetime], ValidReading] = {}
        rejected: list[Rejection] = []
        for record in records:
            try:
                reading = quick(record) or full(record, now)
            except _Invalid as problem:
                rejected.append(Rejection(problem.field, problem.reason, _raw(record)))
                continue
            key = (reading.indicator, reading.entity, reading.observed_at)
            earlier = kept.get(key)
            if earlier is not None and earlier != reading.value:
                rejected.append(
                    Rejection(
                        "value",
                        f"duplicate in the same batch with a different value "
                        f"({earlier:g} kept, {reading.value:g} rejected)",
                        _raw(record),
                    )
                )
                continue
            kept[key] = reading.value
            accepted[key] = reading
        return list(accepted.values()), rejected


_NUMBERS = frozenset({float, int, str})


def _raw(record: Record) -> str:
    """The record as the source gave it, for quarantine (built only for a rejected record)."""
    return (record.raw or repr(record))[:RAW_LIMIT]
