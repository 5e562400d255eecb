"""Warning rules: hypothesis properties and realistic scenarios for every rule type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from indicators.catalog import Indicator
from indicators.evaluation import evaluate_series, explain, stale_transition

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # a Monday, 08:00 in Shanghai
STEP = timedelta(minutes=5)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def indicator(**changes) -> Indicator:
    base = {
        "key": "test.level",
        "domain": "water",
        "name": {"zh-CN": "测试水位", "en": "Test level"},
        "unit": "m",
        "bounds": [0, 1000],
        "cadence": "5m",
        "level": "station",
        "station_kinds": ["river"],
        "decimals": 2,
        "department": {"zh-CN": "水利局", "en": "Water bureau"},
        "thresholds": {
            "direction": "above",
            "blue": 10,
            "yellow": 20,
            "orange": 30,
            "red": 40,
            "hysteresis": 2,
        },
    }
    base.update(changes)
    return Indicator.model_validate(base)


def series(values, start=T0, step=STEP):
    return [(start + i * step, float(v)) for i, v in enumerate(values)]


def final_level(ind: Indicator, values, rule="threshold") -> int:
    level = 0
    key = f"{ind.key}:{rule}"
    for step in evaluate_series(ind, series(values), 0, {}):
        if step.rule_key == key:
            level = step.to_severity
    return level


def levels_over_time(ind, values, rule="threshold"):
    """The rule's level after each point (replaying transitions)."""
    key = f"{ind.key}:{rule}"
    steps = [s for s in evaluate_series(ind, series(values), 0, {}) if s.rule_key == key]
    out, level = [], 0
    for at, _ in series(values):
        for s in steps:
            if s.at == at:
                level = s.to_severity
        out.append(level)
    return out


PLAIN = indicator()
HELD = indicator(thresholds={"direction": "above", "blue": 10, "yellow": 20, "hysteresis": 2, "for": "15m"})


@given(
    st.floats(min_value=10, max_value=11.99),
    st.lists(st.floats(min_value=8.01, max_value=19.99), max_size=60),
)
def test_no_flapping_inside_the_hysteresis_band(entry, wobble):
    """Once at blue (limit 10, clear 8), values between the clear value and the next limit keep it."""
    levels = levels_over_time(PLAIN, [entry, *wobble])
    assert levels == [1] * len(levels)


@given(st.floats(min_value=0, max_value=60), st.floats(min_value=0, max_value=60))
def test_level_is_monotone_in_the_value(a, b):
    low, high = sorted((a, b))
    assert final_level(PLAIN, [low] * 5) <= final_level(PLAIN, [high] * 5)


@given(st.lists(st.floats(min_value=0, max_value=50), min_size=1, max_size=80))
@settings(max_examples=200)
def test_at_most_one_open_alert_per_rule(values):
    """Transitions alternate open ... resolve: never two opens without a resolve between them."""
    open_now = False
    for step in evaluate_series(PLAIN, series(values), 0, {}):
        if step.kind == "opened":
            assert not open_now
            open_now = True
        elif step.kind == "resolved":
            assert open_now
            open_now = False
        else:
            assert open_now


@given(st.lists(st.floats(min_value=0, max_value=30), min_size=1, max_size=60))
def test_duration_is_honoured(values):
    """With `for: 15m`, a level opens only after its condition held for 15 min (4 readings 5 min apart)."""
    points = series(values)
    for step in evaluate_series(HELD, points, 0, {}):
        if step.kind in ("opened", "escalated"):
            limit = HELD.thresholds.limit(step.to_severity)
            held = [v for t, v in points if step.at - timedelta(minutes=15) <= t <= step.at]
            assert len(held) >= 4 and all(v >= limit for v in held)


def test_duration_scenario_and_explanation():
    values = [5, 12, 14, 13, 7, 12, 12, 13, 12, 12]  # 10 min above, a dip, then 15 min above
    steps = evaluate_series(HELD, series(values), 0, {})
    opened = [s for s in steps if s.kind == "opened"]
    assert len(opened) == 1 and opened[0].at == T0 + 8 * STEP
    text = explain(HELD, "惠山", opened[0], "en", SHANGHAI)
    assert text == "Test level at 惠山 has been at or above 10.00 m for 15 min, now 12.00 m (level IV, Blue)"
    assert "已持续15分钟达到或超过10.00 m" in explain(HELD, "惠山", opened[0], "zh-CN", SHANGHAI)


def test_threshold_below_direction_with_clear_values():
    speed = indicator(
        key="test.speed",
        thresholds={"direction": "below", "blue": 25, "yellow": 18, "clear": {"blue": 30, "yellow": 22}},
    )
    assert levels_over_time(speed, [40, 24, 27, 17, 20, 23, 29, 31]) == [0, 1, 1, 2, 2, 1, 1, 0]


def test_escalation_and_deescalation_respect_clear_values():
    assert levels_over_time(PLAIN, [5, 21, 31, 29, 28.5, 27, 19, 17, 9, 7]) == [0, 2, 3, 3, 3, 2, 2, 1, 1, 0]


