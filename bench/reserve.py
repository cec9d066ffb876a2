"""Reservation race benchmark: prints figures, asserts nothing.

1,000 concurrent `/video` reservations by one member against a daily limit that fits 10, on a real SQLite file and
on a real PostgreSQL database (tests/pg.py starts a server), side by side: how many are accepted (must be 10) and
the latency of one reservation; on PostgreSQL also split over two pools, as two processes would; then the same
race done the naive way (read spend, await, then insert, outside one locked transaction) to show how many it
wrongly admits. Also the latency of one reservation with no contention (SQLite with synchronous=FULL and NORMAL).

The PostgreSQL server tests/pg.py starts runs with fsync and synchronous_commit off (a test server), so its
commit latency is lower than a durable production server's; the SQLite FULL figure includes an fsync.

Run: python bench/reserve.py [--calls 1000] [--db sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.errors import OverLimit
from bot.core.models import JobState, Period, Scope, format_usd, usd_to_micros
from bot.store.driver import to_db_time
from bot.store.interface import Database
from bot.store.jobs import NewJob, insert_job
from bot.store.ledger import SpendLedger
from bot.store.postgres.db import PostgresDatabase
from bot.store.sqlite.db import SqliteDatabase
from tests.helpers import new_job as shared_new_job
from tests.pg import PostgresServer

CLIP = usd_to_micros("0.28")
LIMIT = 10 * CLIP
NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
GUILD, MEMBER, CHANNEL = 1, 42, 7


def new_job(n: int, user_id: int = MEMBER) -> NewJob:
    return shared_new_job(
        task_uuid=f"bench-{user_id}-{n}",
        guild_id=GUILD,
        channel_id=CHANNEL,
        budget_channel_id=CHANNEL,
        user_id=user_id,
        prompt="a lighthouse in a storm",
        estimate_micros=CLIP,
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
        raise OverLimit(
            scope=Scope.MEMBER,
            period=Period.DAY,
            is_default=True,
            limit_amount=LIMIT,
            left_micros=LIMIT - spent,
            needed_micros=job.estimate_micros,
            resets_at=NOW,
        )
    await asyncio.sleep(0)  # any await between check and write: a log call, a Discord fetch, a price lookup...
    async with db.transaction() as conn:
        created = await insert_job(conn, job, state=JobState.RESERVED, now=NOW)
        await conn.execute(
            "INSERT INTO ledger (job_id, guild_id, user_id, budget_channel_id, payer, created_at, held_micros) "
            "VALUES (?, ?, ?, ?, 'member', ?, ?)",
            (created.id, job.guild_id, job.user_id, job.budget_channel_id, to_db_time(NOW), job.estimate_micros),
        )


class Targets:
    """Fresh databases for each run: SQLite files in a temporary folder, PostgreSQL databases on one server."""

    def __init__(self, folder: Path, server: PostgresServer | None) -> None:
        self.folder, self.server, self.n = folder, server, 0

    def new(self, backend: str, **sqlite_options: Any) -> list[Database]:
        self.n += 1
        if backend == "sqlite":
            return [SqliteDatabase(self.folder / f"run-{self.n}.sqlite3", **sqlite_options)]
        assert self.server is not None
        url = self.server.create_database("bench")
        pools = int(sqlite_options.get("pools", 1))
        return [PostgresDatabase(url) for _ in range(pools)]


async def race(dbs: list[Database], calls: int, *, naive: bool, label: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        for db in dbs:
            await db.open()
            stack.push_async_callback(db.close)
        ledgers = [SpendLedger(db, member_defaults={Period.DAY: LIMIT}, server_defaults={}) for db in dbs]

        async def call(i: int, job: NewJob) -> None:
            if naive:
                await naive_reserve(dbs[i % len(dbs)], job)
            else:
                await ledgers[i % len(dbs)].reserve(job, role_ids=(), concurrency_cap=None, now=NOW)

        start = time.perf_counter()
        jobs = [new_job(i) for i in range(calls)]
        outcomes = await asyncio.gather(*(timed(lambda i=i, job=job: call(i, job)) for i, job in enumerate(jobs)))
        wall = time.perf_counter() - start
        accepted = sum(ok for ok, _ in outcomes)
        row = await dbs[0].fetchone("SELECT COALESCE(SUM(held_micros), 0) FROM ledger")
        held = int(row[0]) if row is not None else 0
        latencies = [t for _, t in outcomes]
        print(
            f"  {label:<44} accepted {accepted:4d} / {calls}   held {format_usd(held):>8} of {format_usd(LIMIT)}   "
            f"p50 {pct(latencies, 0.50):7.2f} ms  p99 {pct(latencies, 0.99):7.2f} ms  wall {wall * 1000:7.1f} ms",
            flush=True,
        )


async def uncontended(db: Database, label: str, calls: int = 300) -> None:
    async with contextlib.AsyncExitStack() as stack:
        await db.open()
        stack.push_async_callback(db.close)
        ledger = SpendLedger(db, member_defaults={Period.DAY: 10**12}, server_defaults={})
        latencies = []
        for i in range(calls):
            job = new_job(i)
            _, elapsed = await timed(lambda job=job: ledger.reserve(job, role_ids=(), concurrency_cap=None, now=NOW))
            latencies.append(elapsed)
        print(
            f"  {label:<24} {calls} reservations one at a time: p50 {pct(latencies, 0.5):6.2f} ms  "
            f"p99 {pct(latencies, 0.99):6.2f} ms  mean {statistics.fmean(latencies) * 1000:6.2f} ms",
            flush=True,
        )


async def run(targets: Targets, backends: list[str], calls: int) -> None:
    print(f"{calls} concurrent reservations of {format_usd(CLIP)} by one member, limit {format_usd(LIMIT)}")
    print("(latency = from the call to its answer, queueing behind the others included)")
    for backend in backends:
        await race(targets.new(backend), calls, naive=False, label=f"{backend:<8} SpendLedger.reserve")
        if backend == "postgres":
            await race(targets.new(backend, pools=2), calls, naive=False, label=f"{backend:<8} reserve, two pools")
    for backend in backends:
        await race(targets.new(backend), calls, naive=True, label=f"{backend:<8} naive (read, await, insert)")
    print("one reservation without contention (one write transaction)")
    for backend in backends:
        if backend == "sqlite":
            await uncontended(targets.new(backend, synchronous="FULL")[0], "sqlite synchronous=FULL")
            await uncontended(targets.new(backend, synchronous="NORMAL")[0], "sqlite synchronous=NORMAL")
        else:
            await uncontended(targets.new(backend)[0], "postgres (test server)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory(prefix="hailuo-bench-") as tmp, contextlib.ExitStack() as stack:
        server = stack.enter_context(PostgresServer.start()) if "postgres" in backends else None
        asyncio.run(run(Targets(Path(tmp), server), backends, args.calls))


if __name__ == "__main__":
    main()
