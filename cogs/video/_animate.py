"""Animate image: the message command's flow. The image of a message becomes the first frame of a /video job.

The modal names the message (channel and id) in its custom_id; the image is read again when the modal is
submitted, so a modal opened before a restart still works and nothing is downloaded for a modal never sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord

from bot.core.errors import InputError
from bot.core.plans import VideoOptions
from bot.core.policy import clean_prompt
from bot.ui.tree import report_error, send_ephemeral
from cogs.video._buttons import AnimateModal

if TYPE_CHECKING:
    from cogs.video._flow import VideoFlow

NO_IMAGE = "That message has no image to animate."
GONE = "That message is gone (deleted, or I can no longer see it), so there is no image to animate."
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def first_image(message: discord.Message) -> discord.Attachment | None:
    """The message's first attachment that says it is a PNG, JPEG or WEBP (its bytes are checked later)."""
    for attachment in message.attachments:
        kind = (attachment.content_type or "").split(";")[0].strip().lower()
        if kind in IMAGE_TYPES or (not kind and attachment.filename.lower().endswith(IMAGE_SUFFIXES)):
            return attachment
    return None


async def open_modal(interaction: discord.Interaction[Any], message: discord.Message) -> None:
    """The message command: a modal for the prompt, or a plain word when there is no image."""
    if first_image(message) is None:
        await send_ephemeral(interaction, NO_IMAGE)
        return
    await interaction.response.send_modal(AnimateModal(message.channel.id, message.id))


async def _fetch_message(flow: VideoFlow, channel_id: int, message_id: int) -> discord.Message:
    try:
        channel: Any = flow.bot.get_channel(channel_id) or await flow.bot.fetch_channel(channel_id)
        message: discord.Message = await channel.fetch_message(message_id)
    except (discord.NotFound, discord.Forbidden):
        raise InputError.said(GONE) from None
    return message


async def on_submit(
    flow: VideoFlow, interaction: discord.Interaction[Any], channel_id: int, message_id: int, prompt: str
) -> None:
    """A job exactly like /video prompt:<prompt> first_frame:<the image>, with the server's defaults."""
    try:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = await flow.requester(interaction)
        clean_prompt(prompt)  # a bad prompt is refused before the image is downloaded
        attachment = first_image(await _fetch_message(flow, channel_id, message_id))
        if attachment is None:
            raise InputError.said(NO_IMAGE)
        image = await flow.read_attachment(attachment)
        plan = await flow.engine.service.plan(VideoOptions(prompt=prompt, first_frame=image), who)
        await flow.launch(interaction, plan)
    except Exception as exc:
        await report_error(interaction, exc)
