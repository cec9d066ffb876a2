"""What a /video request is made of: who asks and where, the options as given, and the checked plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.core.models import ImageInput, Payer, SafetyMode
from bot.store.guilds import ChannelRule


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks, and where. A thread's rules are its parent channel's."""

    guild_id: int
    channel_id: int
    user_id: int
    role_ids: tuple[int, ...] = ()
    parent_channel_id: int | None = None
    is_moderator: bool = False

    @property
    def budget_channel_id(self) -> int:
        return self.parent_channel_id or self.channel_id


@dataclass(frozen=True, slots=True)
class FrameRef:
    """A frame image already at Runware (an imageUpload UUID), reused by reroll and remix."""

    image: str
    frame: str  # "first" | "last"


@dataclass(frozen=True, slots=True)
class VideoOptions:
    """The /video options as given; None means "the server's default"."""

    prompt: str
    resolution: str | None = None
    duration: int | None = None
    variations: int | None = None
    prompt_optimizer: bool | None = None
    first_frame: ImageInput | None = None
    last_frame: ImageInput | None = None
    frames: tuple[FrameRef, ...] = ()  # pre-uploaded frames (reroll/remix)


@dataclass(frozen=True, slots=True)
class JobPlan:
    """A checked request: everything needed to reserve and submit, nothing written yet."""

    who: Requester
    prompt: str
    resolution: str
    duration: int
    width: int
    height: int
    variations: int
    prompt_optimizer: bool
    payer: Payer
    estimate_micros: int
    safety_mode: SafetyMode
    concurrency_cap: int
    channel_rule: ChannelRule
    images: tuple[tuple[str, ImageInput], ...] = ()  # (frame, image) to upload
    frames: tuple[FrameRef, ...] = ()
    parent_job_id: int | None = None
    dry_run: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
