"""The four warning levels of the PRC Emergency Response Law, one colour each everywhere in the UI.

Level I (red, 特别严重) is the most severe; in code the number grows with severity
(1 = IV blue ... 4 = I red) so that "worse" compares as "greater".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Level:
    severity: int
    roman: str
    colour: str
    name_key: str
    short_key: str


NORMAL = Level(0, "", "#2e9e5b", "level.normal", "level.short.normal")
BLUE = Level(1, "IV", "#1f6feb", "level.blue", "level.short.blue")
YELLOW = Level(2, "III", "#e3b505", "level.yellow", "level.short.yellow")
ORANGE = Level(3, "II", "#f0801a", "level.orange", "level.short.orange")
RED = Level(4, "I", "#e0312b", "level.red", "level.short.red")

LEVELS: tuple[Level, ...] = (NORMAL, BLUE, YELLOW, ORANGE, RED)


def level(severity: int) -> Level:
    return LEVELS[max(0, min(severity, len(LEVELS) - 1))]


STALE_COLOUR = "#6b7280"
