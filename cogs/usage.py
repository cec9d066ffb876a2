"""/jobs and /usage: a member's own jobs and spend (moderators may look at anyone's spend)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.tree import send_ephemeral

if TYPE_CHECKING:
    from bot.app import HailuoBot


class UsageCog(commands.Cog):
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot

    @app_commands.command(name="jobs", description="Your recent video jobs with status, cost and links")
    @app_commands.guild_only()
    async def jobs(self, interaction: discord.Interaction[HailuoBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await send_ephemeral(interaction, await self.bot.flow.jobs_text(interaction))

    @app_commands.command(name="usage", description="Your spend against each limit that applies, and what is reserved")
    @app_commands.guild_only()
    @app_commands.describe(member="Someone else's usage (moderators only)")
    async def usage(self, interaction: discord.Interaction[HailuoBot], member: discord.Member | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await send_ephemeral(interaction, await self.bot.flow.usage_text(interaction, member))


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(UsageCog(bot))
