"""CSV and Excel files from departments: one file, a folder that files are dropped into, or a URL.

Departments that have no API still export spreadsheets. The watermark is the set of files
already read (name -> size and modification time, or a URL -> content hash), so a run reads only
the files that are new or changed since the last; a changed file is read whole again, which the
store's upsert makes harmless. A file that cannot be read at all (undecodable, a header without
the configured columns) fails the run, naming the file, rather than being skipped unnoticed.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import json
import logging
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import openpyxl
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.worksheet import Worksheet

from datasources import base
from datasources.base import AdapterContext, Batch, Record
from datasources.tabular_mapping import CsvOptions, ExcelOptions, Mapper, Row, Table, TabularOptions
from datasources.tabular_text import cell_text, decode_text

log = logging.getLogger(__name__)

DELIMITERS = (",", "\t", ";", "|")
ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003 (.xls) and other OLE2 documents


# --- where the files come from ------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One file to consider: its watermark key and fingerprint, a name for messages, its bytes."""

    key: str
    name: str
    fingerprint: str
    load: Callable[[], bytes]


def _file_item(path: Path, key: str) -> Item:
    stat = path.stat()
    return Item(key, key, f"{stat.st_size}:{stat.st_mtime_ns}", path.read_bytes)


def _skipped(name: str) -> bool:
    """Office lock files (~$report.xlsx) and hidden files (.~lock.report.xlsx#) are no data."""
    return name.startswith(("~$", "."))


def local_items(path: Path, pattern: str = "*", recursive: bool = False) -> list[Item]:
    """The file, or the folder's files matching the glob `pattern` (any case), in name order."""
    path = path.expanduser()
    if path.is_file():
        return [_file_item(path, path.name)]
    if not path.is_dir():
        raise FileNotFoundError(f"path: {str(path)!r} is neither a file nor a folder")
    candidates = path.rglob("*") if recursive else path.iterdir()
    found = [
        p
        for p in candidates
        if p.is_file() and not _skipped(p.name) and fnmatch.fnmatchcase(p.name.casefold(), pattern.casefold())
    ]
    return [_file_item(p, p.relative_to(path).as_posix()) for p in sorted(found)]


def url_item(url: str, timeout: float) -> Item:
    """The downloaded file; its content hash is its fingerprint (servers' dates are unreliable)."""
    response = httpx.get(url, timeout=timeout, follow_redirects=True)
    response.raise_for_status()
    data = response.content
    return Item(url, url, "sha256:" + hashlib.sha256(data).hexdigest(), lambda: data)


def read_watermark(since: str | None) -> dict[str, str]:
    """The files already read; a watermark of another kind (the source's type was changed) is
    treated as none, so every file is read once more."""
    if not since:
        return {}
    try:
        seen = json.loads(since)
    except ValueError:
        seen = None
    if not isinstance(seen, dict):
        log.warning("watermark %r is not a set of files; reading every file again", since[:80])
        return {}
    return {str(key): str(value) for key, value in seen.items()}


# --- reading files ------------------------------------------------------------------------------


def guess_delimiter(line: str) -> str:
    """The most frequent of , tab ; | in the header line (comma when none is there)."""
    counts = [(line.count(d), -index, d) for index, d in enumerate(DELIMITERS)]
    best = max(counts)
    return best[2] if best[0] else ","


def csv_table(name: str, data: bytes, options: CsvOptions) -> Table:
    """The rows after the header line, each with its first physical line number and its text."""
    try:
        text = decode_text(data, options.encoding)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    lines = io.StringIO(text, newline="").readlines()
    header_line = lines[options.header_row - 1] if len(lines) >= options.header_row else ""
    reader = csv.reader(lines, delimiter=options.delimiter or guess_delimiter(header_line))
    header: list[str] | None = None
    rows: list[Row] = []
    start = 0
    try:
        for cells in reader:
            end = reader.line_num
            if header is None:
                if end >= options.header_row:
                    header = cells
            else:
                rows.append(Row(start + 1, cells, "".join(lines[start:end]).rstrip("\r\n")))
            start = end
    except csv.Error as exc:
        raise ValueError(f"{name}: line {reader.line_num}: not readable as CSV ({exc})") from None
    if header is None:
        raise ValueError(f"{name}: no header line {options.header_row} (the file has {len(lines)} lines)")
    return Table(name, header, rows)


