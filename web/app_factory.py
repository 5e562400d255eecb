"""Build the Dash application: pages, callbacks, cache, /healthz. No data source is touched here."""

from __future__ import annotations

import secrets

from dash import Dash
from flask import Flask
from sqlalchemy import Engine

from callbacks import alerts as alerts_callbacks
from callbacks import departments as departments_callbacks
from callbacks import indicator_detail as indicator_detail_callbacks
from callbacks import login as login_callbacks
from callbacks import map_page as map_callbacks
from callbacks import overview as overview_callbacks
from callbacks import screen as screen_callbacks
from callbacks import shell as shell_callbacks
from callbacks import sources as sources_callbacks
from core.city import City
from core.i18n import t
from core.settings import REPO_ROOT, Settings
from indicators.catalog import Catalog
from ingest.context import IngestContext
from layouts.login import user_menu
from layouts.pages import not_found, register_pages
from layouts.shell import NAV, OFFICER_NAV, shell
from store.db import session_factory
from web import auth
from web.api import register_api
from web.cache import make_cache
from web.health import register_health
from web.language import request_language
from web.runtime import WebRuntime


def create_dash(
    settings: Settings,
    engine: Engine,
    city: City,
    catalog: Catalog,
    version: str,
    ingest: IngestContext | None = None,
) -> Dash:
    """`ingest`: the process's pipeline context when it already has one (the in-process
    scheduler's), so the API's NGSI receiver shares its adapters and validator."""
    server = Flask("citybrain")
    server.secret_key = settings.server.secret_key or secrets.token_hex(32)
    runtime = WebRuntime(settings, engine, city, catalog, make_cache(server, settings.cache), version)
    app = Dash(
        "citybrain",
        server=server,
        use_pages=True,
        pages_folder="",
        assets_folder=str(REPO_ROOT / "assets"),
        serve_locally=True,
        update_title=None,
        suppress_callback_exceptions=True,
        title="CityBrain",
    )
    default = settings.default_language

    def city_name() -> str:
        return settings.city.name.get(request_language(default))

    auth.install(server, runtime)
    if ingest is None:
        ingest = IngestContext(settings, engine, session_factory(engine), city, catalog)
    register_api(server, runtime, ingest)

    def user_area(lang: str) -> object:
        identity = auth.current_identity()
        name = identity.name if identity.role != "anonymous" else None
        return user_menu(name, identity.role, auth.csrf_token(), lang)

    providers = (
        screen_callbacks.register(app, runtime)
        | overview_callbacks.register(app, runtime)
        | login_callbacks.register(app, runtime)
        | sources_callbacks.register(app, runtime)
        | alerts_callbacks.register(app, runtime)
        | departments_callbacks.register(app, runtime)
        | indicator_detail_callbacks.register(app, runtime)
        | map_callbacks.register(app, runtime)
    )

    def nav() -> tuple[tuple[str, str], ...]:
        return NAV + OFFICER_NAV if auth.current_identity().at_least("officer") else NAV

    providers["not_found"] = lambda **_kw: not_found(request_language(default))
    register_pages(providers, lambda key: f"{t(key, request_language(default))} · {city_name()}")
    shell_callbacks.register(app)
    app.layout = lambda: shell(
        city_name(),
        settings.city.timezone,
        request_language(default),
        user_area(request_language(default)),
        nav(),
    )
    register_health(server, runtime)
    return app
