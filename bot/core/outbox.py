"""Outbox: posting a finished job's clips through the sink, once, with back-off when posting keeps failing.

A clip is marked DELIVERING (durable) before it is posted and DELIVERED/UNDELIVERABLE after, so a crash in between
is a redelivery that looks first. Posting that fails (Discord 5xx, a bug) is retried with exponential back-off, then
given up with the results kept.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

import aiohttp

from bot.core.crashpoints import crash_point
from bot.core.metrics import Metrics
from bot.core.models import ClipResult, Job, JobState, ResultState
from bot.core.sink import Delivered, JobSink
from bot.store.interface import Jobs
from bot.store.leases import Leases

log = logging.getLogger(__name__)

MAX_DELIVERY_FAILURES = 25
DELIVERY_BACKOFF_BASE = 5.0
DELIVERY_BACKOFF_MAX = 600.0


class Outbox:
    def __init__(
        self,
        *,
        jobs: Jobs,
        job_lock: Callable[[int], AbstractAsyncContextManager[None]],
        sink: JobSink,
        metrics: Metrics | None = None,
        leases: Leases | None = None,
    ) -> None:
        self._jobs = jobs
        #: Claims shared with other processes (SPEC §10): only the results this process claimed are posted by it.
        self._leases = leases
        self._job_lock = job_lock
        self._metrics = metrics
        self.sink = sink
        self._failures: dict[int, tuple[int, float]] = {}  # job id -> (failed tries, next try, monotonic)

    async def deliver(self, job: Job) -> None:
        """Post a finished job's clips once: mark them delivering (durable), post, then record where they went."""
        async with self._job_lock(job.id):
            if job.state is not JobState.SUCCEEDED:
                return
            results = [
                r for r in await self._jobs.results(job.id) if r.state in (ResultState.PENDING, ResultState.DELIVERING)
            ]
            if results and self._leases is not None:  # another process may be posting them right now
                claimed = await self._leases.claim_results([r.id for r in results])
                results = [  # read again: the states as they are now that nobody else may change them
                    r
                    for r in await self._jobs.results(job.id)
                    if r.id in claimed and r.state in (ResultState.PENDING, ResultState.DELIVERING)
                ]
            if not results:
                return
            redelivery = any(r.state is ResultState.DELIVERING for r in results)
            ready: list[ClipResult] = []
            for r in results:
                if r.state is ResultState.PENDING:
                    await self._jobs.result_transition(r.id, ResultState.DELIVERING)
                ready.append(r)
            try:
                outcomes = await self.sink.deliver(job, ready, redelivery=redelivery)
            except (OSError, TimeoutError, aiohttp.ClientError) as exc:  # Discord or the network went away
                log.warning(
                    "job=%s task=%s delivery interrupted (%s); will retry", job.id, job.task_uuid, type(exc).__name__
                )
                await self._failed(job, ready)
                return
            except Exception:
                log.exception("job=%s task=%s delivery failed; will retry", job.id, job.task_uuid)
                await self._failed(job, ready)
                return
            self._failures.pop(job.id, None)
            crash_point("after_post")
            await self._record(outcomes)

    async def _failed(self, job: Job, results: Sequence[ClipResult]) -> None:
        """Back off before the next try (first retry at once); after many, keep the results and stop trying."""
        failures = self._failures.get(job.id, (0, 0.0))[0] + 1
        if failures >= MAX_DELIVERY_FAILURES:
            self._failures.pop(job.id, None)
            log.error(
                "job=%s task=%s: gave up posting after %d failed tries; results kept", job.id, job.task_uuid, failures
            )
            await self._record([Delivered(r.id, ok=False, how="undeliverable") for r in results])
            return
        step = min(DELIVERY_BACKOFF_MAX, DELIVERY_BACKOFF_BASE * 2 ** (failures - 2))
        delay = 0.0 if failures == 1 else step / 2 + random.uniform(0, step / 2)  # jitter
        self._failures[job.id] = (failures, time.monotonic() + delay)

    async def _record(self, outcomes: Sequence[Delivered]) -> None:
        for outcome in outcomes:
            to = ResultState.DELIVERED if outcome.ok else ResultState.UNDELIVERABLE
            moved = await self._jobs.result_transition(
                outcome.result_id, to, message_id=outcome.message_id, channel_id=outcome.channel_id
            )
            if moved and self._metrics is not None:
                self._metrics.deliveries.labels(outcome=outcome.how).inc()

    async def due(self) -> list[int]:
        """Jobs with clips still to post whose back-off, if any, is over."""
        by_job: dict[int, list[ClipResult]] = defaultdict(list)
        for result in await self._jobs.undelivered_results():
            by_job[result.job_id].append(result)
        now = time.monotonic()
        return [job_id for job_id in by_job if self._failures.get(job_id, (0, 0.0))[1] <= now]

    async def deliver_leftovers(self) -> None:
        for job_id in await self.due():
            job = await self._jobs.get(job_id)
            if job is not None and job.state is JobState.SUCCEEDED:
                await self.deliver(job)
