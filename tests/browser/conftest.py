"""Browser fixtures: the real app in a subprocess, and Debian's Chromium driven by Playwright.

Playwright's own browser download does not work on intranet machines, so the test drives the
system Chromium at $CITYBRAIN_CHROMIUM (default /usr/bin/chromium).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, demo_config, unavailable

CHROMIUM = os.environ.get("CITYBRAIN_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, log: Path, limit: float = 120) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if process.poll() is not None:
            pytest.fail(f"the app exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the app was not healthy within {limit:g} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def live_app(tmp_path_factory):
    """The demo deployment with a 6-hour backfill on a fresh SQLite file, served on a free port."""
    folder = tmp_path_factory.mktemp("app")
    config = demo_config()
    port = free_port()
    config["database"]["url"] = f"sqlite:///{folder / 'citybrain.db'}"
    config["server"]["port"] = port
    config["scheduler"]["backfill"] = "6h"
    with served(config, folder) as app:
        yield app


@contextmanager
def served(config: dict, folder: Path) -> Iterator[dict]:
    """`citybrain run` of this deployment in a subprocess, until the block ends."""
    path = folder / "deploy.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    log = folder / "app.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYBRAIN_") and k != "PORT"}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--config", str(path), "run"],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{config['server']['port']}"
    try:
        startup = wait_healthy(url, process, log)
        yield {"url": url, "startup_s": startup, "log": log, "config": path, "env": env}
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        unavailable(
            f"Chromium not found at {CHROMIUM} (apt-get install chromium)", "CITYBRAIN_REQUIRE_BROWSER"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page_at(browser):
    """A fresh page at a viewport size, in a language; closed after the test."""
    contexts = []

    def open_page(width: int, height: int, locale: str = "zh-CN"):
        context = browser.new_context(viewport={"width": width, "height": height}, locale=locale)
        contexts.append(context)
        return context.new_page()

    ARTIFACTS.mkdir(exist_ok=True)
    yield open_page
    for context in contexts:
        context.close()


# A point inside a map shape that no marker covers, found by asking the browser what is on top.
_FREE_POINT = """([selector, index]) => {
  const path = document.querySelectorAll(selector)[index];
  const box = path.getBoundingClientRect();
  for (let n = 1; n < 2000; n++) {
    const x = box.x + box.width * ((n * 0.6180339) % 1), y = box.y + box.height * ((n * 0.7548776) % 1);
    if (document.elementFromPoint(x, y) === path) return [x, y];
  }
  return null;
}"""


def settle(page, shapes: str) -> None:
    """Wait until the map stands still: fitting or flying to a new view moves the shapes for up to a
    second, and a click in flight lands on whatever passes under the pointer, or nowhere."""
    where = f"JSON.stringify(document.querySelector({shapes!r}).getBoundingClientRect())"
    last = page.evaluate(where)
    for _ in range(40):
        page.wait_for_timeout(250)
        now = page.evaluate(where)
        if now == last:
            return
        last = now
    pytest.fail("the map kept moving")


def click_shape(page, shapes: str, index: int) -> None:
    """Click the `index`-th shape matching `shapes` where nothing covers it, once the map is still."""
    settle(page, shapes)
    point = page.evaluate(_FREE_POINT, [shapes, index])
    assert point, f"every point of shape {index} is covered"
    page.mouse.click(*point)
