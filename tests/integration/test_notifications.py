"""Notifications end to end on both dialects: alerts opened by the real pipeline, a real HTTP
receiver on 127.0.0.1, retries, escalation driven by explicit times, muting, and two dispatchers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import delete, select

import datasources.registry as registry
from core.records import Record
from core.timeutil import utcnow
from datasources.base import Batch, Options
from ingest.pipeline import run_source
from notify.dispatch import deliver_due, run_escalation, run_outbox
from notify.outbox import CURSOR, collect
from notify.settings import NotificationSettings
from store.alerts import acknowledge, add_silence
from store.models import Alert, AlertEvent, AppState, NotificationDelivery
from store.sync import sync_sources

OK = (200, '{"errcode":0,"errmsg":"ok"}')


class Receiver:
    """An HTTP server on a free local port that records every request and answers from a script
    per path (then 200 with errcode 0, as the group robots answer)."""

    def __init__(self) -> None:
        self.requests: list[SimpleNamespace] = []
        self.script: dict[str, list[tuple[int, str]]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                parts = urlsplit(self.path)
                with receiver.lock:
                    receiver.requests.append(
                        SimpleNamespace(
                            path=parts.path,
                            query=parse_qs(parts.query),
                            raw_query=parts.query,
                            headers=dict(self.headers),
                            body=body,
                        )
                    )
                    queued = receiver.script.get(parts.path) or []
                    status, text = queued.pop(0) if queued else OK
                payload = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST  # noqa: N815 - the http.server API

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def to(self, path: str) -> list[SimpleNamespace]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


@pytest.fixture
def receiver():
    server = Receiver()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


class ScriptedAdapter:
    SCRIPT: ClassVar[list[Record]] = []
    Options = Options
    backfills = False

    def __init__(self, options, context):
        pass

    def fetch(self, since, until):
        return Batch(list(self.SCRIPT), watermark=until.isoformat())


@pytest.fixture
def city(monkeypatch, ingest):
    """The demo deployment with one scripted source the tests feed readings through."""
    fake = dict(registry.available()) | {"scripted": SimpleNamespace(load=lambda: ScriptedAdapter)}
    monkeypatch.setattr(registry, "available", lambda: fake)
    from core.settings import SourceSettings

    with ingest.sessions() as session:
        sync_sources(session, [*ingest.settings.sources, SourceSettings(id="scripted", type="scripted")])
        session.commit()
    return ingest


def configure(ctx, receiver: Receiver, **section) -> None:
    """Notification settings for the test. Rules cover the test indicator's domain only: the same
    readings also move the city operations index, whose alerts are routed nowhere."""
    section.setdefault("base_url", "https://citybrain.example")
    for rule in section.get("routes", []) + section.get("escalation", []):
        rule.setdefault("domains", ["environment"])
    ctx.settings = ctx.settings.model_copy(
        update={"notifications": NotificationSettings.model_validate(section)}
    )


def ingest_values(ctx, values, entity="1188A", minutes_ago=30) -> None:
    """Readings of the test indicator (blue 101, yellow 151, orange 201, red 301), 5 min apart,
    through the real pipeline."""
    start = (utcnow() - timedelta(minutes=minutes_ago)).replace(second=0, microsecond=0)
    ScriptedAdapter.SCRIPT = [
        Record("test.plain", entity, start + timedelta(minutes=5 * i), v) for i, v in enumerate(values)
    ]
    assert run_source(ctx, "scripted").status == "ok"


def the_alert(ctx) -> Alert:
    with ctx.sessions() as session:
        return session.scalars(
            select(Alert).where(Alert.rule_key == "test.plain:threshold").order_by(Alert.id.desc())
        ).first()


def deliveries(ctx) -> list[NotificationDelivery]:
    with ctx.sessions() as session:
        return list(session.scalars(select(NotificationDelivery).order_by(NotificationDelivery.id)))


def opened_at(ctx, alert_id: int) -> datetime:
    with ctx.sessions() as session:
        return session.scalars(
            select(AlertEvent.at).where(AlertEvent.alert_id == alert_id, AlertEvent.kind == "opened")
        ).one()


def webhook(receiver: Receiver, path: str, **extra) -> dict:
    return {"type": "webhook", "url": receiver.url + path, **extra}


def test_an_opened_alert_is_posted_exactly_once(city, receiver):
    configure(
        city,
        receiver,
        channels={"desk": webhook(receiver, "/desk", secret="s3cret")},
        routes=[{"channels": ["desk"], "min_level": "yellow", "departments": ["TEST department"]}],
    )
    ingest_values(city, [90, 160])
    alert = the_alert(city)
    outcome = run_outbox(city)
    assert outcome.sent == 1
    run_outbox(city)
    with city.sessions() as session:  # a second scheduler, or one that lost its cursor
        session.execute(delete(AppState).where(AppState.key == CURSOR))
        session.commit()
    run_outbox(city)
    posts = receiver.to("/desk")
    assert len(posts) == 1
    body = json.loads(posts[0].body)
    assert body["id"] == alert.id and body["kind"] == "opened"
    assert (body["level"], body["level_name"], body["state"]) == (2, "yellow", "active")
    assert (body["indicator"], body["entity"], body["value"]) == ("test.plain", "1188A", 160)
    assert body["explanation"]["zh-CN"] == alert.explanation_zh and "level III" in body["explanation"]["en"]
    assert body["link"] == f"https://citybrain.example/alerts?alert={alert.id}"
    assert datetime.fromisoformat(body["opened_at"]) == alert.opened_at
    assert body["opened_at"].endswith("+00:00") and body["sent_at"].endswith("+00:00")
    expected = "sha256=" + hmac.new(b"s3cret", posts[0].body, hashlib.sha256).hexdigest()
    assert posts[0].headers["X-CityBrain-Signature"] == expected
    [delivery] = deliveries(city)
    assert (delivery.status, delivery.attempts, delivery.kind) == ("sent", 1, "opened")


def test_below_the_route_level_nothing_is_sent(city, receiver):
    configure(
        city,
        receiver,
        channels={"desk": webhook(receiver, "/desk")},
        routes=[{"channels": ["desk"], "min_level": "orange"}],
    )
    ingest_values(city, [160])
    run_outbox(city)
    assert receiver.to("/desk") == [] and deliveries(city) == []
    ingest_values(city, [220], minutes_ago=5)
    run_outbox(city)
    [post] = receiver.to("/desk")
    assert json.loads(post.body)["kind"] == "escalated" and json.loads(post.body)["level"] == 3


def test_a_failing_receiver_is_retried_with_backoff(city, receiver):
    configure(
        city,
        receiver,
        channels={"desk": webhook(receiver, "/desk")},
        routes=[{"channels": ["desk"]}],
        retry={"attempts": 5, "backoff": "30s"},
    )
    receiver.script["/desk"] = [(500, "busy"), (500, "still busy")]
    ingest_values(city, [160])
    start = utcnow()
    run_outbox(city, start)
    [delivery] = deliveries(city)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.last_error == "HTTP 500: busy"
    assert delivery.next_attempt_at == start + timedelta(seconds=30)
    run_outbox(city, start + timedelta(seconds=20))
    assert len(receiver.to("/desk")) == 1
    run_outbox(city, start + timedelta(seconds=30))
    [delivery] = deliveries(city)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 2, "HTTP 500: still busy")
    assert delivery.next_attempt_at == start + timedelta(seconds=90)
    run_outbox(city, start + timedelta(seconds=90))
    [delivery] = deliveries(city)
    assert (delivery.status, delivery.attempts) == ("sent", 3)
    assert delivery.sent_at == start + timedelta(seconds=90)
    assert len(receiver.to("/desk")) == 3


def test_a_delivery_is_given_up_after_its_attempts(city, receiver):
    configure(
        city,
        receiver,
        channels={"robot": {"type": "dingtalk", "url": receiver.url + "/robot?access_token=t"}},
        routes=[{"channels": ["robot"]}],
        retry={"attempts": 2, "backoff": "10s"},
    )
    refused = (200, '{"errcode":310000,"errmsg":"keywords not in content"}')
    receiver.script["/robot"] = [refused, refused]
    ingest_values(city, [160])
    start = utcnow()
    run_outbox(city, start)
    run_outbox(city, start + timedelta(seconds=10))
    run_outbox(city, start + timedelta(hours=1))
    [delivery] = deliveries(city)
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert delivery.last_error == "errcode 310000: keywords not in content"
    assert len(receiver.to("/robot")) == 2


def test_an_unreachable_channel_does_not_hold_up_the_others(city, receiver):
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    dead_url = f"http://127.0.0.1:{closed.server_address[1]}/hook"
    closed.server_close()
    configure(
        city,
        receiver,
        channels={
            "dead": {"type": "webhook", "url": dead_url, "timeout": "2s"},
            "desk": webhook(receiver, "/d"),
        },
        routes=[{"channels": ["dead", "desk"]}],
    )
    ingest_values(city, [160])
    outcome = run_outbox(city)
    assert (outcome.sent, outcome.retrying) == (1, 1)
    by_channel = {d.channel: d for d in deliveries(city)}
    assert by_channel["desk"].status == "sent"
    assert by_channel["dead"].status == "pending" and "ConnectError" in by_channel["dead"].last_error
    assert dead_url not in by_channel["dead"].last_error


def test_a_red_alert_nobody_acknowledges_escalates_step_by_step(city, receiver):
    configure(
        city,
        receiver,
        channels={
            "desk": webhook(receiver, "/desk"),
            "leaders": {
                "type": "dingtalk",
                "url": receiver.url + "/leaders?access_token=abc",
                "secret": "SECleaders",
            },
            "director": webhook(receiver, "/director"),
        },
        routes=[{"channels": ["desk"]}],
        escalation=[
            {
                "after": "10m",
                "every": "10m",
                "steps": [{"channel": "leaders", "to": ["13800000001"]}, {"channel": "director"}],
            }
        ],
    )
    ingest_values(city, [320])
    alert = the_alert(city)
    run_outbox(city)
    assert alert.severity == 4 and len(receiver.to("/desk")) == 1
    reached = opened_at(city, alert.id)
    run_escalation(city, reached + timedelta(minutes=9))
    assert receiver.to("/leaders") == []
    run_escalation(city, reached + timedelta(minutes=10))
    run_escalation(city, reached + timedelta(minutes=11))
    run_outbox(city, reached + timedelta(minutes=11))
    [step] = receiver.to("/leaders")
    message = json.loads(step.body)
    assert message["msgtype"] == "markdown" and message["at"]["atMobiles"] == ["13800000001"]
    assert "@13800000001" in message["markdown"]["text"]
    assert "已 10 分钟无人确认" in message["markdown"]["text"]
    stamp = step.query["timestamp"][0]
    digest = hmac.new(b"SECleaders", f"{stamp}\nSECleaders".encode(), hashlib.sha256).digest()
    assert step.query["sign"][0] == base64.b64encode(digest).decode()
    assert step.query["access_token"] == ["abc"]
    run_escalation(city, reached + timedelta(minutes=19))
    assert receiver.to("/director") == []
    run_escalation(city, reached + timedelta(minutes=20))
    run_escalation(city, reached + timedelta(minutes=45))
    [last] = receiver.to("/director")
    assert json.loads(last.body)["kind"] == "escalation"
    assert len(receiver.to("/leaders")) == 1 and len(receiver.to("/desk")) == 1


def test_acknowledged_in_time_means_no_escalation(city, receiver):
    configure(
        city,
        receiver,
        channels={"leaders": webhook(receiver, "/leaders"), "director": webhook(receiver, "/director")},
        escalation=[{"after": "10m", "steps": [{"channel": "leaders"}, {"channel": "director"}]}],
    )
    ingest_values(city, [320], entity="1188A")
    ingest_values(city, [330], entity="1189A")
    first, second = sorted(_alerts(city), key=lambda a: a.id)
    with city.sessions() as session:
        acknowledge(session, first.id, "officer.li", "on site")
        session.commit()
    reached = opened_at(city, second.id)
    run_escalation(city, reached + timedelta(minutes=11))
    [step] = receiver.to("/leaders")
    assert json.loads(step.body)["id"] == second.id
    with city.sessions() as session:  # acknowledged between two steps: the chain stops
        acknowledge(session, second.id, "officer.wang", "on it")
        session.commit()
    run_escalation(city, reached + timedelta(hours=2))
    assert receiver.to("/director") == [] and len(receiver.to("/leaders")) == 1


def _alerts(ctx) -> list[Alert]:
    with ctx.sessions() as session:
        return list(session.scalars(select(Alert).where(Alert.rule_key == "test.plain:threshold")))


def test_an_escalation_step_queued_before_the_acknowledgement_is_cancelled(city, receiver):
    configure(
        city,
        receiver,
        channels={"leaders": webhook(receiver, "/leaders")},
        escalation=[{"after": "10m", "steps": [{"channel": "leaders"}]}],
    )
    receiver.script["/leaders"] = [(503, "down")]
    ingest_values(city, [320])
    alert = the_alert(city)
    reached = opened_at(city, alert.id)
    run_escalation(city, reached + timedelta(minutes=10))
    with city.sessions() as session:
        acknowledge(session, alert.id, "officer.li", "seen")
        session.commit()
    deliver_due(city, reached + timedelta(hours=1))
    [delivery] = deliveries(city)
    assert (delivery.status, delivery.attempts) == ("cancelled", 1) and len(receiver.to("/leaders")) == 1


def test_a_muted_alert_is_recorded_but_never_sent(city, receiver):
    configure(
        city,
        receiver,
        channels={"desk": webhook(receiver, "/desk"), "leaders": webhook(receiver, "/leaders")},
        routes=[{"channels": ["desk"]}],
        escalation=[{"after": "10m", "steps": [{"channel": "leaders"}]}],
    )
    now = utcnow()
    with city.sessions() as session:
        add_silence(session, now - timedelta(hours=2), now + timedelta(hours=1), "admin", "maintenance")
        session.commit()
    ingest_values(city, [320])
    alert = the_alert(city)
    assert alert.muted
    run_outbox(city)
    run_escalation(city, opened_at(city, alert.id) + timedelta(hours=1))
    assert receiver.requests == []
    [delivery] = deliveries(city)
    assert (delivery.status, delivery.channel, delivery.attempts) == ("muted", "desk", 0)


def test_a_resolution_goes_only_to_channels_that_heard_of_the_alert(city, receiver):
    configure(
        city,
        receiver,
        channels={"desk": webhook(receiver, "/desk"), "chiefs": webhook(receiver, "/chiefs")},
        routes=[
            {"channels": ["desk"], "events": ["opened", "resolved"]},
            {"channels": ["chiefs"], "events": ["resolved"]},
        ],
    )
    ingest_values(city, [160])
    run_outbox(city)
    ingest_values(city, [60], minutes_ago=5)
    run_outbox(city)
    kinds = [json.loads(r.body)["kind"] for r in receiver.to("/desk")]
    assert kinds == ["opened", "resolved"]
    assert receiver.to("/chiefs") == []


def test_an_alert_already_over_when_read_is_not_announced(city, receiver):
    configure(city, receiver, channels={"desk": webhook(receiver, "/desk")}, routes=[{"channels": ["desk"]}])
    ingest_values(city, [160, 170, 60])
    run_outbox(city)
    assert receiver.requests == []


def test_two_dispatchers_at_once_send_each_message_once(city, receiver):
    configure(
        city,
        receiver,
        channels={"desk": webhook(receiver, "/desk")},
        routes=[{"channels": ["desk"]}],
    )
    for entity in ("1188A", "1189A", "1190A"):
        ingest_values(city, [160], entity=entity)
    assert collect(city) == 3
    barrier = threading.Barrier(2)

    def dispatcher() -> None:
        barrier.wait()
        deliver_due(city)

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    ids = sorted(json.loads(r.body)["id"] for r in receiver.to("/desk"))
    assert len(ids) == 3 and len(set(ids)) == 3
    assert {d.status for d in deliveries(city)} == {"sent"}


def test_an_event_committed_late_is_still_sent(city, receiver):
    """A long ingest transaction on PostgreSQL may commit an event whose id is lower than ones the
    outbox has already read; the rescan within `grace` still finds it."""
    if city.engine.dialect.name != "postgresql":
        pytest.skip("SQLite commits alert events in id order; only PostgreSQL can commit them late")
    configure(city, receiver, channels={"desk": webhook(receiver, "/desk")}, routes=[{"channels": ["desk"]}])
    ingest_values(city, [160], entity="1188A")
    ingest_values(city, [160], entity="1189A")
    first, second = sorted(_alerts(city), key=lambda a: a.id)
    now = utcnow()
    run_outbox(city, now)

    def raised(alert: Alert) -> AlertEvent:
        return AlertEvent(
            alert_id=alert.id, at=now, actor="system", kind="escalated", from_severity=2, to_severity=3
        )

    slow = city.sessions()
    slow.add(raised(first))
    slow.flush()  # the id is taken, the row invisible until commit
    with city.sessions() as fast:
        fast.add(raised(second))
        fast.commit()
    run_outbox(city, now + timedelta(minutes=1))
    run_outbox(city, now + timedelta(minutes=2))
    slow.commit()
    slow.close()
    run_outbox(city, now + timedelta(minutes=3))
    run_outbox(city, now + timedelta(hours=1))
    sent = [(json.loads(r.body)["id"], json.loads(r.body)["kind"]) for r in receiver.to("/desk")]
    assert sorted(sent) == sorted(
        [(first.id, "opened"), (second.id, "opened"), (second.id, "escalated"), (first.id, "escalated")]
    )


def test_the_scheduler_runs_the_jobs_only_when_something_is_configured(city, receiver):
    from ingest.scheduler import build_scheduler

    assert build_scheduler(city).get_job("notifications") is None
    configure(
        city,
        receiver,
        dispatch_every="20s",
        channels={"desk": webhook(receiver, "/desk")},
        routes=[{"channels": ["desk"]}],
    )
    scheduler = build_scheduler(city)
    assert scheduler.get_job("notifications").trigger.interval == timedelta(seconds=20)
    assert scheduler.get_job("escalation").trigger.interval == timedelta(minutes=1)
