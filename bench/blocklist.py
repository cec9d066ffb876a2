"""What the blocklist and the price book add to every /video plan. Prints figures, asserts nothing.

    python bench/blocklist.py [--phrases 200] [--rounds 2000]

- compiling one server's matcher of --phrases phrases (done once per change, not per prompt),
- matching a 2,000-character prompt that holds no listed phrase (the common case, the whole text scanned),
- one guarded check on a real SQLite file: the version read plus the cached match (what plan() pays per prompt),
- one PriceBook estimate on a real SQLite file holding 5,000 settled jobs (the last-20 query plus the median).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import string
import tempfile
import time
from pathlib import Path

from bot.core.blocklist import Blocklist, BlocklistGuard
from bot.core.pricing import PriceBook
from bot.store.blocklist import BlocklistStore
from bot.store.figures import SpendFigures
from bot.store.sqlite.db import Database

GUILD = 1000


def words(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(n)]


def per_call(seconds: float, rounds: int) -> str:
    return f"{seconds / rounds * 1e6:8.1f} µs"


async def main(phrases: int, rounds: int) -> None:
    rng = random.Random(7)
    listed = [" ".join(words(rng, rng.randint(1, 3))) for _ in range(phrases)]
    prompt = " ".join(words(rng, 400))[:2000]

    t = time.perf_counter()
    for _ in range(20):
        matcher = Blocklist.compile(listed)
    print(f"compile {phrases} phrases:          {per_call(time.perf_counter() - t, 20)}")
    t = time.perf_counter()
    for _ in range(rounds):
        matcher.find(prompt)
    print(f"match a {len(prompt)}-character prompt: {per_call(time.perf_counter() - t, rounds)}")

    with tempfile.TemporaryDirectory() as folder:
        async with Database(Path(folder) / "bench.sqlite3") as db:
            store = BlocklistStore(db, cap=phrases)
            for phrase in listed:
                await store.add(GUILD, 1, phrase)
            guard = BlocklistGuard(store)
            await guard.check(GUILD, prompt)
            t = time.perf_counter()
            for _ in range(rounds):
                await guard.check(GUILD, prompt)
            print(
                f"guarded check (SQLite):          {per_call(time.perf_counter() - t, rounds)}"
                f"  (matchers compiled: {guard.compiled})"
            )

            await db.executemany(
                "INSERT INTO jobs (task_uuid, guild_id, channel_id, budget_channel_id, user_id, payer, prompt, "
                "resolution, duration, variations, state, estimate_micros, cost_micros, created_at, updated_at) "
                "VALUES (?, 1, 1, 1, 1, 'member', 'p', '768p', 6, 1, 'succeeded', 280000, ?, 't', 't')",
                [(f"task-{n}", 280_000 + n % 50_000) for n in range(5000)],
            )
            await db.executemany(
                "INSERT INTO results (job_id, video_uuid, video_url, created_at) VALUES (?, ?, 'u', 't')",
                [(n + 1, f"v{n}") for n in range(5000)],
            )
            book = PriceBook({"768p-6": 280_000}, SpendFigures(db).clip_costs)
            t = time.perf_counter()
            for _ in range(rounds // 10):
                await book.estimate("768p", 6, 1)
            print(f"price book estimate (SQLite):    {per_call(time.perf_counter() - t, rounds // 10)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phrases", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.phrases, args.rounds))
