"""Reads the rule evaluation needs: recent points of many series in one query."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Reading


def points(session: Session, since: dict[int, datetime], until: datetime | None = None) -> dict[int, list]:
    """Each series' (observed_at, value) from its own start time, time-ordered, in one query."""
    if not since:
        return {}
    earliest = min(since.values())
    query = select(Reading.series_id, Reading.observed_at, Reading.value).where(
        Reading.series_id.in_(list(since)), Reading.observed_at >= earliest
    )
    if until is not None:
        query = query.where(Reading.observed_at <= until)
    found: dict[int, list] = defaultdict(list)
    for series_id, at, value in session.execute(query.order_by(Reading.series_id, Reading.observed_at)):
        if at >= since[series_id]:
            found[series_id].append((at, value))
    return found
