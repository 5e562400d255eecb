"""/map's views: read-API results turned into what layouts/map_page draws. No Dash, no SQL.

Everything placed on the map needs a point: a station has its own; a district has the centre its
boundary file declares. A city-wide series has no place, so its alerts are counted, not drawn.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import datetime

from callbacks.views import delayed_minutes
from core.city import City, RegionInfo
from core.density import Grid, Place, cells_above, kernel_mass
from core.i18n import t
from core.levels import level
from indicators.catalog import DOMAINS, Catalog
from layouts.components import format_value
from layouts.map_page import (
    AlertLayerView,
    Choice,
    ChoiceGroup,
    DistrictPanelView,
    HeatView,
    StationLayerView,
    VitalGroup,
    VitalSign,
)
from store.queries import AlertRow, EntityValue

MAPPABLE_LEVELS = ("district", "station")
HEAT_FLOOR = 0.04  # cells under this share of the densest cell are not drawn
ALERT_LINES = 4  # explanations in one alert marker's tooltip


def domain_label(domain: str, lang: str) -> str:
    return t(f"domain.{domain}", lang) if domain in DOMAINS else domain


def _domain_order(domain: str) -> int:
    return DOMAINS.index(domain) if domain in DOMAINS else len(DOMAINS)


def mappable_keys(catalog: Catalog, classes: Collection[str]) -> list[str]:
    """Indicators the clearance may see that have a value per district (their own, or their stations')."""
    return [i.key for i in catalog.cleared(classes) if i.level in MAPPABLE_LEVELS]


def indicator_choices(catalog: Catalog, keys: Collection[str], lang: str) -> tuple[ChoiceGroup, ...]:
    grouped: dict[str, list[Choice]] = defaultdict(list)
    for indicator in catalog:
        if indicator.key in keys:
            grouped[indicator.domain].append(Choice(indicator.key, indicator.name.get(lang)))
    return tuple(
        ChoiceGroup(domain_label(domain, lang), tuple(choices))
        for domain, choices in sorted(grouped.items(), key=lambda item: _domain_order(item[0]))
    )


def pick_indicator(requested: str | None, keys: list[str], preferred: str) -> str | None:
    """The indicator the address asks for if the requester may map it, else the deployment's
    choropleth, else the first one it may map."""
    for key in (requested, preferred):
        if key in keys:
            return key
    return keys[0] if keys else None


def district_choices(city: City, lang: str) -> tuple[Choice, ...]:
    return tuple(Choice(r.code, r.name.get(lang)) for r in city.districts)


def places(city: City) -> dict[str, tuple[float, float]]:
    """(lon, lat) of every entity that has a point on the map: stations and districts."""
    located = {s.code: (s.lon, s.lat) for s in city.stations}
    located.update({r.code: r.center for r in city.districts})
    return located


def station_layers(
    city: City, features: dict, kinds: Collection[str], cluster_above: int, lang: str
) -> tuple[StationLayerView, ...]:
    """One overlay per domain with stations of these kinds; a domain with many stations clusters."""
    domain_of = {s.code: s.domain for s in city.stations}
    grouped: dict[str, list[dict]] = defaultdict(list)
    for feature in features["features"]:
        if feature["properties"]["kind"] in kinds:
            grouped[domain_of[feature["properties"]["code"]]].append(feature)
    return tuple(
        StationLayerView(
            domain=domain,
            name=t("map.layer.stations", lang, domain=domain_label(domain, lang)),
            features={"type": "FeatureCollection", "features": members},
            cluster=len(members) > cluster_above,
        )
        for domain, members in sorted(grouped.items(), key=lambda item: _domain_order(item[0]))
    )


def alert_layer(
    rows: list[AlertRow], located: Mapping[str, tuple[float, float]], lang: str
) -> AlertLayerView:
    """One marker per place with open alerts, at its most severe level; the tooltip lists them."""
    by_entity: dict[str, list[AlertRow]] = defaultdict(list)
    unplaced = 0
    for row in rows:
        if row.entity in located:
            by_entity[row.entity].append(row)
        else:
            unplaced += 1
    features = []
    for entity, group in by_entity.items():
        group.sort(key=lambda r: (-r.severity, r.opened_at))
        lines = [r.explanation_zh if lang == "zh-CN" else r.explanation_en for r in group[:ALERT_LINES]]
        if len(group) > ALERT_LINES:
            lines.append(t("map.alerts.more", lang, count=len(group) - ALERT_LINES))
        top = level(group[0].severity)
        lon, lat = located[entity]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {
                    "entity": entity,
                    "severity": top.severity,
                    "colour": top.colour,
                    "roman": top.roman,
                    "count": len(group),
                    "text": "\n".join(lines),
                },
            }
        )
    return AlertLayerView({"type": "FeatureCollection", "features": features}, unplaced)


def heat_view(
    name: str,
    unit: str,
    by_station: bool,
    values: Mapping[str, float],
    located: Mapping[str, tuple[float, float]],
    grid: Grid,
    bandwidth_km: float,
    lang: str,
) -> HeatView:
    """The grid cells a kernel density of these per-entity values fills, shaded by their share of
    the densest cell; the legend's peak is in the indicator's unit per km². A cell travels as its
    centre (the browser draws the square from the grid's cell size): a fifth of a polygon's bytes."""
    spread = [
        Place(located[entity][0], located[entity][1], value)
        for entity, value in values.items()
        if entity in located and value > 0
    ]
    mass = kernel_mass(grid, spread, bandwidth_km)
    peak = float(mass.max()) if mass.size else 0.0
    cells = cells_above(grid, mass, peak * HEAT_FLOOR) if peak > 0 else []
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [round((w + e) / 2, 5), round((s + n) / 2, 5)]},
            "properties": {"share": round(cell / peak, 3)},
        }
        for (w, s, e, n), cell in cells
    ]
    what = "map.heat.what_station" if by_station else "map.heat.what_district"
    return HeatView(
        name=name,
        what=t(what, lang, indicator=name, unit=unit, km=f"{bandwidth_km:g}"),
        peak_text=t("map.heat.peak", lang, value=format_value(peak / grid.cell_area_km2, 2), unit=unit),
        features={"type": "FeatureCollection", "features": features},
        cell=(grid.cell_lon, grid.cell_lat),
    )


def panel_view(
    catalog: Catalog, district: RegionInfo, values: Mapping[str, EntityValue], lang: str, now: datetime
) -> DistrictPanelView:
    """Every indicator with a value in the district, by domain, in catalog order."""
    grouped: dict[str, list[VitalSign]] = defaultdict(list)
    for indicator in catalog:
        value = values.get(indicator.key)
        if value is None or value.value is None:
            continue
        delayed = delayed_minutes(indicator, value.observed_at, now)
        grouped[indicator.domain].append(
            VitalSign(
                key=indicator.key,
                name=indicator.name.get(lang),
                value_text=format_value(value.value, indicator.decimals),
                unit=indicator.unit_in(lang),
                severity=value.severity,
                delayed_text=None if delayed is None else t("screen.delayed", lang, minutes=delayed),
                href=f"/indicators/{indicator.key}?region={district.code}",
            )
        )
    return DistrictPanelView(
        code=district.code,
        name=district.name.get(lang),
        groups=tuple(
            VitalGroup(domain_label(domain, lang), tuple(signs))
            for domain, signs in sorted(grouped.items(), key=lambda item: _domain_order(item[0]))
        ),
    )
