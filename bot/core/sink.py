"""How finished work leaves the engine. The tracker decides when; a sink (Discord, CLI) decides how."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.core.errors import Failure
from bot.core.models import ClipResult, Job


@dataclass(frozen=True, slots=True)
class Delivered:
    """What happened to one result. `message_id` is where it was posted (None for files or failure)."""

    result_id: int
    ok: bool
    message_id: int | None = None
    channel_id: int | None = None
    how: str = "attachment"  # attachment | link | dm | file | existing | undeliverable


class JobSink(Protocol):
    async def job_submitted(self, job: Job) -> None:
        """Runware accepted the job: show that it is generating."""

    async def job_progress(self, job: Job, progress: int | None) -> None:
        """Still running; `progress` is 0–100 when Runware reports it."""

    async def deliver(self, job: Job, results: Sequence[ClipResult], *, redelivery: bool) -> list[Delivered]:
        """Post these clips. With `redelivery`, an earlier attempt may have posted them already: look first."""

    async def job_failed(self, job: Job, reason: Failure) -> None:
        """The job failed or expired; `reason` says why, as data (bot/ui words it)."""

    async def job_cancelled(self, job: Job) -> None:
        """The member cancelled the job."""


class NullSink:
    """A sink that posts nothing (used until a real one is attached)."""

    async def job_submitted(self, job: Job) -> None:
        return None

    async def job_progress(self, job: Job, progress: int | None) -> None:
        return None

    async def deliver(self, job: Job, results: Sequence[ClipResult], *, redelivery: bool) -> list[Delivered]:
        return [Delivered(r.id, ok=False, how="undeliverable") for r in results]

    async def job_failed(self, job: Job, reason: Failure) -> None:
        return None

    async def job_cancelled(self, job: Job) -> None:
        return None
