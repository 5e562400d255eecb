"""The batch alert writer and series levels on both dialects: many series in one batch, an
officer's acknowledgement surviving an escalation, ORM objects the session already holds, and the
staleness sweep going through the same writer."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from core.records import ValidReading
from core.timeutil import utcnow
from ingest.sweep import sweep_stale
from store.alerts import acknowledge
from store.models import Alert, AlertEvent, Series
from store.readings import upsert_readings

RULE = "test.plain:threshold"  # blue 101, yellow 151, orange 201, red 301, no hysteresis


def evaluate(ingest, by_entity: dict[str, list[float]], start_minutes: int = 60, session=None) -> None:
    """Store each entity's readings (5 minutes apart) and evaluate them in one batch."""
    from ingest.pipeline import _evaluate

    base = (utcnow() - timedelta(minutes=start_minutes)).replace(second=0, microsecond=0)
    readings = [
        ValidReading("test.plain", entity, base + timedelta(minutes=5 * i), value)
        for entity, values in by_entity.items()
        for i, value in enumerate(values)
    ]
    if session is not None:
        _evaluate(ingest, session, upsert_readings(session, readings, "test", ingest.region_of))
        return
    with ingest.sessions() as own:
        _evaluate(ingest, own, upsert_readings(own, readings, "test", ingest.region_of))
        own.commit()


def alerts_by_entity(ingest) -> dict[str, list[tuple]]:
    """Each entity's alerts with their events, in order."""
    with ingest.sessions() as session:
        rows = session.execute(
            select(Series.entity, Alert.id, Alert.state, Alert.severity, Alert.peak_severity)
            .join(Series, Series.id == Alert.series_id)
            .where(Alert.rule_key == RULE)
            .order_by(Alert.id)
        ).all()
        found: dict[str, list[tuple]] = {}
        for entity, alert_id, state, severity, peak in rows:
            events = session.execute(
                select(AlertEvent.kind, AlertEvent.from_severity, AlertEvent.to_severity)
                .where(AlertEvent.alert_id == alert_id)
                .order_by(AlertEvent.id)
            ).all()
            found.setdefault(entity, []).append((state, severity, peak, [tuple(e) for e in events]))
        return found


def levels(ingest) -> dict[str, int]:
    with ingest.sessions() as session:
        query = select(Series.entity, Series.last_severity).where(Series.indicator_key == "test.plain")
        return {entity: level for entity, level in session.execute(query)}


def test_one_batch_of_many_series_gives_each_alert_its_own_events(ingest):
    scripts = {
        "A1": [160],  # opens yellow
        "A2": [160, 250],  # opens yellow, escalates to orange
        "A3": [160, 90],  # opens and resolves within the batch
        "A4": [90],  # nothing
        "A5": [160, 90, 320],  # opens, resolves, opens again (red)
    }
    evaluate(ingest, {f"{name}-{n}": values for n in range(20) for name, values in scripts.items()})
    found = alerts_by_entity(ingest)
    for n in range(20):
        assert found[f"A1-{n}"] == [("active", 2, 2, [("opened", 0, 2)])]
        assert found[f"A2-{n}"] == [("active", 3, 3, [("opened", 0, 2), ("escalated", 2, 3)])]
        assert found[f"A3-{n}"] == [("resolved", 2, 2, [("opened", 0, 2), ("resolved", 2, 0)])]
        assert f"A4-{n}" not in found
        assert found[f"A5-{n}"] == [
            ("resolved", 2, 2, [("opened", 0, 2), ("resolved", 2, 0)]),
            ("active", 4, 4, [("opened", 0, 4)]),
        ]
    assert {entity[:2]: level for entity, level in levels(ingest).items()} == {
        "A1": 2,
        "A2": 3,
        "A3": 0,
        "A4": 0,
        "A5": 4,
    }


def test_an_open_alert_resolves_and_its_rule_reopens_in_one_batch(ingest):
    """The unique index allows one open alert per rule and series: the old one must be resolved
    in the database before the new one is inserted."""
    evaluate(ingest, {"R1": [160]})
    evaluate(ingest, {"R1": [90, 250]}, start_minutes=10)
    assert alerts_by_entity(ingest)["R1"] == [
        ("resolved", 2, 2, [("opened", 0, 2), ("resolved", 2, 0)]),
        ("active", 3, 3, [("opened", 0, 3)]),
    ]
    assert levels(ingest) == {"R1": 3}


def test_the_series_level_follows_its_open_alerts_and_heals(ingest):
    evaluate(ingest, {"L1": [160], "L2": [250]})
    assert levels(ingest) == {"L1": 2, "L2": 3}
    evaluate(ingest, {"L1": [90], "L2": [170]}, start_minutes=5)
    assert levels(ingest) == {"L1": 0, "L2": 2}
    with ingest.sessions() as session:  # a level out of step with the alerts, whatever the cause
        session.execute(update(Series).where(Series.entity == "L1").values(last_severity=4))
        session.commit()
    evaluate(ingest, {"L1": [95], "L2": [171]}, start_minutes=0)
    assert levels(ingest) == {"L1": 0, "L2": 2}


def test_an_escalation_keeps_the_officers_acknowledgement(ingest):
    evaluate(ingest, {"K1": [160]})
    with ingest.sessions() as session:
        alert_id = session.scalar(select(Alert.id).where(Alert.rule_key == RULE))
        acknowledge(session, alert_id, "officer.li", "on it")
        session.commit()
    evaluate(ingest, {"K1": [250]}, start_minutes=5)
    with ingest.sessions() as session:
        alert = session.get(Alert, alert_id)
        assert (alert.state, alert.acknowledged_by, alert.severity, alert.peak_severity) == (
            "acknowledged",
            "officer.li",
            3,
            3,
        )
        assert "orange" in alert.explanation_en.lower()


def test_alerts_the_session_already_holds_show_the_new_state(ingest):
    evaluate(ingest, {"S1": [160]})
    with ingest.sessions() as session:
        alert = session.scalars(select(Alert).where(Alert.rule_key == RULE)).one()
        assert alert.severity == 2
        evaluate(ingest, {"S1": [90]}, start_minutes=5, session=session)
        assert (alert.state, alert.severity) == ("resolved", 2)
        session.commit()


def test_the_sweep_opens_no_data_alerts_through_the_same_writer(ingest):
    last = (utcnow() - timedelta(days=1)).replace(microsecond=0)
    with ingest.sessions() as session:
        upsert_readings(session, [ValidReading("env.aqi", "1188A", last, 50.0)], "test", ingest.region_of)
        session.commit()
    assert sweep_stale(ingest) >= 1
    assert sweep_stale(ingest) == 0  # already open
    with ingest.sessions() as session:
        series = session.scalars(select(Series).where(Series.indicator_key == "env.aqi")).one()
        alert = session.scalars(select(Alert).where(Alert.series_id == series.id)).one()
        kinds = session.scalars(select(AlertEvent.kind).where(AlertEvent.alert_id == alert.id)).all()
        assert (alert.rule_key, alert.state, series.last_severity, kinds) == (
            "env.aqi:nodata",
            "active",
            alert.severity,
            ["opened"],
        )
