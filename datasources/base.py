"""The adapter protocol: how the city brain reaches a department's system.

An adapter is configured by a pydantic options model (so a config error names the key), fetches
records since a watermark, and maps them to (indicator, entity, observed_at, value). It returns
records and never touches the store; validation and storage are the pipeline's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from core.city import City
from core.records import Record
from indicators.catalog import Catalog


@dataclass
class Batch:
    """What one fetch returns: the records and the watermark to resume from next time."""

    records: list[Record] = field(default_factory=list)
    watermark: str | None = None


@dataclass(frozen=True)
class AdapterContext:
    """What an adapter may know of the deployment: the city, the catalog, the city's zone."""

    city: City
    catalog: Catalog
    timezone: ZoneInfo
    source_id: str


class Options(BaseModel):
    """Base of every adapter's options schema: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@runtime_checkable
class Adapter(Protocol):
    """A configured datasource. `backfills` says whether fetch can replay an arbitrary past window.

    An adapter that reads files may also offer a classmethod `replay_options(path) -> dict`: the
    option overrides that point it at another file, for `citybrain ingest SOURCE --from FILE`.
    """

    Options: ClassVar[type[Options]]
    backfills: ClassVar[bool]

    def __init__(self, options: Options, context: AdapterContext) -> None: ...

    def fetch(self, since: str | None, until: datetime) -> Batch:
        """Records observed after watermark `since` (None: the first run) up to `until`."""
        ...
