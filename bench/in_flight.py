"""Jobs in flight: 10,000 unfinished jobs at Runware, and what they cost the bot. Prints figures, asserts nothing.

    python bench/in_flight.py [--jobs 10000] [--db sqlite|postgres|both] [--processes 1|2|both]

For each backend (and for one process, then two processes sharing the database): jobs are created through the real
service (plan → reserve → submit) against the Runware simulator, which runs in its own process and keeps every task
"processing"; then it prints
- the rate of new jobs (jobs/s) over the first 1,000 and over the last 1,000 (history grows from 0 to --jobs),
- resident memory of the bot's process with every job in flight,
- one poll sweep: wall time and getResponse requests (with two processes: both sweeping at once, and the requests
  in all — each job must be polled once per sweep in all, not once per process),
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the simulator, in a process of its own (so its memory is not the bot's) ----------------------------------------


async def serve_simulator(port: int, count_port: int) -> None:
    async with RunwareSimulator(api_key=SIM_KEY, port=port, auto_complete=False) as sim:

        async def counts(_: web.Request) -> web.Response:
            return web.json_response({t: sim.count(t) for t in ("getResponse", "videoInference")})

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
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            await engine.service.create(VideoOptions(prompt=f"bench clip number {i}"), OPERATOR, operator=True)

    began = time.perf_counter()
    await asyncio.gather(*(one(start + i) for i in range(n)))
    return n / (time.perf_counter() - began)


async def one_process(db: str, base_url: str, counts_url: str, jobs: int) -> dict[str, float]:
    out: dict[str, float] = {}
    engine = Engine(settings(db, base_url), serve_webhooks=False)
    await engine.start(NullSink())
    try:
        rates = [await create_jobs(engine, i, min(CHUNK, jobs - i)) for i in range(0, jobs, CHUNK)]
        out["rate_first"], out["rate_last"] = rates[0], rates[-1]
        out["rss_mb"] = rss_mb()
        before = (await sim_counts(counts_url))["getResponse"]
        began = time.perf_counter()
        await engine.tracker.sweep_once()
        out["sweep_s"] = time.perf_counter() - began
        out["sweep_requests"] = (await sim_counts(counts_url))["getResponse"] - before
        out["rss_after_sweep_mb"] = rss_mb()
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
    """`--sweep-child`: one more process on the same database; sweeps once when told, prints its figures."""
    engine = Engine(settings(db, base_url), serve_webhooks=False)
    await engine.start(NullSink())
    try:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        began = time.perf_counter()
        await engine.tracker.sweep_once()
        print(json.dumps({"sweep_s": time.perf_counter() - began, "rss_mb": rss_mb()}), flush=True)
    finally:
        await engine.close()


async def two_processes(db: str, base_url: str, counts_url: str) -> dict[str, float]:
    """Both processes sweep at the same moment over the jobs already in flight."""
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
    try:
        before = (await sim_counts(counts_url))["getResponse"]
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        began = time.perf_counter()
        await engine.tracker.sweep_once()
        mine = time.perf_counter() - began
        theirs = json.loads(await child.stdout.readline())
        await child.wait()
        requests = (await sim_counts(counts_url))["getResponse"] - before
    finally:
        await engine.close()
    return {"sweep_s": max(mine, theirs["sweep_s"]), "sweep_requests": requests}


def report_one(backend: str, one: dict[str, float]) -> None:
    change = (one["rate_last"] / one["rate_first"] - 1) * 100
    print(f"[{backend}] one process")
    print(
        f"  new jobs: {one['rate_first']:.0f} jobs/s over the first {CHUNK}, "
        f"{one['rate_last']:.0f} jobs/s over the last {CHUNK} ({change:+.0f} %)"
    )
    print(f"  resident memory: {one['rss_mb']:.0f} MB in flight, {one['rss_after_sweep_mb']:.0f} MB after a sweep")
    print(f"  one sweep: {one['sweep_s'] * 1000:.0f} ms, {one['sweep_requests']:.0f} getResponse requests")
    print(f"  resume after a restart (start + recovery + first sweep): {one['resume_s']:.2f} s")


async def run(args: argparse.Namespace) -> None:
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(f"{args.jobs} jobs in flight (Runware simulator in its own process, every task kept 'processing')\n")
    async with simulator_process() as (base_url, counts_url):
        for backend in backends:
            with tempfile.TemporaryDirectory(prefix="in-flight-") as tmp:
                if backend == "sqlite":
                    db = str(Path(tmp) / "bot.sqlite3")
                    server = None
                else:
                    from tests.pg import PostgresServer  # the same server helper the tests use

                    server = PostgresServer.start()
                    db = server.create_database()
                try:
                    one = await one_process(db, base_url, counts_url, args.jobs)
                    report_one(backend, one)
                    if args.processes in ("2", "both"):
                        two = await two_processes(db, base_url, counts_url)
                        print(f"[{backend}] two processes sweeping at once")
                        print(
                            f"  one sweep: {two['sweep_s'] * 1000:.0f} ms (the slower of the two), "
                            f"{two['sweep_requests']:.0f} getResponse requests in all"
                        )
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
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
