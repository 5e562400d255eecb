"""CSV and Excel sources end to end through run_source into the real store, on both dialects."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select

from core.settings import SourceSettings
from ingest.pipeline import run_source
from ingest.replay import replay
from store.models import Reading, RejectedRecord, Source, SourceRun
from store.sync import sync_sources


def hours_ago(ingest, hours: int) -> datetime:
    """A whole local hour in the city's zone, `hours` before the current one."""
    now = datetime.now(ingest.settings.tz).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(hours=hours)


def configure(ingest, source_id: str, kind: str, **options: object) -> None:
    """Add a file source to the deployment the way the config file would."""
    source = SourceSettings(id=source_id, type=kind, every=60, options=options)
    ingest.settings = ingest.settings.model_copy(update={"sources": [*ingest.settings.sources, source]})
    with ingest.sessions() as session:
        sync_sources(session, list(ingest.settings.sources))
        session.commit()


def stored(ingest, source_id: str) -> int:
    with ingest.sessions() as session:
        return session.scalar(select(func.count()).select_from(Reading).where(Reading.source_id == source_id))


def quarantined(ingest, run_id: int) -> list[tuple[str, str]]:
    with ingest.sessions() as session:
        rows = session.scalars(select(RejectedRecord).where(RejectedRecord.run_id == run_id))
        return sorted((row.raw, row.field) for row in rows)


@pytest.fixture
def aqi_file(ingest, tmp_path) -> Path:
    """A GBK export of the environment bureau: wide, station names, three bad lines."""
    lines = ["监测时间,站点名称,AQI,PM2.5"]
    for hours in (3, 2, 1):
        at = hours_ago(ingest, hours).strftime("%Y/%m/%d %H:%M")
        lines += [f"{at},雪浪,{60 + hours},{30 + hours}", f"{at},黄巷,{70 + hours},{35 + hours}"]
    at = hours_ago(ingest, 1).strftime("%Y/%m/%d %H:%M")
    lines += [
        "2024/02/30 08:00,雪浪,61,31",  # line 8: no such day
        f"{at},曹张,abc,33",  # line 9: AQI is no number
        f"{at},不存在的站,50,20",  # line 10: no such station
    ]
    path = tmp_path / "aqi_hourly.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    return path


