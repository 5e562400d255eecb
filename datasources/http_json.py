"""A department's JSON web API (HTTP GET), mapped to records by JSON paths.

Most departments publish their data as a JSON endpoint: a list of records somewhere in the answer,
one indicator per record ("long") or several ("wide"), often paged, sometimes able to return only
what changed since a time. This adapter asks politely (conditional requests, backoff, Retry-After)
and fails loudly for what concerns the whole fetch (unreachable server, HTTP error, an answer that
is not JSON, pages without end), while a single bad record still becomes a Record that validation
rejects with its reason: a missing field reads "missing $.path" and an unreadable time names the
expected format, so the run log says what was wrong.

The watermark is a JSON string: the newest observed time returned (sent as `since_param` when the
API can filter) plus the ETag / Last-Modified of the last answer (sent back so an unchanged answer
costs a 304 and nothing else).
"""

from __future__ import annotations

import email.utils
import json
import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import httpx
from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from core.records import Record
from core.settings import parse_duration
from core.timeutil import as_utc, utcnow
from datasources import base
from datasources.base import AdapterContext, Batch
from datasources.fields import expand_env, missing_variables
from datasources.jsonpath import JsonPath
from indicators.validation import FUTURE_TOLERANCE, RAW_LIMIT

log = logging.getLogger(__name__)

SNIPPET = 200  # characters of an answer quoted in an error
_EPOCHS = {"epoch_s": 1.0, "epoch_ms": 1000.0}


class HttpJsonError(Exception):
    """A failure of the whole fetch; the run is logged as failed with this message."""


# --- options ------------------------------------------------------------------------------------


def _path(text: str) -> str:
    JsonPath.parse(text)
    return text


def _path_or_constant(text: str) -> str:
    return _path(text) if text.startswith("$") else text


def _time_format(text: str) -> str:
    if text in ("iso", *_EPOCHS) or "%" in text:
        return text
    raise ValueError("expected iso, epoch_s, epoch_ms or a strptime format such as %Y-%m-%d %H:%M:%S")


Duration = Annotated[float, BeforeValidator(parse_duration)]
PathText = Annotated[str, AfterValidator(_path)]
PathOrConstant = Annotated[str, AfterValidator(_path_or_constant)]
TimeFormat = Annotated[str, AfterValidator(_time_format)]


def expand(text: str, where: str) -> str:
    """`text` with each ${VARIABLE} replaced from the environment, so secrets stay out of YAML."""
    try:
        return expand_env(text)
    except ValueError as exc:
        raise HttpJsonError(f"{where}: {exc}") from None


class PagePagination(base.Options):
    """Numbered pages until one is short or empty, or `total_path`'s record count is reached."""

    kind: Literal["page"]
    page_param: str = "page"
    first_page: int = Field(default=1, ge=0)
    size_param: str | None = Field(default="page_size", description="None: not sent (the server's size)")
    size: int = Field(default=100, ge=1, le=100_000, description="records per full page")
    total_path: PathText | None = Field(default=None, description="where the answer gives the record count")


class OffsetPagination(base.Options):
    """offset=0, limit, 2*limit... until a page is short or empty, or `total_path` is reached."""

    kind: Literal["offset"]
    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int = Field(default=100, ge=1, le=100_000)
    total_path: PathText | None = None


class NextLinkPagination(base.Options):
    """Follow the answer's link to the next page (at `next_path`, else the Link header's rel=next)."""

    kind: Literal["next"]
    next_path: PathText | None = None


Pagination = Annotated[PagePagination | OffsetPagination | NextLinkPagination, Field(discriminator="kind")]


class Mapping(base.Options):
    """Where the records are and how each becomes (indicator, entity, observed_at, value).

    `indicator` and `entity` are JSON paths into the record when they start with `$`, else
    constants. Either `indicator` + `value` (one indicator per record) or `fields` (a wide record:
    path of each value -> indicator key).
    """

    records: PathText = Field(default="$[*]", description="the list of records in the answer")
    indicator: PathOrConstant | None = None
    value: PathText | None = None
    fields: dict[PathText, str] = Field(default_factory=dict)
    entity: PathOrConstant
    entity_map: dict[str, str] = Field(
        default_factory=dict, description="the department's ids -> the city's station or region codes"
    )
    observed_at: PathText
    time_format: TimeFormat = Field(default="iso", description="iso, epoch_s, epoch_ms or a strptime format")

    @model_validator(mode="after")
    def _one_form(self) -> Mapping:
        long_form = self.indicator is not None or self.value is not None
        if long_form and self.fields:
            raise ValueError(
                "give either indicator + value (one per record) or fields (wide records), not both"
            )
        if not self.fields and (self.indicator is None or self.value is None):
            raise ValueError("give indicator and value (one per record), or fields (wide records)")
        return self


