"""Page registration (Dash Pages, explicit): each page's layout is a pure layout function fed by a
view provider the callbacks supply, so no layout touches data itself."""

from __future__ import annotations

from collections.abc import Callable

import dash
from dash import html

from core.i18n import t

PAGES = (
    # path, module name, title key
    ("/screen", "screen", "nav.screen"),
    ("/", "overview", "nav.overview"),
    ("/map", "map", "nav.map"),
    ("/sources", "sources", "nav.sources"),
    ("/alerts", "alerts", "nav.alerts"),
    ("/departments", "departments", "nav.departments"),
    ("/login", "login", "nav.login"),
    ("/indicators/<key>", "indicator_detail", "detail.title"),
)


def register_pages(providers: dict[str, Callable[..., html.Div]], title: Callable[[str], str]) -> None:
    """`providers[name](**query)` returns the page; `title(key)` the browser tab title. A path with
    `<variable>` parts is a template: the provider gets each part by name."""
    for order, (path, name, title_key) in enumerate(PAGES):
        dash.register_page(
            f"citybrain.{name}",
            **({"path_template": path} if "<" in path else {"path": path}),
            name=name,
            order=order,
            title=lambda *_a, _k=title_key, **_kw: title(_k),
            layout=providers[name],
        )
    dash.register_page("citybrain.not_found_404", path="/404", layout=providers["not_found"])


def not_found(lang: str) -> html.Div:
    return html.Div(t("page.not_found", lang), className="panel not-found")
