"""Where a job lives: a thread per job, team pools, channel rules, concurrency, expiry, a channel closed to the bot."""

from __future__ import annotations

from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import BotFactory, LoopbackBot
from tests.e2e.video_support import (
    assert_pings_only,
    job_count,
    ledger,
    result_messages,
    results_after_delivery,
    status_messages,
    video,
    video_tasks,
)
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.world import DiscordWorld


async def test_a_threads_channel_gives_each_job_its_own_thread_for_status_results_and_rerolls(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    await hailuo.engine.guilds.set_channel(1000, w.channel.id, 0, threads=True)
    prompt = "@everyone a #cat on a <@&1> skateboard"
    _, ack = await video(fake_discord, w, {"prompt": prompt})
    [thread] = [c for c in fake_discord.channels.values() if c.parent_id == w.channel.id]
    assert thread.name == "everyone a cat on a <&1> skateboard"
    assert f"/{thread.id}/" in ack.content
    assert fake_discord.channel_messages(w.channel) == []
    [status] = status_messages(fake_discord, thread)
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    result = await fake_discord.wait_for_message(thread, lambda m: bool(m.attachments), timeout=10)
    [r] = await results_after_delivery(hailuo, 1)
    assert r.channel_id == thread.id
    job = await hailuo.engine.jobs.get(1)
    assert job is not None and job.thread_id == thread.id and job.budget_channel_id == w.channel.id

    # A reroll from inside the thread stays in that thread (no thread inside a thread).
    h = await fake_discord.click(result, "hailuo:reroll:1", user=w.member)
    [answer] = await h.wait_followups(1)
    assert "Job #2" in answer.content
    assert len(status_messages(fake_discord, thread)) == 2
    assert [c.id for c in fake_discord.channels.values() if c.parent_id == w.channel.id] == [thread.id]
    job2 = await hailuo.engine.jobs.get(2)
    assert job2 is not None and job2.thread_id == thread.id and job2.budget_channel_id == w.channel.id
    assert status.content.startswith("✅ Done")
    assert_pings_only(fake_discord, w.member.user.id)


async def test_usage_in_a_pool_channel_shows_the_pool(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    await hailuo.engine.guilds.set_channel(1000, w.channel.id, 0, pool=True)
    await video(fake_discord, w, {"prompt": "a brainstorm of paper planes"})
    h = await fake_discord.send_command("usage", {}, user=w.member, channel=w.channel)
    [answer] = await h.wait_followups(1)
    assert answer.ephemeral and "team pool" in answer.content and f"<#{w.channel.id}>" in answer.content
    assert "$0.28 reserved" in answer.content


async def test_channel_rules_and_the_concurrency_cap_refuse_plainly(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    bot = await make_bot(limits={"concurrent_per_member": 1})
    _, first = await video(fake_discord, w, {"prompt": "the first of two"})
    assert "Job #1" in first.content
    _, second = await video(fake_discord, w, {"prompt": "the second of two"})
    assert "1 unfinished video job" in second.content and "allows 1 at a time" in second.content

    other = fake_discord.add_channel(w.guild, "art")
    await bot.engine.guilds.set_channel(1000, other.id, 0, allowed=True)
    _, third = await video(fake_discord, w, {"prompt": "the third"})
    assert "can't be used in this channel" in third.content and f"<#{other.id}>" in third.content
    assert len(video_tasks(e2e_sim)) == 1 and await job_count(bot) == 1


async def test_a_job_that_never_finishes_expires_tells_the_member_and_releases_the_hold(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    bot = await make_bot(runware={"max_wait": 0.001, "poll_interval": 3600})
    await video(fake_discord, w, {"prompt": "a very slow sunset"})
    await bot.engine.tracker.sweep_once()
    [status] = status_messages(fake_discord, w.channel)
    assert status.content.startswith("⌛ Expired") and "not charged" in status.content
    assert status.custom_ids() == ["hailuo:reroll:1", "hailuo:remix:1"]  # no Cancel; a retry instead
    note = await fake_discord.wait_for_message(w.channel, lambda m: "job #1 expired" in m.content)
    assert note.pinged_user_ids == [w.member.user.id], "the requester is told, not just the channel"
    assert await ledger(bot) == [(1, "released", 280_000, 0)]


async def test_a_channel_the_bot_cannot_post_in_still_gets_an_answer_and_the_clip_by_dm(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    fake_discord.forbid_posting(w.channel)
    _, ack = await video(fake_discord, w, {"prompt": "a lonely robot"})
    assert "Job #1" in ack.content and "Follow it here" not in ack.content
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    await fake_discord.wait_until(lambda: fake_discord.dm_channel(w.member) is not None, timeout=10, what="a DM")
    dm = fake_discord.dm_channel(w.member)
    assert dm is not None
    msg = await fake_discord.wait_for_message(dm, lambda m: bool(m.attachments), timeout=10)
    assert "a lonely robot" in msg.content
    assert result_messages(fake_discord, w.channel) == []
