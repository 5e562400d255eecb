"""The REST API, /api/v1/: indicators, latest values, readings by range, alerts, acknowledgement.

For scripts and other systems of the city (an API token of a user) and for the browser of a
signed-in user. Data follows the same clearance as the pages: an indicator the requester may not
see is absent from every answer, and asking for it by key is a 404 exactly like a key that does not
exist, so the API does not even confirm that it exists. Acknowledging goes through the store's
conditional UPDATE, so of two officers acknowledging at once exactly one succeeds and the other
learns who did it (409).

Brokers of the city's `ngsi` sources post their subscriptions' notifications to
/ngsi/<source>/notify; the request stores them through the one pipeline itself, so a change is on
the screens (and its alert raised) when the broker gets its 204. Runs of one source never
interleave, in whichever process they start (the pipeline claims the source's row per
transaction), and nothing is fetched here: the entities are the request's.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from typing import Any

import flask
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.levels import RED, level
from core.settings import Names
from core.timeutil import as_utc, utcnow
from indicators.catalog import Indicator
from ingest.context import IngestContext
from ingest.pipeline import ingest_records
from store import audit, queries
from store.alerts import AlertConflict, acknowledge
from store.models import RejectedRecord, Source
from store.state import bump_data_version
from web.api_base import (
    ROUTES,
    SOURCE_TOKEN_HEADER,
    ApiError,
    address,
    blueprint,
    json_body,
    json_response,
    permitted,
    query_params,
    record_refusal,
    respond,
    route,
    runtime,
)
from web.api_models import (
    AcknowledgeBody,
    AcknowledgeResult,
    AlertList,
    AlertOut,
    AlertsQuery,
    EntityLatestOut,
    IndicatorList,
    IndicatorOut,
    IndicatorsQuery,
    LatestList,
    LatestOut,
    LatestQuery,
    LocalText,
    ReadingOut,
    ReadingsPage,
    ReadingsQuery,
    ThresholdsOut,
)
from web.auth import current_clearance
from web.openapi import document
from web.runtime import WebRuntime

DEFAULT_SPAN = timedelta(hours=24)
# A broker sends the changed entities of one subscription; a few thousand fit in 1 MiB.
NGSI_MAX_BODY = 1024 * 1024
STATES = {
    "open": ("active", "acknowledged"),
    "active": ("active",),
    "acknowledged": ("acknowledged",),
    "resolved": ("resolved",),
    "closed": ("closed",),
    "all": None,
}


def _text(names: Names) -> LocalText:
    return LocalText(zh=names.zh, en=names.en)


def _level_name(severity: int) -> str:
    return level(severity).name_key.removeprefix("level.")


def _visible() -> dict[str, Indicator]:
    """The indicators the requester's clearance shows, by key, in catalog order."""
    return {i.key: i for i in runtime().catalog.cleared(current_clearance())}


def _naming(parameter: str | None, reason: str) -> str:
    return f"parameter {parameter!r}: {reason}" if parameter else reason


def _indicator(key: str, parameter: str | None = None) -> Indicator:
    """A visible indicator; one the requester may not see is as unknown as one that does not exist."""
    indicator = _visible().get(key)
    if indicator is None:
        raise ApiError(404, _naming(parameter, f"no indicator {key!r}"), parameter=parameter)
    return indicator


def _entity_names(rt: WebRuntime) -> dict[str, Names]:
    names = {r.code: r.name for r in rt.city.regions}
    names.update({s.code: s.name for s in rt.city.stations})
    return names


def _known_entity(rt: WebRuntime, code: str | None) -> None:
    if code is not None and code not in rt.city.entity_codes():
        raise ApiError(404, _naming("entity", f"no station or region {code!r}"), parameter="entity")


