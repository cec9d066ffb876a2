"""/limits set | clear | show | report: spend limits per member, role, channel and server (moderators)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands

from bot.ui.checks import LIMITS_ACTION, defer, send_with_file
from bot.ui.groups import ModeratorGroupCog
from bot.ui.tree import send_ephemeral
from cogs.limits._desk import LimitsDesk

if TYPE_CHECKING:
    from bot.app import HailuoBot

PeriodOption = Literal["day", "week", "month"]
Amount = app_commands.Range[float, 0, 1_000_000]

_PERIOD = "Day, week or month (calendar periods in UTC)"
_TARGETS = {
    "member": "A member's own limit",
    "role": "A limit for each member with this role",
    "channel": "A channel's (or team pool's) limit",
}


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class LimitsCog(ModeratorGroupCog, group_name="limits", group_description="Video spend limits (moderators)"):
    action = LIMITS_ACTION

    def __init__(self, bot: HailuoBot) -> None:
        self.desk = LimitsDesk(bot)
        super().__init__(bot)

    @app_commands.command(
        name="set",
        description="Set a spend limit in USD for a member, role, channel, or (if none is given) the whole server",
    )
    @app_commands.describe(period=_PERIOD, amount="USD per period; 0 blocks all spending", **_TARGETS)
    async def set_(
        self,
        interaction: discord.Interaction[HailuoBot],
        period: PeriodOption,
        amount: Amount,
        member: discord.Member | None = None,
        role: discord.Role | None = None,
        channel: discord.TextChannel | None = None,
    ) -> None:
        await defer(interaction)
        text = await self.desk.limits_set(
            interaction, period=period, amount=amount, member=member, role=role, channel=channel
        )
        await send_ephemeral(interaction, text)

    @app_commands.command(
        name="clear",
        description="Remove the spend limit of a member, role, channel, or (if none is given) the whole server",
    )
    @app_commands.describe(period=_PERIOD, **_TARGETS)
    async def clear(
        self,
        interaction: discord.Interaction[HailuoBot],
        period: PeriodOption,
        member: discord.Member | None = None,
        role: discord.Role | None = None,
        channel: discord.TextChannel | None = None,
    ) -> None:
        await defer(interaction)
        text = await self.desk.limits_clear(interaction, period=period, member=member, role=role, channel=channel)
        await send_ephemeral(interaction, text)

    @app_commands.command(
        name="show", description="Show the limits in force, with spent, reserved, left and reset time"
    )
    @app_commands.describe(**_TARGETS)
    async def show(
        self,
        interaction: discord.Interaction[HailuoBot],
        member: discord.Member | None = None,
        role: discord.Role | None = None,
        channel: discord.TextChannel | None = None,
    ) -> None:
        await defer(interaction)
        await send_ephemeral(
            interaction, await self.desk.limits_show(interaction, member=member, role=role, channel=channel)
        )

    @app_commands.command(name="report", description="Show spend totals, top members, channels and pools, with a chart")
    @app_commands.describe(period="Calendar period holding today, UTC (default: month)")
    async def report(self, interaction: discord.Interaction[HailuoBot], period: PeriodOption | None = None) -> None:
        await defer(interaction)
        text, png = await self.desk.limits_report(interaction, period=period)
        await send_with_file(interaction, text, png, "spend.png")


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(LimitsCog(bot))
