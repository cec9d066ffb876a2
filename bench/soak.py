"""Soak: hundreds of /video jobs through the REAL bot process, with random faults on both sides and kill -9 restarts.

    python bench/soak.py [--jobs 300] [--seed 7] [--kills 2]

The loopback Discord (tests/fakes/discord) and the Runware simulator (bot/simulator) live in this process; the bot is
`python -m bot --config …` in a child process, on one SQLite file. While members send /video (with variations and
frame images), a fault loop injects: Runware 5xx, hung and dropped requests, requests accepted then hung, duplicate,
late and lost webhooks, result items with an impossible cost (for a while); Discord 429 (route and global) and 5xx on
posts and edits, gateway drops (RESUME) and invalidated sessions (re-IDENTIFY); and the bot is SIGKILLed `--kills`
times and started again. At the end every job must be finished, every clip posted exactly once, and the ledger equal
to what Runware reported. It prints:

    jobs lost, clips posted twice, clips missing, ledger difference (all must be 0), webhook-to-post latency p50/p99

Nothing asserts: the figures are printed (exit code 1 when one of the four must-be-zero figures is not zero).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.simulator.server import RunwareSimulator
from tests.e2e.crash_runner import SIM_KEY, WEBHOOK_SECRET, BotProcess, free_port, write_config
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.connect import restore_public_discord
from tests.fakes.discord.models import FakeChannel, FakeMember
from tests.fakes.discord.world import build_world
from tests.fakes.images import image_bytes

MESSAGES = "/channels/{channel_id}/messages"
MESSAGE = "/channels/{channel_id}/messages/{message_id}"
TERMINAL = ("succeeded", "failed", "expired", "cancelled")
JOB_ACK = re.compile(r"Job #(\d+)")


@dataclass
class Soak:
    args: argparse.Namespace
    rng: random.Random
    fake: FakeDiscord
    sim: RunwareSimulator
    bot: BotProcess
    db_path: Path
    members: list[FakeMember]
    channels: list[FakeChannel]
    acked: set[int] = field(default_factory=set)
    unanswered: int = 0  # commands sent while the bot was down or dying: Discord says "interaction failed"
    refused: int = 0  # answered with a refusal (e.g. the bot shutting down): nothing was charged
    faults: Counter[str] = field(default_factory=Counter)
    first_webhook_at: dict[str, float] = field(default_factory=dict)
    stop_faults: asyncio.Event = field(default_factory=asyncio.Event)

    # -- members --------------------------------------------------------------------------------------------------

    async def one_job(self, i: int) -> None:
        opts: dict[str, Any] = {
            "prompt": f"soak {i}: a lantern drifting over a night lake, slow dolly",
            "variations": self.rng.choice([1, 1, 1, 2, 3]),
        }
        if self.rng.random() < 0.25:
            shade = self.rng.randrange(256)
            opts["first_frame"] = self.fake.add_attachment(f"f{i}.png", image_bytes(320, 320, color=(shade, 90, 200)))
        member, channel = self.rng.choice(self.members), self.rng.choice(self.channels)
        try:
            handle = await self.fake.send_command("video", opts, user=member, guild=member.guild_id, channel=channel)
            await handle.wait_deferred(timeout=10)
            [ack, *_] = await handle.wait_followups(1, timeout=60)
        except (TimeoutError, AssertionError, LookupError, ConnectionError):
            # Sent as the gateway was closing (a drop or a kill): Discord would say the interaction failed.
            self.unanswered += 1
            return
        match = JOB_ACK.search(ack.content or "")
        if match and "on its way" in (ack.content or ""):
            self.acked.add(int(match.group(1)))
        else:
            self.refused += 1

    async def members_ask(self) -> None:
        pending: set[asyncio.Task[None]] = set()
        kills_at = {round(self.args.jobs * (k + 1) / (self.args.kills + 1)) for k in range(self.args.kills)}
        for i in range(self.args.jobs):
            if i in kills_at:
                await self.kill_and_restart()
            await self.fake.wait_until(lambda: self.fake.connected, 60, "the bot to be connected")
            pending.add(asyncio.create_task(self.one_job(i)))
            pending = {t for t in pending if not t.done()}
            await asyncio.sleep(self.rng.uniform(0.0, 2.0 / self.args.rate))
        await asyncio.gather(*pending)

    async def kill_and_restart(self) -> None:
        await asyncio.sleep(self.rng.uniform(0.0, 1.0))
        await self.bot.kill()
        self.faults["kill -9"] += 1
        identified = self.fake.identify_count
        await self.bot.start()
        await self.bot.wait_for(
            self.fake, lambda: self.fake.identify_count > identified and self.fake.connected, 60, "the restart"
        )

    # -- faults ---------------------------------------------------------------------------------------------------

    async def inject_faults(self) -> None:
        sim, fake, rng = self.sim, self.fake, self.rng
        while not self.stop_faults.is_set():
            await asyncio.sleep(rng.uniform(0.2, 0.8))
            roll = rng.random()
            if roll < 0.10:
                sim.faults.http_error_next(rng.choice([500, 502, 503]), task_type=rng.choice(["getResponse", None]))
                self.faults["runware 5xx"] += 1
            elif roll < 0.15:
                sim.faults.hang_next(1, seconds=self.args.request_timeout + 1, task_type="getResponse")
                self.faults["runware timeout"] += 1
            elif roll < 0.18:
                sim.faults.accept_then_hang_next(1, seconds=self.args.request_timeout + 1, task_type="videoInference")
                self.faults["runware accepted then timed out"] += 1
            elif roll < 0.21:
                sim.faults.drop_connection_next(1, accept=rng.random() < 0.5, task_type="videoInference")
                self.faults["runware dropped connection"] += 1
            elif roll < 0.30:
                sim.faults.duplicate_webhooks = rng.choice([1, 2, 3])
                sim.faults.webhook_delay = rng.choice([0.0, 0.0, 1.5])
                sim.faults.drop_webhooks = rng.random() < 0.3
                self.faults["webhook mode change (duplicate/late/lost)"] += 1
            elif roll < 0.33:
                self.bad_answers_for_a_while()
            elif roll < 0.44:
                status = rng.choice([429, 429, 500, 502, 503])
                fake.faults.add(
                    method="POST", template=MESSAGES, status=status, retry_after=0.3, global_=rng.random() < 0.3
                )
                self.faults[f"discord {status} on a post"] += 1
            elif roll < 0.48:
                status = rng.choice([500, 503])
                fake.faults.add(method="POST", template=MESSAGES, status=status, apply=True)
                self.faults[f"discord {status} on a post it made anyway"] += 1
            elif roll < 0.58:
                status = rng.choice([429, 500, 503])
                fake.faults.add(method="PATCH", template=MESSAGE, status=status, retry_after=0.3)
                self.faults[f"discord {status} on an edit"] += 1
            elif roll < 0.60:
                await fake.disconnect(4000)
                self.faults["gateway close 4000 (resume)"] += 1
            elif roll < 0.62:
                fake.drop()
                self.faults["gateway socket dropped (resume)"] += 1
            elif roll < 0.64:
                await fake.invalidate_session()
                self.faults["gateway invalid session (re-identify)"] += 1

    def bad_answers_for_a_while(self) -> None:
        """An unfinished task's items carry an impossible cost for 2 s (webhooks and polls alike), then a good one."""
        open_tasks = [uuid for uuid, task in self.sim.tasks.items() if not task.finished]
        if not open_tasks:
            return
        uuid = self.rng.choice(open_tasks)
        self.sim.faults.costs_by_task[uuid] = self.rng.choice([-0.28, float("nan"), float("inf"), 1e30])
        asyncio.get_running_loop().call_later(2.0, self.sim.faults.costs_by_task.pop, uuid, None)
        self.faults["runware bad cost item (2 s)"] += 1

    async def watch_webhooks(self) -> None:
        seen = 0
        while True:
            attempts = self.sim.webhook_attempts
            for attempt in attempts[seen:]:
                uuid = str(attempt.body.get("data", [{}])[0].get("taskUUID", "")) if attempt.body.get("data") else ""
                if uuid:
                    self.first_webhook_at.setdefault(uuid, time.time())
            seen = len(attempts)
            await asyncio.sleep(0.02)

    # -- the end --------------------------------------------------------------------------------------------------

    def rows(self, sql: str) -> list[sqlite3.Row]:
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        try:
            conn.row_factory = sqlite3.Row
            return list(conn.execute(sql))
        finally:
            conn.close()

    def settled(self) -> bool:
        jobs = self.rows("SELECT state FROM jobs")
        open_results = self.rows("SELECT 1 FROM results WHERE state IN ('pending', 'delivering')")
        held = self.rows("SELECT 1 FROM ledger WHERE status = 'held'")
        return all(j["state"] in TERMINAL for j in jobs) and not open_results and not held


