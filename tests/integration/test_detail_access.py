"""Who may open /indicators/<key>, through real requests to the app: an indicator the requester's
clearance does not cover answers exactly as an unknown key does (the not-found page, callbacks that
do nothing), through the page and through every callback; sign-in applies as to any page; the
address alone rebuilds the view, and the export serves it."""

from __future__ import annotations

import base64
import csv
import io
import json

import pytest

from store.state import data_version
from tests.dash_requests import router
from tests.integration.test_auth import build_app, sign_in
from tests.integration.test_detail_view import load_history

RESTRICTED, UNKNOWN, PUBLIC = "safety.crowd_density", "safety.no_such_key", "env.aqi"
RANGES = ("1h", "24h", "7d", "30d")
DAY = "range=custom&start=2026-01-10T00:00&end=2026-01-11T00:00"
ENGLISH = {"Accept-Language": "en"}


def _value(name: str, prop: str, value: object) -> dict:
    return {"id": name, "property": prop, "value": value}


def navigate(
    app, key: str, search: str, click: str, clicked_feature: dict | None = None, custom: tuple = (None, None)
) -> dict:
    """The request the browser sends when a range button (its range) or the map or the custom
    period's button (their ids) is clicked."""
    output = next(k for k in app.callback_map if k.startswith("..detail-url.search"))
    outputs: list = []
    for part in output.strip(".").split("..."):
        ident, prop = part.rsplit(".", 1)
        if ident.startswith("{"):
            outputs.append([{"id": {"range": r, "type": "detail-range"}, "property": prop} for r in RANGES])
        else:
            outputs.append({"id": ident, "property": prop})
    ranges = [
        {
            "id": {"range": r, "type": "detail-range"},
            "property": "n_clicks",
            "value": 1 if click == r else None,
        }
        for r in RANGES
    ]
    map_clicks = [
        _value(name, "n_clicks", 1 if click == name else None)
        for name in ("detail-districts", "detail-stations")
    ]
    changed = (
        f"{json.dumps({'range': click, 'type': 'detail-range'}, separators=(',', ':'))}.n_clicks"
        if click in RANGES
        else f"{click}.n_clicks"
    )
    return {
        "output": output,
        "outputs": outputs,
        "inputs": [
            ranges,
            _value("detail-apply", "n_clicks", 1 if click == "detail-apply" else None),
            [],
            [],
            *map_clicks,
        ],
        "changedPropIds": [changed],
        "state": [
            _value("detail-districts", "clickData", clicked_feature),
            _value("detail-stations", "clickData", clicked_feature),
            _value("detail-start", "value", custom[0]),
            _value("detail-end", "value", custom[1]),
            _value("detail-url", "pathname", f"/indicators/{key}"),
            _value("detail-url", "search", search),
            _value("ui-lang", "data", "en"),
        ],
    }


def download(key: str, search: str, version: int, kind: str = "csv") -> dict:
    window = {"version": version, "start": "2026-01-09T16:00:00+00:00", "end": "2026-01-10T16:00:00+00:00"}
    return {
        "output": "detail-download.data",
        "outputs": {"id": "detail-download", "property": "data"},
        "inputs": [
            _value("detail-csv", "n_clicks", 1 if kind == "csv" else None),
            _value("detail-xlsx", "n_clicks", 1 if kind == "xlsx" else None),
        ],
        "changedPropIds": [f"detail-{kind}.n_clicks"],
        "state": [
            _value("detail-url", "pathname", f"/indicators/{key}"),
            _value("detail-url", "search", search),
            _value("detail-shown", "data", window),
            _value("ui-lang", "data", "en"),
        ],
    }


@pytest.fixture
def history(ingest):
    """The hand-made day of test_detail_view (a restricted indicator among its readings)."""
    return load_history(ingest)


@pytest.fixture
def open_demo(history, tmp_path):
    """Visitors may view public indicators; the demo's accounts are vera (viewer), otto (officer)."""
    return build_app(history, tmp_path, anonymous=True)


def clients(app) -> dict:
    visitor, viewer, officer = (app.server.test_client() for _ in range(3))
    sign_in(viewer, "vera")
    sign_in(officer, "otto")
    return {"anonymous": visitor, "viewer": viewer, "officer": officer}


def post(client, body: dict):
    return client.post("/_dash-update-component", json=body, headers=ENGLISH)


def test_a_restricted_indicator_opens_as_an_unknown_key_does(open_demo):
    people = clients(open_demo)
    for who in ("anonymous", "viewer"):
        client = people[who]
        hidden = post(client, router(f"/indicators/{RESTRICTED}", "?" + DAY))
        unknown = post(client, router(f"/indicators/{UNKNOWN}", "?" + DAY))
        assert hidden.status_code == unknown.status_code == 200, who
        assert hidden.data == unknown.data, who
        assert b"This page does not exist." in hidden.data
        for leak in (b"crowd", b"Crowd", "人员密度".encode(), b"Public Security"):
            assert leak not in hidden.data, (who, leak)
        html = client.get(f"/indicators/{RESTRICTED}")  # the shell only: tab title and meta are generic
        assert html.status_code == client.get(f"/indicators/{UNKNOWN}").status_code == 200
        assert b"Crowd" not in html.data and "人员密度".encode() not in html.data
    shown = post(people["officer"], router(f"/indicators/{RESTRICTED}", "?" + DAY))
    assert shown.status_code == 200 and b"Crowd density at key places" in shown.data
    assert b"does not exist" not in shown.data