class Options(base.Options):
    """The department's endpoint, how to ask it, and how to read its answer."""

    url: str
    headers: dict[str, str] = Field(default_factory=dict, description="values may use ${ENV_VARIABLE}")
    params: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="query parameters; values may use ${ENV_VARIABLE}"
    )
    encoding: str | None = Field(default=None, description="force the answer's text encoding, e.g. gbk")
    verify: bool | str = Field(default=True, description="TLS: true, false, or a CA bundle file")
    timeout: Duration = 10.0
    retries: int = Field(default=3, ge=0, le=10, description="retries after the first attempt")
    backoff: Duration = Field(default=1.0, description="first wait between attempts; it doubles")
    max_backoff: Duration = 30.0
    retry_after_max: Duration = Field(
        default=30.0, description="a longer Retry-After ends the run instead (the next run retries)"
    )
    conditional: bool | None = Field(
        default=None, description="send If-None-Match / If-Modified-Since; default: when not paginated"
    )
    since_param: str | None = Field(default=None, description="query parameter for the newest time seen")
    since_format: TimeFormat = "iso"
    pagination: Pagination | None = None
    max_pages: int = Field(default=100, ge=1, le=10_000)
    mapping: Mapping

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// address")
        return url

    @field_validator("headers", "params")
    @classmethod
    def _variables_set(cls, values: dict[str, Any]) -> dict[str, Any]:
        problems = [
            f"{name}: environment variable {variable} is not set"
            for name, value in values.items()
            if isinstance(value, str)
            for variable in missing_variables(value)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return values

    @model_validator(mode="after")
    def _conditional_without_pages(self) -> Options:
        if self.conditional and self.pagination is not None:
            raise ValueError(
                "conditional requests cannot be used with pagination: an unchanged first page "
                "says nothing about the later ones"
            )
        return self


# --- the watermark ------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """What the watermark remembers between runs."""

    newest: datetime | None = None
    etag: str | None = None
    last_modified: str | None = None

    @classmethod
    def load(cls, watermark: str | None) -> State:
        """From our JSON watermark, or a bare ISO time (a backfill's or an operator's `since`)."""
        if not watermark:
            return cls()
        try:
            if not watermark.lstrip().startswith("{"):
                return cls(as_utc(datetime.fromisoformat(watermark)))
            data = json.loads(watermark)
            newest = data.get("newest")
            return cls(
                as_utc(datetime.fromisoformat(newest)) if newest else None,
                data.get("etag"),
                data.get("last_modified"),
            )
        except (ValueError, AttributeError, TypeError) as exc:
            raise HttpJsonError(f"unreadable watermark {watermark[:80]!r}: {exc}") from exc

    def dump(self) -> str | None:
        data = {
            "newest": self.newest.isoformat() if self.newest else None,
            "etag": self.etag,
            "last_modified": self.last_modified,
        }
        kept = {key: value for key, value in data.items() if value is not None}
        return json.dumps(kept, sort_keys=True) if kept else None


# --- times --------------------------------------------------------------------------------------


def read_time(value: Any, time_format: str, zone: ZoneInfo) -> datetime | None:
    """An aware UTC time from a record's field in `time_format`, or None if it is not one.

    Naive times are the city's wall-clock time.
    """
    if isinstance(value, bool):
        return None
    try:
        if time_format in _EPOCHS:
            return datetime.fromtimestamp(float(value) / _EPOCHS[time_format], UTC)
        if time_format == "iso":
            if not isinstance(value, str):
                return None
            return as_utc(datetime.fromisoformat(value.strip().replace("Z", "+00:00")), zone)
        if not isinstance(value, str | int):
            return None
        return as_utc(datetime.strptime(str(value).strip(), time_format), zone)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def format_time(moment: datetime, time_format: str, zone: ZoneInfo) -> str:
    """`moment` as the API expects it in a query: ISO in UTC, epoch numbers, or local strftime."""
    if time_format in _EPOCHS:
        return str(round(moment.timestamp() * _EPOCHS[time_format]))
    if time_format == "iso":
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return moment.astimezone(zone).strftime(time_format)


# --- mapping one record -------------------------------------------------------------------------


class Missing(str):
    """Stands in for an absent or null field: validation rejects it, quoting "missing $.path"."""


@dataclass(frozen=True)
class Pick:
    """A constant, or the first match of a path in the record (`Missing` when absent or null)."""

    constant: str | None = None
    path: JsonPath | None = None

    @classmethod
    def of(cls, text: str) -> Pick:
        return cls(path=JsonPath.parse(text)) if text.startswith("$") else cls(constant=text)

    def read(self, item: Any) -> Any:
        if self.path is None:
            return self.constant
        found = self.path.find(item)
        if not found:
            return Missing(f"missing {self.path}")
        return Missing(f"null at {self.path}") if found[0] is None else found[0]


def _text(value: Any) -> str:
    """A key or code as text: JSON ids are often numbers."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class RecordMap:
    """The compiled mapping, checked against the catalog and the city once, not per record."""

    indicator: Pick | None
    value: Pick | None
    fields: tuple[tuple[Pick, str], ...]
    entity: Pick
    entity_map: dict[str, str]
    observed_at: Pick
    time_format: str
    zone: ZoneInfo

    @classmethod
    def build(cls, mapping: Mapping, context: AdapterContext) -> RecordMap:
        keys = [(f"fields[{path!r}]", key) for path, key in mapping.fields.items()]
        if mapping.indicator is not None and not mapping.indicator.startswith("$"):
            keys.append(("indicator", mapping.indicator))
        unknown = [f"mapping.{where}: {key!r}" for where, key in keys if key not in context.catalog]
        if unknown:
            raise ValueError(f"not in the indicator catalog: {', '.join(unknown)}")
        entities = context.city.entity_codes()
        codes = list(mapping.entity_map.items())
        if not mapping.entity.startswith("$"):
            codes.append(("entity", mapping.entity))
        strangers = [f"{where!r} -> {code!r}" for where, code in codes if code not in entities]
        if strangers:
            raise ValueError(f"mapping: not a station or region code of the city: {', '.join(strangers)}")
        return cls(
            indicator=Pick.of(mapping.indicator) if mapping.indicator is not None else None,
            value=Pick.of(mapping.value) if mapping.value is not None else None,
            fields=tuple((Pick.of(path), key) for path, key in mapping.fields.items()),
            entity=Pick.of(mapping.entity),
            entity_map=dict(mapping.entity_map),
            observed_at=Pick.of(mapping.observed_at),
            time_format=mapping.time_format,
            zone=context.timezone,
        )

    def records(self, item: Any) -> tuple[list[Record], datetime | None]:
        """The record(s) of one item of the answer, and its observed time if readable."""
        raw = json.dumps(item, ensure_ascii=False, separators=(",", ":"))[:RAW_LIMIT]
        entity = _text(self.entity.read(item))
        entity = self.entity_map.get(entity, entity)
        found = self.observed_at.read(item)
        moment = read_time(found, self.time_format, self.zone)
        observed: Any = moment
        if moment is None and not isinstance(found, Missing):
            observed = f"{_text(found)[:40]} (not {self.time_format})"
        elif moment is None:
            observed = found
        if self.fields:
            pairs = [(key, pick.read(item)) for pick, key in self.fields]
        else:
            assert self.indicator is not None and self.value is not None
            pairs = [(_text(self.indicator.read(item)), self.value.read(item))]
        return [Record(key, entity, observed, value, raw) for key, value in pairs], moment


# --- HTTP ---------------------------------------------------------------------------------------


class _RetryableStatus(Exception):
    """A 5xx or 429 answer, worth another attempt after `retry_after` seconds (None: backoff)."""

    def __init__(self, response: httpx.Response, retry_after: float | None):
        super().__init__(response.status_code)
        self.response, self.retry_after = response, retry_after


def retry_after_seconds(header: str | None) -> float | None:
    """Retry-After as seconds from now: either delta-seconds or an HTTP date."""
    if not header or not header.strip():
        return None
    text = header.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, (as_utc(moment) - utcnow()).total_seconds())


def public_url(url: str | httpx.URL) -> str:
    """The address without query or credentials, for error messages (tokens often ride in both)."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def snippet(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return text[:SNIPPET] + ("..." if len(text) > SNIPPET else "")


@dataclass
class Page:
    """One answer of a paged fetch and the items found at the records path."""

    response: httpx.Response
    body: Any = None
    items: list[Any] = field(default_factory=list)


class HttpJsonAdapter:
    """GET a JSON API (paged or not), map its records, remember what was seen."""

    Options: ClassVar[type[base.Options]] = Options
    backfills: ClassVar[bool] = False

    def __init__(self, options: Options, context: AdapterContext) -> None:
        self.options = options
        self.context = context
        self.map = RecordMap.build(options.mapping, context)
        self.records_path = JsonPath.parse(options.mapping.records)
        pagination = options.pagination
        total, link = getattr(pagination, "total_path", None), getattr(pagination, "next_path", None)
        self.total_path = JsonPath.parse(total) if total else None
        self.next_path = JsonPath.parse(link) if link else None
        self.conditional = options.conditional if options.conditional is not None else pagination is None
        self._backoff = wait_exponential(multiplier=options.backoff, max=options.max_backoff)

    def fetch(self, since: str | None, until: datetime) -> Batch:
        """Every record the API returns; a 304 gives nothing and keeps the watermark as it was.

        Records at or before the watermark are kept, not filtered out here: departments publish
        late readings, and storing a reading again only updates it. A time past `until` (a clock
        gone wrong) does not move the watermark, or `since_param` would skip real data after it.
        """
        state = State.load(since)
        records: list[Record] = []
        newest = state.newest
        latest_allowed = as_utc(until) + FUTURE_TOLERANCE
        first: httpx.Response | None = None
        with self._client() as client:
            for page in self._pages(client, self._params(state), self._conditional_headers(state)):
                if page.response.status_code == 304:
                    return Batch([], since)
                first = first or page.response
                for item in page.items:
                    found, moment = self.map.records(item)
                    records.extend(found)
                    if moment is not None and moment <= latest_allowed:
                        newest = max(newest, moment) if newest is not None else moment
        assert first is not None
        remembered = State(
            newest,
            first.headers.get("ETag") if self.conditional else None,
            first.headers.get("Last-Modified") if self.conditional else None,
        )
        return Batch(records, remembered.dump() or since)

    # -- requests --

    def _client(self) -> httpx.Client:
        verify: bool | ssl.SSLContext = self.options.verify
        if isinstance(verify, str):
            verify = ssl.create_default_context(cafile=verify)
        headers = {"Accept": "application/json"}
        headers |= {name: expand(value, f"headers.{name}") for name, value in self.options.headers.items()}
        return httpx.Client(
            headers=headers, timeout=self.options.timeout, verify=verify, follow_redirects=True
        )

    def _params(self, state: State) -> dict[str, Any]:
        params = {
            name: expand(value, f"params.{name}") if isinstance(value, str) else value
            for name, value in self.options.params.items()
        }
        if self.options.since_param and state.newest is not None:
            params[self.options.since_param] = format_time(
                state.newest, self.options.since_format, self.context.timezone
            )
        return params

    def _conditional_headers(self, state: State) -> dict[str, str]:
        if not self.conditional:
            return {}
        headers = {}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        return headers

    def _get(
        self, client: httpx.Client, url: str, params: dict[str, Any] | None, headers: dict[str, str]
    ) -> httpx.Response:
        """One GET with retries on connection errors, 5xx and 429; other 4xx fail at once."""
        where = f"GET {public_url(url)}"
        retrying = Retrying(
            stop=stop_after_attempt(self.options.retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type((httpx.TransportError, _RetryableStatus)),
            reraise=True,
        )
        try:
            return retrying(self._attempt, client, url, params, headers, where)
        except _RetryableStatus as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            response = exc.response
            raise HttpJsonError(
                f"{where}: HTTP {response.status_code} {response.reason_phrase} after {attempts} "
                f"attempt(s): {snippet(response)}"
            ) from None
        except httpx.TimeoutException as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise HttpJsonError(
                f"{where}: no answer within {self.options.timeout:g} s ({type(exc).__name__}, "
                f"{attempts} attempt(s))"
            ) from exc
        except httpx.HTTPError as exc:  # connection errors after the retries; redirect loops, bad gzip
            attempts = retrying.statistics.get("attempt_number", 1)
            raise HttpJsonError(f"{where}: {type(exc).__name__}: {exc} ({attempts} attempt(s))") from exc

    def _attempt(
        self,
        client: httpx.Client,
        url: str,
        params: dict[str, Any] | None,
        headers: dict[str, str],
        where: str,
    ) -> httpx.Response:
        response = client.get(url, params=params, headers=headers)
        status = response.status_code
        if status == 429 or status >= 500:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if wait is not None and wait > self.options.retry_after_max:
                raise HttpJsonError(
                    f"{where}: HTTP {status}; the server asks to retry after {wait:g} s, longer than "
                    f"retry_after_max ({self.options.retry_after_max:g} s); the next run will ask again"
                )
            log.info("%s: HTTP %s, will retry", where, status)
            raise _RetryableStatus(response, wait)
        if status >= 400:
            raise HttpJsonError(
                f"{where}: HTTP {status} {response.reason_phrase} (a client error: not retried): "
                f"{snippet(response)}"
            )
        return response

    def _wait(self, state: RetryCallState) -> float:
        """The server's Retry-After when it gave one, else exponential backoff."""
        problem = state.outcome.exception() if state.outcome is not None else None
        if isinstance(problem, _RetryableStatus) and problem.retry_after is not None:
            return problem.retry_after
        return self._backoff(state)

    # -- pages --

    def _pages(
        self, client: httpx.Client, params: dict[str, Any], conditional: dict[str, str]
    ) -> Iterator[Page]:
        """The answers of one fetch, page after page, at most `max_pages` of them."""
        url, query, headers = self.options.url, params | self._page_params(0), conditional
        seen = {url}
        count = 0
        for index in range(self.options.max_pages):
            response = self._get(client, url, query, headers)
            if response.status_code == 304:
                yield Page(response)
                return
            page = self._read(response)
            count += len(page.items)
            yield page
            following = self._following(page, index, count, params)
            if following is None:
                return
            url, query = following
            if query is None:
                if url in seen:
                    raise HttpJsonError(
                        f"GET {public_url(url)}: the next link leads back to a page already read"
                    )
                seen.add(url)
            headers = {}
        raise HttpJsonError(
            f"GET {public_url(self.options.url)}: still more pages after max_pages={self.options.max_pages}; "
            "raise max_pages, or let the API filter with since_param"
        )

    def _page_params(self, index: int) -> dict[str, Any]:
        pagination = self.options.pagination
        if isinstance(pagination, PagePagination):
            params: dict[str, Any] = {pagination.page_param: pagination.first_page + index}
            if pagination.size_param:
                params[pagination.size_param] = pagination.size
            return params
        if isinstance(pagination, OffsetPagination):
            return {
                pagination.offset_param: index * pagination.limit,
                pagination.limit_param: pagination.limit,
            }
        return {}

    def _following(
        self, page: Page, index: int, count: int, params: dict[str, Any]
    ) -> tuple[str, dict[str, Any] | None] | None:
        """The next request (url, params; None: the url is complete), or None after the last page."""
        pagination = self.options.pagination
        if pagination is None:
            return None
        if isinstance(pagination, NextLinkPagination):
            link = self._next_link(page)
            return (urljoin(str(page.response.url), link), None) if link else None
        size = pagination.size if isinstance(pagination, PagePagination) else pagination.limit
        if len(page.items) < size:
            return None
        if self.total_path is not None and count >= self._total(page):
            return None
        return self.options.url, params | self._page_params(index + 1)

    def _next_link(self, page: Page) -> str | None:
        if self.next_path is None:
            return page.response.links.get("next", {}).get("url") or None
        found = self.next_path.find(page.body)
        return found[0] if found and isinstance(found[0], str) and found[0] else None

    def _total(self, page: Page) -> float:
        assert self.total_path is not None
        found = self.total_path.find(page.body)
        try:
            return float(found[0])
        except (IndexError, TypeError, ValueError):
            raise HttpJsonError(
                f"GET {public_url(page.response.url)}: total_path {self.total_path} is not a number "
                f"in the answer: {snippet(page.response)}"
            ) from None

    def _read(self, response: httpx.Response) -> Page:
        """The answer as JSON and the items at the records path; an answer without it is an error
        (a 200 carrying an error object is common), an empty list is not."""
        if self.options.encoding:
            response.encoding = self.options.encoding
        where = f"GET {public_url(response.url)}"
        try:
            body = json.loads(response.text)
        except ValueError as exc:
            raise HttpJsonError(f"{where}: the answer is not JSON ({exc}): {snippet(response)}") from None
        path = self.records_path
        container = path.parent() if path.ends_in_wildcard else path
        found = container.find(body)
        if not found:
            raise HttpJsonError(f"{where}: no {path} in the answer: {snippet(response)}")
        if path.ends_in_wildcard:
            items = path.find(body)
        else:
            items = found[0] if len(found) == 1 and isinstance(found[0], list) else found
        return Page(response, body, items)
