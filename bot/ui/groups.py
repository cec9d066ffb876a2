"""What the moderators' command groups (/limits, /videoadmin) share: the cog scaffolding and the desk behind it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import discord
from discord.ext import commands

from bot.ui.checks import EngineHost, moderator_check

if TYPE_CHECKING:
    from bot.core.engine import Engine


class ModeratorGroupCog(commands.GroupCog):
    """A slash command group for moderators, checked again at run time: Manage Server or the moderator role.

    Subclasses name the group (`group_name=...`), the `action` a refusal names, and keep discord.py's
    `guild_only` / `default_permissions` decorators on themselves.
    """

    action: ClassVar[str]

    def __init__(self, bot: EngineHost) -> None:
        self.bot = bot
        self._is_moderator = moderator_check(self.action)
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await self._is_moderator(interaction)


class Desk:
    """The work behind a group's commands, with the engine of the bot that hosts it."""

    def __init__(self, host: EngineHost) -> None:
        self._host = host

    @property
    def engine(self) -> Engine:
        return self._host.engine
