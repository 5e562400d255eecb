"""The csv and excel adapters against real files: encodings, layouts, names, times, folders, a URL.

Every file is written by the test (CSV in UTF-8, UTF-8 with BOM, GBK, GB18030 and Big5; .xlsx
with openpyxl); the URL is served by a local http.server thread. The store is not involved:
tests/integration/test_tabular_ingest.py runs the pipeline end to end.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.city import load_city
from core.timeutil import as_utc
from datasources.base import AdapterContext, Batch
from datasources.registry import build, option_problems
from datasources.tabular import guess_delimiter, read_watermark
from datasources.tabular_mapping import Lookup
from datasources.tabular_text import decode_text, detect_encoding, read_number, read_timestamp
from indicators.catalog import load_catalog
from indicators.validation import Validator

REPO = Path(__file__).resolve().parents[2]
ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2024, 3, 2, tzinfo=UTC)
WIDE = {
    "observed_at_column": "监测时间",
    "entity_column": "站点",
    "values": {"AQI": "env.aqi", "PM2.5": "env.pm25"},
}
LONG = {
    "observed_at_column": "time",
    "entity_column": "station",
    "indicator_column": "indicator",
    "value_column": "value",
}


@pytest.fixture(scope="module")
def context() -> AdapterContext:
    city = load_city(REPO / "assets/geo/wuxi_districts.geojson", REPO / "config/cities/wuxi/stations.csv")
    return AdapterContext(city, load_catalog(), ZONE, "dept-files")


@pytest.fixture
def validator(context) -> Validator:
    return Validator(context.catalog, context.city.entity_codes(), ZONE)


def fetch(context: AdapterContext, kind: str, since: str | None = None, **options: object) -> Batch:
    return build(kind, options, context).fetch(since, NOW)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def local(*args: int) -> datetime:
    """A wall-clock time in Wuxi as UTC."""
    return datetime(*args, tzinfo=ZONE).astimezone(UTC)


def readings(batch: Batch) -> list[tuple]:
    return [(r.indicator, r.entity, r.observed_at, r.value) for r in batch.records]


# --- encodings and layouts ----------------------------------------------------------------------


def test_long_layout_in_utf8_with_city_codes(tmp_path, context):
    path = write(
        tmp_path / "air.csv",
        "time,station,indicator,value\n"
        "2024-03-01 08:00,1188A,env.aqi,85\n"
        "2024-03-01T08:00:00+08:00,1189A,env.pm25,41.5\n"
        "2024-03-01T00:00:00Z,320211,env.aqi,90\n",
    )
    batch = fetch(context, "csv", path=str(path), **LONG)
    assert readings(batch) == [
        ("env.aqi", "1188A", local(2024, 3, 1, 8), 85.0),
        ("env.pm25", "1189A", local(2024, 3, 1, 8), 41.5),
        ("env.aqi", "320211", local(2024, 3, 1, 8), 90.0),
    ]
    assert batch.records[0].raw == "air.csv:2: 2024-03-01 08:00,1188A,env.aqi,85"


def test_utf8_bom_with_chinese_headers_station_names_and_indicator_names(tmp_path, context):
    path = write(
        tmp_path / "环境.csv",
        "时间,站点名称,指标,数值\n"
        "2024/03/01 08:00,雪浪,AQI,85\n"
        "2024/03/01 08:00,Huangxiang,PM2.5浓度,41\n"
        "2024/03/01 08:00,滨湖区,空气质量指数,77\n"
        "2024/03/01 08:00,  xuelang ,pm25,30\n",
        "utf-8-sig",
    )
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    batch = fetch(
        context,
        "csv",
        path=str(path),
        observed_at_column="时间",
        entity_column="站点名称",
        indicator_column="指标",
        value_column="数值",
        indicator_map={"AQI": "env.aqi", "PM25": "env.pm25"},
    )
    at = local(2024, 3, 1, 8)
    assert readings(batch) == [
        ("env.aqi", "1188A", at, 85.0),
        ("env.pm25", "1189A", at, 41.0),
        ("env.aqi", "320211", at, 77.0),
        ("env.pm25", "1188A", at, 30.0),
    ]


def test_gbk_wide_file_one_column_per_indicator(tmp_path, context):
    text = '监测时间,站点,AQI,PM2.5\n2024-03-01 08:00,雪浪,85,40\n2024-03-01 08:00,黄巷,12,"1,234.5"\n'
    path = write(tmp_path / "gbk.csv", text, "gbk")
    assert detect_encoding(path.read_bytes()) == "gb18030"
    batch = fetch(context, "csv", path=str(path), **WIDE)
    at = local(2024, 3, 1, 8)
    assert readings(batch) == [
        ("env.aqi", "1188A", at, 85.0),
        ("env.pm25", "1188A", at, 40.0),
        ("env.aqi", "1189A", at, 12.0),
        ("env.pm25", "1189A", at, 1234.5),
    ]
    assert batch.records[2].raw == 'gbk.csv:3 [AQI]: 2024-03-01 08:00,黄巷,12,"1,234.5"'


def test_gb18030_characters_outside_gbk(tmp_path, context):
    name = "𠮷田站"  # U+20BB7: only GB18030 encodes it
    with pytest.raises(UnicodeEncodeError):
        name.encode("gbk")
    path = write(
        tmp_path / "gb18030.csv", f"监测时间,站点,AQI,PM2.5\n2024-03-01 09:00,{name},60,30\n", "gb18030"
    )
    batch = fetch(context, "csv", path=str(path), entity_map={name: "1190A"}, **WIDE)
    assert {(r.entity, r.value) for r in batch.records} == {("1190A", 60.0), ("1190A", 30.0)}
    # a file declared GBK is read as GB18030, its superset, so the rare character still decodes
    declared = fetch(context, "csv", path=str(path), encoding="gbk", entity_map={name: "1190A"}, **WIDE)
    assert readings(declared) == readings(batch)


def test_explicit_encoding_overrides_detection(tmp_path, context):
    path = write(tmp_path / "big5.csv", "監測時間,站點,AQI,PM2.5\n2024-03-01 08:00,雪浪,85,40\n", "big5")
    options = dict(WIDE, observed_at_column="監測時間", entity_column="站點")
    batch = fetch(context, "csv", path=str(path), encoding="big5", **options)
    assert {r.entity for r in batch.records} == {"1188A"}
    with pytest.raises(ValueError, match=r"big5\.csv: not valid utf-8 text"):
        fetch(context, "csv", path=str(path), encoding="utf-8", **options)


def test_utf16_with_bom_and_tabs_as_excel_saves_unicode_text(tmp_path, context):
    path = write(
        tmp_path / "unicode.txt", "监测时间\t站点\tAQI\tPM2.5\n2024-03-01 08:00\t雪浪\t85\t40\n", "utf-16"
    )
    batch = fetch(context, "csv", path=str(path), **WIDE)
    assert [r.value for r in batch.records] == [85.0, 40.0]


def test_wide_file_one_column_per_station_with_missing_markers(tmp_path, context):
    path = write(
        tmp_path / "pm25.csv",
        "时间,雪浪,黄巷,Caozhang\n2024-03-01 08:00,40,—,33\n2024-03-01 09:00,42,,35\n",
    )
    batch = fetch(
        context,
        "csv",
        path=str(path),
        observed_at_column="时间",
        indicator="PM2.5浓度",
        entities=["雪浪", "黄巷", "Caozhang"],
        missing=["—"],
    )
    assert readings(batch) == [
        ("env.pm25", "1188A", local(2024, 3, 1, 8), 40.0),
        ("env.pm25", "1190A", local(2024, 3, 1, 8), 33.0),
        ("env.pm25", "1188A", local(2024, 3, 1, 9), 42.0),
        ("env.pm25", "1190A", local(2024, 3, 1, 9), 35.0),
    ]


def test_constant_entity_and_indicator(tmp_path, context):
    path = write(tmp_path / "rv01.csv", "日期;水位\n2024年3月1日 8时;3.12\n2024年3月1日 9时;3.15\n")
    batch = fetch(
        context,
        "csv",
        path=str(path),
        observed_at_column="日期",
        entity="无锡(大)站(古运河)",
        indicator="water.river_level",
        value_column="水位",
    )
    assert readings(batch) == [
        ("water.river_level", "RV01", local(2024, 3, 1, 8), 3.12),
        ("water.river_level", "RV01", local(2024, 3, 1, 9), 3.15),
    ]


# --- times ----------------------------------------------------------------------------------------


def test_time_formats_and_zones(tmp_path, context):
    path = write(
        tmp_path / "times.csv",
        "time,station,indicator,value\n"
        "01.03.2024 08:00,1188A,env.aqi,1\n"
        "2024年3月1日 8时30分,1188A,env.aqi,2\n"
        "2024/3/1 24:00,1188A,env.aqi,3\n"
        "２０２４／０３／０１　１０：００,1188A,env.aqi,4\n"
        "2024-03-01T08:00:00+08:00,1188A,env.aqi,5\n",
    )
    batch = fetch(context, "csv", path=str(path), observed_at_format="%d.%m.%Y %H:%M", **LONG)
    assert [r.observed_at for r in batch.records] == [
        local(2024, 3, 1, 8),
        local(2024, 3, 1, 8, 30),
        local(2024, 3, 2, 0),
        local(2024, 3, 1, 10),
        local(2024, 3, 1, 8),
    ]
    in_utc = fetch(
        context, "csv", path=str(path), observed_at_format=["%d.%m.%Y %H:%M"], timezone="UTC", **LONG
    )
    assert in_utc.records[0].observed_at == datetime(2024, 3, 1, 8, tzinfo=UTC)
    assert in_utc.records[4].observed_at == local(2024, 3, 1, 8)  # an explicit offset wins
    epochs = write(tmp_path / "epoch.csv", "time,station,indicator,value\n1709251200,1188A,env.aqi,1\n")
    batch = fetch(context, "csv", path=str(epochs), observed_at_format="epoch", **LONG)
    assert batch.records[0].observed_at == datetime(2024, 3, 1, tzinfo=UTC)


# --- bad input ------------------------------------------------------------------------------------


def test_bad_cells_become_records_that_validation_rejects_naming_file_and_line(tmp_path, context, validator):
    path = write(
        tmp_path / "aqi_0301.csv",
        "time,station,indicator,value\n"
        "2024-03-01 08:00,1188A,env.aqi,85\n"
        "yesterday,1188A,env.aqi,86\n"
        "2024-03-01 09:00,1188A,env.aqi,eighty\n"
        "2024-03-01 09:00,1189A,env.aqi,\n"
        "2024-03-01 09:00,不存在的站,env.aqi,50\n"
        "2024-03-01 09:00,1189A,AQI,50\n"
        "2024-13-45 09:00,1189A,env.aqi,50\n"
        "2024-03-01 10:00,1189A,env.aqi,1e999\n"
        "2024-03-01 10:00,1190A,env.aqi,70\n",
    )
    batch = fetch(context, "csv", path=str(path), **LONG)
    assert len(batch.records) == 9
    accepted, rejected = validator.validate(batch.records)
    assert [(r.entity, r.value) for r in accepted] == [("1188A", 85.0), ("1190A", 70.0)]
    found = {(r.raw.split(": ", 1)[0], r.field) for r in rejected}
    assert found == {
        ("aqi_0301.csv:3", "observed_at"),
        ("aqi_0301.csv:4", "value"),
        ("aqi_0301.csv:5", "value"),
        ("aqi_0301.csv:6", "entity"),
        ("aqi_0301.csv:7", "indicator"),
        ("aqi_0301.csv:8", "observed_at"),
        ("aqi_0301.csv:9", "value"),
    }
    reasons = {r.raw.split(": ", 1)[0]: r.reason for r in rejected}
    assert reasons["aqi_0301.csv:4"] == "not a number: 'eighty'"
    assert reasons["aqi_0301.csv:6"] == "unknown station or region '不存在的站'"


def test_title_lines_blank_rows_and_line_numbers(tmp_path, context):
    path = write(
        tmp_path / "report.csv",
        "无锡市空气质量小时报,,,\n"
        "监测时间,站点,AQI,PM2.5\n"
        "2024-03-01 08:00,雪浪,85,40\n"
        "\n"
        ",,,\n"
        '2024-03-01 09:00,"黄巷",86,\n',
    )
    batch = fetch(context, "csv", path=str(path), header_row=2, **WIDE)
    assert [(r.raw.split(" [")[0], r.indicator, r.value) for r in batch.records] == [
        ("report.csv:3", "env.aqi", 85.0),
        ("report.csv:3", "env.pm25", 40.0),
        ("report.csv:6", "env.aqi", 86.0),
    ]


def test_a_quoted_field_over_two_lines_keeps_its_first_line_number(tmp_path, context):
    path = write(
        tmp_path / "notes.csv",
        'time,station,indicator,value,note\n2024-03-01 08:00,1188A,env.aqi,85,"two\nlines"\n'
        "2024-03-01 09:00,1188A,env.aqi,x,\n",
    )
    batch = fetch(context, "csv", path=str(path), **LONG)
    assert [r.raw for r in batch.records] == [
        'notes.csv:2: 2024-03-01 08:00,1188A,env.aqi,85,"two\nlines"',
        "notes.csv:4: 2024-03-01 09:00,1188A,env.aqi,x,",
    ]


def test_a_missing_column_fails_the_fetch_naming_file_and_column(tmp_path, context):
    path = write(tmp_path / "odd.csv", "监测时间,站点,AQI\n2024-03-01 08:00,雪浪,85\n")
    with pytest.raises(LookupError, match=r"odd\.csv: values\.PM2\.5: no column 'PM2\.5' on line 1"):
        fetch(context, "csv", path=str(path), **WIDE)
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        fetch(context, "csv", path=str(tmp_path / "nothing-here"), **WIDE)


# --- folders, watermarks and a URL --------------------------------------------------------------


def air_file(folder: Path, name: str, station: str, *values: int) -> Path:
    lines = [f"2024-03-01 {8 + i:02d}:00,{station},{v},{v // 2}" for i, v in enumerate(values)]
    return write(folder / name, "\n".join(["监测时间,站点,AQI,PM2.5", *lines]) + "\n")


def test_folder_reads_each_new_or_changed_file_once(tmp_path, context):
    folder = tmp_path / "drop"
    folder.mkdir()
    air_file(folder, "0301.csv", "1188A", 80, 81)
    air_file(folder, "0302.CSV", "1189A", 90)
    air_file(folder, "~$0303.csv", "1190A", 1)  # an office lock file
    write(folder / "readme.txt", "not data")
    options = dict(WIDE, path=str(folder))
    first = fetch(context, "csv", **options)
    assert {(r.entity, r.value) for r in first.records if r.indicator == "env.aqi"} == {
        ("1188A", 80.0),
        ("1188A", 81.0),
        ("1189A", 90.0),
    }
    assert set(read_watermark(first.watermark)) == {"0301.csv", "0302.CSV"}
    again = fetch(context, "csv", first.watermark, **options)
    assert again.records == [] and again.watermark == first.watermark
    air_file(folder, "0303.csv", "1190A", 70)
    third = fetch(context, "csv", again.watermark, **options)
    assert {r.entity for r in third.records} == {"1190A"}
    changed = air_file(folder, "0301.csv", "1188A", 80, 81, 82)
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    (folder / "0302.CSV").unlink()
    fourth = fetch(context, "csv", third.watermark, **options)
    assert [r.value for r in fourth.records if r.indicator == "env.aqi"] == [80.0, 81.0, 82.0]
    assert set(read_watermark(fourth.watermark)) == {"0301.csv", "0303.csv"}


def test_subfolders_only_when_recursive(tmp_path, context):
    air_file(tmp_path, "top.csv", "1188A", 80)
    (tmp_path / "2024-03").mkdir()
    air_file(tmp_path / "2024-03", "deep.csv", "1189A", 90)
    flat = fetch(context, "csv", path=str(tmp_path), **WIDE)
    deep = fetch(context, "csv", path=str(tmp_path), recursive=True, **WIDE)
    assert {r.entity for r in flat.records} == {"1188A"}
    assert {r.entity for r in deep.records} == {"1188A", "1189A"}
    assert set(read_watermark(deep.watermark)) == {"top.csv", "2024-03/deep.csv"}


def test_the_same_file_twice_is_read_once(tmp_path, context):
    path = air_file(tmp_path, "aqi.csv", "1188A", 80)
    first = fetch(context, "csv", path=str(path), **WIDE)
    second = fetch(context, "csv", first.watermark, path=str(path), **WIDE)
    assert len(first.records) == 2 and second.records == []


def test_a_watermark_of_another_kind_reads_everything_again(tmp_path, context):
    path = air_file(tmp_path, "aqi.csv", "1188A", 80)
    batch = fetch(context, "csv", "2024-03-01T00:00:00+00:00", path=str(path), **WIDE)
    assert len(batch.records) == 2


@pytest.fixture
def http_folder(tmp_path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP by a real server on a free local port."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_is_read_when_its_content_changes(http_folder, context):
    folder, base_url = http_folder
    air_file(folder, "aqi.csv", "1188A", 80)
    (folder / "gbk.csv").write_bytes("监测时间,站点,AQI,PM2.5\n2024-03-01 08:00,雪浪,85,40\n".encode("gbk"))
    options = dict(WIDE, url=f"{base_url}/aqi.csv", timeout="5s")
    first = fetch(context, "csv", **options)
    assert [(r.indicator, r.entity, r.value) for r in first.records] == [
        ("env.aqi", "1188A", 80.0),
        ("env.pm25", "1188A", 40.0),
    ]
    assert first.records[0].raw.startswith(f"{base_url}/aqi.csv:2 [AQI]: ")
    assert fetch(context, "csv", first.watermark, **options).records == []
    air_file(folder, "aqi.csv", "1188A", 80, 95)
    changed = fetch(context, "csv", first.watermark, **options)
    assert [r.value for r in changed.records if r.indicator == "env.aqi"] == [80.0, 95.0]
    gbk = fetch(context, "csv", **dict(options, url=f"{base_url}/gbk.csv"))
    assert {r.entity for r in gbk.records} == {"1188A"}
    with pytest.raises(httpx.HTTPStatusError, match="404"):
        fetch(context, "csv", **dict(options, url=f"{base_url}/missing.csv"))


def test_an_unreachable_url_fails_the_fetch(context):
    with pytest.raises(httpx.TransportError):
        fetch(context, "csv", url="http://127.0.0.1:9/aqi.csv", timeout=2, **WIDE)


# --- Excel ----------------------------------------------------------------------------------------


def workbook(path: Path) -> Path:
    """A department's report: a merged title row, the header on row 2, the hour merged down the
    rows of two stations, a blank row, real datetime cells and a second sheet."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "小时数据"
    sheet.append(["无锡市空气质量小时报"])
    sheet.merge_cells("A1:D1")
    sheet.append(["监测时间", "站点", "AQI", "PM2.5"])
    sheet.append([datetime(2024, 3, 1, 8), "雪浪", 85, 40])
    sheet.append([None, "黄巷", 90, "41"])
    sheet.merge_cells("A3:A4")
    sheet.append([])
    sheet.append(["2024/03/01 09:00", 1190, "n/a", 30.5])
    sheet.append(["2024/03/01 09:00", "1188A", True, None])
    other = book.create_sheet("说明")
    other.append(["time", "station", "AQI", "PM2.5"])
    other.append(["2024-03-01 10:00", "Qitang", 50, 20])
    book.save(path)
    return path


