"""The city definition a deployment ships: its regions (boundaries) and monitoring stations.

Adapters read it to know which entities exist; the store copies it into its tables at start-up.
Station codes and region codes share one namespace: a reading names its entity by code alone.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.settings import ConfigError, Names


@dataclass(frozen=True)
class RegionInfo:
    code: str
    name: Names
    level: str
    parent_code: str | None
    center: tuple[float, float]
    geometry: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class StationInfo:
    code: str
    name: Names
    kind: str
    domain: str
    lon: float
    lat: float
    region_code: str


@dataclass(frozen=True)
class City:
    regions: tuple[RegionInfo, ...]
    stations: tuple[StationInfo, ...]

    @property
    def districts(self) -> tuple[RegionInfo, ...]:
        return tuple(r for r in self.regions if r.level == "district")

    def stations_of(self, kind: str) -> tuple[StationInfo, ...]:
        return tuple(s for s in self.stations if s.kind == kind)

    def entity_codes(self) -> set[str]:
        return {r.code for r in self.regions} | {s.code for s in self.stations}


def load_regions(path: Path) -> tuple[RegionInfo, ...]:
    """Regions from a GeoJSON FeatureCollection whose properties name code, names, level, parent."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(path, [f"not a readable GeoJSON file: {exc}"]) from exc
    regions, problems = [], []
    for index, feature in enumerate(data.get("features", [])):
        props = feature.get("properties") or {}
        missing = [k for k in ("code", "name_zh", "name_en", "level", "center") if not props.get(k)]
        if missing:
            problems.append(f"features.{index}.properties: missing {', '.join(missing)}")
            continue
        regions.append(
            RegionInfo(
                code=str(props["code"]),
                name=Names(zh=props["name_zh"], en=props["name_en"]),
                level=props["level"],
                parent_code=props.get("parent_code"),
                center=(float(props["center"][0]), float(props["center"][1])),
                geometry=feature["geometry"],
            )
        )
    if problems:
        raise ConfigError(path, problems)
    return tuple(regions)


def load_stations(path: Path, region_codes: set[str]) -> tuple[StationInfo, ...]:
    """Stations from CSV (code,name_zh,name_en,kind,domain,lon,lat,region_code)."""
    stations, problems = [], []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                station = StationInfo(
                    code=row["code"].strip(),
                    name=Names(zh=row["name_zh"].strip(), en=row["name_en"].strip()),
                    kind=row["kind"].strip(),
                    domain=row["domain"].strip(),
                    lon=float(row["lon"]),
                    lat=float(row["lat"]),
                    region_code=row["region_code"].strip(),
                )
            except (KeyError, TypeError, ValueError) as exc:
                problems.append(f"line {line}: {exc}")
                continue
            if station.region_code not in region_codes:
                problems.append(f"line {line}: region_code {station.region_code!r} is not a region")
                continue
            stations.append(station)
    if problems:
        raise ConfigError(path, problems)
    return tuple(stations)


def load_city(boundaries: Path, stations: Path) -> City:
    regions = load_regions(boundaries)
    city = City(regions, load_stations(stations, {r.code for r in regions}))
    clashes = {r.code for r in regions} & {s.code for s in city.stations}
    if clashes:
        raise ConfigError(stations, [f"station codes clash with region codes: {sorted(clashes)}"])
    return city