def _indicator_out(indicator: Indicator) -> IndicatorOut:
    limits = indicator.thresholds
    return IndicatorOut(
        key=indicator.key,
        domain=indicator.domain,
        name=_text(indicator.name),
        unit=indicator.unit,
        entity_level=indicator.level,
        aggregation=indicator.aggregation,
        cadence_s=indicator.cadence,
        decimals=indicator.decimals,
        bounds=indicator.bounds,
        higher_is_worse=indicator.higher_is_worse,
        classification=indicator.classification,
        department=_text(indicator.department),
        thresholds=ThresholdsOut(
            direction=limits.direction,
            blue=limits.blue,
            yellow=limits.yellow,
            orange=limits.orange,
            red=limits.red,
        )
        if limits
        else None,
        standard=indicator.standard,
    )


@route("/indicators", summary="The indicators you may see", query=IndicatorsQuery, response=IndicatorList)
def list_indicators() -> flask.Response:
    params = query_params(IndicatorsQuery)
    shown = [i for i in _visible().values() if params.domain in (None, i.domain)]
    return respond(IndicatorList(indicators=[_indicator_out(i) for i in shown]))


@route("/indicators/<key>", summary="One indicator", response=IndicatorOut, errors=(404,))
def get_indicator(key: str) -> flask.Response:
    return respond(_indicator_out(_indicator(key)))


def _entity_out(value: queries.EntityValue, names: dict[str, Names]) -> EntityLatestOut:
    name = names.get(value.code)
    return EntityLatestOut(
        entity=value.code,
        name=_text(name) if name else None,
        value=value.value,
        observed_at=value.observed_at,
        severity=value.severity,
        level=_level_name(value.severity),
    )


@route(
    "/latest",
    summary="Latest values, city-wide and per entity",
    description="The city-wide value of each indicator (its entities' latest values aggregated); "
    "?by=entity adds every entity's value, ?entity=CODE that entity's.",
    query=LatestQuery,
    response=LatestList,
    errors=(400, 404),
)
def latest_values() -> flask.Response:
    params = query_params(LatestQuery)
    rt = runtime()
    _known_entity(rt, params.entity)
    visible = _visible()
    keys = params.keys() or list(visible)
    indicators = [_indicator(key, "indicators") for key in keys]
    city = queries.latest(rt.engine, keys)
    per_entity = queries.entity_values(rt.engine, keys) if params.entity or params.by else {}
    names = _entity_names(rt)
    items = []
    for indicator in indicators:
        now = city[indicator.key]
        entities = None
        if params.entity or params.by:
            values = per_entity.get(indicator.key, {})
            chosen = [values[params.entity]] if params.entity in values else []
            entities = [_entity_out(v, names) for v in (chosen if params.entity else values.values())]
        items.append(
            LatestOut(
                indicator=indicator.key,
                name=_text(indicator.name),
                unit=indicator.unit,
                value=now.value,
                observed_at=now.observed_at,
                severity=now.severity,
                level=_level_name(now.severity),
                reporting=now.entities,
                trend=now.trend,
                entities=entities,
            )
        )
    return respond(LatestList(latest=items))


