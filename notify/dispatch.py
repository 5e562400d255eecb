"""Sending the outbox: due deliveries are claimed, sent, and retried with exponential backoff.

A delivery is claimed by one conditional UPDATE (its attempt count as the version), so two
scheduler processes never send the same row; the claim also moves `next_attempt_at` past the
request's timeout (in real time, however long the pass has run), so a process that dies mid-send
leaves a row that is tried again later: a receiver may then see a message twice, never zero times.
No transaction is open during a call. Times written (`sent_at`, the next attempt) are the pass's
`now`, which tests pass explicitly to drive retries and escalation without sleeping.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import Row, select, update

from core.timeutil import utcnow
from notify.channels import DeliveryFailed, Outgoing, request_for, send
from notify.notice import ESCALATION, notice
from notify.outbox import collect, escalate
from notify.settings import Channel, NotificationSettings
from store.models import Alert, AlertEvent, NotificationDelivery, Series

if TYPE_CHECKING:
    from ingest.context import IngestContext

log = logging.getLogger(__name__)
BATCH = 200
LEASE_MARGIN = timedelta(seconds=60)
ERROR_LIMIT = 2000


@dataclass
class Outcome:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0


def backoff(settings: NotificationSettings, attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: backoff, then doubling, capped."""
    retry = settings.retry
    return timedelta(seconds=min(retry.max_backoff, retry.backoff * 2 ** (attempts - 1)))


def _timeout(settings: NotificationSettings, channel: Channel) -> float:
    return channel.timeout or settings.timeout


def _claim(ctx: IngestContext, delivery_id: int, attempts: int, lease_until: datetime) -> bool:
    with ctx.sessions() as session:
        done = session.execute(
            update(NotificationDelivery)
            .where(
                NotificationDelivery.id == delivery_id,
                NotificationDelivery.status == "pending",
                NotificationDelivery.attempts == attempts,
            )
            .values(attempts=attempts + 1, next_attempt_at=lease_until)
        ).rowcount
        session.commit()
    return bool(done)


def _finish(ctx: IngestContext, delivery_id: int, **values: object) -> None:
    with ctx.sessions() as session:
        session.execute(
            update(NotificationDelivery).where(NotificationDelivery.id == delivery_id).values(**values)
        )
        session.commit()


def _prepare(ctx: IngestContext, delivery_id: int, channel: Channel, now: datetime) -> Outgoing | str:
    """The request of a claimed delivery, or the status it ends with unsent (`muted`, `cancelled`)."""
    settings = ctx.settings.notifications
    with ctx.sessions() as session:
        delivery = session.get(NotificationDelivery, delivery_id)
        alert = session.get(Alert, delivery.alert_id)
        event = session.get(AlertEvent, delivery.event_id)
        series = session.get(Series, alert.series_id)
    if alert.muted:
        return "muted"
    if delivery.kind == ESCALATION and alert.state != "active":
        return "cancelled"
    indicator = ctx.catalog.get(series.indicator_key)
    if indicator is None:
        raise DeliveryFailed(f"indicator {series.indicator_key!r} is no longer in the catalog")
    about = notice(
        delivery.kind,
        alert,
        event,
        indicator,
        series.entity,
        ctx.names.get(series.entity),
        settings.base_url,
        delivery.target,
        now,
    )
    lang = channel.language or settings.language or ctx.settings.default_language
    return request_for(channel, about, delivery.target, lang, ctx.settings.tz, now)


def _failed(ctx: IngestContext, delivery_id: int, attempts: int, reason: str, now: datetime) -> str:
    settings = ctx.settings.notifications
    reason = reason[:ERROR_LIMIT]
    if attempts >= settings.retry.attempts:
        _finish(ctx, delivery_id, status="failed", next_attempt_at=None, last_error=reason)
        return "failed"
    _finish(ctx, delivery_id, next_attempt_at=now + backoff(settings, attempts), last_error=reason)
    return "retrying"


def _deliver(ctx: IngestContext, client: httpx.Client, row: Row, channel: Channel, now: datetime) -> str:
    """Send one due delivery; returns what became of it: sent, retrying, failed, skipped, or
    unreachable (retrying, and its channel is not tried again in this pass)."""
    timeout = _timeout(ctx.settings.notifications, channel)
    lease_until = max(now, utcnow()) + timedelta(seconds=timeout) + LEASE_MARGIN
    if not _claim(ctx, row.id, row.attempts, lease_until):
        return "skipped"
    attempts = row.attempts + 1
    try:
        prepared = _prepare(ctx, row.id, channel, now)
        if isinstance(prepared, str):
            _finish(ctx, row.id, status=prepared, next_attempt_at=None, attempts=row.attempts)
            return "skipped"
        send(client, channel, prepared, timeout)
    except DeliveryFailed as exc:
        log.warning("notification %d via %s, attempt %d: %s", row.id, row.channel, attempts, exc)
        result = _failed(ctx, row.id, attempts, str(exc), now)
        return "unreachable" if exc.unreachable and result == "retrying" else result
    except Exception as exc:  # noqa: BLE001 - one broken message must not stop the others
        log.exception("notification %d via %s could not be built or sent", row.id, row.channel)
        return _failed(ctx, row.id, attempts, f"{type(exc).__name__}: {exc}", now)
    _finish(ctx, row.id, status="sent", sent_at=now, next_attempt_at=None, last_error="")
    return "sent"


def deliver_due(
    ctx: IngestContext, now: datetime | None = None, client: httpx.Client | None = None
) -> Outcome:
    """Send every pending delivery whose time has come (at most BATCH per pass)."""
    now = now or utcnow()
    settings = ctx.settings.notifications
    with ctx.sessions() as session:
        due = session.execute(
            select(NotificationDelivery.id, NotificationDelivery.attempts, NotificationDelivery.channel)
            .where(NotificationDelivery.status == "pending", NotificationDelivery.next_attempt_at <= now)
            .order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id)
            .limit(BATCH)
        ).all()
    outcome = Outcome()
    if not due:
        return outcome
    unreachable: set[str] = set()
    http = client or httpx.Client()
    try:
        for row in due:
            channel = settings.channels.get(row.channel)
            if channel is None:
                reason = f"channel {row.channel!r} is no longer configured"
                _finish(ctx, row.id, status="failed", next_attempt_at=None, last_error=reason)
                outcome.failed += 1
                continue
            if row.channel in unreachable:
                outcome.skipped += 1
                continue
            result = _deliver(ctx, http, row, channel, now)
            if result == "unreachable":
                unreachable.add(row.channel)
                result = "retrying"
            setattr(outcome, result, getattr(outcome, result) + 1)
    finally:
        if client is None:
            http.close()
    return outcome


def run_outbox(
    ctx: IngestContext, now: datetime | None = None, client: httpx.Client | None = None
) -> Outcome:
    """The dispatch job: queue the new events' deliveries, then send what is due."""
    now = now or utcnow()
    collect(ctx, now)
    return deliver_due(ctx, now, client)


def run_escalation(
    ctx: IngestContext, now: datetime | None = None, client: httpx.Client | None = None
) -> Outcome:
    """The escalation job: queue the steps that are due and send them at once."""
    now = now or utcnow()
    escalate(ctx, now)
    return deliver_due(ctx, now, client)
