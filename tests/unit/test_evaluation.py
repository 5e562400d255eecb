"""The catalog's thresholds: raw levels, consistency checks naming the indicator and level, and the
plain-threshold explanation. Rule behaviour over time is in test_rules.py."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from core.settings import ConfigError
from indicators.catalog import Thresholds, load_catalog
from indicators.evaluation import Transition, explain

CATALOG = load_catalog()
AQI = CATALOG["env.aqi"]
SPEED = CATALOG["traffic.road_speed"]
T0 = datetime(2026, 11, 23, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
values = st.floats(min_value=0, max_value=500, allow_nan=False)


@given(values, values)
def test_level_is_monotone_in_the_value_for_higher_is_worse(a, b):
    low, high = sorted((a, b))
    assert AQI.thresholds.severity(low) <= AQI.thresholds.severity(high)


@given(st.floats(min_value=0, max_value=150), st.floats(min_value=0, max_value=150))
def test_level_is_monotone_for_lower_is_worse(a, b):
    low, high = sorted((a, b))
    assert SPEED.thresholds.severity(low) >= SPEED.thresholds.severity(high)


def test_band_edges_follow_hj_633():
    """Raw levels (before hysteresis and duration) at the HJ 633-2012 band edges."""
    assert [AQI.thresholds.severity(v) for v in (100, 101, 150, 151, 201, 300, 301)] == [0, 1, 1, 2, 3, 3, 4]


def test_explanation_of_a_plain_threshold_in_both_languages():
    step = Transition("traffic.road_speed:threshold", "opened", T0, 0, 4, 7.0, {"value": 7.0, "limit": 8.0})
    assert explain(SPEED, "Renmin Road", step, "en", SHANGHAI).startswith(
        "Road segment speed at Renmin Road is 7 km/h, at or below 8 km/h (level I, Red)"
    )
    assert (
        explain(SPEED, "人民中路", step, "zh-CN", SHANGHAI)
        == "人民中路路段平均车速为7 km/h，达到或低于8 km/h（I级红色预警）"
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        (
            {"direction": "above", "blue": 100, "yellow": 90},
            r"level yellow \(90\.0\) must be above level blue",
        ),
        (
            {"direction": "below", "blue": 10, "yellow": 20},
            r"level yellow \(20\.0\) must be below level blue",
        ),
        ({"direction": "above"}, "at least one"),
    ],
)
def test_inconsistent_thresholds_are_rejected(bad, message):
    with pytest.raises(ValidationError, match=message):
        Thresholds.model_validate(bad)


def catalog_file(tmp_path, body: str):
    path = tmp_path / "extra.yaml"
    path.write_text(
        "indicators:\n  - key: env.aqi\n    domain: environment\n    name: {zh-CN: x, en: x}\n"
        "    bounds: [0, 500]\n    cadence: 1h\n    level: station\n    station_kinds: [air]\n"
        "    department: {zh-CN: x, en: x}\n" + body,
        encoding="utf-8",
    )
    return path


def test_levels_out_of_order_name_the_indicator_and_level(tmp_path):
    path = catalog_file(tmp_path, "    thresholds: {blue: 200, yellow: 150}\n")
    with pytest.raises(ConfigError, match=r"indicators\.0 \(env\.aqi\)\.thresholds: level yellow"):
        load_catalog([path])


@pytest.mark.parametrize(
    "thresholds, message",
    [
        (
            "{direction: above, blue: 100, yellow: 150, clear: {blue: 110}}",
            r"indicators\.0 \(env\.aqi\)\.thresholds: clear value of level blue \(110\.0\) "
            r"must be at or below",
        ),
        (
            "{direction: below, blue: 25, clear: {blue: 20}}",
            r"indicators\.0 \(env\.aqi\)\.thresholds: clear value of level blue \(20\.0\) "
            r"must be at or above",
        ),
        ("{direction: above, blue: 100, clear: {red: 90}}", r"clear value for level red, which has no limit"),
    ],
)
def test_clear_values_on_the_wrong_side_are_named(tmp_path, thresholds, message):
    with pytest.raises(ConfigError, match=message):
        load_catalog([catalog_file(tmp_path, f"    thresholds: {thresholds}\n")])


def test_forecast_needs_its_target_threshold(tmp_path):
    path = catalog_file(tmp_path, "    thresholds: {blue: 300}\n    rules: [{type: forecast, target: red}]\n")
    with pytest.raises(ConfigError, match=r"indicators\.0 \(env\.aqi\): .*forecast rule targets level red"):
        load_catalog([path])


def test_check_config_reports_inconsistent_rules(tmp_path):
    import subprocess
    import sys

    import yaml

    repo = __import__("pathlib").Path(__file__).resolve().parents[2]
    config = yaml.safe_load((repo / "config" / "demo.yaml").read_text(encoding="utf-8"))
    config["indicator_catalogs"] = [str(catalog_file(tmp_path, "    thresholds: {blue: 200, yellow: 150}\n"))]
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "app.py", "check-config", str(path)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert (
        "indicators.0 (env.aqi).thresholds: level yellow (150.0) must be above level blue (200.0)"
        in result.stderr
    )
