"""Settings: a bad deployment file names every problem's key path and value; nothing starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.settings import ConfigError, load_settings, parse_duration

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"


def write_config(tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_demo_config_is_valid():
    settings = load_settings(DEMO, environ={})
    assert settings.city.adcode == "320200"
    assert settings.scheduler.backfill == 7 * 86400
    assert settings.sources[0].every == 60


def test_every_problem_is_reported_with_its_key_path_and_value(tmp_path):
    path = write_config(
        tmp_path,
        city__timezone="Mars/Olympus",
        server__port=70000,
        scheduler__backfill="soon",
        cache__type="memcached",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    text = caught.value.report()
    assert "4 problem(s)" in text
    assert "city.timezone" in text and "Mars/Olympus" in text
    assert "server.port" in text and "70000" in text
    assert "scheduler.backfill" in text and "'soon'" in text and "duration" in text
    assert "cache.type" in text and "memcached" in text


def test_unknown_keys_are_errors_not_ignored(tmp_path):
    path = write_config(tmp_path, server__prot=8080)
    with pytest.raises(ConfigError, match=r"server\.prot: unknown key"):
        load_settings(path, environ={})


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("city:\n  name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+"):
        load_settings(path, environ={})


def test_missing_files_are_named(tmp_path):
    path = write_config(tmp_path, city__stations="config/cities/nowhere.csv")
    with pytest.raises(ConfigError, match=r"city\.stations: file not found"):
        load_settings(path, environ={})


def test_environment_overrides_database_cache_secret_and_port():
    settings = load_settings(
        DEMO,
        environ={
            "CITYBRAIN_DATABASE_URL": "postgresql+psycopg://u@h/db",
            "CITYBRAIN_CACHE_URL": "redis://127.0.0.1:6379/2",
            "CITYBRAIN_SECRET_KEY": "s3cret",
            "PORT": "9000",
        },
    )
    assert settings.database.url == "postgresql+psycopg://u@h/db"
    assert settings.cache.type == "redis" and settings.cache.url == "redis://127.0.0.1:6379/2"
    assert settings.server.secret_key == "s3cret"
    assert settings.server.port == 9000


def test_bad_port_from_environment_is_reported():
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_settings(DEMO, environ={"PORT": "eighty"})


@pytest.mark.parametrize(
    "text, seconds",
    [("90", 90), ("30s", 30), ("5m", 300), ("2h", 7200), ("7d", 604800), (45, 45), ("500ms", 0.5)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["-5m", "0", "5 weeks", True, ""])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_check_config_command_prints_problems_and_exits_1(tmp_path):
    path = write_config(
        tmp_path,
        screen__choropleth="env.nonexistent",
        sources__0__type="ftp",
        screen__playlist=[{"indicator": "env.aqi", "seconds": 30}, {"indicator": "env.nope", "seconds": 30}],
        map={"heatmap": "hotline.nope"},
    )
    result = subprocess.run(
        [sys.executable, "app.py", "check-config", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "screen.choropleth: unknown indicator 'env.nonexistent'" in result.stderr
    assert "sources.0 (wuxi-sim).type: unknown source type 'ftp'" in result.stderr
    assert "screen.playlist.1.indicator: unknown indicator 'env.nope'" in result.stderr
    assert "map.heatmap: unknown indicator 'hotline.nope'" in result.stderr


def test_check_config_rejects_bad_adapter_options(tmp_path):
    path = write_config(tmp_path, sources__0__options={"seed": "many", "colour": "red"})
    result = subprocess.run(
        [sys.executable, "app.py", "check-config", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "sources.0 (wuxi-sim).options.seed" in result.stderr
    assert "sources.0 (wuxi-sim).options.colour" in result.stderr


def test_check_config_accepts_the_demo():
    result = subprocess.run(
        [sys.executable, "app.py", "check-config"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok:")
