"""The http_json adapter against a real HTTP server on 127.0.0.1 that each test scripts."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from core.city import load_city
from datasources.base import AdapterContext
from datasources.http_json import (
    HttpJsonAdapter,
    HttpJsonError,
    Options,
    State,
    format_time,
    read_time,
    retry_after_seconds,
)
from datasources.jsonpath import JsonPath, JsonPathError
from indicators.catalog import load_catalog
from indicators.validation import Validator

REPO = Path(__file__).resolve().parents[2]
ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime.now(UTC).replace(microsecond=0)
AIR = ["1188A", "1189A", "1190A", "1191A", "1192A"]


# --- the scripted server ------------------------------------------------------------------------


@dataclass
class Seen:
    """One request as the server received it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        parts = urlsplit(self.path)
        seen = Seen(
            parts.path,
            {key: values[-1] for key, values in parse_qs(parts.query).items()},
            {key.lower(): value for key, value in self.headers.items()},
        )
        self.server.seen.append(seen)
        reply = self.server.respond(seen)
        time.sleep(reply.delay)
        body = reply.body if isinstance(reply.body, bytes) else b""
        if isinstance(reply.body, str):
            body = reply.body.encode()
        elif reply.body is not None and not isinstance(reply.body, bytes):
            body = json.dumps(reply.body, ensure_ascii=False).encode()
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            if reply.body is not None and "Content-Type" not in reply.headers:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the timeout tests)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's signature
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[Seen] = []
        self.respond: Callable[[Seen], Reply] = lambda seen: Reply(404, {"error": "not scripted"})

    def url(self, path: str = "/api") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def script(self, *replies: Reply) -> None:
        """Answer with these replies in turn, repeating the last."""
        queue = list(replies)
        self.respond = lambda seen: queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture
def server():
    httpd = Server()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def context() -> AdapterContext:
    city = load_city(REPO / "assets/geo/wuxi_districts.geojson", REPO / "config/cities/wuxi/stations.csv")
    return AdapterContext(city, load_catalog(), ZONE, "dept-air")


@pytest.fixture(scope="module")
def validator(context) -> Validator:
    return Validator(context.catalog, context.city.entity_codes(), ZONE)


LONG = {"records": "$.data.items[*]", "indicator": "env.aqi", "entity": "$.station", "observed_at": "$.time"}
LONG_VALUE = LONG | {"value": "$.aqi"}


def make(context: AdapterContext, url: str, **options: Any) -> HttpJsonAdapter:
    settings = {"url": url, "mapping": LONG_VALUE, "backoff": 0.01, "timeout": 5} | options
    return HttpJsonAdapter(Options.model_validate(settings), context)


def aqi_items(count: int, start: int = 0) -> list[dict[str, Any]]:
    """`count` AQI readings of the demo city's air stations, one minute apart, in the past."""
    return [
        {
            "station": AIR[i % len(AIR)],
            "time": (NOW - timedelta(minutes=1000 - i)).isoformat(),
            "aqi": 40 + i % 50,
        }
        for i in range(start, start + count)
    ]


def wrapped(items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"code": 0, "data": {"items": items, **extra}}


# --- requests, mapping and records --------------------------------------------------------------


def test_headers_params_and_environment_variables_reach_the_server(server, context, monkeypatch):
    monkeypatch.setenv("DEPT_TOKEN", "s3cret")
    server.script(Reply(body=wrapped(aqi_items(3))))
    adapter = make(
        context,
        server.url("/open/aqi"),
        headers={"Authorization": "Bearer ${DEPT_TOKEN}", "X-Client": "citybrain"},
        params={"city": "wuxi", "key": "${DEPT_TOKEN}", "hourly": True},
    )
    batch = adapter.fetch(None, NOW)
    (request,) = server.seen
    assert request.path == "/open/aqi"
    assert request.query == {"city": "wuxi", "key": "s3cret", "hourly": "true"}
    assert request.headers["authorization"] == "Bearer s3cret"
    assert request.headers["x-client"] == "citybrain"
    assert request.headers["accept"] == "application/json"
    assert [(r.indicator, r.entity, r.value) for r in batch.records] == [
        ("env.aqi", "1188A", 40),
        ("env.aqi", "1189A", 41),
        ("env.aqi", "1190A", 42),
    ]
    assert batch.records[0].observed_at == NOW - timedelta(minutes=1000)
    assert json.loads(batch.records[0].raw) == aqi_items(1)[0]


