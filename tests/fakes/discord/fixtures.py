"""pytest fixtures for the fake Discord; import them into a conftest.py.

from tests.fakes.discord.fixtures import discord_world, fake_discord  # noqa: F401
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from .connect import restore_public_discord
from .server import FakeDiscord
from .world import DiscordWorld, build_world


@pytest_asyncio.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """Yield a started FakeDiscord holding the standard world (see `discord_world`)."""
    fake = FakeDiscord()
    await fake.start()
    fake.world = build_world(fake)
    try:
        yield fake
    finally:
        await fake.close()
        restore_public_discord()


@pytest_asyncio.fixture
async def discord_world(fake_discord: FakeDiscord) -> DiscordWorld:
    """Return the standard world of the `fake_discord` fixture."""
    assert fake_discord.world is not None
    return fake_discord.world
