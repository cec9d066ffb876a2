"""Jobs in flight: 10,000 unfinished jobs at Runware, and what they cost the bot. Prints figures, asserts nothing.

    python bench/in_flight.py [--jobs 10000] [--db sqlite|postgres|both] [--processes 1|2|both] [--sweeps 5]
                              [--pairs 4]

For each backend (and for one process, then two processes sharing the database): jobs are created through the real
service (plan → reserve → submit) against the Runware simulator, which runs in its own process and keeps every task
"processing"; then it prints
- the rate of new jobs (jobs/s) for each 1,000 as the history grows from 0 to --jobs (with the CPU time the
  hypervisor took meanwhile, "steal", when there was any), and the rate at 1,000 jobs of history (jobs 1,001-2,000;
  the first 1,000 also warm the process up) against the last 1,000,
- the same comparison made robust to the machine's ups and downs: --pairs windows of 250 new jobs on each of two
  databases, one with 1,000 jobs of history and the big one, alternating (ABBA); medians (these add jobs in flight:
  the two-process sweeps then see --jobs + 1,000),
- resident memory of the bot's process with every job in flight,
- one poll sweep: wall time and getResponse requests; the first sweep, then the median of --sweeps more (with two
  processes, both starting on jobs nobody holds: the first sweep, which claims every job between them, then steady
  sweeps at the same moments, with the requests and tasks asked in all — each job must be polled once per sweep in
  all, not once per process),
- the time to resume after a restart (a new Engine on the same database, up to the end of its first sweep).

Targets (SPEC-side, issue 12): one sweep of 10,000 jobs < 0.5 s; the job rate flat within 20 % from 1,000 to
10,000 jobs of history; resident memory < 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import web

from bot.core.engine import Engine
from bot.core.service import Requester, VideoOptions
from bot.core.sink import NullSink
from bot.settings import Settings
from bot.simulator.server import RunwareSimulator

SIM_KEY = "sim-key"
OPERATOR = Requester(guild_id=0, channel_id=0, user_id=0)
CREATE_CONCURRENCY = 50
CHUNK = 1000
PAIR_WINDOW = 250


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_ticks() -> tuple[int, int]:
    """(steal, all) CPU ticks of the machine so far: time the hypervisor gave these cores to someone else."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the simulator, in a process of its own (so its memory is not the bot's) ----------------------------------------


