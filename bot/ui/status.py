"""StatusReporter: one status message per job, edited as the job moves, at most one edit per interval.

Edits are coalesced, never dropped: an edit asked for within the interval waits until the interval has passed,
and only the newest state then goes out. A job's phase never goes backwards on screen (a late poll round that
still read "processing" can't reopen a finished status).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

import discord

from bot.core.background import TaskGroup
from bot.core.models import Job, utc_now
from bot.store.interface import Jobs
from bot.ui.buttons import retry_view, status_view
from bot.ui.texts import status_message

log = logging.getLogger(__name__)

FINAL_PHASES = frozenset({"done", "failed", "cancelled", "expired"})
RETRY_PHASES = frozenset({"failed", "expired"})
#: How far along each phase is; a status never shows a lower rank than it already showed or has waiting.
RANK = {"queued": 0, "generating": 1, "delivering": 2} | dict.fromkeys(FINAL_PHASES, 3)
#: How many recently ended jobs are remembered (to ignore stale routine news); older ones are forgotten.
ENDED_MEMORY = 10_000
FLUSH_TIMEOUT = 10.0
USUAL_TTL = 60.0
#: An edit that Discord answers with a 5xx (discord.py retries some itself, never a 503) is tried again this many
#: times in all, after EDIT_RETRY_DELAY seconds, doubled each time, with jitter; a newer edit waiting replaces it.
EDIT_TRIES = 5
EDIT_RETRY_DELAY = 1.0
#: The status post is awaited before the job is submitted: fewer tries (the first retry after ~1 s, then ~2 s).
POST_TRIES = 3


def status_nonce(job_id: int) -> str:
    """The nonce of a job's status message: Discord answers a repeated nonce with the message it already made."""
    return f"hs{job_id}"[:25]


def _backoff(tries: int) -> float:
    """Seconds to wait before try number `tries + 2`: EDIT_RETRY_DELAY doubled per try, with jitter."""
    return float(EDIT_RETRY_DELAY * 2**tries * random.uniform(0.5, 1.0))


T = TypeVar("T")


