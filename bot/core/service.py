"""VideoService: a request becomes a job — rules, reservation, image upload, submit — and reroll/remix/cancel."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from bot.core.blocklist import BlocklistGuard
from bot.core.crashpoints import crash_point
from bot.core.errors import (
    ChannelNotAllowed,
    Failure,
    FailureKind,
    InputError,
    JobRejected,
    NotAllowed,
    NotFound,
    Paused,
    SubmitPending,
)
from bot.core.models import ImageInput, Job, JobState, Payer, SafetyMode, utc_now
from bot.core.plans import FrameRef, JobPlan, Requester, VideoOptions
from bot.core.policy import (
    ALLOWED_DURATIONS,
    check_resolution_duration,
    check_variations,
    clean_prompt,
    estimate_micros,
    price_table_micros,
)
from bot.core.pricing import PriceBook
from bot.core.tracker import JobTracker
from bot.runware.client import RunwareClient
from bot.runware.errors import RunwareError, RunwareUnavailable
from bot.runware.models import FPS, VideoInferenceTask
from bot.settings import Settings
from bot.store.guilds import ChannelRule, GuildConfig
from bot.store.interface import Guilds, Jobs, Ledger
from bot.store.jobs import NewJob
from bot.store.leases import Leases

log = logging.getLogger(__name__)


class VideoService:
    def __init__(
        self,
        *,
        settings: Settings,
        jobs: Jobs,
        ledger: Ledger,
        guilds: Guilds,
        runware: RunwareClient,
        tracker: JobTracker,
        webhook_url: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        blocklist: BlocklistGuard | None = None,
        prices: PriceBook | None = None,
        leases: Leases | None = None,
    ) -> None:
        self._settings = settings
        self.blocklist = blocklist  # checked in plan(): every way in (/video, buttons, modals) passes there
        self.price_book = prices  # None: the configured table alone
        #: Claims on jobs shared with other processes (SPEC §10); None: this process is alone with the database.
        self.leases = leases
        self._jobs = jobs
        self._ledger = ledger
        self._guilds = guilds
        self._runware = runware
        self._tracker = tracker
        self._webhook_url = webhook_url
        self._clock = clock
        self._prices = price_table_micros(settings.pricing)
        self._inflight: set[int] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.accepting = True

    # -- planning (no writes) ------------------------------------------------------------------------------------

    async def plan(self, opts: VideoOptions, who: Requester, *, operator: bool = False) -> JobPlan:
        """Validate a request against the model's rules and the server's settings. Raises UserFacingError."""
        if not self.accepting:
            raise Paused("shutting_down")
        prompt = clean_prompt(opts.prompt)
        if operator:
            cfg = await self._guilds.get(0)
            rule = ChannelRule(channel_id=0, allowed=True, threads=False, pool=False)
        else:
            cfg = await self._guilds.get(who.guild_id)
            rule = await self._channel_rules(cfg, who)
            if self.blocklist is not None:  # before anything is reserved or uploaded
                await self.blocklist.check(who.guild_id, prompt)
        resolution = opts.resolution or cfg.default_resolution
        if opts.duration is not None:
            duration = opts.duration
        else:  # the server default may be 10 s, which 1080p does not allow: take the first allowed length then
            allowed = ALLOWED_DURATIONS.get(resolution, (cfg.default_duration,))
            duration = cfg.default_duration if cfg.default_duration in allowed else allowed[0]
        width, height = check_resolution_duration(resolution, duration)
        variations = check_variations(opts.variations or 1, cfg.variations_cap if not operator else 20)
        optimizer = cfg.prompt_optimizer if opts.prompt_optimizer is None else opts.prompt_optimizer
        images: list[tuple[str, ImageInput]] = []
        if opts.first_frame is not None:
            images.append(("first", opts.first_frame))
        if opts.last_frame is not None:
            images.append(("last", opts.last_frame))
        if len(images) + len(opts.frames) > 2:
            raise InputError("too_many_frames")
        payer = Payer.OPERATOR if operator else (Payer.POOL if rule.pool else Payer.MEMBER)
        return JobPlan(
            who=who,
            prompt=prompt,
            resolution=resolution,
            duration=duration,
            width=width,
            height=height,
            variations=variations,
            prompt_optimizer=optimizer,
            payer=payer,
            estimate_micros=await self._estimate(resolution, duration, variations),
            safety_mode=cfg.safety_mode,
            concurrency_cap=cfg.concurrent_per_member,
            channel_rule=rule,
            images=tuple(images),
            frames=opts.frames,
            dry_run=self._settings.dry_run,
        )

    async def _estimate(self, resolution: str, duration: int, variations: int) -> int:
        if self.price_book is None:
            return estimate_micros(self._prices, resolution, duration, variations)
        return await self.price_book.estimate(resolution, duration, variations)

    async def _channel_rules(self, cfg: GuildConfig, who: Requester) -> ChannelRule:
        if cfg.paused:
            raise Paused("guild_paused")
        rule = await self._guilds.channel_rule(who.guild_id, who.budget_channel_id)
        allowed = await self._guilds.allowed_channels(who.guild_id)
        if allowed and who.budget_channel_id not in allowed:
            raise ChannelNotAllowed(sorted(allowed))
        return rule

    # -- reservation and submit ----------------------------------------------------------------------------------

    async def reserve(self, plan: JobPlan, *, thread_id: int | None = None) -> Job:
        """Check every limit and the concurrency cap and write the job with its hold, in one transaction."""
        who = plan.who
        task_uuid = str(uuid.uuid4())
        params: dict[str, Any] = {**plan.extra, "safety_mode": plan.safety_mode.value}  # extra: e.g. "extend"
        if not plan.images:  # nothing to upload: store the exact task now, so a crash before the submit can redo it
            params["task"] = self.build_task(task_uuid, plan, list(plan.frames))
        new = NewJob(
            task_uuid=task_uuid,
            guild_id=who.guild_id,
            channel_id=who.channel_id,
            budget_channel_id=who.budget_channel_id,
            user_id=who.user_id,
            payer=plan.payer,
            pool_channel_id=who.budget_channel_id if plan.payer is Payer.POOL else None,
            prompt=plan.prompt,
            resolution=plan.resolution,
            duration=plan.duration,
            variations=plan.variations,
            prompt_optimizer=plan.prompt_optimizer,
            frame_count=len(plan.images) + len(plan.frames),
            params=params,
            estimate_micros=plan.estimate_micros,
            dry_run=plan.dry_run,
            parent_job_id=plan.parent_job_id,
            thread_id=thread_id,
        )
        cap = None if plan.payer is Payer.OPERATOR else plan.concurrency_cap
        # Written claimed by this process: it submits the job; the others leave it alone while the lease lives.
        lease = self.leases.grant() if self.leases is not None else None
        job = await self._ledger.reserve(
            new, role_ids=who.role_ids, concurrency_cap=cap, now=self._clock(), lease=lease
        )
        log.info("job=%s task=%s guild=%s reserved %d micros", job.id, job.task_uuid, job.guild_id, job.estimate_micros)
        crash_point("after_job_row")
        return job

    async def submit(self, job: Job, plan: JobPlan) -> Job:
        """Upload frame images, store the exact task, submit it. Raises JobRejected if Runware refuses it."""
        self._begin(job.id)
        try:
            try:
                frames = list(plan.frames)
                for frame, image in plan.images:
                    image_uuid = await self._runware.upload_image(image.data, image.mime)
                    frames.append(FrameRef(image=image_uuid, frame=frame))
                task = self.build_task(job.task_uuid, plan, frames)
            except RunwareError as exc:
                raise await self._reject(job, exc) from None
            if plan.images:  # the task names the uploaded images: durable before the submit
                await self._jobs.set_params(job.id, {**(job.params_dict()), "task": task})
            return await self._submit_stored(job, task)
        finally:
            self._end(job.id)

    async def _claim(self, job_id: int) -> bool:
        return self.leases is None or await self.leases.claim_job(job_id)

    async def _submit_stored(self, job: Job, task: dict[str, Any]) -> Job:
        current = await self._jobs.get(job.id) or job
        if current.state is not JobState.RESERVED:
            return await self._moved_on(current)
        if not await self._claim(job.id):  # renewed right before the submit: no other process may send it too
            log.info("job=%s task=%s is claimed by another process; leaving its submit to it", job.id, job.task_uuid)
            return current
        try:
            model = VideoInferenceTask.model_validate(task)
            await self._runware.submit(model)
        except RunwareUnavailable as exc:
            if not exc.maybe_accepted:
                # getResponse confirmed Runware does not hold the task: nothing runs, nothing is billed.
                raise await self._reject_with(job, Failure(FailureKind.UNAVAILABLE)) from None
            log.warning("job=%s task=%s outcome of the submit unknown; will look it up", job.id, job.task_uuid)
            raise SubmitPending() from None
        except RunwareError as exc:
            raise await self._reject(job, exc) from None
        except ValidationError as exc:  # a stored task that no longer validates: a bug, never billed
            log.error("job=%s stored task invalid: %s", job.id, exc)
            raise await self._reject_with(job, Failure(FailureKind.BAD_TASK)) from None
        crash_point("after_submit")
        if not await self._jobs.transition(job.id, JobState.SUBMITTED):
            # Cancelled while the submit was in flight: Runware holds the task and the tracker settles its cost;
            # the member sees nothing more of it.
            log.info("job=%s task=%s submitted after it was cancelled", job.id, job.task_uuid)
            return await self._jobs.get(job.id) or job
        fresh = await self._jobs.get(job.id) or job
        log.info("job=%s task=%s submitted", job.id, job.task_uuid)
        await self._tracker.sink.job_submitted(fresh)
        return fresh

    async def _moved_on(self, job: Job) -> Job:
        """The job left RESERVED before its submit went out (cancelled, or failed by recovery): send nothing."""
        if job.state is JobState.CANCELLED:
            if await self._ledger.release(job.id):  # nothing reached Runware, so nothing will be billed
                log.info("job=%s task=%s cancelled before its submit; nothing sent", job.id, job.task_uuid)
            return job
        if job.state in (JobState.FAILED, JobState.EXPIRED):
            raise JobRejected(Failure.load(job.error) if job.error else Failure(FailureKind.STOPPED))
        return job  # SUBMITTED: another path already sent it

    async def abandon(self, job: Job, reason: Failure) -> None:
        """Fail a job that never reached Runware (set-up went wrong) and release its reservation."""
        await self._reject_with(job, reason)

    async def _reject(self, job: Job, exc: RunwareError) -> JobRejected:
        if exc.kind.value in ("authentication", "insufficient_credits"):
            log.warning("job=%s Runware refused the bot's account: %s (%s)", job.id, exc.code, exc.kind.value)
        elif exc.code in ("unsupportedParameter", "unknownParameter"):
            log.error("job=%s the bot built a request Runware refused (%s %s): a bug", job.id, exc.code, exc.parameter)
        else:  # the member reads plain words; Runware's own code and message are kept here
            log.info("job=%s Runware refused the task: %s", job.id, exc)
        return await self._reject_with(job, Failure(FailureKind.RUNWARE, exc.to_data()))

    async def _reject_with(self, job: Job, failure: Failure) -> JobRejected:
        if await self._jobs.transition(job.id, JobState.FAILED, error=failure.dump()):
            await self._ledger.release(job.id)
            fresh = await self._jobs.get(job.id) or job
            await self._tracker.sink.job_failed(fresh, failure)
        return JobRejected(failure)

    def build_task(self, task_uuid: str, plan: JobPlan, frames: list[FrameRef]) -> dict[str, Any]:
        """The videoInference task exactly as it goes on the wire (validated by the Runware models)."""
        rw = self._settings.runware
        task: dict[str, Any] = {
            "taskType": "videoInference",
            "taskUUID": task_uuid,
            "model": rw.model,
            "positivePrompt": plan.prompt,
            "width": plan.width,
            "height": plan.height,
            "duration": plan.duration,
            "fps": FPS,
            "numberResults": plan.variations,
            "deliveryMethod": "async",
            "includeCost": True,
            "outputType": "URL",
            "outputFormat": rw.output_format,
            "outputQuality": rw.output_quality,
            "providerSettings": {"minimax": {"promptOptimizer": plan.prompt_optimizer}},
        }
        if plan.safety_mode is not SafetyMode.NONE:
            task["safety"] = {"checkContent": True, "mode": plan.safety_mode.value}
        if frames:
            task["inputs"] = {"frameImages": [{"image": f.image, "frame": f.frame} for f in frames]}
        if self._webhook_url:
            task["webhookURL"] = self._webhook_url
        if rw.ttl:
            task["ttl"] = rw.ttl
        if rw.upload_endpoint:
            task["uploadEndpoint"] = rw.upload_endpoint.replace("{task_uuid}", task_uuid)
        VideoInferenceTask.model_validate(task)  # an invalid task cannot leave the bot
        return task

    async def create(self, opts: VideoOptions, who: Requester, *, operator: bool = False) -> Job:
        """Plan, reserve and submit in one go (the CLI's path)."""
        plan = await self.plan(opts, who, operator=operator)
        job = await self.reserve(plan)
        return await self.submit(job, plan)

    async def resubmit(self, job: Job, task: dict[str, Any]) -> Job:
        """Send a RESERVED job's stored task again (recovery): same taskUUID, so Runware never runs it twice."""
        self._begin(job.id)
        try:
            return await self._submit_stored(job, task)
        finally:
            self._end(job.id)

    # -- follow-ups on an existing job ---------------------------------------------------------------------------

    async def job_for(self, job_id: int, guild_id: int) -> Job:
        job = await self._jobs.get(job_id)
        if job is None or job.guild_id != guild_id:
            raise NotFound("job_gone")
        return job

    def options_from(self, job: Job, *, prompt: str | None = None) -> VideoOptions:
        """Same parameters as an earlier job (frames reused from Runware), optionally with a new prompt."""
        task = job.params_dict().get("task") or {}
        frames: list[FrameRef] = []
        if isinstance(task, dict):
            for item in (task.get("inputs") or {}).get("frameImages", []):
                if isinstance(item, dict) and isinstance(item.get("image"), str):
                    frames.append(FrameRef(image=item["image"], frame=str(item.get("frame", "first"))))
        return VideoOptions(
            prompt=prompt if prompt is not None else job.prompt,
            resolution=job.resolution,
            duration=job.duration,
            variations=job.variations,
            prompt_optimizer=job.prompt_optimizer,
            frames=tuple(frames),
        )

    async def plan_followup(self, job_id: int, who: Requester, *, prompt: str | None = None) -> JobPlan:
        """Reroll (same prompt) or remix (new prompt) as a new job paid by whoever clicked."""
        job = await self.job_for(job_id, who.guild_id)
        plan = await self.plan(self.options_from(job, prompt=prompt), who)
        keep = {k: job.extra[k] for k in ("extend",) if k in job.extra}  # a rerolled extension still continues
        return replace(plan, parent_job_id=job.id, extra=keep)

    async def cancel(self, job_id: int, who: Requester) -> Job:
        job = await self.job_for(job_id, who.guild_id)
        if job.user_id != who.user_id and not who.is_moderator:
            raise NotAllowed("cancel_not_yours")
        if job.state not in (JobState.RESERVED, JobState.SUBMITTED):
            raise InputError("already_finished", state=job.state)
        if not await self._tracker.cancel(job):
            raise InputError("finished_just_now")
        return await self._jobs.get(job.id) or job

    async def drain(self, timeout: float) -> None:
        """Stop taking new jobs and wait (bounded) for submits in flight to be written."""
        self.accepting = False
        async with asyncio.timeout(timeout):
            await self._idle.wait()

    def in_flight(self, job_id: int) -> bool:
        """Whether this process is submitting (or recovering) the job right now."""
        return job_id in self._inflight

    def _begin(self, job_id: int) -> None:
        self._inflight.add(job_id)
        self._idle.clear()

    def _end(self, job_id: int) -> None:
        self._inflight.discard(job_id)
        if not self._inflight:
            self._idle.set()
