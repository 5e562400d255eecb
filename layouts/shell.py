"""The frame around every page: header with the city's name, clock, language switch, navigation."""

from __future__ import annotations

import dash
from dash import dcc, html

from core.i18n import t

NAV = (("/screen", "nav.screen"), ("/", "nav.overview"), ("/map", "nav.map"))
OFFICER_NAV = (("/alerts", "nav.alerts"), ("/departments", "nav.departments"), ("/sources", "nav.sources"))


def header(
    city_name: str, timezone: str, lang: str, user_area: html.Div, nav: tuple[tuple[str, str], ...] = NAV
) -> html.Header:
    return html.Header(
        [
            html.Div(
                [
                    html.Span("◉", className="logo", **{"aria-hidden": "true"}),
                    html.H1(t("app.title", lang, city=city_name)),
                ],
                className="brand",
            ),
            html.Nav(
                [dcc.Link(t(key, lang), href=path, className="nav-link") for path, key in nav],
                className="nav",
                **{"aria-label": t("nav.label", lang)},
            ),
            html.Div(
                [
                    html.Time(id="clock", className="clock", **{"data-tz": timezone}),
                    user_area,
                    html.Div(
                        [
                            html.Button(
                                "中文",
                                id="lang-zh",
                                className="lang" + (" active" if lang == "zh-CN" else ""),
                                **{"aria-pressed": str(lang == "zh-CN").lower(), "lang": "zh-CN"},
                            ),
                            html.Button(
                                "EN",
                                id="lang-en",
                                className="lang" + (" active" if lang == "en" else ""),
                                **{"aria-pressed": str(lang == "en").lower(), "lang": "en"},
                            ),
                        ],
                        className="lang-switch",
                        role="group",
                        **{"aria-label": t("lang.switch", lang)},
                    ),
                ],
                className="header-right",
            ),
        ],
        className="app-header",
    )


def shell(
    city_name: str, timezone: str, lang: str, user_area: html.Div, nav: tuple[tuple[str, str], ...] = NAV
) -> html.Div:
    return html.Div(
        [
            dcc.Interval(id="clock-tick", interval=1000),
            dcc.Store(id="ui-lang", data=lang),
            header(city_name, timezone, lang, user_area, nav),
            html.Main(dash.page_container, className="page"),
        ],
        className="app theme-dark",
        lang=lang,
    )
