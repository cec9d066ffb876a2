"""ledger_days: the per-day spend sums that limit checks read always equal the sums of the ledger rows themselves."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.core.models import Payer, Period, Scope
from bot.core.policy import Limit
from bot.store.driver import Database as AnyDatabase
from bot.store.jobs import NewJob
from bot.store.ledger import SpendLedger
from bot.store.sqlite.db import Database, to_db_time

PACKAGED = Path(__file__).resolve().parents[2] / "bot" / "store" / "sqlite" / "migrations"
START = datetime(2025, 1, 30, 20, 0, tzinfo=UTC)

#: The ledger rows each scope covers, straight from the ledger (the reference the day sums must match).
DIRECT = {
    "member": ("user_id", "payer = 'member'"),
    "channel": ("budget_channel_id", "payer IN ('member', 'pool')"),
    "server": ("0", "payer != 'operator'"),
}


def new_job(n: int, rng: random.Random) -> NewJob:
    payer = rng.choice([Payer.MEMBER, Payer.MEMBER, Payer.POOL, Payer.OPERATOR])
    guild = 0 if payer is Payer.OPERATOR else rng.choice([1, 2])
    channel = rng.choice([11, 12])
    return NewJob(
        task_uuid=f"t{n}",
        guild_id=guild,
        channel_id=channel,
        budget_channel_id=channel,
        user_id=rng.choice([5, 6, 7]),
        payer=payer,
        pool_channel_id=channel if payer is Payer.POOL else None,
        prompt="p",
        resolution="768p",
        duration=6,
        variations=1,
        prompt_optimizer=False,
        frame_count=0,
        params={},
        estimate_micros=rng.choice([100, 250, 400]),
        dry_run=rng.random() < 0.3,
    )


async def direct_sums(db: AnyDatabase) -> dict[tuple[object, ...], tuple[int, int]]:
    out: dict[tuple[object, ...], tuple[int, int]] = {}
    for scope, (target, where) in DIRECT.items():
        rows = await db.fetchall(
            f"SELECT guild_id, {target}, dry_run, substr(created_at, 1, 10), "
            "SUM(CASE status WHEN 'settled' THEN charged_micros ELSE 0 END), "
            "SUM(CASE status WHEN 'held' THEN held_micros ELSE 0 END) "
            f"FROM ledger WHERE {where} GROUP BY 1, 2, 3, 4"
        )
        for r in rows:
            out[(r[0], scope, r[1], r[2], r[3])] = (int(r[4]), int(r[5]))
    return out


async def day_sums(db: AnyDatabase) -> dict[tuple[object, ...], tuple[int, int]]:
    rows = await db.fetchall(
        "SELECT guild_id, scope, target_id, dry_run, day, settled_micros, held_micros FROM ledger_days"
    )
    return {(r[0], r[1], r[2], r[3], r[4]): (int(r[5]), int(r[6])) for r in rows}


async def random_history(db: AnyDatabase, rng: random.Random, n: int) -> None:
    ledger = SpendLedger(db, member_defaults={}, server_defaults={})
    open_jobs: list[int] = []
    now = START
    for i in range(n):
        now += timedelta(hours=rng.choice([0, 1, 7, 30]))
        job = await ledger.reserve(new_job(i, rng), role_ids=(), concurrency_cap=None, now=now)
        open_jobs.append(job.id)
        if rng.random() < 0.6:
            job_id = open_jobs.pop(rng.randrange(len(open_jobs)))
            if rng.random() < 0.5:
                await ledger.settle(job_id, rng.choice([None, 0, 90, 500]))
            else:
                await ledger.release(job_id)


def nonzero(sums: dict[tuple[object, ...], tuple[int, int]]) -> dict[tuple[object, ...], tuple[int, int]]:
    return {k: v for k, v in sums.items() if v != (0, 0)}


async def test_day_sums_follow_every_reserve_settle_release_and_reconcile(database: AnyDatabase) -> None:
    """On each backend (SQLite triggers; a PostgreSQL trigger function)."""
    db = database
    rng = random.Random(12)
    await random_history(db, rng, 150)
    assert nonzero(await day_sums(db)) == nonzero(await direct_sums(db))
    # many rows changed by one statement (a bulk settle and release), the day sums follow each row
    await db.execute(
        "UPDATE ledger SET status = 'settled', charged_micros = held_micros + 7 "
        "WHERE status = 'held' AND job_id % 3 = 0"
    )
    await db.execute("UPDATE ledger SET status = 'released' WHERE status = 'held' AND job_id % 3 = 1")
    await db.execute("DELETE FROM ledger WHERE job_id = (SELECT MIN(job_id) FROM ledger)")
    assert nonzero(await day_sums(db)) == nonzero(await direct_sums(db))


#: What migrations 0005 and 0006 added, undone (0006 moved the jobs' leases to job_leases).
UNDO_AFTER_VERSION_4 = (
    "DROP TRIGGER ledger_days_insert",
    "DROP TRIGGER ledger_days_delete",
    "DROP TRIGGER ledger_days_update",
    "DROP TABLE ledger_days",
    "DROP INDEX jobs_by_member_state",
    "DROP INDEX ledger_held",
    "UPDATE jobs SET lease_owner = (SELECT owner FROM job_leases WHERE job_id = jobs.id), "
    "lease_until = (SELECT until FROM job_leases WHERE job_id = jobs.id)",
    "DROP TABLE job_leases",
    "CREATE INDEX jobs_by_lease ON jobs (lease_owner)",
)


async def test_a_database_with_history_gets_its_day_sums_when_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    async with Database(path) as db:
        await random_history(db, random.Random(7), 120)
        expected = nonzero(await direct_sums(db))
        # Back to the schema before the day sums (version 4), keeping the history: what that release left.
        async with db.transaction() as conn:
            for statement in UNDO_AFTER_VERSION_4:
                await conn.execute(statement)
        await db.execute("PRAGMA user_version = 4")
        await db.execute("UPDATE jobs SET lease_owner = 'old-process', lease_until = '2025-01-01T00:00:00.000000Z'")
    async with Database(path) as db:
        assert nonzero(await day_sums(db)) == expected
        # 0006: every job's lease moved to job_leases as it was, the old columns emptied
        moved = await db.fetchall("SELECT owner, until FROM job_leases l JOIN jobs j ON j.id = l.job_id")
        assert len(moved) == 120 and {tuple(r) for r in moved} == {("old-process", "2025-01-01T00:00:00.000000Z")}
        assert await db.fetchone("SELECT 1 FROM jobs WHERE lease_owner IS NOT NULL OR lease_until IS NOT NULL") is None


async def test_limit_standing_reads_the_window_of_whole_days(tmp_path: Path) -> None:
    async with Database(tmp_path / "c.sqlite3") as db:
        ledger = SpendLedger(db, member_defaults={}, server_defaults={})
        rng = random.Random(3)
        edge = datetime(2025, 2, 1, tzinfo=UTC)  # a Saturday, first of the month
        for i, at in enumerate([edge - timedelta(microseconds=1), edge, edge + timedelta(hours=23, minutes=59)]):
            job = replace(
                new_job(i, rng), payer=Payer.MEMBER, guild_id=1, user_id=5, pool_channel_id=None, dry_run=False
            )
            await ledger.reserve(replace(job, estimate_micros=100), role_ids=(), concurrency_cap=None, now=at)
        day = Limit(Scope.MEMBER, 5, Period.DAY, 10_000)
        month = Limit(Scope.MEMBER, 5, Period.MONTH, 10_000)
        server = Limit(Scope.SERVER, 1, Period.MONTH, 10_000)
        assert (await ledger.standing(day, guild_id=1, now=edge)).reserved_micros == 2 * 100
        assert (await ledger.standing(month, guild_id=1, now=edge)).reserved_micros == 2 * 100
        assert (await ledger.standing(server, guild_id=1, now=edge)).reserved_micros == 2 * 100
        past = edge - timedelta(hours=1)
        assert (await ledger.standing(day, guild_id=1, now=past)).reserved_micros == 100
        assert to_db_time(edge)[:10] == "2025-02-01"
