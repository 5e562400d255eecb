"""Turn read-API results into the plain views the layouts draw. No Dash here, no SQL."""

from __future__ import annotations

from datetime import datetime

from core.i18n import t
from core.levels import STALE_COLOUR, level
from core.timeutil import local_text, utcnow
from indicators.catalog import Indicator
from layouts.components import AlertView, KpiView
from store.queries import AlertRow, EntityValue, Latest
from web.runtime import WebRuntime

STALE_FACTOR = 3


def format_value(value: float | None, decimals: int) -> str:
    return "—" if value is None else f"{value:,.{decimals}f}"


def delayed_minutes(indicator: Indicator, observed_at: datetime | None, now: datetime) -> int | None:
    """Minutes of delay when the newest reading is older than a few expected cadences."""
    if observed_at is None:
        return None
    age = (now - observed_at).total_seconds()
    if age <= max(STALE_FACTOR * indicator.cadence, 600):
        return None
    return int(age // 60)


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
        unit=indicator.unit,
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
        stale = value is None or delayed_minutes(indicator, value.observed_at, now) is not None
        colour = STALE_COLOUR if stale else level(value.severity).colour
        shown = format_value(value.value if value else None, indicator.decimals)
        text = f"{region.name.get(lang)}: {shown} {indicator.unit}"
        styled[region.code] = {
            "colour": colour,
            "severity": 0 if stale else value.severity,
            "text": text.strip(),
        }
    return {"districts": styled, "stale": STALE_COLOUR}


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
        stale = value is None or delayed_minutes(indicator, value.observed_at, now) is not None
        severity = 0 if stale else value.severity
        text = (
            f"{station.name.get(lang)} · {indicator.name.get(lang)}: "
            f"{format_value(value.value if value else None, indicator.decimals)} {indicator.unit}"
        )
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [station.lon, station.lat]},
                "properties": {
                    "code": station.code,
                    "kind": station.kind,
                    "severity": severity,
                    "colour": STALE_COLOUR if stale else level(severity).colour,
                    "text": text.strip(),
                },
            }
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
