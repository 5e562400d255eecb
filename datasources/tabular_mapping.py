"""How a table's rows become records: the options shared by the csv and excel adapters, the
names a department uses for stations and indicators, and the long and wide layouts.

Long: one row per reading (time, entity, indicator, value columns). Wide: one row per time and
entity with a column per indicator (`values`), or per time and indicator with a column per
station or region (`entities`). A constant `entity` or `indicator` serves files that hold one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from core.records import Record
from core.settings import ZoneName, parse_duration
from datasources import base
from datasources.base import AdapterContext
from datasources.tabular_text import (
    EPOCH_FORMATS,
    canonical_encoding,
    cell_text,
    is_blank,
    read_number,
    read_timestamp,
)


class TabularOptions(base.Options):
    """Where the file is and how its columns map to readings (shared by csv and excel)."""

    path: str | None = Field(default=None, description="a file, or a folder whose new files are read")
    url: str | None = Field(default=None, description="an http(s) address of the file")
    pattern: str = Field(default="*", description="folder: file names to read (glob, any case)")
    recursive: bool = Field(default=False, description="folder: also read files in subfolders")
    timeout: float = Field(default=30.0, description="url: seconds to connect and to download")
    header_row: int = Field(default=1, ge=1, description="the line (row) number holding the column names")
    observed_at_column: str
    observed_at_format: list[str] = Field(
        default_factory=list,
        description="strptime patterns tried before ISO-8601 and the Chinese forms; epoch, epoch_ms",
    )
    timezone: ZoneName | None = Field(default=None, description="zone of naive times (default: the city's)")
    entity_column: str | None = None
    entity: str | None = Field(default=None, description="the one station or region of every row")
    indicator_column: str | None = None
    indicator: str | None = Field(default=None, description="the one indicator of every row")
    value_column: str | None = Field(default=None, description="long layout: the reading's column")
    values: dict[str, str] | None = Field(
        default=None, description="wide layout: column -> indicator (key or catalog name)"
    )
    entities: dict[str, str] | None = Field(
        default=None, description="wide layout: column -> station or region (code or name)"
    )
    entity_map: dict[str, str] = Field(
        default_factory=dict, description="the department's station/region names or codes -> city code"
    )
    indicator_map: dict[str, str] = Field(
        default_factory=dict, description="the department's indicator names -> indicator key"
    )
    missing: list[str] = Field(
        default_factory=list, description="cell texts meaning 'no reading' (e.g. '—'): no record"
    )

    @field_validator("observed_at_format", mode="before")
    @classmethod
    def _formats(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("observed_at_format")
    @classmethod
    def _format_patterns(cls, value: list[str]) -> list[str]:
        for fmt in value:
            if fmt not in EPOCH_FORMATS and "%" not in fmt:
                raise ValueError(f"{fmt!r} is neither a strptime pattern (%Y-%m-%d %H:%M) nor epoch/epoch_ms")
        return value

    @field_validator("values", "entities", mode="before")
    @classmethod
    def _columns(cls, value: object) -> object:
        """A list names columns whose header is itself the indicator or entity."""
        if isinstance(value, list):
            return {str(column): str(column) for column in value}
        return value

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// address")
        return value

    @model_validator(mode="after")
    def _mapping(self) -> TabularOptions:
        if (self.path is None) == (self.url is None):
            raise ValueError("set exactly one of path (a file or folder) or url")
        layouts = [name for name in ("value_column", "values", "entities") if getattr(self, name) is not None]
        if len(layouts) != 1:
            raise ValueError(
                "set exactly one of value_column (a reading per row), values (a column per indicator) "
                "or entities (a column per station or region)"
            )
        if self.values is not None or self.entities is not None:
            if not (self.values or self.entities):
                raise ValueError(f"{layouts[0]} must name at least one column")
        _one_of(self, "entity_column", "entity", forbidden=self.entities is not None, by="entities")
        _one_of(self, "indicator_column", "indicator", forbidden=self.values is not None, by="values")
        return self


def _one_of(options: TabularOptions, column: str, constant: str, forbidden: bool, by: str) -> None:
    given = [name for name in (column, constant) if getattr(options, name) is not None]
    if forbidden and given:
        raise ValueError(f"{given[0]} cannot be combined with {by} (the columns name them)")
    if not forbidden and len(given) != 1:
        raise ValueError(f"set exactly one of {column} or {constant}")


class CsvOptions(TabularOptions):
    pattern: str = Field(default="*.csv", description="folder: file names to read (glob, any case)")
    encoding: str | None = Field(default=None, description="the file's encoding (default: detected)")
    delimiter: str | None = Field(
        default=None, min_length=1, max_length=1, description="default: the most frequent of , tab ; |"
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                canonical_encoding(value)
            except LookupError:
                raise ValueError(f"unknown encoding {value!r} (e.g. utf-8, gb18030)") from None
        return value


class ExcelOptions(TabularOptions):
    pattern: str = Field(default="*.xlsx", description="folder: file names to read (glob, any case)")
    sheet: str | int = Field(default=0, description="the sheet's name, or its position (0 = first)")


# --- names ----------------------------------------------------------------------------------------


def fold(text: str) -> str:
    """The form names are compared in: NFKC, single spaces, case-folded."""
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


class Lookup:
    """A department's identifier -> the city's code: the explicit map first, then the codes
    themselves, then the zh and en names of exactly one thing (a shared name resolves nothing)."""

    def __init__(self, codes: Iterable[str], names: Iterable[tuple[str, str]], explicit: Mapping[str, str]):
        self.codes = {fold(code): code for code in codes}
        by_name: dict[str, set[str]] = {}
        for code, name in names:
            by_name.setdefault(fold(name), set()).add(code)
        self.names = {name: next(iter(codes)) for name, codes in by_name.items() if len(codes) == 1}
        self.explicit = {fold(source): target for source, target in explicit.items()}

    def __call__(self, identifier: object) -> str | None:
        key = fold(cell_text(identifier))
        if not key:
            return None
        return self.explicit.get(key) or self.codes.get(key) or self.names.get(key)

    def known(self, code: str) -> bool:
        """Whether `code` is exactly one of the codes (a map's target must be spelled right)."""
        return self.codes.get(fold(code)) == code


def entity_lookup(context: AdapterContext, entity_map: Mapping[str, str]) -> Lookup:
    city = context.city
    things = [*city.stations, *city.regions]
    names = [(t.code, name) for t in things for name in (t.name.zh, t.name.en)]
    return Lookup([t.code for t in things], names, entity_map)


def indicator_lookup(context: AdapterContext, indicator_map: Mapping[str, str]) -> Lookup:
    catalog = context.catalog
    names = [(i.key, name) for i in catalog for name in (i.name.zh, i.name.en)]
    return Lookup(catalog.keys(), names, indicator_map)


# --- tables -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of a file (or row of a sheet) as read: its number, cells and the source's text."""

    number: int
    cells: Sequence[Any]
    text: str


@dataclass(frozen=True)
class Table:
    """A file's rows under its header; `name` (file, sheet) prefixes each record's raw text."""

    name: str
    header: Sequence[str]
    rows: Sequence[Row]


@dataclass(frozen=True)
class _Columns:
    observed_at: int
    entity: int | None
    indicator: int | None
    value: int | None
    wide: list[tuple[int, str, str]]  # (index, header, indicator key or entity code)


class Mapper:
    """Turns a table's rows into records; a cell it cannot read goes through for validation to
    reject, naming the file and line, so no row disappears unnoticed."""

    def __init__(self, options: TabularOptions, context: AdapterContext):
        self.options = options
        self.zone = ZoneInfo(options.timezone) if options.timezone else context.timezone
        self.formats = tuple(options.observed_at_format)
        self.missing = frozenset(options.missing)
        self.entity_of = entity_lookup(context, options.entity_map)
        self.indicator_of = indicator_lookup(context, options.indicator_map)
        self._check_targets()
        self.entity = self._constant("entity", options.entity, self.entity_of)
        self.indicator = self._constant("indicator", options.indicator, self.indicator_of)
        self.wide = self._wide_targets()

    def _check_targets(self) -> None:
        """Map values must be the city's codes and the catalog's keys: a typo is a config error."""
        for option, lookup, what in (
            ("entity_map", self.entity_of, "a station or region code of the city"),
            ("indicator_map", self.indicator_of, "an indicator key of the catalog"),
        ):
            for source, target in getattr(self.options, option).items():
                if not lookup.known(target):
                    raise ValueError(f"{option}.{source}: {target!r} is not {what}")

    @staticmethod
    def _constant(option: str, value: str | None, lookup: Lookup) -> str | None:
        if value is None:
            return None
        code = lookup(value)
        if code is None:
            raise ValueError(f"{option}: {value!r} is no known (or an ambiguous) {option} name or code")
        return code

    def _wide_targets(self) -> dict[str, str]:
        if self.options.values:
            option, lookup, columns = "values", self.indicator_of, self.options.values
        else:
            option, lookup, columns = "entities", self.entity_of, self.options.entities or {}
        targets = {}
        for column, target in columns.items():
            code = lookup(target)
            if code is None:
                raise ValueError(f"{option}.{column}: {target!r} is no known (or an ambiguous) name or code")
            targets[column] = code
        return targets

    def records(self, table: Table) -> list[Record]:
        columns = self._columns(table)
        found: list[Record] = []
        for row in table.rows:
            if all(is_blank(cell) for cell in row.cells):
                continue
            found.extend(self._row(table.name, row, columns))
        return found

    def _columns(self, table: Table) -> _Columns:
        """Header names -> positions; a column the options name but the header lacks fails the file."""
        header = [str(cell).strip() for cell in table.header]
        positions: dict[str, int] = {}
        for index, name in enumerate(header):
            positions.setdefault(name, index)

        def find(option: str, name: str) -> int:
            if name.strip() not in positions:
                shown = ", ".join(repr(h) for h in header if h) or "none"
                raise LookupError(
                    f"{table.name}: {option}: no column {name!r} on line {self.options.header_row} "
                    f"(columns: {shown})"
                )
            return positions[name.strip()]

        def optional(option: str) -> int | None:
            name = getattr(self.options, option)
            return None if name is None else find(option, name)

        option = "values" if self.options.values else "entities"
        return _Columns(
            observed_at=find("observed_at_column", self.options.observed_at_column),
            entity=optional("entity_column"),
            indicator=optional("indicator_column"),
            value=optional("value_column"),
            wide=[(find(f"{option}.{c}", c), c, target) for c, target in self.wide.items()],
        )

    def _row(self, name: str, row: Row, columns: _Columns) -> Iterator[Record]:
        time_cell = _cell(row, columns.observed_at)
        observed = read_timestamp(time_cell, self.zone, self.formats)
        observed_at = observed if observed is not None else cell_text(time_cell)
        entity = self.entity or _resolved(self.entity_of, _cell(row, columns.entity))
        indicator = self.indicator or _resolved(self.indicator_of, _cell(row, columns.indicator))
        if columns.value is not None:
            cell = _cell(row, columns.value)
            if not self._missing(cell, long=True):
                raw = f"{name}:{row.number}: {row.text}"
                yield Record(indicator, entity, observed_at, _number(cell), raw)
            return
        by_entity = self.options.entities is not None
        for index, header, target in columns.wide:
            cell = _cell(row, index)
            if self._missing(cell, long=False):
                continue
            raw = f"{name}:{row.number} [{header}]: {row.text}"
            if by_entity:
                yield Record(indicator, target, observed_at, _number(cell), raw)
            else:
                yield Record(target, entity, observed_at, _number(cell), raw)

    def _missing(self, cell: object, long: bool) -> bool:
        """A cell that holds no reading: a listed marker, or blank in a wide table (a blank value
        of a long row is an error, since the row exists only to carry it)."""
        text = cell_text(cell).strip()
        return text in self.missing or (not long and not text)


def _cell(row: Row, index: int | None) -> Any:
    if index is None or index >= len(row.cells):
        return None
    return row.cells[index]


def _resolved(lookup: Lookup, cell: object) -> str:
    """The city's code, else the cell's own text for validation to reject as unknown."""
    return lookup(cell) or cell_text(cell).strip()


def _number(cell: object) -> object:
    number = read_number(cell)
    if number is not None:
        return number
    return cell if isinstance(cell, bool) else cell_text(cell)
