"""The one place an exception becomes text for a member."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import discord
from discord import app_commands

from bot.core.errors import UserFacingError
from bot.ui.texts import fit
from bot.ui.texts_errors import error_text

log = logging.getLogger(__name__)

# No promise about money here: the error may come after a job was reserved or submitted (/jobs shows where it is).
GENERIC = (
    "Something went wrong on the bot's side (error id {eid}). Please try again; if it keeps happening, "
    "give a moderator this id."
)


def message_for(error: BaseException) -> tuple[str, bool]:
    """(text, expected): the member's text for an error, and whether it is an expected outcome."""
    if isinstance(error, app_commands.CommandInvokeError | discord.app_commands.TransformerError):
        inner = error.__cause__ or getattr(error, "original", None)
        if isinstance(inner, BaseException):
            error = inner
    if isinstance(error, UserFacingError):
        return error_text(error), True
    if isinstance(error, app_commands.CommandNotFound | app_commands.CommandSignatureMismatch):
        return "This command is being updated and can't run right now. Try again in a minute.", True
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command works in a server, not in direct messages.", True
    if isinstance(error, app_commands.MissingPermissions | app_commands.CheckFailure):
        text = str(error) or "You are not allowed to use this command here."
        return text, True
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down: try again in {error.retry_after:.0f} s.", True
    return "", False


async def send_ephemeral(interaction: discord.Interaction[Any], text: str) -> None:
    """Answer ephemerally whether or not the interaction was answered, and cope with an expired one."""
    allowed = discord.AllowedMentions.none()
    text = fit(text)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=allowed)
        else:
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=allowed)
    except discord.HTTPException as exc:
        log.info("could not answer interaction %s: %s", interaction.id, exc)


async def report_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    text, expected = message_for(error)
    if not expected:
        eid = secrets.token_hex(4)
        log.error("error id %s in interaction %s", eid, interaction.id, exc_info=error)
        text = GENERIC.format(eid=eid)
    await send_ephemeral(interaction, text)


class HailuoTree(app_commands.CommandTree[Any]):
    async def on_error(self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError) -> None:
        await report_error(interaction, error)