def _cursor(point: queries.ReadingPoint) -> str:
    text = f"{point.observed_at.isoformat()}|{point.series_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, int]:
    """The position a cursor names; anything `_cursor` did not make is a 400."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, series_id = text.split("|")
        return as_utc(datetime.fromisoformat(at)), int(series_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(400, "parameter 'cursor': not a cursor of this API", parameter="cursor") from None


@route(
    "/readings",
    summary="Readings of an indicator in a time range, page by page",
    description="Oldest first. A page holds at most `limit` readings; follow `next_cursor` for the next.",
    query=ReadingsQuery,
    response=ReadingsPage,
    errors=(400, 404),
)
def list_readings() -> flask.Response:
    params = query_params(ReadingsQuery)
    indicator = _indicator(params.indicator, "indicator")
    rt = runtime()
    _known_entity(rt, params.entity)
    end = params.end or utcnow()
    start = params.start or end - DEFAULT_SPAN
    if start >= end:
        raise ApiError(400, "parameter 'start': must be before end (default end: now)", parameter="start")
    after = _after(params.cursor) if params.cursor else None
    points = queries.readings_between(
        rt.engine, indicator.key, start, end, params.entity, after, params.limit + 1
    )
    page = points[: params.limit]
    return respond(
        ReadingsPage(
            indicator=indicator.key,
            unit=indicator.unit,
            start=start,
            end=end,
            readings=[
                ReadingOut(entity=p.entity, observed_at=p.observed_at, value=p.value, quality=p.quality)
                for p in page
            ],
            next_cursor=_cursor(page[-1]) if len(points) > params.limit else None,
        )
    )


def _alert_out(alert: queries.AlertDetail, indicator: Indicator, names: dict[str, Names]) -> AlertOut:
    entity_name = names.get(alert.entity)
    return AlertOut(
        id=alert.id,
        indicator=alert.indicator,
        indicator_name=_text(indicator.name),
        domain=indicator.domain,
        entity=alert.entity,
        entity_name=_text(entity_name) if entity_name else None,
        rule=alert.rule_key,
        state=alert.state,
        severity=alert.severity,
        level=_level_name(alert.severity),
        peak_severity=alert.peak_severity,
        value=alert.value,
        unit=indicator.unit,
        opened_at=alert.opened_at,
        observed_at=alert.observed_at,
        updated_at=alert.updated_at,
        resolved_at=alert.resolved_at,
        closed_at=alert.closed_at,
        acknowledged_at=alert.acknowledged_at,
        acknowledged_by=alert.acknowledged_by,
        department=alert.department,
        muted=alert.muted,
        explanation=LocalText(zh=alert.explanation_zh, en=alert.explanation_en),
    )


@route(
    "/alerts",
    summary="Alerts, filtered",
    description="Alerts of the indicators you may see, the most severe first, then the newest.",
    query=AlertsQuery,
    response=AlertList,
    errors=(400,),
)
def list_alerts() -> flask.Response:
    params = query_params(AlertsQuery)
    rt = runtime()
    visible = _visible()
    keys = [key for key, i in visible.items() if params.domain in (None, i.domain)]
    found = queries.find_alerts(
        rt.engine,
        keys,
        states=STATES[params.state],
        min_severity=params.min_severity(),
        entity=params.entity,
        department=params.department,
        since=params.since,
        limit=params.limit + 1,
    )
    names = _entity_names(rt)
    alerts = [_alert_out(a, visible[a.indicator], names) for a in found[: params.limit]]
    return respond(AlertList(alerts=alerts, more=len(found) > params.limit))


def _visible_alert(rt: WebRuntime, alert_id: int) -> tuple[queries.AlertDetail, Indicator]:
    alert = queries.alert_detail(rt.engine, alert_id)
    indicator = _visible().get(alert.indicator) if alert else None
    if alert is None or indicator is None:
        raise ApiError(404, f"no alert {alert_id}")
    return alert, indicator


@route(
    "/alerts/<int:alert_id>/acknowledge",
    "POST",
    summary="Acknowledge an alert (officer or admin)",
    description="A red (I) alert needs a note. When someone else acknowledged it first, 409 says who.",
    body=AcknowledgeBody,
    response=AcknowledgeResult,
    errors=(400, 403, 404, 409, 413, 415, 422),
)
def acknowledge_alert(alert_id: int) -> flask.Response:
    identity = permitted("alert.acknowledge")
    body = json_body(AcknowledgeBody)
    rt = runtime()
    alert, indicator = _visible_alert(rt, alert_id)
    note = body.note.strip()
    if alert.severity >= RED.severity and not note:
        raise ApiError(422, "a red (I) alert needs a note saying what is being done", parameter="note")
    with Session(rt.engine) as session:
        try:
            acknowledge(session, alert_id, identity.name, note)
        except AlertConflict as conflict:
            session.rollback()
            reason = (
                f"alert {alert_id} was already acknowledged by {conflict.by}"
                if conflict.by
                else f"alert {alert_id} is {conflict.state} and cannot be acknowledged"
            )
            raise ApiError(409, reason, state=conflict.state, acknowledged_by=conflict.by) from None
        audit.record(session, identity.name, "alert.acknowledge", f"alert:{alert_id}", note, address())
        bump_data_version(session)  # pages cached on the data version show the acknowledgement now
        session.commit()
    alert, _ = _visible_alert(rt, alert_id)
    return respond(AcknowledgeResult(alert=_alert_out(alert, indicator, _entity_names(rt)), note=note))


class NgsiNotification(BaseModel):
    """An NGSI-v2 or NGSI-LD notification, as a broker's subscription sends it."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    subscription_id: str = Field(alias="subscriptionId", description="the subscription that notifies")
    data: list[dict[str, Any]] = Field(
        description="the changed entities, key-values or normalized (v2 or LD, as the source's `api`)"
    )


