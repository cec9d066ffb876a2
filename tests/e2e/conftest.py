"""End-to-end fixtures: the loopback fake Discord, the simulator, and the real HailuoBot connected to both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio

from bot.app import HailuoBot
from bot.settings import Settings
from bot.simulator.server import RunwareSimulator
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.fixtures import discord_world, fake_discord
from tests.helpers import make_settings

__all__ = ["discord_world", "fake_discord"]


class LoopbackBot(HailuoBot):
    """The real bot, minus discord.py's 5 s pause before a re-IDENTIFY (Discord's rate-limit guard)."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


def e2e_settings(db_path: Path, sim: RunwareSimulator, fake: FakeDiscord, **sections: dict[str, Any]) -> Settings:
    runware = {"poll_interval": 0.1, **sections.pop("runware", {})}
    return make_settings(
        db_path, sim.base_url, discord_base=fake.api_base, token=fake.token, runware=runware, **sections
    )


async def start_bot(settings: Settings, fake: FakeDiscord) -> tuple[LoopbackBot, asyncio.Task[None]]:
    bot = LoopbackBot(settings, guild_ready_timeout=0.05)
    task = asyncio.create_task(bot.start(settings.discord.token.get_secret_value()))
    await fake.wait_until(lambda: bool(fake.commands.get(1000)) or task.done(), timeout=15, what="command sync")
    if task.done():
        task.result()
    await fake.wait_until_connected()
    await asyncio.wait_for(bot.wait_until_ready(), 10)
    return bot, task


async def stop_bot(bot: HailuoBot, task: asyncio.Task[None]) -> None:
    await bot.close()
    await asyncio.wait_for(task, 15)


BotFactory = Callable[..., Awaitable[LoopbackBot]]


@pytest_asyncio.fixture
async def e2e_sim() -> AsyncIterator[RunwareSimulator]:
    """The simulator completes tasks only when a test calls finish(); the bot polls it every 0.1 s."""
    async with RunwareSimulator(api_key="sim-key", auto_complete=False) as sim:
        yield sim


@pytest_asyncio.fixture
async def make_bot(fake_discord: FakeDiscord, e2e_sim: RunwareSimulator, tmp_path: Path) -> AsyncIterator[BotFactory]:
    """Start (and later stop) real bots on one database; call again after stopping one to "restart"."""
    running: list[tuple[LoopbackBot, asyncio.Task[None]]] = []

    async def factory(**sections: dict[str, Any]) -> LoopbackBot:
        settings = e2e_settings(tmp_path / "bot.sqlite3", e2e_sim, fake_discord, **sections)
        bot, task = await start_bot(settings, fake_discord)
        running.append((bot, task))
        return bot

    yield factory
    for bot, task in running:
        if not bot.is_closed():
            await stop_bot(bot, task)
    assert fake_discord.violations == [], fake_discord.violations


@pytest_asyncio.fixture
async def hailuo(make_bot: BotFactory) -> LoopbackBot:
    return await make_bot()
