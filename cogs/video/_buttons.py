"""The Remix modal, routed by its custom_id so that a modal opened before a restart still works."""

from __future__ import annotations

import re
from typing import Any, cast

import discord

REMIX_MODAL_PREFIX = "hailuo:remix-modal:"
REMIX_MODAL_TEMPLATE = r"hailuo:remix-modal:(?P<job_id>[0-9]+)"


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
