"""The `notifications:` section: what it accepts, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from core.settings import ConfigError, load_settings
from notify.settings import NotificationSettings, SmsChannel
from tests.conftest import demo_config

REPO = Path(__file__).resolve().parents[2]


def settings(**section) -> NotificationSettings:
    return NotificationSettings.model_validate(section)


def errors(**section) -> str:
    with pytest.raises(ValidationError) as caught:
        settings(**section)
    return str(caught.value)


def write_config(tmp_path: Path, notifications: dict) -> Path:
    config = demo_config()
    config["notifications"] = notifications
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def test_the_production_example_is_valid(monkeypatch):
    for name in ("DUTY_WEBHOOK_URL", "DINGTALK_TOKEN", "DINGTALK_SECRET", "WECOM_KEY", "SMS_KEY"):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    loaded = load_settings(REPO / "config" / "production.example.yaml", {"CITYBRAIN_SECRET_KEY": "k" * 32})
    notifications = loaded.notifications
    assert notifications.active and notifications.routes and notifications.escalation
    robot = notifications.channels["duty-dingtalk"]
    assert robot.url.endswith("access_token=value-of-dingtalk_token")
    assert robot.secret.get_secret_value() == "value-of-dingtalk_secret"
    assert "value-of-dingtalk_secret" not in repr(robot)


def test_the_demo_sends_nothing():
    demo = load_settings(REPO / "config" / "demo.yaml").notifications
    assert not demo.active and not demo.channels


def test_a_missing_environment_variable_names_the_key(tmp_path, monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    path = write_config(
        tmp_path,
        {
            "channels": {
                "ding": {"type": "dingtalk", "url": "https://x/robot", "secret": "${NOT_SET_ANYWHERE}"}
            }
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    [problem] = caught.value.problems
    assert problem.startswith("notifications.channels.ding.dingtalk.secret:")
    assert "environment variable NOT_SET_ANYWHERE is not set" in problem


def test_a_missing_variable_inside_a_templated_body_names_its_place(monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    message = errors(
        channels={
            "sms": {
                "type": "sms",
                "url": "https://sms/send",
                "json": {"auth": {"key": "${NOT_SET_ANYWHERE}"}, "to": "{phone}"},
            }
        }
    )
    assert "NOT_SET_ANYWHERE is not set (at auth.key)" in message


def test_environment_variables_fill_urls_and_targets(monkeypatch):
    monkeypatch.setenv("HOOK_HOST", "hooks.intranet")
    monkeypatch.setenv("DUTY_PHONE", "13800000000")
    loaded = settings(
        channels={"sms": {"type": "sms", "url": "http://${HOOK_HOST}/sms", "to": ["${DUTY_PHONE}"]}}
    )
    assert loaded.channels["sms"].url == "http://hooks.intranet/sms"
    assert loaded.channels["sms"].targets() == ["13800000000"]


def test_durations_take_units():
    loaded = settings(
        dispatch_every="30s",
        retry={"backoff": "1m", "max_backoff": "1h"},
        channels={"hook": {"type": "webhook", "url": "http://h"}},
        escalation=[{"after": "15m", "every": "1h", "steps": [{"channel": "hook"}]}],
    )
    assert (loaded.dispatch_every, loaded.retry.backoff, loaded.retry.max_backoff) == (30, 60, 3600)
    assert (loaded.escalation[0].after, loaded.escalation[0].every) == (900, 3600)
    assert loaded.escalation[0].min_level == "red"


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            {"routes": [{"channels": ["nope"]}]},
            "routes\n  Value error, 0: unknown channel 'nope' (known: none)",
        ),
        (
            {"channels": {"sms": {"type": "sms", "url": "http://s"}}, "routes": [{"channels": ["sms"]}]},
            "sms channel 'sms' has no numbers in `to`",
        ),
        (
            {
                "channels": {"h": {"type": "webhook", "url": "http://h"}},
                "routes": [{"channels": ["h"], "domains": ["weather"]}],
            },
            "unknown domain 'weather'",
        ),
        (
            {
                "channels": {"h": {"type": "webhook", "url": "http://h"}},
                "routes": [{"channels": ["h"], "min_level": "purple"}],
            },
            "min_level",
        ),
        (
            {
                "channels": {"h": {"type": "webhook", "url": "http://h"}},
                "escalation": [{"steps": [{"channel": "h"}, {"channel": "h"}]}],
            },
            "escalation\n  Value error, 0.steps.1: repeats an earlier step's contact",
        ),
        ({"channels": {"Duty Desk": {"type": "webhook", "url": "http://h"}}}, "channel name 'Duty Desk'"),
        ({"channels": {"h": {"type": "fax", "url": "http://h"}}}, "fax"),
        ({"channels": {"h": {"type": "webhook", "url": "http://h", "colour": "red"}}}, "colour"),
        (
            {"channels": {"s": {"type": "sms", "url": "http://s", "params": {"msg": "{txt}"}}}},
            "params.msg: unknown placeholder {txt}",
        ),
        (
            {"channels": {"s": {"type": "sms", "url": "http://s", "method": "GET", "json": {"a": "b"}}}},
            "a GET request has no body",
        ),
    ],
)
def test_mistakes_are_named(section, expected):
    assert expected in errors(**section)


def test_sms_templates_may_use_literal_braces():
    channel = settings(
        channels={
            "s": {
                "type": "sms",
                "url": "http://s",
                "to": ["1"],
                "form": {"TemplateParam": '{{"level":"{level}","link":"{link}"}}'},
            }
        }
    ).channels["s"]
    assert isinstance(channel, SmsChannel) and channel.form["TemplateParam"].startswith("{{")


def test_targets_per_channel_type():
    loaded = settings(
        channels={
            "ding": {"type": "dingtalk", "url": "http://d", "to": ["138", "139"]},
            "sms": {"type": "sms", "url": "http://s", "to": ["138", "139"]},
            "hook": {"type": "webhook", "url": "http://h"},
        }
    )
    assert loaded.channels["ding"].targets() == ["138,139"]
    assert loaded.channels["ding"].targets(["137"]) == ["137"]
    assert loaded.channels["sms"].targets() == ["138", "139"]
    assert loaded.channels["hook"].targets() == [""]