def test_a_missing_environment_variable_is_a_config_error_naming_the_key(server, context, monkeypatch):
    monkeypatch.delenv("DEPT_TOKEN", raising=False)
    options = {
        "url": server.url(),
        "headers": {"Authorization": "Bearer ${DEPT_TOKEN}"},
        "mapping": LONG_VALUE,
    }
    with pytest.raises(ValidationError, match="Authorization: environment variable DEPT_TOKEN is not set"):
        Options.model_validate(options)
    monkeypatch.setenv("DEPT_TOKEN", "x")
    adapter = HttpJsonAdapter(Options.model_validate(options), context)
    monkeypatch.delenv("DEPT_TOKEN")
    with pytest.raises(HttpJsonError, match="headers.Authorization: environment variable DEPT_TOKEN"):
        adapter.fetch(None, NOW)
    assert server.seen == []


def test_config_errors_name_the_key(context):
    base = {"url": "http://127.0.0.1:9/api", "mapping": LONG_VALUE}
    with pytest.raises(ValidationError, match="http:// or https://"):
        Options.model_validate(base | {"url": "ftp://dept/api"})
    with pytest.raises(ValidationError, match="recursive descent"):
        Options.model_validate(base | {"mapping": LONG | {"value": "$..aqi"}})
    with pytest.raises(ValidationError, match="either indicator"):
        Options.model_validate(base | {"mapping": LONG_VALUE | {"fields": {"$.pm25": "env.pm25"}}})
    with pytest.raises(ValidationError, match="strptime"):
        Options.model_validate(base | {"mapping": LONG_VALUE | {"time_format": "unix"}})
    with pytest.raises(ValidationError, match="conditional requests cannot be used with pagination"):
        Options.model_validate(base | {"conditional": True, "pagination": {"kind": "page"}})
    with pytest.raises(ValueError, match="'env.aqii'"):
        HttpJsonAdapter(
            Options.model_validate(base | {"mapping": LONG_VALUE | {"indicator": "env.aqii"}}), context
        )
    mapping = LONG_VALUE | {"entity_map": {"77": "NOT-A-STATION"}}
    with pytest.raises(ValueError, match="NOT-A-STATION"):
        HttpJsonAdapter(Options.model_validate(base | {"mapping": mapping}), context)


def test_wide_records_entity_map_and_indicator_paths(server, context):
    at = (NOW - timedelta(hours=1)).replace(tzinfo=None).isoformat()  # naive: the city's time
    server.script(Reply(body=[{"site": 101, "t": at, "aqi": 55, "pm": {"2.5": "31"}}]))
    wide = {
        "entity": "$.site",
        "entity_map": {"101": "1192A"},
        "observed_at": "$.t",
        "fields": {"$.aqi": "env.aqi", "$.pm['2.5']": "env.pm25"},
    }
    batch = make(context, server.url(), mapping=wide).fetch(None, NOW)
    assert [(r.indicator, r.entity, r.value) for r in batch.records] == [
        ("env.aqi", "1192A", 55),
        ("env.pm25", "1192A", "31"),
    ]
    expected = (NOW - timedelta(hours=1)).replace(tzinfo=None).replace(tzinfo=ZONE).astimezone(UTC)
    assert {r.observed_at for r in batch.records} == {expected}

    server.script(Reply(body={"rows": [{"k": "env.no2", "code": "1193A", "ts": at, "v": 12.5}]}))
    by_path = {
        "records": "$.rows",
        "indicator": "$.k",
        "entity": "$.code",
        "observed_at": "$.ts",
        "value": "$.v",
    }
    (record,) = make(context, server.url(), mapping=by_path).fetch(None, NOW).records
    assert (record.indicator, record.entity, record.value) == ("env.no2", "1193A", 12.5)