def test_xlsx_sheet_by_name_with_header_row_merged_and_blank_rows(tmp_path, context, validator):
    path = workbook(tmp_path / "air.xlsx")
    batch = fetch(
        context, "excel", path=str(path), sheet="小时数据", header_row=2, entity_map={"1190": "1190A"}, **WIDE
    )
    eight, nine = local(2024, 3, 1, 8), local(2024, 3, 1, 9)
    assert readings(batch) == [
        ("env.aqi", "1188A", eight, 85.0),
        ("env.pm25", "1188A", eight, 40.0),
        ("env.aqi", "1189A", eight, 90.0),
        ("env.pm25", "1189A", eight, 41.0),
        ("env.aqi", "1190A", nine, "n/a"),
        ("env.pm25", "1190A", nine, 30.5),
        ("env.aqi", "1188A", nine, True),
    ]
    assert batch.records[2].raw == "air.xlsx[小时数据]:4 [AQI]: 2024-03-01 08:00:00,黄巷,90,41"
    _, rejected = validator.validate(batch.records)
    assert [(r.raw.split(" [")[0], r.field) for r in rejected] == [
        ("air.xlsx[小时数据]:6", "value"),
        ("air.xlsx[小时数据]:7", "value"),
    ]


def test_xlsx_sheet_by_index(tmp_path, context):
    path = workbook(tmp_path / "air.xlsx")
    options = dict(WIDE, observed_at_column="time", entity_column="station")
    batch = fetch(context, "excel", path=str(path), sheet=1, **options)
    assert readings(batch) == [
        ("env.aqi", "1191A", local(2024, 3, 1, 10), 50.0),
        ("env.pm25", "1191A", local(2024, 3, 1, 10), 20.0),
    ]
    with pytest.raises(ValueError, match=r"no sheet named 'Sheet9' \(sheets: '小时数据', '说明'\)"):
        fetch(context, "excel", path=str(path), sheet="Sheet9", **options)
    with pytest.raises(ValueError, match="no sheet 2"):
        fetch(context, "excel", path=str(path), sheet=2, **options)


