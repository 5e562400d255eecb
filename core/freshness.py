"""When data counts as late: one rule for the wall, the overview, the map, the sources console and
/healthz, so no two screens disagree about the same source or figure."""

from __future__ import annotations

from typing import Literal

LATE_INTERVALS = 3  # late (the wall: "delayed", the source down) beyond this many expected intervals
STALE_INTERVALS = 6  # stale beyond this many
FLOOR_S = 600.0  # never late within 10 min: a one-minute feed's jitter or slow run is not an outage
FAILED_RUNS = ("error", "timeout")

Lateness = Literal["fresh", "late", "stale"]


def late_after(expected_s: float) -> float:
    """Seconds of silence after which data expected every `expected_s` seconds is late."""
    return max(LATE_INTERVALS * expected_s, FLOOR_S)


def lateness(age_s: float, expected_s: float) -> Lateness:
    if age_s <= late_after(expected_s):
        return "fresh"
    return "late" if age_s <= max(STALE_INTERVALS * expected_s, 2 * FLOOR_S) else "stale"