def test_bad_records_become_records_the_validator_rejects_with_a_reason(server, context, validator):
    at = (NOW - timedelta(minutes=5)).isoformat()
    items = [
        {"station": "1188A", "time": at, "aqi": 61},
        {"station": "1189A", "time": at},
        {"time": at, "aqi": 50},
        {"station": "1190A", "time": at, "aqi": None},
        {"station": "1191A", "time": "yesterday", "aqi": 50},
        {"station": "1192A", "aqi": 50},
        {"station": "1193A", "time": at, "aqi": "n/a"},
        {"station": "9999Z", "time": at, "aqi": 50},
        {"station": "1194A", "time": at, "aqi": 900},
        ["not", "an", "object"],
        {"station": "1195A", "time": at, "aqi": 70, "note": "x" * 5000},
    ]
    server.script(Reply(body=wrapped(items)))
    batch = make(context, server.url()).fetch(None, NOW)
    assert len(batch.records) == len(items)
    accepted, rejected = validator.validate(batch.records)
    assert sorted((r.entity, r.value) for r in accepted) == [("1188A", 61.0), ("1195A", 70.0)]
    reasons = [(r.field, r.reason) for r in rejected]
    assert reasons == [
        ("value", "not a number: 'missing $.aqi'"),
        ("entity", "unknown station or region 'missing $.station'"),
        ("value", "not a number: 'null at $.aqi'"),
        ("observed_at", "unreadable timestamp 'yesterday (not iso)'"),
        ("observed_at", "unreadable timestamp 'missing $.time'"),
        ("value", "not a number: 'n/a'"),
        ("entity", "unknown station or region '9999Z'"),
        ("value", "900 is outside the physical bounds [0, 500] of env.aqi"),
        ("entity", "unknown station or region 'missing $.station'"),
    ]
    assert json.loads(rejected[0].raw) == items[1]
    assert rejected[-1].raw == '["not","an","object"]'
    assert len(batch.records[-1].raw) == 2000  # truncated like every raw text in quarantine


def test_an_answer_without_the_records_path_or_not_json_fails_the_fetch(server, context):
    server.script(Reply(body={"code": 500, "msg": "数据库维护中"}))
    with pytest.raises(HttpJsonError, match=r"no \$\.data\.items\[\*\] in the answer: .*数据库维护中"):
        make(context, server.url()).fetch(None, NOW)
    server.script(Reply(body="<html>login required</html>", headers={"Content-Type": "text/html"}))
    with pytest.raises(HttpJsonError, match="not JSON.*login required"):
        make(context, server.url()).fetch(None, NOW)
    server.script(Reply(body=wrapped([])))
    assert make(context, server.url()).fetch(None, NOW).records == []


def test_a_forced_encoding_reads_a_gbk_answer(server, context):
    body = json.dumps(
        {"data": {"items": [{"station": "1188A", "time": NOW.isoformat(), "aqi": 5}]}, "m": "良"}
    )
    server.script(Reply(body=body.encode("gbk"), headers={"Content-Type": "application/json"}))
    batch = make(context, server.url(), encoding="gbk").fetch(None, NOW)
    assert [r.value for r in batch.records] == [5]


# --- times --------------------------------------------------------------------------------------


def test_time_formats():
    moment = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    cases = [
        ("epoch_s", int(moment.timestamp())),
        ("epoch_ms", int(moment.timestamp() * 1000)),
        ("epoch_ms", str(int(moment.timestamp() * 1000))),
        ("%Y-%m-%d %H:%M", "2026-03-01 16:30"),  # naive: Wuxi time, UTC+8
        ("%Y%m%d%H%M", 202603011630),
        ("iso", "2026-03-01T08:30:00Z"),
        ("iso", "2026-03-01T16:30:00"),
    ]
    for time_format, value in cases:
        assert read_time(value, time_format, ZONE) == moment, (time_format, value)
    for time_format, value in [("iso", 1772353800), ("epoch_s", "soon"), ("epoch_s", True), ("%H", "x")]:
        assert read_time(value, time_format, ZONE) is None, (time_format, value)
    assert read_time(10**20, "epoch_ms", ZONE) is None


