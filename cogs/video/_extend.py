"""Extend: a result's clip continues from its last frame as a new job (same size and length, charged anew).

The modal names only the job in its custom_id; the clip is fetched when the modal is submitted, so a modal opened
before a restart still works. The video work (last frame, join) is the core's, in a thread.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import discord

from bot.core.clips import ClipError
from bot.core.errors import InputError
from bot.core.images import read_image
from bot.core.plans import VideoOptions
from bot.core.policy import check_resolution_duration, clean_prompt
from bot.core.video import VideoError, last_frame_async
from bot.ui.extend import numbered_result, source_clip
from bot.ui.member_texts import CLIP_GONE, clip_choice_text
from bot.ui.tree import report_error
from cogs.video._buttons import ExtendModal

if TYPE_CHECKING:
    from cogs.video._flow import VideoFlow


async def open_modal(flow: VideoFlow, interaction: discord.Interaction[Any], job_id: int) -> None:
    """The prompt prefilled with the job's, and which clip when the job has several."""
    try:
        job = await flow.engine.service.job_for(job_id, interaction.guild_id or 0)
        clips = len(await flow.engine.jobs.results(job.id))
        await interaction.response.send_modal(ExtendModal(job.id, job.prompt, clips))
    except Exception as exc:
        await report_error(interaction, exc)


def _clip_number(text: str | None, count: int) -> int:
    if count <= 1 and not text:
        return 1
    try:
        n = int((text or "1").strip())
    except ValueError:
        raise InputError.said(clip_choice_text(count)) from None
    if not 1 <= n <= count:
        raise InputError.said(clip_choice_text(count))
    return n


async def on_submit(
    flow: VideoFlow, interaction: discord.Interaction[Any], job_id: int, prompt: str, clip: str | None
) -> None:
    try:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = await flow.requester(interaction)
        clean_prompt(prompt)
        engine = flow.engine
        job = await engine.service.job_for(job_id, who.guild_id)
        count = len(await engine.jobs.results(job.id))
        if count == 0:
            raise InputError.said(CLIP_GONE)
        n = _clip_number(clip, count)
        result = await numbered_result(engine.jobs, job.id, n)
        if result is None:
            raise InputError.said(CLIP_GONE)
        try:
            source = await source_clip(flow.bot, engine.runware.http, engine.settings, job, result, n)
            width, height = check_resolution_duration(job.resolution, job.duration)
            frame = await last_frame_async(source, width, height)
        except (ClipError, VideoError):
            raise InputError.said(CLIP_GONE) from None
        image = await read_image(f"job-{job.id}-clip-{n}-last-frame.png", frame, engine.settings.images)
        opts = VideoOptions(
            prompt=prompt,
            resolution=job.resolution,
            duration=job.duration,
            variations=1,
            prompt_optimizer=job.prompt_optimizer,
            first_frame=image,
        )
        plan = await engine.service.plan(opts, who)
        plan = replace(plan, parent_job_id=job.id, extra={"extend": {"job_id": job.id, "clip": n}})
        await flow.launch(interaction, plan)
    except Exception as exc:
        await report_error(interaction, exc)
