"""Routing by level, domain and department; the escalation chain's timing; the outbox cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from indicators.catalog import DOMAINS, Indicator
from notify.outbox import Cursor
from notify.routing import chain_for, covers, due_step, route, step_targets, subject
from notify.settings import NotificationSettings, Route

T0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


def indicator(domain: str = "water", department=("市水利局", "Water Bureau")) -> Indicator:
    return Indicator.model_validate(
        {
            "key": f"{domain}.level",
            "domain": domain,
            "name": {"zh-CN": "水位", "en": "Water level"},
            "bounds": [0, 100],
            "cadence": "5m",
            "level": "city",
            "department": {"zh-CN": department[0], "en": department[1]},
        }
    )


SETTINGS = NotificationSettings.model_validate(
    {
        "channels": {
            "desk": {"type": "webhook", "url": "http://desk"},
            "water": {"type": "wecom", "url": "http://wecom"},
            "leaders": {"type": "dingtalk", "url": "http://ding", "to": ["13800000001"]},
            "sms": {"type": "sms", "url": "http://sms", "to": ["13900000001", "13900000002"]},
        },
        "routes": [
            {"channels": ["desk"], "min_level": "blue", "events": ["opened", "escalated", "resolved"]},
            {"channels": ["water"], "min_level": "yellow", "domains": ["water"]},
            {"channels": ["leaders", "desk"], "min_level": "orange", "departments": ["emergency bureau"]},
            {"channels": ["sms"], "min_level": "red"},
        ],
        "escalation": [
            {
                "departments": ["市水利局"],
                "after": "10m",
                "every": "5m",
                "steps": [{"channel": "water"}, {"channel": "sms", "to": ["13700000001", "13700000002"]}],
            },
            {"min_level": "orange", "steps": [{"channel": "leaders"}]},
        ],
    }
)


def test_the_department_is_the_owner_by_either_name_or_the_assigned_one():
    about = subject(2, indicator(), "Emergency Bureau")
    assert about.departments == {"市水利局", "water bureau", "emergency bureau"}
    assert subject(2, indicator(), None).departments == {"市水利局", "water bureau"}


def test_routes_by_level_domain_and_department():
    water = indicator()
    assert route(SETTINGS, "opened", subject(1, water, None)) == [("desk", "")]
    assert route(SETTINGS, "opened", subject(2, water, None)) == [("desk", ""), ("water", "")]
    assert route(SETTINGS, "opened", subject(2, indicator("traffic"), None)) == [("desk", "")]
    assigned = subject(3, indicator("traffic"), "Emergency Bureau")
    assert route(SETTINGS, "opened", assigned) == [("desk", ""), ("leaders", "13800000001")]
    assert route(SETTINGS, "opened", subject(4, water, None)) == [
        ("desk", ""),
        ("water", ""),
        ("sms", "13900000001"),
        ("sms", "13900000002"),
    ]


def test_routes_by_event_kind():
    about = subject(4, indicator(), None)
    assert route(SETTINGS, "resolved", about) == [("desk", "")]
    assert route(SETTINGS, "deescalated", about) == []


@given(
    level=st.integers(1, 4),
    domain=st.sampled_from(DOMAINS),
    assigned=st.none() | st.sampled_from(["Emergency Bureau", "市水利局", "Other"]),
)
def test_a_higher_level_never_reaches_fewer_channels(level, domain, assigned):
    lower = set(route(SETTINGS, "opened", subject(level, indicator(domain), assigned)))
    higher = set(route(SETTINGS, "opened", subject(min(level + 1, 4), indicator(domain), assigned)))
    assert lower <= higher


def test_an_empty_rule_covers_everything_from_blue():
    rule = Route(channels=["desk"])
    assert covers(rule, subject(1, indicator("economy"), None))
    assert not covers(rule, subject(0, indicator("economy"), None))


def test_the_first_matching_chain_is_used():
    assert chain_for(SETTINGS, subject(4, indicator(), None)) is SETTINGS.escalation[0]
    assert chain_for(SETTINGS, subject(3, indicator(), None)) is SETTINGS.escalation[1]
    traffic = indicator("traffic", ("市交通运输局", "Transport Bureau"))
    assert chain_for(SETTINGS, subject(4, traffic, None)) is SETTINGS.escalation[1]
    assert chain_for(SETTINGS, subject(4, traffic, "市水利局")) is SETTINGS.escalation[0]
    assert chain_for(SETTINGS, subject(2, traffic, None)) is None


def test_step_targets_use_the_step_numbers():
    chain = SETTINGS.escalation[0]
    assert step_targets(SETTINGS, chain, 0) == [("water", "")]
    assert step_targets(SETTINGS, chain, 1) == [("sms", "13700000001"), ("sms", "13700000002")]


def test_steps_come_after_the_wait_and_then_one_by_one():
    chain = SETTINGS.escalation[0]
    assert due_step(chain, T0, [], T0 + timedelta(minutes=9, seconds=59)) is None
    assert due_step(chain, T0, [], T0 + timedelta(minutes=10)) == 0
    assert due_step(chain, T0, [], T0 + timedelta(hours=3)) == 0  # never two steps at once
    first = T0 + timedelta(minutes=40)
    assert due_step(chain, T0, [first], first + timedelta(minutes=4)) is None
    assert due_step(chain, T0, [first], first + timedelta(minutes=5)) == 1
    assert due_step(chain, T0, [first, first], first + timedelta(days=1)) is None  # chain exhausted


def test_the_cursor_reads_ids_again_until_the_grace_has_passed():
    cursor = Cursor().advance(high=10, now=T0, grace=900)
    assert (cursor.safe, cursor.pending) == (0, 10)
    later = cursor.advance(high=15, now=T0 + timedelta(minutes=10), grace=900)
    assert (later.safe, later.pending) == (0, 10)
    matured = later.advance(high=15, now=T0 + timedelta(minutes=15), grace=900)
    assert (matured.safe, matured.pending, matured.since) == (10, 15, T0 + timedelta(minutes=15))
    idle = Cursor(15).advance(high=15, now=T0, grace=900)
    assert idle == Cursor(15)


def test_the_cursor_survives_its_text_form():
    for cursor in (Cursor(), Cursor(42), Cursor(42, 57, T0)):
        assert Cursor.parse(cursor.text()) == cursor
    assert Cursor.parse(None) == Cursor()
