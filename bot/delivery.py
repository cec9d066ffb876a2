"""ClipDelivery: the Discord JobSink. Attach clips that fit the server's upload limit, link the rest, never twice."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import discord

from bot.clips import ClipError, ClipTooLarge, fetch_clip
from bot.crashpoints import crash_point
from bot.formatting import result_message
from bot.models import ClipResult, Job
from bot.settings import Settings
from bot.sink import Delivered
from bot.status import StatusReporter
from bot.store.jobs import JobStore
from bot.views import custom_id, result_view

log = logging.getLogger(__name__)

MAX_FILES_PER_MESSAGE = 10
HISTORY_LOOKBACK = 50
_CLIP_NUMBER = re.compile(r"^\*\*#(\d+)\*\*", re.MULTILINE)


def nonce_for(job_id: int, part: int) -> str:
    """One nonce per message (Discord answers a repeated nonce with the earlier message); at most 25 chars."""
    return f"hl{job_id}p{part}"[:25]


class ClipDelivery:
    def __init__(
        self, client: discord.Client, settings: Settings, jobs: JobStore, status: StatusReporter, http_session: Any
    ) -> None:
        self._client = client
        self._settings = settings
        self._jobs = jobs
        self.status = status
        self._http = http_session

    # -- status ------------------------------------------------------------------------------------------------

    async def job_submitted(self, job: Job) -> None:
        await self.status.update(job, "generating", force=True)

    async def job_progress(self, job: Job, progress: int | None) -> None:
        await self.status.update(job, "generating", progress=progress)

    async def job_failed(self, job: Job, reason: str) -> None:
        phase = "expired" if job.state.value == "expired" else "failed"
        await self.status.update(job, phase, detail=reason)
        if job.status_message_id is None:
            await self._dm(job.user_id, f"Your video job #{job.id} did not work out: {reason}")

    async def job_cancelled(self, job: Job) -> None:
        await self.status.update(job, "cancelled", detail="Cancelled: nothing more will be posted for this job.")

    # -- delivery ----------------------------------------------------------------------------------------------

    async def deliver(self, job: Job, results: Sequence[ClipResult], *, redelivery: bool) -> list[Delivered]:
        everything = await self._jobs.results(job.id)
        number = {r.id: n for n, r in enumerate(sorted(everything, key=lambda r: r.id), start=1)}
        await self.status.update(job, "delivering", force=True)
        target = await self._channel(job)
        out: list[Delivered] = []
        todo = list(results)
        if redelivery and target is not None:
            found = await self._already_posted(job, target)
            for r in list(todo):
                msg_id = found.get(number[r.id])
                if msg_id is not None:
                    out.append(
                        Delivered(
                            r.id, ok=True, message_id=msg_id, channel_id=getattr(target, "id", None), how="existing"
                        )
                    )
                    todo.remove(r)
        if todo:
            out += await self._post(job, todo, number, target)
        ok = sum(1 for d in out if d.ok)
        detail = f"Posted {ok} clip{'s' if ok != 1 else ''}." if ok else "The clips could not be posted."
        await self.status.update(job, "done" if ok else "failed", detail=detail)
        return out

    async def _channel(self, job: Job) -> discord.abc.Messageable | None:
        channel_id = job.thread_id or job.channel_id
        channel = self._client.get_channel(channel_id)
        if channel is None:
            try:
                channel = await self._client.fetch_channel(channel_id)
            except discord.HTTPException as exc:
                log.info("job=%s channel %s unavailable: %s", job.id, channel_id, exc)
                return None
        return channel if isinstance(channel, discord.abc.Messageable) else None

    async def _already_posted(self, job: Job, channel: discord.abc.Messageable) -> dict[int, int]:
        """Clip numbers of this job that an earlier attempt already posted here, with their message ids."""
        marker = custom_id("delete", job.id)
        me = self._client.user
        found: dict[int, int] = {}
        try:
            async for msg in channel.history(limit=HISTORY_LOOKBACK):
                if me is None or msg.author.id != me.id:
                    continue
                ids = {getattr(c, "custom_id", None) for row in msg.components for c in getattr(row, "children", [])}
                if marker in ids:
                    for n in _CLIP_NUMBER.findall(msg.content):
                        found[int(n)] = msg.id
        except discord.HTTPException as exc:
            log.info("job=%s could not read channel history: %s", job.id, exc)
        return found

    def _upload_limit(self, job: Job) -> int:
        guild = self._client.get_guild(job.guild_id)
        limit = guild.filesize_limit if guild is not None else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
        return min(limit, self._settings.delivery.max_clip_bytes)

    async def _fetch(self, result: ClipResult, cap: int) -> bytes | None:
        try:
            return await fetch_clip(
                self._http, result.video_url, max_bytes=cap, timeout=self._settings.delivery.download_timeout
            )
        except ClipTooLarge:
            return None
        except ClipError as exc:
            log.warning("result=%s clip download failed (%s); posting its link", result.id, exc)
            return None

    async def _post(
        self, job: Job, todo: list[ClipResult], number: dict[int, int], target: discord.abc.Messageable | None
    ) -> list[Delivered]:
        cap = self._upload_limit(job)
        chunks = [todo[i : i + MAX_FILES_PER_MESSAGE] for i in range(0, len(todo), MAX_FILES_PER_MESSAGE)]
        ttl = self._settings.runware.ttl
        expires = job.finished_at + timedelta(seconds=ttl) if ttl and job.finished_at else None
        out: list[Delivered] = []
        for part, chunk in enumerate(chunks, start=1):
            files: list[discord.File] = []
            numbered: list[tuple[int, ClipResult, bool]] = []
            used = 0
            for r in chunk:
                data = await self._fetch(r, cap - used) if used < cap else None
                n = number[r.id]
                if data is None:
                    numbered.append((n, r, True))
                else:
                    used += len(data)
                    ext = self._settings.runware.output_format.lower()
                    files.append(discord.File(io.BytesIO(data), filename=f"hailuo-{job.id}-{n}.{ext}"))
                    numbered.append((n, r, False))
            crash_point("after_download")
            text = result_message(job, numbered, part=part, parts=len(chunks), ttl_expires=expires)
            mentions = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(job.user_id)])
            msg = await self._send(job, target, text, files, mentions, nonce_for(job.id, part))
            how = "attachment" if files else "link"
            if msg is None:
                out += [Delivered(r.id, ok=False, how="undeliverable") for r in chunk]
            else:
                dm = target is None or msg.channel.id != getattr(target, "id", None)
                out += [
                    Delivered(r.id, ok=True, message_id=msg.id, channel_id=msg.channel.id, how="dm" if dm else how)
                    for r in chunk
                ]
        return out

    async def _send(
        self,
        job: Job,
        target: discord.abc.Messageable | None,
        text: str,
        files: list[discord.File],
        mentions: discord.AllowedMentions,
        nonce: str,
    ) -> discord.Message | None:
        if target is not None:
            try:
                return await target.send(
                    text, files=files, view=result_view(job.id), allowed_mentions=mentions, nonce=nonce
                )
            except (discord.Forbidden, discord.NotFound) as exc:
                log.info("job=%s cannot post in channel (%s); sending a DM instead", job.id, exc)
                for f in files:
                    f.reset()
        note = "I couldn't post in the channel where you asked, so here are your clips.\n"
        return await self._dm(job.user_id, note + text, files=files, view=result_view(job.id))

    async def _dm(
        self, user_id: int, text: str, *, files: Sequence[discord.File] = (), view: discord.ui.View | None = None
    ) -> discord.Message | None:
        try:
            user = self._client.get_user(user_id) or await self._client.fetch_user(user_id)
            kwargs: dict[str, Any] = {"files": list(files), "allowed_mentions": discord.AllowedMentions.none()}
            if view is not None:
                kwargs["view"] = view
            return await user.send(text, **kwargs)
        except discord.HTTPException as exc:
            log.info("DM to user %s failed: %s", user_id, exc)
            return None
