"""The outbox: alert events and overdue red alerts become rows of `notification_deliveries`.

Rows are inserted with ON CONFLICT DO NOTHING on (event, channel, target, kind), so two scheduler
processes, a restart or a rescan never queue a message twice; sending is dispatch.py's job.

Events are read after a cursor kept in app_state. SQLite commits events in id order, PostgreSQL
does not: an ingest transaction that started earlier may commit lower ids after higher ones were
read. So the ids above the cursor's `safe` point are read again on every pass until `grace` has
passed since they were first seen; events that already have deliveries are skipped in SQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from core.timeutil import utcnow
from notify.notice import ESCALATION
from notify.routing import chain_for, due_step, route, step_targets, subject
from notify.settings import EscalationChain, NotificationSettings
from store.models import OPEN_STATES, Alert, AlertEvent, AppState, NotificationDelivery, Series
from store.readings import dialect_insert

if TYPE_CHECKING:
    from ingest.context import IngestContext

CURSOR = "notify_cursor"
PAGE = 500
RAISING = ("opened", "escalated")
RESOLVED = "resolved"
UNSENT = ("muted", "cancelled")


@dataclass(frozen=True)
class Cursor:
    """Events up to `safe` are done; those up to `pending` were first read at `since`."""

    safe: int = 0
    pending: int | None = None
    since: datetime | None = None

    def text(self) -> str:
        if self.pending is None or self.since is None:
            return str(self.safe)
        return f"{self.safe};{self.pending};{self.since.isoformat()}"

    @classmethod
    def parse(cls, value: str | None) -> Cursor:
        if not value:
            return cls()
        parts = value.split(";")
        if len(parts) == 3:
            return cls(int(parts[0]), int(parts[1]), datetime.fromisoformat(parts[2]))
        return cls(int(parts[0]))

    def advance(self, high: int, now: datetime, grace: float) -> Cursor:
        """After a pass that read every visible event up to `high`."""
        safe, pending, since = self.safe, self.pending, self.since
        if pending is not None and since is not None and now - since >= timedelta(seconds=grace):
            safe, pending, since = pending, None, None
        if pending is None and high > safe:
            pending, since = high, now
        return Cursor(safe, pending, since)


def load_cursor(session: Session) -> Cursor:
    return Cursor.parse(session.scalar(select(AppState.value).where(AppState.key == CURSOR)))


def save_cursor(session: Session, cursor: Cursor) -> None:
    done = session.execute(
        update(AppState).where(AppState.key == CURSOR).values(value=cursor.text())
    ).rowcount
    if not done:
        session.execute(
            dialect_insert(session, AppState)
            .values(key=CURSOR, value=cursor.text())
            .on_conflict_do_nothing(index_elements=["key"])
        )


def queue(
    session: Session,
    alert: Alert,
    event: AlertEvent,
    kind: str,
    pairs: Iterable[tuple[str, str]],
    now: datetime,
) -> int:
    """Insert one delivery per (channel, target), unless it exists; a muted alert's are recorded
    as `muted` and never sent."""
    status = "muted" if alert.muted else "pending"
    rows = [
        {
            "alert_id": alert.id,
            "event_id": event.id,
            "kind": kind,
            "channel": channel,
            "target": target,
            "status": status,
            "attempts": 0,
            "next_attempt_at": None if alert.muted else now,
            "last_error": "",
            "created_at": now,
        }
        for channel, target in pairs
    ]
    if not rows:
        return 0
    stmt = dialect_insert(session, NotificationDelivery).values(rows)
    stmt = stmt.on_conflict_do_nothing(index_elements=["event_id", "channel", "target", "kind"])
    return len(session.execute(stmt.returning(NotificationDelivery.id)).all())


def _told(session: Session, alert_id: int) -> set[str]:
    """The channels that heard of this alert (so its resolution goes to them only)."""
    return set(
        session.scalars(
            select(NotificationDelivery.channel).where(
                NotificationDelivery.alert_id == alert_id, NotificationDelivery.status.not_in(UNSENT)
            )
        )
    )


def _queue_event(
    ctx: IngestContext, session: Session, event: AlertEvent, alert: Alert, key: str, now: datetime
) -> int:
    settings = ctx.settings.notifications
    indicator = ctx.catalog.get(key)
    if indicator is None:
        return 0
    severity = event.to_severity or event.from_severity or alert.severity
    pairs = route(settings, event.kind, subject(severity, indicator, alert.department))
    if event.kind == RESOLVED and pairs:
        told = _told(session, alert.id)
        pairs = [(channel, target) for channel, target in pairs if channel in told]
    return queue(session, alert, event, event.kind, pairs, now)


def _worth_reading() -> ColumnElement[bool]:
    """Events that may still need a message: of an alert still open, or the resolution of one
    some channel heard of. (Everything else would only be read again and again in the rescan.)"""
    told = exists().where(
        NotificationDelivery.alert_id == Alert.id, NotificationDelivery.status.not_in(UNSENT)
    )
    return or_(
        and_(AlertEvent.kind != RESOLVED, Alert.state.in_(OPEN_STATES)),
        and_(AlertEvent.kind == RESOLVED, told),
    )


def collect(ctx: IngestContext, now: datetime | None = None) -> int:
    """Queue the deliveries of the alert events since the cursor; returns how many were queued.

    An event of an alert that has resolved by the time it is read is not sent, so a backfill of
    history does not flood the groups; a resolution goes only to channels that were told of the
    alert (and that a route sends resolutions to).
    """
    now = now or utcnow()
    settings = ctx.settings.notifications
    kinds = sorted({kind for rule in settings.routes for kind in rule.events})
    queued = 0
    with ctx.sessions() as session:
        cursor = load_cursor(session)
        high = session.scalar(select(func.max(AlertEvent.id))) or 0
        last = cursor.safe
        while kinds:
            rows = session.execute(
                select(AlertEvent, Alert, Series.indicator_key)
                .join(Alert, Alert.id == AlertEvent.alert_id)
                .join(Series, Series.id == Alert.series_id)
                .where(
                    AlertEvent.id > last,
                    AlertEvent.id <= high,
                    AlertEvent.kind.in_(kinds),
                    ~exists().where(
                        NotificationDelivery.event_id == AlertEvent.id,
                        NotificationDelivery.kind == AlertEvent.kind,
                    ),
                    _worth_reading(),
                )
                .order_by(AlertEvent.id)
                .limit(PAGE)
            ).all()
            for event, alert, key in rows:
                queued += _queue_event(ctx, session, event, alert, key, now)
            if len(rows) < PAGE:
                break
            last = rows[-1][0].id
        save_cursor(session, cursor.advance(high, now, settings.grace))
        session.commit()
    return queued


def _reached(session: Session, alert_id: int, severity: int) -> AlertEvent | None:
    """The latest event in which the alert came up to `severity` from below: the escalation clock
    starts there, and starts again if the alert fell below and came back."""
    return session.scalars(
        select(AlertEvent)
        .where(
            AlertEvent.alert_id == alert_id,
            AlertEvent.kind.in_(RAISING),
            AlertEvent.to_severity >= severity,
            func.coalesce(AlertEvent.from_severity, 0) < severity,
        )
        .order_by(AlertEvent.id.desc())
        .limit(1)
    ).first()


def _steps_done(
    session: Session, settings: NotificationSettings, chain: EscalationChain, anchor: int
) -> list[datetime]:
    """When each step already queued was queued, in step order."""
    queued = {
        (channel, target): at
        for channel, target, at in session.execute(
            select(
                NotificationDelivery.channel, NotificationDelivery.target, NotificationDelivery.created_at
            ).where(NotificationDelivery.event_id == anchor, NotificationDelivery.kind == ESCALATION)
        )
    }
    done = []
    for index in range(len(chain.steps)):
        times = [queued.get(pair) for pair in step_targets(settings, chain, index)]
        if not times or None in times:
            break
        done.append(min(times))
    return done


def escalate(ctx: IngestContext, now: datetime | None = None) -> int:
    """Queue the next escalation step of every active (unacknowledged), unmuted alert that is due;
    returns how many deliveries were queued."""
    now = now or utcnow()
    settings = ctx.settings.notifications
    if not settings.escalation:
        return 0
    floor = min(chain.severity for chain in settings.escalation)
    queued = 0
    with ctx.sessions() as session:
        candidates = session.execute(
            select(Alert, Series.indicator_key)
            .join(Series, Series.id == Alert.series_id)
            .where(Alert.state == "active", Alert.muted.is_(False), Alert.severity >= floor)
            .order_by(Alert.id)
        ).all()
        for alert, key in candidates:
            indicator = ctx.catalog.get(key)
            if indicator is None:
                continue
            chain = chain_for(settings, subject(alert.severity, indicator, alert.department))
            anchor = _reached(session, alert.id, chain.severity) if chain else None
            if chain is None or anchor is None:
                continue
            index = due_step(chain, anchor.at, _steps_done(session, settings, chain, anchor.id), now)
            if index is not None:
                queued += queue(session, alert, anchor, ESCALATION, step_targets(settings, chain, index), now)
        session.commit()
    return queued
