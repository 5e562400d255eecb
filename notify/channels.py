"""The channels' own message formats, and one HTTP call to deliver a notice.

Webhook: a JSON POST of the alert, optionally signed (HMAC-SHA256 of the body). DingTalk and WeCom
group robots: their `markdown`/`text` messages, and their answer's `errcode` (non-zero is a failure
even with HTTP 200). DingTalk's signed mode adds `timestamp` and `sign` to the query as its
documentation describes. SMS gateway: the configured request, templated per phone number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from core.i18n import t
from core.levels import level
from notify.notice import Notice
from notify.settings import Channel, DingTalkChannel, SmsChannel, WebhookChannel, WeComChannel

ANSWER_EXCERPT = 300
SIGNATURE_HEADER = "X-CityBrain-Signature"


class DeliveryFailed(Exception):
    """A message that did not arrive; `unreachable` when the channel did not answer at all."""

    def __init__(self, message: str, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True)
class Outgoing:
    method: str
    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    form: dict[str, str] | None = None


def _json_body(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature: Base64(HMAC-SHA256(key=secret, "timestamp\\nsecret")); the caller
    URL-encodes it as a query parameter."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def body_signature(secret: str, body: bytes) -> str:
    """What a receiver recomputes to trust a webhook: `sha256=` + hex HMAC of the raw body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def webhook_request(channel: WebhookChannel, notice: Notice, now: datetime) -> Outgoing:
    body = _json_body(notice.as_json() | {"sent_at": now.isoformat()})
    headers = JSON_HEADERS | channel.headers
    if channel.secret is not None:
        headers[SIGNATURE_HEADER] = body_signature(channel.secret.get_secret_value(), body)
    return Outgoing("POST", httpx.URL(channel.url), headers, body)


def dingtalk_request(
    channel: DingTalkChannel, notice: Notice, lang: str, zone: ZoneInfo, now: datetime
) -> Outgoing:
    at = {"atMobiles": list(notice.mention), "isAtAll": channel.at_all}
    if channel.msgtype == "markdown":
        message = {"title": notice.title(lang), "text": notice.markdown(lang, zone)}
    else:
        mentions = " ".join(f"@{who}" for who in notice.mention)
        message = {"content": "\n".join(filter(None, [notice.text(lang, zone), mentions]))}
    payload = {"msgtype": channel.msgtype, channel.msgtype: message, "at": at}
    url = httpx.URL(channel.url)
    if channel.secret is not None:
        stamp = int(now.timestamp() * 1000)
        url = url.copy_merge_params(
            {"timestamp": str(stamp), "sign": dingtalk_sign(channel.secret.get_secret_value(), stamp)}
        )
    return Outgoing("POST", url, dict(JSON_HEADERS), _json_body(payload))


def wecom_request(channel: WeComChannel, notice: Notice, lang: str, zone: ZoneInfo) -> Outgoing:
    """WeCom's markdown cannot @mention by phone number, so a notice that mentions goes as text."""
    if channel.msgtype == "markdown" and not notice.mention:
        payload = {"msgtype": "markdown", "markdown": {"content": notice.markdown(lang, zone)}}
    else:
        text = {"content": notice.text(lang, zone), "mentioned_mobile_list": list(notice.mention)}
        payload = {"msgtype": "text", "text": text}
    return Outgoing("POST", httpx.URL(channel.url), dict(JSON_HEADERS), _json_body(payload))


def _fill(template: Any, values: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, dict):
        return {key: _fill(inner, values) for key, inner in template.items()}
    if isinstance(template, list):
        return [_fill(inner, values) for inner in template]
    return template


def sms_fields(channel: SmsChannel, notice: Notice, phone: str, lang: str) -> dict[str, str]:
    """The values an SMS gateway's templates may use (notify.settings.SMS_FIELDS)."""
    return {
        "phone": phone,
        "text": notice.short(lang, channel.max_chars),
        "level": t(level(notice.level).short_key, lang),
        "indicator": notice.indicator.name.get(lang),
        "entity": notice.entity_name.get(lang) if notice.entity_name else notice.entity,
        "value": notice.value_text(),
        "alert_id": str(notice.alert_id),
        "link": notice.link or "",
    }


def sms_request(channel: SmsChannel, notice: Notice, phone: str, lang: str) -> Outgoing:
    values = sms_fields(channel, notice, phone, lang)
    url = httpx.URL(channel.url).copy_merge_params(_fill(channel.params, values))
    headers = dict(channel.headers)
    if channel.body is not None:
        return Outgoing(channel.method, url, JSON_HEADERS | headers, _json_body(_fill(channel.body, values)))
    form = _fill(channel.form, values) if channel.form is not None else None
    return Outgoing(channel.method, url, headers, form=form)


def request_for(
    channel: Channel, notice: Notice, target: str, lang: str, zone: ZoneInfo, now: datetime
) -> Outgoing:
    if isinstance(channel, WebhookChannel):
        return webhook_request(channel, notice, now)
    if isinstance(channel, DingTalkChannel):
        return dingtalk_request(channel, notice, lang, zone, now)
    if isinstance(channel, WeComChannel):
        return wecom_request(channel, notice, lang, zone)
    return sms_request(channel, notice, target, lang)


def _excerpt(response: httpx.Response) -> str:
    return response.text[:ANSWER_EXCERPT].strip()


def _field(document: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(document, dict) or part not in document:
            return None
        document = document[part]
    return document


def check_answer(channel: Channel, response: httpx.Response) -> None:
    """Raise DeliveryFailed unless the receiver accepted the message."""
    if not response.is_success:
        raise DeliveryFailed(f"HTTP {response.status_code}: {_excerpt(response)}")
    robot = isinstance(channel, DingTalkChannel | WeComChannel)
    expect = {"errcode": 0} if robot else getattr(channel, "expect", {})
    if not expect:
        return
    try:
        answer = response.json()
    except ValueError as exc:
        raise DeliveryFailed(f"the answer is not JSON: {_excerpt(response)}") from exc
    for path, wanted in expect.items():
        got = _field(answer, path)
        if got != wanted and str(got) != str(wanted):
            if robot:
                raise DeliveryFailed(f"errcode {got}: {_field(answer, 'errmsg')}")
            raise DeliveryFailed(f"answer field {path} is {got!r}, expected {wanted!r}: {_excerpt(response)}")


def send(client: httpx.Client, channel: Channel, outgoing: Outgoing, timeout: float) -> None:
    """One HTTP call; raise DeliveryFailed with a reason that never contains the URL (it may carry
    a token)."""
    try:
        response = client.request(
            outgoing.method,
            outgoing.url,
            headers=outgoing.headers,
            content=outgoing.content,
            data=outgoing.form,
            timeout=timeout,
        )
    except httpx.TimeoutException as exc:
        raise DeliveryFailed(f"no answer within {timeout:g} s", unreachable=True) from exc
    except httpx.TransportError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}", unreachable=True) from exc
    check_answer(channel, response)
