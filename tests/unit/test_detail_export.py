"""The detail page's files: the CSV and the workbook hold exactly the view's series, comparison
lines, statistics, levels and breakdown, with units, wall-clock times and the zone named."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from callbacks.detail_export import csv_bytes, file_name, series_table, xlsx_bytes
from indicators.catalog import Thresholds
from indicators.period_stats import change, level_zones, period_stats
from layouts.indicator_detail import BarView, Crumb, DetailView, Line, SeriesView, wall_clock_text

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 1, 9, 16, 0, tzinfo=UTC)  # 2026-01-10 00:00 in Shanghai
HOUR = timedelta(hours=1)
PM25 = Thresholds(direction="above", blue=75, yellow=115, orange=150, red=250)


def make_view(**changes) -> DetailView:
    """Three hourly points (the middle one yellow), the previous period at two of the times."""
    times = tuple(T0 + i * HOUR for i in range(3))
    values = (40.25, 120.5, 60.0)
    points = [
        type("P", (), {"at": a, "value": v, "low": v - 5, "high": v + 5})()
        for a, v in zip(times, values, strict=True)
    ]
    stats = period_stats(points, PM25, HOUR, T0 + 3 * HOUR)
    view = DetailView(
        key="env.pm25",
        name="PM2.5",
        unit="µg/m³",
        decimals=1,
        zone="Asia/Shanghai",
        range_name="7d",
        start=T0,
        end=T0 + 3 * HOUR,
        resolution="hour",
        step_seconds=3600,
        scope="district",
        scope_name="Xishan",
        place="320205",
        crumbs=(Crumb("city", "Wuxi"), Crumb("district", "Xishan")),
        series=SeriesView(
            times,
            values,
            tuple(v - 5 for v in values),
            tuple(v + 5 for v in values),
            (12, 12, 11),
            wall_clock_text(times, SHANGHAI),
        ),
        previous=Line(times[:2], (30.0, 35.0), wall_clock_text(times[:2], SHANGHAI)),
        last_year=Line((), (), ()),
        limits=PM25.limits(),
        zones=level_zones(PM25, (0, 1000)),
        bounds=(0, 1000),
        stats=stats,
        vs_previous=change(stats.mean, 32.5),
        vs_last_year=None,
        breakdown_scope="station",
        breakdown_title="Stations in Xishan",
        bars=(BarView("1192A", "Dongting", 73.2, 0, "#2e9e5b", False),),
        district_hideout={},
        stations={},
        focus={},
        map_bounds=[[0, 0], [1, 1]],
        version=7,
    )
    return replace(view, **changes)


def csv_sections(data: bytes) -> dict[str, list[list[str]]]:
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads the Chinese text as UTF-8
    sections: dict[str, list[list[str]]] = {}
    title = None
    for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))):
        if not row:
            title = None
        elif title is None:
            title = row[0]
            sections[title] = []
        else:
            sections[title].append(row)
    return sections


def test_the_csv_holds_the_series_in_wall_clock_time_with_units():
    sections = csv_sections(csv_bytes(make_view(), "en"))
    header, *rows = sections["Series"]
    assert header == [
        "Time (Asia/Shanghai)",
        "Value (µg/m³)",
        "Lowest (µg/m³)",
        "Highest (µg/m³)",
        "Readings",
        "Previous period (µg/m³)",
        "Same period last year (µg/m³)",
    ]
    assert rows == [
        ["2026-01-10 00:00", "40.2", "35.2", "45.2", "12", "30.0", ""],
        ["2026-01-10 01:00", "120.5", "115.5", "125.5", "12", "35.0", ""],
        ["2026-01-10 02:00", "60.0", "55.0", "65.0", "11", "", ""],
    ]


def test_the_csv_states_place_period_levels_statistics_and_comparisons():
    sections = csv_sections(csv_bytes(make_view(), "en"))
    about = dict(sections["About this export"][1:])
    assert about["Indicator"] == "PM2.5 (env.pm25)" and about["Unit"] == "µg/m³"
    assert about["Place"] == "Wuxi › Xishan" and about["Time zone"] == "Asia/Shanghai"
    assert about["Period"] == "2026-01-10 00:00 – 2026-01-10 03:00"
    assert sections["Warning levels"][1:] == [
        ["IV Blue", "75.0", "75.0", "115.0"],
        ["III Yellow", "115.0", "115.0", "150.0"],
        ["II Orange", "150.0", "150.0", "250.0"],
        ["I Red", "250.0", "250.0", "1000.0"],
    ]
    stats = {row[0]: row[1:] for row in sections["Statistics of the period"][1:]}
    assert stats["Maximum"] == ["125.5", "2026-01-10 01:00"]
    assert stats["Mean"][0] == f"{(40.25 + 120.5 + 60) / 3:.1f}"
    held = {row[0]: row[1:] for row in sections["Time at each level"][1:]}
    assert held["Time with data"] == ["3.00", "100.0"]
    assert held["Time at III Yellow or worse"] == ["1.00", "33.3"]
    assert held["Time at I Red or worse"] == ["0.00", "0.0"]
    compared = {row[0]: row[1:] for row in sections["Comparisons"][1:]}
    assert compared["Against the same period last year"][-1] == "no data for last year"
    assert compared["Against the previous period"][1] == "32.5"
    assert sections["Stations in Xishan"] == [
        ["Place", "Code", "Value (µg/m³)", "Level"],
        ["Dongting", "1192A", "73.2", "Normal"],
    ]


def test_the_csv_speaks_chinese_too():
    sections = csv_sections(csv_bytes(make_view(), "zh-CN"))
    assert sections["时间序列"][0][:2] == ["时间(Asia/Shanghai)", "数值(µg/m³)"]
    assert "去年同期无数据" in sections["对比"][2]


def test_the_workbook_has_header_rows_and_number_formats():
    book = load_workbook(io.BytesIO(xlsx_bytes(make_view(), "en")))
    assert book.sheetnames == ["Series", "Summary", "Breakdown"]
    sheet = book["Series"]
    assert [cell.value for cell in sheet[1]][:2] == ["Time (Asia/Shanghai)", "Value (µg/m³)"]
    assert all(cell.font.bold for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    first = sheet[2]
    assert first[0].value == datetime(2026, 1, 10, 0, 0) and first[0].number_format == "yyyy-mm-dd hh:mm"
    assert first[1].value == pytest.approx(40.25) and first[1].number_format == "#,##0.0"
    assert first[4].value == 12 and first[4].number_format == "#,##0"
    assert sheet.max_row == 4
    summary = [row for row in book["Summary"].iter_rows(values_only=True)]
    assert ("Place", "Wuxi › Xishan", None, None, None, None) in summary
    assert book["Breakdown"]["C2"].value == pytest.approx(73.2)


def test_previous_points_without_a_current_point_get_their_own_rows():
    view = make_view(previous=Line((T0 + 5 * HOUR,), (10.0,), ("2026-01-10T05:00:00",)))
    rows = series_table(view, "en").rows
    assert rows[-1][0] == datetime(2026, 1, 10, 5, 0) and rows[-1][1:] == [None, None, None, None, 10.0, None]


def test_file_names_carry_the_key_the_range_and_the_place():
    assert file_name(make_view(), "csv") == "env.pm25_7d_320205.csv"
    custom = make_view(range_name="custom", place=None)
    assert file_name(custom, "xlsx") == "env.pm25_20260110T0000-20260110T0300.xlsx"