def test_xlsx_folder_and_the_clear_xls_error(tmp_path, context):
    workbook(tmp_path / "a.xlsx")
    options = dict(WIDE, path=str(tmp_path), sheet="说明", observed_at_column="time", entity_column="station")
    assert len(fetch(context, "excel", **options).records) == 2
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    with pytest.raises(ValueError, match=r"old\.xls: an Excel 97-2003 \(\.xls\) workbook; .*xlrd"):
        fetch(context, "excel", **dict(options, pattern="*.xls*"))
    (tmp_path / "fake.xlsx").write_text("监测时间,站点\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"fake\.xlsx: not an \.xlsx workbook"):
        fetch(context, "excel", **options)


# --- configuration --------------------------------------------------------------------------------


def problems(kind: str, **options: object) -> list[str]:
    return option_problems(kind, options, "sources.2 (files)")


def test_option_problems_name_the_key():
    assert problems("csv", path="/data", **WIDE) == []
    assert problems("excel", url="https://dept.example/aqi.xlsx", sheet="数据", **WIDE) == []
    assert "set exactly one of path (a file or folder) or url" in problems("csv", **WIDE)[0]
    both = problems("csv", path="/a", value_column="v", **WIDE)
    assert "set exactly one of value_column" in both[0]
    assert "cannot be combined with values" in problems("csv", path="/a", indicator="env.aqi", **WIDE)[0]
    assert (
        "set exactly one of entity_column or entity" in problems("csv", path="/a", entity="1188A", **WIDE)[0]
    )
    [zone] = problems("csv", path="/a", timezone="Mars/Olympus", **WIDE)
    assert zone.startswith("sources.2 (files).options.timezone: unknown IANA time zone")
    [encoding] = problems("csv", path="/a", encoding="klingon", **WIDE)
    assert encoding.startswith("sources.2 (files).options.encoding: unknown encoding 'klingon'")
    assert "neither a strptime pattern" in problems("csv", path="/a", observed_at_format="YYYY", **WIDE)[0]
    assert "http:// or https://" in problems("csv", url="ftp://dept/aqi.csv", **WIDE)[0]
    [extra] = problems("excel", path="/a", encoding="gbk", **WIDE)
    assert extra.startswith("sources.2 (files).options.encoding: Extra inputs are not permitted")


def test_names_that_match_nothing_are_configuration_errors(tmp_path, context):
    path = air_file(tmp_path, "aqi.csv", "1188A", 80)
    with pytest.raises(ValueError, match=r"entity_map\.雪浪站: '9999X' is not a station or region code"):
        build("csv", dict(WIDE, path=str(path), entity_map={"雪浪站": "9999X"}), context)
    with pytest.raises(ValueError, match=r"values\.AQI: 'env\.aqii' is no known"):
        build("csv", dict(WIDE, path=str(path), values={"AQI": "env.aqii"}), context)
    with pytest.raises(ValueError, match=r"indicator_map\.AQI: 'aqi' is not an indicator key"):
        build("csv", dict(LONG, path=str(path), indicator_map={"AQI": "aqi"}), context)


def test_lookup_resolves_codes_unique_names_and_the_explicit_map_first():
    lookup = Lookup(
        ["S1", "S2", "S3"],
        [("S1", "东亭"), ("S2", "东亭"), ("S3", "Lihu Avenue")],
        {"东亭站": "S2", "S1": "S3"},
    )
    assert lookup("东亭") is None  # two stations share the name: it names neither
    assert lookup("东亭站") == "S2"
    assert lookup("s2") == "S2"
    assert lookup(" LIHU  avenue ") == "S3"
    assert lookup("S1") == "S3"  # the department's code S1 is the city's S3
    assert lookup("") is None and lookup(None) is None


def test_guess_delimiter():
    assert guess_delimiter("时间,站点,AQI") == ","
    assert guess_delimiter("时间\t站点\tAQI, PM") == "\t"
    assert guess_delimiter("时间;站点;AQI") == ";"
    assert guess_delimiter("时间") == ","


# --- the cell parsers -----------------------------------------------------------------------------

moments = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0)
)
FORMS = (
    lambda d: d.strftime("%Y-%m-%d %H:%M"),
    lambda d: d.strftime("%Y/%m/%d %H:%M"),
    lambda d: f"{d.year}/{d.month}/{d.day} {d.hour}:{d.minute:02d}:00",
    lambda d: f"{d.year}年{d.month}月{d.day}日 {d.hour}时{d.minute}分",
    lambda d: f"{d.year}年{d.month:02d}月{d.day:02d}日{d.hour:02d}:{d.minute:02d}",
    lambda d: d.strftime("%Y.%m.%d %H:%M"),
    lambda d: d.isoformat(),
)


