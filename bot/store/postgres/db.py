"""The PostgreSQL backend: one asyncpg pool, forward-only migrations, and the write transaction.

Same contract as bot/store/sqlite/db.py, for several processes sharing one database:

- the shared SQL is written with `?` placeholders; they are turned into `$1, $2, ...` here (once per statement);
- a transaction is a pooled connection in READ COMMITTED; compare-and-set updates stay correct because PostgreSQL
  re-checks an UPDATE's WHERE after waiting for a concurrent writer of the row;
- `Conn.lock(key)` is `pg_advisory_xact_lock` on a 64-bit hash of the key: held until commit or rollback, so a
  reservation's limit check and insert are atomic across processes (see bot/store/ledger.py for why one key per
  server);
- a snapshot is a REPEATABLE READ, read-only transaction (a report whose parts agree);
- migrations take a session advisory lock, so processes starting together migrate once; the version lives in a
  `schema_version` table (SQLite keeps it in PRAGMA user_version).

Every call has a timeout: connecting, waiting for a pooled connection, and each statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from bot.store.driver import Dialect, Migration, Row, SchemaError, to_db_time
from bot.store.driver import load_migrations as _load_from

log = logging.getLogger(__name__)

#: Seconds to open a connection, to wait for a free one in the pool, and for any one statement.
CONNECT_TIMEOUT = 10.0
ACQUIRE_TIMEOUT = 30.0
COMMAND_TIMEOUT = 30.0
POOL_MIN, POOL_MAX = 1, 10
#: The session lock migrations run under (any constant that no `Conn.lock` key hashes to in practice).
_MIGRATION_LOCK = 0x6861696C756F  # "hailuo"
#: A connection of the pool, as borrowed (asyncpg hands out a proxy that behaves as a Connection).
Connection = asyncpg.Connection | PoolConnectionProxy

_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\?")


def load_migrations(source: Traversable | Path | None = None) -> list[Migration]:
    """The PostgreSQL migrations in `source` (default: the packaged ones)."""
    return _load_from(source if source is not None else resources.files("bot.store.postgres") / "migrations")


LATEST_VERSION: int = len(load_migrations())


@functools.lru_cache(maxsize=1024)
def numbered(sql: str) -> str:
    """`?` placeholders as asyncpg's `$1, $2, ...` (question marks inside quoted literals are left alone)."""
    counter = 0

    def swap(match: re.Match[str]) -> str:
        nonlocal counter
        if match.group(0) != "?":
            return match.group(0)
        counter += 1
        return f"${counter}"

    return _PLACEHOLDER.sub(swap, sql)


