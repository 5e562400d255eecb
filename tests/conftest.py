"""Shared fixtures. Real services are found through environment variables (see README):

CITYBRAIN_TEST_POSTGRES_URL  default postgresql+psycopg://postgres@127.0.0.1:5432/test
CITYBRAIN_TEST_REDIS_URL     default redis://127.0.0.1:6379/15
CITYBRAIN_CHROMIUM           default /usr/bin/chromium

A test whose service is absent skips with the reason, unless CITYBRAIN_REQUIRE_SERVICES=1 (or
CITYBRAIN_REQUIRE_BROWSER=1 for the browser) is set, as in CI: then it fails.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "CITYBRAIN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def unavailable(reason: str, require_var: str) -> None:
    """Skip on a laptop without the service; fail where the service is required (CI)."""
    if os.environ.get(require_var) == "1":
        pytest.fail(f"{reason} (required because {require_var}=1)")
    pytest.skip(reason)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'citybrain.db'}"


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import create_engine, make_url, text

    base = make_url(POSTGRES_URL)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"citybrain_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable here"
        admin.dispose()
        unavailable(
            f"PostgreSQL at {base.render_as_string()} is not reachable: {exc}", "CITYBRAIN_REQUIRE_SERVICES"
        )
    yield base.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request):
    """Runs a test on both dialects."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def deployment(monkeypatch, database_url, tmp_path):
    """The demo deployment, plus the tests' own indicators, on a fresh database of the dialect."""
    import yaml

    monkeypatch.setenv("CITYBRAIN_DATABASE_URL", database_url)
    monkeypatch.delenv("CITYBRAIN_CONFIG", raising=False)
    from app import load_deployment

    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text(encoding="utf-8"))
    config["indicator_catalogs"] = [str(REPO / "tests" / "data" / "test_indicators.yaml")]
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return load_deployment(path)


@pytest.fixture
def ingest(deployment):
    """A migrated, synced store and the ingest context over it."""
    from app import ingest_context, open_store

    engine, sessions = open_store(deployment)
    yield ingest_context(deployment, engine, sessions)
    engine.dispose()