async def send_retrying(
    send: Callable[[], Awaitable[T]],
    *,
    what: str,
    tries: int = POST_TRIES,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """`send()`, tried again after a 5xx (discord.py retries some 5xx itself, never a 503), up to `tries` in all,
    after a backoff with jitter. The caller's post carries a nonce, so a post Discord made before answering 5xx is
    answered with that message again, never made twice."""
    attempt = 0
    while True:
        try:
            return await send()
        except discord.HTTPException as exc:
            attempt += 1
            if exc.status < 500 or attempt >= tries:
                raise
            log.info("%s failed (%s); trying again", what, exc)
            await sleep(_backoff(attempt - 1))


@dataclass(frozen=True, slots=True)
class _Edit:
    job: Job
    phase: str
    progress: int | None
    detail: str | None
    tries: int = 0


class StatusReporter:
    def __init__(
        self,
        client: discord.Client,
        jobs: Jobs,
        *,
        interval: float,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._jobs = jobs
        self._interval = interval
        self._clock = clock  # the engine's clock: tests move it by hand
        self._sleep = sleep
        self._last_edit: dict[int, datetime] = {}
        self._waiting: dict[int, _Edit] = {}  # the newest edit not yet sent, per job
        self._shown: dict[int, int] = {}  # the rank of the phase each running job's status shows
        self._shown_text: dict[int, str] = {}  # what each running job's status says now
        self._timers = TaskGroup("status-edits")
        self._usual: dict[tuple[str, int, bool], tuple[datetime, float]] = {}  # size -> (when read, median seconds)
        # Jobs whose status reached a final phase, oldest first: later routine news is stale. Bounded, since a stale
        # update follows its job's end within one poll round. True: the status message was deleted (no edit at all).
        self._ended: dict[int, bool] = {}
        self._closing = False

    async def create(self, job: Job, channel: discord.abc.Messageable) -> discord.Message:
        """Post the job's status message and remember where it is (durably, so a restart can edit it)."""
        msg = await self._post(job, channel)
        await self._jobs.set_status_message(job.id, channel_id=msg.channel.id, message_id=msg.id)
        self._last_edit[job.id] = self._clock()
        return msg

    async def _post(self, job: Job, channel: discord.abc.Messageable) -> discord.Message:
        """Post the status; a 5xx is tried again with the same nonce, so a post Discord made and failed is kept once."""

        def send() -> Awaitable[discord.Message]:
            return channel.send(
                status_message(job, "queued"),
                view=status_view(job.id),
                allowed_mentions=discord.AllowedMentions.none(),
                nonce=status_nonce(job.id),
            )

        return await send_retrying(send, what=f"job={job.id} status post", sleep=self._sleep)

    async def update(
        self,
        job: Job,
        phase: str,
        *,
        progress: int | None = None,
        detail: str | None = None,
    ) -> None:
        """Show `phase`: now if the interval since the last edit has passed, else once it has (newest wins)."""
        if job.status_message_id is None or job.status_channel_id is None:
            return
        if job.id in self._ended and (phase not in FINAL_PHASES or self._ended[job.id]):
            return  # e.g. a poll round that read "processing" just before a webhook finished the job
        waiting = self._waiting.get(job.id)
        rank = RANK.get(phase, 0)
        if rank < self._shown.get(job.id, 0) or (waiting is not None and RANK.get(waiting.phase, 0) > rank):
            return  # a later phase is already shown or waiting to be shown
        if phase in FINAL_PHASES:
            self._end(job.id, deleted=False)
        edit = _Edit(job, phase, progress, detail)
        last = self._last_edit.get(job.id)
        wait = 0.0 if last is None else self._interval - (self._clock() - last).total_seconds()
        if wait <= 0 and waiting is None:
            await self._send(edit)
            return
        self._waiting[job.id] = edit
        if waiting is None:  # no timer yet for this job
            self._timers.spawn(self._send_later(job.id, max(wait, 0.0)), name=f"status-{job.id}")

    def _end(self, job_id: int, *, deleted: bool) -> None:
        self._ended[job_id] = deleted
        while len(self._ended) > ENDED_MEMORY:
            del self._ended[next(iter(self._ended))]

    async def remove(self, job: Job) -> None:
        """Delete the job's status message (its clips are posted): a busy channel keeps one message per job."""
        if job.status_message_id is None or job.status_channel_id is None:
            return
        self._end(job.id, deleted=True)  # no edit may follow, whether waiting or late
        self._waiting.pop(job.id, None)
        for memo in (self._last_edit, self._shown, self._shown_text):
            memo.pop(job.id, None)
        message = self._client.get_partial_messageable(job.status_channel_id).get_partial_message(job.status_message_id)
        tries = 0
        while True:  # a 429 is waited out by discord.py; a 5xx is tried again here, a few times
            try:
                await message.delete()
                return
            except discord.NotFound:
                return
            except discord.HTTPException as exc:
                tries += 1
                if exc.status < 500 or tries >= POST_TRIES or self._closing:
                    log.info("job=%s status delete failed: %s", job.id, exc)
                    return
                log.info("job=%s status delete failed (%s); trying again", job.id, exc)
                await asyncio.sleep(_backoff(tries - 1))

    async def _send_later(self, job_id: int, delay: float) -> None:
        await self._sleep(delay)
        edit = self._waiting.pop(job_id, None)
        if edit is not None:
            await self._send(edit)

    async def _send(self, edit: _Edit) -> None:
        job = edit.job
        assert job.status_channel_id is not None and job.status_message_id is not None
        if self._ended.get(job.id):
            return  # the status message was deleted (its clips are posted): a late or retried edit has no place
        final = edit.phase in FINAL_PHASES
        usual = await self._usual_seconds(job) if edit.phase == "generating" else None
        text = status_message(job, edit.phase, progress=edit.progress, detail=edit.detail, usual_seconds=usual)
        if not final and self._shown_text.get(job.id) == text:
            return  # nothing changed (the running time counts by itself in Discord): no edit
        self._shown_text[job.id] = text
        self._last_edit[job.id] = self._clock()
        self._shown[job.id] = RANK.get(edit.phase, 0)
        view: discord.ui.View | None = status_view(job.id)  # Cancel while it runs
        if final:  # a failed or expired job can be tried again from its status; a finished one has its clips
            view = retry_view(job.id) if edit.phase in RETRY_PHASES else None
        channel: Any = self._client.get_partial_messageable(job.status_channel_id)
        try:
            await channel.get_partial_message(job.status_message_id).edit(
                content=text, view=view, allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as exc:
            if exc.status >= 500 and edit.tries + 1 < EDIT_TRIES and not self._closing:
                self._retry(edit, exc)
                return
            log.info("job=%s status edit failed: %s", job.id, exc)
        if final and job.id not in self._waiting:
            self._last_edit.pop(job.id, None)  # the job is over: forget it (ended jobs are remembered apart)
            self._shown.pop(job.id, None)
            self._shown_text.pop(job.id, None)

    async def _usual_seconds(self, job: Job) -> float | None:
        """How long jobs of this size usually take; a known figure is reused for a minute (one query per size)."""
        key = (job.resolution, job.duration, job.dry_run)
        cached = self._usual.get(key)
        if cached is not None and (self._clock() - cached[0]).total_seconds() < USUAL_TTL:
            return cached[1]
        try:
            seconds = await self._jobs.usual_seconds(job.resolution, job.duration, dry_run=job.dry_run)
        except Exception as exc:  # a figure for members' comfort: never worth failing a status edit
            log.info("job=%s usual time unavailable: %s", job.id, exc)
            return None
        if seconds is not None:
            self._usual[key] = (self._clock(), seconds)
        return seconds

    def _retry(self, edit: _Edit, exc: discord.HTTPException) -> None:
        """Discord failed on its side: show this edit later, unless a newer one is already waiting to go out."""
        job_id = edit.job.id
        log.info("job=%s status edit failed (%s); trying again", job_id, exc)
        self._shown_text.pop(job_id, None)  # not shown after all
        if job_id in self._waiting:
            return  # its timer sends the newer edit
        self._waiting[job_id] = replace(edit, tries=edit.tries + 1)
        self._timers.spawn(self._send_later(job_id, _backoff(edit.tries)), name=f"status-{job_id}")

    async def flush(self) -> None:
        """On shutdown: send every waiting edit now (bounded), so no status is left showing an old phase."""
        self._closing = True
        await self._timers.cancel_all()
        waiting, self._waiting = self._waiting, {}
        try:
            async with asyncio.timeout(FLUSH_TIMEOUT):
                for edit in waiting.values():
                    await self._send(edit)
        except TimeoutError:
            log.warning("shutdown: %d status edit(s) not sent in time", len(waiting))