def test_the_callbacks_of_a_restricted_indicator_do_what_an_unknown_key_gets(open_demo, history):
    people = clients(open_demo)
    version = data_version(history.engine)
    for who in ("anonymous", "viewer"):
        for body in (
            navigate(open_demo, RESTRICTED, "?" + DAY, "7d"),
            download(RESTRICTED, "?" + DAY, version),
        ):
            hidden = post(people[who], body)
            unknown = post(people[who], json.loads(json.dumps(body).replace(RESTRICTED, UNKNOWN)))
            assert hidden.status_code == unknown.status_code == 204, (who, body["output"])
            assert hidden.data == unknown.data == b""
    moved = post(people["officer"], navigate(open_demo, RESTRICTED, "?" + DAY, "7d"))
    assert moved.status_code == 200
    assert moved.json["response"]["detail-url"]["search"] == "?range=7d"
    served = post(people["officer"], download(RESTRICTED, "?" + DAY, version))
    assert served.status_code == 200
    file = served.json["response"]["detail-download"]["data"]
    assert file["filename"] == "safety.crowd_density_20260110T0000-20260111T0000.csv"
    assert b"Crowd density at key places (safety.crowd_density)" in base64.b64decode(file["content"])


def test_without_anonymous_viewing_the_page_and_its_callbacks_need_sign_in(history, tmp_path):
    secured = build_app(history, tmp_path, anonymous=False)
    client = secured.server.test_client()
    response = client.get(f"/indicators/{PUBLIC}?range=7d")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    assert post(client, router(f"/indicators/{PUBLIC}")).status_code == 403
    assert post(client, navigate(secured, PUBLIC, "?range=24h", "7d")).status_code == 401
    assert post(client, download(PUBLIC, "?range=24h", 1)).status_code == 401
    sign_in(client, "vera")
    assert post(client, router(f"/indicators/{PUBLIC}")).status_code == 200
    assert post(client, navigate(secured, PUBLIC, "?range=24h", "7d")).status_code == 200


def test_the_address_rebuilds_the_view_and_clicks_move_it(open_demo, history):
    client = open_demo.server.test_client()
    page = post(client, router(f"/indicators/{PUBLIC}", f"?{DAY}&region=320205&entity=1188A"))
    assert page.status_code == 200
    assert b"Xuelang" in page.data and b"Binhu" in page.data  # the station's own district, not Xishan
    assert f'"search":"?{DAY}&region=320211&entity=1188A"'.encode() in page.data.replace(b": ", b":")
    clicked = post(
        client,
        navigate(
            open_demo,
            PUBLIC,
            f"?{DAY}",
            "detail-districts",
            {"type": "Feature", "properties": {"code": "320211"}},
        ),
    )
    response = clicked.json["response"]
    assert response["detail-url"]["search"] == f"?{DAY}&region=320211"
    assert response["detail-breakdown-title"]["children"] == "Stations in Binhu"
    assert response["detail-shown"]["data"]["start"] == "2026-01-09T16:00:00+00:00"
    served = post(
        client, download(PUBLIC, f"?{DAY}&region=320211&entity=1188A", data_version(history.engine))
    )
    text = base64.b64decode(served.json["response"]["detail-download"]["data"]["content"]).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header = rows.index(
        [
            "Time (Asia/Shanghai)",
            "Value",
            "Lowest",
            "Highest",
            "Readings",
            "Previous period",
            "Same period last year",
        ]
    )
    assert rows[header + 1][:2] == ["2026-01-10 00:00", "50"] and rows[header + 288][:2] == [
        "2026-01-10 23:55",
        "320",
    ]
    assert post(client, download(PUBLIC, f"?{DAY}", data_version(history.engine) + 1)).status_code == 204
    refused = post(
        client,
        navigate(
            open_demo, PUBLIC, f"?{DAY}", "detail-apply", custom=("2026-01-11T00:00", "2026-01-10T00:00")
        ),
    )
    assert refused.json["response"] == {
        "detail-range-error": {"children": "The start must come before the end."}
    }
    applied = post(
        client,
        navigate(
            open_demo, PUBLIC, "?range=7d", "detail-apply", custom=("2026-01-10T06:00", "2026-01-10T18:00")
        ),
    )
    assert (
        applied.json["response"]["detail-url"]["search"]
        == "?range=custom&start=2026-01-10T06:00&end=2026-01-10T18:00"
    )
