"""Recovery: finish what a crash interrupted between a job's row and Runware's acknowledgement (RESERVED jobs).

Never submits twice: the stored task is resubmitted with its own taskUUID, and the client asks getResponse first
whenever the outcome of a submit is unknown. Runs at start-up and before every tracker sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.core.errors import Failure, FailureKind, UserFacingError
from bot.core.models import Job, JobState, utc_now
from bot.core.service import VideoService
from bot.core.tracker import JobTracker
from bot.runware.client import RunwareClient
from bot.runware.errors import RunwareError
from bot.settings import Settings
from bot.store.interface import Jobs
from bot.store.leases import Leases

log = logging.getLogger(__name__)

#: A RESERVED job older than this, not being submitted by this process, was interrupted: recover it.
RESERVED_GRACE = timedelta(seconds=60)


class Recovery:
    def __init__(
        self,
        *,
        settings: Settings,
        jobs: Jobs,
        runware: RunwareClient,
        service: VideoService,
        tracker: JobTracker,
        clock: Callable[[], datetime] = utc_now,
        leases: Leases | None = None,
    ) -> None:
        self._settings = settings
        #: Claims shared with other processes (SPEC §10); None: this process is alone with the database.
        self._leases = leases
        self._jobs = jobs
        self._runware = runware
        self._service = service
        self._tracker = tracker
        self._clock = clock

    async def recover_reserved(self, *, startup: bool = False) -> None:
        """Resubmit, adopt (Runware already holds it), expire or fail every interrupted RESERVED job of this mode."""
        now = self._clock()
        candidates: list[Job] = []
        young: list[Job] = []
        for job in await self._jobs.reserved():
            if self._service.in_flight(job.id):
                continue
            if job.dry_run != self._settings.dry_run:
                continue  # a dry-run job never goes to the real Runware, nor a live one to the simulator
            if not startup and now - job.created_at < RESERVED_GRACE:
                young.append(job)  # its process may still be setting it up (thread, status message, frames)
                continue
            candidates.append(job)
        if self._leases is not None:
            # A young job whose process died (its lease lapsed) or stopped (released it) is taken over at once.
            left = await self._leases.left_by_others([j.id for j in young]) if young else set()
            candidates += [j for j in young if j.id in left]
            # Only the jobs no live process holds; a job never leased may be one another process reserves just now.
            fresh_start = startup and not self._leases.shared
            claimed = await self._leases.claim_jobs(
                [j.id for j in candidates], unleased_before=None if fresh_start else now - RESERVED_GRACE
            )
            candidates = [j for j in candidates if j.id in claimed]
        for job in candidates:
            overdue = (now - job.created_at).total_seconds() > self._settings.runware.max_wait
            task = job.params_dict().get("task")
            if not isinstance(task, dict):  # the task is stored before any submit: this one was never sent
                await self._service.abandon(job, Failure(FailureKind.RESTARTED))
                continue
            try:  # asked even when overdue: after a long downtime Runware may hold (and bill) it
                statuses = await self._runware.get_responses([job.task_uuid])
            except RunwareError as exc:  # one lookup must not stop the start-up or the sweep
                log.warning("job=%s task=%s recovery lookup failed (%s); will look again", job.id, job.task_uuid, exc)
                if overdue:
                    await self._tracker.expire(job)
                continue
            if self._service.in_flight(job.id):
                continue  # a submit began meanwhile
            status = statuses.get(job.task_uuid)
            if status is not None and not status.not_found:
                if await self._jobs.transition(job.id, JobState.SUBMITTED):
                    log.info("job=%s task=%s was already at Runware; tracking it", job.id, job.task_uuid)
                    await self._tracker.sink.job_submitted(await self._jobs.get(job.id) or job)
                continue
            if overdue:
                await self._tracker.expire(job)  # Runware never got it in all that time
                continue
            try:
                await self._service.resubmit(job, task)
            except UserFacingError as exc:
                log.info("job=%s recovery submit: %s", job.id, exc)
