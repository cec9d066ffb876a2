"""PostgreSQL fixtures: one real server per test session, started on first use, and a fresh database per test.

    async def test_something(pg_url: str) -> None:
        conn = await asyncpg.connect(pg_url)  # an empty database of this test's own, dropped after it

Where the server comes from: see tests/pg.py (HAILUO_TEST_PG_URL, HAILUO_TEST_PG_BIN). If none can be found or
started, every test that asks for one fails with one line saying why; none is skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.pg import ENV_BIN, ENV_URL, PostgresServer, PostgresUnavailable

# Read once at import: the autouse _clean_environment fixture removes HAILUO_* variables from each test's environment.
_PG_ENVIRON = {key: os.environ[key] for key in (ENV_URL, ENV_BIN) if key in os.environ}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (launched on first use, stopped at the end of the session)."""
    why = ""
    try:
        server = PostgresServer.start(_PG_ENVIRON)
    except PostgresUnavailable as exc:
        why = str(exc)
    if why:  # failed outside the except block, so that the report is that one line and no chained traceback
        pytest.fail(f"PostgreSQL: {why}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database for this test alone; dropped (connections and all) after it."""
    url = pg_server.create_database()
    try:
        yield url
    finally:
        pg_server.drop_database(url)
