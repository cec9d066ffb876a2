"""/videoadmin: server defaults, channel rules, safety, concurrency, moderator role, pause and resume, the audit
trail and the blocklist (moderators)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands

from bot.ui.checks import SETTINGS_ACTION, admins_only, defer
from bot.ui.groups import ModeratorGroupCog
from bot.ui.tree import send_ephemeral
from cogs.admin._desk import SettingsDesk

if TYPE_CHECKING:
    from bot.app import HailuoBot

Phrase = app_commands.Range[str, 1, 100]


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class AdminCog(ModeratorGroupCog, group_name="videoadmin", group_description="Video bot settings (moderators)"):
    action = SETTINGS_ACTION

    def __init__(self, bot: HailuoBot) -> None:
        self.desk = SettingsDesk(bot)
        super().__init__(bot)

    @app_commands.command(name="defaults", description="Server defaults for /video; leave all out to see them")
    @app_commands.describe(
        resolution="Default resolution",
        duration="Default length in seconds (10 s only at 768p)",
        variations_cap="Most variations one /video may ask for (1–20)",
        prompt_optimizer="Let MiniMax rewrite prompts by default",
    )
    async def defaults(
        self,
        interaction: discord.Interaction[HailuoBot],
        resolution: Literal["768p", "1080p"] | None = None,
        duration: Literal[6, 10] | None = None,
        variations_cap: app_commands.Range[int, 1, 20] | None = None,
        prompt_optimizer: bool | None = None,
    ) -> None:
        await defer(interaction)
        text = await self.desk.defaults(
            interaction,
            resolution=resolution,
            duration=duration,
            variations_cap=variations_cap,
            prompt_optimizer=prompt_optimizer,
        )
        await send_ephemeral(interaction, text)

    @app_commands.command(name="channel", description="Where /video may run, a thread per job, team pool channels")
    @app_commands.describe(
        channel="The channel to configure",
        allowed="Allow /video here (once any channel is allowed, only allowed channels may use it)",
        threads="Give each job its own thread for status, clips and discussion",
        pool="Team pool: jobs here are paid from the channel's budget, not the member's",
    )
    async def channel(
        self,
        interaction: discord.Interaction[HailuoBot],
        channel: discord.TextChannel,
        allowed: bool | None = None,
        threads: bool | None = None,
        pool: bool | None = None,
    ) -> None:
        await defer(interaction)
        text = await self.desk.channel(interaction, channel=channel, allowed=allowed, threads=threads, pool=pool)
        await send_ephemeral(interaction, text)

    @app_commands.command(name="safety", description="How Runware checks generated clips for unsafe content")
    @app_commands.describe(mode="None (no checks), fast, or full (the most thorough)")
    async def safety(self, interaction: discord.Interaction[HailuoBot], mode: Literal["none", "fast", "full"]) -> None:
        await defer(interaction)
        await send_ephemeral(interaction, await self.desk.safety(interaction, mode=mode))

    @app_commands.command(name="concurrency", description="Cap on a member's unfinished video jobs")
    @app_commands.describe(per_member="Unfinished jobs one member may have at a time")
    async def concurrency(
        self, interaction: discord.Interaction[HailuoBot], per_member: app_commands.Range[int, 1, 50]
    ) -> None:
        await defer(interaction)
        await send_ephemeral(interaction, await self.desk.concurrency(interaction, per_member=per_member))

    @app_commands.command(name="moderator-role", description="A role that counts as moderator (Manage Server only)")
    @app_commands.describe(role="The moderator role; pick @everyone to remove it")
    @admins_only("choose the moderator role")
    async def moderator_role(self, interaction: discord.Interaction[HailuoBot], role: discord.Role) -> None:
        await defer(interaction)
        await send_ephemeral(interaction, await self.desk.moderator_role(interaction, role=role))

    @app_commands.command(name="confirm-above", description="Ask members to confirm jobs that cost at least this")
    @app_commands.describe(amount="USD; a job estimated at this or more asks first (0 never asks)")
    async def confirm_above(
        self, interaction: discord.Interaction[HailuoBot], amount: app_commands.Range[float, 0, 10000]
    ) -> None:
        await defer(interaction)
        await send_ephemeral(interaction, await self.desk.confirm_above(interaction, amount=amount))

    @app_commands.command(name="pause", description="Stop new video jobs in this server; running ones finish")
    async def pause(self, interaction: discord.Interaction[HailuoBot]) -> None:
        await defer(interaction)
        await send_ephemeral(interaction, await self.desk.pause(interaction, paused=True))

    @app_commands.command(name="resume", description="Take new video jobs again")
    async def resume(self, interaction: discord.Interaction[HailuoBot]) -> None:
        await defer(interaction)
        await send_ephemeral(interaction, await self.desk.pause(interaction, paused=False))

    @app_commands.command(name="audit", description="Latest changes to limits and settings: when, who, what, old → new")
    @app_commands.describe(member="Only the changes this moderator made", count="How many changes (1–50, default 20)")
    async def audit(
        self,
        interaction: discord.Interaction[HailuoBot],
        member: discord.Member | None = None,
        count: app_commands.Range[int, 1, 50] = 20,
    ) -> None:
        await defer(interaction)
        for page in await self.desk.audit(interaction, member=member, count=count):
            await send_ephemeral(interaction, page)  # whole rows per message, each within Discord's 2000 characters

    blocklist = app_commands.Group(name="blocklist", description="Phrases no prompt in this server may contain")

    @blocklist.command(name="add", description="Refuse prompts holding this word or phrase (any case or width)")
    @app_commands.describe(phrase="A word or phrase, 1–100 characters")
    async def blocklist_add(self, interaction: discord.Interaction[HailuoBot], phrase: Phrase) -> None:
        await defer(interaction)
        await send_ephemeral(interaction, await self.desk.blocklist_add(interaction, phrase=phrase))

    @blocklist.command(name="remove", description="Allow a blocked word or phrase again")
    @app_commands.describe(phrase="The phrase as listed (case and width do not matter)")
    async def blocklist_remove(self, interaction: discord.Interaction[HailuoBot], phrase: Phrase) -> None:
        await defer(interaction)
        await send_ephemeral(interaction, await self.desk.blocklist_remove(interaction, phrase=phrase))

    @blocklist.command(name="list", description="Show the words and phrases blocked in this server")
    async def blocklist_list(self, interaction: discord.Interaction[HailuoBot]) -> None:
        await defer(interaction)
        await send_ephemeral(interaction, await self.desk.blocklist_list(interaction))


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(AdminCog(bot))
