"""Sign-in, sessions, tokens and server-side authorisation, through real HTTP requests to the app.

Every refusal is checked with a hand-made request, not by looking for a hidden button.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from store.models import AuditEntry
from store.users import create_token, create_user, revoke_token, set_disabled
from tests.conftest import demo_config
from tests.dash_requests import callback_body, router

REPO = Path(__file__).resolve().parents[2]
PASSWORDS = {"vera": "viewer-pass-1", "otto": "officer-pass-1", "ada": "admin-pass-01"}


def build_app(ingest, tmp_path: Path, anonymous: bool):
    from app import load_deployment
    from web.app_factory import create_dash

    config = demo_config()
    config["auth"] = {"anonymous": anonymous, "throttle_after": 3}
    config["server"]["secret_key"] = "test-secret-key"
    path = tmp_path / "secured.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    deployment = load_deployment(path)
    with ingest.sessions() as session:
        for name, role in (("vera", "viewer"), ("otto", "officer"), ("ada", "admin")):
            create_user(session, name, PASSWORDS[name], role)
        session.commit()
    app = create_dash(deployment.settings, ingest.engine, deployment.city, deployment.catalog, "test")
    app.server.config["TESTING"] = True
    return app


@pytest.fixture
def secured(ingest, tmp_path):
    """The app as a production config runs it: sign-in required for every page."""
    return build_app(ingest, tmp_path, anonymous=False)


@pytest.fixture
def open_demo(ingest, tmp_path):
    return build_app(ingest, tmp_path, anonymous=True)


def csrf(client) -> str:
    page = client.post("/_dash-update-component", json=router("/login"))
    assert page.status_code == 200, page.data
    match = re.search(rb'"name":\s*"csrf"[^}]*?"value":\s*"([^"]+)"', page.data) or re.search(
        rb'"value":\s*"([^"]+)"[^}]*?"name":\s*"csrf"', page.data
    )
    assert match, page.data[:500]
    return match.group(1).decode()


def sign_in(client, username: str, password: str | None = None, next_path: str = "/"):
    token = csrf(client)
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password or PASSWORDS[username],
            "csrf": token,
            "next": next_path,
        },
    )


def audit_actions(ingest) -> list[tuple[str, str]]:
    with ingest.sessions() as session:
        return [(a.actor, a.action) for a in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_pages_redirect_to_login_and_callbacks_are_refused_when_signed_out(secured):
    client = secured.server.test_client()
    for path in ("/screen", "/", "/alerts", "/indicators/env.aqi"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next=")
    assert client.get("/login").status_code == 200
    assert (
        client.post("/_dash-update-component", json=callback_body(secured, "screen-kpis")).status_code == 401
    )
    refused = client.post("/_dash-update-component", json=router("/screen"))
    assert refused.status_code == 403 and b"not allowed" in refused.data


def test_sign_in_sets_a_safe_cookie_and_opens_the_pages(secured, ingest):
    client = secured.server.test_client()
    response = sign_in(client, "vera", next_path="/screen")
    assert response.status_code == 302 and response.headers["Location"] == "/screen"
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("citybrain_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/screen").status_code == 200
    assert (
        client.post("/_dash-update-component", json=callback_body(secured, "screen-kpis")).status_code == 200
    )
    assert ("vera", "sign_in") in audit_actions(ingest)


def test_a_wrong_password_is_refused_audited_and_never_logged(secured, ingest, caplog):
    caplog.set_level(logging.DEBUG)
    client = secured.server.test_client()
    response = sign_in(client, "vera", "not-the-password-xyz")
    assert "error=invalid" in response.headers["Location"]
    assert client.get("/screen").status_code == 302
    assert ("vera", "sign_in.failed") in audit_actions(ingest)
    with ingest.sessions() as session:
        details = " ".join(a.detail + a.target for a in session.scalars(select(AuditEntry)))
    assert "not-the-password-xyz" not in details + caplog.text
    assert PASSWORDS["vera"] not in details + caplog.text


def test_repeated_failures_slow_the_account_down(secured, ingest):
    client = secured.server.test_client()
    for _ in range(3):
        sign_in(client, "otto", "wrong-password-1")
    # even the right password is refused unchecked while the account is slowed down
    response = sign_in(client, "otto")
    assert "error=throttled" in response.headers["Location"] and "wait=" in response.headers["Location"]
    assert client.get("/screen").status_code == 302
    assert ("otto", "sign_in.throttled") in audit_actions(ingest)


def test_a_viewer_may_not_open_the_officers_pages(secured):
    client = secured.server.test_client()
    sign_in(client, "vera")
    response = client.get("/alerts")
    assert response.status_code == 302 and "error=forbidden" in response.headers["Location"]
    assert client.post("/_dash-update-component", json=router("/alerts")).status_code == 403
    officer = secured.server.test_client()
    sign_in(officer, "otto")
    assert officer.get("/alerts").status_code == 200


def test_forged_write_callbacks_are_refused_for_viewers_and_displays(secured, ingest):
    from dash import Input, Output

    from web.auth import guard_outputs, require

    guard_outputs("alert.acknowledge", "test-ack-result")

    @secured.callback(Output("test-ack-result", "children"), Input("test-ack-button", "n_clicks"))
    def acknowledge(_clicks):
        return f"acknowledged by {require('alert.acknowledge').name}"
    forged = {
        "output": "test-ack-result.children",
        "outputs": {"id": "test-ack-result", "property": "children"},
        "inputs": [{"id": "test-ack-button", "property": "n_clicks", "value": 1}],
        "changedPropIds": ["test-ack-button.n_clicks"],
    }
    viewer = secured.server.test_client()
    sign_in(viewer, "vera")
    refused = viewer.post("/_dash-update-component", json=forged)
    assert refused.status_code == 403 and b"may not alert.acknowledge" in refused.data
    with ingest.sessions() as session:
        _, plain = create_token(session, "display", "wall 1")
        session.commit()
    display = secured.server.test_client()
    assert display.get(f"/screen?display={plain}").status_code == 200
    assert display.post("/_dash-update-component", json=forged).status_code == 403
    officer = secured.server.test_client()
    sign_in(officer, "otto")
    allowed = officer.post("/_dash-update-component", json=forged)
    assert allowed.status_code == 200 and b"acknowledged by otto" in allowed.data


def test_display_tokens_open_the_wall_until_revoked(secured, ingest):
    with ingest.sessions() as session:
        token, plain = create_token(session, "display", "duty room wall")
        session.commit()
    wall = secured.server.test_client()
    assert wall.get("/screen?display=not-a-token").status_code == 302
    assert wall.get(f"/screen?display={plain}").status_code == 200
    assert wall.get("/screen").status_code == 200  # the session remembers the token
    assert wall.post("/_dash-update-component", json=callback_body(secured, "screen-kpis")).status_code == 200
    with ingest.sessions() as session:
        assert revoke_token(session, token.id)
        session.commit()
    assert wall.get("/screen").status_code == 302
    assert wall.post("/_dash-update-component", json=callback_body(secured, "screen-kpis")).status_code == 401
    assert ("display:duty room wall", "display.sign_in") in audit_actions(ingest)


def test_disabling_a_user_ends_their_session(secured, ingest):
    client = secured.server.test_client()
    sign_in(client, "otto")
    assert client.get("/screen").status_code == 200
    with ingest.sessions() as session:
        set_disabled(session, "otto", True)
        session.commit()
    assert client.get("/screen").status_code == 302


def test_sign_in_never_redirects_off_site_and_needs_the_form_token(secured):
    client = secured.server.test_client()
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        assert sign_in(client, "vera", next_path=target).headers["Location"] == "/"
    stranger = secured.server.test_client()
    response = stranger.post("/login", data={"username": "vera", "password": PASSWORDS["vera"], "next": "/"})
    assert "error=expired" in response.headers["Location"]
    assert stranger.get("/screen").status_code == 302


def test_sign_out_needs_the_form_token(secured):
    client = secured.server.test_client()
    sign_in(client, "vera")
    client.post("/logout", data={})
    assert client.get("/screen").status_code == 200
    client.post("/logout", data={"csrf": csrf(client)})
    assert client.get("/screen").status_code == 302


def test_the_demo_lets_visitors_view_but_not_write(open_demo):
    """Here the write callback is not in the guard's registry: its own `require` still refuses."""
    from dash import Input, Output

    from web.auth import require

    @open_demo.callback(Output("test-close-result", "children"), Input("x", "n_clicks"))
    def close(_clicks):
        return f"closed by {require('alert.close').name}"

    client = open_demo.server.test_client()
    assert client.get("/screen").status_code == 200
    assert (
        client.post("/_dash-update-component", json=callback_body(open_demo, "screen-kpis")).status_code
        == 200
    )
    forged = {
        "output": "test-close-result.children",
        "outputs": {"id": "test-close-result", "property": "children"},
        "inputs": [{"id": "x", "property": "n_clicks", "value": 1}],
    }
    assert client.post("/_dash-update-component", json=forged).status_code == 403
    assert client.get("/alerts").status_code == 302


def test_restricted_indicators_are_left_out_for_those_without_clearance(open_demo):
    restricted, public = b"Crowd density at key places", b"Air quality index"
    english = {"Accept-Language": "en"}
    visitor = open_demo.server.test_client()
    page = visitor.post("/_dash-update-component", json=router("/"), headers=english)
    officer = open_demo.server.test_client()
    sign_in(officer, "otto")
    officer_page = officer.post("/_dash-update-component", json=router("/"), headers=english)
    assert page.status_code == officer_page.status_code == 200
    assert public in page.data and restricted not in page.data
    assert public in officer_page.data and restricted in officer_page.data
