"""The channels' message formats, DingTalk's signature, and how answers are judged."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote_plus
from zoneinfo import ZoneInfo

import httpx
import pytest

from core.settings import Names
from indicators.catalog import Indicator
from notify.channels import (
    DeliveryFailed,
    check_answer,
    dingtalk_sign,
    request_for,
    send,
)
from notify.notice import Notice, notice
from notify.settings import NotificationSettings
from store.models import Alert, AlertEvent

ZONE = ZoneInfo("Asia/Shanghai")
OPENED = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
NOW = OPENED + timedelta(minutes=25, seconds=30)

RIVER = Indicator.model_validate(
    {
        "key": "water.river_level",
        "domain": "water",
        "name": {"zh-CN": "河道水位", "en": "River level"},
        "unit": "m",
        "bounds": [0, 20],
        "cadence": "5m",
        "level": "station",
        "station_kinds": ["river"],
        "decimals": 2,
        "department": {"zh-CN": "市水利局", "en": "Water Bureau"},
    }
)


def rfc2104_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC written out from its definition (RFC 2104), independent of Python's hmac module."""
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(k ^ 0x36 for k in key) + message).digest()
    return hashlib.sha256(bytes(k ^ 0x5C for k in key) + inner).digest()


def test_the_independent_hmac_meets_rfc_4231():
    digest = rfc2104_sha256(b"Jefe", b"what do ya want for nothing?")
    assert digest.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def make_notice(
    kind: str = "opened", target: str = "", base_url: str | None = "https://cb.example"
) -> Notice:
    alert = Alert(
        id=42,
        rule_key="water.river_level:threshold",
        series_id=1,
        state="active",
        severity=4,
        peak_severity=4,
        value=5.126,
        opened_at=OPENED,
        updated_at=OPENED,
        explanation_zh="北塘站河道水位为5.13 m，达到或超过5 m（I级红色预警）",
        explanation_en="River level at Beitang is 5.13 m, at or above 5 m (level I, Red)",
        muted=False,
        department=None,
        acknowledged_at=None,
        acknowledged_by=None,
    )
    event = AlertEvent(
        id=9, alert_id=42, at=OPENED, actor="system", kind="opened", from_severity=0, to_severity=4
    )
    return notice(kind, alert, event, RIVER, "R001", Names(zh="北塘", en="Beitang"), base_url, target, NOW)


def channel(**config):
    return NotificationSettings.model_validate({"channels": {"c": config}}).channels["c"]


def body(outgoing) -> dict:
    return json.loads(outgoing.content.decode("utf-8"))


def test_dingtalk_signature_matches_an_independent_computation():
    secret = "SEC0123456789abcdef"
    robot = channel(
        type="dingtalk", url="https://oapi.dingtalk.com/robot/send?access_token=T0K", secret=secret
    )
    outgoing = request_for(robot, make_notice(), "", "zh-CN", ZONE, NOW)
    stamp = int(NOW.timestamp() * 1000)
    expected = base64.b64encode(rfc2104_sha256(secret.encode(), f"{stamp}\n{secret}".encode())).decode()
    assert dingtalk_sign(secret, stamp) == expected
    query = outgoing.url.query.decode()
    assert query.startswith("access_token=T0K&")
    assert f"timestamp={stamp}" in query.split("&")
    assert f"sign={quote_plus(expected)}" in query.split("&")  # URL-encoded, as DingTalk documents
    assert parse_qs(query)["sign"] == [expected]


def test_dingtalk_without_secret_leaves_the_url_alone():
    robot = channel(type="dingtalk", url="https://oapi.dingtalk.com/robot/send?access_token=T0K")
    outgoing = request_for(robot, make_notice(), "", "zh-CN", ZONE, NOW)
    assert str(outgoing.url) == "https://oapi.dingtalk.com/robot/send?access_token=T0K"


