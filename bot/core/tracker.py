"""JobTracker: follows submitted jobs to the end (webhook or batched polling), settles money, hands clips to a sink.

Every path here is idempotent: webhook vs poll, duplicate webhooks and restarts all reduce to compare-and-set
transitions in the store, so whichever arrives first wins and the other is a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime

from bot.core.background import KeyedPool, Loop, TaskGroup
from bot.core.errors import Failure, FailureKind
from bot.core.metrics import Metrics
from bot.core.models import Job, JobState, ResultState, usd_to_micros, utc_now
from bot.core.outbox import Outbox
from bot.core.policy import cost_is_sane
from bot.core.sink import JobSink, NullSink
from bot.core.sweep import ProgressMemory, needing_a_look
from bot.runware.client import RunwareClient, TaskStatus
from bot.runware.errors import RunwareError, classify
from bot.runware.models import RunwareErrorItem, VideoResultItem
from bot.store.interface import Jobs, Ledger
from bot.store.leases import Leases
from bot.store.tracked import TrackedJob

log = logging.getLogger(__name__)

#: How many sweeps in a row Runware may say "not found" for a job it acknowledged before we give up on it.
NOT_FOUND_STRIKES = 3
#: The tracker reads unhealthy when no sweep has ended for this many poll intervals.
STALL_INTERVALS = 3


def sane_cost(job: Job, cost: int | None) -> int | None:
    """A recorded cost, or None (settle at the estimate, logged) when it can't be a real price."""
    if cost is None or cost_is_sane(cost, job.variations):
        return cost
    log.warning(
        "job=%s task=%s: recorded cost %d µ$ is no real price; settled at the estimate", job.id, job.task_uuid, cost
    )
    return None


