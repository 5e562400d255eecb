"""The detail page's downloads: exactly the shown view as CSV and as an Excel workbook.

Both files are built from the same tables (the view's series with its comparison lines, the
statistics, the comparisons, the level limits and the breakdown), so they say the same thing. Times
are the city's wall clock with the zone named in the header; every value column names its unit.
The CSV starts with a byte-order mark, so Excel opens its Chinese text correctly.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from core.i18n import t
from core.timeutil import utcnow
from layouts.components import level_text
from layouts.indicator_detail import CUSTOM, DetailView, wall_clock

TIME_FORMAT = "%Y-%m-%d %H:%M"
EXCEL_TIME = "yyyy-mm-dd hh:mm"


@dataclass(frozen=True)
class Table:
    """A titled table; `places` holds each column's decimal places (None: not a number column),
    which both the CSV text and the Excel number format follow."""

    title: str
    header: list[str]
    rows: list[list[object]]
    places: list[int | None]


def _with_unit(label: str, unit: str, lang: str) -> str:
    return t("detail.col.with_unit", lang, label=label, unit=unit) if unit else label


def series_table(view: DetailView, lang: str) -> Table:
    """One row per shown time: the point, and the comparison lines at the same place on the chart."""
    zone = ZoneInfo(view.zone)
    series = view.series
    rows: dict[datetime, list[object]] = {}
    for at, value, low, high, count in zip(
        series.times, series.values, series.lows, series.highs, series.counts, strict=True
    ):
        rows[at] = [value, low, high, count, None, None]
    for column, line in ((4, view.previous), (5, view.last_year)):
        for at, value in zip(line.times, line.values, strict=True):
            rows.setdefault(at, [None] * 6)[column] = value
    places = view.decimals
    return Table(
        title=t("detail.export.series", lang),
        header=[
            t("detail.col.time", lang, zone=view.zone),
            _with_unit(t("detail.col.value", lang), view.unit, lang),
            _with_unit(t("detail.col.low", lang), view.unit, lang),
            _with_unit(t("detail.col.high", lang), view.unit, lang),
            t("detail.col.count", lang),
            _with_unit(t("detail.chart.previous", lang), view.unit, lang),
            _with_unit(t("detail.chart.last_year", lang), view.unit, lang),
        ],
        rows=[[wall_clock(at, zone), *rows[at]] for at in sorted(rows)],
        places=[None, places, places, places, 0, places, places],
    )


def about_table(view: DetailView, lang: str) -> Table:
    zone = ZoneInfo(view.zone)
    place = " › ".join(crumb.label for crumb in view.crumbs)
    period = f"{wall_clock(view.start, zone):{TIME_FORMAT}} – {wall_clock(view.end, zone):{TIME_FORMAT}}"
    rows: list[list[object]] = [
        [t("detail.about.indicator", lang), f"{view.name} ({view.key})"],
        [t("detail.about.unit", lang), view.unit or "—"],
        [t("detail.about.place", lang), place],
        [t("detail.about.period", lang), period],
        [t("detail.about.zone", lang), view.zone],
        [t("detail.about.resolution", lang), t(f"detail.resolution.{view.resolution}", lang)],
        [t("detail.about.exported", lang), f"{wall_clock(utcnow(), zone):{TIME_FORMAT}}"],
    ]
    header = [t("detail.col.item", lang), t("detail.col.detail", lang)]
    return Table(t("detail.export.about", lang), header, rows, [None, None])


def levels_table(view: DetailView, lang: str) -> Table:
    """Each level's limit and the value range it covers (the bands behind the chart)."""
    limits = dict(view.limits)
    rows: list[list[object]] = [
        [level_text(zone.severity, lang), limits.get(zone.severity), zone.low, zone.high]
        for zone in view.zones
        if zone.severity
    ]
    header = [
        t("detail.col.level", lang),
        _with_unit(t("detail.col.limit", lang), view.unit, lang),
        _with_unit(t("detail.col.from", lang), view.unit, lang),
        _with_unit(t("detail.col.to", lang), view.unit, lang),
    ]
    return Table(
        t("detail.export.levels", lang), header, rows, [None, view.decimals, view.decimals, view.decimals]
    )


def stats_table(view: DetailView, lang: str) -> Table:
    """Minimum, maximum and mean of the shown series, with when the extremes happened."""
    zone = ZoneInfo(view.zone)
    stats = view.stats

    def at(when: datetime | None) -> str:
        return f"{wall_clock(when, zone):{TIME_FORMAT}}" if when else ""

    rows: list[list[object]] = [
        [t("detail.stats.min", lang), stats.minimum, at(stats.minimum_at)],
        [t("detail.stats.max", lang), stats.maximum, at(stats.maximum_at)],
        [t("detail.stats.mean", lang), stats.mean, ""],
    ]
    header = [
        t("detail.col.statistic", lang),
        _with_unit(t("detail.col.value", lang), view.unit, lang),
        t("detail.col.at", lang, zone=view.zone),
    ]
    return Table(t("detail.stats.title", lang), header, rows, [None, view.decimals, None])


def level_time_table(view: DetailView, lang: str) -> Table:
    """How long the shown line had data, and how long it was at each level or a worse one."""
    stats = view.stats
    rows: list[list[object]] = [[t("detail.stats.covered", lang), stats.covered_seconds / 3600, 100.0]]
    for held in reversed(stats.levels):
        share = held.seconds / stats.covered_seconds * 100 if stats.covered_seconds else 0.0
        label = t("detail.stats.level_time", lang, level=level_text(held.severity, lang))
        rows.append([label, held.seconds / 3600, share])
    header = [t("detail.col.statistic", lang), t("detail.col.hours", lang), t("detail.col.share", lang)]
    return Table(t("detail.export.level_time", lang), header, rows, [None, 2, 1])


