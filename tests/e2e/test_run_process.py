"""The README's run command in a real process: `DISCORD_TOKEN=... ./run.sh --dry-run` against the loopback Discord.

It starts, says it is ready, takes a /video in dry run, stops cleanly on SIGTERM with the job in flight, and the
next start resumes that job and posts its clip, with DRY RUN on every post. Its output never shows the token.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import BotFactory
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.world import DiscordWorld
from tests.helpers import free_port, metric_value

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0  # a guard against hangs only: the first start may check the virtualenv's requirements
NOISE = ("Task was destroyed", "Unclosed", "Exception ignored", "never awaited")

pytestmark = pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="run.sh is tested from a virtualenv")


class BotProcess:
    """`./run.sh --dry-run` as a child process, its output read line by line as it comes."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.lines: list[str] = []
        self._changed = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> BotProcess:
        self._proc = await asyncio.create_subprocess_exec(
            str(ROOT / "run.sh"),
            "--dry-run",
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group: a signal for it never reaches pytest
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for raw in self._proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_line(self, predicate: Callable[[str], bool], what: str) -> str:
        async with asyncio.timeout(START_TIMEOUT):
            while True:
                found = next((line for line in self.lines if predicate(line)), None)
                if found is not None:
                    return found
                if self._reader is not None and self._reader.done():
                    raise AssertionError(f"the bot exited before {what}:\n{self.output}")
                self._changed.clear()
                await self._changed.wait()

    async def terminate(self) -> int:
        """SIGTERM, then wait for the exit code (the timeout is a guard against a hang, not a speed check)."""
        assert self._proc is not None and self._reader is not None
        self._proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self._proc.wait(), 30)
        await self._reader
        return code

    async def kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()
        if self._reader is not None:
            await self._reader


@pytest.fixture
async def run_env(fake_discord: FakeDiscord, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        VIRTUAL_ENV=sys.prefix,  # run.sh uses the active virtualenv, and installs nothing when it is complete
        PATH=f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        DISCORD_TOKEN=fake_discord.token,
        HAILUO_DISCORD__API_BASE=fake_discord.api_base,
        HAILUO_DISCORD__DEV_GUILD_IDS="[1000]",
        HAILUO_DATABASE__PATH=str(tmp_path / "data" / "hailuo-bot.sqlite3"),
        HAILUO_WEBHOOK__LISTEN=f"127.0.0.1:{free_port()}",
        HAILUO_RUNWARE__POLL_INTERVAL="0.2",
        HAILUO_DELIVERY__STATUS_EDIT_INTERVAL="0",
    )
    return env


@pytest.fixture
async def processes() -> AsyncIterator[list[BotProcess]]:
    started: list[BotProcess] = []
    yield started
    for proc in started:
        await proc.kill()  # only if a failed test left one running


async def start(run_env: dict[str, str], processes: list[BotProcess], **extra: str) -> BotProcess:
    proc = await BotProcess({**run_env, **extra}).start()
    processes.append(proc)
    return proc


async def wait_ready(proc: BotProcess, fake: FakeDiscord) -> None:
    ready = await proc.wait_for_line(lambda line: "ready as" in line, "the ready line")
    assert "DRY RUN" in ready
    await fake.wait_until(lambda: bool(fake.commands.get(1000)), 10, "command sync")
    assert {c["name"] for c in fake.commands[1000]} >= {"video", "jobs", "usage"}


def assert_clean_stop(proc: BotProcess, code: int, token: str) -> None:
    assert code == 0, proc.output
    assert "shut down cleanly" in proc.lines[-1], proc.output
    stopping = next(i for i, line in enumerate(proc.lines) if "signal received" in line)
    after = "\n".join(proc.lines[stopping:])
    assert "Traceback" not in after and " ERROR " not in after, after
    for noise in NOISE:
        assert noise not in proc.output, proc.output
    assert token not in proc.output


async def http_get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