async def serve_simulator(port: int, count_port: int) -> None:
    async with RunwareSimulator(api_key=SIM_KEY, port=port, auto_complete=False) as sim:

        async def counts(_: web.Request) -> web.Response:
            counts = {t: sim.count(t) for t in ("getResponse", "videoInference")}
            asked = sum(1 for r in sim.requests for t in r.tasks if t.get("taskType") == "getResponse")
            return web.json_response({**counts, "getResponseTasks": asked})

        app = web.Application()
        app.router.add_get("/counts", counts)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", count_port).start()
        print("ready", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


@asynccontextmanager
async def simulator_process() -> AsyncIterator[tuple[str, str]]:
    port, count_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-simulator", str(port), str(count_port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    await asyncio.to_thread(proc.stdout.readline)
    try:
        yield f"http://127.0.0.1:{port}/v1", f"http://127.0.0.1:{count_port}/counts"
    finally:
        proc.terminate()
        proc.wait(10)


async def sim_counts(url: str) -> dict[str, int]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        data: dict[str, int] = await resp.json()
        return data


# -- the bot side ---------------------------------------------------------------------------------------------------


def settings(db: str, base_url: str) -> Settings:
    database: dict[str, Any] = {"url": db} if db.startswith("postgres") else {"path": db}
    return Settings(
        runware={
            "api_base": base_url,
            "api_key": SIM_KEY,
            "poll_interval": 3600,  # no background loop: sweeps are run here
            "max_wait": 86_400,
            "request_timeout": 120,
        },
        webhook={"listen": "127.0.0.1:0"},
        database=database,
    )


async def create_jobs(engine: Engine, start: int, n: int) -> float:
    """n jobs through plan → reserve → submit; returns jobs per second."""
    rate, _ = await create_window(engine, start, n)
    return rate


async def create_window(engine: Engine, start: int, n: int) -> tuple[float, float]:
    """n jobs through plan → reserve → submit; returns (jobs per second, % of CPU time stolen meanwhile)."""
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            await engine.service.create(VideoOptions(prompt=f"bench clip number {i}"), OPERATOR, operator=True)

    steal0, all0 = cpu_ticks()
    began = time.perf_counter()
    await asyncio.gather(*(one(start + i) for i in range(n)))
    rate = n / (time.perf_counter() - began)
    steal1, all1 = cpu_ticks()
    return rate, 100 * (steal1 - steal0) / max(1, all1 - all0)


async def paired_rates(small: Engine, big: Engine, start: int, pairs: int) -> tuple[list[float], list[float]]:
    """New jobs/s on a database with little history and on one with a lot, in alternating windows of PAIR_WINDOW
    jobs: the machine's own ups and downs (other tenants, CPU steal) then touch both alike."""
    on_small: list[float] = []
    on_big: list[float] = []
    for k in range(pairs):
        first, second = (small, big) if k % 2 == 0 else (big, small)  # ABBA: neither always goes first
        for engine in (first, second):
            rate, _ = await create_window(engine, start, PAIR_WINDOW)
            start += PAIR_WINDOW
            (on_small if engine is small else on_big).append(rate)
    return on_small, on_big


async def timed_sweep(engine: Engine) -> float:
    began = time.perf_counter()
    await engine.tracker.sweep_once()
    return time.perf_counter() - began


async def one_process(
    db: str, small_db: str, base_url: str, counts_url: str, jobs: int, sweeps: int, pairs: int
) -> dict[str, Any]:
    out: dict[str, Any] = {"jobs": jobs}
    engine = Engine(settings(db, base_url), serve_webhooks=False)
    await engine.start(NullSink())
    try:
        windows = [await create_window(engine, i, min(CHUNK, jobs - i)) for i in range(0, jobs, CHUNK)]
        out["windows"] = windows
        out["rate_first"], out["rate_last"] = windows[min(1, len(windows) - 1)][0], windows[-1][0]
        out["rss_mb"] = rss_mb()
        before = (await sim_counts(counts_url))["getResponse"]
        out["sweep_s"] = await timed_sweep(engine)
        out["sweep_requests"] = (await sim_counts(counts_url))["getResponse"] - before
        out["sweep_median_s"] = statistics.median([await timed_sweep(engine) for _ in range(sweeps)])
        out["rss_after_sweep_mb"] = rss_mb()
        if pairs:
            small = Engine(settings(small_db, base_url), serve_webhooks=False)
            await small.start(NullSink())
            try:
                await create_jobs(small, 0, CHUNK)  # 1,000 jobs of history
                out["paired"] = await paired_rates(small, engine, jobs, pairs)
            finally:
                await small.close()
    finally:
        await engine.close()
    began = time.perf_counter()
    engine = Engine(settings(db, base_url), serve_webhooks=False)
    await engine.start(NullSink())
    try:
        await engine.recovery.recover_reserved(startup=True)
        await engine.tracker.sweep_once()
        out["resume_s"] = time.perf_counter() - began
    finally:
        await engine.close()
    return out


async def sweep_child(db: str, base_url: str) -> None:
    """`--sweep-child`: one more process on the same database; sweeps each time it reads a line, prints its figures."""
    engine = Engine(settings(db, base_url), serve_webhooks=False)
    await engine.start(NullSink())
    try:
        print("ready", flush=True)
        while (await asyncio.to_thread(sys.stdin.readline)).strip() == "go":
            took = await timed_sweep(engine)
            print(json.dumps({"sweep_s": took, "rss_mb": rss_mb()}), flush=True)
    finally:
        await engine.close()


async def two_processes(db: str, base_url: str, counts_url: str, sweeps: int) -> dict[str, Any]:
    """Two processes start on the jobs in flight (the first one's engine released its leases when it stopped) and
    sweep at the same moments: the first sweep claims every job between them, the next ones only poll."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--sweep-child",
        db,
        base_url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    await child.stdout.readline()
    engine = Engine(settings(db, base_url), serve_webhooks=False)
    await engine.start(NullSink())
    rounds: list[tuple[float, float, int, int]] = []  # (this process, the other, getResponse requests, tasks asked)
    try:
        for _ in range(1 + sweeps):
            before = await sim_counts(counts_url)
            child.stdin.write(b"go\n")
            await child.stdin.drain()
            mine = await timed_sweep(engine)
            theirs = json.loads(await child.stdout.readline())["sweep_s"]
            after = await sim_counts(counts_url)
            asked = after["getResponseTasks"] - before["getResponseTasks"]
            rounds.append((mine, theirs, after["getResponse"] - before["getResponse"], asked))
        child.stdin.write(b"stop\n")
        await child.stdin.drain()
        await child.wait()
    finally:
        await engine.close()
    return {"rounds": rounds}


def report_one(backend: str, one: dict[str, Any], sweeps: int) -> None:
    change = (one["rate_last"] / one["rate_first"] - 1) * 100
    print(f"[{backend}] one process")
    windows = " ".join(
        f"{rate:.0f}" + (f" (steal {steal:.0f} %)" if steal >= 1 else "") for rate, steal in one["windows"]
    )
    print(f"  new jobs/s, each {CHUNK} as the history grows: {windows}")
    print(
        f"  new jobs: {one['rate_first']:.0f} jobs/s at {CHUNK} jobs of history, "
        f"{one['rate_last']:.0f} jobs/s over the last {CHUNK} ({change:+.0f} %)"
    )
    if "paired" in one:
        small, big = (statistics.median(rates) for rates in one["paired"])
        print(
            f"  new jobs, alternating windows of {PAIR_WINDOW}: {small:.0f} jobs/s with {CHUNK} jobs of history, "
            f"{big:.0f} jobs/s with {one['jobs']:,} ({(big / small - 1) * 100:+.0f} %; medians of "
            f"{len(one['paired'][0])} windows each)"
        )
    print(f"  resident memory: {one['rss_mb']:.0f} MB in flight, {one['rss_after_sweep_mb']:.0f} MB after the sweeps")
    print(
        f"  one sweep: {one['sweep_s'] * 1000:.0f} ms the first, {one['sweep_median_s'] * 1000:.0f} ms the median of "
        f"{sweeps} more; {one['sweep_requests']:.0f} getResponse requests"
    )
    print(f"  resume after a restart (start + recovery + first sweep): {one['resume_s']:.2f} s")


def report_two(backend: str, two: dict[str, Any]) -> None:
    rounds = two["rounds"]
    first, steady = rounds[0], rounds[1:]
    print(f"[{backend}] two processes sweeping at once")
    print(
        f"  first sweep (claims every job between them): {max(first[:2]) * 1000:.0f} ms "
        f"({first[0] * 1000:.0f} / {first[1] * 1000:.0f} ms), {first[2]} getResponse requests in all asking about "
        f"{first[3]} tasks"
    )
    if steady:
        print(
            f"  the next {len(steady)}: median {statistics.median(max(r[:2]) for r in steady) * 1000:.0f} ms (the "
            f"slower of the two each time); per sweep, in all: {' '.join(f'{r[2]} req/{r[3]} tasks' for r in steady)}"
        )


async def run(args: argparse.Namespace) -> None:
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(f"{args.jobs} jobs in flight (Runware simulator in its own process, every task kept 'processing')\n")
    async with simulator_process() as (base_url, counts_url):
        for backend in backends:
            with tempfile.TemporaryDirectory(prefix="in-flight-") as tmp:
                if backend == "sqlite":
                    db, small_db = str(Path(tmp) / "bot.sqlite3"), str(Path(tmp) / "small.sqlite3")
                    server = None
                else:
                    from tests.pg import PostgresServer  # the same server helper the tests use

                    server = PostgresServer.start()
                    db, small_db = server.create_database(), server.create_database()
                try:
                    one = await one_process(db, small_db, base_url, counts_url, args.jobs, args.sweeps, args.pairs)
                    report_one(backend, one, args.sweeps)
                    if args.processes in ("2", "both"):
                        report_two(backend, await two_processes(db, base_url, counts_url, args.sweeps))
                finally:
                    if server is not None:
                        server.stop()
            print(flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-simulator":
        asyncio.run(serve_simulator(int(sys.argv[2]), int(sys.argv[3])))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--sweep-child":
        asyncio.run(sweep_child(sys.argv[2], sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--processes", choices=["1", "2", "both"], default="both")
    parser.add_argument("--sweeps", type=int, default=5, help="sweeps after the first, for the median")
    parser.add_argument("--pairs", type=int, default=4, help="alternating windows per database (0: none)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