class JobTracker:
    def __init__(
        self,
        *,
        jobs: Jobs,
        ledger: Ledger,
        runware: RunwareClient,
        poll_interval: float,
        max_wait: float,
        sink: JobSink | None = None,
        clock: Callable[[], datetime] = utc_now,
        metrics: Metrics | None = None,
        dry_run: bool = False,
        leases: Leases | None = None,
        delivery_workers: int = 4,
    ) -> None:
        self._jobs = jobs
        #: Claims shared with other processes (SPEC §10): a sweep polls only the jobs it claimed, a delivery posts
        #: only the results it claimed. None: this process is alone with the database.
        self._leases = leases
        self._metrics = metrics
        self._dry_run = dry_run
        self._ledger = ledger
        self._runware = runware
        self._max_wait = max_wait
        self._clock = clock
        self._locks: dict[int, asyncio.Lock] = {}  # per job, only while someone holds or waits for it
        self._lock_users: dict[int, int] = {}
        self._not_found: defaultdict[int, int] = defaultdict(int)
        self._progress = ProgressMemory()
        self._tasks = TaskGroup("tracker")
        self.loop = Loop("poll-sweep", self.poll_once, poll_interval)
        self._poll_interval = poll_interval
        self._swept_at: datetime | None = None  # when the last sweep ended (or the loop started)
        self.outbox = Outbox(
            jobs=jobs, job_lock=self._job_lock, sink=sink or NullSink(), metrics=metrics, leases=leases
        )
        #: Downloads and posts run here, never in the poll sweep: one slow clip host delays only its own job.
        self.delivery_pool = KeyedPool("deliveries", self._deliver_job, delivery_workers)
        #: Runs first in every sweep (the service recovers jobs interrupted before Runware acknowledged them).
        self.before_sweep: Callable[[], Awaitable[None]] | None = None
        #: True while this process is submitting the job: Runware may not know it yet, so "not found" means nothing.
        self.in_flight: Callable[[int], bool] = lambda job_id: False

    # -- life cycle ----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume what a previous run left, then poll on an interval."""
        await self.resume()
        self._swept_at = self._clock()
        self.loop.start()

    async def stop(self, drain_timeout: float = 10.0) -> None:
        await self.loop.stop(drain_timeout)
        if not await self._tasks.drain(drain_timeout):
            log.warning("tracker: background work still running after %.0fs; cancelling it", drain_timeout)
        await self._tasks.cancel_all()
        await self.delivery_pool.stop(drain_timeout)

    @property
    def healthy(self) -> bool:
        """Polling runs and a sweep ended within 3 × poll_interval (a hung sweep reads unhealthy)."""
        if not self.loop.running or self._swept_at is None:
            return False
        return (self._clock() - self._swept_at).total_seconds() <= STALL_INTERVALS * self._poll_interval

    def spawn_check(self, job_id: int) -> None:
        """Look at a job again soon (after a webhook wrote something)."""
        self._tasks.spawn(self.check_job(job_id), name=f"check-job-{job_id}")

    async def resume(self) -> None:
        """After a restart: settle money left open by a crash, then deliver what was left undelivered."""
        await self.reconcile_ledger()
        await self.deliver_leftovers()

    async def reconcile_ledger(self) -> None:
        """Close the holds of finished jobs. One bad row is logged and left, never stopping the start."""
        for job_id in await self._jobs.final_with_money_held():  # not every held job: most still run
            try:
                job = await self._jobs.get(job_id)
                if job is None:
                    continue
                if job.state is JobState.SUCCEEDED:
                    await self._settle(job, job.cost_micros)
                elif job.state in (JobState.FAILED, JobState.EXPIRED):
                    await self._ledger.release(job.id)
            except Exception as exc:  # a row this build can't read: the others still settle
                log.error("job=%s: could not reconcile its hold at start-up (%s: %s)", job_id, type(exc).__name__, exc)

    # -- polling -------------------------------------------------------------------------------------------------

    async def sweep_once(self) -> None:
        """One poll round, then wait for the deliveries it handed to the pool (tests and one-shot callers)."""
        try:
            await self.poll_once()
        finally:
            await self.delivery_pool.idle()

    async def poll_once(self) -> None:
        """One round: ask Runware about every tracked job in batches, expire what is still unfinished past max_wait,
        hand undelivered clips to the delivery pool (without waiting for them).

        Overdue jobs are asked about too, before they expire: after a downtime longer than max_wait, Runware may
        have finished (and billed) them, and their clips must be posted and charged, not dropped.
        """
        try:
            await self._sweep()
        finally:
            self._swept_at = self._clock()

    async def _sweep(self) -> None:
        if self.before_sweep is not None:
            await self.before_sweep()
        now = self._clock()
        # Lean rows (RESERVED jobs are the service's until Runware acknowledges them). Left out: the other mode's
        # jobs (its Runware holds them) and jobs cancelled while their submit is under way (looked at once it ended).
        live = [j for j in await self._jobs.tracked() if j.dry_run == self._dry_run and not self.in_flight(j.id)]
        if self._leases is not None and live:
            # Each job is polled by one process per sweep: the one holding its lease (its own live ones are not claimed
            # again: the lease keeper renews them).
            held = self._leases.still_held((j.id, j.lease_owner, j.lease_until) for j in live)
            claimed = held | await self._leases.claim_jobs([j.id for j in live if j.id not in held])
            live = [j for j in live if j.id in claimed]
        ids = {job.id for job in live}
        for job_id in [k for k in self._not_found if k not in ids]:
            del self._not_found[job_id]  # finished some other way: forget its strikes
        self._progress.keep_only(ids)
        statuses: dict[str, TaskStatus] = {}
        failure: RunwareError | None = None
        if live:
            try:
                statuses = await self._runware.get_responses([j.task_uuid for j in live])
            except RunwareError as exc:  # overdue jobs still expire, so no hold outlives max_wait for good
                failure = exc
        await self._apply_sweep(live, statuses, now)
        await self.deliver_leftovers()
        if failure is not None:
            raise failure

    async def _apply_sweep(self, live: Sequence[TrackedJob], statuses: Mapping[str, TaskStatus], now: datetime) -> None:
        """Jobs with nothing new (most) cost a lookup; the rest are loaded in full, a few hundred per query."""
        busy = needing_a_look(live, statuses, now, self._max_wait, self._progress, self._not_found)
        jobs = await self._jobs.get_many([row.id for row, _ in busy]) if busy else {}
        for row, status in busy:
            if (job := jobs.get(row.id)) is None:
                continue
            if status is not None:
                await self.apply_status(job, status)
                if not status.not_found and len(status.successes) + status.failed_count >= job.variations:
                    continue  # finished just now
            if self._overdue(job, now):
                await self.expire(job)

    def _overdue(self, job: Job, now: datetime) -> bool:
        started = job.submitted_at or job.created_at
        return (now - started).total_seconds() > self._max_wait

    async def check_job(self, job_id: int) -> None:
        """Finish a job from what is stored if possible, else ask Runware about it now."""
        job = await self._jobs.get(job_id)
        if job is None or job.state not in (JobState.SUBMITTED, JobState.CANCELLED):
            if job is not None and job.state is JobState.SUCCEEDED:
                self.delivery_pool.submit(job.id)
            return
        stored = await self._jobs.results(job.id)
        if job.state is JobState.SUBMITTED and len(stored) >= job.variations:
            await self._finish(job, failures=[])
            return
        statuses = await self._runware.get_responses([job.task_uuid])
        status = statuses.get(job.task_uuid)
        if status is not None:
            await self.apply_status(job, status)

    async def apply_status(self, job: Job, status: TaskStatus) -> None:
        """Take Runware's cumulative view of one task."""
        if status.not_found:
            self._not_found[job.id] += 1
            if self._not_found[job.id] >= NOT_FOUND_STRIKES:
                self._not_found.pop(job.id, None)
                if not await self._finish_with_stored(job):
                    await self._fail(job, Failure(FailureKind.FORGOTTEN))
            return
        self._not_found.pop(job.id, None)
        finals = len(status.successes) + status.failed_count
        if job.state is JobState.CANCELLED:
            if finals >= job.variations:
                await self._close_cancelled(job, status.successes)
            return
        for item in status.successes:
            await self._record_success(job, item)
        failures = list(status.errors)
        if finals >= job.variations:
            await self._finish(job, failures=failures)
        elif job.state is JobState.SUBMITTED and self._progress.take_news(
            job.id, job.status_message_id, status.progress
        ):
            await self.sink.job_progress(job, status.progress)

    # -- webhooks ------------------------------------------------------------------------------------------------

    async def record_webhook_success(self, job: Job, item: VideoResultItem) -> bool:
        """Durably store a result that arrived by webhook; True if it was new."""
        return await self._record_success(job, item)

    async def record_webhook_failure(self, job: Job, error: RunwareErrorItem) -> None:
        """A generation failed. With one clip asked for that is the end; otherwise ask Runware for the whole view."""
        if job.variations == 1:
            self._tasks.spawn(self._finish(job, failures=[error]), name=f"fail-job-{job.id}")
        else:
            self.spawn_check(job.id)

    async def _record_success(self, job: Job, item: VideoResultItem) -> bool:
        if job.state not in (JobState.RESERVED, JobState.SUBMITTED) or not item.video_uuid or not item.video_url:
            return False  # cancelled or already final: nothing more is posted for it
        cost = usd_to_micros(item.cost) if item.cost is not None else None
        return await self._jobs.add_result(
            job.id, video_uuid=item.video_uuid, video_url=item.video_url, seed=item.seed, cost_micros=cost
        )

    # -- endings -------------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _job_lock(self, job_id: int) -> AsyncIterator[None]:
        """The job's lock; dropped once nobody holds or waits for it, so the map does not grow with every job."""
        lock = self._locks.get(job_id)
        if lock is None:
            lock = self._locks[job_id] = asyncio.Lock()
        self._lock_users[job_id] = self._lock_users.get(job_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[job_id] -= 1
            if not self._lock_users[job_id]:
                del self._lock_users[job_id]
                del self._locks[job_id]

    async def _finish_with_stored(self, job: Job) -> bool:
        """Giving up on a submitted job that has clips stored: post and charge those instead of dropping them."""
        if job.state is not JobState.SUBMITTED or not await self._jobs.results(job.id):
            return False
        log.info("job=%s task=%s giving up on the rest; finishing with the clips that arrived", job.id, job.task_uuid)
        await self._finish(job, failures=[])
        return True

    async def _finish(self, job: Job, *, failures: Sequence[RunwareErrorItem]) -> None:
        async with self._job_lock(job.id):
            job = await self._jobs.get(job.id) or job
            results = await self._jobs.results(job.id)
            costs = [r.cost_micros for r in results if r.cost_micros is not None]
            cost = sane_cost(job, sum(costs) if costs else None)
            if job.state is not JobState.SUBMITTED:
                return
            if results:
                if await self._jobs.transition(job.id, JobState.SUCCEEDED, cost_micros=cost):
                    await self._settle(job, cost)
                    log.info("job=%s task=%s succeeded: %d clip(s)", job.id, job.task_uuid, len(results))
                    if failures:
                        log.info("job=%s task=%s: %d generation(s) failed", job.id, job.task_uuid, len(failures))
            else:
                if failures:  # the member reads plain words; Runware's own code and message are kept here
                    first = failures[0]
                    log.info("job=%s task=%s Runware: %s: %s", job.id, job.task_uuid, first.code, first.message)
                reason = self._reason(failures)
                await self._fail(job, reason)
                return
        self.delivery_pool.submit(job.id)

    async def _close_cancelled(self, job: Job, successes: Sequence[VideoResultItem]) -> None:
        """A cancelled job finished at Runware: charge what Runware reports, post nothing."""
        if successes:
            costs = [usd_to_micros(i.cost) for i in successes if i.cost is not None]
            await self._settle(job, sum(costs) if costs else None)
        else:
            await self._ledger.release(job.id)
        log.info("job=%s task=%s (cancelled) finished at Runware; money settled", job.id, job.task_uuid)

    async def _settle(self, job: Job, cost: int | None) -> None:
        """Settle the hold (Runware's cost, else the estimate) and count it as real or simulated spend."""
        cost = sane_cost(job, cost)
        if await self._ledger.settle(job.id, cost) and self._metrics is not None:
            charged = cost if cost is not None else job.estimate_micros
            self._metrics.spend_micros.labels(mode="dry_run" if job.dry_run else "real").inc(charged)

    @staticmethod
    def _reason(failures: Sequence[RunwareErrorItem]) -> Failure:
        if not failures:
            return Failure(FailureKind.NO_CLIPS)
        first = failures[0]
        err = RunwareError(
            kind=classify(first.code, None),
            code=first.code,
            message=first.message or "",
            parameter=first.parameter_path,
        )
        return Failure(FailureKind.RUNWARE, err.to_data())

    async def _fail(self, job: Job, reason: Failure) -> None:
        if await self._jobs.transition(job.id, JobState.FAILED, error=reason.dump()):
            await self._ledger.release(job.id)
            log.info("job=%s task=%s failed: %s", job.id, job.task_uuid, reason)
            fresh = await self._jobs.get(job.id) or job
            await self.sink.job_failed(fresh, reason)

    async def expire(self, job: Job) -> None:
        if await self._finish_with_stored(job):
            return
        reason = Failure(FailureKind.TIMED_OUT, {"max_wait": self._max_wait})
        if await self._jobs.transition(job.id, JobState.EXPIRED, error=reason.dump()):
            await self._ledger.release(job.id)
            log.info("job=%s task=%s expired", job.id, job.task_uuid)
            fresh = await self._jobs.get(job.id) or job
            if job.state is not JobState.CANCELLED:
                await self.sink.job_failed(fresh, reason)

    async def cancel(self, job: Job) -> bool:
        """Stop tracking for the member: nothing more is posted; money waits for Runware's cost or expiry."""
        async with self._job_lock(job.id):
            if not await self._jobs.transition(job.id, JobState.CANCELLED):
                return False
            for result in await self._jobs.results(job.id):
                if result.state is ResultState.PENDING:
                    await self._jobs.result_transition(result.id, ResultState.SKIPPED)
        fresh = await self._jobs.get(job.id) or job
        await self.sink.job_cancelled(fresh)
        return True

    # -- delivery (bot.core.outbox) ------------------------------------------------------------------------------

    @property
    def sink(self) -> JobSink:
        return self.outbox.sink

    @sink.setter
    def sink(self, sink: JobSink) -> None:
        self.outbox.sink = sink

    async def deliver(self, job: Job) -> None:
        await self.outbox.deliver(job)

    async def deliver_leftovers(self) -> None:
        """Hand every job with clips still to post (and no back-off running) to the delivery pool."""
        for job_id in await self.outbox.due():
            self.delivery_pool.submit(job_id)

    async def _deliver_job(self, job_id: int) -> None:
        """A delivery pool worker's turn at one job."""
        job = await self._jobs.get(job_id)
        if job is not None and job.state is JobState.SUCCEEDED:
            await self.outbox.deliver(job)
