"""The duty desk in real Chromium: a red alert raised through the real pipeline announces itself,
the demo officer acknowledges it in two clicks with a note, dispatches it, and comments with an
XSS payload that stays text.

The app runs with a disabled CSV source the test feeds (`citybrain ingest` runs it, as an operator
would), so the alert comes from a department's file like any other reading.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, free_port, served
from tests.conftest import REPO, demo_config

pytestmark = pytest.mark.browser
XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
DEPARTMENT = "市生态环境局"


@pytest.fixture(scope="module")
def desk_server(tmp_path_factory):
    """The demo deployment plus the tests' indicators and a CSV drop folder, refreshing every 2 s."""
    folder = tmp_path_factory.mktemp("desk")
    drops = folder / "drops"
    drops.mkdir()
    config = demo_config()
    port = free_port()
    config["database"]["url"] = f"sqlite:///{folder / 'citybrain.db'}"
    config["server"]["port"] = port
    config["scheduler"]["backfill"] = "2h"
    config["screen"]["refresh"] = "2s"
    config["indicator_catalogs"] = [str(REPO / "tests" / "data" / "test_indicators.yaml")]
    config["sources"] = [s for s in config["sources"] if s["id"] == "wuxi-sim"] + [
        {
            "id": "desk-drill",
            "type": "csv",
            "enabled": False,
            "options": {
                "path": str(drops),
                "observed_at_column": "time",
                "timezone": "UTC",
                "entity_column": "station",
                "indicator": "test.plain",
                "value_column": "value",
            },
        }
    ]
    with served(config, folder) as app:
        yield app | {"drops": drops, "db": folder / "citybrain.db"}


