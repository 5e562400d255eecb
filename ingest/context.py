"""Everything one ingest run needs, built once per process by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from threading import Lock, Thread

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.city import City
from core.settings import Names, Settings
from datasources.base import Adapter, AdapterContext
from datasources.registry import build
from indicators.catalog import Catalog, Indicator
from indicators.evaluation import Transition, explain
from indicators.validation import Validator
from store.models import Source


@dataclass
class IngestContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    city: City
    catalog: Catalog
    validator: Validator = field(init=False)
    region_of: dict[str, str | None] = field(init=False)
    names: dict[str, Names] = field(init=False)
    hung: dict[str, Thread] = field(default_factory=dict)
    _adapters: dict[str, tuple[tuple, Adapter]] = field(default_factory=dict)
    _lock: Lock = field(default_factory=Lock)

    def __post_init__(self) -> None:
        self.validator = Validator(self.catalog, self.city.entity_codes(), self.settings.tz)
        self.region_of = {s.code: s.region_code for s in self.city.stations}
        self.region_of.update({r.code: r.code for r in self.city.regions})
        self.names = {s.code: s.name for s in self.city.stations}
        self.names.update({r.code: r.name for r in self.city.regions})

    def explainer(self, indicator: Indicator, entity: str) -> Callable[[Transition, str], str]:
        """The sentence-maker the alert writer calls, in either language, for one series."""
        name = self.names.get(entity)

        def sentence(step: Transition, lang: str) -> str:
            return explain(indicator, name.get(lang) if name else entity, step, lang, self.settings.tz)

        return sentence

    def adapter(self, source: Source) -> Adapter:
        """The adapter of a source, rebuilt only when its type or options change."""
        signature = (source.type, repr(sorted(source.options.items())))
        with self._lock:
            cached = self._adapters.get(source.id)
            if cached is None or cached[0] != signature:
                if cached is not None:
                    close_adapter(cached[1])
                cached = (signature, self.build_adapter(source))
                self._adapters[source.id] = cached
            return cached[1]

    def close(self) -> None:
        """Stop what adapters hold open (an MQTT subscription's network loop) on shutdown."""
        with self._lock:
            for _, adapter in self._adapters.values():
                close_adapter(adapter)
            self._adapters.clear()

    def build_adapter(self, source: Source, options: dict | None = None) -> Adapter:
        """A fresh adapter of the source, with its options overridden by `options` (for replays)."""
        context = AdapterContext(self.city, self.catalog, self.settings.tz, source.id)
        return build(source.type, {**source.options, **(options or {})}, context)


def close_adapter(adapter: Adapter) -> None:
    close = getattr(adapter, "close", None)
    if callable(close):
        close()
