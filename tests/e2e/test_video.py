"""/video end to end: the real bot, real discord.py, the loopback Discord, the simulator, a real SQLite file."""

from __future__ import annotations

from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import LoopbackBot
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.world import DiscordWorld


async def test_prompt_only_posts_one_clip_mentioning_the_requester(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    h = await fake_discord.send_command(
        "video", {"prompt": "a lighthouse in a storm"}, user=w.member, guild=w.guild, channel=w.channel
    )
    await h.wait_deferred()
    assert h.ephemeral
    [ack] = await h.wait_followups(1)
    assert "Job #1" in ack.content
    [task] = [t for r in e2e_sim.requests for t in r.tasks if t.get("taskType") == "videoInference"]
    assert task["deliveryMethod"] == "async" and task["includeCost"] is True and task["numberResults"] == 1
    assert (task["width"], task["height"], task["duration"], task["fps"]) == (1366, 768, 6, 25)
    e2e_sim.finish(task["taskUUID"])
    msg = await fake_discord.wait_for_message(w.channel, lambda m: bool(m.attachments), timeout=10)
    assert f"<@{w.member.user.id}>" in msg.content
    assert msg.pinged_user_ids == [w.member.user.id]
    assert msg.attachments[0].data[4:8] == b"ftyp"
    assert "seed" in msg.content and "$0.28" in msg.content
