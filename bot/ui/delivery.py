"""ClipDelivery: the Discord JobSink. Attach clips that fit the server's upload limit, link the rest, never twice."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Awaitable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import discord

from bot.core.clips import ClipError, ClipHosts, ClipRefused, ClipTooLarge, fetch_clip
from bot.core.crashpoints import crash_point
from bot.core.errors import Failure
from bot.core.models import ClipResult, Job
from bot.core.sink import Delivered
from bot.settings import Settings
from bot.store.interface import Jobs
from bot.ui.buttons import custom_id, result_view
from bot.ui.extend import extend_origin, extended_name, joined_clip
from bot.ui.member_texts import extension_line
from bot.ui.status import StatusReporter, send_retrying
from bot.ui.texts import LinkWhy, clip_line, dry_prefix, fit, result_message
from bot.ui.texts_errors import failure_text

log = logging.getLogger(__name__)

MAX_FILES_PER_MESSAGE = 10
#: Characters of a message the clip lines may take; the rest holds the title, the quoted prompt and the total.
CLIP_LINES_BUDGET = 1500
HISTORY_LOOKBACK = 50
HISTORY_AFTER_STATUS = 500
_CLIP_NUMBER = re.compile(r"^\*\*#(\d+)\*\*", re.MULTILINE)


def nonce_for(job_id: int, first_clip: int) -> str:
    """The nonce of the message whose first clip is `first_clip` (at most 25 characters).

    Discord answers a repeated nonce with the earlier message: a retry of the same message is deduplicated, while
    the clips left over after an interrupted delivery start at another number and so get a message of their own.
    """
    return f"hl{job_id}c{first_clip}"[:25]


class ClipDelivery:
    def __init__(
        self,
        client: discord.Client,
        settings: Settings,
        jobs: Jobs,
        status: StatusReporter,
        http_session: Any,
        hosts: ClipHosts | None = None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._jobs = jobs
        self.status = status
        self._http = http_session
        self._hosts = hosts

    # -- status ------------------------------------------------------------------------------------------------

    async def job_submitted(self, job: Job) -> None:
        await self.status.update(job, "generating")

    async def job_progress(self, job: Job, progress: int | None) -> None:
        await self.status.update(job, "generating", progress=progress)

    async def job_failed(self, job: Job, failure: Failure) -> None:
        reason = failure_text(failure)
        phase = "expired" if job.state.value == "expired" else "failed"
        await self.status.update(job, phase, detail=reason)
        if job.status_message_id is None:
            await self._dm(
                job.user_id, f"{dry_prefix(job)}Your video job #{job.id} {phase}. {reason}", nonce=f"hd{job.id}"
            )
        elif job.submitted_at is not None:  # it ran for a while: the member may have stopped watching, so ping them
            await self._tell_requester(
                job, f"{dry_prefix(job)}<@{job.user_id}> your video job #{job.id} {phase}. {reason}"
            )

    async def _tell_requester(self, job: Job, text: str) -> None:
        """A reply to the job's status message that pings only the requester; a DM if the channel is closed."""
        assert job.status_channel_id is not None and job.status_message_id is not None
        channel = self._client.get_partial_messageable(job.status_channel_id)
        mentions = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(job.user_id)])
        status = channel.get_partial_message(job.status_message_id).to_reference(fail_if_not_exists=False)
        try:  # a 5xx is tried again; the nonce keeps a post Discord made before failing from coming twice
            await send_retrying(
                lambda: channel.send(fit(text), allowed_mentions=mentions, reference=status, nonce=f"hf{job.id}"),
                what=f"job={job.id} notice to the requester",
            )
        except (discord.Forbidden, discord.NotFound) as exc:
            log.info("job=%s cannot tell the requester in the channel (%s); sending a DM instead", job.id, exc)
            await self._dm(job.user_id, fit(text), nonce=f"hd{job.id}")
        except discord.HTTPException as exc:
            log.info("job=%s telling the requester failed: %s", job.id, exc)

    async def job_cancelled(self, job: Job) -> None:
        await self.status.update(job, "cancelled", detail="Nothing more will be posted for this job.")

    # -- delivery ----------------------------------------------------------------------------------------------

    async def deliver(self, job: Job, results: Sequence[ClipResult], *, redelivery: bool) -> list[Delivered]:
        everything = await self._jobs.results(job.id)
        number = {r.id: n for n, r in enumerate(sorted(everything, key=lambda r: r.id), start=1)}
        await self.status.update(job, "delivering")
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
        clips = f"{ok} clip{'s' if ok != 1 else ''}"
        if not ok:
            detail = "The clips could not be posted here or sent by DM. They are kept: /jobs has their links."
        elif all(d.how == "dm" for d in out if d.ok):
            detail = f"I can't post here, so I sent {clips} to <@{job.user_id}> by DM."
        else:
            detail = f"Posted {clips}."
        if ok and job.thread_id is None and any(d.ok and d.how != "dm" for d in out):
            await self.status.remove(job)  # the clips are the job's one message in the channel now
        else:  # in its own thread, by DM only, or nothing posted: the status stays as the job's record
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
            # Our posts come after the job's status message: read forward from it when it is in this channel,
            # which finds them however busy the channel has been since; else the latest messages.
            since = job.status_message_id if job.status_channel_id == getattr(channel, "id", None) else None
            history = (
                channel.history(limit=HISTORY_AFTER_STATUS, after=discord.Object(since), oldest_first=True)
                if since is not None
                else channel.history(limit=HISTORY_LOOKBACK)
            )
            async for msg in history:
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

    async def _fetch(self, result: ClipResult, cap: int) -> tuple[bytes | None, LinkWhy | None]:
        """(bytes, None): the clip, if it can be attached within `cap` bytes; else (None, why it is a link)."""
        if cap <= 0:
            return None, "too_large"
        try:
            data = await fetch_clip(
                self._http,
                result.video_url,
                max_bytes=cap,
                timeout=self._settings.delivery.download_timeout,
                hosts=self._hosts,
            )
        except ClipTooLarge:
            return None, "too_large"
        except ClipRefused as exc:
            log.warning("result=%s clip not fetched (%s); its URL is not posted", result.id, exc)
            return None, "download_failed"
        except ClipError as exc:
            log.warning("result=%s clip download failed (%s); posting its link", result.id, exc)
            return None, "download_failed"
        return data, None

    async def _post(
        self, job: Job, todo: list[ClipResult], number: dict[int, int], target: discord.abc.Messageable | None
    ) -> list[Delivered]:
        """Post clips in order, as few messages as Discord allows: at most 10 clips, the upload limit, 2000 chars."""
        cap = self._upload_limit(job)
        out: list[Delivered] = []
        group: list[tuple[int, ClipResult, bytes | None]] = []
        failed: set[int] = set()  # results whose download failed for another reason than their size
        used = 0
        for r in todo:
            if len(group) == MAX_FILES_PER_MESSAGE:
                out += await self._send_group(job, group, len(number), target, last=False, failed=failed)
                group, used = [], 0
            data, why = await self._fetch(r, cap - used)
            if why == "too_large" and used:  # it may fit in a message of its own
                out += await self._send_group(job, group, len(number), target, last=False, failed=failed)
                group, used = [], 0
                data, why = await self._fetch(r, cap)
            if why == "download_failed":
                failed.add(r.id)
            lines = [clip_line(job, c, n, link=why) for n, c, why in _linked([*group, (number[r.id], r, data)], failed)]
            if group and sum(len(line) + 1 for line in lines) > CLIP_LINES_BUDGET:
                out += await self._send_group(job, group, len(number), target, last=False, failed=failed)
                group, used = [], 0
            if data is None and self._hosts is not None and not self._hosts.allows(r.video_url):
                r = replace(r, video_url="")  # a link elsewhere than Runware's hosts is never posted
            group.append((number[r.id], r, data))
            used += len(data or b"")
        if group:
            out += await self._send_group(job, group, len(number), target, last=True, failed=failed)
        return out

    async def _send_group(
        self,
        job: Job,
        group: list[tuple[int, ClipResult, bytes | None]],
        total: int,
        target: discord.abc.Messageable | None,
        *,
        last: bool,
        failed: set[int],
    ) -> list[Delivered]:
        ttl = self._settings.runware.ttl
        expires = job.finished_at + timedelta(seconds=ttl) if ttl and job.finished_at else None
        ext = self._settings.runware.output_format.lower()
        files = [
            discord.File(io.BytesIO(data), filename=f"hailuo-{job.id}-{n}.{ext}")
            for n, _, data in group
            if data is not None
        ]
        numbered = _linked(group, failed)
        joined = await self._joined(job, group)
        if joined is not None:
            files.append(discord.File(io.BytesIO(joined), filename=extended_name(job.id, group[0][0])))
        crash_point("after_download")
        text = result_message(job, numbered, total=total, last=last, ttl_expires=expires)
        origin = extend_origin(job)
        if origin is not None:
            text = fit(text + "\n" + extension_line(*origin, joined=joined is not None))
        mentions = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(job.user_id)])
        try:
            msg = await self._send(job, target, text, files, mentions, nonce_for(job.id, group[0][0]))
        except discord.HTTPException as exc:
            if exc.status != 413 or not files:
                raise
            # Discord's limit was lower than the bot believed (a boost ended, a DM): links instead, not a retry loop.
            log.info("job=%s Discord refused the upload as too large (%s); posting links", job.id, exc)
            unsent: list[tuple[int, ClipResult, bytes | None]] = [(n, r, None) for n, r, _ in group]
            return await self._send_group(job, unsent, total, target, last=last, failed=failed)
        if msg is None:
            return [Delivered(r.id, ok=False, how="undeliverable") for _, r, _ in group]
        dm = target is None or msg.channel.id != getattr(target, "id", None)
        how = "dm" if dm else "attachment" if files else "link"
        return [Delivered(r.id, ok=True, message_id=msg.id, channel_id=msg.channel.id, how=how) for _, r, _ in group]

    async def _joined(self, job: Job, group: list[tuple[int, ClipResult, bytes | None]]) -> bytes | None:
        """An extension's post also carries the whole story (`…-extended.mp4`) when it fits the upload limit."""
        if extend_origin(job) is None or len(group) != 1 or group[0][2] is None:
            return None
        data = group[0][2]
        joined = await joined_clip(self._client, self._http, self._settings, self._jobs, job, data)
        if joined is None or len(data) + len(joined) > self._upload_limit(job):
            return None
        return joined

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
            except discord.HTTPException as exc:
                # 403, 404, or another 4xx that a retry would meet again (a locked thread); 5xx: try again later.
                if not 400 <= exc.status < 500 or (exc.status == 413 and files):
                    raise
                log.info("job=%s cannot post in channel (%s); sending a DM instead", job.id, exc)
                for f in files:
                    f.reset()
        # No buttons in a DM: reroll, remix and delete act in the server, which is what could not be reached.
        clips = "is your clip" if len(_CLIP_NUMBER.findall(text)) <= 1 else "are your clips"
        note = f"I couldn't post in the channel where you asked, so here {clips}.\n"
        return await self._dm(job.user_id, fit(note + text), files=files, nonce=nonce)

    async def _dm(
        self, user_id: int, text: str, *, nonce: str, files: Sequence[discord.File] = ()
    ) -> discord.Message | None:
        """A DM; a 5xx is tried again, and the nonce makes Discord answer a DM it made before failing, not make two."""
        try:
            user = self._client.get_user(user_id) or await self._client.fetch_user(user_id)

            def send() -> Awaitable[discord.Message]:
                for f in files:
                    f.reset()  # a retry reads each file from its start again
                return user.send(text, files=list(files), allowed_mentions=discord.AllowedMentions.none(), nonce=nonce)

            return await send_retrying(send, what=f"DM to user {user_id}")
        except discord.HTTPException as exc:
            if exc.status == 413 and files:
                raise  # too large for a DM: the caller posts links instead
            log.info("DM to user %s failed: %s", user_id, exc)
            return None


def _linked(
    group: list[tuple[int, ClipResult, bytes | None]], failed: set[int]
) -> list[tuple[int, ClipResult, LinkWhy | None]]:
    """Each clip of a post with why it goes as its link (None: attached): its download failed, else its size."""
    return [
        (n, r, None if data is not None else "download_failed" if r.id in failed else "too_large")
        for n, r, data in group
    ]
