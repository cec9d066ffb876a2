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
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import aiosqlite

from bot.store.driver import Dialect, Migration, Row, SchemaError, from_db_time, opt_time, to_db_time
from bot.store.driver import load_migrations as _load_from

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000

__all__ = [
    "LATEST_VERSION",
    "Database",
    "SchemaError",
    "SqliteConn",
    "SqliteDatabase",
    "from_db_time",
    "load_migrations",
    "open_problem",
    "opt_time",
    "to_db_time",
]


def open_problem(path: Path, exc: BaseException) -> str:
    """One plain line on why the database file at `path` can't be used, with the fix that fits the cause.

    Only a permission or missing-folder problem gets "make its folder writable"; a file that is not a SQLite
    database (or is damaged) and one from a newer build each get their own line.
    """
    if isinstance(exc, SchemaError):
        return f"the database {exc}"
    text = str(exc).lower()
    folder = (PermissionError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError)
    if isinstance(exc, folder) or (
        isinstance(exc, OSError | aiosqlite.OperationalError)
        and any(word in text for word in ("unable to open", "readonly", "read-only", "permission", "denied"))
    ):
        why = exc.strerror.lower() if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        return (
            f"the database {path} can't be opened ({why}): make its folder writable by this user or set database.path"
        )
    if isinstance(exc, aiosqlite.DatabaseError) and any(
        word in text for word in ("not a database", "malformed", "corrupt", "encrypted")
    ):
        return (
            f"the database {path} is not a SQLite database or is damaged ({exc}): restore it from a backup, or move "
            "it aside so a new one is made, or set database.path"
        )
    why = exc.strerror.lower() if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
    return f"the database {path} can't be used ({why}); run `hailuo-bot doctor` for details"


def load_migrations(source: Traversable | Path | None = None) -> list[Migration]:
    """The SQLite migrations in `source` (default: the packaged ones)."""
    return _load_from(source if source is not None else resources.files("bot.store.sqlite") / "migrations")


LATEST_VERSION: int = len(load_migrations())


class SqliteConn:
    """The shared connection inside our transaction (the `Conn` of the driver protocol)."""

    __slots__ = ("raw",)

    def __init__(self, raw: aiosqlite.Connection) -> None:
        self.raw = raw

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        # One trip to the connection's thread (a cursor takes three: execute, fetch, close). Every fetchone of the
        # store reads one row (by key, an aggregate, or LIMIT 1), so fetching them all costs nothing more.
        for row in await self.raw.execute_fetchall(sql, params):
            return row
        return None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self.raw.execute_fetchall(sql, params))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self.raw.execute(sql, params) as cur:
            return cur.rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.raw.executemany(sql, rows)

    async def lock(self, key: str) -> None:
        """Nothing to do: `BEGIN IMMEDIATE` under the asyncio lock already serialises every write transaction."""


class _Rollback(Exception):  # control flow only, never escapes
    pass


class SqliteDatabase:
    """Owns the single aiosqlite connection and its write lock."""

    dialect: Dialect = "sqlite"

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
        async with self._locked() as locked:
            conn = locked.raw
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
        async with conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row is not None else 0

    def describe(self) -> str:
        return f"SQLite file {self.path}"

    # -- access --------------------------------------------------------------------------------------------------

    def _connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return self._conn

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[SqliteConn]:
        """The connection under the lock; re-entrant for the task that already holds it (reads only)."""
        me = asyncio.current_task()
        if me is not None and self._owner is me:
            yield SqliteConn(self._connection())
            return
        async with self._lock:
            self._owner = me
            try:
                yield SqliteConn(self._connection())
            finally:
                self._owner = None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteConn]:
        """A write transaction: the asyncio lock plus BEGIN IMMEDIATE; commit on success, roll back on any error."""
        if self._owner is not None and self._owner is asyncio.current_task():
            raise RuntimeError("nested Database.transaction() in the same task")
        async with self._locked() as conn:
            await conn.raw.execute("BEGIN IMMEDIATE")  # take SQLite's write lock before the first read
            try:
                yield conn
                await conn.raw.commit()
            except BaseException:
                # Shielded: a second cancellation must not leave the shared connection inside our transaction.
                await asyncio.shield(conn.raw.rollback())
                raise

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[SqliteConn]:
        """Several reads that must agree with each other (a report): one read transaction under the lock."""
        if self._owner is not None and self._owner is asyncio.current_task():
            raise RuntimeError("Database.snapshot() inside a transaction of the same task")
        async with self._locked() as conn:
            await conn.raw.execute("BEGIN")
            try:
                yield conn
            finally:
                await asyncio.shield(conn.raw.rollback())  # nothing was written; just end the read transaction

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        async with self._locked() as conn:
            return await conn.fetchone(sql, params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._locked() as conn:
            return await conn.fetchall(sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One write statement, atomic on its own: in autocommit mode SQLite runs it in a transaction of its own, so
        no BEGIN and COMMIT round trips. Returns the affected row count."""
        if self._owner is not None and self._owner is asyncio.current_task():
            raise RuntimeError("Database.execute() inside a transaction of the same task: use the transaction's conn")
        async with self._locked() as conn:
            return await conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as conn:
            await conn.executemany(sql, rows)

    async def check_writable(self) -> None:
        """Prove the file takes writes (lock, write, roll back); raises aiosqlite.Error or RuntimeError if not."""
        with contextlib.suppress(_Rollback):
            async with self.transaction() as conn:
                await conn.execute(
                    "INSERT INTO kv (key, value) VALUES ('doctor.write_check', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (to_db_time(datetime.now(UTC)),),
                )
                raise _Rollback


#: The name callers used before there were two backends.
Database = SqliteDatabase
