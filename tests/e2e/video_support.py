"""Helpers for the /video end-to-end tests (no fixtures here; they live in tests/e2e/conftest.py)."""

from __future__ import annotations

from typing import Any

from bot.app import HailuoBot
from bot.core.models import ClipResult
from bot.simulator.server import RunwareSimulator
from tests.fakes.discord import FakeChannel, FakeDiscord, FakeMember, FakeMessage, InteractionHandle
from tests.fakes.discord.world import DiscordWorld
from tests.fakes.images import png_bytes

__all__ = ["png_bytes"]  # re-exported for the e2e tests


def video_tasks(sim: RunwareSimulator) -> list[dict[str, Any]]:
    """Every videoInference task the bot sent, oldest first."""
    return [t for r in sim.requests for t in r.tasks if t.get("taskType") == "videoInference"]


def upload_tasks(sim: RunwareSimulator) -> list[dict[str, Any]]:
    """Every imageUpload task the bot sent, oldest first."""
    return [t for r in sim.requests for t in r.tasks if t.get("taskType") == "imageUpload"]


async def video(
    fake: FakeDiscord,
    world: DiscordWorld,
    options: dict[str, Any],
    *,
    user: FakeMember | None = None,
    channel: Any = None,
) -> tuple[InteractionHandle, FakeMessage]:
    """Run /video as a member, check the deferral is ephemeral, and return the handle and the first answer."""
    h = await fake.send_command("video", options, user=user or world.member, channel=channel or world.channel)
    await h.wait_deferred()
    [answer] = await h.wait_followups(1)
    assert answer.ephemeral, answer.content
    return h, answer


async def ledger(bot: HailuoBot) -> list[tuple[int, str, int, int]]:
    """(job id, status, held, charged) for every ledger row."""
    rows = await bot.engine.db.fetchall(
        "SELECT job_id, status, held_micros, charged_micros FROM ledger ORDER BY job_id"
    )
    return [(int(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]


async def job_count(bot: HailuoBot) -> int:
    row = await bot.engine.db.fetchone("SELECT COUNT(*) FROM jobs")
    assert row is not None
    return int(row[0])


async def results_after_delivery(bot: HailuoBot, job_id: int) -> list[ClipResult]:
    """The job's results once a delivery in flight has been recorded.

    Call it after the post is visible: tracker.deliver() takes the job's lock, so it waits for the delivery that
    holds it, then finds nothing left to post.
    """
    job = await bot.engine.jobs.get(job_id)
    assert job is not None
    await bot.engine.tracker.deliver(job)
    return await bot.engine.jobs.results(job_id)


def bot_messages(fake: FakeDiscord) -> list[FakeMessage]:
    """Every message the bot created anywhere (channels, threads, DMs, interaction answers), deleted ones too."""
    return [m for m in fake.messages.values() if m.author.id == fake.bot_user.id]


def result_messages(fake: FakeDiscord, channel: Any) -> list[FakeMessage]:
    """Visible messages in a channel that carry result buttons (Delete)."""
    return [m for m in fake.channel_messages(channel) if any(c.startswith("hailuo:delete:") for c in m.custom_ids())]


def status_messages(fake: FakeDiscord, channel: Any) -> list[FakeMessage]:
    """Visible status messages (they start with a phase and name the job) in a channel."""
    return [m for m in fake.channel_messages(channel) if " · job #" in m.content.split("\n", 1)[0]]


def assert_pings_only(fake: FakeDiscord, *user_ids: int) -> None:
    """No message the bot sent pings a role or @everyone, and users pinged are among `user_ids`."""
    for m in bot_messages(fake):
        assert m.pinged_role_ids == [], (m.id, m.content)
        assert m.mention_everyone is False, (m.id, m.content)
        assert set(m.pinged_user_ids) <= set(user_ids), (m.id, m.content, m.pinged_user_ids)


async def answers(
    fake: FakeDiscord, name: str, options: dict[str, Any], *, user: FakeMember, channel: FakeChannel, n: int = 1
) -> list[FakeMessage]:
    """Run a command; every answer is an ephemeral followup within Discord's 2000 characters."""
    h = await fake.send_command(name, options, user=user, channel=channel)
    await h.wait_deferred()
    out = await h.wait_followups(n)
    for m in out:
        assert m.ephemeral and len(m.content) <= 2000, (name, m.content)
        assert m.pinged_user_ids == [] and m.pinged_role_ids == [] and not m.mention_everyone, m.content
    return out


async def ask(fake: FakeDiscord, name: str, options: dict[str, Any], *, user: FakeMember, channel: FakeChannel) -> str:
    [answer] = await answers(fake, name, options, user=user, channel=channel)
    return answer.content
