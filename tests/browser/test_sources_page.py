"""Sign-in and the sources console in real Chromium, at a laptop's size."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def sign_in(page, url: str, username: str, password: str, next_path: str) -> None:
    page.goto(f"{url}/login?next={next_path}")
    page.wait_for_selector("#login-username")
    page.get_by_label(re.compile("用户名|User name")).fill(username)  # by label, as a screen reader finds it
    page.get_by_label(re.compile("^(密码|Password)$")).fill(password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{next_path}")


def test_a_wrong_password_says_so_and_signs_nobody_in(live_app, page_at):
    page = page_at(1366, 768)
    page.goto(f"{live_app['url']}/login?next=/sources")
    page.wait_for_selector("#login-username")
    page.fill("#login-username", "officer")
    page.fill("#login-password", "not-the-password")
    page.click("button[type=submit]")
    page.wait_for_selector("[role=alert]")
    assert "用户名或密码错误" in page.inner_text("[role=alert]")
    page.goto(f"{live_app['url']}/sources")
    page.wait_for_selector("#login-username")  # still redirected to the sign-in form


def test_officer_sees_sources_and_quarantine_but_cannot_run(live_app, page_at):
    page = page_at(1366, 768, "zh-CN")
    sign_in(page, live_app["url"], "officer", "officer-demo", "/sources")
    page.wait_for_selector("table.sources tbody tr")
    rows = page.locator("table.sources tbody tr")
    assert rows.count() == 2
    assert "wuxi-sim" in page.inner_text("table.sources")
    assert page.locator("text=立即运行").count() == 0
    page.wait_for_selector("#rejected-grid .ag-header-cell")
    assert "值班员" in page.inner_text(".user-menu")
    page.screenshot(path=str(ARTIFACTS / "sources-officer-1366x768.png"))


def test_admin_runs_a_source_now(live_app, page_at):
    page = page_at(1366, 768, "en")
    sign_in(page, live_app["url"], "admin", "admin-demo", "/sources")
    page.wait_for_selector("table.sources tbody tr")
    page.get_by_role("button", name="Run source wuxi-hotline now").click()
    page.wait_for_selector("text=Run of wuxi-hotline requested")
    page.screenshot(path=str(ARTIFACTS / "sources-admin-1366x768.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
