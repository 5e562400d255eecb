"""A department's own database: one read-only SELECT, run incrementally from a time watermark.

The department keeps its schema; the city maps the query's columns to (indicator, entity,
observed_at, value) in the source's options. The operations centre must never be the reason a
department's data changed, so only a single SELECT/WITH statement is accepted at all, and it runs
in a transaction that is always rolled back, with the session set read-only where the dialect
allows it (PostgreSQL, SQLite).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import NullPool

from core.settings import ZoneName, parse_duration
from core.timeutil import as_utc
from datasources import base
from datasources.base import AdapterContext, Batch, Record
from datasources.fields import expand_env, map_code, time_text
from indicators.validation import RAW_LIMIT, parse_time

log = logging.getLogger(__name__)

PARAMS = frozenset({"since", "until"})
PARAM_FORMATS = ("auto", "datetime", "naive", "epoch", "epoch_ms")
SQLITE_TEXT_TIME = "%Y-%m-%d %H:%M:%S"


# --- the read-only check ------------------------------------------------------------------------

# Statements that write, hidden inside a SELECT or WITH: data-modifying CTEs, SELECT ... INTO
# (creates a table), FOR UPDATE (locks the department's rows).
_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "INTO"})


def _lexer(backslash_escapes: bool) -> re.Pattern[str]:
    string = r"'(?:[^'\\]|\\.|'')*'" if backslash_escapes else r"'(?:[^']|'')*'"
    return re.compile(
        r"(?P<skip>\s+|--[^\n]*|/\*.*?\*/"  # space and comments
        rf"|{string}"
        r'|"(?:[^"]|"")*"|`[^`]*`'  # quoted identifiers
        r"|\$(?P<tag>(?:[^\W\d]\w*)?)\$.*?\$(?P=tag)\$)"  # PostgreSQL dollar quoting
        r"|(?P<word>[^\W\d]\w*)|(?P<other>.)",
        re.DOTALL,
    )


_LEXERS = (_lexer(False), _lexer(True))


def _significant(sql: str, lexer: re.Pattern[str]) -> Iterator[str]:
    """Keywords (upper-cased) and punctuation, without comments, literals and quoted names."""
    for match in lexer.finditer(sql):
        if match.group("word"):
            yield match.group("word").upper()
        elif match.group("other"):
            yield match.group("other")


def check_read_only(sql: str) -> None:
    """Raise ValueError unless `sql` is one SELECT or WITH statement that writes nothing.

    The text is read both with standard quoting and with backslash escapes (MySQL, PostgreSQL
    E-strings), and must pass both, so no dialect can see a statement the check did not.
    """
    for lexer in _LEXERS:
        tokens = list(_significant(sql, lexer))
        while tokens and tokens[-1] == ";":
            tokens.pop()
        if ";" in tokens:
            raise ValueError("must be a single statement (found ';' followed by more SQL)")
        first = next((token for token in tokens if token != "("), None)
        if first is None:
            raise ValueError("the query is empty")
        if first not in ("SELECT", "WITH"):
            raise ValueError(f"must be a read-only SELECT or WITH statement, not {first}")
        writes = sorted(_WRITES.intersection(tokens))
        if writes:
            raise ValueError(
                f'a read-only query must not contain {writes[0]} (if it is a column name, quote it: "name")'
            )


# --- options ------------------------------------------------------------------------------------


class Options(base.Options):
    """Where the department's database is, what to ask it, and how its columns map to readings."""

    url: str = Field(
        repr=False,
        description="SQLAlchemy URL; ${NAME} is replaced by environment variable NAME (passwords)",
    )
    query: str = Field(description="one SELECT/WITH statement using :since (and optionally :until)")
    observed_at_column: str
    entity_column: str | None = None
    entity: str | None = Field(default=None, description="a constant entity code for every row")
    indicator_column: str | None = None
    indicator: str | None = Field(default=None, description="a constant indicator key for every row")
    value_column: str | None = None
    values: dict[str, str] | None = Field(
        default=None, description="wide rows: value column -> indicator key (instead of value_column)"
    )
    entity_map: dict[str, str] = Field(default_factory=dict, description="department code -> city code")
    indicator_map: dict[str, str] = Field(default_factory=dict, description="department name -> key")
    skip_nulls: bool = Field(default=False, description="NULL values are absent readings, not errors")
    timezone: ZoneName | None = Field(default=None, description="zone of naive times (default: the city's)")
    param_format: str = Field(
        default="auto",
        description="how :since/:until are bound: auto, datetime, naive, epoch, epoch_ms or a strftime "
        "pattern (text in `timezone`)",
    )
    first_window: float = Field(default=86400.0, description="history read by a run without a watermark")
    start: datetime | None = Field(default=None, description="first run reads from here instead")
    timeout: float = Field(default=30.0, description="seconds for connecting and for the query")
    max_rows: int = Field(default=100_000, ge=1, le=10_000_000)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        url = expand_env(value)
        try:
            make_url(url).get_dialect()
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:
            raise ValueError(f"not a usable SQLAlchemy URL: {exc}") from None
        return url

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        check_read_only(value)
        params = set(text(value).compile().params)
        if "since" not in params:
            raise ValueError("must use the bind parameter :since (e.g. WHERE t > :since)")
        unknown = sorted(params - PARAMS)
        if unknown:
            raise ValueError(f"unknown bind parameter :{unknown[0]} (allowed: :since, :until)")
        return value

    @field_validator("param_format")
    @classmethod
    def _param_format(cls, value: str) -> str:
        if value not in PARAM_FORMATS and "%" not in value:
            raise ValueError(f"expected one of {', '.join(PARAM_FORMATS)} or a strftime pattern")
        return value

    @field_validator("first_window", "timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _mapping(self) -> Options:
        if (self.entity_column is None) == (self.entity is None):
            raise ValueError("set exactly one of entity_column or entity")
        if self.values is not None:
            if not self.values:
                raise ValueError("values must map at least one column to an indicator")
            if self.value_column or self.indicator_column or self.indicator:
                raise ValueError("values (wide rows) excludes value_column, indicator_column and indicator")
            return self
        if self.value_column is None:
            raise ValueError("set value_column (one reading per row) or values (several per row)")
        if (self.indicator_column is None) == (self.indicator is None):
            raise ValueError("set exactly one of indicator_column or indicator")
        return self


# --- reading rows -------------------------------------------------------------------------------


def read_time(value: object, zone: ZoneInfo) -> datetime | None:
    """The UTC time of a cell, or None if it is no time (validation then rejects the record)."""
    try:
        return parse_time(value, zone)
    except Exception:  # parse_time's "unreadable" error is private; out-of-range epochs raise others
        return None


def _raw(row: Mapping[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, default=str)[:RAW_LIMIT]


@dataclass(frozen=True)
class Columns:
    """The options' column names resolved against a result's actual columns."""

    observed_at: str
    entity: str | None
    indicator: str | None
    value: str | None
    values: dict[str, str]

    @classmethod
    def resolve(cls, options: Options, present: Sequence[str]) -> Columns:
        """Exact names first, then a unique case-insensitive match (PostgreSQL folds to lower
        case, Oracle to upper); a missing column fails the fetch, naming the option."""
        lower: dict[str, list[str]] = {}
        for name in present:
            lower.setdefault(name.lower(), []).append(name)

        def find(option: str, name: str) -> str:
            if name in present:
                return name
            matches = lower.get(name.lower(), [])
            if len(matches) == 1:
                return matches[0]
            raise LookupError(
                f"{option}: column {name!r} is not in the query's result (columns: {', '.join(present)})"
            )

        def optional(option: str, name: str | None) -> str | None:
            return None if name is None else find(option, name)

        return cls(
            observed_at=find("observed_at_column", options.observed_at_column),
            entity=optional("entity_column", options.entity_column),
            indicator=optional("indicator_column", options.indicator_column),
            value=optional("value_column", options.value_column),
            values={find(f"values.{c}", c): key for c, key in (options.values or {}).items()},
        )


class SqlAdapter:
    """Reads a department's table or view with the city's own SELECT, rows newer than the watermark.

    Replaying any window works: the query gets :since and, if it uses it, :until; a query without
    :until returns everything after :since, which is stored idempotently and never moves the
    watermark past `until`.
    """

    Options: ClassVar[type[base.Options]] = Options
    backfills: ClassVar[bool] = True

    def __init__(self, options: Options, context: AdapterContext) -> None:
        self.options = options
        self.context = context
        self.zone = ZoneInfo(options.timezone) if options.timezone else context.timezone
        self.statement = text(options.query)
        self.uses_until = "until" in self.statement.compile().params
        self.engine = self._engine()
        fmt = options.param_format
        self.param_format = (
            (SQLITE_TEXT_TIME if self.dialect == "sqlite" else "datetime") if fmt == "auto" else fmt
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _engine(self) -> Engine:
        """A new connection per run (NullPool): runs are minutes apart, and idle connections
        through department firewalls go stale."""
        url = make_url(self.options.url)
        connect_args: dict[str, Any] = {}
        if url.get_backend_name() == "postgresql":
            connect_args["connect_timeout"] = max(2, math.ceil(self.options.timeout))
        engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_query_only)
        return engine

    def close(self) -> None:
        self.engine.dispose()

    def fetch(self, since: str | None, until: datetime) -> Batch:
        """Rows after `since` (a run without one starts at `start` or `first_window` ago)."""
        until = as_utc(until)
        start = self._since(since, until)
        params = {"since": self._param(start)}
        if self.uses_until:
            params["until"] = self._param(until)
        names, rows = self._query(params)
        columns = Columns.resolve(self.options, names)
        times = [read_time(row[columns.observed_at], self.zone) for row in rows]
        if len(rows) > self.options.max_rows:
            rows, times = self._cap(rows, times)
        records = [
            record for row, at in zip(rows, times, strict=True) for record in self._records(row, at, columns)
        ]
        seen = [at for at in times if at is not None and at <= until]
        return Batch(records, max([start, *seen]).isoformat())

    def _since(self, since: str | None, until: datetime) -> datetime:
        if since is not None:
            return as_utc(datetime.fromisoformat(since))
        if self.options.start is not None:
            return as_utc(self.options.start, self.zone)
        return until - timedelta(seconds=self.options.first_window)

    def _param(self, moment: datetime) -> object:
        """A time as the department's column can compare it (naive and text times are in `zone`)."""
        fmt = self.param_format
        if fmt == "datetime":
            return moment
        if fmt == "epoch":
            return moment.timestamp()
        if fmt == "epoch_ms":
            return math.floor(moment.timestamp() * 1000)
        local = moment.astimezone(self.zone)
        return local.replace(tzinfo=None) if fmt == "naive" else local.strftime(fmt)

    def _query(self, params: dict[str, object]) -> tuple[list[str], list[dict[str, Any]]]:
        """Run the query read-only and roll back; a query past the timeout fails the fetch."""
        self._check_sqlite_file()
        deadline = time.monotonic() + self.options.timeout
        try:
            with self.engine.connect() as connection:
                try:
                    self._read_only(connection, deadline)
                    result = connection.execution_options(stream_results=True).execute(self.statement, params)
                    names = list(result.keys())
                    rows = [
                        dict(zip(names, row, strict=True))
                        for row in result.fetchmany(self.options.max_rows + 1)
                    ]
                    result.close()
                finally:
                    connection.rollback()
        except DBAPIError as exc:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timeout: the query ran longer than {self.options.timeout:g} s") from exc
            raise
        return names, rows

    def _read_only(self, connection: Connection, deadline: float) -> None:
        """Make the session refuse writes and give up at the deadline, where the dialect can."""
        if self.dialect == "postgresql":
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            milliseconds = max(1, int((deadline - time.monotonic()) * 1000))
            connection.execute(
                text(
                    "SELECT set_config('statement_timeout', :ms, true), set_config('TimeZone', :zone, true)"
                ),
                {"ms": str(milliseconds), "zone": self.zone.key},
            )
        elif self.dialect == "sqlite":
            raw = connection.connection.driver_connection
            raw.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)

    def _check_sqlite_file(self) -> None:
        """SQLite would create a missing file and then report an empty table; say it is missing."""
        if self.dialect != "sqlite":
            return
        database = make_url(self.options.url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            if not os.path.isfile(database):
                raise FileNotFoundError(f"url: the SQLite file {database!r} does not exist")

    def _cap(
        self, rows: list[dict[str, Any]], times: list[datetime | None]
    ) -> tuple[list[dict[str, Any]], list[datetime | None]]:
        """At most max_rows rows, cut before the first time not fully read, so the next run
        (from the watermark) continues exactly there; the query must ORDER BY its time column."""
        limit = self.options.max_rows
        cut = times[limit]
        kept = [
            (row, at)
            for row, at in zip(rows[:limit], times[:limit], strict=True)
            if cut is None or at is None or at < cut
        ]
        if cut is not None and not any(at is not None for _, at in kept):
            raise RuntimeError(
                f"max_rows: more than {limit} rows observed at {cut.isoformat()}; raise max_rows"
            )
        log.warning(
            "source %s: the query returned more than max_rows=%d rows; this run reads %d, the next "
            "continues from the newest time read",
            self.context.source_id,
            limit,
            len(kept),
        )
        return [row for row, _ in kept], [at for _, at in kept]

    def _records(self, row: dict[str, Any], at: datetime | None, columns: Columns) -> Iterator[Record]:
        """The readings of one row; a cell that cannot be read goes through for validation to reject."""
        options = self.options
        observed_at = at if at is not None else time_text(row[columns.observed_at])
        entity = map_code(row[columns.entity] if columns.entity else options.entity, options.entity_map)
        raw = _raw(row)
        if columns.values:
            pairs = [(key, row[column]) for column, key in columns.values.items()]
        else:
            indicator = row[columns.indicator] if columns.indicator else options.indicator
            pairs = [(map_code(indicator, options.indicator_map), row[columns.value])]  # type: ignore[index]
        for indicator, value in pairs:
            if value is None and options.skip_nulls:
                continue
            yield Record(indicator, entity, observed_at, value, raw)


def _sqlite_query_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA query_only = ON")
