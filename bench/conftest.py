"""The benchmarks' databases: the tests' fixtures (a fresh SQLite file or PostgreSQL database per
benchmark, through `database_url` and its `dialect`), so a benchmark runs where the tests run."""

from tests.conftest import (  # noqa: F401 - fixtures, found by name
    database_url,
    dialect,
    empty_postgres_databases,
    postgres_admin,
    postgres_url,
    sqlite_url,
)
