"""/login: a plain HTML form posted to the server, so sign-in works without scripts and with a
screen reader; the server answers with a redirect, never with the password echoed back."""

from __future__ import annotations

from dash import dcc, html

from core.i18n import t

ERRORS = {
    "invalid": "login.error.invalid",
    "throttled": "login.error.throttled",
    "required": "login.error.required",
    "forbidden": "login.error.forbidden",
    "expired": "login.error.expired",
}


def _field(label: str, **input_props: object) -> html.Div:
    return html.Div(
        [html.Label(label, htmlFor=input_props["id"]), dcc.Input(required=True, **input_props)],
        className="form-field",
    )


def login_page(lang: str, csrf: str, next_path: str, error: str | None, wait: str | None) -> html.Div:
    message = None
    if error in ERRORS:
        message = html.P(t(ERRORS[error], lang, seconds=wait or "1"), className="form-error", role="alert")
    return html.Div(
        html.Form(
            [
                html.H2(t("login.title", lang)),
                message,
                _field(
                    t("login.username", lang),
                    id="login-username",
                    name="username",
                    type="text",
                    autoComplete="username",
                    autoFocus=True,
                    maxLength=64,
                ),
                _field(
                    t("login.password", lang),
                    id="login-password",
                    name="password",
                    type="password",
                    autoComplete="current-password",
                ),
                dcc.Input(type="hidden", name="csrf", value=csrf, id="login-csrf"),
                dcc.Input(type="hidden", name="next", value=next_path, id="login-next"),
                html.Button(t("login.submit", lang), type="submit", className="button primary"),
            ],
            method="POST",
            action="/login",
            className="panel login-form",
        ),
        className="login",
    )


def user_menu(name: str | None, role: str | None, csrf: str, lang: str, here: str = "/") -> html.Div:
    """Signed in: who and a sign-out button (a POST, so a link cannot sign anyone out); else a link."""
    if name is None:
        return html.Div(
            dcc.Link(t("login.link", lang), href=f"/login?next={here}", className="nav-link"),
            className="user-menu",
        )
    return html.Div(
        [
            html.Span(f"{name} · {t(f'role.{role}', lang)}", className="user-name"),
            html.Form(
                [
                    dcc.Input(type="hidden", name="csrf", value=csrf, id="logout-csrf"),
                    html.Button(t("login.sign_out", lang), type="submit", className="lang"),
                ],
                method="POST",
                action="/logout",
            ),
        ],
        className="user-menu",
    )