@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)),
    st.sampled_from(["iso", "epoch_s", "epoch_ms", "%Y-%m-%d %H:%M:%S", "%Y%m%dT%H%M%S%z"]),
)
def test_a_formatted_since_reads_back_as_the_same_time(moment, time_format):
    """What `since_param` sends is what a record in that format would say."""
    exact = moment if time_format in ("iso", "epoch_ms") else moment.replace(microsecond=0)
    if time_format == "epoch_ms":
        exact = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert read_time(format_time(exact, time_format, ZONE), time_format, ZONE) == exact


# --- pagination ---------------------------------------------------------------------------------


def paged_server(
    server: Server, items: list[dict[str, Any]], page_param="page", size_param="size", total=False
):
    def respond(seen: Seen) -> Reply:
        size = int(seen.query.get(size_param, 100))
        start = (int(seen.query[page_param]) - 1) * size
        extra = {"total": len(items)} if total else {}
        return Reply(body=wrapped(items[start : start + size], **extra))

    server.respond = respond


def test_page_number_pagination_stops_at_a_short_page(server, context):
    items = aqi_items(250)
    paged_server(server, items)
    pagination = {"kind": "page", "size_param": "size", "size": 100}
    batch = make(context, server.url(), params={"city": "wuxi"}, pagination=pagination).fetch(None, NOW)
    assert [r.value for r in batch.records] == [item["aqi"] for item in items]
    assert [s.query for s in server.seen] == [
        {"city": "wuxi", "page": str(n), "size": "100"} for n in (1, 2, 3)
    ]


def test_page_number_pagination_stops_at_the_total_or_an_empty_page(server, context):
    items = aqi_items(200)
    paged_server(server, items, total=True)
    pagination = {"kind": "page", "size_param": "size", "size": 100, "total_path": "$.data.total"}
    assert len(make(context, server.url(), pagination=pagination).fetch(None, NOW).records) == 200
    assert len(server.seen) == 2
    server.seen.clear()
    pagination.pop("total_path")
    assert len(make(context, server.url(), pagination=pagination).fetch(None, NOW).records) == 200
    assert [s.query["page"] for s in server.seen] == ["1", "2", "3"]


def test_offset_limit_pagination(server, context):
    items = aqi_items(120)

    def respond(seen: Seen) -> Reply:
        offset, limit = int(seen.query["from"]), int(seen.query["n"])
        return Reply(body=wrapped(items[offset : offset + limit], total=len(items)))

    server.respond = respond
    pagination = {"kind": "offset", "offset_param": "from", "limit_param": "n", "limit": 50}
    batch = make(context, server.url(), pagination=pagination).fetch(None, NOW)
    assert len(batch.records) == 120
    assert [(s.query["from"], s.query["n"]) for s in server.seen] == [
        ("0", "50"),
        ("50", "50"),
        ("100", "50"),
    ]


def test_next_link_in_the_body_and_in_the_link_header(server, context):
    items = aqi_items(7)

    def respond(seen: Seen) -> Reply:
        cursor = int(seen.query.get("cursor", 0))
        following = f"/api?cursor={cursor + 3}" if cursor + 3 < len(items) else None
        return Reply(body=wrapped(items[cursor : cursor + 3], next=following))

    server.respond = respond
    pagination = {"kind": "next", "next_path": "$.data.next"}
    batch = make(context, server.url(), params={"since_id": 1}, pagination=pagination).fetch(None, NOW)
    assert len(batch.records) == 7
    assert [s.query for s in server.seen] == [{"since_id": "1"}, {"cursor": "3"}, {"cursor": "6"}]

    def respond_with_header(seen: Seen) -> Reply:
        cursor = int(seen.query.get("cursor", 0))
        headers = {}
        if cursor + 3 < len(items):
            headers["Link"] = (
                f'<{server.url()}?cursor={cursor + 3}>; rel="next", <{server.url()}>; rel="first"'
            )
        return Reply(body=wrapped(items[cursor : cursor + 3]), headers=headers)

    server.seen.clear()
    server.respond = respond_with_header
    batch = make(context, server.url(), pagination={"kind": "next"}).fetch(None, NOW)
    assert len(batch.records) == 7 and len(server.seen) == 3


