"""Poll sweep benchmark: prints figures, asserts nothing.

N = 10, 100, 1,000 jobs in flight at the Runware simulator (loopback HTTP, tasks kept "processing"); for each N,
the real Engine's JobTracker.sweep_once() with getResponse batched (runware.poll_batch_size = 50, the default)
and with one request per task (poll_batch_size = 1), side by side: the Runware requests one sweep sends and its
wall time. Target for the batched sweep: ceil(N / 50) requests.

Jobs are created through the real service (plan, reserve, submit) as operator jobs, which no member, role or
channel limit touches, each N on a fresh database: a SQLite file and a PostgreSQL database (tests/pg.py starts a
server; it runs with fsync off), one row per backend.

Run: python bench/poll_sweep.py [--sizes 10,100,1000] [--sweeps 5] [--latency-ms 0] [--db sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.engine import Engine
from bot.core.plans import Requester, VideoOptions
from bot.core.sink import NullSink
from bot.settings import Settings
from bot.simulator.server import RunwareSimulator
from tests.pg import PostgresServer

SIM_KEY = "sim-key"
OPERATOR = Requester(guild_id=0, channel_id=0, user_id=0)
BATCHED = 50
CREATE_CONCURRENCY = 50


def settings(db: Path | str, sim: RunwareSimulator, batch: int) -> Settings:
    return Settings(
        runware={
            "api_base": sim.base_url,
            "api_key": SIM_KEY,
            "poll_interval": 3600,  # no background loop: sweeps are run here, one at a time
            "poll_batch_size": batch,
            "max_wait": 86_400,
            "request_timeout": 60,
        },
        webhook={"listen": "127.0.0.1:0"},
        database={"url": db} if isinstance(db, str) else {"path": str(db)},
    )


async def create_jobs(engine: Engine, n: int) -> None:
    """n jobs through plan → reserve → submit, a few at a time."""
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            await engine.service.create(VideoOptions(prompt=f"bench clip number {i}"), OPERATOR, operator=True)

    await asyncio.gather(*(one(i) for i in range(n)))


async def measure(
    sim: RunwareSimulator, db: Path | str, n: int, batch: int, sweeps: int
) -> tuple[list[int], list[float]]:
    """Requests and wall time (s) of each of `sweeps` sweeps over n jobs in flight, with this batch size."""
    engine = Engine(settings(db, sim, batch), serve_webhooks=False)
    await engine.start(NullSink())
    try:
        await create_jobs(engine, n)
        requests: list[int] = []
        times: list[float] = []
        for _ in range(sweeps):
            before = sim.count("getResponse")
            started = time.perf_counter()
            await engine.tracker.sweep_once()
            times.append(time.perf_counter() - started)
            requests.append(sim.count("getResponse") - before)
        return requests, times
    finally:
        await engine.close()


def fmt_requests(values: list[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else f"{min(values)}-{max(values)}"


async def main(sizes: list[int], sweeps: int, latency_ms: float, backends: list[str], server: Any) -> None:
    print(f"poll sweep: jobs in flight at the Runware simulator on loopback (+{latency_ms:g} ms per request)")
    print(f"per sweep: getResponse requests sent, and wall time (median and min of {sweeps} sweeps)\n")
    head = (
        f"{'N':>6} {'db':>8} {'target':>7} | {'batched (50/request)':^30} | {'one request per task':^30} | "
        f"{'speed-up':>8}"
    )
    print(head)
    print(
        f"{'':>6} {'':>8} {'':>7} | {'requests':>9} {'median ms':>10} {'min ms':>9} | "
        f"{'requests':>9} {'median ms':>10} {'min ms':>9} |"
    )
    print("-" * len(head))
    with tempfile.TemporaryDirectory(prefix="poll-sweep-") as tmp:
        async with RunwareSimulator(api_key=SIM_KEY, auto_complete=False) as sim:
            sim.faults.latency = latency_ms / 1000
            for n in sizes:
                for backend in backends:
                    rows = []
                    for batch in (BATCHED, 1):
                        if backend == "sqlite":
                            db: Path | str = Path(tmp) / f"n{n}-b{batch}.sqlite3"
                        else:
                            db = server.create_database("sweep")
                        rows.append(await measure(sim, db, n, batch, sweeps))
                    cells = []
                    medians = []
                    for requests, times in rows:
                        med = statistics.median(times) * 1000
                        medians.append(med)
                        cells.append(f"{fmt_requests(requests):>9} {med:>10.1f} {min(times) * 1000:>9.1f}")
                    target = math.ceil(n / BATCHED)
                    print(
                        f"{n:>6} {backend:>8} {target:>7} | {cells[0]} | {cells[1]} | {medians[1] / medians[0]:>7.1f}x",
                        flush=True,
                    )


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000", help="comma-separated job counts (default 10,100,1000)")
    parser.add_argument("--sweeps", type=int, default=5, help="sweeps measured per configuration (default 5)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every simulator answer (default 0)")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both", help="backend(s) to measure")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse()
    chosen = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(PostgresServer.start()) if "postgres" in chosen else None
        asyncio.run(main([int(s) for s in args.sizes.split(",")], args.sweeps, args.latency_ms, chosen, pg))
