"""The detail page's address: what `/indicators/<key>?range=7d&region=320205&entity=...` means.

The query holds the whole view, so a copied link reproduces it. Parsing is forgiving (whatever
does not fit the indicator is dropped, so a stale or hand-edited link still opens something
sensible) and writing is canonical (one address per view, the key the cached views are found by).
A custom window is the city's wall clock to the minute, as the two date-time inputs show it.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, unquote, urlencode
from zoneinfo import ZoneInfo

from core.city import StationInfo
from core.timeutil import as_utc, floor_time
from indicators.catalog import Indicator
from layouts.indicator_detail import CUSTOM, INPUT_FORMAT, RANGES
from store.history import RAW_UP_TO

PREFIX = "/indicators/"
DEFAULT_RANGE = "24h"
SPANS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
MAX_CUSTOM_DAYS = 366


@dataclass(frozen=True)
class DetailState:
    """What the address says: a range (or a custom window on the city's wall clock, to the
    minute), and optionally a district or a station. Always valid: `parse_state` drops the rest."""

    range: str = DEFAULT_RANGE
    start: datetime | None = None
    end: datetime | None = None
    region: str | None = None
    entity: str | None = None

    def query(self) -> dict[str, str]:
        params = {"range": self.range}
        if self.range == CUSTOM and self.start and self.end:
            params |= {"start": self.start.strftime(INPUT_FORMAT), "end": self.end.strftime(INPUT_FORMAT)}
        if self.region:
            params["region"] = self.region
        if self.entity:
            params["entity"] = self.entity
        return params

    def search(self) -> str:
        return "?" + urlencode(self.query(), safe=":")


@dataclass(frozen=True)
class Window:
    """The shown period, aware UTC, end excluded."""

    start: datetime
    end: datetime


def _text(value: object) -> str | None:
    """A query value as Dash hands it over (a repeated parameter comes as a list: the first wins)."""
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) and value else None


def parse_wall_clock(value: object) -> datetime | None:
    """A datetime-local value (`2025-01-05T08:00`) as a naive wall-clock time to the minute."""
    text = _text(value)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=None, second=0, microsecond=0)


def custom_window_error(start: datetime | None, end: datetime | None) -> str | None:
    """The message key saying why a custom window cannot be shown, or None when it can."""
    if start is None or end is None:
        return "detail.custom.incomplete"
    if start >= end:
        return "detail.custom.order"
    if end - start > timedelta(days=MAX_CUSTOM_DAYS):
        return "detail.custom.too_long"
    return None


def parse_state(
    query: Mapping[str, object],
    indicator: Indicator,
    stations: Mapping[str, StationInfo],
    districts: Container[str],
) -> DetailState:
    """A valid state from an address's query: what does not fit this indicator is left out, so a
    hand-edited or stale link still opens something sensible. `stations` (by code) and `districts`
    are the city's, looked up once per process by the caller, not per request."""
    range_name = _text(query.get("range")) or DEFAULT_RANGE
    start = end = None
    if range_name == CUSTOM:
        start, end = parse_wall_clock(query.get("start")), parse_wall_clock(query.get("end"))
        if custom_window_error(start, end):
            range_name, start, end = DEFAULT_RANGE, None, None
    elif range_name not in RANGES:
        range_name = DEFAULT_RANGE
    region = entity = None
    if indicator.level == "station":
        station = stations.get(_text(query.get("entity")) or "")
        if station is not None and station.kind in indicator.station_kinds:
            entity, region = station.code, station.region_code
    if indicator.level != "city" and region is None:
        wanted = _text(query.get("region"))
        region = wanted if wanted in districts else None
    return DetailState(range_name, start, end, region, entity)


def resolve_window(state: DetailState, now: datetime, zone: ZoneInfo) -> Window:
    """A custom window as given; a relative one ends at the next whole minute (hour for ranges read
    from the hourly rollup), so the window, and the cached view with it, holds for that long."""
    if state.range == CUSTOM and state.start and state.end:
        return Window(as_utc(state.start, zone), as_utc(state.end, zone))
    span = SPANS[state.range]
    grain = timedelta(minutes=1) if span <= RAW_UP_TO else timedelta(hours=1)
    end = floor_time(now - timedelta(microseconds=1), grain) + grain
    return Window(end - span, end)


def last_year_window(window: Window, zone: ZoneInfo) -> Window:
    """The same wall-clock period one calendar year earlier (29 February falls back to the 28th)."""

    def year_before(at: datetime) -> datetime:
        local = as_utc(at).astimezone(zone).replace(tzinfo=None)
        day = min(local.day, 28) if (local.month, local.day) == (2, 29) else local.day
        return as_utc(local.replace(year=local.year - 1, day=day), zone)

    return Window(year_before(window.start), year_before(window.end))


def key_of(path: str | None) -> str:
    return unquote((path or "").removeprefix(PREFIX)).strip("/")


def query_of(search: str | None) -> dict[str, str]:
    return dict(parse_qsl((search or "").lstrip("?")))
