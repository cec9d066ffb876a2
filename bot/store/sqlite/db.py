"""The one SQLite connection: WAL, foreign keys, forward-only migrations, and the write transaction.

aiosqlite queues statements, not transactions, so every unit of work that must be atomic (a limit check and its
reservation, a CAS and its audit row) runs inside `Database.transaction()`, which holds an asyncio lock and
`BEGIN IMMEDIATE`. Reads take the same lock, so no reader ever sees another task's uncommitted statements on the
shared connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
BUSY_TIMEOUT_MS = 5000


class SchemaError(RuntimeError):
    """The database file cannot be brought to this build's schema (newer than this build, or a bad migration)."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(source: Traversable | Path | None = None) -> list[Migration]:
    """Read `NNNN_name.sql` files from `source` (default: the packaged ones), checked to run 1, 2, ... N."""
    folder: Traversable | Path = source if source is not None else resources.files("bot.store.sqlite") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match is None:
            continue
        sql = entry.read_text(encoding="utf-8")
        if re.search(r"^\s*(BEGIN|COMMIT|ROLLBACK)\b", sql, re.IGNORECASE | re.MULTILINE):
            raise SchemaError(f"migration {entry.name} must not contain its own BEGIN/COMMIT")
        found.append(Migration(int(match.group(1)), match.group(2), sql))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise SchemaError(
                f"migrations must be numbered 0001, 0002, ... without gaps; found {migration.version:04d}"
            )
    return found


def to_db_time(value: datetime) -> str:
    """Fixed-width ISO-8601 UTC text, so SQL string comparison is time comparison."""
    if value.tzinfo is None:
        raise ValueError("datetimes stored in the database must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_db_time(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def opt_time(value: str | None) -> datetime | None:
    return None if value is None else from_db_time(value)


async def fetch_one(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
    """One row on a connection already inside a transaction."""
    async with conn.execute(sql, params) as cur:
        return await cur.fetchone()


async def fetch_all(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
    """All rows on a connection already inside a transaction."""
    return list(await conn.execute_fetchall(sql, params))


async def write(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> int:
    """One write statement on a connection already inside a transaction; returns the affected row count."""
    async with conn.execute(sql, params) as cur:
        return cur.rowcount


class _Rollback(Exception):  # control flow only, never escapes
    pass


class Database:
    """Owns the single aiosqlite connection and its write lock."""

    def __init__(
        self,
        path: Path,
        *,
        migrations: Traversable | Path | None = None,
        synchronous: str = "FULL",
    ) -> None:
        # FULL: a commit survives power loss, not only a process kill. A reservation or job row that precedes a
        # billed Runware submit must never vanish; the cost is one fsync per write transaction, which is cheap at
        # Discord-command rates (see bench/reserve.py).
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError("synchronous must be NORMAL, FULL or EXTRA")
        self.path = Path(path)
        self._migration_source = migrations
        self._synchronous = synchronous.upper()
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        self._version = 0

    # -- lifecycle -----------------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the file (creating its folder), set the pragmas, and migrate it to the latest schema."""
        if self._conn is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            conn.row_factory = aiosqlite.Row
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            async with conn.execute("PRAGMA journal_mode = WAL") as cur:
                mode = await cur.fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                log.warning("database %s is not in WAL mode (got %s)", self.path, mode[0] if mode else None)
            await conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            await conn.execute("PRAGMA foreign_keys = ON")
            self._conn = conn
            await self.migrate()
        except BaseException:
            self._conn = None
            await conn.close()
            raise

    async def close(self) -> None:
        """Close the connection; waits for an open transaction to finish first."""
        if self._conn is None:
            return
        async with self._lock:
            conn, self._conn = self._conn, None
            with contextlib.suppress(aiosqlite.Error):
                await conn.execute("PRAGMA optimize")
            await conn.close()

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def schema_version(self) -> int:
        return self._version

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    async def migrate(self) -> None:
        """Apply every migration above `PRAGMA user_version`, each in its own transaction."""
        migrations = load_migrations(self._migration_source)
        latest = len(migrations)
        async with self._locked() as conn:
            current = await self._user_version(conn)
            if current > latest:
                raise SchemaError(
                    f"{self.path} is at schema version {current}, newer than this build knows ({latest}); "
                    "upgrade hailuo-bot or use a backup"
                )
            for migration in migrations[current:]:
                script = f"BEGIN IMMEDIATE;\n{migration.sql}\n;PRAGMA user_version = {migration.version};\nCOMMIT;\n"
                try:
                    await conn.executescript(script)
                except aiosqlite.Error as exc:
                    await conn.rollback()
                    raise SchemaError(f"migration {migration.version:04d}_{migration.name} failed: {exc}") from exc
                log.info("database %s migrated to schema %d (%s)", self.path, migration.version, migration.name)
            self._version = await self._user_version(conn)

    @staticmethod
    async def _user_version(conn: aiosqlite.Connection) -> int:
        row = await fetch_one(conn, "PRAGMA user_version")
        return int(row[0]) if row is not None else 0

    # -- access --------------------------------------------------------------------------------------------------

    def _connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return self._conn

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection under the lock; re-entrant for the task that already holds it (reads only)."""
        me = asyncio.current_task()
        if me is not None and self._owner is me:
            yield self._connection()
            return
        async with self._lock:
            self._owner = me
            try:
                yield self._connection()
            finally:
                self._owner = None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction: the asyncio lock plus BEGIN IMMEDIATE; commit on success, roll back on any error."""
        if self._owner is not None and self._owner is asyncio.current_task():
            raise RuntimeError("nested Database.transaction() in the same task")
        async with self._locked() as conn:
            await conn.execute("BEGIN IMMEDIATE")  # take SQLite's write lock before the first read
            try:
                yield conn
                await conn.commit()
            except BaseException:
                # Shielded: a second cancellation must not leave the shared connection inside our transaction.
                await asyncio.shield(conn.rollback())
                raise

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[aiosqlite.Connection]:
        """Several reads that must agree with each other (a report): one read transaction under the lock."""
        if self._owner is not None and self._owner is asyncio.current_task():
            raise RuntimeError("Database.snapshot() inside a transaction of the same task")
        async with self._locked() as conn:
            await conn.execute("BEGIN")
            try:
                yield conn
            finally:
                await asyncio.shield(conn.rollback())  # nothing was written; just end the read transaction

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self._locked() as conn:
            return await fetch_one(conn, sql, params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self._locked() as conn:
            return await fetch_all(conn, sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One write statement in its own transaction; returns the affected row count."""
        async with self.transaction() as conn:
            return await write(conn, sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as conn:
            await conn.executemany(sql, rows)

    async def check_writable(self) -> None:
        """Prove the file takes writes (lock, write, roll back); raises aiosqlite.Error or RuntimeError if not."""
        with contextlib.suppress(_Rollback):
            async with self.transaction() as conn:
                await write(
                    conn,
                    "INSERT OR REPLACE INTO kv (key, value) VALUES ('doctor.write_check', ?)",
                    (to_db_time(datetime.now(UTC)),),
                )
                raise _Rollback
