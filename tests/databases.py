"""Test databases, fast: each test still gets a database of its own, but a copy of one migrated once.

Running the Alembic revisions took 1-3 s for every test that opens the store, and CREATE plus DROP
DATABASE about as long again on PostgreSQL; over the integration suite that was most of its time.
Now SQLite copies a file migrated once per session, and PostgreSQL copies a template database
(`CREATE DATABASE ... TEMPLATE`) in a background thread, one database ahead of the tests, and
drops used ones behind them in the same thread.

The PostgreSQL template outlives the session. Its name carries the migration head and a hash of
everything the migrated schema is made from, so a new revision or a changed model gets a new
template; it is built under a temporary name and renamed only when complete, one build at a time
on the server (an advisory lock), and templates no session has used for a day are dropped.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import alembic
import sqlalchemy
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from store.migrate import MIGRATIONS, alembic_config, upgrade

STORE = MIGRATIONS.parent
SCHEMA_SOURCES = ("models.py", "db.py", "migrate.py")
TEMPLATE_PREFIX = "citybrain_tmpl_"
BUILDING_SUFFIX = "_building"
TEST_PREFIX = "citybrain_test_"
USED_NOTE = "citybrain test template, last used "
STALE_AFTER = timedelta(days=1)
BUILD_LOCK = 7_318_291_004  # pg_advisory_lock key: one template build at a time per server


def schema_key() -> str:
    """The migration head(s) and a hash of the store's models and migrations and of the SQLAlchemy
    and Alembic versions that turn them into tables: any change gives another key."""
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    digest = hashlib.sha256(f"sqlalchemy {sqlalchemy.__version__} alembic {alembic.__version__}".encode())
    sources = sorted([*(STORE / name for name in SCHEMA_SOURCES), *MIGRATIONS.rglob("*.py")])
    for path in sources:
        digest.update(path.relative_to(STORE).as_posix().encode() + b"\0" + path.read_bytes())
    head = re.sub(r"[^a-z0-9]+", "_", "_".join(sorted(heads)).lower())[:24]
    return f"{head}_{digest.hexdigest()[:12]}"


def migrated_sqlite_file(folder: Path) -> Path:
    """A SQLite file at the migration head, self-contained: its write-ahead log folded in, so
    copying the one file copies the database."""
    path = folder / "migrated.db"
    upgrade(f"sqlite:///{path}")
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA journal_mode=DELETE")
    return path


def postgres_template(admin: Engine) -> str:
    """The name of the template at the current migration head on this server, built if missing."""
    name = TEMPLATE_PREFIX + schema_key()
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": BUILD_LOCK})
        try:
            others = _templates(connection)
            if others.pop(name, None) is None:
                _build(connection, admin, name)
            now = datetime.now(UTC)
            connection.execute(text(f"COMMENT ON DATABASE \"{name}\" IS '{USED_NOTE}{now.isoformat()}'"))
            for other, used in others.items():
                if used is None or now - used > STALE_AFTER:
                    _drop_if_unused(admin, other)
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": BUILD_LOCK})
    return name


def _templates(connection: Connection) -> dict[str, datetime | None]:
    """Every test template on the server, with when a session last used it; None for a build
    that never finished (the caller holds the build lock, so none is under way)."""
    rows = connection.execute(
        text(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE starts_with(datname, :prefix)"
        ),
        {"prefix": TEMPLATE_PREFIX},
    )
    found: dict[str, datetime | None] = {}
    for name, note in rows:
        used = None
        if note and note.startswith(USED_NOTE) and not name.endswith(BUILDING_SUFFIX):
            used = datetime.fromisoformat(note.removeprefix(USED_NOTE))
        found[name] = used
    return found


def _build(connection: Connection, admin: Engine, name: str) -> None:
    building = name + BUILDING_SUFFIX
    connection.execute(text(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)'))
    connection.execute(text(f'CREATE DATABASE "{building}"'))
    upgrade(admin.url.set(database=building).render_as_string(hide_password=False))
    connection.execute(text(f'ALTER DATABASE "{building}" RENAME TO "{name}"'))


def _drop_if_unused(admin: Engine, name: str) -> None:
    """Without FORCE: a template another run is copying right now stays until a later session."""
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    except DBAPIError:
        pass


class PostgresDatabases:
    """Databases for one test each, copies of `template` (or of PostgreSQL's default, empty): the
    next one is created while a test runs and a used one dropped after it, in one background
    thread, so a test waits for neither."""

    def __init__(self, admin: Engine, template: str | None = None) -> None:
        self._admin = admin
        self._template = template
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="test-databases")
        self._next: Future[str] | None = None
        self._drops: list[Future[None]] = []

    def url(self, name: str) -> str:
        return self._admin.url.set(database=name).render_as_string(hide_password=False)

    def take(self) -> str:
        """A fresh database's name; raises what CREATE DATABASE raised."""
        ready = self._next or self._worker.submit(self._create)
        self._next = self._worker.submit(self._create)
        return ready.result()

    def give_back(self, name: str) -> None:
        self._drops.append(self._worker.submit(self._drop, name))

    def close(self) -> None:
        """Drops the database made ahead, waits for every drop, and raises if one failed."""
        if self._next is not None and self._next.exception() is None:
            self.give_back(self._next.result())
        self._worker.shutdown(wait=True)
        failures = [drop.exception() for drop in self._drops if drop.exception() is not None]
        if failures:
            raise RuntimeError(f"{len(failures)} test database(s) could not be dropped") from failures[0]

    def _create(self) -> str:
        name = f"{TEST_PREFIX}{uuid.uuid4().hex[:10]}"
        template = f' TEMPLATE "{self._template}"' if self._template else ""
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{template}'))
        return name

    def _drop(self, name: str) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
