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
REMIX_MODAL_TEMPLATE = r"hailuo:remix-modal:(?P<job_id>[0-9]+)"

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


class RemixModal(discord.ui.Modal):
    """Edit the prompt of an earlier job and submit it as a new job.

    The submission is routed by its custom_id (see `remix_submission`), never through this object: a modal opened
    before a restart, or left open for a long time, still works.
    """

    def __init__(self, job_id: int, prompt: str) -> None:
        super().__init__(title="Remix this clip", custom_id=f"{REMIX_MODAL_PREFIX}{job_id}", timeout=None)
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
        self.stop()  # a stopped modal is not kept in discord.py's view store, which a restart would empty


def remix_submission(interaction: discord.Interaction[Any]) -> tuple[int, str] | None:
    """(job id, prompt) when the interaction is a submitted Remix modal, read from the interaction's own data."""
    if interaction.type is not discord.InteractionType.modal_submit:
        return None
    data = cast(dict[str, Any], interaction.data or {})
    m = re.fullmatch(REMIX_MODAL_TEMPLATE, str(data.get("custom_id", "")))
    if m is None:
        return None
    return int(m["job_id"]), _field_value(data.get("components") or [], "prompt") or ""


def _field_value(components: list[Any], custom_id: str) -> str | None:
    """A text input's value in modal components (action rows or labels, at any depth)."""
    for c in components:
        if not isinstance(c, dict):
            continue
        if c.get("custom_id") == custom_id and isinstance(c.get("value"), str):
            return str(c["value"])
        inner = [*(c.get("components") or []), *([c["component"]] if isinstance(c.get("component"), dict) else [])]
        found = _field_value(inner, custom_id)
        if found is not None:
            return found
    return None