def raise_red_alert(server: dict, station: str) -> None:
    """A department's file with two readings far past the red line, ingested by the CLI."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    lines = [f"{(now - timedelta(minutes=m)):%Y-%m-%d %H:%M:%S},{station},350" for m in (10, 5)]
    (server["drops"] / f"drill-{station}.csv").write_text("time,station,value\n" + "\n".join(lines) + "\n")
    result = subprocess.run(
        [sys.executable, "app.py", "--config", str(server["config"]), "ingest", "desk-drill"],
        cwd=REPO,
        env=server["env"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "accepted=2" in result.stdout, result.stdout


def stored_events(server: dict, station: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(server["db"]) as db:
        return db.execute(
            "SELECT e.kind, e.actor, e.note FROM alert_events e JOIN alerts a ON a.id = e.alert_id "
            "JOIN series s ON s.id = a.series_id WHERE s.indicator_key = 'test.plain' AND s.entity = ? "
            "ORDER BY e.id",
            (station,),
        ).fetchall()


@pytest.mark.parametrize(
    "width, height, station, place", [(1366, 768, "1192A", "东亭"), (1920, 1080, "1193A", "旺庄")]
)
def test_officer_acknowledges_a_new_red_alert_in_two_clicks(
    desk_server, page_at, width, height, station, place
):
    page = page_at(width, height, locale="zh-CN")
    errors, requests, dialogs = [], [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    url = desk_server["url"]
    page.goto(f"{url}/login?next=/alerts")
    page.fill("#login-username", "officer")
    page.fill("#login-password", "officer-demo")
    page.locator("form.login-form button[type=submit]").click()
    expect(page.locator("#desk-title")).to_have_text("值班台", timeout=30_000)
    expect(page.locator(".desk-filters .dash-dropdown")).to_have_count(5, timeout=30_000)

    # the sound is off until the officer switches it on: that click lets the browser play it
    sound = page.locator("#desk-sound")
    expect(sound).to_have_attribute("aria-pressed", "false")
    sound.click()
    expect(sound).to_have_attribute("aria-pressed", "true")
    expect(sound).to_have_text("声音提醒：开")

    raise_red_alert(desk_server, station)
    banner = page.locator("#desk-announce-text")
    expect(banner).to_contain_text(place, timeout=30_000)
    expect(banner).to_contain_text("新的红色（特别严重）预警")
    expect(page.locator("#desk-announce")).to_have_class(re.compile(r"\bactive level-4 flash\b"))
    page.wait_for_function("window.citybrainDeskAudio.played >= 2", timeout=10_000)
    row = page.locator(".desk-row[data-severity='4']", has_text=place)
    expect(row).to_have_count(1, timeout=15_000)
    expect(row.locator(".state-pill")).to_have_text("未确认")
    page.screenshot(path=str(ARTIFACTS / f"alerts-desk-announce-{width}x{height}.png"))

    # two clicks: "确认" on the row (the note field takes the focus), then "确认预警"
    row.locator("[data-desk-ack]").click()
    page.wait_for_function("document.activeElement && document.activeElement.id === 'desk-note'")
    expect(page.locator("#desk-panel-title")).to_contain_text(place)
    expect(page.locator("#desk-note-hint")).to_have_text("确认Ⅰ级（红色）预警须填写备注。")
    expect(page.locator("#desk-chart .main-svg").first).to_be_visible(timeout=15_000)
    note = f"已通知{place}站运维人员现场核查"
    page.keyboard.type(note)
    page.locator("#desk-ack").click()

    timeline = page.locator("#desk-timeline")
    expect(timeline).to_contain_text(note, timeout=15_000)
    expect(timeline.locator(".event").last).to_contain_text("officer")
    expect(page.locator("#desk-action-status")).to_have_text("已确认。")
    expect(row.locator(".state-pill")).to_have_text("已确认", timeout=15_000)
    expect(banner).not_to_contain_text(place, timeout=15_000)  # called out until acknowledged
    assert stored_events(desk_server, station)[-1] == ("acknowledged", "officer", note)

    # dispatch (派单) to a department
    page.locator("#desk-department").click()
    page.get_by_role("option", name=DEPARTMENT).click()
    page.locator("#desk-assign").click()
    expect(timeline).to_contain_text(f"派单至{DEPARTMENT}", timeout=15_000)
    expect(row).to_contain_text(f"{DEPARTMENT}·已派单", timeout=15_000)

    # a comment is shown as the text it is, never as markup
    page.locator("#desk-note").fill(XSS)
    page.locator("#desk-comment").click()
    expect(timeline.locator(".event-note").last).to_have_text(XSS, timeout=15_000)
    assert page.locator("#desk-timeline img, #desk-timeline script").count() == 0
    page.screenshot(path=str(ARTIFACTS / f"alerts-desk-{width}x{height}.png"))

    assert [kind for kind, _, _ in stored_events(desk_server, station)] == [
        "opened",
        "acknowledged",
        "assigned",
        "commented",
    ]
    assert page.evaluate("document.documentElement.scrollWidth") == width
    assert "alert=" in page.url
    assert not dialogs and not errors, (dialogs, errors)
    outside = [u for u in requests if not u.startswith((url, "data:", "blob:"))]
    assert not outside, f"loaded from outside the deployment: {outside}"


def test_departments_page_lists_the_catalog_departments(desk_server, page_at):
    page = page_at(1366, 768, locale="en-GB")
    page.goto(f"{desk_server['url']}/login?next=/departments")
    page.fill("#login-username", "officer")
    page.fill("#login-password", "officer-demo")
    page.locator("form.login-form button[type=submit]").click()
    expect(page.locator("#dept-title")).to_have_text("Department accountability", timeout=30_000)
    expect(page.locator(".dept-row")).not_to_have_count(0)
    expect(page.locator("#dept-overdue-rule")).to_contain_text("I Red 30 min")
    page.get_by_label("last 30 days").check()
    expect(page.locator(".dept-table caption")).to_contain_text("30 days")
    page.screenshot(path=str(ARTIFACTS / "departments-1366x768.png"))
