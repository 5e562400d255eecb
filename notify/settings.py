"""The `notifications:` section of a deployment file: channels, routes and escalation chains.

core.settings imports this module to build `Settings`, so it may import pydantic and the small core
modules only; core.settings and indicators.catalog are imported inside validators, which run after
both modules are loaded. A typo names its key path at start, like every other setting; so does an
`${ENV_VAR}` a secret or URL refers to that is not set.
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.envvars import expand_env as expand_text
from core.levels import BLUE, ORANGE, RED, YELLOW

LevelName = Literal["blue", "yellow", "orange", "red"]
SEVERITY: dict[str, int] = {
    "blue": BLUE.severity,
    "yellow": YELLOW.severity,
    "orange": ORANGE.severity,
    "red": RED.severity,
}
EventKind = Literal["opened", "escalated", "deescalated", "resolved"]
Language = Literal["zh-CN", "en"]
CHANNEL_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
TARGET_LIMIT = 256
# What an SMS gateway's templates may use, e.g. `{phone}` and `{text}`.
SMS_FIELDS = ("phone", "text", "level", "indicator", "entity", "value", "alert_id", "link")

def expand_env(value: Any, where: str = "") -> Any:
    """`${NAME}` in any string (nested in lists and mappings too) replaced by environment variable
    NAME, so tokens and secrets stay out of the YAML file."""
    if isinstance(value, str):
        try:
            return expand_text(value)
        except ValueError as exc:
            raise ValueError(f"{exc} (at {where})" if where else str(exc)) from None
    if isinstance(value, dict):
        return {k: expand_env(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{where}.{i}" if where else str(i)) for i, v in enumerate(value)]
    return value


def _duration(value: Any) -> float:
    from core.settings import parse_duration

    return parse_duration(value)


EnvStr = Annotated[str, BeforeValidator(expand_env)]
Duration = Annotated[float, BeforeValidator(_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Channel(_Model):
    url: EnvStr = Field(repr=False, description="where to POST; ${NAME} is replaced by env variable NAME")
    timeout: Duration | None = Field(default=None, description="overrides notifications.timeout")
    language: Language | None = Field(default=None, description="default: notifications.language")
    to: list[EnvStr] = Field(
        default_factory=list, description="mobile numbers to @mention (SMS: the numbers to text)"
    )

    def targets(self, to: list[str] | None = None) -> list[str]:
        """The delivery targets for these recipients: one message @mentioning all of them."""
        return [",".join(self.to if to is None else to)]

    @model_validator(mode="after")
    def _short_targets(self) -> _Channel:
        if any(len(target) > TARGET_LIMIT for target in self.targets()):
            raise ValueError(f"to: longer than {TARGET_LIMIT} characters in all")
        return self


class WebhookChannel(_Channel):
    """A JSON POST of the alert; with `secret`, an HMAC-SHA256 of the body in a header."""

    type: Literal["webhook"]
    headers: dict[str, EnvStr] = Field(default_factory=dict)
    secret: Annotated[SecretStr, BeforeValidator(expand_env)] | None = None


class DingTalkChannel(_Channel):
    """A DingTalk (钉钉) group robot; `secret` turns on its signed mode (加签)."""

    type: Literal["dingtalk"]
    secret: Annotated[SecretStr, BeforeValidator(expand_env)] | None = None
    msgtype: Literal["markdown", "text"] = "markdown"
    at_all: bool = False


class WeComChannel(_Channel):
    """A WeCom (企业微信) group robot."""

    type: Literal["wecom"]
    msgtype: Literal["markdown", "text"] = "markdown"


class SmsChannel(_Channel):
    """A generic SMS gateway: one HTTP call per phone number, templated with SMS_FIELDS."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["sms"]
    method: Literal["GET", "POST"] = "POST"
    headers: dict[str, EnvStr] = Field(default_factory=dict)
    params: dict[str, EnvStr] = Field(default_factory=dict, description="query parameters (templated)")
    body: dict[str, Any] | None = Field(default=None, alias="json", description="a JSON body (templated)")
    form: dict[str, EnvStr] | None = Field(default=None, description="a form body (templated)")
    expect: dict[str, str | int | bool] = Field(
        default_factory=dict, description="fields of the JSON answer that must have these values"
    )
    max_chars: int = Field(default=140, ge=20, le=1000, description="the text is cut to this length")

    @field_validator("body", mode="before")
    @classmethod
    def _expand_body(cls, value: Any) -> Any:
        return expand_env(value)

    @model_validator(mode="after")
    def _templates(self) -> SmsChannel:
        if self.body is not None and self.form is not None:
            raise ValueError("give either json or form as the body, not both")
        if self.method == "GET" and (self.body is not None or self.form is not None):
            raise ValueError("a GET request has no body: put the fields in params")
        for where, value in (("params", self.params), ("json", self.body), ("form", self.form)):
            check_template(value, where)
        return self

    def targets(self, to: list[str] | None = None) -> list[str]:
        """One message per phone number."""
        return list(self.to if to is None else to)


