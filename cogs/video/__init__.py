"""/video and the job buttons: one job from a prompt and optional first/last frame images, rerolled, remixed,
cancelled or deleted later.

The flow lives in `_flow.py` (Animate image in `_animate.py`); the modals in `_buttons.py`; the buttons themselves are
`bot.ui.buttons.JobButton` (registered by the bot at start-up so they survive restarts), whose clicks this cog routes
to its flow. The message command **Animate image** is added to the tree when the cog loads and removed when it unloads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.ui import buttons
from cogs.video import _animate, _extend
from cogs.video._buttons import modal_submission
from cogs.video._flow import VideoFlow

if TYPE_CHECKING:
    from bot.app import HailuoBot

RESOLUTION_CHOICES = [
    app_commands.Choice(name="768p (1366×768)", value="768p"),
    app_commands.Choice(name="1080p (1920×1080, 6 s only)", value="1080p"),
]
DURATION_CHOICES = [
    app_commands.Choice(name="6 seconds", value=6),
    app_commands.Choice(name="10 seconds (768p only)", value=10),
]


VERBS = ("reroll", "remix", "extend", "delete", "cancel", "offer-start", "offer-cancel")


class VideoCog(commands.Cog):
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot
        self.flow = VideoFlow(bot)
        self.animate_menu: app_commands.ContextMenu = app_commands.ContextMenu(
            name="Animate image", callback=self.animate_image
        )
        self.animate_menu.guild_only = True

    async def cog_load(self) -> None:
        for verb in VERBS:
            buttons.on_click(verb, self._clicked(verb))
        self.bot.tree.add_command(self.animate_menu)

    async def cog_unload(self) -> None:
        for verb in VERBS:
            buttons.on_click(verb, None)
        self.bot.tree.remove_command(self.animate_menu.name, type=self.animate_menu.type)

    async def animate_image(self, interaction: discord.Interaction[HailuoBot], message: discord.Message) -> None:
        """Apps menu on a message: its first image becomes the first frame of a new job (a modal asks the prompt)."""
        await _animate.open_modal(interaction, message)

    def _clicked(self, verb: str) -> buttons.ClickHandler:
        async def handler(interaction: discord.Interaction[Any], job_id: int) -> None:
            if verb in ("offer-start", "offer-cancel"):
                await self.flow.on_offer(interaction, verb, job_id)
            elif verb == "extend":
                await _extend.open_modal(self.flow, interaction, job_id)
            else:
                await self.flow.on_button(interaction, verb, job_id)

        return handler

    @app_commands.command(name="video", description="Make a short cinematic clip from a prompt and optional frames")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What happens in the clip (2–2000 characters)",
        first_frame="Image the clip starts from (PNG, JPEG or WEBP)",
        last_frame="Image the clip ends on (PNG, JPEG or WEBP)",
        resolution="768p or 1080p (server default if left out)",
        duration="Length in seconds: 6, or 10 at 768p",
        variations="How many different clips to make from this prompt (each one is charged; default 1)",
        prompt_optimizer="Let MiniMax rewrite the prompt (less reproducible)",
    )
    @app_commands.choices(resolution=RESOLUTION_CHOICES)
    @app_commands.choices(duration=DURATION_CHOICES)
    async def video(
        self,
        interaction: discord.Interaction[HailuoBot],
        prompt: str,
        first_frame: discord.Attachment | None = None,
        last_frame: discord.Attachment | None = None,
        resolution: app_commands.Choice[str] | None = None,
        duration: app_commands.Choice[int] | None = None,
        variations: app_commands.Range[int, 1, 20] | None = None,
        prompt_optimizer: bool | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.flow.video(
            interaction,
            prompt=prompt,
            first_frame=first_frame,
            last_frame=last_frame,
            resolution=resolution.value if resolution else None,
            duration=duration.value if duration else None,
            variations=variations,
            prompt_optimizer=prompt_optimizer,
        )

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[HailuoBot]) -> None:
        """The cog's modals are answered here, by custom_id, so they survive restarts (see _buttons)."""
        sub = modal_submission(interaction)
        if sub is None:
            return
        prompt = sub.values.get("prompt", "")
        if sub.kind == "remix":
            await self.flow.on_remix_submit(interaction, sub.ids[0], prompt)
        elif sub.kind == "extend":
            await _extend.on_submit(self.flow, interaction, sub.ids[0], prompt, sub.values.get("clip"))
        elif sub.kind == "animate" and len(sub.ids) == 2:
            await _animate.on_submit(self.flow, interaction, sub.ids[0], sub.ids[1], prompt)


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(VideoCog(bot))