@given(moments, st.sampled_from(FORMS), st.sampled_from(["Asia/Shanghai", "UTC", "Europe/Berlin"]))
def test_read_timestamp_reads_every_common_form(moment, form, zone_name):
    zone = ZoneInfo(zone_name)
    assert read_timestamp(form(moment), zone) == as_utc(moment, zone)


@given(moments)
def test_read_timestamp_hour_forms_and_strptime_patterns(moment):
    hour = moment.replace(minute=0)
    assert read_timestamp(f"{hour.year}年{hour.month}月{hour.day}日 {hour.hour}时", ZONE) == as_utc(
        hour, ZONE
    )
    text = moment.strftime("%d/%m/%Y %H.%M")
    assert read_timestamp(text, ZONE, ["%m/%d/%Y", "%d/%m/%Y %H.%M"]) == as_utc(moment, ZONE)
    assert read_timestamp(moment, ZONE) == as_utc(moment, ZONE)
    assert read_timestamp(moment.date(), ZONE) == as_utc(
        datetime.combine(moment.date(), datetime.min.time()), ZONE
    )


@given(st.text(max_size=30))
def test_read_timestamp_never_raises(text):
    found = read_timestamp(text, ZONE)
    assert found is None or found.tzinfo is UTC or found.utcoffset() == timedelta(0)


