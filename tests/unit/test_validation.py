"""Validation never raises for a bad record: every problem becomes a rejection naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from core.records import Record
from indicators.catalog import load_catalog
from indicators.validation import Validator

CATALOG = load_catalog([])
VALIDATOR = Validator(CATALOG, {"1188A"}, ZoneInfo("Asia/Shanghai"))
ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.datetimes(timezones=st.none() | st.just(UTC)),
)


@given(ANY, ANY, ANY, ANY)
def test_any_record_is_either_accepted_or_rejected_with_a_field(indicator, entity, observed_at, value):
    accepted, rejected = VALIDATOR.validate([Record(indicator, entity, observed_at, value, raw="r")])
    assert len(accepted) + len(rejected) == 1
    for rejection in rejected:
        assert rejection.field in {"indicator", "entity", "observed_at", "value"} and rejection.reason


def test_huge_epoch_times_are_rejected_not_raised():
    _, rejected = VALIDATOR.validate([Record("env.aqi", "1188A", 1e20, 50)])
    assert rejected[0].field == "observed_at" and "out of range" in rejected[0].reason


def test_naive_times_are_the_citys():
    accepted, _ = VALIDATOR.validate([Record("env.aqi", "1188A", "2026-11-01 08:00", 50)])
    assert accepted[0].observed_at == datetime(2026, 11, 1, 0, tzinfo=UTC)
