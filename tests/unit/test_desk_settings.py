"""The deployment may tighten or loosen how long an open alert of each level may wait."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from callbacks.departments import overdue_limits
from core.settings import DeskSettings
from store.desk import OVERDUE_AFTER


def test_configured_limits_override_the_defaults_level_by_level():
    settings = SimpleNamespace(desk=DeskSettings(overdue_after={"red": "15m", "blue": "2d"}))
    limits = overdue_limits(settings)
    assert limits[4] == timedelta(minutes=15) and limits[1] == timedelta(days=2)
    assert limits[3] == OVERDUE_AFTER[3] and limits[2] == OVERDUE_AFTER[2]


def test_an_unknown_level_is_a_config_error():
    with pytest.raises(ValidationError, match="purple"):
        DeskSettings(overdue_after={"purple": "1h"})
