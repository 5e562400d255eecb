"""Shared fixtures. Real services are found through environment variables (see README):

CITYBRAIN_TEST_POSTGRES_URL  default postgresql+psycopg://postgres@127.0.0.1:5432/test
CITYBRAIN_TEST_REDIS_URL     default redis://127.0.0.1:6379/15
CITYBRAIN_CHROMIUM           default /usr/bin/chromium

A test whose service is absent skips with the reason, unless CITYBRAIN_REQUIRE_SERVICES=1 (or
CITYBRAIN_REQUIRE_BROWSER=1 for the browser) is set, as in CI: then it fails.

Every test gets databases of its own. `database_url` is an empty one, for tests of the migrations
themselves; `migrated_database_url` (under `deployment` and `ingest`) one at the migration head,
copied from a template migrated once (tests/databases.py says how). Both run a test on SQLite and
on PostgreSQL through `dialect`; `@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)`
keeps a test to one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

if TYPE_CHECKING:
    from tests.databases import PostgresDatabases

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "CITYBRAIN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def unavailable(reason: str, require_var: str) -> None:
    """Skip on a laptop without the service; fail where the service is required (CI)."""
    if os.environ.get(require_var) == "1":
        pytest.fail(f"{reason} (required because {require_var}=1)")
    pytest.skip(reason)


def demo_config() -> dict:
    """A fresh copy of the demo deployment's YAML, for a test to change, write and serve."""
    return yaml.safe_load((REPO / "config" / "demo.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing():
    """Argon2id at argon2-cffi's profile for tests instead of production's 64 MiB and three passes:
    the same hashing, verifying and rehash checks run; only the cost differs, and no test measures
    it. At 0.3-2 s a hash or a check on two busy cores, hashing was a fifth of the integration
    suite's time, and slow checks let the sign-in throttle's wait run out between attempts."""
    from argon2 import PasswordHasher, profiles

    from store import users

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
        yield


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'citybrain.db'}"


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory) -> Path:
    from tests.databases import migrated_sqlite_file

    return migrated_sqlite_file(tmp_path_factory.mktemp("migrated"))


@pytest.fixture
def migrated_sqlite_url(migrated_sqlite_file: Path, tmp_path: Path) -> str:
    path = tmp_path / "citybrain.db"
    shutil.copyfile(migrated_sqlite_file, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def postgres_admin():
    """The server's maintenance connection, checked once a session."""
    from sqlalchemy import create_engine, make_url, text

    base = make_url(POSTGRES_URL)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable here"
        admin.dispose()
        unavailable(
            f"PostgreSQL at {base.render_as_string()} is not reachable: {exc}", "CITYBRAIN_REQUIRE_SERVICES"
        )
    yield admin
    admin.dispose()


@pytest.fixture(scope="session")
def empty_postgres_databases(postgres_admin):
    from tests.databases import PostgresDatabases

    databases = PostgresDatabases(postgres_admin)
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def migrated_postgres_databases(postgres_admin):
    from tests.databases import PostgresDatabases, postgres_template

    databases = PostgresDatabases(postgres_admin, postgres_template(postgres_admin))
    yield databases
    databases.close()


def one_database(databases: PostgresDatabases) -> Iterator[str]:
    """One test's database from `databases`; one that cannot be made is a missing service."""
    try:
        name = databases.take()
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable here"
        unavailable(f"PostgreSQL could not create a test database: {exc}", "CITYBRAIN_REQUIRE_SERVICES")
    yield databases.url(name)
    databases.give_back(name)


@pytest.fixture
def postgres_url(empty_postgres_databases):
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    yield from one_database(empty_postgres_databases)


@pytest.fixture
def migrated_postgres_url(migrated_postgres_databases):
    """A fresh PostgreSQL database at the migration head for one test, dropped afterwards."""
    yield from one_database(migrated_postgres_databases)


@pytest.fixture(params=["sqlite", "postgres"])
def dialect(request) -> str:
    """Runs a test on both dialects."""
    return request.param


@pytest.fixture
def database_url(request, dialect: str) -> str:
    """An empty database of the dialect."""
    return request.getfixturevalue(f"{dialect}_url")


@pytest.fixture
def migrated_database_url(request, dialect: str) -> str:
    """A database of the dialect at the migration head."""
    return request.getfixturevalue(f"migrated_{dialect}_url")


@pytest.fixture
def deployment(monkeypatch, migrated_database_url, tmp_path):
    """The demo deployment, plus the tests' own indicators, on a fresh database of the dialect."""
    monkeypatch.setenv("CITYBRAIN_DATABASE_URL", migrated_database_url)
    monkeypatch.delenv("CITYBRAIN_CONFIG", raising=False)
    from app import load_deployment

    config = demo_config()
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
