"""The PostgreSQL backend on a real server: migrations, transactions, and reservations atomic across processes."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from bot.core.engine import Engine, StartupError
from bot.core.errors import OverLimit
from bot.core.models import Period, usd_to_micros
from bot.simulator.server import RunwareSimulator
from bot.store.driver import SchemaError
from bot.store.guilds import GuildDefaults, GuildStore
from bot.store.jobs import NewJob
from bot.store.ledger import SpendLedger
from bot.store.postgres.db import LATEST_VERSION, PostgresDatabase, describe_url, numbered
from bot.store.sqlite.db import LATEST_VERSION as SQLITE_LATEST
from bot.store.sqlite.db import SqliteDatabase
from tests.helpers import make_settings
from tests.helpers import new_job as make_new_job

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
CLIP = usd_to_micros("0.28")


def new_job(n: int) -> NewJob:
    return make_new_job(
        task_uuid=f"race-{n}",
        channel_id=7,
        budget_channel_id=7,
        user_id=42,
        prompt="a lighthouse in a storm",
        estimate_micros=CLIP,
    )


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[PostgresDatabase]:
    db = PostgresDatabase(pg_url)
    await db.open()
    yield db
    await db.close()


async def raw_fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


# -- reservations across processes -----------------------------------------------------------------------------


async def test_200_reservations_over_two_engines_admit_exactly_what_fits(sim: RunwareSimulator, pg_url: str) -> None:
    """Two engines (two pools, as two processes have) race 100 reservations each on one limit that fits 10."""
    settings = make_settings(pg_url, sim.base_url, limits={"member_day_usd": 10 * 0.28})
    engines = [Engine(settings, serve_webhooks=False), Engine(settings, serve_webhooks=False)]
    async with contextlib.AsyncExitStack() as stack:
        for engine in engines:
            await engine.start()
            stack.push_async_callback(engine.close)
        assert engines[0].db is not engines[1].db

        async def reserve(n: int) -> bool:
            try:
                await engines[n % 2].ledger.reserve(new_job(n), role_ids=(), concurrency_cap=None, now=NOW)
            except OverLimit:
                return False
            return True

        outcomes = await asyncio.gather(*(reserve(n) for n in range(200)))
        assert sum(outcomes) == 10
        row = await engines[0].db.fetchone("SELECT COUNT(*), SUM(held_micros) FROM ledger WHERE status = 'held'")
        assert row is not None and (int(row[0]), int(row[1])) == (10, 10 * CLIP)
        assert {n % 2 for n, ok in enumerate(outcomes) if ok} == {0, 1}  # both processes got some


async def test_reservations_in_different_servers_do_not_wait_for_each_other(pg: PostgresDatabase) -> None:
    """The budget lock is per server: a transaction holding server 1's lock does not block server 2."""
    ledger = SpendLedger(pg, member_defaults={Period.DAY: 10 * CLIP}, server_defaults={})
    holding, done = asyncio.Event(), asyncio.Event()

    async def hold_server_one() -> None:
        async with pg.transaction() as conn:
            await conn.lock("budget:1")
            holding.set()
            await done.wait()

    holder = asyncio.create_task(hold_server_one())
    await holding.wait()
    other = await ledger.reserve(replace(new_job(1), guild_id=2), role_ids=(), concurrency_cap=None, now=NOW)
    blocked = asyncio.create_task(ledger.reserve(new_job(2), role_ids=(), concurrency_cap=None, now=NOW))
    while not await pg.fetchone("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"):
        await asyncio.sleep(0.01)  # until server 1's second reservation is queued on the lock
    assert other.guild_id == 2 and not blocked.done()
    done.set()
    await holder
    assert (await blocked).guild_id == 1


# -- migrations ------------------------------------------------------------------------------------------------


async def test_fresh_database_gets_the_latest_schema_once(pg_url: str) -> None:
    async with PostgresDatabase(pg_url) as db:
        assert db.schema_version == LATEST_VERSION == SQLITE_LATEST
    async with PostgresDatabase(pg_url) as db:
        assert db.schema_version == LATEST_VERSION
    assert [tuple(r) for r in await raw_fetch(pg_url, "SELECT version FROM schema_version")] == [(LATEST_VERSION,)]


async def test_processes_starting_together_migrate_once(pg_url: str) -> None:
    dbs = [PostgresDatabase(pg_url) for _ in range(3)]
    await asyncio.gather(*(db.open() for db in dbs))
    try:
        assert {db.schema_version for db in dbs} == {LATEST_VERSION}
    finally:
        await asyncio.gather(*(db.close() for db in dbs))


async def test_a_database_newer_than_the_build_is_refused(pg_url: str) -> None:
    async with PostgresDatabase(pg_url):
        pass
    conn = await asyncpg.connect(pg_url, timeout=10)
    await conn.execute("UPDATE schema_version SET version = version + 1")
    await conn.close()
    db = PostgresDatabase(pg_url)
    with pytest.raises(SchemaError, match="newer than this build"):
        await db.open()
    assert not db.is_open


