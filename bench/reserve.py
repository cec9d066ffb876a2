"""Reservation race benchmark: prints figures, asserts nothing.

1,000 concurrent `/video` reservations by one member against a daily limit that fits 10, on a real SQLite file:
how many are accepted (must be 10) and the latency of one reservation; then the same race done the naive way
(read spend, await, then insert, without the lock and BEGIN IMMEDIATE around check and write) to show how many it
wrongly admits. Also the latency of one reservation with no contention, with synchronous=FULL and NORMAL.

Run: python bench/reserve.py [--calls 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.errors import OverLimit
from bot.core.models import JobState, Payer, Period, format_usd, usd_to_micros
from bot.store.driver import to_db_time
from bot.store.jobs import NewJob, insert_job
from bot.store.ledger import SpendLedger
from bot.store.sqlite.db import Database

CLIP = usd_to_micros("0.28")
LIMIT = 10 * CLIP
NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
GUILD, MEMBER, CHANNEL = 1, 42, 7


def new_job(n: int, user_id: int = MEMBER) -> NewJob:
    return NewJob(
        task_uuid=f"bench-{user_id}-{n}",
        guild_id=GUILD,
        channel_id=CHANNEL,
        budget_channel_id=CHANNEL,
        user_id=user_id,
        payer=Payer.MEMBER,
        pool_channel_id=None,
        prompt="a lighthouse in a storm",
        resolution="768p",
        duration=6,
        variations=1,
        prompt_optimizer=False,
        frame_count=0,
        params={},
        estimate_micros=CLIP,
        dry_run=False,
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def timed(call: Callable[[], Awaitable[object]]) -> tuple[bool, float]:
    start = time.perf_counter()
    try:
        await call()
        ok = True
    except OverLimit:
        ok = False
    return ok, time.perf_counter() - start


async def naive_reserve(db: Database, job: NewJob) -> None:
    """The Red-bank pattern: read spend, await something, then write. Check and write are not one transaction."""
    row = await db.fetchone(
        "SELECT COALESCE(SUM(held_micros), 0) FROM ledger WHERE guild_id = ? AND user_id = ? AND status = 'held'",
        (job.guild_id, job.user_id),
    )
    spent = int(row[0]) if row is not None else 0
    if spent + job.estimate_micros > LIMIT:
        raise OverLimit("over", limit_label="daily", left_micros=LIMIT - spent, resets_at=NOW)
    await asyncio.sleep(0)  # any await between check and write: a log call, a Discord fetch, a price lookup...
    async with db.transaction() as conn:
        created = await insert_job(conn, job, state=JobState.RESERVED, now=NOW)
        await conn.execute(
            "INSERT INTO ledger (job_id, guild_id, user_id, budget_channel_id, payer, created_at, held_micros) "
            "VALUES (?, ?, ?, ?, 'member', ?, ?)",
            (created.id, job.guild_id, job.user_id, job.budget_channel_id, to_db_time(NOW), job.estimate_micros),
        )


async def race(folder: Path, calls: int, *, naive: bool) -> None:
    async with Database(folder / f"{'naive' if naive else 'ledger'}.sqlite3") as db:
        ledger = SpendLedger(db, member_defaults={Period.DAY: LIMIT}, server_defaults={})

        async def proper(job: NewJob) -> None:
            await ledger.reserve(job, role_ids=(), concurrency_cap=None, now=NOW)

        async def cheap(job: NewJob) -> None:
            await naive_reserve(db, job)

        fn = cheap if naive else proper
        start = time.perf_counter()
        jobs = [new_job(i) for i in range(calls)]
        outcomes = await asyncio.gather(*(timed(lambda job=job: fn(job)) for job in jobs))
        wall = time.perf_counter() - start
        accepted = sum(ok for ok, _ in outcomes)
        row = await db.fetchone("SELECT COALESCE(SUM(held_micros), 0) FROM ledger")
        held = int(row[0]) if row is not None else 0
        latencies = [t for _, t in outcomes]
        name = "naive (read, await, insert)" if naive else "SpendLedger.reserve"
        print(
            f"  {name:<28} accepted {accepted:4d} / {calls}   held {format_usd(held):>8} of {format_usd(LIMIT)}   "
            f"p50 {pct(latencies, 0.50):7.2f} ms  p99 {pct(latencies, 0.99):7.2f} ms  wall {wall * 1000:7.1f} ms"
        )


async def uncontended(folder: Path, synchronous: str, calls: int = 300) -> None:
    async with Database(folder / f"seq-{synchronous}.sqlite3", synchronous=synchronous) as db:
        ledger = SpendLedger(db, member_defaults={Period.DAY: 10**12}, server_defaults={})
        latencies = []
        for i in range(calls):
            job = new_job(i)
            _, elapsed = await timed(lambda job=job: ledger.reserve(job, role_ids=(), concurrency_cap=None, now=NOW))
            latencies.append(elapsed)
        print(
            f"  synchronous={synchronous:<6}  {calls} reservations one at a time: p50 {pct(latencies, 0.5):6.2f} ms  "
            f"p99 {pct(latencies, 0.99):6.2f} ms  mean {statistics.fmean(latencies) * 1000:6.2f} ms"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hailuo-bench-") as tmp:
        folder = Path(tmp)
        print(f"{args.calls} concurrent reservations of {format_usd(CLIP)} by one member, limit {format_usd(LIMIT)}")
        print("(latency = from the call to its answer, queueing behind the others included)")
        await race(folder, args.calls, naive=False)
        await race(folder, args.calls, naive=True)
        print("one reservation without contention (one write transaction, fsync per commit with FULL)")
        await uncontended(folder, "FULL")
        await uncontended(folder, "NORMAL")


if __name__ == "__main__":
    asyncio.run(main())
