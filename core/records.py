"""The records that travel through the pipeline, shared by adapters, validation and the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Record:
    """One reading as the source gave it; fields may still be wrong (validation checks them).

    `raw` is the source's own text of the record, kept in quarantine when the record is rejected.
    """

    indicator: Any
    entity: Any
    observed_at: Any
    value: Any
    raw: str = ""
    quality: str = "ok"


@dataclass(frozen=True, slots=True)
class ValidReading:
    """A reading that passed validation: known indicator and entity, UTC time, finite value."""

    indicator: str
    entity: str
    observed_at: datetime
    value: float
    quality: str = "ok"
