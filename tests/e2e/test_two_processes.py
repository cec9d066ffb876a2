"""Two real bot processes on one PostgreSQL database, each running one of the loopback Discord's two shards (SPEC §10).

Process A runs shard 0 (the standard world's guild 1000), process B shard 1 (a second guild). Runware's webhooks for
A's jobs are addressed to B's listener, as a load balancer in front of both may do. A is SIGKILLed right after Runware
acknowledged its second job (HAILUO_CRASH_AT=after_submit, HAILUO_CRASH_SKIP=1): B takes the webhook of that job,
and when A's leases lapse it takes over A's jobs: nothing is submitted or posted twice and the ledger settles once.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.core.crashpoints import SKIP_ENV
from bot.simulator.server import RunwareSimulator
from tests.e2e.crash_runner import SIM_KEY, WEBHOOK_SECRET, BotProcess, free_port, write_config
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.models import FakeChannel, FakeMember
from tests.fakes.discord.world import DiscordWorld

SHARD_ONE_GUILD = (1 << 22) + 1000  # (id >> 22) % 2 == 1; guild 1000 is on shard 0
CLIP_COST_MICROS = 280_000  # the simulator's cost for one 768p, 6 s clip
LEASE_SECONDS = 3.0
MESSAGES = "/channels/{channel_id}/messages"


@pytest.fixture
async def sim() -> AsyncIterator[RunwareSimulator]:
    """Tasks finish only when the test says so; webhooks are retried quickly."""
    async with RunwareSimulator(api_key=SIM_KEY, auto_complete=False, webhook_retry_delays=(0.05, 0.2)) as s:
        yield s


class Pair:
    """The two bot processes and what they share."""

    def __init__(self, tmp_path: Path, fake: FakeDiscord, sim: RunwareSimulator, pg_url: str) -> None:
        self.port_a, self.port_b = free_port(), free_port()
        env = {"DISCORD_TOKEN": fake.token, "RUNWARE_API_KEY": SIM_KEY, "WEBHOOK_SECRET": WEBHOOK_SECRET}
        env["DATABASE_URL"] = pg_url
        self.a = BotProcess(self._config(tmp_path, "a", fake, sim, 0, self.port_a), tmp_path / "a.log", env)
        self.b = BotProcess(self._config(tmp_path, "b", fake, sim, 1, self.port_b), tmp_path / "b.log", env)

    def _config(self, tmp: Path, name: str, fake: FakeDiscord, sim: RunwareSimulator, shard: int, port: int) -> Path:
        folder = tmp / name
        folder.mkdir()
        return write_config(
            folder / "config.toml",
            {
                "discord": {
                    "api_base": fake.api_base,
                    "dev_guild_ids": [1000, SHARD_ONE_GUILD],
                    "shard_count": 2,
                    "shard_ids": [shard],
                },
                "runware": {"api_base": sim.base_url, "poll_interval": 0.5, "request_timeout": 5},
                # Every webhook goes to B's listener: behind one public URL, any process may receive any webhook.
                "webhook": {"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{self.port_b}"},
                "database": {"path": str(folder / "unused.sqlite3"), "lease_seconds": LEASE_SECONDS},
                "delivery": {"status_edit_interval": 0, "download_timeout": 10},
            },
        )

    def logs(self) -> str:
        return f"A:\n{self.a.log_tail(40)}\nB:\n{self.b.log_tail(40)}"


@pytest.fixture
async def pair(tmp_path: Path, fake_discord: FakeDiscord, sim: RunwareSimulator, pg_url: str) -> AsyncIterator[Pair]:
    fake_discord.shard_count = 2
    guild = fake_discord.add_guild(SHARD_ONE_GUILD, "Second Server")
    fake_discord.add_channel(guild, "general")
    fake_discord.add_member(guild, "carol")
    p = Pair(tmp_path, fake_discord, sim, pg_url)
    try:
        yield p
    finally:
        await p.a.kill()
        await p.b.kill()


async def rows(pg_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(pg_url, timeout=10)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


JOBS_WITH_LEASES = "SELECT jobs.*, l.owner AS holder FROM jobs JOIN job_leases l ON l.job_id = jobs.id ORDER BY id"


def owner_pid(owner: str | None) -> int | None:
    """The pid in an owner id (host-pid-random)."""
    return None if owner is None else int(owner.rsplit("-", 2)[1])


def clips(fake: FakeDiscord, channel: FakeChannel, job_id: int) -> list[Any]:
    return [m for m in fake.channel_messages(channel) if f"hailuo:delete:{job_id}" in m.custom_ids()]


async def wait_job(pg_url: str, bot: BotProcess, n: int, state: str, what: str) -> asyncpg.Record:
    """Look at the database until job number n is in `state` (bounded); fail at once if the bot process ends."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    found: list[asyncpg.Record] = []
    while loop.time() < deadline and bot.returncode is None:
        found = await rows(pg_url, JOBS_WITH_LEASES)
        if len(found) >= n and found[n - 1]["state"] == state:
            return found[n - 1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {n} never reached {state} ({what}): {[dict(r) for r in found]}\n{bot.log_tail()}")


async def test_two_processes_on_postgresql_each_serve_their_shard_and_take_over_a_dead_ones_jobs(
    pair: Pair, fake_discord: FakeDiscord, discord_world: DiscordWorld, sim: RunwareSimulator, pg_url: str
) -> None:
    fake, w = fake_discord, discord_world
    second = fake.guilds[SHARD_ONE_GUILD]
    carol = next(m for m in second.members.values() if m.user.username == "carol")
    assert isinstance(carol, FakeMember)
    second_channel = next(iter(second.channels.values()))

    await pair.b.start()
    await pair.a.start(crash_at="after_submit", env={SKIP_ENV: "1"})  # dies at its second job's acknowledgement
    await pair.b.wait_for(
        fake,
        lambda: fake.live_shards() == {(0, 2), (1, 2)} and bool(fake.commands.get(SHARD_ONE_GUILD)),
        40,
        "both processes to connect their shard",
    )
    assert pair.a.proc is not None and pair.b.proc is not None
    pid_a, pid_b = pair.a.proc.pid, pair.b.proc.pid

    # A /video in a guild of each shard is served by its own process.
    h1 = await fake.send_command("video", {"prompt": "first job on shard zero"}, user=w.member, guild=w.guild)
    job1 = await wait_job(pg_url, pair.a, 1, "submitted", "A's first job")
    assert owner_pid(job1["holder"]) == pid_a
    hb = await fake.send_command(
        "video", {"prompt": "a job on shard one"}, user=carol, guild=second, channel=second_channel
    )
    job_b = await wait_job(pg_url, pair.b, 2, "submitted", "B's job")
    assert owner_pid(job_b["holder"]) == pid_b
    await h1.wait_deferred()
    await hb.wait_deferred()

    # A's second job: Runware acknowledges it, and A is killed before it records that.
    await fake.send_command("video", {"prompt": "second job on shard zero"}, user=w.member, guild=w.guild)
    code = await pair.a.wait_exit(30)
    assert code == -signal.SIGKILL, f"A should have died at after_submit, got {code}\n{pair.logs()}"
    job2 = (await rows(pg_url, JOBS_WITH_LEASES))[2]
    assert job2["state"] == "reserved" and owner_pid(job2["holder"]) == pid_a
    assert sim.submit_count(job2["task_uuid"]) == 1

    # Runware finishes everything. Job 2's webhook reaches B; job 1's webhook is lost, so only a poll finds it,
    # and B may poll it only once A's lease has lapsed.
    sim.finish(job2["task_uuid"])
    sim.faults.drop_webhooks = True
    sim.finish(job1["task_uuid"])
    sim.faults.drop_webhooks = False
    sim.finish(job_b["task_uuid"])

    channel_a = w.channel
    await pair.b.wait_for(
        fake,
        lambda: (
            all(clips(fake, channel_a, j["id"]) for j in (job1, job2))
            and bool(clips(fake, second_channel, job_b["id"]))
        ),
        60,
        "every clip to be posted",
    )
    assert await pair.b.terminate() == 0, pair.b.log_tail()

    # One submit per job, one post per clip (one upload request each), the ledger settled once.
    assert sim.submit_count() == 3, pair.logs()
    for job, channel in ((job1, channel_a), (job2, channel_a), (job_b, second_channel)):
        assert sim.submit_count(job["task_uuid"]) == 1
        [clip] = clips(fake, channel, job["id"])
        assert clip.attachments[0].data[4:8] == b"ftyp"
    uploads = [r for r in fake.requests_to("POST", MESSAGES) if r.files]
    assert len(uploads) == 3, [u.path for u in uploads]
    assert fake.violations == []
    [hook] = {a.url.split("/runware/")[0] for a in sim.webhook_attempts if job2["task_uuid"] in str(a.body)}
    assert hook == f"http://127.0.0.1:{pair.port_b}"  # the webhook of A's job went to B

    final = {r["id"]: r for r in await rows(pg_url, "SELECT * FROM jobs ORDER BY id")}
    results = await rows(pg_url, "SELECT * FROM results ORDER BY job_id")
    ledger = await rows(pg_url, "SELECT * FROM ledger ORDER BY job_id")
    assert [(r["state"], r["cost_micros"]) for r in final.values()] == [("succeeded", CLIP_COST_MICROS)] * 3
    assert [(r["job_id"], r["state"]) for r in results] == [(1, "delivered"), (2, "delivered"), (3, "delivered")]
    assert [(r["status"], r["charged_micros"]) for r in ledger] == [("settled", CLIP_COST_MICROS)] * 3
    # The dead process's jobs were finished by the survivor: it polled job 1 and recovered job 2 under its leases
    # (released again by its clean stop), and posted both clips.
    logged = pair.b.log_path.read_text(encoding="utf-8", errors="replace")
    assert f"job={job2['id']} task={job2['task_uuid']} was already at Runware" in logged, pair.logs()
    for r in results:
        assert r["message_id"] is not None
