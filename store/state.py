"""Shared small values: the data version (bumped after every ingest) and the scheduler heartbeat.

Every web worker polls the data version to know when cached results and screens are out of date;
it is one primary-key read, cheap enough for every wall screen every few seconds.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from core.timeutil import utcnow
from store.models import AppState

DATA_VERSION = "data_version"
HEARTBEAT = "scheduler_heartbeat"


def data_version(engine: Engine) -> int:
    with engine.connect() as connection:
        value = connection.execute(select(AppState.value).where(AppState.key == DATA_VERSION)).scalar()
    return int(value or 0)


def bump_data_version(session: Session) -> None:
    """Atomically increment (works across processes on SQLite and PostgreSQL)."""
    updated = session.execute(
        text(
            "UPDATE app_state SET value = CAST(CAST(value AS INTEGER) + 1 AS VARCHAR(256)) WHERE key = :key"
        ),
        {"key": DATA_VERSION},
    ).rowcount
    if not updated:
        session.merge(AppState(key=DATA_VERSION, value="1"))


def beat(session: Session) -> None:
    session.merge(AppState(key=HEARTBEAT, value=utcnow().isoformat()))
    session.commit()


def last_heartbeat(engine: Engine) -> datetime | None:
    with engine.connect() as connection:
        value = connection.execute(select(AppState.value).where(AppState.key == HEARTBEAT)).scalar()
    return datetime.fromisoformat(value) if value else None


RUN_REQUEST = "run_request:"


def request_run(session: Session, source_id: str, by: str) -> None:
    """Ask the scheduler (whichever process runs it) to run a source now; it polls these requests."""
    session.merge(AppState(key=f"{RUN_REQUEST}{source_id}", value=f"{utcnow().isoformat()} {by}"[:256]))


def run_requests(engine: Engine) -> dict[str, tuple[datetime, str]]:
    """Pending requests: source id -> (when, by whom)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(AppState.key, AppState.value).where(AppState.key.startswith(RUN_REQUEST))
        ).all()
    pending = {}
    for key, value in rows:
        when, _, by = value.partition(" ")
        pending[key.removeprefix(RUN_REQUEST)] = (datetime.fromisoformat(when), by)
    return pending


def take_run_request(session: Session, source_id: str) -> bool:
    """Claim a pending request (exactly one scheduler process gets it)."""
    claimed = session.execute(
        text("DELETE FROM app_state WHERE key = :key"), {"key": f"{RUN_REQUEST}{source_id}"}
    ).rowcount
    return bool(claimed)
