"""The shipped demo-city geography (built by scripts/build_demo_city.py) is consistent and real."""

import csv
import json
from pathlib import Path

import pytest
import shapely
from shapely.geometry import Point, shape

REPO_ROOT = Path(__file__).resolve().parents[2]
GEOJSON_PATH = REPO_ROOT / "assets" / "geo" / "wuxi_districts.geojson"
STATIONS_PATH = REPO_ROOT / "config" / "cities" / "wuxi" / "stations.csv"
AIR_SOURCE_PATH = REPO_ROOT / ".." / "shared" / "testdata" / "wuxi_air_stations.csv"

MAX_GEOJSON_BYTES = 300_000
WUXI_BBOX = (119.5, 31.0, 120.7, 32.1)
CITY_CODE = "320200"
DISTRICT_NAMES = {"梁溪区", "锡山区", "惠山区", "滨湖区", "新吴区", "江阴市", "宜兴市"}
STATION_KINDS = {
    "air": "environment",
    "road": "traffic",
    "parking": "traffic",
    "river": "water",
    "waterlogging": "water",
    "substation": "energy",
    "hall": "government",
    "hospital": "health",
    "noise": "environment",
}
STATIONS_HEADER = ["code", "name_zh", "name_en", "kind", "domain", "lon", "lat", "region_code"]


@pytest.fixture(scope="module")
def features() -> list[dict]:
    return json.loads(GEOJSON_PATH.read_text(encoding="utf-8"))["features"]


@pytest.fixture(scope="module")
def districts(features: list[dict]) -> dict:
    return {
        f["properties"]["code"]: shape(f["geometry"])
        for f in features
        if f["properties"]["level"] == "district"
    }


@pytest.fixture(scope="module")
def stations() -> list[dict[str, str]]:
    with STATIONS_PATH.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_geojson_size() -> None:
    assert GEOJSON_PATH.stat().st_size <= MAX_GEOJSON_BYTES


def test_one_city_and_seven_districts(features: list[dict]) -> None:
    props = [f["properties"] for f in features]
    cities = [p for p in props if p["level"] == "city"]
    districts = [p for p in props if p["level"] == "district"]
    assert len(features) == 8
    assert [(c["code"], c["name_zh"], c["name_en"], c["parent_code"]) for c in cities] == [
        (CITY_CODE, "无锡市", "Wuxi", None)
    ]
    assert {d["name_zh"] for d in districts} == DISTRICT_NAMES
    assert all(d["parent_code"] == CITY_CODE for d in districts)


def test_codes_and_names_unique(features: list[dict]) -> None:
    props = [f["properties"] for f in features]
    for key in ("code", "name_zh", "name_en"):
        values = [p[key] for p in props]
        assert all(values), key
        assert len(set(values)) == len(values), key


def test_geometries_valid_and_centers_inside(features: list[dict]) -> None:
    for feature in features:
        geom = shape(feature["geometry"])
        assert geom.is_valid, feature["properties"]["code"]
        assert geom.contains(Point(feature["properties"]["center"])), feature["properties"]["code"]


def test_districts_within_wuxi_bbox(districts: dict) -> None:
    min_lon, min_lat, max_lon, max_lat = WUXI_BBOX
    for code, geom in districts.items():
        lon0, lat0, lon1, lat1 = geom.bounds
        assert min_lon <= lon0 and lon1 <= max_lon, code
        assert min_lat <= lat0 and lat1 <= max_lat, code


def test_districts_tile_the_city(features: list[dict], districts: dict) -> None:
    city = next(shape(f["geometry"]) for f in features if f["properties"]["level"] == "city")
    union = shapely.union_all(list(districts.values()))
    assert union.symmetric_difference(city).area < 1e-3 * city.area


def test_stations_header(stations: list[dict[str, str]]) -> None:
    assert list(stations[0]) == STATIONS_HEADER


def test_station_codes_unique_and_not_adcodes(stations: list[dict[str, str]]) -> None:
    codes = [s["code"] for s in stations]
    assert len(set(codes)) == len(codes)
    assert not [c for c in codes if c.isdigit() and len(c) == 6]


def test_every_kind_present_with_its_domain(stations: list[dict[str, str]]) -> None:
    assert {s["kind"] for s in stations} == set(STATION_KINDS)
    assert all(s["domain"] == STATION_KINDS[s["kind"]] for s in stations)
    assert all(s["name_zh"] and s["name_en"] for s in stations)


def test_stations_inside_their_region(stations: list[dict[str, str]], districts: dict) -> None:
    outside = [
        s["code"]
        for s in stations
        if not districts[s["region_code"]].contains(Point(float(s["lon"]), float(s["lat"])))
    ]
    assert outside == []


def test_every_district_has_a_road_and_a_hall(stations: list[dict[str, str]], districts: dict) -> None:
    for kind in ("road", "hall"):
        assert {s["region_code"] for s in stations if s["kind"] == kind} == set(districts), kind


@pytest.mark.skipif(not AIR_SOURCE_PATH.exists(), reason="shared CNEMC test data not available")
def test_every_source_air_station_present(stations: list[dict[str, str]]) -> None:
    with AIR_SOURCE_PATH.open(encoding="utf-8-sig", newline="") as f:
        source = {r["监测点编码"]: r for r in csv.DictReader(f)}
    shipped = {s["code"]: s for s in stations if s["kind"] == "air"}
    assert set(shipped) == set(source)
    for code, row in source.items():
        assert shipped[code]["name_zh"] == row["监测点名称"]
        assert float(shipped[code]["lon"]) == float(row["经度"])
        assert float(shipped[code]["lat"]) == float(row["纬度"])


@pytest.mark.parametrize(
    "district, names",
    [("江阴市", {"虹桥邮政", "五星公园", "第二实验小学"}), ("宜兴市", {"宜兴市环保局", "宜园"})],
)
def test_county_level_city_air_stations_in_their_city(
    district: str, names: set[str], stations: list[dict[str, str]], features: list[dict]
) -> None:
    code = next(f["properties"]["code"] for f in features if f["properties"]["name_zh"] == district)
    assert {s["region_code"] for s in stations if s["name_zh"] in names} == {code}