@route(
    "/ngsi/<source_id>/notify",
    "POST",
    summary="Receive a notification of an NGSI broker for an `ngsi` source (its token, or an admin's)",
    description="The target of an NGSI-v2 or NGSI-LD subscription (application/json or "
    "application/ld+json, at most 1 MiB). The broker authenticates with the source's own "
    f"`notify_token` in the {SOURCE_TOKEN_HEADER} header (set in the subscription), which opens "
    "this source's notifications and nothing else; an administrator's API token works too. The "
    "entities go through the source's mapping and the pipeline at once, as one run of the source "
    "(validation, quarantine, rules, alerts); 204 when stored. 401: no credentials, or a source "
    "token that is not this source's; 404: no `ngsi` source of that id; 422: the source is "
    "disabled, or not one reading of the notification could be used (the reason of the first is "
    "given; all are in quarantine).",
    body=NgsiNotification,
    response=None,
    status=204,
    errors=(400, 403, 404, 413, 415, 422),
    source_token=True,
)
def ngsi_notify(source_id: str) -> flask.Response:
    ctx: IngestContext = flask.current_app.config["CITYBRAIN_INGEST"]
    with ctx.sessions() as session:
        source = session.get(Source, source_id)
    presented = flask.request.headers.get(SOURCE_TOKEN_HEADER)
    if presented is None:
        actor = permitted("source.run").name
    elif source is not None and source.type == "ngsi" and ctx.adapter(source).accepts(presented):
        actor = f"source-token:{source_id}"
    else:  # the same answer whether the source exists or not
        record_refusal("source-token", f"wrong token for source {source_id}")
        raise ApiError(401, f"the {SOURCE_TOKEN_HEADER} is not the notify_token of source {source_id!r}")
    notification = json_body(NgsiNotification, NGSI_MAX_BODY)
    if source is None or source.type != "ngsi":
        raise ApiError(404, f"no ngsi source {source_id!r}")
    if not source.enabled:
        raise ApiError(422, f"source {source_id!r} is disabled")
    records = ctx.adapter(source).notification(notification.model_dump(by_alias=True))
    result = ingest_records(ctx, source_id, records)
    with ctx.sessions() as session:
        detail = f"run {result.run_id}: {result.status}, {result.accepted} stored, {result.rejected} rejected"
        audit.record(session, actor, "source.notify", f"source:{source_id}", detail, address())
        session.commit()
        if result.status == "error":
            raise ApiError(500, f"storing the notification failed (run {result.run_id}): {result.error}")
        if result.rejected and not result.accepted:
            first = session.scalar(
                select(RejectedRecord.reason)
                .where(RejectedRecord.run_id == result.run_id)
                .order_by(RejectedRecord.id)
                .limit(1)
            )
            unusable = f"none of the {result.rejected} readings could be used (run {result.run_id})"
            raise ApiError(422, f"{unusable}; first: {first}")
    return flask.Response(status=204)


@route(
    "/openapi.json", summary="This API's OpenAPI 3.1 document (no sign-in needed)", response=None, public=True
)
def openapi() -> flask.Response:
    return json_response(document(ROUTES, runtime()))


def register_api(server: flask.Flask, rt: WebRuntime, ingest: IngestContext) -> None:
    """Serve the API on `server`; web.auth must be installed first (the API authorises with it).

    `ingest` is the process's pipeline context: NGSI notifications are stored through it.
    """
    if server.config.get("CITYBRAIN_RUNTIME") is not rt:
        raise RuntimeError("install web.auth before the API: the API identifies requesters through it")
    server.config["CITYBRAIN_INGEST"] = ingest
    server.register_blueprint(blueprint)
