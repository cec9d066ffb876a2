"""`hailuo-bot generate`: one job through the same core as the bot, with clips written to a folder."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.core.clips import ClipError, save_clip
from bot.core.engine import Engine
from bot.core.errors import Failure, UserFacingError
from bot.core.images import read_image
from bot.core.models import ClipResult, ImageInput, Job, JobState, ResultState, format_usd
from bot.core.plans import Requester, VideoOptions
from bot.core.policy import MAX_VARIATIONS, check_resolution_duration, check_variations, clean_prompt
from bot.core.sink import Delivered
from bot.settings import Settings
from bot.ui.texts_errors import failure_text

log = logging.getLogger(__name__)

#: The CLI's jobs are the operator's: guild 0, channel 0, user 0, outside member/role/channel limits.
OPERATOR = Requester(guild_id=0, channel_id=0, user_id=0)


@dataclass(frozen=True, slots=True)
class GenerateArgs:
    prompt: str
    first_frame: Path | None
    last_frame: Path | None
    resolution: str | None
    duration: int | None
    variations: int | None
    prompt_optimizer: bool
    out: Path


class Console(Protocol):
    """Where generate's own output goes: results on `out` (stdout), progress and notes on `err` (stderr)."""

    @property
    def interactive(self) -> bool: ...

    def out(self, line: str) -> None: ...

    def err(self, line: str, *, end: str = "\n") -> None: ...


class FileSink:
    """Writes each clip into the output folder and prints its path, seed and cost."""

    def __init__(self, engine: Engine, out: Path, console: Console) -> None:
        self._engine = engine
        self._out = out
        self._console = console
        self.saved: list[Path] = []
        self.failure: str | None = None

    async def job_submitted(self, job: Job) -> None:
        return None

    async def job_progress(self, job: Job, progress: int | None) -> None:
        return None

    async def deliver(self, job: Job, results: Sequence[ClipResult], *, redelivery: bool) -> list[Delivered]:
        out: list[Delivered] = []
        settings = self._engine.settings
        ext = settings.runware.output_format.lower()
        self._out.mkdir(parents=True, exist_ok=True)
        for n, result in enumerate(results, start=1):
            dest = self._out / f"job{job.id}-{n}-{result.video_uuid[:8]}.{ext}"
            if not (redelivery and dest.exists()):
                try:
                    await save_clip(
                        self._engine.runware.http,
                        result.video_url,
                        dest,
                        max_bytes=settings.delivery.max_clip_bytes,
                        timeout=settings.delivery.download_timeout,
                        hosts=self._engine.clip_hosts,
                    )
                except ClipError as exc:
                    self._console.err(f"could not download clip {n}: {exc}; its URL: {result.video_url}")
                    out.append(Delivered(result.id, ok=False, how="undeliverable"))
                    continue
            cost = format_usd(result.cost_micros) if result.cost_micros is not None else "not reported"
            dry = " (simulated)" if job.dry_run else ""
            self._console.out(f"{dest}  seed={result.seed}  cost={cost}{dry}")
            self.saved.append(dest)
            out.append(Delivered(result.id, ok=True, how="file"))
        return out

    async def job_failed(self, job: Job, reason: Failure) -> None:
        self.failure = failure_text(reason)

    async def job_cancelled(self, job: Job) -> None:
        self.failure = "cancelled"


async def load_frames(args: GenerateArgs, settings: Settings) -> tuple[ImageInput | None, ImageInput | None]:
    frames: list[ImageInput | None] = []
    for path in (args.first_frame, args.last_frame):
        if path is None:
            frames.append(None)
            continue
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise UserFacingError.said(f"cannot read {path}: {exc.strerror}") from None
        frames.append(await read_image(path.name, data, settings.images))
    return frames[0], frames[1]


async def run_generate(settings: Settings, args: GenerateArgs, console: Console) -> int:
    """Run one job to the end. Returns the process exit code; user-facing problems raise UserFacingError."""
    # Refuse what can be refused without the database or Runware before opening anything.
    clean_prompt(args.prompt)
    if args.resolution is not None and args.duration is not None:
        check_resolution_duration(args.resolution, args.duration)
    if args.variations is not None:
        check_variations(args.variations, MAX_VARIATIONS)
    first, last = await load_frames(args, settings)
    opts = VideoOptions(
        prompt=args.prompt,
        resolution=args.resolution,
        duration=args.duration,
        variations=args.variations,
        prompt_optimizer=args.prompt_optimizer,
        first_frame=first,
        last_frame=last,
    )
    engine = Engine(settings, serve_webhooks=bool(settings.webhook.public_url))
    try:
        await engine.start()
        sink = FileSink(engine, args.out, console)
        engine.tracker.sink = sink
        plan = await engine.service.plan(opts, OPERATOR, operator=True)  # bad input stops here: nothing sent
        job = await engine.service.reserve(plan)
        job = await engine.service.submit(job, plan)
        return await _wait(engine, job, sink, console)
    finally:
        await engine.close()


async def _undelivered(engine: Engine, job_id: int) -> bool:
    waiting = (ResultState.PENDING, ResultState.DELIVERING)
    return any(r.state in waiting for r in await engine.jobs.results(job_id))


async def _wait(engine: Engine, job: Job, sink: FileSink, console: Console) -> int:
    interval = min(engine.settings.runware.poll_interval, 2.0)
    started = asyncio.get_running_loop().time()
    tty = console.interactive
    while True:
        current = await engine.jobs.get(job.id)
        if current is None:
            raise UserFacingError.said("the job disappeared from the database")
        if current.state is JobState.SUCCEEDED and not await _undelivered(engine, current.id):
            break
        if current.state in (JobState.FAILED, JobState.EXPIRED, JobState.CANCELLED):
            break
        if current.state is JobState.SUCCEEDED:
            await engine.tracker.deliver(current)
            continue
        elapsed = asyncio.get_running_loop().time() - started
        line = f"generating {current.task_uuid[:8]}… {elapsed:4.0f}s"
        console.err(("\r" + line) if tty else line, end="" if tty else "\n")
        if elapsed > engine.settings.runware.max_wait:
            await engine.tracker.expire(current)
            continue
        await asyncio.sleep(interval)
        await engine.tracker.check_job(current.id)
    if tty:
        console.err("")
    final = await engine.jobs.get(job.id)
    assert final is not None
    if final.state is not JobState.SUCCEEDED:
        why = failure_text(Failure.load(final.error)) if final.error else None
        raise UserFacingError.said(why or sink.failure or f"the job ended {final.state.value}")
    if not sink.saved:
        raise UserFacingError.said("no clip could be downloaded")
    total = format_usd(final.cost_micros) if final.cost_micros is not None else "not reported"
    console.err(f"done: {len(sink.saved)} clip(s), total cost {total}{' (simulated)' if final.dry_run else ''}")
    return 0
