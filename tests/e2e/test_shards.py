"""Shards (SPEC §10): the loopback Discord splits guilds over shards as Discord does, and the bot runs them.

A guild's events go to shard (guild_id >> 22) % shard_count; GET /gateway/bot recommends fake.shard_count.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import discord
import pytest

from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import BotFactory
from tests.e2e.video_support import video, video_tasks
from tests.fakes.discord import FakeDiscord, point_discord_at
from tests.fakes.discord.world import DiscordWorld

SHARD_ONE_GUILD = (1 << 22) + 1000  # (id >> 22) % 2 == 1; the standard world's guild 1000 is on shard 0


class ShardClient(discord.AutoShardedClient):
    """A bare sharded client that records the guilds it hears of and the interactions it receives."""

    def __init__(self, shard_ids: list[int], shard_count: int) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(intents=intents, shard_ids=shard_ids, shard_count=shard_count, guild_ready_timeout=0.05)
        self.interactions: list[int | None] = []

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        self.interactions.append(interaction.guild_id)


@pytest.fixture
async def two_shard_world(fake_discord: FakeDiscord, discord_world: DiscordWorld) -> AsyncIterator[DiscordWorld]:
    fake_discord.shard_count = 2
    guild = fake_discord.add_guild(SHARD_ONE_GUILD, "Second Server")
    fake_discord.add_channel(guild, "general")
    fake_discord.add_member(guild, "carol")
    yield discord_world


async def test_each_shard_hears_only_of_its_own_guilds_and_their_interactions(
    fake_discord: FakeDiscord, two_shard_world: DiscordWorld
) -> None:
    clients = [ShardClient([0], 2), ShardClient([1], 2)]
    tasks = []
    for client in clients:
        point_discord_at(client, fake_discord.api_base)
        tasks.append(asyncio.create_task(client.start(fake_discord.token)))
    try:
        for client in clients:
            await asyncio.wait_for(client.wait_until_ready(), 10)
        assert [g.id for g in clients[0].guilds] == [1000]
        assert [g.id for g in clients[1].guilds] == [SHARD_ONE_GUILD]
        assert fake_discord.live_shards() == {(0, 2), (1, 2)}

        carol = fake_discord.guilds[SHARD_ONE_GUILD].members
        member = next(m for m in carol.values() if m.user.username == "carol")
        await fake_discord.send_command("ping", user=member, guild=SHARD_ONE_GUILD, require_registered=False)
        await fake_discord.send_command("ping", user=two_shard_world.member, require_registered=False)
        await fake_discord.wait_until(
            lambda: bool(clients[0].interactions and clients[1].interactions), 5, "both interactions"
        )
        assert clients[0].interactions == [1000]
        assert clients[1].interactions == [SHARD_ONE_GUILD]
    finally:
        for client in clients:
            await client.close()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_the_bot_runs_the_shard_count_discord_recommends_and_serves_a_guild_on_each(
    make_bot: BotFactory, fake_discord: FakeDiscord, two_shard_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    bot = await make_bot(discord={"dev_guild_ids": [1000, SHARD_ONE_GUILD]})  # shard_count 0: ask Discord
    await fake_discord.wait_until(lambda: len(fake_discord.live_shards()) == 2, 10, "both shards")
    assert bot.shard_count == 2 and sorted(bot.shards) == [0, 1]
    assert fake_discord.live_shards() == {(0, 2), (1, 2)}
    assert sorted(g.id for g in bot.guilds) == [1000, SHARD_ONE_GUILD]

    await video(fake_discord, two_shard_world, {"prompt": "on shard zero"})
    guild = fake_discord.guilds[SHARD_ONE_GUILD]
    carol = next(m for m in guild.members.values() if m.user.username == "carol")
    channel = next(iter(guild.channels.values()))
    await video(fake_discord, two_shard_world, {"prompt": "on shard one"}, user=carol, channel=channel)
    assert [t["positivePrompt"] for t in video_tasks(e2e_sim)] == ["on shard zero", "on shard one"]
