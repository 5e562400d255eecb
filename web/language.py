"""The UI language of the current request: ?lang=, then the cookie the switch sets, then the
browser's Accept-Language, then the deployment's default."""

from __future__ import annotations

import flask

from core.i18n import negotiate, normalize_language
from core.settings import LANGUAGES

COOKIE = "citybrain_lang"


def request_language(default: str, query_lang: str | None = None) -> str:
    if not flask.has_request_context():
        return default
    for candidate in (query_lang, flask.request.args.get("lang"), flask.request.cookies.get(COOKIE)):
        if candidate and normalize_language(candidate, "") in LANGUAGES:
            return normalize_language(candidate, default)
    return negotiate(flask.request.headers.get("Accept-Language"), default)
