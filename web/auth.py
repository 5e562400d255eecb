"""Sign-in, sessions and authorisation, enforced on the server for every request.

Hiding a button is not security: a `before_request` hook decides for every page, every Dash
callback POST and every token before any view code runs. Pages a visitor may not use redirect to
/login; callbacks that write (registered with `guard_outputs`) answer 403 unless the identity may do
the action, and write callbacks check again with `require` (defence in depth). Wall screens sign in
with a display token in the URL (`?display=TOKEN`) once; the token stays revocable because every
request re-checks it. Sessions live in Flask's signed cookie (HttpOnly, SameSite=Lax, Secure behind
HTTPS) and hold only the user's id, checked against the database on each request, so disabling a
user ends their sessions at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import flask
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden

from core.access import ANONYMOUS, Identity, clearance, may_view
from core.timeutil import utcnow
from store import audit
from store.models import AccessToken, User
from store.users import authenticate, find_token, live_token
from web.runtime import WebRuntime

SESSION_USER, SESSION_AT, SESSION_DISPLAY, SESSION_CSRF = "uid", "auth_at", "display", "csrf"
COOKIE_NAME = "citybrain_session"
LOGIN_PATH = "/login"
DASH_UPDATE = "/_dash-update-component"
OPEN_PREFIXES = (
    "/assets/",
    "/_dash-component-suites/",
    "/_dash-layout",
    "/_dash-dependencies",
    "/_favicon.ico",
    "/_reload-hash",
    "/healthz",
    "/api/",
)
# page path prefix -> the least role that may open it; other pages need only the right to view
PAGE_ROLES = {"/alerts": "officer", "/departments": "officer", "/sources": "officer", "/admin": "admin"}
ROUTER_OUTPUT = "_pages_content"
TOKEN_USE_GRANULARITY = timedelta(minutes=1)
ROUTER_INPUT = "_pages_location"

_guarded: dict[str, str] = {}


def guard_outputs(action: str, *component_ids: str) -> None:
    """Callbacks writing to these components perform `action`; the server refuses them otherwise."""
    for component_id in component_ids:
        _guarded[component_id] = action


def _runtime() -> WebRuntime:
    return flask.current_app.config["CITYBRAIN_RUNTIME"]


@contextmanager
def _session() -> Iterator[Session]:
    with Session(_runtime().engine) as session:
        yield session


def _note_use(session: Session, token: AccessToken) -> None:
    """When a token was last used (at most once a minute, so busy scripts do not write per request)."""
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > TOKEN_USE_GRANULARITY:
        token.last_used_at = now
        session.commit()


def _identify() -> Identity:
    request, store = flask.request, flask.session
    header = request.headers.get("Authorization", "")
    with _session() as session:
        if header.startswith("Bearer "):
            token = find_token(session, header.removeprefix("Bearer ").strip(), "api")
            user = session.get(User, token.user_id) if token is not None else None
            if user is None or user.disabled:
                return ANONYMOUS
            _note_use(session, token)
            return Identity(user.username, user.role, user.id, token.id, user.department)
        user_id = store.get(SESSION_USER)
        if user_id is not None:
            user = session.get(User, user_id)
            if user is not None and not user.disabled:
                return Identity(user.username, user.role, user.id, None, user.department)
            store.pop(SESSION_USER, None)
        token_id = store.get(SESSION_DISPLAY)
        if token_id is not None:
            token = live_token(session, token_id)
            if token is not None and token.kind == "display":
                return Identity(f"display:{token.name}", "display", None, token.id)
            store.pop(SESSION_DISPLAY, None)
    return ANONYMOUS


def current_identity() -> Identity:
    """Who is asking (once per request). Outside a request, an anonymous visitor."""
    if not flask.has_request_context():
        return ANONYMOUS
    if "citybrain_identity" not in flask.g:
        flask.g.citybrain_identity = _identify()
    return flask.g.citybrain_identity


def current_clearance() -> tuple[str, ...]:
    """The classifications the requester may see, sorted (a stable cache key across workers)."""
    if not flask.has_request_context():
        return ("public",)
    return tuple(sorted(clearance(current_identity(), _runtime().settings.auth)))


def visible_indicators(runtime: WebRuntime, classes: tuple[str, ...]) -> frozenset[str] | None:
    """The indicator keys a clearance may see; None when it sees every indicator."""
    keys = frozenset(i.key for i in runtime.catalog.cleared(classes))
    return None if len(keys) == len(runtime.catalog) else keys


def require(action: str) -> Identity:
    """Inside a write callback: the identity, or a 403 if it may not do `action`."""
    identity = current_identity()
    if not identity.may(action):
        raise Forbidden(f"{identity.role} may not {action}")
    return identity


def csrf_token() -> str:
    """The form token of this session (sign-in and sign-out forms post it back)."""
    if not flask.has_request_context():
        return ""
    if SESSION_CSRF not in flask.session:
        flask.session[SESSION_CSRF] = secrets.token_urlsafe(24)
    return flask.session[SESSION_CSRF]


def _form_token_ok() -> bool:
    expected = flask.session.get(SESSION_CSRF, "")
    return bool(expected) and secrets.compare_digest(flask.request.form.get("csrf", ""), expected)


def page_allowed(path: str, identity: Identity) -> bool:
    if path.rstrip("/") == LOGIN_PATH:
        return True
    if not may_view(identity, _runtime().settings.auth):
        return False
    for prefix, role in PAGE_ROLES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return identity.at_least(role)
    return True


def _address() -> str:
    return flask.request.remote_addr or ""


def _component_ids(body: dict[str, Any]) -> set[str]:
    """The ids of a Dash update's outputs (pattern-matching ids by their `type`)."""
    outputs = body.get("outputs")
    items = outputs if isinstance(outputs, list) else [outputs]
    ids = set()
    for item in items:
        if isinstance(item, dict):
            raw = item.get("id")
            ids.add(str(raw.get("type")) if isinstance(raw, dict) else str(raw))
    return ids