async def test_readme_run_command_dry_run_stops_on_sigterm_and_resumes(
    fake_discord: FakeDiscord,
    discord_world: DiscordWorld,
    run_env: dict[str, str],
    processes: list[BotProcess],
) -> None:
    w = discord_world
    # First start: the simulated job takes a minute, so it is still in flight at SIGTERM.
    first = await start(run_env, processes, HAILUO_RUNWARE__DRY_RUN_PROCESSING_SECONDS="60")
    await wait_ready(first, fake_discord)
    h = await fake_discord.send_command(
        "video", {"prompt": "a paper boat in a rain gutter"}, user=w.member, guild=w.guild, channel=w.channel
    )
    await h.wait_deferred()
    assert h.ephemeral
    [ack] = await h.wait_followups(1, timeout=15)
    assert "Job #1" in ack.content and "DRY RUN" in ack.content
    status = await fake_discord.wait_for_message(w.channel, lambda m: "job #1" in m.content, timeout=15)
    assert status.content.startswith("🧪 DRY RUN")
    await first.wait_for_line(lambda line: "job=1" in line and "submitted" in line, "the submit")
    assert_clean_stop(first, await first.terminate(), fake_discord.token)
    assert not any(m.attachments for m in fake_discord.channel_messages(w.channel))  # nothing posted yet

    # Second start on the same database: the job is picked up again and its clip is posted, once.
    second = await start(run_env, processes, HAILUO_RUNWARE__DRY_RUN_PROCESSING_SECONDS="0.2")
    await wait_ready(second, fake_discord)
    clip = await fake_discord.wait_for_message(w.channel, lambda m: bool(m.attachments), timeout=30)
    assert clip.content.startswith("🧪 DRY RUN")
    assert "(simulated)" in clip.content and f"<@{w.member.user.id}>" in clip.content
    assert clip.attachments[0].data[4:8] == b"ftyp"

    # Once the clip is posted the status message goes: the channel keeps one message per job.
    await fake_discord.wait_until(lambda: status.deleted, 15, "the status deleted")
    for message in fake_discord.channel_messages(w.channel):
        assert message.content.startswith("🧪 DRY RUN"), message.content

    # The real process serves /healthz and /metrics, with the simulated spend kept apart from real spend.
    base = f"http://{run_env['HAILUO_WEBHOOK__LISTEN']}"
    code, body = await http_get(base + "/healthz")
    assert code == 200 and json.loads(body)["checks"] == {"database": True, "tracker": True, "discord": True}
    code, metrics = await http_get(base + "/metrics")
    assert code == 200
    assert metric_value(metrics, "hailuo_spend_micros_total", mode="dry_run") == 280_000
    assert metric_value(metrics, "hailuo_spend_micros_total", mode="real") == 0
    assert metric_value(metrics, "hailuo_deliveries_total", outcome="attachment") == 1

    assert_clean_stop(second, await second.terminate(), fake_discord.token)
    assert len([m for m in fake_discord.channel_messages(w.channel) if m.attachments]) == 1
    assert fake_discord.violations == []


async def test_video_after_shutdown_began_is_told_the_bot_is_shutting_down(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld
) -> None:
    """What SIGTERM does first (HailuoBot.close → Engine.close → VideoService.drain): no new jobs are taken."""
    w = discord_world
    bot = await make_bot()
    await bot.engine.service.drain(5)  # nothing in flight: returns at once, and takes no more jobs
    h = await fake_discord.send_command(
        "video", {"prompt": "a lighthouse in a storm"}, user=w.member, guild=w.guild, channel=w.channel
    )
    await h.wait_deferred()
    [reply] = await h.wait_followups(1)
    assert h.ephemeral and "shutting down" in reply.content
    assert await bot.engine.jobs.unfinished() == []


def test_readme_quick_start_is_the_two_commands_tested_here() -> None:
    """The README's quick start is exactly two commands: the run command this module runs, and the test command."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1]
    block = quick.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]
    assert commands == ["DISCORD_TOKEN=<your bot token> ./run.sh --dry-run", "./run.sh test"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == "./run.sh test"  # CI runs the README's test command as written