Channel = Annotated[WebhookChannel | DingTalkChannel | WeComChannel | SmsChannel, Field(discriminator="type")]


def check_template(value: Any, where: str) -> None:
    """Raise ValueError naming the place of a placeholder that is not one of SMS_FIELDS."""
    if isinstance(value, str):
        try:
            names = [field for _, field, _, _ in string.Formatter().parse(value) if field is not None]
        except ValueError as exc:
            raise ValueError(f"{where}: {exc} (write {{{{ and }}}} for literal braces)") from exc
        unknown = [name for name in names if name not in SMS_FIELDS]
        if unknown:
            raise ValueError(
                f"{where}: unknown placeholder {{{unknown[0]}}} (known: {', '.join(SMS_FIELDS)})"
            )
    elif isinstance(value, dict):
        for key, inner in value.items():
            check_template(inner, f"{where}.{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            check_template(inner, f"{where}.{index}")


class Match(_Model):
    """Which alerts a rule covers: empty domains or departments match every alert."""

    min_level: LevelName = "blue"
    domains: list[str] = Field(default_factory=list)
    departments: list[str] = Field(
        default_factory=list,
        description="the assigned department or the indicator's owning one, by its Chinese or English name",
    )

    @field_validator("domains")
    @classmethod
    def _known_domains(cls, value: list[str]) -> list[str]:
        from indicators.catalog import DOMAINS

        unknown = [d for d in value if d not in DOMAINS]
        if unknown:
            raise ValueError(f"unknown domain {unknown[0]!r} (known: {', '.join(DOMAINS)})")
        return value

    @property
    def severity(self) -> int:
        return SEVERITY[self.min_level]


class Route(Match):
    channels: list[str] = Field(min_length=1)
    events: list[EventKind] = Field(default_factory=lambda: ["opened", "escalated"], min_length=1)


class Contact(_Model):
    channel: str
    to: list[EnvStr] | None = Field(default=None, description="default: the channel's own `to`")


class EscalationChain(Match):
    """Alerts at `min_level` still unacknowledged `after` their reaching it notify `steps[0]`,
    then one more step every `every` until someone acknowledges."""

    min_level: LevelName = "red"
    after: Duration = 900
    every: Duration = 900
    steps: list[Contact] = Field(min_length=1)


class RetrySettings(_Model):
    attempts: int = Field(default=6, ge=1, le=50, description="tries before a delivery is given up")
    backoff: Duration = Field(default=30, description="wait after the first failure; doubles each time")
    max_backoff: Duration = 1800


class NotificationSettings(_Model):
    base_url: EnvStr | None = Field(
        default=None, description="the app's address as officers reach it; links go to {base_url}/alerts"
    )
    language: Language | None = Field(default=None, description="default: the deployment's default_language")
    dispatch_every: Duration = 15
    timeout: Duration = 10
    grace: Duration = Field(
        default=900, description="how long an ingest transaction may take to commit its alert events"
    )
    retry: RetrySettings = RetrySettings()
    channels: dict[str, Channel] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    escalation: list[EscalationChain] = Field(default_factory=list)

    @field_validator("channels")
    @classmethod
    def _channel_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not re.match(CHANNEL_NAME, name):
                raise ValueError(f"channel name {name!r}: use lower-case letters, digits, - and _ (max 64)")
        return value

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("routes")
    @classmethod
    def _route_channels(cls, value: list[Route], info: ValidationInfo) -> list[Route]:
        channels = info.data.get("channels")
        if channels is None:
            return value
        problems = []
        for index, rule in enumerate(value):
            for name in rule.channels:
                if name not in channels:
                    problems.append(
                        f"{index}: unknown channel {name!r} (known: {', '.join(channels) or 'none'})"
                    )
                elif not channels[name].targets():
                    problems.append(f"{index}: sms channel {name!r} has no numbers in `to`")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("escalation")
    @classmethod
    def _step_contacts(cls, value: list[EscalationChain], info: ValidationInfo) -> list[EscalationChain]:
        channels = info.data.get("channels")
        if channels is None:
            return value
        problems = []
        for index, chain in enumerate(value):
            seen: set[tuple[str, str]] = set()
            for number, step in enumerate(chain.steps):
                where = f"{index}.steps.{number}"
                if step.channel not in channels:
                    problems.append(f"{where}: unknown channel {step.channel!r}")
                    continue
                targets = channels[step.channel].targets(step.to)
                if not targets:
                    problems.append(f"{where}: sms channel {step.channel!r} needs numbers in `to`")
                for target in targets:
                    if len(target) > TARGET_LIMIT:
                        problems.append(f"{where}: `to` is longer than {TARGET_LIMIT} characters")
                    if (step.channel, target) in seen:
                        problems.append(f"{where}: repeats an earlier step's contact; each step is sent once")
                    seen.add((step.channel, target))
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @property
    def active(self) -> bool:
        """Anything to do at all (the scheduler registers no jobs otherwise)."""
        return bool(self.routes or self.escalation)