async def test_a_failing_migration_is_rolled_back_whole(pg_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_broken.sql").write_text("CREATE TABLE half (id BIGINT);\nSELECT * FROM missing_table;\n")
    with pytest.raises(SchemaError, match="0001_broken"):
        await PostgresDatabase(pg_url, migrations=folder).open()
    assert await raw_fetch(pg_url, "SELECT 1 FROM pg_tables WHERE tablename = 'half'") == []


async def test_the_schema_has_the_same_tables_and_columns_as_sqlite(pg: PostgresDatabase, tmp_path: Path) -> None:
    async with SqliteDatabase(tmp_path / "a.sqlite3"):
        pass
    with contextlib.closing(sqlite3.connect(tmp_path / "a.sqlite3")) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        lite = {t: [c[1] for c in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    rows = await pg.fetchall(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name != 'schema_version' ORDER BY table_name, ordinal_position"
    )
    post: dict[str, list[str]] = {}
    for row in rows:
        post.setdefault(row[0], []).append(row[1])
    assert post == lite


# -- transactions ----------------------------------------------------------------------------------------------


async def test_transaction_rolls_back_on_error_and_on_cancel(pg: PostgresDatabase) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with pg.transaction() as conn:
            await conn.execute("INSERT INTO kv (key, value) VALUES ('a', '1')")
            raise RuntimeError("boom")
    inside = asyncio.Event()

    async def writer() -> None:
        async with pg.transaction() as conn:
            await conn.execute("INSERT INTO kv (key, value) VALUES ('c', '1')")
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(writer())
    await inside.wait()
    assert await pg.fetchone("SELECT value FROM kv WHERE key = 'c'") is None  # not visible before commit
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await pg.fetchall("SELECT * FROM kv") == []
    assert await pg.execute("INSERT INTO kv (key, value) VALUES ('c', '2'), ('d', '3')") == 2


async def test_nested_transaction_in_one_task_is_an_error_not_a_deadlock(pg: PostgresDatabase) -> None:
    async with pg.transaction():
        with pytest.raises(RuntimeError, match="nested"):
            async with pg.transaction():
                pass
    async with pg.transaction() as conn:  # the task may open a new one afterwards
        assert await conn.fetchone("SELECT 1") is not None


async def test_a_snapshot_cannot_write(pg: PostgresDatabase) -> None:
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        async with pg.snapshot() as conn:
            await conn.execute("INSERT INTO kv (key, value) VALUES ('x', 'y')")


async def test_check_writable_leaves_nothing_behind(pg: PostgresDatabase) -> None:
    await pg.check_writable()
    assert await pg.fetchall("SELECT * FROM kv") == []


def test_placeholders_are_numbered_outside_quoted_text() -> None:
    assert numbered("SELECT '?', x FROM t WHERE a = ? AND b IN (?, ?) AND c = 'it''s ?'") == (
        "SELECT '?', x FROM t WHERE a = $1 AND b IN ($2, $3) AND c = 'it''s ?'"
    )


def test_the_description_never_shows_the_password() -> None:
    assert describe_url("postgresql://bot:hunter2@db.example:5433/hailuo") == ("PostgreSQL bot@db.example:5433/hailuo")


async def test_engine_start_on_an_unreachable_server_is_one_line_without_the_password(
    sim: RunwareSimulator, unused_tcp_port: int
) -> None:
    url = f"postgresql://bot:hunter2@127.0.0.1:{unused_tcp_port}/hailuo"
    engine = Engine(make_settings(url, sim.base_url), serve_webhooks=False)
    with pytest.raises(StartupError) as caught:
        await engine.start()
    await engine.close()
    message = str(caught.value)
    assert "\n" not in message and "hunter2" not in message
    assert f"bot@127.0.0.1:{unused_tcp_port}/hailuo" in message and "DATABASE_URL" in message


async def test_setting_changes_from_two_processes_at_once_are_all_kept(pg_url: str) -> None:
    """Each change reads the server's row and writes it whole: two processes must not undo each other's."""
    dbs = [PostgresDatabase(pg_url), PostgresDatabase(pg_url)]
    async with contextlib.AsyncExitStack() as stack:
        for db in dbs:
            await db.open()
            stack.push_async_callback(db.close)
        a, b = (GuildStore(db, defaults=GuildDefaults()) for db in dbs)
        guild_ids = range(1, 31)
        await asyncio.gather(
            *(a.update(g, 1, variations_cap=2) for g in guild_ids),
            *(b.update(g, 2, default_duration=10) for g in guild_ids),
            *(a.set_channel(g, 5, 1, allowed=True) for g in guild_ids),
            *(b.set_channel(g, 5, 2, pool=True) for g in guild_ids),
        )
        for g in guild_ids:
            config, rule = await a.get(g), await b.channel_rule(g, 5)
            assert (config.variations_cap, config.default_duration) == (2, 10)
            assert rule.allowed and rule.pool
            assert len(await a.audit_rows(g)) == 4