def test_dingtalk_markdown_message():
    robot = channel(type="dingtalk", url="https://x/robot/send")
    outgoing = request_for(
        robot, make_notice(target="13800000001,13800000002"), "13800000001,13800000002", "zh-CN", ZONE, NOW
    )
    message = body(outgoing)
    assert outgoing.method == "POST" and outgoing.headers["Content-Type"].startswith("application/json")
    assert message["msgtype"] == "markdown"
    assert message["markdown"]["title"] == "【红色预警】河道水位 · 北塘"
    text = message["markdown"]["text"]
    assert text.startswith("### 【红色预警】河道水位 · 北塘\n**新预警**")
    assert "北塘站河道水位为5.13 m" in text and "当前值：5.13 m" in text
    assert "时间：2026-07-01 16:00" in text  # the city's wall clock
    assert "责任部门：市水利局" in text
    assert "[在值班台查看](https://cb.example/alerts?alert=42)" in text
    assert "@13800000001 @13800000002" in text
    assert message["at"] == {"atMobiles": ["13800000001", "13800000002"], "isAtAll": False}


def test_dingtalk_text_message_in_english():
    robot = channel(type="dingtalk", url="https://x/robot/send", msgtype="text", at_all=True, language="en")
    message = body(request_for(robot, make_notice(target="138"), "138", "en", ZONE, NOW))
    assert message["msgtype"] == "text" and message["at"]["isAtAll"] is True
    lines = message["text"]["content"].split("\n")
    assert lines[:3] == [
        "[Red warning] River level · Beitang",
        "New warning",
        make_notice().explanation["en"],
    ]
    assert lines[-1] == "@138"