def test_a_server_that_never_stops_paging_hits_max_pages(server, context):
    server.respond = lambda seen: Reply(body=wrapped(aqi_items(10)))
    pagination = {"kind": "page", "size": 10}
    with pytest.raises(HttpJsonError, match="still more pages after max_pages=4"):
        make(context, server.url(), pagination=pagination, max_pages=4).fetch(None, NOW)
    assert len(server.seen) == 4

    server.respond = lambda seen: Reply(body=wrapped(aqi_items(2), next="/api?cursor=1"))
    with pytest.raises(HttpJsonError, match="leads back to a page already read"):
        make(context, server.url(), pagination={"kind": "next", "next_path": "$.data.next"}).fetch(None, NOW)


# --- retries, timeouts, errors ------------------------------------------------------------------


def test_two_503s_then_success(server, context):
    server.script(Reply(503, "busy"), Reply(503, "busy"), Reply(body=wrapped(aqi_items(2))))
    batch = make(context, server.url(), retries=3).fetch(None, NOW)
    assert len(batch.records) == 2 and len(server.seen) == 3


def test_giving_up_after_the_retries_with_a_clear_error(server, context):
    server.script(Reply(502, {"msg": "upstream down"}))
    with pytest.raises(
        HttpJsonError, match=r"GET http://127\.0\.0\.1:\d+/api: HTTP 502 Bad Gateway after 3 attempt"
    ):
        make(context, server.url(), retries=2).fetch(None, NOW)
    assert len(server.seen) == 3


def test_backoff_doubles_between_attempts(server, context):
    server.script(Reply(500), Reply(500), Reply(body=wrapped([])))
    make(context, server.url(), retries=2, backoff=0.2).fetch(None, NOW)
    stamps = [seen.at for seen in server.seen]
    first, second = stamps[1] - stamps[0], stamps[2] - stamps[1]
    assert first >= 0.2 and second >= 0.4 and second < 3  # 0.2 s, then doubled


def test_429_honours_a_small_retry_after_and_fails_on_a_long_one(server, context):
    server.script(Reply(429, headers={"Retry-After": "1"}), Reply(body=wrapped(aqi_items(1))))
    batch = make(context, server.url(), retries=1, backoff=0.01).fetch(None, NOW)
    assert len(batch.records) == 1
    assert server.seen[1].at - server.seen[0].at >= 0.95
    server.seen.clear()
    server.script(Reply(503, headers={"Retry-After": "3600"}))
    with pytest.raises(HttpJsonError, match="retry after 3600 s, longer than retry_after_max"):
        make(context, server.url(), retries=3, retry_after_max="30s").fetch(None, NOW)
    assert len(server.seen) == 1


def test_retry_after_as_seconds_or_http_date():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    later = datetime.now(UTC) + timedelta(seconds=60)
    assert 55 < retry_after_seconds(later.strftime("%a, %d %b %Y %H:%M:%S GMT")) <= 60
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_a_client_error_is_not_retried(server, context, monkeypatch):
    monkeypatch.setenv("DEPT_KEY", "k-123")
    server.script(Reply(401, {"msg": "bad key"}))
    adapter = make(context, server.url(), params={"key": "${DEPT_KEY}"}, retries=3)
    with pytest.raises(HttpJsonError, match="HTTP 401 Unauthorized .*not retried") as raised:
        adapter.fetch(None, NOW)
    assert len(server.seen) == 1
    assert "k-123" not in str(raised.value)  # no query string, so no secret, in the run log


def test_timeout_on_a_server_that_sleeps(server, context):
    server.script(Reply(body=wrapped([]), delay=3))
    started = time.monotonic()
    with pytest.raises(HttpJsonError, match=r"no answer within 0\.3 s \(ReadTimeout, 2 attempt"):
        make(context, server.url(), timeout=0.3, retries=1).fetch(None, NOW)
    assert time.monotonic() - started < 2.5  # the server's 3 s sleep was not waited for
    assert len(server.seen) == 2


def test_an_unreachable_server_is_retried_then_reported(context):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(HttpJsonError, match=r"ConnectError: .* \(3 attempt\(s\)\)"):
        make(context, f"http://127.0.0.1:{port}/api", retries=2).fetch(None, NOW)


# --- conditional requests and the watermark -----------------------------------------------------


