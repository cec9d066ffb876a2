"""One OS process of the cross-process reservation test: N concurrent reservations on a database, then a count.

    python -m tests.e2e.reserve_runner URL N START_FILE

Opens the store as the bot does, waits until START_FILE exists (so both processes start together), makes N
reservations at once (each $0.10 for member 7 of guild 1, whose daily limit is $1.00) and prints
`reserved=<k> refused=<m>`.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

from bot.core.errors import OverLimit
from bot.core.models import Period, utc_now
from bot.store.interface import open_database
from bot.store.jobs import NewJob
from bot.store.ledger import SpendLedger
from tests.helpers import new_job as shared_new_job

ESTIMATE_MICROS = 100_000
DAY_LIMIT_MICROS = 1_000_000  # fits exactly 10


def new_job() -> NewJob:
    return shared_new_job(
        task_uuid=str(uuid.uuid4()),
        guild_id=1,
        channel_id=20,
        budget_channel_id=20,
        user_id=7,
        prompt="one of many at once",
        estimate_micros=ESTIMATE_MICROS,
    )


async def main(url: str, n: int, start: Path) -> None:
    db = open_database(path=Path("unused.sqlite3"), url=url)
    await db.open()
    try:
        ledger = SpendLedger(db, member_defaults={Period.DAY: DAY_LIMIT_MICROS}, server_defaults={})
        while not start.exists():
            await asyncio.sleep(0.01)

        async def one() -> bool:
            try:
                await ledger.reserve(new_job(), role_ids=(), concurrency_cap=None, now=utc_now())
            except OverLimit:
                return False
            return True

        outcomes = await asyncio.gather(*(one() for _ in range(n)))
    finally:
        await db.close()
    print(f"reserved={sum(outcomes)} refused={n - sum(outcomes)}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])))
