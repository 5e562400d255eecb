"""Reading `--from` ranges: durations, dates that cover whole days, naive times in the city's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ingest.replay import ReplayError, parse_window

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def test_a_duration_ends_now():
    assert parse_window("7d", SHANGHAI, NOW) == (datetime(2026, 11, 16, 4, tzinfo=UTC), NOW)


def test_dates_cover_whole_local_days():
    start, end = parse_window("2026-11-01..2026-11-02", SHANGHAI, NOW)
    assert start == datetime(2026, 10, 31, 16, tzinfo=UTC)  # 2026-11-01 00:00 in Wuxi
    assert end == datetime(2026, 11, 2, 16, tzinfo=UTC)  # the end of 2026-11-02 in Wuxi


def test_an_open_range_runs_until_now_and_zones_are_honoured():
    start, end = parse_window("2026-11-22T08:00+00:00..", SHANGHAI, NOW)
    assert (start, end) == (datetime(2026, 11, 22, 8, tzinfo=UTC), NOW)


def test_the_future_is_cut_at_now():
    assert parse_window("2026-11-20..2026-12-31", SHANGHAI, NOW)[1] == NOW


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01..", "2026-11-05..2026-11-01", "..2026-11-01"])
def test_unreadable_or_backward_ranges_are_clear_errors(text):
    with pytest.raises(ReplayError):
        parse_window(text, SHANGHAI, NOW)
