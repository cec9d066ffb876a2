"""A clip URL outside Runware's hosts is never fetched and never posted as a link (issue 11)."""

from __future__ import annotations

from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import LoopbackBot
from tests.e2e.video_support import results_after_delivery, video, video_tasks
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.world import DiscordWorld
from tests.runware_helpers import Receiver


async def test_a_clip_url_outside_runwares_hosts_is_neither_fetched_nor_posted(
    hailuo: LoopbackBot,
    fake_discord: FakeDiscord,
    discord_world: DiscordWorld,
    e2e_sim: RunwareSimulator,
    receiver: Receiver,
) -> None:
    w = discord_world
    await video(fake_discord, w, {"prompt": "a waterfall in slow motion"})
    [task] = video_tasks(e2e_sim)
    elsewhere = receiver.url.replace("127.0.0.1", "localhost") + "/admin/secret-report.mp4"
    e2e_sim.faults.clip_urls[task["taskUUID"]] = elsewhere
    e2e_sim.finish(task["taskUUID"])
    msg = await fake_discord.wait_for_message(w.channel, lambda m: "hailuo:delete:1" in m.custom_ids(), timeout=10)
    assert msg.attachments == []
    assert "localhost" not in msg.content and "secret-report" not in msg.content
    assert "could not be fetched" in msg.content
    assert receiver.calls == []  # never even asked
    [result] = await results_after_delivery(hailuo, 1)
    assert result.state.value == "delivered"  # the job is done; the record keeps Runware's answer
