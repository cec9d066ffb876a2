"""Project-wide fixtures: settings on a temporary SQLite file, the Runware simulator, the loopback Discord."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.logs import reset_logging
from bot.store.interface import Database
from tests.helpers import empty_postgres_database, open_test_database
from tests.pg import PostgresServer

pytest_plugins = ["tests.conftest_runware", "tests.conftest_pg"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's own tokens or HAILUO_* settings."""
    import os

    for key in list(os.environ):
        if key.startswith("HAILUO_") or key in ("DISCORD_TOKEN", "RUNWARE_API_KEY", "WEBHOOK_SECRET"):
            monkeypatch.delenv(key)
    yield
    reset_logging()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hailuo.sqlite3"


@pytest.fixture(params=["sqlite", "postgres"])
def store_backend(request: pytest.FixtureRequest) -> str:
    """Each test that uses it runs on both backends; the PostgreSQL run fails (one line) without a server."""
    return str(request.param)


@pytest.fixture(scope="session")
def pg_store_database(pg_server: PostgresServer) -> Iterator[str]:
    """One PostgreSQL database the store tests share, emptied before each of them (see `db_target`)."""
    url = pg_server.create_database("store")
    yield url
    pg_server.drop_database(url)


@pytest.fixture
async def db_target(store_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path | str:
    """Where this test's database lives: a fresh SQLite file, or an empty PostgreSQL database's URL.

    The PostgreSQL database is the session's shared one with every table emptied and every id counter reset, which
    a test cannot tell from a new database and costs milliseconds instead of the second a CREATE DATABASE takes.
    """
    if store_backend == "sqlite":
        return tmp_path / "hailuo.sqlite3"
    url = str(request.getfixturevalue("pg_store_database"))
    await empty_postgres_database(url)
    return url


@pytest.fixture
async def database(db_target: Path | str) -> AsyncIterator[Database]:
    """An open, migrated, empty database on this test's backend."""
    db = open_test_database(db_target)
    await db.open()
    yield db
    await db.close()


@pytest.fixture
def db(database: Database) -> Database:
    """This test's database, on each backend in turn (the store, job and ledger tests call it `db`)."""
    return database
