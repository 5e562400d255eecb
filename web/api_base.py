"""The REST API's plumbing: its blueprint, route table, JSON errors, parameter parsing and sign-in check.

The page guard of web/auth.py leaves /api/ alone (a script has no session to redirect), so every
request of the blueprint is authorised here, before its view runs: a request that names a token must
name a live one, and one without credentials passes only where the deployment lets anonymous
visitors look. What each identity may then see (its clearance) and do (its role) the views decide.
Every route is registered through `route`, which also records it for the OpenAPI document.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import flask
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from core.access import Identity, clearance
from store import audit
from web.api_models import ErrorOut
from web.auth import current_identity
from web.runtime import WebRuntime

PREFIX = "/api/v1"
SOURCE_TOKEN_HEADER = "X-CityBrain-Source-Token"
MAX_BODY = 64 * 1024
log = logging.getLogger(__name__)

blueprint = flask.Blueprint("api_v1", __name__, url_prefix=PREFIX)

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    500: "internal",
}

Q = TypeVar("Q", bound=BaseModel)


class ApiError(Exception):
    """A refusal the client can act on: its status, a reason, and where it applies the field at fault."""

    def __init__(self, status: int, reason: str, **extra: str | None):
        super().__init__(reason)
        self.status, self.reason, self.extra = status, reason, extra


@dataclass(frozen=True)
class Route:
    """One endpoint, as the blueprint serves it and the OpenAPI document describes it."""

    rule: str
    method: str
    endpoint: str
    summary: str
    response: type[BaseModel] | None  # None: a JSON object this document does not model
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    public: bool = False
    source_token: bool = False  # also takes a source's own token (SOURCE_TOKEN_HEADER): the view checks it
    description: str = ""
    status: int = 200  # the answer when all goes well; 204 carries no body


ROUTES: list[Route] = []


def route(rule: str, method: str = "GET", **spec: Any) -> Callable[[Callable], Callable]:
    """Serve the view at PREFIX + rule and list it in the OpenAPI document with `spec`."""

    def register(view: Callable) -> Callable:
        ROUTES.append(Route(rule, method, view.__name__, **spec))
        blueprint.add_url_rule(rule, view.__name__, view, methods=[method])
        return view

    return register


def runtime() -> WebRuntime:
    return flask.current_app.config["CITYBRAIN_RUNTIME"]


def json_response(payload: Any, status: int = 200) -> flask.Response:
    """JSON with Chinese as text (not \\u escapes); served as data, never sniffed into a page."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    response = flask.Response(body, status=status, mimetype="application/json")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def respond(model: BaseModel, status: int = 200) -> flask.Response:
    return json_response(model.model_dump(mode="json", by_alias=True), status)


def _error_response(status: int, reason: str, **extra: str | None) -> flask.Response:
    error = ErrorOut(error=ERROR_CODES.get(status, "error"), reason=reason, **extra)
    response = json_response(error.model_dump(mode="json", exclude_none=True), status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="citybrain"'
    return response


def _first_problem(exc: ValidationError) -> tuple[str, str]:
    problem = exc.errors()[0]
    name = str(problem["loc"][0]) if problem["loc"] else "?"
    return name, problem["msg"].removeprefix("Value error, ")


def query_params(model: type[Q]) -> Q:
    """The query string validated by `model`; a 400 naming the first bad parameter otherwise."""
    raw: dict[str, str] = {}
    for name in flask.request.args:
        values = flask.request.args.getlist(name)
        if len(values) > 1:
            raise ApiError(400, f"parameter {name!r} is given {len(values)} times", parameter=name)
        raw[name] = values[0]
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        name, message = _first_problem(exc)
        raise ApiError(400, f"parameter {name!r}: {message}", parameter=name) from None


def json_body(model: type[Q], max_bytes: int = MAX_BODY) -> Q:
    """The JSON object body validated by `model`.

    Only JSON media types are read (`application/json`, or `+json` such as NGSI-LD's
    `application/ld+json`): a cross-site form cannot send them without a CORS preflight the API
    never grants, so a signed-in browser cannot be made to post here by another site.
    """
    request = flask.request
    if not request.is_json:
        raise ApiError(415, "send the body as application/json")
    request.max_content_length = max_bytes
    try:
        body = json.loads(request.get_data(cache=False))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ApiError(400, f"the body is not valid JSON{where}", parameter="body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object", parameter="body")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        name, message = _first_problem(exc)
        raise ApiError(400, f"field {name!r}: {message}", parameter=name) from None


def permitted(action: str) -> Identity:
    """The identity, if it may do `action`: 401 for an anonymous visitor, 403 (audited) for others."""
    identity = current_identity()
    if identity.role == "anonymous":
        raise ApiError(401, f"sign in or send an API token to {action}")
    if not identity.may(action):
        record_refusal(identity.name, action)
        raise ApiError(403, f"role {identity.role} may not {action}")
    return identity


def record_refusal(actor: str, detail: str) -> None:
    """Audit a refused request (who, what it asked, why), in its own transaction."""
    request = flask.request
    with Session(runtime().engine) as session:
        audit.record(session, actor, "api.refused", f"{request.method} {request.path}", detail, address())
        session.commit()


def address() -> str:
    return flask.request.remote_addr or ""


def _route() -> Route | None:
    return next((r for r in ROUTES if f"{blueprint.name}.{r.endpoint}" == flask.request.endpoint), None)


def _public() -> bool:
    route = _route()
    return route is not None and route.public


@blueprint.before_request
def _authenticate() -> None:
    route = _route()
    by_source = route is not None and route.source_token and SOURCE_TOKEN_HEADER in flask.request.headers
    if _public() or by_source:
        return  # the view checks the source's token itself
    header = flask.request.headers.get("Authorization")
    identity = current_identity()
    if header is not None:
        if not header.startswith("Bearer "):
            raise ApiError(401, "use the header 'Authorization: Bearer <token>'")
        if not identity.signed_in:
            raise ApiError(401, "the token is unknown or revoked, or its user is disabled")
    elif not clearance(identity, runtime().settings.auth):
        raise ApiError(401, "sign in or send an API token ('Authorization: Bearer <token>')")


@blueprint.after_request
def _no_store(response: flask.Response) -> flask.Response:
    """Answers depend on who asks: no shared cache may keep one for the next client."""
    if not _public():
        response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.errorhandler(ApiError)
def _api_error(exc: ApiError) -> flask.Response:
    return _error_response(exc.status, exc.reason, **exc.extra)


@blueprint.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> flask.Response:
    return _error_response(exc.code or 500, exc.description or exc.name)


@blueprint.errorhandler(Exception)
def _unexpected(exc: Exception) -> flask.Response:
    log.exception("API request %s %s failed", flask.request.method, flask.request.path)
    return _error_response(500, "internal error; the server log has the details")


def _no_such_route(rest: str) -> flask.Response:
    """Any other path under the prefix: a JSON 404 (or 405 naming the methods the path allows)."""
    adapter = flask.current_app.url_map.bind_to_environ(flask.request.environ)
    allowed = []
    for method in ("GET", "POST"):
        try:
            endpoint, _ = adapter.match(flask.request.path, method=method)
        except (NotFound, MethodNotAllowed):
            continue
        if endpoint != f"{blueprint.name}.{_no_such_route.__name__}":
            allowed.append(method)
    if allowed:
        reason = f"{flask.request.method} is not allowed here; use {', '.join(allowed)}"
        response = _error_response(405, reason)
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return _error_response(404, f"no endpoint {flask.request.path}")


blueprint.add_url_rule(
    "/<path:rest>",
    _no_such_route.__name__,
    _no_such_route,
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
)
