"""Who is asking, and may they: the Requester of an interaction, and the moderator checks (run at run time,
whatever Discord's command permissions say) shared by /video's buttons, /usage, /limits and /videoadmin.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import discord
from discord import app_commands

from bot.core.errors import NotAllowed
from bot.core.plans import Requester
from bot.ui.texts_errors import error_text

if TYPE_CHECKING:
    from bot.core.engine import Engine
    from bot.store.guilds import GuildConfig

log = logging.getLogger(__name__)

T = TypeVar("T")
Check = Callable[[discord.Interaction[Any]], Coroutine[Any, Any, bool]]

LIMITS_ACTION = "manage video spend limits"
SETTINGS_ACTION = "change the video bot's server settings"


class EngineHost(Protocol):
    @property
    def engine(self) -> Engine: ...


def engine_of(interaction: discord.Interaction[Any]) -> Engine:
    return cast(EngineHost, interaction.client).engine


# -- who may act -------------------------------------------------------------------------------------------------


async def defer(interaction: discord.Interaction[Any]) -> None:
    """Defer ephemerally unless already answered (the first await of every moderator interaction)."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)


def has_manage_server(interaction: discord.Interaction[Any]) -> bool:
    perms = interaction.permissions
    return isinstance(interaction.user, discord.Member) and (perms.manage_guild or perms.administrator)


def _has_role(member: discord.Member, cfg: GuildConfig) -> bool:
    return cfg.moderator_role_id is not None and any(r.id == cfg.moderator_role_id for r in member.roles)


async def is_moderator(interaction: discord.Interaction[Any]) -> bool:
    """Manage Server (or Administrator) in this channel, or the server's moderator role."""
    member = interaction.user
    if interaction.guild_id is None or not isinstance(member, discord.Member):
        return False
    if has_manage_server(interaction):
        return True
    return _has_role(member, await engine_of(interaction).guilds.get(interaction.guild_id))


async def require_moderator(interaction: discord.Interaction[Any], action: str) -> None:
    """Raise NotAllowed, naming what would have been enough, unless the member is a moderator."""
    if interaction.guild_id is None or not isinstance(interaction.user, discord.Member):
        raise NotAllowed.said("This command works in a server, not in direct messages.")
    if has_manage_server(interaction):
        return
    cfg = await engine_of(interaction).guilds.get(interaction.guild_id)
    if _has_role(interaction.user, cfg):
        return
    role = interaction.guild.get_role(cfg.moderator_role_id) if interaction.guild and cfg.moderator_role_id else None
    if role is not None:
        raise NotAllowed.said(f"You need Manage Server or the {role.name} role to {action}.")
    raise NotAllowed.said(f"You need the Manage Server permission to {action}.")


async def require_admin(interaction: discord.Interaction[Any], action: str) -> None:
    """Manage Server itself: the moderator role is not enough (it is what this protects)."""
    if not has_manage_server(interaction):
        raise NotAllowed.said(f"Only members with the Manage Server permission can {action}; the moderator role can't.")


def _as_check(require: Callable[[discord.Interaction[Any], str], Awaitable[None]], action: str) -> Check:
    async def predicate(interaction: discord.Interaction[Any]) -> bool:
        await defer(interaction)  # before the database read, so the 3-second deadline never bites
        # The tree's error handler sees only AppCommandErrors raised by checks; anything else would be lost.
        try:
            await require(interaction, action)
        except NotAllowed as exc:
            raise app_commands.CheckFailure(error_text(exc)) from exc
        except Exception as exc:  # e.g. the database: logged with an error id, a generic line for the member
            raise app_commands.AppCommandError(f"the moderator check failed: {exc!r}") from exc
        return True

    return predicate


def moderator_check(action: str) -> Check:
    """An app_commands check predicate (also usable as a GroupCog's interaction_check)."""
    return _as_check(require_moderator, action)


def admin_check(action: str) -> Check:
    return _as_check(require_admin, action)


def admins_only(action: str) -> Callable[[T], T]:
    """Manage Server at run time, for the commands the moderator role must not reach."""
    return app_commands.check(admin_check(action))


def guild_of(interaction: discord.Interaction[Any]) -> int:
    if interaction.guild_id is None:
        raise NotAllowed.said("This command works in a server, not in direct messages.")
    return interaction.guild_id


async def send_with_file(interaction: discord.Interaction[Any], text: str, data: bytes, filename: str) -> None:
    """Answer ephemerally with one attached file (after a deferral)."""
    file = discord.File(io.BytesIO(data), filename=filename)
    await interaction.followup.send(text, file=file, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())


async def requester(interaction: discord.Interaction[Any]) -> Requester:
    """Who asks, and where (a thread's budget channel is its parent)."""
    if interaction.guild_id is None or not isinstance(interaction.user, discord.Member):
        raise NotAllowed.said("Video jobs run in a server channel, not in direct messages.")
    member = interaction.user
    channel = interaction.channel
    parent = channel.parent_id if isinstance(channel, discord.Thread) else None
    return Requester(
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id or 0,
        user_id=member.id,
        role_ids=tuple(r.id for r in member.roles),
        parent_channel_id=parent,
        is_moderator=await is_moderator(interaction),
    )
