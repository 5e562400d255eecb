"""`RunningIndex` (the index kept up to date bucket after bucket) equals `index_values` over the
latest values, to the last bit, whatever the order in which series appear and change."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from indicators.catalog import load_catalog
from indicators.composite import RunningIndex, index_values, pressure

CATALOG = load_catalog()
KEYS = [i.key for i in CATALOG][:40]
ENTITIES = ["1188A", "1189A", "RD01", "320213"]

changes = st.lists(
    st.tuples(
        st.sampled_from(KEYS),
        st.sampled_from(ENTITIES),
        st.floats(min_value=-100, max_value=2000, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)  # the machine is shared: timings vary
@given(st.lists(changes, min_size=1, max_size=8), st.sampled_from([{}, {"traffic": 3, "environment": 0}]))
def test_running_index_equals_the_full_computation(buckets, weights):
    running = RunningIndex(CATALOG, weights)
    latest: dict[tuple[str, str], float] = {}
    for bucket in buckets:
        for key, entity, value in bucket:
            latest[(key, entity)] = value
        running.set(((key, entity), value) for key, entity, value in bucket)
        expected = index_values(((CATALOG[key], value) for (key, _), value in latest.items()), weights)
        assert running.values() == expected


def test_only_indicators_with_thresholds_count():
    running = RunningIndex(CATALOG, {})
    assert "env.aqi" in running.counting
    assert not {"hotline.calls_12345", "index.city"} & running.counting
    running.set([(("hotline.calls_12345", "320213"), 500)])
    assert running.values() == {}
    running.set([(("env.aqi", "1188A"), 126)])
    assert running.values()["index.environment"] == round(100 - 25 * pressure(CATALOG["env.aqi"], 126), 2)
