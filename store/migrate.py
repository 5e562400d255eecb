"""Schema migrations (Alembic), run by `make run`, `citybrain db upgrade` and the tests.

Revisions change the schema only; data work that depends on the deployment (the rollups' local
days need the city's zone) is the composition root's, after the upgrade: `upgrade` says which
revision the database started from so the caller knows what the upgrade created.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from store.db import make_engine, resolve_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ROLLUPS = "0006"  # creates readings_hourly and readings_daily, empty


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", resolve_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> str | None:
    """Apply the migrations up to `revision`; returns the revision the database was at before
    (None: a database without the schema)."""
    started = current_revision(url)
    command.upgrade(alembic_config(url), revision)
    return started


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def rollups_need_filling(started: str | None) -> bool:
    """Whether an upgrade to the head from `started` created the rollup tables beside readings
    already stored (a new database has none to roll up)."""
    if started is None:
        return False
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    below = {step.revision for step in script.iterate_revisions(ROLLUPS, "base")} - {ROLLUPS}
    return started in below


def make_revision(url: str, message: str) -> None:
    """Developers: write a new migration from the difference between the models and `url`."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
