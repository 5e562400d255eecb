"""The demo city on a benchmark's own database: the deployment `make run` starts, checked as it
checks it, with nothing but the database URL changed."""

from __future__ import annotations

import os

from app import Deployment, ingest_context, load_deployment, open_store
from core.settings import DEFAULT_CONFIG
from ingest.context import IngestContext


def demo_deployment(database_url: str) -> Deployment:
    return load_deployment(DEFAULT_CONFIG, dict(os.environ, CITYBRAIN_DATABASE_URL=database_url))


def demo_context(database_url: str) -> IngestContext:
    """Migrated and synced: what the pipeline runs with."""
    deployment = demo_deployment(database_url)
    engine, sessions = open_store(deployment)
    return ingest_context(deployment, engine, sessions)
