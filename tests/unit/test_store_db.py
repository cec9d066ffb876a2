"""Database: pragmas, the write transaction, and forward-only migrations on real SQLite files."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import aiosqlite
import pytest

from bot.core.models import Period
from bot.store.jobs import JobStore, NewJob
from bot.store.ledger import SpendLedger
from bot.store.sqlite.db import LATEST_VERSION, Database, SchemaError, from_db_time, load_migrations, to_db_time
from tests.helpers import new_job

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
PACKAGED = Path(str(resources.files("bot.store.sqlite") / "migrations"))

V2_SQL = """
ALTER TABLE jobs ADD COLUMN label TEXT NOT NULL DEFAULT 'none';
CREATE INDEX jobs_by_label ON jobs (label);
CREATE TABLE notes (id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL REFERENCES jobs (id), body TEXT NOT NULL);
"""


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A SQLite database in a folder that does not exist yet (the bot creates it)."""
    database = Database(tmp_path / "data" / "bot.sqlite3")
    await database.open()
    yield database
    await database.close()


def migration_dir(root: Path, name: str, extra: dict[str, str] | None = None) -> Path:
    """A copy of the packaged migrations, plus extra files (name -> SQL)."""
    folder = root / name
    folder.mkdir()
    for file in PACKAGED.glob("*.sql"):
        shutil.copy(file, folder / file.name)
    for file_name, sql in (extra or {}).items():
        (folder / file_name).write_text(sql, encoding="utf-8")
    return folder


def schema_of(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
        ).fetchall()
    conn.close()
    return [(t, n, " ".join((s or "").split())) for t, n, s in rows]


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    conn.close()
    return version


def sample_job(task_uuid: str = "task-1") -> NewJob:
    return new_job(task_uuid=task_uuid, params={"safety_mode": "none"})


def ledger(db: Database) -> SpendLedger:
    return SpendLedger(db, member_defaults={Period.DAY: 2_000_000}, server_defaults={Period.MONTH: 200_000_000})


# -- opening -------------------------------------------------------------------------------------------------------


async def test_fresh_file_is_created_with_pragmas_and_latest_schema(db: Database) -> None:
    assert db.path.is_file()
    assert db.schema_version == LATEST_VERSION
    assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"  # type: ignore[index]
    assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1  # type: ignore[index]
    assert (await db.fetchone("PRAGMA synchronous"))[0] == 2  # type: ignore[index]  # FULL
    names = {row[0] for row in await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"jobs", "results", "ledger", "limits", "guild_settings", "channel_settings", "audit"} <= names
    assert {"webhook_receipts", "kv"} <= names


async def test_reopening_keeps_data_and_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    async with Database(path) as db:
        await ledger(db).reserve(sample_job(), role_ids=(), concurrency_cap=None, now=NOW)
    async with Database(path) as db:
        assert db.schema_version == LATEST_VERSION
        job = await JobStore(db).by_task_uuid("task-1")
        assert job is not None and job.estimate_micros == 280_000 and job.extra == {"safety_mode": "none"}


async def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(aiosqlite.IntegrityError):
        await db.execute(
            "INSERT INTO results (job_id, video_uuid, video_url, created_at) VALUES (999, 'v', 'u', ?)",
            (to_db_time(NOW),),
        )


async def test_check_writable_leaves_nothing_behind(db: Database) -> None:
    await db.check_writable()
    assert await db.fetchall("SELECT * FROM kv") == []


async def test_check_writable_reports_a_database_that_refuses_writes(db: Database) -> None:
    await db.fetchall("PRAGMA query_only = ON")  # what a read-only mount looks like to SQLite
    with pytest.raises(aiosqlite.OperationalError, match="readonly"):
        await db.check_writable()
    await db.fetchall("PRAGMA query_only = OFF")
    await db.check_writable()


