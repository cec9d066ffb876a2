"""The modals of the video cog (Remix, Animate image, Extend), routed by their custom_id so that a modal opened
before a restart still works: the submission carries everything needed (ids in the custom_id, values in the data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

import discord

REMIX_MODAL_PREFIX = "hailuo:remix-modal:"
REMIX_MODAL_TEMPLATE = r"hailuo:remix-modal:(?P<job_id>[0-9]+)"
ANIMATE_MODAL_PREFIX = "hailuo:animate-modal:"
EXTEND_MODAL_PREFIX = "hailuo:extend-modal:"
MODAL_TEMPLATE = r"hailuo:(?P<kind>remix|animate|extend)-modal:(?P<ids>[0-9]+(?::[0-9]+)*)"
PROMPT_MIN, PROMPT_MAX = 2, 2000


def _prompt_input(default: str | None) -> discord.ui.TextInput[Any]:
    return discord.ui.TextInput(
        label="Prompt",
        style=discord.TextStyle.paragraph,
        default=default[:PROMPT_MAX] if default else None,
        min_length=PROMPT_MIN,
        max_length=PROMPT_MAX,
        custom_id="prompt",
    )


class RemixModal(discord.ui.Modal):
    """Edit the prompt of an earlier job and submit it as a new job.

    The submission is routed by its custom_id (see `modal_submission`), never through this object: a modal opened
    before a restart, or left open for a long time, still works.
    """

    def __init__(self, job_id: int, prompt: str) -> None:
        super().__init__(title="Remix this clip", custom_id=f"{REMIX_MODAL_PREFIX}{job_id}", timeout=None)
        self.job_id = job_id
        self.prompt: discord.ui.TextInput[Any] = _prompt_input(prompt)
        self.add_item(self.prompt)
        self.stop()  # a stopped modal is not kept in discord.py's view store, which a restart would empty


class AnimateModal(discord.ui.Modal):
    """The prompt for animating the image of a message; the message is named by its channel and id."""

    def __init__(self, channel_id: int, message_id: int) -> None:
        super().__init__(
            title="Animate image", custom_id=f"{ANIMATE_MODAL_PREFIX}{channel_id}:{message_id}", timeout=None
        )
        self.add_item(_prompt_input(None))
        self.stop()


class ExtendModal(discord.ui.Modal):
    """The prompt of the continuation (prefilled) and, when the message holds several clips, which one."""

    def __init__(self, job_id: int, prompt: str, clips: int) -> None:
        super().__init__(title="Extend this clip", custom_id=f"{EXTEND_MODAL_PREFIX}{job_id}", timeout=None)
        self.add_item(_prompt_input(prompt))
        if clips > 1:
            self.add_item(
                discord.ui.TextInput(
                    label=f"Which clip to extend (1–{clips})",
                    style=discord.TextStyle.short,
                    default="1",
                    min_length=1,
                    max_length=2,
                    custom_id="clip",
                )
            )
        self.stop()


@dataclass(frozen=True, slots=True)
class ModalSubmission:
    kind: str  # remix | animate | extend
    ids: tuple[int, ...]
    values: dict[str, str]


def modal_submission(interaction: discord.Interaction[Any]) -> ModalSubmission | None:
    """What a submitted modal of this cog carries, read from the interaction's own data (no stored view)."""
    if interaction.type is not discord.InteractionType.modal_submit:
        return None
    data = cast(dict[str, Any], interaction.data or {})
    m = re.fullmatch(MODAL_TEMPLATE, str(data.get("custom_id", "")))
    if m is None:
        return None
    components = data.get("components") or []
    values = {k: v for k in ("prompt", "clip") if (v := _field_value(components, k)) is not None}
    return ModalSubmission(m["kind"], tuple(int(x) for x in m["ids"].split(":")), values)


def remix_submission(interaction: discord.Interaction[Any]) -> tuple[int, str] | None:
    """(job id, prompt) when the interaction is a submitted Remix modal."""
    sub = modal_submission(interaction)
    if sub is None or sub.kind != "remix":
        return None
    return sub.ids[0], sub.values.get("prompt", "")


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
