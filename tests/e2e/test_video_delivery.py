"""Delivery of finished clips: attach or link, mentions kept inert, a DM when the channel is closed to the bot."""

from __future__ import annotations

from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import BotFactory, LoopbackBot
from tests.e2e.video_support import (
    assert_pings_only,
    bot_messages,
    result_messages,
    results_after_delivery,
    status_messages,
    video,
    video_tasks,
)
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.world import DiscordWorld

MIB = 1024 * 1024


async def test_a_clip_larger_than_the_channel_allows_is_posted_as_a_link(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    e2e_sim.faults.oversized_clip_bytes = 11 * MIB  # over the 10 MiB of an unboosted server
    await video(fake_discord, w, {"prompt": "a waterfall in slow motion"})
    [task] = video_tasks(e2e_sim)
    e2e_sim.finish(task["taskUUID"])
    msg = await fake_discord.wait_for_message(w.channel, lambda m: "hailuo:delete:1" in m.custom_ids(), timeout=10)
    assert msg.attachments == []
    [result] = await results_after_delivery(hailuo, 1)
    assert result.video_url in msg.content and "too large to attach" in msg.content
    assert result.state.value == "delivered" and result.message_id == msg.id
    assert f"<@{w.member.user.id}>" in msg.content and msg.pinged_user_ids == [w.member.user.id]
    assert "seed" in msg.content and "$0.28" in msg.content


async def test_a_boosted_server_gets_the_same_clip_attached(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    w.guild.premium_tier = 2  # 50 MiB uploads, announced in GUILD_CREATE when the bot connects
    bot = await make_bot()
    guild = bot.get_guild(w.guild.id)
    assert guild is not None and guild.filesize_limit == 50 * MIB
    e2e_sim.faults.oversized_clip_bytes = 11 * MIB
    await video(fake_discord, w, {"prompt": "a waterfall in slow motion"})
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    msg = await fake_discord.wait_for_message(w.channel, lambda m: bool(m.attachments), timeout=10)
    assert len(msg.attachments[0].data) == len(e2e_sim.clip_bytes) + 11 * MIB


async def test_mentions_in_the_prompt_never_ping_anyone_but_the_requester(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    other = fake_discord.add_member(w.guild, "carol")
    role = w.moderator_role.id
    prompt = f"@everyone @here look <@&{role}> and <@{other.user.id}> and <@!{w.moderator.user.id}> dancing"
    await video(fake_discord, w, {"prompt": prompt, "variations": 2})
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    msg = await fake_discord.wait_for_message(w.channel, lambda m: len(m.attachments) == 2, timeout=10)
    assert f"<@&{role}>" in msg.content and "@everyone" in msg.content, "the prompt is quoted as typed"
    assert msg.pinged_user_ids == [w.member.user.id]
    await fake_discord.wait_until(lambda: not status_messages(fake_discord, w.channel), what="the status deleted")
    [status] = [m for m in bot_messages(fake_discord) if " · job #1 for " in m.content.split("\n", 1)[0]]
    assert status.deleted and f"<@&{role}>" in status.content, "the clips replaced it; it quoted the prompt inertly"
    assert status.pinged_user_ids == [] and status.pinged_role_ids == []
    assert len(bot_messages(fake_discord)) >= 3
    assert_pings_only(fake_discord, w.member.user.id)


async def test_a_channel_that_forbids_posting_gets_the_clip_by_dm(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    await video(fake_discord, w, {"prompt": "a kite above the cliffs"})
    fake_discord.forbid_posting(w.channel)
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    await fake_discord.wait_until(lambda: fake_discord.dm_channel(w.member) is not None, timeout=10, what="a DM")
    dm = fake_discord.dm_channel(w.member)
    assert dm is not None
    msg = await fake_discord.wait_for_message(dm, lambda m: bool(m.attachments), timeout=10)
    assert "couldn't post in the channel" in msg.content and "a kite above the cliffs" in msg.content
    assert msg.attachments[0].data[4:8] == b"ftyp"
    assert msg.components == [], "no buttons in a DM: they act in the server"
    assert msg.nonce == "hl1c1"
    [result] = await results_after_delivery(hailuo, 1)
    assert result.state.value == "delivered" and result.channel_id == dm.id and result.message_id == msg.id
    assert result_messages(fake_discord, w.channel) == []
    status = await fake_discord.wait_for_message(w.channel, lambda m: m.content.startswith("✅ Done"))
    assert "by DM" in status.content and status.pinged_user_ids == []
    assert_pings_only(fake_discord, w.member.user.id)


async def test_a_deleted_channel_gets_the_clip_by_dm(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    await video(fake_discord, w, {"prompt": "a train crossing a bridge"})
    await fake_discord.delete_channel(w.channel)
    await fake_discord.wait_until(lambda: hailuo.get_channel(w.channel.id) is None, what="CHANNEL_DELETE")
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    await fake_discord.wait_until(lambda: fake_discord.dm_channel(w.member) is not None, timeout=10, what="a DM")
    dm = fake_discord.dm_channel(w.member)
    assert dm is not None
    msg = await fake_discord.wait_for_message(dm, lambda m: bool(m.attachments), timeout=10)
    [result] = await results_after_delivery(hailuo, 1)
    assert result.state.value == "delivered" and result.channel_id == dm.id and result.message_id == msg.id


async def test_closed_dms_leave_the_result_undeliverable_but_kept(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    w.member.user.dms_closed = True
    await video(fake_discord, w, {"prompt": "a storm over wheat fields"})
    fake_discord.forbid_posting(w.channel)
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    status = await fake_discord.wait_for_message(w.channel, lambda m: m.content.startswith("❌ Failed"), timeout=10)
    assert "could not be posted here or sent by DM" in status.content and "/jobs" in status.content
    [result] = await results_after_delivery(hailuo, 1)
    assert result.state.value == "undeliverable" and result.video_url.startswith(e2e_sim.origin)
    job = await hailuo.engine.jobs.get(1)
    assert job is not None and job.state.value == "succeeded" and job.cost_micros == 280_000


async def test_an_upload_discord_refuses_as_too_large_is_posted_as_a_link_instead(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    """The bot's idea of the upload limit can be stale (a boost ended): Discord's 413 must not loop forever."""
    w = discord_world
    w.guild.premium_tier = 2
    bot = await make_bot()
    w.guild.premium_tier = 0  # the boost ends; the bot is not told
    e2e_sim.faults.oversized_clip_bytes = 11 * MIB
    await video(fake_discord, w, {"prompt": "a glacier calving"})
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    msg = await fake_discord.wait_for_message(w.channel, lambda m: "hailuo:delete:1" in m.custom_ids(), timeout=10)
    [result] = await results_after_delivery(bot, 1)
    assert msg.attachments == [] and result.video_url in msg.content
    assert result.state.value == "delivered" and result.message_id == msg.id
    refused = [r for r in fake_discord.requests_to("POST", "/channels/{channel_id}/messages") if r.status == 413]
    assert len(refused) == 1


async def test_a_clip_too_large_for_a_dm_reaches_the_requester_as_a_link(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    w.guild.premium_tier = 2  # 50 MiB in the server, but a DM takes 10 MiB
    bot = await make_bot()
    e2e_sim.faults.oversized_clip_bytes = 11 * MIB
    await video(fake_discord, w, {"prompt": "an avalanche far away"})
    fake_discord.forbid_posting(w.channel)
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    await fake_discord.wait_until(lambda: fake_discord.dm_channel(w.member) is not None, timeout=10, what="a DM")
    dm = fake_discord.dm_channel(w.member)
    assert dm is not None
    msg = await fake_discord.wait_for_message(dm, timeout=10)
    [result] = await results_after_delivery(bot, 1)
    assert msg.attachments == [] and result.video_url in msg.content
    assert result.state.value == "delivered" and result.channel_id == dm.id


async def test_a_channel_that_refuses_the_post_for_good_sends_a_dm_instead_of_retrying_forever(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    """A 4xx (say, 50083: the job's thread was archived and locked) will not change on retry."""
    w = discord_world
    await video(fake_discord, w, {"prompt": "a bell tower at noon"})
    fake_discord.fail_next("POST", "/channels/{channel_id}/messages", status=400)
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    await fake_discord.wait_until(lambda: fake_discord.dm_channel(w.member) is not None, timeout=10, what="a DM")
    dm = fake_discord.dm_channel(w.member)
    assert dm is not None
    msg = await fake_discord.wait_for_message(dm, lambda m: bool(m.attachments), timeout=10)
    [result] = await results_after_delivery(hailuo, 1)
    assert result.state.value == "delivered" and result.message_id == msg.id
    assert result_messages(fake_discord, w.channel) == []


async def test_a_link_says_when_it_expires_when_clips_have_a_ttl(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    await make_bot(runware={"ttl": 3600})
    e2e_sim.faults.oversized_clip_bytes = 11 * MIB
    await video(fake_discord, w, {"prompt": "a harbour at night"})
    [task] = video_tasks(e2e_sim)
    assert task["ttl"] == 3600
    e2e_sim.finish(task["taskUUID"])
    msg = await fake_discord.wait_for_message(w.channel, lambda m: "hailuo:delete:1" in m.custom_ids(), timeout=10)
    assert msg.attachments == [] and "Links expire <t:" in msg.content


async def test_a_clip_whose_download_fails_is_posted_as_a_link_that_says_so_not_too_large(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    bot = await make_bot(delivery={"download_timeout": 0.5})
    await video(fake_discord, w, {"prompt": "a waterfall in slow motion"})
    [task] = video_tasks(e2e_sim)
    e2e_sim.faults.slow_clips[task["taskUUID"]] = 300.0  # bytes keep coming, far too slowly: the download gives up
    e2e_sim.finish(task["taskUUID"])
    msg = await fake_discord.wait_for_message(w.channel, lambda m: "hailuo:delete:1" in m.custom_ids(), timeout=10)
    assert msg.attachments == []
    [result] = await results_after_delivery(bot, 1)
    assert f"{result.video_url} (could not be attached just now; the link opens it)" in msg.content
    assert "too large" not in msg.content