def test_wecom_markdown_and_text_with_mentions():
    robot = channel(type="wecom", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K")
    plain = body(request_for(robot, make_notice(), "", "zh-CN", ZONE, NOW))
    assert plain["msgtype"] == "markdown" and set(plain["markdown"]) == {"content"}
    assert plain["markdown"]["content"].startswith("### 【红色预警】")
    mentioning = body(
        request_for(robot, make_notice(target="13800000001"), "13800000001", "zh-CN", ZONE, NOW)
    )
    assert mentioning["msgtype"] == "text"
    assert mentioning["text"]["mentioned_mobile_list"] == ["13800000001"]


def test_webhook_json_carries_the_alert():
    hook = channel(type="webhook", url="https://duty/hook", headers={"X-Token": "t"}, secret="s")
    outgoing = request_for(hook, make_notice(), "", "zh-CN", ZONE, NOW)
    payload = body(outgoing)
    assert payload["id"] == 42 and payload["kind"] == "opened"
    assert (payload["level"], payload["level_name"], payload["state"]) == (4, "red", "active")
    assert (payload["indicator"], payload["entity"], payload["value"]) == ("water.river_level", "R001", 5.126)
    assert payload["explanation"]["en"].startswith("River level at Beitang")
    assert payload["explanation"]["zh-CN"].startswith("北塘站")
    assert payload["opened_at"] == "2026-07-01T08:00:00+00:00"
    assert payload["sent_at"] == NOW.isoformat()
    assert payload["link"] == "https://cb.example/alerts?alert=42"
    assert payload["owner"] == {"zh-CN": "市水利局", "en": "Water Bureau"}
    assert outgoing.headers["X-Token"] == "t"
    signature = rfc2104_sha256(b"s", outgoing.content).hex()
    assert outgoing.headers["X-CityBrain-Signature"] == f"sha256={signature}"


def test_without_a_base_url_there_is_no_link():
    hook = channel(type="webhook", url="https://duty/hook")
    assert body(request_for(hook, make_notice(base_url=None), "", "zh-CN", ZONE, NOW))["link"] is None
    assert "](" not in make_notice(base_url=None).markdown("zh-CN", ZONE)


def test_escalation_says_how_long_nobody_acted():
    escalated = make_notice(kind="escalation")
    assert escalated.headline("zh-CN") == "已 25 分钟无人确认，逐级上报"
    assert escalated.headline("en") == "Nobody has acknowledged it for 25 min: escalated to you"


def test_sms_get_with_templated_params():
    gateway = channel(
        type="sms",
        url="https://sms.example/send?account=city",
        method="GET",
        params={"mobile": "{phone}", "msg": "{text}", "ref": "A{alert_id}-{level}"},
        to=["13800000001"],
        max_chars=30,
    )
    outgoing = request_for(gateway, make_notice(), "13800000001", "zh-CN", ZONE, NOW)
    query = parse_qs(outgoing.url.query.decode())
    assert outgoing.method == "GET" and outgoing.content is None
    assert query["account"] == ["city"] and query["mobile"] == ["13800000001"]
    assert query["ref"] == ["A42-红色"]
    assert len(query["msg"][0]) == 30 and query["msg"][0].startswith("新预警：【红色预警】河道水位 · 北塘。")
    assert query["msg"][0].endswith("…")


def test_sms_post_json_and_form():
    as_json = channel(
        type="sms",
        url="https://sms.example/send",
        json={"to": ["{phone}"], "content": "{text}", "meta": {"link": "{link}", "n": 1}},
        to=["1"],
    )
    payload = body(request_for(as_json, make_notice(), "13800000001", "en", ZONE, NOW))
    assert payload["to"] == ["13800000001"] and payload["meta"] == {
        "link": "https://cb.example/alerts?alert=42",
        "n": 1,
    }
    assert payload["content"].startswith("New warning: [Red warning] River level · Beitang.")
    as_form = channel(
        type="sms",
        url="https://sms.example/send",
        form={"PhoneNumbers": "{phone}", "TemplateParam": '{{"value":"{value}"}}'},
        to=["1"],
    )
    outgoing = request_for(as_form, make_notice(), "13800000001", "zh-CN", ZONE, NOW)
    assert outgoing.form == {"PhoneNumbers": "13800000001", "TemplateParam": '{"value":"5.13 m"}'}


@pytest.mark.parametrize(
    ("config", "response", "reason"),
    [
        ({"type": "webhook"}, httpx.Response(500, text="boom"), "HTTP 500: boom"),
        (
            {"type": "dingtalk"},
            httpx.Response(200, json={"errcode": 310000, "errmsg": "sign not match"}),
            "errcode 310000: sign not match",
        ),
        (
            {"type": "wecom"},
            httpx.Response(200, json={"errcode": 93000, "errmsg": "invalid webhook url"}),
            "errcode 93000: invalid webhook url",
        ),
        ({"type": "wecom"}, httpx.Response(200, text="<html>proxy</html>"), "the answer is not JSON"),
        (
            {"type": "sms", "to": ["1"], "expect": {"result.code": "OK"}},
            httpx.Response(200, json={"result": {"code": "DENIED"}}),
            "answer field result.code is 'DENIED'",
        ),
    ],
)
def test_refused_answers_are_failures(config, response, reason):
    with pytest.raises(DeliveryFailed) as caught:
        check_answer(channel(url="http://x", **config), response)
    assert str(caught.value).startswith(reason)
    assert not caught.value.unreachable


@pytest.mark.parametrize(
    ("config", "response"),
    [
        ({"type": "webhook"}, httpx.Response(204)),
        ({"type": "dingtalk"}, httpx.Response(200, json={"errcode": 0, "errmsg": "ok"})),
        ({"type": "sms", "to": ["1"]}, httpx.Response(200, text="queued")),
        ({"type": "sms", "to": ["1"], "expect": {"code": 0}}, httpx.Response(200, json={"code": "0"})),
    ],
)
def test_accepted_answers(config, response):
    check_answer(channel(url="http://x", **config), response)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            httpx.ConnectError("[Errno 111] Connection refused"),
            "ConnectError: [Errno 111] Connection refused",
        ),
        (httpx.ReadTimeout("timed out"), "no answer within 3 s"),
    ],
)
def test_a_channel_that_does_not_answer_is_unreachable(error, reason):
    def fail(request):
        raise error

    hook = channel(type="webhook", url="http://secret-token@duty/hook")
    outgoing = request_for(hook, make_notice(), "", "zh-CN", ZONE, NOW)
    with httpx.Client(transport=httpx.MockTransport(fail)) as client, pytest.raises(DeliveryFailed) as caught:
        send(client, hook, outgoing, 3)
    assert str(caught.value) == reason and caught.value.unreachable


def test_every_message_of_the_notifications_is_in_both_languages():
    import re
    from pathlib import Path

    from core.i18n import catalog
    from notify.settings import EventKind

    used = set()
    for path in (Path(__file__).resolve().parents[2] / "notify").glob("*.py"):
        used |= set(
            re.findall(r"""\bt\(\s*["'](notify\.[a-z0-9_.]+)["']""", path.read_text(encoding="utf-8"))
        )
    used |= {f"notify.kind.{kind}" for kind in (*EventKind.__args__, "escalation")}
    assert len(used) > 8
    for lang in ("zh-CN", "en"):
        missing = used - set(catalog(lang))
        assert not missing, (lang, sorted(missing))