def comparison_table(view: DetailView, lang: str) -> Table:
    rows: list[list[object]] = []
    for label, compared, missing in (
        (t("detail.compare.previous", lang), view.vs_previous, t("detail.compare.no_previous", lang)),
        (t("detail.compare.last_year", lang), view.vs_last_year, t("detail.compare.no_last_year", lang)),
    ):
        if compared is None:
            rows.append([label, None, None, None, None, missing])
        else:
            rows.append([label, compared.current, compared.other, compared.difference, compared.percent, ""])
    header = [
        t("detail.col.comparison", lang),
        _with_unit(t("detail.col.mean_now", lang), view.unit, lang),
        _with_unit(t("detail.col.mean_then", lang), view.unit, lang),
        _with_unit(t("detail.col.difference", lang), view.unit, lang),
        t("detail.col.percent", lang),
        t("detail.col.note", lang),
    ]
    places = view.decimals
    return Table(t("detail.export.comparison", lang), header, rows, [None, places, places, places, 1, None])


def breakdown_table(view: DetailView, lang: str) -> Table:
    header = [
        t("detail.col.place", lang),
        t("detail.col.code", lang),
        _with_unit(t("detail.col.value", lang), view.unit, lang),
        t("detail.col.level", lang),
    ]
    rows: list[list[object]] = [
        [bar.name, bar.code, bar.value, level_text(bar.severity, lang)] for bar in view.bars
    ]
    return Table(view.breakdown_title, header, rows, [None, None, view.decimals, None])


def summary_tables(view: DetailView, lang: str) -> list[Table]:
    return [
        about_table(view, lang),
        levels_table(view, lang),
        stats_table(view, lang),
        level_time_table(view, lang),
        comparison_table(view, lang),
    ]


def _csv_cell(value: object, places: int | None) -> object:
    if isinstance(value, datetime):
        return value.strftime(TIME_FORMAT)
    if value is None:
        return ""
    if isinstance(value, int | float) and places is not None:
        return f"{value:.{places}f}"
    return value


def csv_bytes(view: DetailView, lang: str) -> bytes:
    """The summary, the series and the breakdown one after another: a title line, a header line and
    the rows each, numbers with the decimals the page shows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for table in [*summary_tables(view, lang), series_table(view, lang), breakdown_table(view, lang)]:
        writer.writerow([table.title])
        writer.writerow(table.header)
        for row in table.rows:
            writer.writerow([_csv_cell(cell, places) for cell, places in zip(row, table.places, strict=True)])
        writer.writerow([])
    return buffer.getvalue().encode("utf-8-sig")


def _number_format(places: int) -> str:
    return "#,##0" + ("." + "0" * places if places else "")


def _write_table(sheet, table: Table, first_row: int, with_title: bool) -> int:
    """Writes the table from `first_row` (values unrounded, formatted); returns the next free row."""
    row = first_row
    if with_title:
        sheet.cell(row, 1, table.title).font = Font(bold=True, size=12)
        row += 1
    for column, label in enumerate(table.header, start=1):
        sheet.cell(row, column, label).font = Font(bold=True)
    row += 1
    for values in table.rows:
        for column, (value, places) in enumerate(zip(values, table.places, strict=True), start=1):
            cell = sheet.cell(row, column, value)
            if isinstance(value, datetime):
                cell.number_format = EXCEL_TIME
            elif isinstance(value, int | float) and places is not None:
                cell.number_format = _number_format(places)
        row += 1
    return row + 1


def _fit_columns(sheet, widths: list[int]) -> None:
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width


def xlsx_bytes(view: DetailView, lang: str) -> bytes:
    """Sheet 1 the series (header row frozen, dates and numbers formatted), sheet 2 the summary
    (what, where, when, levels, statistics, comparisons), sheet 3 the breakdown."""
    book = Workbook()
    series = book.active
    series.title = t("detail.sheet.series", lang)
    _write_table(series, series_table(view, lang), 1, with_title=False)
    series.freeze_panes = "A2"
    _fit_columns(series, [20, 16, 16, 16, 10, 22, 24])
    summary = book.create_sheet(t("detail.sheet.summary", lang))
    row = 1
    for table in summary_tables(view, lang):
        row = _write_table(summary, table, row, with_title=True)
    _fit_columns(summary, [34, 24, 22, 18, 14, 26])
    breakdown = book.create_sheet(t("detail.sheet.breakdown", lang))
    _write_table(breakdown, breakdown_table(view, lang), 1, with_title=False)
    breakdown.freeze_panes = "A2"
    _fit_columns(breakdown, [20, 12, 16, 16])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def file_name(view: DetailView, extension: str) -> str:
    """`env.aqi_7d_320205.csv`: the key, the range (a custom one by its wall-clock ends), the place."""
    if view.range_name == CUSTOM:
        zone = ZoneInfo(view.zone)
        period = f"{wall_clock(view.start, zone):%Y%m%dT%H%M}-{wall_clock(view.end, zone):%Y%m%dT%H%M}"
    else:
        period = view.range_name
    place = f"_{view.place}" if view.place else ""
    return f"{view.key}_{period}{place}.{extension}"