def lock_id(key: str) -> int:
    """A stable signed 64-bit advisory-lock id for a key (a collision only makes two keys wait on each other)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def _count(status: str) -> int:
    """Rows affected, from a command status such as 'UPDATE 3' or 'INSERT 0 1'."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def describe_url(url: str) -> str:
    """`PostgreSQL user@host:port/db`, never the password."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"PostgreSQL {user}{parts.hostname or 'localhost'}{port}{parts.path or '/'}"


class PostgresConn:
    """A pooled connection inside our transaction (the `Conn` of the driver protocol)."""

    __slots__ = ("raw",)

    def __init__(self, raw: Connection) -> None:
        self.raw = raw

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = await self.raw.fetchrow(numbered(sql), *params)
        return row

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self.raw.fetch(numbered(sql), *params))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return _count(await self.raw.execute(numbered(sql), *params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.raw.executemany(numbered(sql), [tuple(row) for row in rows])

    async def lock(self, key: str) -> None:
        """Wait for, then hold until this transaction ends, the advisory lock of `key` (across processes)."""
        await self.raw.execute("SELECT pg_advisory_xact_lock($1)", lock_id(key))


class PostgresDatabase:
    """Owns one asyncpg pool (created in open, closed in close)."""

    dialect: Dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        migrations: Traversable | Path | None = None,
        min_size: int = POOL_MIN,
        max_size: int = POOL_MAX,
    ) -> None:
        self.url = url
        self._migration_source = migrations
        self._min_size, self._max_size = min_size, max_size
        self._pool: asyncpg.Pool | None = None
        self._version = 0
        self._in_tx: set[asyncio.Task[Any]] = set()

    # -- lifecycle -----------------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect (the pool), and migrate the database to the latest schema."""
        if self._pool is not None:
            return
        pool = await asyncpg.create_pool(
            self.url,
            min_size=self._min_size,
            max_size=self._max_size,
            timeout=CONNECT_TIMEOUT,
            command_timeout=COMMAND_TIMEOUT,
            server_settings={"application_name": "hailuo-bot", "timezone": "UTC"},
        )
        try:
            self._pool = pool
            await self.migrate()
        except BaseException:
            self._pool = None
            await asyncio.shield(pool.close())
            raise

    async def close(self) -> None:
        """Close the pool: waits (bounded) for borrowed connections to come back, then terminates the rest."""
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        try:
            await asyncio.wait_for(pool.close(), COMMAND_TIMEOUT)
        except TimeoutError:
            log.warning("%s: connections still busy after %.0fs; closing them", self.describe(), COMMAND_TIMEOUT)
            pool.terminate()

    async def __aenter__(self) -> PostgresDatabase:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def schema_version(self) -> int:
        return self._version

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    def describe(self) -> str:
        return describe_url(self.url)

    async def migrate(self) -> None:
        """Apply every migration above the stored version, each in its own transaction, under a session lock."""
        migrations = load_migrations(self._migration_source)
        latest = len(migrations)
        async with self._acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
            try:
                await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
                current = await self._stored_version(conn)
                if current > latest:
                    raise SchemaError(
                        f"{self.describe()} is at schema version {current}, newer than this build knows ({latest}); "
                        "upgrade hailuo-bot or use a backup"
                    )
                for migration in migrations[current:]:
                    try:
                        async with conn.transaction():
                            await conn.execute(migration.sql)
                            await conn.execute("DELETE FROM schema_version")
                            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", migration.version)
                    except asyncpg.PostgresError as exc:
                        raise SchemaError(f"migration {migration.version:04d}_{migration.name} failed: {exc}") from exc
                    log.info("%s migrated to schema %d (%s)", self.describe(), migration.version, migration.name)
                self._version = await self._stored_version(conn)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)

    @staticmethod
    async def _stored_version(conn: Connection) -> int:
        value = await conn.fetchval("SELECT MAX(version) FROM schema_version")
        return int(value) if value is not None else 0

    # -- access --------------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _acquire(self) -> AsyncIterator[Connection]:
        if self._pool is None:
            raise RuntimeError("database is not open")
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _in_transaction(self, **options: Any) -> AsyncIterator[PostgresConn]:
        me = asyncio.current_task()
        if me is not None and me in self._in_tx:
            # Same rule as SQLite: a second transaction in one task would wait on the first (and on the pool).
            raise RuntimeError("nested Database.transaction() in the same task")
        if me is not None:
            self._in_tx.add(me)
        try:
            async with self._acquire() as raw, raw.transaction(**options):
                yield PostgresConn(raw)
        finally:
            if me is not None:
                self._in_tx.discard(me)

    def transaction(self) -> contextlib.AbstractAsyncContextManager[PostgresConn]:
        """A write transaction (READ COMMITTED): commit on success, roll back on any error."""
        return self._in_transaction()

    def snapshot(self) -> contextlib.AbstractAsyncContextManager[PostgresConn]:
        """Several reads that agree with each other: REPEATABLE READ, read only."""
        return self._in_transaction(isolation="repeatable_read", readonly=True)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        async with self._acquire() as conn:
            row: Row | None = await conn.fetchrow(numbered(sql), *params)
            return row

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._acquire() as conn:
            return list(await conn.fetch(numbered(sql), *params))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One write statement (its own transaction); returns the affected row count."""
        async with self._acquire() as conn:
            return _count(await conn.execute(numbered(sql), *params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as conn:
            await conn.executemany(sql, rows)

    async def check_writable(self) -> None:
        """Prove the database takes writes (write, then roll back); raises asyncpg errors or RuntimeError if not."""
        with contextlib.suppress(_Rollback):
            async with self.transaction() as conn:
                await conn.execute(
                    "INSERT INTO kv (key, value) VALUES ('doctor.write_check', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (to_db_time(datetime.now(UTC)),),
                )
                raise _Rollback


class _Rollback(Exception):  # control flow only, never escapes
    pass
