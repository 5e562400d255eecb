"""The process-wide objects the web side needs, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from flask_caching import Cache
from sqlalchemy import Engine

from core.city import City
from core.settings import Settings
from indicators.catalog import Catalog


@dataclass
class WebRuntime:
    settings: Settings
    engine: Engine
    city: City
    catalog: Catalog
    cache: Cache
    version: str
