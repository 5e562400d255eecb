"""The OpenAPI 3.1 document of /api/v1, generated from the API's own route table and pydantic models.

Nothing here is written by hand about an endpoint: paths and methods come from the routes the
blueprint serves, parameters from the query models the views validate with, bodies and answers from
the models the views serialise through. Pydantic emits JSON Schema 2020-12, the dialect of OpenAPI
3.1, so its schemas go into `components` unchanged.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from web.api_base import PREFIX, SOURCE_TOKEN_HEADER, Route
from web.api_models import ErrorOut
from web.auth import COOKIE_NAME
from web.runtime import WebRuntime

OPENAPI_VERSION = "3.1.0"
NO_CONTENT = 204
REF = "#/components/schemas/{model}"
_FLASK_PARAMETER = re.compile(r"<(?:(\w+):)?(\w+)>")
_CONVERTER_TYPES = {"int": "integer", "float": "number"}
ERROR_TEXT = {
    400: "A parameter or body field is invalid; `parameter` names it.",
    401: "No credentials, or an unknown or revoked token.",
    403: "Your role may not do this.",
    404: "No such thing, or not one your clearance shows.",
    409: "Someone acted first; `acknowledged_by` says who.",
    413: "The body is larger than the API reads.",
    415: "The body must be sent as application/json.",
    422: "Understood but refused, e.g. a red alert without a note.",
}


def openapi_path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """A Flask rule as an OpenAPI path (`<int:id>` -> `{id}`) and its path parameters."""
    parameters: list[dict[str, Any]] = []

    def template(match: re.Match[str]) -> str:
        converter, name = match.groups()
        schema = {"type": _CONVERTER_TYPES.get(converter or "", "string")}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return PREFIX + _FLASK_PARAMETER.sub(template, rule), parameters


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter is absent, never null: drop pydantic's `null` branch and `default: null`."""
    schema = {k: v for k, v in schema.items() if not (k == "default" and v is None)}
    branches = [b for b in schema.get("anyOf", ()) if b != {"type": "null"}]
    if "anyOf" not in schema or len(branches) == len(schema["anyOf"]):
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return rest | branches[0] if len(branches) == 1 else rest | {"anyOf": branches}


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    schemas.update(schema.pop("$defs", {}))
    required = set(schema.get("required", ()))
    parameters = []
    for name, property_schema in schema["properties"].items():
        described = _without_null(property_schema)
        description = described.pop("description", None)
        described.pop("title", None)
        parameter = {"name": name, "in": "query", "required": name in required, "schema": described}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(route: Route, refs: dict, schemas: dict[str, Any]) -> dict[str, Any]:
    _, parameters = openapi_path(route.rule)
    if route.query is not None:
        parameters += _query_parameters(route.query, schemas)
    if route.status == NO_CONTENT:
        responses: dict[str, Any] = {str(NO_CONTENT): {"description": "Done; no body."}}
    else:
        answer = refs[(route.response, "serialization")] if route.response else {"type": "object"}
        responses = {str(route.status): {"description": "OK", "content": _json(answer)}}
    errors = sorted(set(route.errors) | ({401} if not route.public else set()))
    for status in errors:
        responses[str(status)] = {
            "description": ERROR_TEXT[status],
            "content": _json(refs[(ErrorOut, "serialization")]),
        }
    operation: dict[str, Any] = {
        "operationId": route.endpoint,
        "summary": route.summary,
        "tags": [route.rule.strip("/").split("/")[0]],
        "responses": responses,
    }
    if route.description:
        operation["description"] = route.description
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {"required": True, "content": _json(refs[(route.body, "validation")])}
    if route.public:
        operation["security"] = []
    elif route.source_token:
        operation["security"] = [{"bearerToken": []}, {"sessionCookie": []}, {"sourceToken": []}]
    return operation


def _model_schemas(routes: list[Route]) -> tuple[dict, dict[str, Any]]:
    wanted = {(ErrorOut, "serialization")}
    wanted |= {(r.response, "serialization") for r in routes if r.response is not None}
    wanted |= {(r.body, "validation") for r in routes if r.body is not None}
    ordered = sorted(wanted, key=lambda item: (item[0].__name__, item[1]))
    refs, top = models_json_schema(ordered, ref_template=REF)
    return refs, dict(top.get("$defs", {}))


def document(routes: list[Route], runtime: WebRuntime) -> dict[str, Any]:
    """The document for this deployment (whether anonymous reading is allowed shows in `security`)."""
    refs, schemas = _model_schemas(routes)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path, _ = openapi_path(route.rule)
        paths.setdefault(path, {})[route.method.lower()] = _operation(route, refs, schemas)
    security: list[dict[str, list[str]]] = [{"bearerToken": []}, {"sessionCookie": []}]
    if runtime.settings.auth.anonymous:
        security.append({})
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "CityBrain OC API",
            "version": runtime.version,
            "description": "Indicators, latest values, readings, alerts and acknowledgement. Times are "
            "ISO-8601 in UTC; names come in zh-CN and en. Errors are JSON {error, reason}.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API token: citybrain tokens add api NAME --user USER",
                },
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": COOKIE_NAME},
                "sourceToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": SOURCE_TOKEN_HEADER,
                    "description": "a source's own notify_token: that source's notifications only",
                },
            },
        },
        "security": security,
    }
