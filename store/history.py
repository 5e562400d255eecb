"""The history read API (docs/history-api contract): one indicator's past as a line, a breakdown by
district or station, sparklines and the value at an hour, for the pages.

Ranges up to 48 hours read readings; longer ones read the hourly or daily rollups
(store/rollups.py), so a 30-day chart reads ~720 rows per series, never a month of readings.
Entities are combined per bucket IN SQL by the indicator's aggregation (sum, mean, max, min of the
entities' means), so a city-wide line comes back as one row per bucket whatever the number of
stations. Everything returned is plain and frozen, safe to memoize on the data version.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Float,
    Integer,
    Select,
    Table,
    func,
    literal_column,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from core.timeutil import floor_time
from store.models import Reading, ReadingDaily, ReadingHourly, Region, Series
from store.queries import IndicatorDefinition, indicator_definitions

Resolution = Literal["raw", "hour", "day"]
RAW_UP_TO = timedelta(hours=48)
HOURLY_UP_TO = timedelta(days=90)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
AGGREGATIONS = {"mean": func.avg, "sum": func.sum, "max": func.max, "min": func.min}


@dataclass(frozen=True)
class Bucket:
    """One point of a history line. `value` is per entity the mean, entities combined by the
    indicator's aggregation; `low` and `high` are the lowest and highest readings, combined the
    same way; `count` is the number of readings behind the point."""

    at: datetime
    value: float
    low: float
    high: float
    count: int


def pick_resolution(start: datetime, end: datetime) -> Resolution:
    """Raw up to 48 hours, hourly up to 90 days, daily beyond: at most a few thousand points."""
    span = end - start
    if span <= RAW_UP_TO:
        return "raw"
    return "hour" if span <= HOURLY_UP_TO else "day"


def indicator_history(
    engine: Engine,
    key: str,
    start: datetime,
    end: datetime,
    *,
    entities: Collection[str] | None = None,
    region: str | None = None,
    resolution: Resolution | None = None,
) -> list[Bucket]:
    """One line for the indicator over [start, end), oldest first: the selected entities (None:
    all; `region`: only the series in that district) combined per bucket.

    Hourly and daily buckets overlapping the range are included whole (the first may start before
    `start`). Raw: one entity gives its readings as they are; several are bucketed by the
    indicator's cadence.
    """
    resolution = resolution or pick_resolution(start, end)
    with engine.connect() as connection:
        definition = indicator_definitions(connection, [key]).get(key)
        if definition is None:
            return []
        chosen = _series(key, entities, region)
        if resolution == "raw":
            return _raw_history(connection, chosen, definition, start, end)
        rollup = _rollup(resolution)
        combine = AGGREGATIONS[definition.aggregation]
        per_series = (
            select(
                rollup.c.bucket.label("at"),
                (rollup.c.total / rollup.c.n.cast(Float)).label("mean"),
                rollup.c.low.label("low"),
                rollup.c.high.label("high"),
                rollup.c.n.label("n"),
            )
            .where(rollup.c.series_id.in_(chosen))
            .where(rollup.c.bucket >= _first_bucket(resolution, start), rollup.c.bucket < end)
            .subquery()
        )
        rows = connection.execute(_combined(per_series, combine, per_series.c.at))
        return [Bucket(at, value, low, high, count) for at, value, low, high, count in rows]


def breakdown(
    engine: Engine,
    key: str,
    start: datetime,
    end: datetime,
    *,
    region: str | None = None,
    per_entity: bool = False,
) -> dict[str, float]:
    """The indicator over [start, end) per district (region None: each district's own series, or
    its stations combined by the indicator's aggregation) or, given a district code, per entity
    inside it; `per_entity` gives every entity city-wide in one query (the map's heat). Each
    series counts with its mean over the range."""
    resolution = pick_resolution(start, end)
    with engine.connect() as connection:
        definition = indicator_definitions(connection, [key]).get(key)
        if definition is None:
            return {}
        chosen = _series(key, None, region)
        if resolution == "raw":
            means = (
                select(Reading.series_id, func.avg(Reading.value).label("mean"))
                .where(Reading.series_id.in_(chosen), Reading.observed_at >= start, Reading.observed_at < end)
                .group_by(Reading.series_id)
            )
        else:
            rollup = _rollup(resolution)
            means = (
                select(
                    rollup.c.series_id,
                    (func.sum(rollup.c.total) / func.sum(rollup.c.n).cast(Float)).label("mean"),
                )
                .where(rollup.c.series_id.in_(chosen))
                .where(rollup.c.bucket >= _first_bucket(resolution, start), rollup.c.bucket < end)
                .group_by(rollup.c.series_id)
            )
        means = means.subquery()
        if per_entity or region is not None:
            query = select(Series.entity, means.c.mean).join(means, means.c.series_id == Series.id)
        else:
            combine = AGGREGATIONS[definition.aggregation]
            query = (
                select(Series.region_code, combine(means.c.mean))
                .join(means, means.c.series_id == Series.id)
                .join(Region, Region.code == Series.region_code)
                .where(Region.level == "district")
                .group_by(Series.region_code)
            )
        return {code: float(value) for code, value in connection.execute(query) if value is not None}


def sparklines(
    engine: Engine, keys: Collection[str], end: datetime, hours: int = 24
) -> dict[str, list[float | None]]:
    """City-wide hourly values of each indicator for the `hours` hours up to `end` (the last one
    holds the instant just before `end`), oldest first, None where an hour has no data."""
    last = floor_time(end - timedelta(microseconds=1), HOUR)
    first = last - (hours - 1) * HOUR
    with engine.connect() as connection:
        found = _city_hours(connection, keys, first, last + HOUR)
    return {key: [found.get(key, {}).get(first + index * HOUR) for index in range(hours)] for key in keys}


def city_values_at(engine: Engine, keys: Collection[str], at: datetime) -> dict[str, float | None]:
    """Each indicator's city-wide value in the hour holding `at` (for "change vs yesterday")."""
    hour = floor_time(at, HOUR)
    with engine.connect() as connection:
        found = _city_hours(connection, keys, hour, hour + HOUR)
    return {key: found.get(key, {}).get(hour) for key in keys}


def _series(key: str, entities: Collection[str] | None, region: str | None) -> Select:
    """The ids of the indicator's chosen series, as a subquery (the rollups are keyed on them)."""
    query = select(Series.id).where(Series.indicator_key == key)
    if entities is not None:
        query = query.where(Series.entity.in_(list(entities)))
    if region is not None:
        query = query.where(Series.region_code == region)
    return query


def _rollup(resolution: Resolution) -> Table:
    return (ReadingHourly if resolution == "hour" else ReadingDaily).__table__


def _first_bucket(resolution: Resolution, start: datetime) -> datetime:
    """The earliest bucket start that still overlaps `start`. A local day is at most 25 hours, so
    days are taken from those starting less than a day before `start` (the one exception, `start`
    in the 25th hour of a DST day, loses that day's bucket)."""
    if resolution == "hour":
        return floor_time(start, HOUR)
    return start - DAY + timedelta(microseconds=1)


def _combined(per_series, combine, at: ColumnElement) -> Select:
    """Per bucket: the entities' means, lows and highs combined, and the readings counted."""
    return (
        select(
            at,
            combine(per_series.c.mean),
            combine(per_series.c.low),
            combine(per_series.c.high),
            func.sum(per_series.c.n),
        )
        .group_by(at)
        .order_by(at)
    )


def _raw_history(
    connection: Connection, chosen: Select, definition: IndicatorDefinition, start: datetime, end: datetime
) -> list[Bucket]:
    in_range = (Reading.series_id.in_(chosen), Reading.observed_at >= start, Reading.observed_at < end)
    ids = connection.scalars(chosen.limit(2)).all()
    if len(ids) == 1:
        rows = connection.execute(
            select(Reading.observed_at, Reading.value).where(*in_range).order_by(Reading.observed_at)
        )
        return [Bucket(at, value, value, value, 1) for at, value in rows]
    slot = _cadence_slot(connection, max(1, round(definition.cadence)))
    per_series = (
        select(
            slot.label("at"),
            func.avg(Reading.value).label("mean"),
            func.min(Reading.value).label("low"),
            func.max(Reading.value).label("high"),
            func.count().label("n"),
        )
        .where(*in_range)
        .group_by(Reading.series_id, slot)
        .subquery()
    )
    combine = AGGREGATIONS[definition.aggregation]
    rows = connection.execute(_combined(per_series, combine, per_series.c.at))
    return [
        Bucket(datetime.fromtimestamp(int(at), UTC), value, low, high, count)
        for at, value, low, high, count in rows
    ]


def _cadence_slot(connection: Connection, cadence: int) -> ColumnElement:
    """The start of the cadence-long slot (aligned on the epoch) holding a reading, in epoch seconds."""
    if connection.dialect.name == "postgresql":
        seconds = func.extract("epoch", Reading.observed_at)
        return (func.floor(seconds / cadence) * cadence).cast(BigInteger)
    return literal_column(f"(unixepoch(readings.observed_at) / {cadence}) * {cadence}", Integer)


def _city_hours(
    connection: Connection, keys: Collection[str], first: datetime, stop: datetime
) -> dict[str, dict[datetime, float]]:
    """Every entity of each indicator combined per hour over [first, stop), one query for all the
    indicators: the four combinations are computed side by side and each indicator keeps its own."""
    definitions = indicator_definitions(connection, keys)
    if not definitions:
        return {}
    hourly = ReadingHourly.__table__
    mean = hourly.c.total / hourly.c.n.cast(Float)
    rows = connection.execute(
        select(
            Series.indicator_key,
            hourly.c.bucket,
            func.avg(mean),
            func.sum(mean),
            func.max(mean),
            func.min(mean),
        )
        .join(hourly, hourly.c.series_id == Series.id)
        .where(Series.indicator_key.in_(list(definitions)))
        .where(hourly.c.bucket >= first, hourly.c.bucket < stop)
        .group_by(Series.indicator_key, hourly.c.bucket)
    )
    column = {"mean": 0, "sum": 1, "max": 2, "min": 3}
    found: dict[str, dict[datetime, float]] = {}
    for key, bucket, *combined in rows:
        found.setdefault(key, {})[bucket] = combined[column[definitions[key].aggregation]]
    return found
