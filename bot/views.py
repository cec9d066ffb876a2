"""Persistent buttons keyed by job id (`hailuo:<verb>:<job_id>`) and the Remix modal.

State never lives in the custom_id beyond the job id: callbacks reload the job and decide from the row.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Protocol, cast

import discord

if TYPE_CHECKING:
    from bot.flow import VideoFlow

VERBS = ("reroll", "remix", "delete", "cancel")
TEMPLATE = r"hailuo:(?P<verb>reroll|remix|delete|cancel):(?P<job_id>[0-9]+)"
REMIX_MODAL_PREFIX = "hailuo:remix-modal:"

_LOOK = {
    "reroll": ("Reroll", discord.ButtonStyle.primary, "🎲"),
    "remix": ("Remix", discord.ButtonStyle.secondary, "✏️"),
    "delete": ("Delete", discord.ButtonStyle.danger, "🗑️"),
    "cancel": ("Cancel", discord.ButtonStyle.danger, "🛑"),
}


class _FlowHost(Protocol):
    flow: VideoFlow


def custom_id(verb: str, job_id: int) -> str:
    return f"hailuo:{verb}:{job_id}"


def parse_custom_id(value: str) -> tuple[str, int] | None:
    m = re.fullmatch(TEMPLATE, value)
    return (m["verb"], int(m["job_id"])) if m else None


def flow_of(interaction: discord.Interaction[Any]) -> VideoFlow:
    return cast(_FlowHost, interaction.client).flow


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
        await flow_of(interaction).on_button(interaction, self.verb, self.job_id)


def result_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for verb in ("reroll", "remix", "delete"):
        view.add_item(JobButton(verb, job_id))
    return view


def status_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton("cancel", job_id))
    return view


class RemixModal(discord.ui.Modal):
    """Edit the prompt of an earlier job and submit it as a new job."""

    def __init__(self, job_id: int, prompt: str) -> None:
        super().__init__(title="Remix this clip", custom_id=f"{REMIX_MODAL_PREFIX}{job_id}", timeout=900)
        self.job_id = job_id
        self.prompt: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
            label="Prompt",
            style=discord.TextStyle.paragraph,
            default=prompt[:2000],
            min_length=2,
            max_length=2000,
            custom_id="prompt",
        )
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await flow_of(interaction).on_remix_submit(interaction, self.job_id, self.prompt.value)

    async def on_error(self, interaction: discord.Interaction[Any], error: Exception, /) -> None:  # type: ignore[override]
        from bot.tree import report_error

        await report_error(interaction, error)
