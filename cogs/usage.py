"""/jobs and /usage: a member's own jobs and spend (moderators may look at anyone's spend)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.errors import NotAllowed
from bot.core.models import Job, JobState, Payer
from bot.ui.checks import requester
from bot.ui.texts import DISCORD_LIMIT, DRY, fit, job_line, standing_line
from bot.ui.texts_errors import own_limit_label
from bot.ui.tree import send_ephemeral

if TYPE_CHECKING:
    from bot.app import HailuoBot


def message_link(guild_id: int, channel_id: int, message_id: int) -> str:
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


class UsageCog(commands.Cog):
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot

    @app_commands.command(name="jobs", description="Your recent video jobs with status, cost and links")
    @app_commands.guild_only()
    async def jobs(self, interaction: discord.Interaction[HailuoBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await send_ephemeral(interaction, await self.jobs_text(interaction))

    @app_commands.command(name="usage", description="Your spend against each limit that applies, and what is reserved")
    @app_commands.guild_only()
    @app_commands.describe(member="Someone else's usage (moderators only)")
    async def usage(self, interaction: discord.Interaction[HailuoBot], member: discord.Member | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await send_ephemeral(interaction, await self.usage_text(interaction, member))

    # -- /jobs -------------------------------------------------------------------------------------------------

    async def jobs_text(self, interaction: discord.Interaction[Any]) -> str:
        who = await requester(interaction)
        jobs: list[Job] = await self.bot.engine.jobs.recent_for_member(who.guild_id, who.user_id, 10)
        if not jobs:
            return "You have no video jobs in this server yet. Start one with /video."
        lines = ["Your recent video jobs:"]
        size = len(lines[0])
        for job in jobs:
            link = None
            results = await self.bot.engine.jobs.results(job.id)
            posted = [r for r in results if r.message_id and r.channel_id]
            if posted:
                link = message_link(job.guild_id, posted[0].channel_id or 0, posted[0].message_id or 0)
            elif job.state is JobState.SUCCEEDED and results:
                link = results[0].video_url
            elif job.status_message_id and job.status_channel_id:
                link = message_link(job.guild_id, job.status_channel_id, job.status_message_id)
            line = job_line(job, link)
            size += len(line) + 1
            if size > DISCORD_LIMIT:  # whole lines only: a cut link would not work
                break
            lines.append(line)
        return "\n".join(lines)

    # -- /usage ------------------------------------------------------------------------------------------------

    async def usage_text(self, interaction: discord.Interaction[Any], member: discord.Member | None) -> str:
        """Spend against each limit that applies here, for the caller, someone else (moderators) or the pool."""
        who = await requester(interaction)
        engine = self.bot.engine
        if member is not None and member.id != who.user_id and not who.is_moderator:
            raise NotAllowed.said("Only moderators can look at someone else's usage. Use /usage without a member.")
        target_id = member.id if member is not None else who.user_id
        role_ids = tuple(r.id for r in member.roles) if member is not None else who.role_ids
        rule = await engine.guilds.channel_rule(who.guild_id, who.budget_channel_id)
        # In a pool channel your own /usage shows the pool; a moderator asking about someone sees their limits.
        own = member is None or member.id == who.user_id
        payer = Payer.POOL if rule.pool and own else Payer.MEMBER
        limits = await engine.ledger.limits_for(
            payer=payer, guild_id=who.guild_id, user_id=target_id, role_ids=role_ids, channel_id=who.budget_channel_id
        )
        standings = await engine.ledger.standings(
            limits,
            guild_id=who.guild_id,
            now=discord.utils.utcnow(),
            dry_run=engine.settings.dry_run,
            user_id=target_id,
        )
        if payer is Payer.POOL:
            head = f"This channel is a team pool: jobs here are paid from <#{who.budget_channel_id}>'s budget."
        elif member is not None and member.id != who.user_id:
            head = f"Usage of <@{target_id}>:"
        else:
            head = "Your usage:"
        if engine.settings.dry_run:
            head = f"{DRY}Simulated spend, kept apart from real spend. {head}"
        lines = [head]
        for st in standings:
            label = own_limit_label(st.limit)
            if member is not None and member.id != who.user_id:
                label = label.replace("your ", "their ")
            lines.append(
                standing_line(
                    label, st.limit.amount_micros, st.spent_micros, st.reserved_micros, st.left_micros, st.resets_at
                )
            )
        if not standings:
            lines.append("No spend limits apply here.")
        return fit("\n".join(lines))


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(UsageCog(bot))
