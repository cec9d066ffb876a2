"""Reservations against a growing history: prints figures, asserts nothing.

Member-paid reservations in one server (100 members, 5 channels) with member, channel and server limits that all
fit, through the real SpendLedger: the rate over 500 reservations once 1,000 rows of history are in the ledger, and
again at 10,000. Every limit check sums the spend of its window and the concurrency cap counts the member's open
jobs, so without per-day sums and the right index the rate falls as the history grows. Target (issue 12): flat
within 20 %.

Run: python bench/reserve_history.py [--db sqlite|postgres|both] [--sizes 1000,10000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.models import Period, usd_to_micros
from bot.store.interface import open_database
from bot.store.jobs import NewJob
from bot.store.ledger import SpendLedger
from tests.helpers import new_job as shared_new_job

CLIP = usd_to_micros("0.28")
MEMBERS = 100
MEASURED = 500
LOTS = usd_to_micros("1000000")


def new_job(n: int) -> NewJob:
    channel = 7 + n % 5
    return shared_new_job(
        task_uuid=f"history-{n}",
        channel_id=channel,
        budget_channel_id=channel,
        user_id=n % MEMBERS,
        prompt="a lighthouse in a storm",
        estimate_micros=CLIP,
    )


async def rates(path: Path, url: str, sizes: list[int]) -> list[float]:
    db = open_database(path=path, url=url)
    await db.open()
    try:
        ledger = SpendLedger(
            db,
            member_defaults={Period.DAY: LOTS, Period.MONTH: LOTS},
            server_defaults={Period.DAY: LOTS, Period.MONTH: LOTS},
        )
        now = datetime.now(UTC)
        out: list[float] = []
        n = 0
        for size in sizes:
            while n < size - MEASURED:  # the history, every job in this month and today
                await ledger.reserve(new_job(n), role_ids=(), concurrency_cap=None, now=now)
                n += 1
            began = time.perf_counter()
            for _ in range(MEASURED):
                await ledger.reserve(new_job(n), role_ids=(), concurrency_cap=1_000_000, now=now)
                n += 1
            out.append(MEASURED / (time.perf_counter() - began))
        return out
    finally:
        await db.close()


async def run(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="reserve-history-") as tmp:
            server = None
            url = ""
            if backend == "postgres":
                from tests.pg import PostgresServer  # the same server helper the tests use

                server = PostgresServer.start()
                url = server.create_database()
            try:
                found = await rates(Path(tmp) / "bot.sqlite3", url, sizes)
            finally:
                if server is not None:
                    server.stop()
        figures = ", ".join(f"{rate:.0f}/s at {size:,} rows" for size, rate in zip(sizes, found, strict=True))
        change = (found[-1] / found[0] - 1) * 100
        print(f"[{backend}] member reservations: {figures} ({change:+.0f} %)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sizes", default="1000,10000")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
