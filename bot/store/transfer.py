"""Copy a SQLite database into an empty PostgreSQL one, row for row, and prove nothing was lost.

The two schemas have the same tables and columns with the same stored values (see bot/store/driver.py), so rows
go over as they are, with their ids. The source is read in one read transaction (a consistent picture even if a bot
still runs on it); the target is written in one transaction that checks, before it commits, that every table has
as many rows as the source and that the ledger's and jobs' money adds up to the same totals. Any difference rolls
the whole copy back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from bot.store.postgres.db import LATEST_VERSION as POSTGRES_LATEST
from bot.store.postgres.db import PostgresConn, PostgresDatabase
from bot.store.sqlite.db import LATEST_VERSION as SQLITE_LATEST
from bot.store.sqlite.db import SqliteConn, SqliteDatabase

log = logging.getLogger(__name__)

#: Every table, parents before children (foreign keys are checked as rows arrive).
TABLES = (
    "jobs",
    "job_leases",
    "results",
    "ledger",
    "limits",
    "guild_settings",
    "channel_settings",
    "audit",
    "webhook_receipts",
    "kv",
    "blocklist",
    "blocklist_versions",
    "offers",
)
#: Tables the database keeps itself from the copied ones (triggers on ledger): not copied, filled as rows arrive.
DERIVED_TABLES = ("ledger_days",)
#: Tables whose id the database assigns: their counters move past the copied ids.
IDENTITY_TABLES = ("jobs", "results", "audit", "offers")
BATCH = 2000
#: Sums that must agree after the copy (money in micro-dollars, by ledger status; jobs' estimates and costs).
TOTALS = (
    "SELECT status, COUNT(*), COALESCE(SUM(held_micros), 0), COALESCE(SUM(charged_micros), 0) "
    "FROM ledger GROUP BY status ORDER BY status",
    "SELECT state, COUNT(*), COALESCE(SUM(estimate_micros), 0), COALESCE(SUM(cost_micros), 0) "
    "FROM jobs GROUP BY state ORDER BY state",
)


class CopyRefused(RuntimeError):
    """The copy cannot start (the target is not empty, the schemas differ); the message is one line."""


class CopyMismatch(RuntimeError):
    """After copying, a count or a total differs from the source; nothing was committed."""


@dataclass(frozen=True, slots=True)
class TableCopy:
    table: str
    rows: int


@dataclass(frozen=True, slots=True)
class CopySummary:
    tables: tuple[TableCopy, ...]
    held_micros: int
    charged_micros: int


async def foreign_tables(url: str, *, timeout: float = 10.0) -> list[str]:
    """Tables in the target's schema that are not the bot's (checked before migrating creates anything there)."""
    conn = await asyncpg.connect(url, timeout=timeout)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    finally:
        await conn.close()
    return sorted({row[0] for row in rows} - {*TABLES, *DERIVED_TABLES, "schema_version"})


async def _columns(source: SqliteConn, table: str) -> list[str]:
    return [str(row[1]) for row in await source.fetchall(f"PRAGMA table_info({table})")]


async def _target_columns(target: PostgresConn, table: str) -> list[str]:
    rows = await target.fetchall(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ? ORDER BY ordinal_position",
        (table,),
    )
    return [str(row[0]) for row in rows]


async def _count(conn: SqliteConn | PostgresConn, table: str) -> int:
    row = await conn.fetchone(f"SELECT COUNT(*) FROM {table}")
    return int(row[0]) if row is not None else 0


Totals = list[tuple[str, int, int, int]]


async def _totals(conn: SqliteConn | PostgresConn) -> list[Totals]:
    return [[(str(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in await conn.fetchall(query)] for query in TOTALS]


async def copy_database(
    source: SqliteDatabase,
    target: PostgresDatabase,
    *,
    on_table: Callable[[TableCopy], None] | None = None,
) -> CopySummary:
    """Copy every table of `source` into the empty, migrated `target`; raises CopyRefused or CopyMismatch."""
    if source.schema_version != SQLITE_LATEST or target.schema_version != POSTGRES_LATEST:
        raise CopyRefused(
            f"schema versions differ (SQLite {source.schema_version}, PostgreSQL {target.schema_version}): "
            "run the same hailuo-bot version on both"
        )
    copied: list[TableCopy] = []
    async with source.snapshot() as src, target.transaction() as dst:
        await dst.lock("copy-db")
        busy = [table for table in TABLES if await _count(dst, table)]
        if busy:
            raise CopyRefused(
                f"{target.describe()} is not empty (rows in {', '.join(busy)}): copy into a new, empty database"
            )
        for table in TABLES:
            columns = await _columns(src, table)
            if columns != await _target_columns(dst, table):
                raise CopyRefused(f"table {table} has different columns in the two databases")
            names = ", ".join(columns)
            last, rows = 0, 0
            while True:
                batch = await src.fetchall(
                    f"SELECT rowid, {names} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?", (last, BATCH)
                )
                if not batch:
                    break
                last = int(batch[-1][0])
                records = [tuple(row)[1:] for row in batch]
                await dst.raw.copy_records_to_table(table, records=records, columns=columns)
                rows += len(records)
            expected, landed = await _count(src, table), await _count(dst, table)
            if not expected == landed == rows:
                raise CopyMismatch(f"table {table}: {expected} rows in SQLite, {landed} in PostgreSQL")
            copied.append(TableCopy(table, rows))
            if on_table is not None:
                on_table(copied[-1])
        for table in IDENTITY_TABLES:
            await dst.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST(MAX(id), 1), MAX(id) IS NOT NULL) "
                f"FROM {table}"
            )
        before, after = await _totals(src), await _totals(dst)
        if before != after:
            raise CopyMismatch(f"ledger or job totals differ after the copy: SQLite {before}, PostgreSQL {after}")
    ledger = before[0]
    held = sum(row[2] for row in ledger if row[0] == "held")
    charged = sum(row[3] for row in ledger if row[0] == "settled")
    log.info("copy-db: %d tables copied to %s", len(copied), target.describe())
    return CopySummary(tuple(copied), held, charged)
