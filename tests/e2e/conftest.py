"""End-to-end fixtures: the loopback fake Discord."""

from __future__ import annotations

from tests.fakes.discord.fixtures import discord_world, fake_discord

__all__ = ["discord_world", "fake_discord"]
