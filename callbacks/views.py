"""Turn read-API results into the plain views the layouts draw. No Dash here, no SQL."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from core.city import StationInfo
from core.freshness import FAILED_RUNS, late_after, lateness
from core.i18n import t
from core.levels import LEVELS, STALE_COLOUR, level
from core.timeutil import local_text, utcnow
from indicators.catalog import Indicator
from layouts.components import AlertView, KpiView, format_value
from layouts.screen import FreshnessView, SourceStatus
from store.queries import AlertRow, EntityValue, Latest, SourceHealth
from store.state import data_version
from web.runtime import WebRuntime


def live_key(engine: Engine) -> list[int]:
    """What a page's memo and its "is the page current" check key on: the data version AND the
    minute. During a source outage no data arrives, so the version stands still, yet "delayed N
    min" and the grey of stale figures must keep advancing."""
    return [data_version(engine), int(time.time() // 60)]


def delayed_minutes(indicator: Indicator, observed_at: datetime | None, now: datetime) -> int | None:
    """Minutes of delay when the newest reading is older than a few expected cadences."""
    if observed_at is None:
        return None
    age = (now - observed_at).total_seconds()
    if age <= late_after(indicator.cadence):
        return None
    return int(age // 60)


def query_values(raw: object) -> list[str]:
    """A filter's values from the address (`a,b` or repeated) or from a checklist or dropdown."""
    items = raw if isinstance(raw, list | tuple) else [raw] if raw is not None else []
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def is_stale(indicator: Indicator, value: EntityValue | None, now: datetime) -> bool:
    """No value to show, or one too old to show as current: drawn grey, never in a level colour."""
    if value is None or value.value is None:
        return True
    return delayed_minutes(indicator, value.observed_at, now) is not None


def trend_direction(latest: Latest, decimals: int) -> int:
    if latest.trend is None or latest.value is None:
        return 0
    tolerance = max(10**-decimals, abs(latest.value) * 0.01)
    return 0 if abs(latest.trend) < tolerance else (1 if latest.trend > 0 else -1)


def kpi_view(runtime: WebRuntime, latest: Latest, lang: str, now: datetime) -> KpiView:
    """A card for one indicator; with no reading yet every part shows as missing ("—")."""
    indicator = runtime.catalog[latest.indicator]
    return KpiView(
        key=indicator.key,
        name=indicator.name.get(lang),
        unit=indicator.unit_in(lang),
        value_text=format_value(latest.value, indicator.decimals),
        severity=latest.severity,
        trend=trend_direction(latest, indicator.decimals),
        time_text=local_text(latest.observed_at, runtime.settings.tz, "%H:%M"),
        delayed_minutes=delayed_minutes(indicator, latest.observed_at, now),
    )


def district_hideout(runtime: WebRuntime, key: str, values: dict[str, EntityValue], lang: str) -> dict:
    """What the map's style function needs per district: colour, level, and a tooltip text."""
    indicator = runtime.catalog[key]
    now = utcnow()
    styled = {}
    for region in runtime.city.districts:
        value = values.get(region.code)
        stale = is_stale(indicator, value, now)
        colour = STALE_COLOUR if stale else level(value.severity).colour
        shown = format_value(value.value if value else None, indicator.decimals)
        text = f"{region.name.get(lang)}: {shown} {indicator.unit_in(lang)}"
        styled[region.code] = {
            "colour": colour,
            "severity": 0 if stale else value.severity,
            "text": text.strip(),
        }
    return {"districts": styled, "stale": STALE_COLOUR}


def station_feature(station: StationInfo, severity: int, colour: str, text: str) -> dict:
    """A station as a GeoJSON point with what the map's marker functions read (citybrain.js)."""
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [station.lon, station.lat]},
        "properties": {
            "code": station.code,
            "kind": station.kind,
            "severity": severity,
            "colour": colour,
            "text": text.strip(),
        },
    }


def station_features(runtime: WebRuntime, values: dict[str, dict[str, EntityValue]], lang: str) -> dict:
    """Stations as GeoJSON points coloured by the level of the indicator that represents their kind."""
    now = utcnow()
    features = []
    mapping = runtime.settings.screen.stations_indicator
    for station in runtime.city.stations:
        key = mapping.get(station.kind)
        if key is None or key not in runtime.catalog:
            continue
        indicator = runtime.catalog[key]
        value = values.get(key, {}).get(station.code)
        stale = is_stale(indicator, value, now)
        severity = 0 if stale else value.severity
        text = (
            f"{station.name.get(lang)} · {indicator.name.get(lang)}: "
            f"{format_value(value.value if value else None, indicator.decimals)} {indicator.unit_in(lang)}"
        )
        features.append(
            station_feature(station, severity, STALE_COLOUR if stale else level(severity).colour, text)
        )
    return {"type": "FeatureCollection", "features": features}


def alert_views(runtime: WebRuntime, rows: list[AlertRow], lang: str) -> list[AlertView]:
    return [
        AlertView(
            id=row.id,
            severity=row.severity,
            state=row.state,
            explanation=row.explanation_zh if lang == "zh-CN" else row.explanation_en,
            since_text=t("alert.since", lang, time=local_text(row.opened_at, runtime.settings.tz)),
        )
        for row in rows
    ]


def legend_items(indicator: Indicator, lang: str) -> list[tuple[str, str]]:
    """(colour, label) per level with the value that enters it, then the colour of missing data."""
    thresholds = indicator.thresholds
    if thresholds is None:
        items = [(lvl.colour, t(lvl.short_key, lang)) for lvl in LEVELS]
    else:
        above = thresholds.direction == "above"
        enters = "≥" if above else "≤"

        def shown(value: float) -> str:
            return format_value(value, indicator.decimals)

        limits = thresholds.limits()
        normal = LEVELS[0]
        items = [
            (normal.colour, f"{t(normal.short_key, lang)} {'<' if above else '>'} {shown(limits[0][1])}")
        ]
        items += [
            (level(s).colour, f"{t(level(s).short_key, lang)} {enters} {shown(limit)}") for s, limit in limits
        ]
    return items + [(STALE_COLOUR, t("screen.legend.stale", lang))]


def source_status(health: SourceHealth, now: datetime, zone: ZoneInfo, lang: str) -> SourceStatus:
    """Live, down (last run failed, or silent for several intervals) or waiting for its first reading."""
    newest = health.newest_observed_at
    age = None if newest is None else (now - newest).total_seconds()
    silent = None if age is None else int(age // 60)
    late = age is not None and lateness(age, health.expected_s) != "fresh"
    if health.last_status in FAILED_RUNS:
        text = t(
            f"screen.source.{health.last_status}",
            lang,
            time=local_text(health.last_started_at, zone, "%H:%M"),
        )
        if late:
            text += " · " + t("screen.source.silent", lang, minutes=silent)
        return SourceStatus(health.id, "down", text)
    if late:
        return SourceStatus(health.id, "down", t("screen.source.silent", lang, minutes=silent))
    if newest is None:
        return SourceStatus(health.id, "waiting", t("screen.source.waiting", lang))
    return SourceStatus(
        health.id, "live", t("screen.source.live", lang, time=local_text(newest, zone, "%H:%M"))
    )


def freshness_view(healths: list[SourceHealth], now: datetime, zone: ZoneInfo, lang: str) -> FreshnessView:
    """The wall's one-line data freshness: how many sources are down, else how old the data is."""
    enabled = [h for h in healths if h.enabled]
    if not enabled:
        return FreshnessView("none", t("screen.freshness.none", lang))
    statuses = tuple(source_status(h, now, zone, lang) for h in enabled)
    states = [s.state for s in statuses]
    if "down" in states:
        text = t("screen.freshness.down", lang, down=states.count("down"), count=len(states))
        return FreshnessView("down", text, statuses)
    if "waiting" in states:
        text = t("screen.freshness.waiting", lang, waiting=states.count("waiting"), count=len(states))
        return FreshnessView("waiting", text, statuses)
    oldest = min(h.newest_observed_at for h in enabled if h.newest_observed_at is not None)
    text = t("screen.freshness.live", lang, count=len(states), time=local_text(oldest, zone, "%H:%M"))
    return FreshnessView("live", text, statuses)