def test_read_timestamp_refuses_numbers_and_impossible_dates():
    assert read_timestamp(45352, ZONE) is None  # an Excel serial number is no Unix time
    assert read_timestamp(45352, ZONE, ["epoch"]) == datetime(1970, 1, 1, 12, 35, 52, tzinfo=UTC)
    assert read_timestamp("1709251200000", ZONE, ["epoch_ms"]) == datetime(2024, 3, 1, tzinfo=UTC)
    assert read_timestamp("2024年2月30日 8时", ZONE) is None
    assert read_timestamp("2024/03/01 25:00", ZONE) is None
    assert read_timestamp(True, ZONE) is None and read_timestamp("", ZONE) is None


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_read_number_round_trips_floats(number):
    assert read_number(repr(number)) == number
    assert read_number(f" {number!r}\t") == number
    assert read_number(number) == number


@given(st.integers(min_value=-(10**12), max_value=10**12), st.integers(min_value=0, max_value=99))
def test_read_number_thousands_separators_and_full_width_digits(whole, cents):
    text = f"{whole:,}.{cents:02d}"
    expected = float(f"{whole}.{cents:02d}")
    assert read_number(text) == expected
    full_width = text.translate(str.maketrans("0123456789.,-", "０１２３４５６７８９．，－"))
    assert read_number(full_width) == expected


@given(st.text(max_size=20))
def test_read_number_never_raises_and_agrees_with_float(text):
    found = read_number(text)
    try:
        plain = float(text)
    except ValueError:
        return
    assert found == plain or (found != found and plain != plain)


def test_read_number_refuses_what_is_no_number():
    assert read_number("1,23") is None
    assert read_number("85 μg/m³") is None
    assert read_number(True) is None and read_number(None) is None


def test_decode_text_reports_undecodable_bytes():
    with pytest.raises(ValueError, match="not valid utf-8 text"):
        decode_text("雪浪".encode("gbk"), "utf-8")
    assert decode_text("\ufeff时间".encode()) == "时间"


def test_a_url_source_can_be_replayed_from_a_file(tmp_path):
    from datasources.tabular import CsvAdapter

    configured = {
        "url": "http://dept.example/aqi.csv",
        "indicator": "env.aqi",
        "entity_column": "站点",
        "observed_at_column": "时间",
        "value_column": "AQI",
    }
    replayed = CsvAdapter.Options.model_validate(configured | CsvAdapter.replay_options(str(tmp_path)))
    assert (replayed.path, replayed.url) == (str(tmp_path), None)
