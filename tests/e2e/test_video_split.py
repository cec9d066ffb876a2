"""Many clips: split into messages that fit Discord (10 files, 2000 characters, the upload limit), each posted once."""

from __future__ import annotations

from typing import Any

from bot.core.models import JobState
from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import BotFactory
from tests.e2e.video_support import (
    assert_pings_only,
    result_messages,
    results_after_delivery,
    status_messages,
    video,
    video_tasks,
)
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.world import DiscordWorld

MIB = 1024 * 1024
RICH: dict[str, Any] = {"limits": {"member_day_usd": 100.0, "member_month_usd": 100.0}}
LONG_PROMPT = "A slow dolly shot through a flooded cathedral at dawn, " * 20  # about 1100 characters


async def test_ten_clips_posted_as_links_never_lose_a_link_to_the_2000_character_limit(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    bot = await make_bot(**RICH)
    await bot.engine.guilds.update(1000, 0, variations_cap=10)
    e2e_sim.faults.oversized_clip_bytes = 11 * MIB  # every clip is over the channel's 10 MiB
    await video(fake_discord, w, {"prompt": LONG_PROMPT, "variations": 10})
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    await fake_discord.wait_until(lambda: not status_messages(fake_discord, w.channel), 10, "the status deleted")
    results = await results_after_delivery(bot, 1)
    posts = result_messages(fake_discord, w.channel)
    text = "\n".join(m.content for m in posts)
    assert all(len(m.content) <= 2000 for m in posts)
    assert all(r.video_url in text for r in results), "every clip's link is posted"
    assert all(f"**#{n}**" in text for n in range(1, 11))
    assert {r.state.value for r in results} == {"delivered"}
    assert {r.message_id for r in results} == {m.id for m in posts}
    assert all(m.content.startswith(f"<@{w.member.user.id}>") for m in posts)
    assert_pings_only(fake_discord, w.member.user.id)


async def test_clips_left_after_an_interrupted_delivery_get_a_message_of_their_own(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    """A redelivery posts only what is missing; its message must not reuse the nonce of one already posted."""
    w = discord_world
    bot = await make_bot(**RICH, runware={"poll_interval": 3600})
    await bot.engine.guilds.update(1000, 0, variations_cap=12)
    await video(fake_discord, w, {"prompt": "twelve paper lanterns", "variations": 12})
    [task] = video_tasks(e2e_sim)
    e2e_sim.finish(task["taskUUID"])
    job = await bot.engine.jobs.get(1)
    assert job is not None
    status = (await bot.engine.runware.get_responses([task["taskUUID"]]))[task["taskUUID"]]
    for item in status.successes:
        await bot.engine.tracker.record_webhook_success(job, item)
    assert await bot.engine.jobs.transition(1, JobState.SUCCEEDED, cost_micros=12 * 280_000)
    job = await bot.engine.jobs.get(1)
    assert job is not None
    results = await bot.engine.jobs.results(1)

    # A first attempt posted clips 1-10, then the bot stopped; the next attempt finds them and posts the rest.
    first = await bot.delivery.deliver(job, results[:10], redelivery=False)
    again = await bot.delivery.deliver(job, results, redelivery=True)

    posts = result_messages(fake_discord, w.channel)
    assert [len(m.attachments) for m in posts] == [10, 2]
    assert [d.how for d in again[:10]] == ["existing"] * 10
    assert {d.message_id for d in first} == {d.message_id for d in again[:10]} == {posts[0].id}
    assert {d.message_id for d in again[10:]} == {posts[1].id}
    assert "**#11**" in posts[1].content and "**#12**" in posts[1].content
