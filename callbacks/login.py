"""/login: the form's page. The form posts to the server (web/auth.py), not to a callback."""

from __future__ import annotations

from dash import Dash

from layouts.login import login_page
from web.auth import csrf_token
from web.language import request_language
from web.runtime import WebRuntime


def register(_app: Dash, runtime: WebRuntime) -> dict:
    default = runtime.settings.default_language

    def page(
        lang: str | None = None,
        next: str | None = None,
        error: str | None = None,  # noqa: A002
        wait: str | None = None,
        **_query,
    ) -> object:
        return login_page(request_language(default, lang), csrf_token(), next or "/", error, wait)

    return {"login": page}
