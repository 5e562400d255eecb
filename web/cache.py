"""Query results memoized with Flask-Caching, keyed on the data version.

Every ingest bumps the version, so a cached result is never stale and nothing has to be deleted:
old keys simply stop being asked for and expire. SimpleCache per process by default; Redis shared
by all web workers in production.
"""

from __future__ import annotations

from flask import Flask
from flask_caching import Cache

from core.settings import CacheSettings


def make_cache(server: Flask, settings: CacheSettings) -> Cache:
    config: dict[str, object] = {"CACHE_DEFAULT_TIMEOUT": settings.timeout}
    if settings.type == "redis":
        config.update(CACHE_TYPE="RedisCache", CACHE_REDIS_URL=settings.url, CACHE_KEY_PREFIX="citybrain:")
    elif settings.type == "null":
        config["CACHE_TYPE"] = "NullCache"
    else:
        config.update(CACHE_TYPE="SimpleCache", CACHE_THRESHOLD=2000)
    return Cache(server, config=config)