async def test_open_is_refused_when_the_file_is_newer_than_the_build(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    async with Database(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    conn.close()
    database = Database(path)
    with pytest.raises(SchemaError, match="newer than this build"):
        await database.open()
    assert not database.is_open


# -- the transaction -----------------------------------------------------------------------------------------------


async def test_transaction_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO kv (key, value) VALUES ('a', '1')")
            raise RuntimeError("boom")
    assert await db.fetchone("SELECT value FROM kv WHERE key = 'a'") is None
    assert await db.execute("INSERT INTO kv (key, value) VALUES ('a', '2')") == 1
    assert (await db.fetchone("SELECT value FROM kv WHERE key = 'a'"))[0] == "2"  # type: ignore[index]


async def test_nested_transaction_in_one_task_is_an_error_not_a_deadlock(db: Database) -> None:
    async with db.transaction():
        with pytest.raises(RuntimeError, match="nested"):
            async with db.transaction():
                pass
        with pytest.raises(RuntimeError, match="inside a transaction"):  # a write belongs on the transaction's conn
            await db.execute("INSERT INTO kv (key, value) VALUES ('n', '1')")
        assert await db.fetchone("SELECT 1") is not None  # reads inside are fine
    assert await db.fetchone("SELECT * FROM kv WHERE key = 'n'") is None


async def test_one_write_statement_is_atomic_on_its_own(db: Database) -> None:
    """`execute` runs without BEGIN/COMMIT round trips: a statement that fails half-way still writes nothing."""
    assert await db.execute("INSERT INTO kv (key, value) VALUES ('a', '1')") == 1
    with pytest.raises(sqlite3.IntegrityError):
        await db.execute("INSERT INTO kv (key, value) VALUES ('b', '2'), ('a', '3')")
    assert [tuple(r) for r in await db.fetchall("SELECT key, value FROM kv ORDER BY key")] == [("a", "1")]
    assert await db.execute("UPDATE kv SET value = '4' WHERE key IN ('a', 'zz')") == 1


async def test_fetchone_gives_the_first_row_or_none(db: Database) -> None:
    await db.executemany("INSERT INTO kv (key, value) VALUES (?, ?)", [("b", "2"), ("a", "1")])
    assert tuple(await db.fetchone("SELECT key FROM kv ORDER BY key") or ()) == ("a",)
    assert await db.fetchone("SELECT key FROM kv WHERE key = 'zz'") is None


async def test_readers_never_see_another_tasks_uncommitted_writes(db: Database) -> None:
    inside, release = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO kv (key, value) VALUES ('k', 'v')")
            inside.set()
            await release.wait()
            raise RuntimeError("roll it back")

    task = asyncio.create_task(writer())
    await inside.wait()
    reader = asyncio.create_task(db.fetchone("SELECT value FROM kv WHERE key = 'k'"))
    await asyncio.sleep(0)
    assert not reader.done()  # waits for the transaction instead of reading its dirty state
    release.set()
    with pytest.raises(RuntimeError):
        await task
    assert await reader is None


async def test_cancelled_transaction_rolls_back_and_frees_the_lock(db: Database) -> None:
    inside = asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO kv (key, value) VALUES ('c', '1')")
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(writer())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await db.fetchone("SELECT * FROM kv WHERE key = 'c'") is None
    assert await db.execute("INSERT INTO kv (key, value) VALUES ('c', '2')") == 1


def test_times_are_fixed_width_utc_text() -> None:
    a = to_db_time(datetime(2025, 1, 31, 23, 59, 59, 999_999, tzinfo=UTC))
    b = to_db_time(datetime(2025, 2, 1, tzinfo=UTC))
    assert a < b and len(a) == len(b)
    assert from_db_time(b) == datetime(2025, 2, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        to_db_time(datetime(2025, 2, 1))


# -- migrations ----------------------------------------------------------------------------------------------------


async def test_old_file_with_data_and_fresh_file_end_at_the_same_schema(tmp_path: Path) -> None:
    v1 = migration_dir(tmp_path, "v1")
    v2 = migration_dir(tmp_path, "v2", {f"{LATEST_VERSION + 1:04d}_job_labels.sql": V2_SQL})
    old_path, fresh_path = tmp_path / "old.sqlite3", tmp_path / "fresh.sqlite3"

    async with Database(old_path, migrations=v1) as db:  # a file as the previous release left it
        assert db.schema_version == LATEST_VERSION
        job = await ledger(db).reserve(sample_job(), role_ids=(), concurrency_cap=None, now=NOW)
        await JobStore(db).add_result(job.id, video_uuid="v1", video_url="https://x/v1.mp4", seed=7, cost_micros=1)
    assert user_version(old_path) == LATEST_VERSION

    async with Database(old_path, migrations=v2) as db:
        assert db.schema_version == LATEST_VERSION + 1
        row = await db.fetchone("SELECT task_uuid, label FROM jobs")
        assert row is not None and tuple(row) == ("task-1", "none")
        assert len(await JobStore(db).results(job.id)) == 1
        assert (await ledger(db).held_job_ids()) == [job.id]
    async with Database(fresh_path, migrations=v2) as db:
        assert db.schema_version == LATEST_VERSION + 1

    assert schema_of(old_path) == schema_of(fresh_path)
    assert user_version(old_path) == user_version(fresh_path) == LATEST_VERSION + 1


async def test_packaged_migrations_build_the_same_schema_as_a_copy(tmp_path: Path) -> None:
    async with Database(tmp_path / "a.sqlite3"):
        pass
    async with Database(tmp_path / "b.sqlite3", migrations=migration_dir(tmp_path, "copy")):
        pass
    assert schema_of(tmp_path / "a.sqlite3") == schema_of(tmp_path / "b.sqlite3")


async def test_a_failing_migration_is_rolled_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    async with Database(path):
        pass
    broken = migration_dir(
        tmp_path,
        "broken",
        {f"{LATEST_VERSION + 1:04d}_broken.sql": "CREATE TABLE half (x INTEGER);\nINSERT INTO nowhere VALUES (1);"},
    )
    database = Database(path, migrations=broken)
    with pytest.raises(SchemaError, match="broken"):
        await database.open()
    assert user_version(path) == LATEST_VERSION
    assert all(name != "half" for _, name, _ in schema_of(path))


def test_migration_files_must_be_numbered_without_gaps(tmp_path: Path) -> None:
    gap = migration_dir(tmp_path, "gap", {f"{LATEST_VERSION + 2:04d}_skip.sql": "SELECT 1;"})
    with pytest.raises(SchemaError, match="without gaps"):
        load_migrations(gap)
    own_tx = migration_dir(tmp_path, "tx", {f"{LATEST_VERSION + 1:04d}_tx.sql": "BEGIN;\nSELECT 1;\nCOMMIT;"})
    with pytest.raises(SchemaError, match="BEGIN"):
        load_migrations(own_tx)
