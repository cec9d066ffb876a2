"""The small driver the shared SQL runs on: one Protocol for SQLite and PostgreSQL, and what both store alike.

The SQL in jobs.py, guilds.py and the ledger is written once, with `?` placeholders, in the dialect both engines
speak (upserts as `ON CONFLICT ... DO UPDATE`, `RETURNING`, no boolean arithmetic). Each backend's `Database`
supplies the transaction (SQLite: an asyncio lock plus `BEGIN IMMEDIATE`; PostgreSQL: a pooled connection) and
`Conn.lock`, the one place where they really differ.

Both store the same column types (SQLite's): integers (BIGINT in PostgreSQL for ids, snowflakes and micros), times
as fixed-width ISO-8601 UTC text (string order is time order), booleans as 0/1. So one query returns equal rows on
both, and `copy-db` copies rows as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal, Protocol

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

Dialect = Literal["sqlite", "postgres"]


class SchemaError(RuntimeError):
    """The database cannot be brought to this build's schema (newer than this build, or a bad migration)."""


class Row(Protocol):
    """A result row: by column name or position (sqlite3.Row and asyncpg.Record both are)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """A connection inside a transaction (or a snapshot): statements see the transaction's own writes."""

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One write statement; the affected row count."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def lock(self, key: str) -> None:
        """Serialise with every transaction that locks the same key, until this transaction ends."""
        ...


class Database(Protocol):
    """One backend: owns its connection(s), migrates, and hands out transactions.

    Inside a transaction, read through its `Conn`: on PostgreSQL `Database.fetchone` borrows another connection,
    which does not see the transaction's uncommitted writes (on SQLite it happens to).
    """

    @property
    def dialect(self) -> Dialect: ...

    @property
    def schema_version(self) -> int: ...

    @property
    def is_open(self) -> bool: ...

    def describe(self) -> str:
        """Where the data lives, for logs and messages (never a password)."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def transaction(self) -> AbstractAsyncContextManager[Conn]:
        """A write transaction: commit on success, roll back on any error (cancellation included)."""
        ...

    def snapshot(self) -> AbstractAsyncContextManager[Conn]:
        """Several reads that agree with each other (a report)."""
        ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def check_writable(self) -> None:
        """Prove the database takes writes (write, then roll back); raises if not."""
        ...


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(folder: Traversable | Path) -> list[Migration]:
    """Read `NNNN_name.sql` files from `folder`, checked to run 1, 2, ... N."""
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


def marks(n: int) -> str:
    """`?, ?, ?` for an IN list of n values."""
    return ", ".join("?" * n)
