"""Persistent buttons keyed by job id (`hailuo:<verb>:<job_id>`).

State never lives in the custom_id beyond the job id: callbacks reload the job and decide from the row. What a click
does belongs to the cog of that feature: it registers a handler per verb (`on_click`) when it loads, so this module
never imports a cog.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import discord

#: The id is a job's, except for offer-start / offer-cancel, whose id is an offer's (SPEC §4a, confirm-above).
TEMPLATE = r"hailuo:(?P<verb>reroll|remix|extend|delete|cancel|offer-start|offer-cancel):(?P<job_id>[0-9]+)"

_LOOK = {
    "reroll": ("Reroll", discord.ButtonStyle.primary, "🎲"),
    "remix": ("Remix", discord.ButtonStyle.secondary, "✏️"),
    "extend": ("Extend", discord.ButtonStyle.secondary, "⏩"),
    "delete": ("Delete", discord.ButtonStyle.danger, "🗑️"),
    "cancel": ("Cancel", discord.ButtonStyle.danger, "🛑"),
    "offer-start": ("Start", discord.ButtonStyle.success, "▶️"),
    "offer-cancel": ("Cancel", discord.ButtonStyle.secondary, None),
}


ClickHandler = Callable[[discord.Interaction[Any], int], Awaitable[None]]
_handlers: dict[str, ClickHandler] = {}


def on_click(verb: str, handler: ClickHandler | None) -> None:
    """Route clicks on `verb` buttons to `handler` (None: stop routing, e.g. when the cog unloads)."""
    if handler is None:
        _handlers.pop(verb, None)
    else:
        _handlers[verb] = handler


def custom_id(verb: str, job_id: int) -> str:
    return f"hailuo:{verb}:{job_id}"


class JobButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=TEMPLATE):
    """One button of a job; survives restarts because discord.py rebuilds it from the custom_id."""

    def __init__(self, verb: str, job_id: int) -> None:
        label, style, emoji = _LOOK[verb]
        super().__init__(discord.ui.Button(label=label, style=style, emoji=emoji, custom_id=custom_id(verb, job_id)))
        self.verb = verb
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> JobButton:
        return cls(match["verb"], int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        handler = _handlers.get(self.verb)
        if handler is None:  # the feature's cog is not loaded: say so rather than leave the click hanging
            await interaction.response.send_message(
                "This button does not work right now. Try again in a minute.", ephemeral=True
            )
            return
        await handler(interaction, self.job_id)


def result_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for verb in ("reroll", "remix", "extend", "delete"):
        view.add_item(JobButton(verb, job_id))
    return view


def offer_view(offer_id: int) -> discord.ui.View:
    """Start or Cancel a costly job that waits for its member's go (nothing is reserved before Start)."""
    view = discord.ui.View(timeout=None)
    for verb in ("offer-start", "offer-cancel"):
        view.add_item(JobButton(verb, offer_id))
    return view


def retry_view(job_id: int) -> discord.ui.View:
    """On a failed or expired status: try the same request again, or edit the prompt first."""
    view = discord.ui.View(timeout=None)
    for verb in ("reroll", "remix"):
        view.add_item(JobButton(verb, job_id))
    return view


def status_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton("cancel", job_id))
    return view