def reported_micros(sim: RunwareSimulator) -> dict[str, int]:
    """What Runware reported for each task: the sum of its successful items' costs, in micro-dollars."""
    out: dict[str, int] = {}
    for uuid, task in sim.tasks.items():
        price = sim.costs.get(task.task.size_key, 0.0)
        done = sum(1 for g in task.generations if g.status == "success")
        out[uuid] = round(price * 1_000_000) * done
    return out


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="hailuo-soak-"))
    fake = FakeDiscord()
    await fake.start()
    world = build_world(fake)
    members = [world.member, *(fake.add_member(world.guild, f"member{i}") for i in range(args.members - 1))]
    channels = [world.channel, fake.add_channel(world.guild, "brainstorm"), fake.add_channel(world.guild, "shots")]
    sim = RunwareSimulator(api_key=SIM_KEY, processing_seconds=args.processing, webhook_retry_delays=(0.2, 1.0, 3.0))
    await sim.start()
    port = free_port()
    db_path = tmp / "bot.sqlite3"
    config = write_config(
        tmp / "config.toml",
        {
            "discord": {"api_base": fake.api_base, "dev_guild_ids": [world.guild.id]},
            "runware": {"api_base": sim.base_url, "poll_interval": 1.0, "request_timeout": args.request_timeout},
            "webhook": {"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}"},
            "database": {"path": str(db_path)},
            "limits": {
                "member_day_usd": 10_000.0,
                "member_month_usd": 100_000.0,
                "server_month_usd": 1_000_000.0,
                "concurrent_per_member": 50,
                "variations_cap": 4,
            },
            "delivery": {"status_edit_interval": 1, "download_timeout": 20},
        },
    )
    env = {"DISCORD_TOKEN": fake.token, "RUNWARE_API_KEY": SIM_KEY, "WEBHOOK_SECRET": WEBHOOK_SECRET}
    bot = BotProcess(config, tmp / "bot.log", env)
    soak = Soak(args, rng, fake, sim, bot, db_path, members, channels)
    started = time.monotonic()
    watcher = asyncio.create_task(soak.watch_webhooks())
    try:
        await bot.start()
        await bot.wait_for(fake, lambda: bool(fake.commands.get(world.guild.id)) and fake.connected, 60, "start-up")
        faults = asyncio.create_task(soak.inject_faults())
        await soak.members_ask()
        soak.stop_faults.set()
        await faults
        sim.faults.drop_webhooks = False  # the last jobs still finish by polling either way; this only speeds it up
        deadline = time.monotonic() + args.settle_timeout
        while time.monotonic() < deadline and not soak.settled():
            await asyncio.sleep(0.5)
        code = await bot.terminate(60)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await bot.kill()
    elapsed = time.monotonic() - started

    jobs = soak.rows("SELECT * FROM jobs")
    results = soak.rows("SELECT * FROM results")
    ledger = {r["job_id"]: r for r in soak.rows("SELECT * FROM ledger")}
    by_job: dict[int, list[sqlite3.Row]] = {}
    for r in results:
        by_job.setdefault(r["job_id"], []).append(r)

    # Clips in Discord: every visible message carrying a job's Delete button, counted per clip file name.
    posted: Counter[str] = Counter()
    posted_at: dict[int, float] = {}
    for message in fake.messages.values():
        if message.deleted or message.ephemeral:
            continue
        for cid in message.custom_ids():
            if cid.startswith("hailuo:delete:"):
                job_id = int(cid.rsplit(":", 1)[1])
                for a in message.attachments:
                    posted[a.filename] += 1
                for n in re.findall(r"\*\*#(\d+)\*\*", message.content or "") if not message.attachments else []:
                    posted[f"hailuo-{job_id}-{n}.link"] += 1
                posted_at.setdefault(job_id, message.timestamp.timestamp())

    lost = [j["id"] for j in jobs if j["state"] not in TERMINAL]
    lost += [j for j in soak.acked if j not in {row["id"] for row in jobs}]
    twice = sum(n - 1 for n in posted.values() if n > 1)
    missing = 0
    for j in jobs:
        for r in by_job.get(j["id"], []):
            if r["state"] != "delivered" and r["state"] != "skipped":
                missing += 1
    reported = reported_micros(sim)
    ledger_diff = 0
    for j in jobs:
        row = ledger.get(j["id"])
        charged = 0 if row is None or row["status"] != "settled" else int(row["charged_micros"] or 0)
        ledger_diff += abs(charged - reported.get(j["task_uuid"], 0))
    latencies = sorted(
        posted_at[j["id"]] - soak.first_webhook_at[j["task_uuid"]]
        for j in jobs
        if j["id"] in posted_at and j["task_uuid"] in soak.first_webhook_at
    )
    states = Counter(j["state"] for j in jobs)
    print(f"soak: {args.jobs} /video commands in {elapsed:.0f} s (seed {args.seed}), bot log {tmp / 'bot.log'}")
    print(f"  answered 'on its way': {len(soak.acked)}, refused: {soak.refused}, unanswered: {soak.unanswered}")
    print(f"  jobs in the database: {len(jobs)} {dict(states)}; clips: {len(results)}; submits: {sim.submit_count()}")
    print("  faults injected: " + ", ".join(f"{k} ×{v}" for k, v in sorted(soak.faults.items())))
    print(f"  jobs lost: {len(lost)}")
    print(f"  clips posted twice: {twice}")
    print(f"  clips missing: {missing}")
    print(f"  ledger difference from Runware's reported costs: ${ledger_diff / 1_000_000:.6f}")
    if latencies:
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
        print(f"  webhook-to-post latency: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms ({len(latencies)} jobs)")
    print(f"  bot exit code after SIGTERM: {code}")
    await sim.close()
    await fake.close()
    restore_public_discord()
    return 0 if not lost and not twice and not missing and not ledger_diff else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--members", type=int, default=12)
    parser.add_argument("--rate", type=float, default=8.0, help="about this many /video per second")
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--processing", type=float, default=1.0, help="seconds Runware takes per task")
    parser.add_argument("--request-timeout", type=float, default=3.0)
    parser.add_argument("--settle-timeout", type=float, default=240.0)
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
