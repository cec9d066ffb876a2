"""Extend's Discord side: which clip an extension continues, and the joined `…-extended.mp4` for its post.

The clip an extension of job J continues is J's clip as members saw it: when J was itself an extension, the joined
clip posted with it (so extending again continues, and joins onto, the whole story); otherwise J's clip, downloaded
from its videoURL through the core's clip download.
"""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot.core.clips import ClipError, fetch_clip
from bot.core.models import ClipResult, Job
from bot.core.video import VideoError, join_async
from bot.settings import Settings
from bot.store.interface import Jobs

log = logging.getLogger(__name__)


def extended_name(job_id: int, n: int) -> str:
    return f"hailuo-{job_id}-{n}-extended.mp4"


def extend_origin(job: Job) -> tuple[int, int] | None:
    """(job id, clip number) that this job continues, if it is an extension."""
    info = job.extra.get("extend")
    if not isinstance(info, dict):
        return None
    try:
        return int(info["job_id"]), int(info["clip"])
    except (KeyError, TypeError, ValueError):
        return None


async def numbered_result(jobs: Jobs, job_id: int, n: int) -> ClipResult | None:
    results = sorted(await jobs.results(job_id), key=lambda r: r.id)
    return results[n - 1] if 1 <= n <= len(results) else None


async def source_clip(
    client: discord.Client, http: Any, settings: Settings, job: Job, result: ClipResult, n: int
) -> bytes:
    """The clip as members saw it (an extension's joined clip when it was posted). Raises ClipError if gone."""
    if extend_origin(job) is not None and result.message_id is not None and result.channel_id is not None:
        try:
            msg = await client.get_partial_messageable(result.channel_id).fetch_message(result.message_id)
            joined = next((a for a in msg.attachments if a.filename == extended_name(job.id, n)), None)
            if joined is not None:
                return await joined.read()
        except discord.HTTPException as exc:
            log.info("job=%s joined clip %s unavailable (%s); using the clip alone", job.id, n, exc)
    d = settings.delivery
    return await fetch_clip(http, result.video_url, max_bytes=d.max_clip_bytes, timeout=d.download_timeout)


async def joined_clip(
    client: discord.Client, http: Any, settings: Settings, jobs: Jobs, job: Job, continuation: bytes
) -> bytes | None:
    """The clip this extension continues followed by `continuation`, or None (not an extension, or it failed)."""
    origin = extend_origin(job)
    if origin is None:
        return None
    parent = await jobs.get(origin[0])
    result = await numbered_result(jobs, origin[0], origin[1]) if parent is not None else None
    if parent is None or result is None:
        return None
    try:
        source = await source_clip(client, http, settings, parent, result, origin[1])
        joined, remuxed = await join_async(source, continuation)
    except (ClipError, VideoError) as exc:
        log.info("job=%s could not join onto job %s clip %s: %s", job.id, origin[0], origin[1], exc)
        return None
    log.info("job=%s joined onto job %s clip %s (%s)", job.id, *origin, "remux" if remuxed else "re-encode")
    return joined