def test_etag_and_last_modified_give_a_304_and_keep_the_watermark(server, context):
    stamp = "Wed, 01 Jan 2025 00:00:00 GMT"
    current = {"etag": '"v1"', "items": aqi_items(3)}

    def respond(seen: Seen) -> Reply:
        if seen.headers.get("if-none-match") == current["etag"]:
            return Reply(304, headers={"ETag": current["etag"]})
        return Reply(
            body=wrapped(current["items"]), headers={"ETag": current["etag"], "Last-Modified": stamp}
        )

    server.respond = respond
    adapter = make(context, server.url())
    first = adapter.fetch(None, NOW)
    assert len(first.records) == 3 and "if-none-match" not in server.seen[0].headers
    state = State.load(first.watermark)
    assert (state.etag, state.last_modified) == ('"v1"', stamp)
    assert state.newest == datetime.fromisoformat(current["items"][-1]["time"])

    second = adapter.fetch(first.watermark, NOW)
    assert second.records == [] and second.watermark == first.watermark
    assert server.seen[1].headers["if-none-match"] == '"v1"'
    assert server.seen[1].headers["if-modified-since"] == stamp

    current.update(etag='"v2"', items=aqi_items(4))
    third = adapter.fetch(second.watermark, NOW)
    assert len(third.records) == 4 and State.load(third.watermark).etag == '"v2"'


def test_since_param_carries_the_newest_time_seen(server, context):
    future = (NOW + timedelta(days=2)).isoformat()  # a station with a broken clock
    items = aqi_items(3) + [{"station": "1188A", "time": future, "aqi": 50}]
    server.script(Reply(body=wrapped(items)), Reply(body=wrapped([])))
    adapter = make(context, server.url(), since_param="updatedAfter", conditional=False)
    first = adapter.fetch(None, NOW)
    assert "updatedAfter" not in server.seen[0].query
    newest = datetime.fromisoformat(items[2]["time"])
    assert json.loads(first.watermark) == {"newest": newest.isoformat()}
    second = adapter.fetch(first.watermark, NOW)
    assert server.seen[1].query["updatedAfter"] == newest.isoformat().replace("+00:00", "Z")
    assert second.records == [] and second.watermark == first.watermark


def test_since_in_epoch_milliseconds_and_a_plain_iso_watermark(server, context):
    server.script(Reply(body=wrapped([])))
    adapter = make(context, server.url(), since_param="since", since_format="epoch_ms")
    adapter.fetch("2026-03-01T08:30:00+00:00", NOW)
    assert server.seen[0].query["since"] == "1772353800000"
    with pytest.raises(HttpJsonError, match="unreadable watermark"):
        adapter.fetch("{not json", NOW)


# --- JSON paths ---------------------------------------------------------------------------------


def test_json_path_subset():
    document = {"data": {"items": [{"a": 1}, {"a": 2}], "odd key.x": {"b": [5, 6]}}, "站点": "1188A"}
    assert JsonPath.parse("$.data.items[*].a").find(document) == [1, 2]
    assert JsonPath.parse("$.data.items[-1]").find(document) == [{"a": 2}]
    assert JsonPath.parse("$.data['odd key.x'].b[1]").find(document) == [6]
    assert JsonPath.parse('$["data"].*').find(document)[1] == {"b": [5, 6]}
    assert JsonPath.parse("$.站点").find(document) == ["1188A"]
    assert JsonPath.parse("$.data.items[5]").find(document) == []
    assert JsonPath.parse("$").find(document) == [document]
    for bad in ("data.items", "$..a", "$.data[?(@.a>1)]", "$.a[", "$ .a"):
        with pytest.raises(JsonPathError):
            JsonPath.parse(bad)


keys = st.text(min_size=1, max_size=8)


@given(st.lists(st.one_of(keys, st.integers(0, 3)), min_size=1, max_size=5), st.integers())
def test_a_path_built_from_any_keys_finds_its_value(steps, leaf):
    """Any member name, quoted in brackets, and any index lead back to the value put there."""
    document: Any = leaf
    text = ""
    for step in reversed(steps):
        if isinstance(step, int):
            document = [None] * step + [document]
            text = f"[{step}]" + text
        else:
            document = {step: document}
            quoted = step.replace("\\", "\\\\").replace("'", "\\'")
            text = f"['{quoted}']" + text
    assert JsonPath.parse("$" + text).find(document) == [leaf]
