"""Roles, permissions, clearance and the sign-in throttle as pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from core.access import ANONYMOUS, PERMISSIONS, RANK, Identity, clearance, may_view
from core.settings import AuthSettings
from store.users import MAX_WAIT, throttle_wait

USERS = [Identity(role, role, user_id=n) for n, role in enumerate(("viewer", "officer", "admin"), 1)]
DISPLAY = Identity("display:wall", "display", token_id=1)


def test_only_signed_in_users_of_the_right_rank_may_write():
    for action, least in PERMISSIONS.items():
        for identity in USERS:
            assert identity.may(action) == (RANK[identity.role] >= RANK[least]), (identity.role, action)
        assert not ANONYMOUS.may(action)
        assert not DISPLAY.may(action)


def test_anonymous_visitors_see_only_what_the_deployment_allows():
    closed, demo = AuthSettings(anonymous=False), AuthSettings(anonymous=True)
    assert not may_view(ANONYMOUS, closed) and clearance(ANONYMOUS, closed) == frozenset()
    assert clearance(ANONYMOUS, demo) == {"public"}
    assert clearance(DISPLAY, closed) == {"public", "internal"}
    assert clearance(USERS[0], closed) == {"public", "internal"}
    assert clearance(USERS[1], closed) == {"public", "internal", "restricted"}


def test_clearance_follows_the_config():
    auth = AuthSettings(clearance={"public": ["viewer", "admin"], "internal": ["admin"], "restricted": []})
    assert clearance(USERS[0], auth) == {"public"}
    assert clearance(USERS[2], auth) == {"public", "internal"}


NOW = datetime(2026, 11, 23, 8, tzinfo=UTC)


@given(st.integers(0, 40), st.integers(0, 400), st.integers(1, 6))
def test_the_throttle_grows_with_failures_and_is_capped(failures, seconds_ago, after):
    last = NOW - timedelta(seconds=seconds_ago)
    wait = throttle_wait(failures, last, NOW, after)
    assert 0 <= wait <= MAX_WAIT.total_seconds()
    if failures < after:
        assert wait == 0
    assert throttle_wait(failures + 1, last, NOW, after) >= wait


def test_the_throttle_lets_the_next_attempt_through_once_waited():
    assert throttle_wait(5, NOW, NOW, 3) == 4
    assert throttle_wait(5, NOW - timedelta(seconds=4), NOW, 3) == 0
