"""The periodic staleness sweep: a series that stopped reporting raises its no-data alert.

Batches only see series that sent something; silence has to be looked for. One query over the
series' latest times, every minute.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from core.timeutil import utcnow
from indicators.evaluation import nodata_rule, stale_transition
from ingest.context import IngestContext
from store.alerts import apply_transitions, open_alerts, refresh_series_level, silences_between
from store.models import Series
from store.state import bump_data_version


def sweep_stale(ctx: IngestContext, now: datetime | None = None) -> int:
    """Open a no-data alert for every silent series; returns how many opened."""
    now = now or utcnow()
    keys = [indicator.key for indicator in ctx.catalog if nodata_rule(indicator)]
    opened = []
    with ctx.sessions() as session:
        series_rows = session.scalars(select(Series).where(Series.indicator_key.in_(keys))).all()
        alerts = open_alerts(session, [s.id for s in series_rows])
        silences = silences_between(session, now, now)
        for series in series_rows:
            indicator = ctx.catalog[series.indicator_key]
            rule_key = f"{indicator.key}:nodata"
            current = alerts[(series.id, rule_key)].severity if (series.id, rule_key) in alerts else 0
            step = stale_transition(indicator, rule_key, series.last_observed_at, now, current)
            if step is None:
                continue
            apply_transitions(
                session, series, [step], alerts, ctx.explainer(indicator, series.entity), silences
            )
            opened.append(series.id)
        if opened:
            refresh_series_level(session, opened)
            bump_data_version(session)
        session.commit()
    return len(opened)
