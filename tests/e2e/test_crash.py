"""Kill tests: the real bot process is SIGKILLed at each step of a job, then started again on the same database.

Each run: the bot (`python -m bot --config PATH`, a child process) takes a /video from the loopback Discord and
dies at one crash point (HAILUO_CRASH_AT); the simulator and the fake Discord live on in the test process; a second
bot process, without the crash point, must finish the job: one clip posted once, one submit, the ledger exact.
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.core.crashpoints import POINTS
from bot.simulator.server import RunwareSimulator
from tests.e2e.crash_runner import SIM_KEY, WEBHOOK_SECRET, BotProcess, CrashSetup, read_rows
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.models import FakeMessage
from tests.fakes.discord.server import RecordedRequest
from tests.fakes.discord.world import DiscordWorld

CLIP_COST_MICROS = 280_000  # the simulator's cost for one 768p, 6 s clip
MESSAGES = "/channels/{channel_id}/messages"


@pytest.fixture
async def crash_sim() -> AsyncIterator[RunwareSimulator]:
    """Completes each task 0.3 s after it is accepted and sends its webhook (one quick retry), like Runware."""
    async with RunwareSimulator(api_key=SIM_KEY, processing_seconds=0.3, webhook_retry_delays=(0.05,)) as sim:
        yield sim


@pytest.fixture
def crash_setup(tmp_path: Path, fake_discord: FakeDiscord, crash_sim: RunwareSimulator) -> CrashSetup:
    return CrashSetup.create(tmp_path, fake_discord, crash_sim.base_url)


@pytest.fixture
async def bot_process(tmp_path: Path, fake_discord: FakeDiscord, crash_setup: CrashSetup) -> AsyncIterator[BotProcess]:
    env = {"DISCORD_TOKEN": fake_discord.token, "RUNWARE_API_KEY": SIM_KEY, "WEBHOOK_SECRET": WEBHOOK_SECRET}
    proc = BotProcess(crash_setup.config, tmp_path / "bot.log", env)
    try:
        yield proc
    finally:
        await proc.kill()


@dataclass
class Outcome:
    """What one kill-and-restart left behind, read after the second bot exited cleanly."""

    clip: FakeMessage
    uploads: list[RecordedRequest]
    job: sqlite3.Row
    result: sqlite3.Row
    ledger: sqlite3.Row


async def kill_and_restart(
    point: str,
    bot: BotProcess,
    fake: FakeDiscord,
    w: DiscordWorld,
    db_path: Path,
    *,
    before_restart: Callable[[], None] = lambda: None,
) -> Outcome:
    """/video on a bot that dies at `point`, then a clean bot on the same database until the clip is posted."""
    # First life: polling effectively off, so results come by webhook and every crash point is reached on its path.
    await bot.start(crash_at=point, env={"HAILUO_RUNWARE__POLL_INTERVAL": "60"})
    await bot.wait_for(fake, lambda: bool(fake.commands.get(1000)) and fake.connected, 30, "command sync")
    handle = await fake.send_command(
        "video", {"prompt": "a lighthouse in a storm"}, user=w.member, guild=w.guild, channel=w.channel
    )
    code = await bot.wait_exit(30)
    assert code == -signal.SIGKILL, f"expected a SIGKILL at {point}, got exit {code}\n{bot.log_tail()}"
    assert handle.deferred
    before_restart()

    # Second life: no crash point, same database, same simulator, same Discord (a fresh IDENTIFY).
    identified = fake.identify_count
    await bot.start()
    await bot.wait_for(
        fake,
        lambda: bool(clips(fake, w)) and fake.identify_count > identified and fake.connected,
        30,
        "the clip to be posted after the restart",
    )
    assert await bot.terminate() == 0, bot.log_tail()  # a clean stop lets in-flight records finish

    [clip] = clips(fake, w)
    [job] = read_rows(db_path, "SELECT * FROM jobs")
    [result] = read_rows(db_path, "SELECT * FROM results WHERE job_id = ?", (job["id"],))
    [ledger] = read_rows(db_path, "SELECT * FROM ledger WHERE job_id = ?", (job["id"],))
    uploads = [r for r in fake.requests_to("POST", MESSAGES) if r.files]
    return Outcome(clip, uploads, job, result, ledger)


def assert_delivered_once_and_settled(out: Outcome, sim: RunwareSimulator, fake: FakeDiscord, log: str) -> None:
    job_id = out.job["id"]
    # Discord: the one clip message carries this job's buttons and a real MP4.
    assert f"hailuo:delete:{job_id}" in out.clip.custom_ids()
    assert out.clip.attachments[0].data[4:8] == b"ftyp"
    assert fake.violations == []
    # Runware: the task was submitted exactly once, whatever the crash point.
    assert sim.submit_count() == 1, log
    assert sim.submit_count(out.job["task_uuid"]) == 1
    # The store: succeeded at the reported cost, the clip recorded where it was posted, the ledger settled exactly.
    assert (out.job["state"], out.job["cost_micros"]) == ("succeeded", CLIP_COST_MICROS), dict(out.job)
    assert (out.result["state"], out.result["message_id"]) == ("delivered", out.clip.id), dict(out.result)
    assert (out.ledger["status"], out.ledger["charged_micros"]) == ("settled", CLIP_COST_MICROS), dict(out.ledger)
    # Every upload of this clip carried one and the same nonce, which Discord is asked to enforce.
    [(nonce, enforced)] = {(u.json.get("nonce"), u.json.get("enforce_nonce")) for u in out.uploads}
    assert nonce and enforced is True


@pytest.mark.parametrize("point", POINTS)
async def test_killed_at_each_step_the_job_is_delivered_once(
    point: str,
    bot_process: BotProcess,
    fake_discord: FakeDiscord,
    discord_world: DiscordWorld,
    crash_sim: RunwareSimulator,
    crash_setup: CrashSetup,
) -> None:
    out = await kill_and_restart(point, bot_process, fake_discord, discord_world, crash_setup.db_path)
    assert_delivered_once_and_settled(out, crash_sim, fake_discord, bot_process.log_tail())
    # One upload request: after `after_post` the restarted bot found its own message by the Delete button's custom_id
    # in the channel history, so it did not even try again.
    assert len(out.uploads) == 1, bot_process.log_tail()
    assert read_rows(crash_setup.db_path, "SELECT * FROM ledger WHERE status = 'held'") == []


async def test_killed_after_post_with_history_unreadable_the_nonce_stops_a_second_message(
    bot_process: BotProcess,
    fake_discord: FakeDiscord,
    discord_world: DiscordWorld,
    crash_sim: RunwareSimulator,
    crash_setup: CrashSetup,
) -> None:
    """The second line of defence: history can't be read, so the bot posts again, and Discord's nonce dedupes it."""

    def hide_history() -> None:
        fake_discord.fail_next("GET", MESSAGES, status=403)

    out = await kill_and_restart(
        "after_post", bot_process, fake_discord, discord_world, crash_setup.db_path, before_restart=hide_history
    )
    assert_delivered_once_and_settled(out, crash_sim, fake_discord, bot_process.log_tail())
    assert len(out.uploads) == 2  # the retry went out, and Discord answered it with the earlier message
    assert [r.status for r in fake_discord.requests_to("GET", MESSAGES)] == [403]


def clips(fake: FakeDiscord, w: DiscordWorld) -> list[FakeMessage]:
    return [m for m in fake.channel_messages(w.channel) if m.attachments]