def xlsx_table(name: str, data: bytes, options: ExcelOptions) -> Table:
    """The chosen sheet's rows after the header row; merged cells hold their value in every cell."""
    if data.startswith(OLE2_MAGIC):
        raise ValueError(
            f"{name}: an Excel 97-2003 (.xls) workbook; reading it needs the xlrd package, which is "
            "not installed; save the file as .xlsx"
        )
    if not data.startswith(ZIP_MAGIC):
        raise ValueError(f"{name}: not an .xlsx workbook")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # style and extension notes, once per run
            book = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ValueError(f"{name}: not a readable .xlsx workbook ({exc})") from None
    try:
        sheet = _sheet(name, book, options.sheet)
        where = f"{name}[{sheet.title}]"
        rows = list(_sheet_rows(sheet))
    finally:
        book.close()
    if len(rows) < options.header_row:
        raise ValueError(f"{where}: no header row {options.header_row} (the sheet has {len(rows)} rows)")
    header = [cell_text(cell) for cell in rows[options.header_row - 1]]
    body = [
        Row(number, cells, ",".join(cell_text(cell) for cell in cells))
        for number, cells in enumerate(rows[options.header_row :], start=options.header_row + 1)
    ]
    return Table(where, header, body)


def _sheet(name: str, book: Any, wanted: str | int) -> Worksheet:
    sheets = book.worksheets
    if isinstance(wanted, int):
        if not 0 <= wanted < len(sheets):
            raise ValueError(f"{name}: sheet: no sheet {wanted} (the workbook has {len(sheets)}, 0 = first)")
        return sheets[wanted]
    for sheet in sheets:
        if sheet.title == wanted:
            return sheet
    titles = ", ".join(repr(s.title) for s in sheets)
    raise ValueError(f"{name}: sheet: no sheet named {wanted!r} (sheets: {titles})")


def _sheet_rows(sheet: Worksheet) -> Iterator[list[Any]]:
    """Every row from row 1, with a merged range's value copied into each of its cells (a date
    merged down the rows of several stations belongs to each of them)."""
    merged: dict[tuple[int, int], Any] = {}
    for cells in sheet.merged_cells.ranges:
        value = sheet.cell(cells.min_row, cells.min_col).value
        for row in range(cells.min_row, cells.max_row + 1):
            for column in range(cells.min_col, cells.max_col + 1):
                merged[(row, column)] = value
    for number, values in enumerate(sheet.iter_rows(min_row=1, min_col=1, values_only=True), start=1):
        yield [merged.get((number, column), value) for column, value in enumerate(values, start=1)]


# --- the adapters -------------------------------------------------------------------------------


class _FileAdapter:
    """Reads the files not read before (by the watermark) and maps their rows to records with
    `read_table(name, bytes, options)`. A replay (`citybrain ingest SOURCE --from FILE`) reads
    another file or folder whole with the same mapping (`replay_options`)."""

    backfills: ClassVar[bool] = False

    @classmethod
    def replay_options(cls, path: str) -> dict[str, Any]:
        """The options that point this source at `path` instead of its own file, folder or URL."""
        return {"path": path, "url": None}
    read_table: ClassVar[Callable[[str, bytes, Any], Table]]

    def __init__(self, options: TabularOptions, context: AdapterContext) -> None:
        self.options = options
        self.context = context
        self.mapper = Mapper(options, context)

    def fetch(self, since: str | None, until: datetime) -> Batch:
        """Records of the new and changed files; `until` does not apply (a file is read whole,
        and validation rejects readings from the future)."""
        seen = read_watermark(since)
        records: list[Record] = []
        current: dict[str, str] = {}
        for item in self._items():
            if seen.get(item.key) != item.fingerprint:
                table = self.read_table(item.name, item.load(), self.options)
                records.extend(self.mapper.records(table))
            current[item.key] = item.fingerprint
        return Batch(records, json.dumps(current, ensure_ascii=False, sort_keys=True))

    def _items(self) -> list[Item]:
        options = self.options
        if options.url is not None:
            return [url_item(options.url, options.timeout)]
        assert options.path is not None  # the options require one of path and url
        return local_items(Path(options.path), options.pattern, options.recursive)


class CsvAdapter(_FileAdapter):
    """CSV (or tab-, semicolon- or bar-separated) text files in any common Chinese encoding."""

    Options: ClassVar[type[base.Options]] = CsvOptions
    read_table = staticmethod(csv_table)


class ExcelAdapter(_FileAdapter):
    """Excel .xlsx workbooks (one sheet per source); .xls needs xlrd, which is not installed."""

    Options: ClassVar[type[base.Options]] = ExcelOptions
    read_table = staticmethod(xlsx_table)