def _router_path(body: dict[str, Any]) -> str:
    for item in body.get("inputs") or []:
        if isinstance(item, dict) and item.get("id") == ROUTER_INPUT and item.get("property") == "pathname":
            return str(item.get("value") or "/")
    return "/"


def _refuse(status: int, reason: str) -> flask.Response:
    response = flask.jsonify({"error": reason})
    response.status_code = status
    return response


def _check_callback(identity: Identity) -> flask.Response | None:
    body = flask.request.get_json(silent=True)
    if not isinstance(body, dict):
        return _refuse(400, "not a Dash callback request")
    ids = _component_ids(body)
    if ROUTER_OUTPUT in ids:
        path = _router_path(body)
        return None if page_allowed(path, identity) else _refuse(403, f"not allowed to open {path}")
    for component_id in ids & set(_guarded):
        action = _guarded[component_id]
        if not identity.may(action):
            return _refuse(403, f"{identity.role} may not {action}")
    if not may_view(identity, _runtime().settings.auth):
        return _refuse(401, "sign in first")
    return None


def _accept_display_token() -> None:
    plain = flask.request.args.get("display")
    if not plain:
        return
    with _session() as session:
        token = find_token(session, plain, "display")
        if token is None:
            audit.record(session, "anonymous", "display.refused", flask.request.path, address=_address())
        else:
            flask.session.clear()
            flask.session[SESSION_DISPLAY] = token.id
            flask.session.permanent = True
            token.last_used_at = utcnow()
            audit.record(
                session, f"display:{token.name}", "display.sign_in", flask.request.path, address=_address()
            )
        session.commit()
    flask.g.pop("citybrain_identity", None)


def _guard() -> flask.Response | None:
    path = flask.request.path
    if path.startswith(OPEN_PREFIXES) or (path in (LOGIN_PATH, "/logout") and flask.request.method == "POST"):
        return None
    _accept_display_token()
    identity = current_identity()
    if path == DASH_UPDATE:
        return _check_callback(identity)
    if path.startswith("/_dash"):
        return None
    if flask.request.method in ("GET", "HEAD") and not page_allowed(path, identity):
        reason = "forbidden" if identity.signed_in else "required"
        query = urlencode({"next": flask.request.full_path.rstrip("?"), "error": reason})
        return flask.redirect(f"{LOGIN_PATH}?{query}")
    return None


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no `//host` or scheme), so sign-in cannot bounce a user elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login() -> flask.Response:
    form = flask.request.form
    target = _safe_next(form.get("next"))
    if not _form_token_ok():
        return flask.redirect(f"{LOGIN_PATH}?{urlencode({'next': target, 'error': 'expired'})}")
    username = form.get("username", "").strip()[:64]
    runtime = _runtime()
    with _session() as session:
        outcome = authenticate(
            session, username, form.get("password", ""), runtime.settings.auth.throttle_after
        )
        if outcome.user is None:
            action = "sign_in.failed" if outcome.checked else "sign_in.throttled"
            audit.record(session, username or "?", action, address=_address())
            session.commit()
            error = {"next": target, "error": "invalid"}
            if outcome.wait_seconds:
                error |= {"error": "throttled", "wait": str(int(outcome.wait_seconds + 0.999))}
            return flask.redirect(f"{LOGIN_PATH}?{urlencode(error)}")
        audit.record(session, outcome.user.username, "sign_in", address=_address())
        user_id = outcome.user.id
        session.commit()
    flask.session.clear()
    flask.session[SESSION_USER] = user_id
    flask.session[SESSION_AT] = utcnow().isoformat()
    flask.session.permanent = True
    return flask.redirect(target)


def _logout() -> flask.Response:
    identity = current_identity()
    if _form_token_ok():
        with _session() as session:
            audit.record(session, identity.name, "sign_out", address=_address())
            session.commit()
        flask.session.clear()
    return flask.redirect("/")


def audit_write(action: str, target: str, detail: str = "") -> None:
    """Record a write made by the current identity (for callbacks that write through other modules)."""
    with _session() as session:
        audit.record(session, current_identity().name, action, target, detail, _address())
        session.commit()


def install(server: flask.Flask, runtime: WebRuntime) -> None:
    auth = runtime.settings.auth
    server.config.update(
        CITYBRAIN_RUNTIME=runtime,
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=auth.secure_cookie,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=auth.session_hours),
    )
    server.before_request(_guard)
    server.add_url_rule(LOGIN_PATH, "citybrain_login", _login, methods=["POST"])
    server.add_url_rule("/logout", "citybrain_logout", _logout, methods=["POST"])
