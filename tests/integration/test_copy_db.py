"""`hailuo-bot copy-db --to URL`: a SQLite install with history moves to PostgreSQL with every row and cent."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.cli import EX_DATAERR, main
from bot.core.engine import Engine
from bot.core.models import JobState, Payer, Period, ResultState, Scope
from bot.store.blocklist import BlocklistStore
from bot.store.guilds import GuildDefaults, GuildStore
from bot.store.jobs import JobStore, NewJob
from bot.store.ledger import SpendLedger
from bot.store.offers import OfferStore
from bot.store.postgres.db import PostgresDatabase
from bot.store.sqlite.db import SqliteDatabase
from bot.store.transfer import TABLES
from tests.helpers import make_settings

NOW = datetime.now(UTC).replace(microsecond=0)
GUILD, MOD, POOL = 1000, 9, 555
MEMBERS = (3000, 3001, 3002)
TABLE_COUNT = len(TABLES)


def new_job(n: int, user_id: int, **changes: Any) -> NewJob:
    job = NewJob(
        task_uuid=f"hist-{n}",
        guild_id=GUILD,
        channel_id=2000,
        budget_channel_id=2000,
        user_id=user_id,
        payer=Payer.MEMBER,
        pool_channel_id=None,
        prompt=f"clip {n}: it's a 'quoted' prompt? yes",
        resolution="768p",
        duration=6,
        variations=2,
        prompt_optimizer=n % 2 == 0,
        frame_count=n % 3,
        params={"n": n, "task": {"taskUUID": f"hist-{n}"}},
        estimate_micros=280_000 + 1_000 * n,
        dry_run=False,
    )
    return replace(job, **changes)


async def build_history(path: Path) -> None:
    """Jobs in every state (member, pool, operator, dry run; this month and last), results, limits, settings,
    channel rules, audit rows, webhook receipts and kv."""
    async with SqliteDatabase(path) as db:
        clock = [NOW]
        jobs = JobStore(db, clock=lambda: clock[0])
        guilds = GuildStore(db, defaults=GuildDefaults(), clock=lambda: clock[0])
        ledger = SpendLedger(db, member_defaults={Period.DAY: 50_000_000}, server_defaults={}, clock=lambda: clock[0])
        await guilds.set_limit(GUILD, MOD, Scope.MEMBER, MEMBERS[0], Period.MONTH, 30_000_000)
        await guilds.set_limit(GUILD, MOD, Scope.SERVER, 0, Period.MONTH, 500_000_000)
        await guilds.set_limit(GUILD, MOD, Scope.CHANNEL, 2000, Period.WEEK, 90_000_000)
        await guilds.set_limit(GUILD, MOD, Scope.ROLE, 77, Period.DAY, 40_000_000)
        await guilds.clear_limit(GUILD, MOD, Scope.ROLE, 77, Period.DAY)
        await guilds.update(GUILD, MOD, default_duration=10, paused=False, moderator_role_id=2**62)
        await guilds.set_channel(GUILD, 2000, MOD, allowed=True, threads=True)
        await guilds.set_channel(GUILD, POOL, MOD, allowed=True, pool=True)
        await jobs.set_kv("webhook_secret", "kept-secret")
        blocklist = BlocklistStore(db, clock=lambda: clock[0])
        await blocklist.add(GUILD, MOD, "forbidden words")
        await blocklist.add(GUILD, MOD, "cat")
        await blocklist.remove(GUILD, MOD, "CAT")
        await guilds.update(GUILD, MOD, confirm_above_micros=500_000)
        offers = OfferStore(db, clock=lambda: clock[0])
        for _ in range(2):  # a costly job offered twice; one started
            offer_id = await offers.create(
                guild_id=GUILD, user_id=MEMBERS[0], channel_id=2000, estimate_micros=560_000,
                plan_json='{"prompt": "two dragons"}', expires_at=clock[0] + timedelta(minutes=5),
            )  # fmt: skip
        await offers.take(offer_id, MEMBERS[0])
        states = list(JobState)
        n, parent = 0, None
        for days_ago in (0, 1, 40):
            for state in states:
                for payer in (Payer.MEMBER, Payer.POOL, Payer.OPERATOR):
                    n += 1
                    when = NOW - timedelta(days=days_ago, minutes=n)
                    clock[0] = when
                    extra: dict[str, Any] = {"payer": payer, "dry_run": n % 5 == 0}
                    if payer is Payer.POOL:
                        extra |= {"budget_channel_id": POOL, "channel_id": POOL, "pool_channel_id": POOL}
                    if payer is Payer.OPERATOR:
                        extra |= {"guild_id": 0, "channel_id": 0, "budget_channel_id": 0}
                    user = 0 if payer is Payer.OPERATOR else MEMBERS[n % 3]
                    job = await ledger.reserve(
                        new_job(n, user, **extra), role_ids=(77,), concurrency_cap=None, now=when
                    )
                    if n % 4 == 0:
                        parent = job.id
                    elif parent is not None:  # a reroll of an earlier job
                        await db.execute("UPDATE jobs SET parent_job_id = ? WHERE id = ?", (parent, job.id))
                    if state is JobState.RESERVED:
                        continue
                    await jobs.transition(job.id, JobState.SUBMITTED)
                    await jobs.record_receipt(f"receipt-{n}", job.task_uuid)
                    if state is JobState.SUCCEEDED:
                        for v in range(2):
                            await jobs.add_result(
                                job.id, video_uuid=f"v{n}-{v}", video_url=f"https://x/{n}/{v}", seed=v, cost_micros=7
                            )
                        await jobs.transition(job.id, JobState.SUCCEEDED, cost_micros=270_000 + n)
                        await ledger.settle(job.id, 270_000 + n if n % 2 else None)
                        for result in await jobs.results(job.id):
                            await jobs.result_transition(result.id, ResultState.DELIVERING)
                            if result.id % 2:
                                await jobs.result_transition(
                                    result.id, ResultState.DELIVERED, message_id=5, channel_id=6
                                )
                    elif state in (JobState.FAILED, JobState.EXPIRED):
                        await jobs.transition(job.id, state, error="it broke")
                        await ledger.release(job.id)
                    elif state is JobState.CANCELLED:
                        await jobs.transition(job.id, state)
                        if n % 2:
                            await ledger.release(job.id)
        await jobs.set_status_message(1, channel_id=2000, message_id=2**60)


async def figures(target: Path | str) -> list[Any]:
    """What /usage and /limits report show, read through an engine started on `target`."""
    engine = Engine(make_settings(target, "http://127.0.0.1:9"), serve_webhooks=False)
    await engine.start()
    try:
        led, out = engine.ledger, []
        for dry_run in (False, True):
            for period in Period:
                out.append(await led.report(GUILD, period, NOW, dry_run=dry_run))
            for user_id in MEMBERS:
                for payer, channel in ((Payer.MEMBER, 2000), (Payer.POOL, POOL)):
                    limits = await led.limits_for(
                        payer=payer, guild_id=GUILD, user_id=user_id, role_ids=(77,), channel_id=channel
                    )
                    out.append(await led.standings(limits, guild_id=GUILD, now=NOW, dry_run=dry_run, user_id=user_id))
        for user_id in MEMBERS:
            recent = await engine.jobs.recent_for_member(GUILD, user_id, 100)
            out.append(recent)
            out.append([await engine.jobs.results(job.id) for job in recent])
        out.append(await engine.guilds.get(GUILD))
        out.append(await engine.guilds.limits(GUILD))
        out.append(await engine.guilds.audit_rows(GUILD, 100))
        out.append(sorted(await engine.guilds.allowed_channels(GUILD)))
        out.append(await engine.jobs.get_kv("webhook_secret"))
        out.append(await engine.jobs.unfinished())
        out.append(await engine.ledger.held_job_ids())
        return out
    finally:
        await engine.close()


def copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> int:
    monkeypatch.setenv("HAILUO_DATABASE__PATH", str(tmp_path / "bot.sqlite3"))
    return main(["copy-db", "--to", url])


def test_copy_db_moves_every_row_and_the_bot_reads_the_same_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pg_url: str
) -> None:
    path = tmp_path / "bot.sqlite3"
    asyncio.run(build_history(path))
    assert copy(tmp_path, monkeypatch, pg_url) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == TABLE_COUNT + 1
    assert [line.split(":")[0] for line in lines[:-1]] == list(TABLES)
    assert lines[-1].startswith("done:") and "totals checked" in lines[-1]

    async def compare() -> None:
        async with SqliteDatabase(path) as lite, PostgresDatabase(pg_url) as post:
            for table in TABLES:
                a = [tuple(r) for r in await lite.fetchall(f"SELECT * FROM {table} ORDER BY 1, 2")]
                b = [tuple(r) for r in await post.fetchall(f"SELECT * FROM {table} ORDER BY 1, 2")]
                assert a == b, table
                assert a or table == "webhook_receipts", f"history has no {table} rows"
            states = {r[0] for r in await post.fetchall("SELECT DISTINCT state FROM jobs")}
            assert states == {str(s) for s in JobState}
        assert await figures(path) == await figures(pg_url)

    asyncio.run(compare())

    async def new_rows_follow_the_copied_ids() -> None:
        async with PostgresDatabase(pg_url) as post:
            top = await post.fetchone("SELECT MAX(id) FROM jobs")
            assert top is not None
            job = await SpendLedger(post, member_defaults={}, server_defaults={}).reserve(
                new_job(999, 1), role_ids=(), concurrency_cap=None, now=NOW
            )
            assert job.id == int(top[0]) + 1

    asyncio.run(new_rows_follow_the_copied_ids())


def test_copy_db_refuses_a_target_that_is_not_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pg_url: str
) -> None:
    asyncio.run(build_history(tmp_path / "bot.sqlite3"))
    assert copy(tmp_path, monkeypatch, pg_url) == 0
    capsys.readouterr()
    assert copy(tmp_path, monkeypatch, pg_url) == EX_DATAERR
    err = capsys.readouterr()
    assert err.out == "" and len(err.err.splitlines()) == 1
    assert "not empty" in err.err and "jobs" in err.err

    async def foreign() -> None:
        conn = await asyncpg.connect(pg_url)
        with contextlib.suppress(Exception):
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public; CREATE TABLE invoices (id INT)")
        await conn.close()

    asyncio.run(foreign())
    assert copy(tmp_path, monkeypatch, pg_url) == EX_DATAERR
    err = capsys.readouterr()
    assert len(err.err.splitlines()) == 1 and "invoices" in err.err and "not empty" in err.err

    async def untouched() -> list[str]:
        conn = await asyncpg.connect(pg_url)
        try:
            return [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        finally:
            await conn.close()

    assert asyncio.run(untouched()) == ["invoices"]


def test_copy_db_without_a_sqlite_file_or_with_a_bad_url_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], unused_tcp_port: int
) -> None:
    assert copy(tmp_path, monkeypatch, "postgresql://u:pw@127.0.0.1:1/x") == EX_DATAERR
    assert "no SQLite database" in capsys.readouterr().err
    asyncio.run(build_history(tmp_path / "bot.sqlite3"))
    assert copy(tmp_path, monkeypatch, f"postgresql://u:hunter2@127.0.0.1:{unused_tcp_port}/x") == EX_DATAERR
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "can't connect" in err and "hunter2" not in err
