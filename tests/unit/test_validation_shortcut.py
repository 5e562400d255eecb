"""The validator's shortcut for ordinary records (cached indicator and time look-ups) gives exactly
the verdicts of the full check: same readings, same rejections with the same reasons, same order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from core.records import Record
from core.timeutil import utcnow
from indicators.catalog import load_catalog
from indicators.validation import Validator

CATALOG = load_catalog([])
ZONE = ZoneInfo("America/New_York")  # a zone with DST, so `fold` matters
ENTITIES = {"1188A", "1189A", "320213"}


class FullCheckOnly(Validator):
    """The reference: every record through `_check`."""

    def _quick(self, now):
        return lambda record: None


SHORTCUT = Validator(CATALOG, ENTITIES, ZONE)
REFERENCE = FullCheckOnly(CATALOG, ENTITIES, ZONE)
NOW = utcnow()
AMBIGUOUS = datetime(2026, 11, 1, 1, 30)  # happens twice in New York

indicators = st.sampled_from(["env.aqi", "env.pm25", "traffic.road_speed", "nope", "", None, 3])
entities = st.sampled_from(["1188A", "1189A", "320213", "9999X", "", None, 1188])
times = st.one_of(
    st.sampled_from(
        [
            AMBIGUOUS,
            AMBIGUOUS.replace(fold=1),
            AMBIGUOUS.replace(tzinfo=ZONE),
            AMBIGUOUS.replace(tzinfo=ZONE, fold=1),
            datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
            "2026-11-01 01:30",
            "2026-11-01T05:30:00Z",
            "2026-11-01T01:30:00-04:00",
            "not a time",
            "",
            NOW + timedelta(minutes=4),
            NOW + timedelta(minutes=6),
            (NOW + timedelta(hours=1)).isoformat(),
            1_793_000_000,
            1e20,
            True,
            None,
        ]
    ),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2027, 1, 1), allow_imaginary=True),
)
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from(["42", " 7.5 ", "1e3", "nan", "inf", "-1", "暂无", "", True, False, None, 500.0, 0.0]),
)
records = st.lists(
    st.builds(
        Record, indicators, entities, times, values, st.just("raw"), st.sampled_from(["ok", "", "est"])
    ),
    max_size=25,
)


def verdicts(validator: Validator, batch: list[Record]):
    accepted, rejected = validator.validate(batch)
    return accepted, [(r.field, r.reason, r.raw) for r in rejected]


@settings(max_examples=400, deadline=None)  # the machine is shared: timings vary
@given(records, st.lists(st.integers(min_value=0, max_value=24), max_size=10))
def test_the_shortcut_and_the_full_check_agree(batch, repeats):
    """Records repeat (same times, duplicate keys with equal or different values) as in a real batch."""
    batch = batch + [batch[i] for i in repeats if i < len(batch)]
    assert verdicts(SHORTCUT, batch) == verdicts(REFERENCE, batch)


def test_a_wall_clock_time_twice_in_a_batch_is_two_instants():
    first = Record("env.aqi", "1188A", AMBIGUOUS, 50)
    second = Record("env.aqi", "1188A", AMBIGUOUS.replace(fold=1), 60)
    accepted, rejected = SHORTCUT.validate([first, second])
    assert rejected == []
    assert [r.observed_at for r in accepted] == [
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
        datetime(2026, 11, 1, 6, 30, tzinfo=UTC),
    ]
