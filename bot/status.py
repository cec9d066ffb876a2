"""StatusReporter: one status message per job, edited as the job moves, at most one edit per interval."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import discord

from bot.formatting import status_message
from bot.models import Job
from bot.store.jobs import JobStore
from bot.views import status_view

log = logging.getLogger(__name__)

FINAL_PHASES = frozenset({"done", "failed", "cancelled", "expired"})
#: How many recently ended jobs are remembered (to ignore stale routine news); older ones are forgotten.
ENDED_MEMORY = 10_000


class StatusReporter:
    def __init__(self, client: discord.Client, jobs: JobStore, *, interval: float) -> None:
        self._client = client
        self._jobs = jobs
        self._interval = interval
        self._last_edit: dict[int, float] = {}
        # Jobs whose status reached a final phase, oldest first: later routine news is stale. Bounded, since a stale
        # update follows its job's end within one poll round.
        self._ended: dict[int, None] = {}

    async def create(self, job: Job, channel: discord.abc.Messageable) -> discord.Message:
        """Post the job's status message and remember where it is (durably, so a restart can edit it)."""
        msg = await channel.send(
            status_message(job, "queued"),
            view=status_view(job.id),
            allowed_mentions=discord.AllowedMentions.none(),
        )
        await self._jobs.set_status_message(job.id, channel_id=msg.channel.id, message_id=msg.id)
        self._last_edit[job.id] = time.monotonic()
        return msg

    async def update(
        self,
        job: Job,
        phase: str,
        *,
        progress: int | None = None,
        detail: str | None = None,
        force: bool = False,
    ) -> None:
        """Edit the status message; routine edits are throttled, final ones always go out."""
        if job.status_message_id is None or job.status_channel_id is None:
            return
        final = phase in FINAL_PHASES
        if not final and job.id in self._ended:
            return  # e.g. a poll round that read "processing" just before a webhook finished the job
        now = time.monotonic()
        last = self._last_edit.get(job.id)
        if not (final or force) and last is not None and now - last < self._interval:
            return
        self._last_edit[job.id] = now
        if final:
            self._ended[job.id] = None
            while len(self._ended) > ENDED_MEMORY:
                del self._ended[next(iter(self._ended))]
        started = job.submitted_at or job.created_at
        elapsed = (datetime.now(UTC) - started).total_seconds()
        text = status_message(job, phase, elapsed_s=elapsed, progress=progress, detail=detail)
        view: discord.ui.View | None = None if final else status_view(job.id)
        channel: Any = self._client.get_partial_messageable(job.status_channel_id)
        try:
            await channel.get_partial_message(job.status_message_id).edit(
                content=text, view=view, allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as exc:
            log.info("job=%s status edit failed: %s", job.id, exc)
        if final:
            self._last_edit.pop(job.id, None)