def test_rate_rule_scenario():
    river = indicator(
        rules=[{"type": "rate", "change": 0.3, "within": "30m", "level": "yellow"}],
        thresholds={"direction": "above", "blue": 9, "yellow": 9.5},
    )
    values = [3.0, 3.02, 3.05, 3.1, 3.2, 3.35, 3.45, 3.5, 3.52, 3.52, 3.52, 3.52, 3.52, 3.52, 3.52]
    levels = levels_over_time(river, values, "rate")
    assert levels[5] == 2  # 3.35 - 3.02 >= 0.3 within 30 min
    assert levels[-1] == 0  # flat for more than 30 min: resolved
    assert max(levels[:5]) == 0
    step = next(s for s in evaluate_series(river, series(values), 0, {}) if s.rule_key.endswith(":rate"))
    assert "rose by 0.35 m within 30 min" in explain(river, "惠山", step, "en", SHANGHAI)


def test_falling_rate():
    speed = indicator(
        key="test.speed", rules=[{"type": "rate", "change": -20, "within": "15m"}], thresholds=None
    )
    assert levels_over_time(speed, [60, 58, 50, 35, 33, 33, 33, 34, 35], "rate")[3] == 1


def test_forecast_rule_predicts_the_crossing_time():
    river = indicator(
        thresholds={"direction": "above", "blue": 3.6, "yellow": 3.9},
        rules=[{"type": "forecast", "target": "yellow", "horizon": "2h", "window": "1h"}],
    )
    values = [3.30 + 0.03 * i for i in range(22)]  # +0.36 m/h; reaches 3.90 at the 21st point
    steps = [s for s in evaluate_series(river, series(values), 0, {}) if s.rule_key.endswith(":forecast")]
    opened = steps[0]
    assert opened.kind == "opened" and opened.at == T0 + 5 * STEP  # the first window with 6 points
    minutes = opened.facts["minutes"]
    assert 74 <= minutes <= 76  # (3.90 - 3.45) / 0.36 m/h = 75 min
    assert (
        steps[-1].kind == "resolved" and steps[-1].at == T0 + 20 * STEP
    )  # crossed: the threshold takes over
    assert abs((opened.predicted_at - opened.at).total_seconds() / 60 - minutes) < 1e-6
    text = explain(river, "惠山闸", opened, "en", SHANGHAI)
    assert "is predicted to reach 3.90 m (Yellow line) in about" in text


def test_forecast_ignores_a_single_outlier():
    river = indicator(
        thresholds={"direction": "above", "blue": 3.6, "yellow": 3.9},
        rules=[{"type": "forecast", "target": "yellow", "horizon": "2h", "window": "1h"}],
    )
    values = [3.3] * 12 + [3.85] + [3.3] * 3
    assert not [s for s in evaluate_series(river, series(values), 0, {}) if s.rule_key.endswith(":forecast")]


def test_nodata_from_the_sweep_and_from_gaps():
    gauge = indicator(rules=[{"type": "nodata", "after": 3}])
    key = "test.level:nodata"
    last = T0
    assert stale_transition(gauge, key, last, T0 + timedelta(minutes=14), 0) is None
    opened = stale_transition(gauge, key, last, T0 + timedelta(minutes=16), 0)
    assert opened.kind == "opened" and opened.to_severity == 1
    assert "for 16 min, expected every 5 min" in explain(gauge, "惠山闸", opened, "en", SHANGHAI)
    assert stale_transition(gauge, key, last, T0 + timedelta(hours=2), 1) is None  # already open
    resumed = evaluate_series(gauge, series([1, 1]), 1, {key: 1})
    assert [(s.rule_key, s.kind) for s in resumed if s.rule_key == key] == [(key, "resolved")]
    gap = series([1, 1]) + [(T0 + timedelta(minutes=60), 1.0)]
    kinds = [(s.kind, s.at) for s in evaluate_series(gauge, gap, 1, {}) if s.rule_key == key]
    assert kinds == [("opened", T0 + STEP + timedelta(minutes=15)), ("resolved", T0 + timedelta(minutes=60))]


def test_anomaly_against_the_same_weekday_hour():
    calls = indicator(
        key="test.calls",
        unit="calls/h",
        decimals=0,
        thresholds=None,
        rules=[{"type": "anomaly", "weeks": 4, "z": 3.5, "min_weeks": 3}],
    )
    now = T0 + timedelta(weeks=4)
    history = []
    for week, usual in zip((4, 3, 2, 1), (52, 48, 50, 55), strict=True):
        at = now - timedelta(weeks=week)
        history += [(at - STEP, usual - 1.0), (at, float(usual)), (at + STEP, usual + 1.0)]
    normal = evaluate_series(calls, [(now, 58.0)], 0, {}, history)
    assert not normal
    surge = evaluate_series(calls, [(now, 120.0)], 0, {}, history)
    assert [(s.kind, s.to_severity) for s in surge] == [("opened", 1)]
    text = explain(calls, "梁溪区", surge[0], "en", SHANGHAI)
    assert "unusually high for this time on a Monday (usually 51 calls/h" in text
    assert "往常周一同一时段" in explain(calls, "梁溪区", surge[0], "zh-CN", SHANGHAI)
    too_little = history[-6:]
    assert not evaluate_series(calls, [(now, 120.0)], 0, {}, too_little)
