"""The alert lifecycle on both dialects: officers' actions, silences, and concurrent acknowledgement."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.records import ValidReading
from core.timeutil import utcnow
from store.alerts import AlertConflict, acknowledge, add_silence, close, comment
from store.models import Alert, AlertEvent
from store.readings import upsert_readings


def run_values(ingest, values, entity="1188A", start_minutes=60):
    """Store readings of the test indicator and evaluate them as the pipeline does."""
    from ingest.pipeline import _evaluate

    base = (utcnow() - timedelta(minutes=start_minutes)).replace(second=0, microsecond=0)
    readings = [
        ValidReading("test.plain", entity, base + timedelta(minutes=5 * i), v) for i, v in enumerate(values)
    ]
    with ingest.sessions() as session:
        touched = upsert_readings(session, readings, "test", ingest.region_of)
        _evaluate(ingest, session, touched)
        session.commit()


def the_alert(ingest) -> Alert:
    with ingest.sessions() as session:
        return session.scalars(select(Alert).where(Alert.rule_key == "test.plain:threshold")).one()


def events(ingest, alert_id):
    with ingest.sessions() as session:
        rows = session.scalars(
            select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)
        )
        return [(e.kind, e.actor, e.note) for e in rows]


def test_acknowledge_resolve_close(ingest):
    run_values(ingest, [160, 170])
    alert = the_alert(ingest)
    with ingest.sessions() as session:
        acknowledge(session, alert.id, "officer.li", "dispatched the environment team")
        session.commit()
    run_values(ingest, [90], start_minutes=5)
    alert = the_alert(ingest)
    assert alert.state == "resolved" and alert.acknowledged_by == "officer.li"
    with ingest.sessions() as session:
        comment(session, alert.id, "officer.li", "sensor checked")
        close(session, alert.id, "officer.wang", "confirmed over")
        session.commit()
    assert the_alert(ingest).state == "closed"
    assert events(ingest, alert.id) == [
        ("opened", "system", ""),
        ("acknowledged", "officer.li", "dispatched the environment team"),
        ("resolved", "system", ""),
        ("commented", "officer.li", "sensor checked"),
        ("closed", "officer.wang", "confirmed over"),
    ]


def test_resolved_but_unacknowledged_stays_until_closed(ingest):
    run_values(ingest, [160, 90])
    alert = the_alert(ingest)
    assert alert.state == "resolved" and alert.acknowledged_at is None
    with ingest.sessions() as session:
        acknowledge(session, alert.id, "officer.li", "seen late")
        session.commit()
    assert the_alert(ingest).state == "resolved" and the_alert(ingest).acknowledged_by == "officer.li"
    with ingest.sessions() as session, pytest.raises(AlertConflict):
        acknowledge(session, alert.id, "officer.wang")


def test_close_needs_resolution(ingest):
    run_values(ingest, [160])
    with ingest.sessions() as session, pytest.raises(AlertConflict, match="is active"):
        close(session, the_alert(ingest).id, "officer.li")


def test_two_officers_acknowledge_at_the_same_moment(ingest):
    run_values(ingest, [160])
    alert_id = the_alert(ingest).id
    barrier = threading.Barrier(2)
    outcomes = {}

    def officer(name):
        with ingest.sessions() as session:
            barrier.wait()
            try:
                acknowledge(session, alert_id, name, f"{name} on it")
                session.commit()
                outcomes[name] = "done"
            except AlertConflict as conflict:
                session.rollback()
                outcomes[name] = f"refused: {conflict.by}"

    threads = [threading.Thread(target=officer, args=(n,)) for n in ("officer.li", "officer.wang")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes.values())[0] == "done"
    winner = next(n for n, o in outcomes.items() if o == "done")
    loser = next(n for n in outcomes if n != winner)
    assert outcomes[loser] == f"refused: {winner}"
    acks = [e for e in events(ingest, alert_id) if e[0] == "acknowledged"]
    assert acks == [("acknowledged", winner, f"{winner} on it")]


def test_silenced_alerts_are_recorded_but_muted(ingest):
    now = utcnow()
    with ingest.sessions() as session:
        add_silence(
            session,
            now - timedelta(hours=2),
            now + timedelta(hours=1),
            "admin",
            "sensor maintenance",
            indicator_key="test.plain",
            entity="1188A",
        )
        session.commit()
    run_values(ingest, [160], entity="1188A")
    run_values(ingest, [160], entity="1189A")
    with ingest.sessions() as session:
        alerts = {
            a.series_id: a
            for a in session.scalars(select(Alert).where(Alert.rule_key == "test.plain:threshold"))
        }
    assert sorted(a.muted for a in alerts.values()) == [False, True]


def test_silence_must_end_after_it_starts(ingest):
    now = utcnow()
    with ingest.sessions() as session, pytest.raises(ValueError):
        add_silence(session, now, now, "admin")


def test_migrations_match_the_models(ingest):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from store.models import Base

    with ingest.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
