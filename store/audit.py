"""The audit log: every sign-in (failed ones too) and every write, with who, when and from where."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.timeutil import utcnow
from store.models import AuditEntry

DETAIL_LIMIT = 2000


def record(
    session: Session, actor: str, action: str, target: str = "", detail: str = "", address: str = ""
) -> None:
    """Add an entry to the caller's transaction, so the write and its audit commit together."""
    session.add(
        AuditEntry(
            at=utcnow(),
            actor=actor[:64],
            action=action[:64],
            target=target[:256],
            detail=detail[:DETAIL_LIMIT],
            address=address[:64],
        )
    )


def recent(session: Session, limit: int = 200, actor: str | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    return list(session.scalars(query))