def test_a_csv_file_is_ingested_once_and_its_bad_lines_quarantined(ingest, aqi_file):
    configure(
        ingest,
        "env-csv",
        "csv",
        path=str(aqi_file),
        observed_at_column="监测时间",
        entity_column="站点名称",
        values={"AQI": "env.aqi", "PM2.5": "env.pm25"},
    )
    first = run_source(ingest, "env-csv")
    assert (first.status, first.fetched, first.accepted, first.rejected) == ("partial", 18, 13, 5)
    assert stored(ingest, "env-csv") == 13
    lines = aqi_file.read_text("gbk").splitlines()
    assert quarantined(ingest, first.run_id) == [
        (f"aqi_hourly.csv:10 [AQI]: {lines[9]}", "entity"),
        (f"aqi_hourly.csv:10 [PM2.5]: {lines[9]}", "entity"),
        (f"aqi_hourly.csv:8 [AQI]: {lines[7]}", "observed_at"),
        (f"aqi_hourly.csv:8 [PM2.5]: {lines[7]}", "observed_at"),
        (f"aqi_hourly.csv:9 [AQI]: {lines[8]}", "value"),
    ]

    again = run_source(ingest, "env-csv")
    assert (again.status, again.fetched, again.accepted, again.rejected) == ("ok", 0, 0, 0)

    stat = aqi_file.stat()
    os.utime(aqi_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the same file saved again
    reread = run_source(ingest, "env-csv")
    assert (reread.fetched, reread.accepted, reread.rejected) == (18, 13, 5)
    assert stored(ingest, "env-csv") == 13
    with ingest.sessions() as session:
        assert session.get(Source, "env-csv").watermark.startswith('{"aqi_hourly.csv": ')


def test_a_replay_reads_another_file_and_leaves_the_watermark(ingest, aqi_file, tmp_path):
    configure(
        ingest,
        "env-csv",
        "csv",
        path=str(aqi_file),
        observed_at_column="监测时间",
        entity_column="站点名称",
        values={"AQI": "env.aqi", "PM2.5": "env.pm25"},
    )
    run_source(ingest, "env-csv")
    with ingest.sessions() as session:
        watermark = session.get(Source, "env-csv").watermark
    history = tmp_path / "history" / "2024-03.csv"
    history.parent.mkdir()
    history.write_text("监测时间,站点名称,AQI,PM2.5\n2024-03-01 08:00,Caozhang,77,41\n", encoding="utf-8")
    [result] = replay(ingest, "env-csv", str(history.parent))
    assert (result.status, result.accepted) == ("ok", 2)
    with ingest.sessions() as session:
        assert session.get(Source, "env-csv").watermark == watermark
    assert stored(ingest, "env-csv") == 15


def river_workbook(path: Path, rows: list[tuple[datetime, str, float]]) -> None:
    """The water bureau's sheet: a title row, the header on row 2, long layout by gauge name."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "水位"
    sheet.append(["无锡市主要河道水位"])
    sheet.merge_cells("A1:C1")
    sheet.append(["时间", "测站", "水位(m)"])
    for at, gauge, level in rows:
        sheet.append([at.replace(tzinfo=None), gauge, level])
    book.save(path)


def test_an_excel_folder_reads_each_new_workbook_once(ingest, tmp_path):
    folder = tmp_path / "water"
    folder.mkdir()
    river_workbook(
        folder / "levels-1.xlsx",
        [
            (hours_ago(ingest, h), gauge, 3.1 + h / 100)
            for h in (3, 2)
            for gauge in ("无锡(大)站(古运河)", "RV02")
        ],
    )
    configure(
        ingest,
        "water-xlsx",
        "excel",
        path=str(folder),
        sheet="水位",
        header_row=2,
        observed_at_column="时间",
        entity_column="测站",
        indicator="water.river_level",
        value_column="水位(m)",
    )
    first = run_source(ingest, "water-xlsx")
    assert (first.status, first.fetched, first.accepted, first.rejected) == ("ok", 4, 4, 0)
    river_workbook(folder / "levels-2.xlsx", [(hours_ago(ingest, 1), "惠山站(锡澄运河)", 12.5)])
    second = run_source(ingest, "water-xlsx")
    assert (second.status, second.fetched, second.accepted, second.rejected) == ("partial", 1, 0, 1)
    [(raw, field)] = quarantined(ingest, second.run_id)
    assert raw.startswith("levels-2.xlsx[水位]:3: ") and field == "value"
    assert (run_source(ingest, "water-xlsx").fetched, stored(ingest, "water-xlsx")) == (0, 4)


def test_a_folder_of_many_files_keeps_its_watermark(ingest, tmp_path):
    """A drop folder gathers a file a day: the set of files read outgrows a short watermark."""
    for day in range(40):
        at = hours_ago(ingest, day + 1).strftime("%Y-%m-%d %H:%M")
        (tmp_path / f"环境监测_空气质量_小时数据_{day:03d}.csv").write_text(
            f"监测时间,站点,AQI\n{at},1188A,{50 + day}\n", encoding="utf-8"
        )
    configure(
        ingest,
        "env-folder",
        "csv",
        path=str(tmp_path),
        observed_at_column="监测时间",
        entity_column="站点",
        values={"AQI": "env.aqi"},
    )
    first = run_source(ingest, "env-folder")
    assert (first.status, first.fetched, first.accepted) == ("ok", 40, 40)
    again = run_source(ingest, "env-folder")
    assert (again.status, again.fetched) == ("ok", 0)
    with ingest.sessions() as session:
        assert len(session.get(Source, "env-folder").watermark) > 1000
        assert session.get(SourceRun, again.run_id).error is None
