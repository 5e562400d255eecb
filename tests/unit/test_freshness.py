"""One lateness rule: monotone in the age, never late within the floor, and the wall's "down"
agrees with the sources console's "late or stale" for the same source at the same moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from callbacks.sources import freshness
from callbacks.views import source_status
from core.freshness import FLOOR_S, late_after, lateness
from store.queries import SourceHealth

ORDER = {"fresh": 0, "late": 1, "stale": 2}
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
ages = st.floats(min_value=0, max_value=30 * 86400, allow_nan=False)
intervals = st.floats(min_value=1, max_value=86400, allow_nan=False)


@given(ages, ages, intervals)
def test_older_is_never_fresher(first, second, expected):
    younger, older = sorted((first, second))
    assert ORDER[lateness(younger, expected)] <= ORDER[lateness(older, expected)]


@given(ages, intervals)
def test_fresh_exactly_up_to_three_intervals_and_never_late_within_the_floor(age, expected):
    assert (lateness(age, expected) == "fresh") == (age <= late_after(expected))
    if age <= FLOOR_S:
        assert lateness(age, expected) == "fresh"


@given(st.integers(min_value=0, max_value=3 * 86400), st.sampled_from([60.0, 300.0, 3600.0]))
def test_the_wall_and_the_console_agree(seconds_old, every):
    health = SourceHealth(
        "s", "csv", True, every, "ok", NOW, NOW, None, 1, 0, NOW - timedelta(seconds=seconds_old), None
    )
    _, state = freshness(health, NOW, "en")
    wall = source_status(health, NOW, ZoneInfo("Asia/Shanghai"), "en").state
    assert (wall == "down") == (state != "fresh")
