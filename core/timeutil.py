"""Time: stored in UTC, shown in the city's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def micros_since_epoch(at: datetime) -> int:
    """An aware datetime as whole microseconds since the Unix epoch (exact: the rules' columns
    compare and subtract these as the datetimes they stand for)."""
    return (at - EPOCH) // MICROSECOND


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime, naive_zone: ZoneInfo | None = None) -> datetime:
    """An aware UTC datetime; a naive one is read in `naive_zone` (the city's) or else as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=naive_zone or UTC)
    return value.astimezone(UTC)


def floor_time(value: datetime, step: timedelta) -> datetime:
    """The start of the `step`-long bucket that holds `value` (buckets aligned on the epoch)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((as_utc(value) - epoch) // step) * step


def local_text(value: datetime | None, zone: ZoneInfo, fmt: str = "%m-%d %H:%M") -> str:
    """A UTC instant as the city's wall-clock time, for display."""
    if value is None:
        return "—"
    return as_utc(value).astimezone(zone).strftime(fmt)
