"""VideoFlow: turns /video, the job buttons and the Remix modal into service calls and answers them.

The video cog owns it; it holds no state of its own beyond references to the core.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from bot.core.errors import Failure, FailureKind, InputError, JobRejected, NotAllowed
from bot.core.images import read_image, too_large
from bot.core.models import ImageInput, Job, JobState, format_usd
from bot.core.offers import OfferClosed
from bot.core.plans import JobPlan, Requester, VideoOptions
from bot.core.policy import clean_prompt
from bot.ui import checks
from bot.ui.member_texts import OFFER_CANCELLED
from bot.ui.texts import DRY
from bot.ui.texts_errors import error_text
from bot.ui.tree import report_error, send_ephemeral
from cogs.video._buttons import RemixModal
from cogs.video._confirm import answer_closed, offer_job

if TYPE_CHECKING:
    from bot.app import HailuoBot
    from bot.core.engine import Engine

log = logging.getLogger(__name__)

THREAD_NAME_MAX = 90


def thread_name(prompt: str) -> str:
    name = " ".join(prompt.replace("@", "").replace("#", "").split())
    if len(name) > THREAD_NAME_MAX:
        name = name[: THREAD_NAME_MAX - 1].rstrip() + "…"
    return name or "video job"


class VideoFlow:
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot

    async def requester(self, interaction: discord.Interaction[Any]) -> Requester:
        return await checks.requester(interaction)

    @property
    def engine(self) -> Engine:
        return self.bot.engine

    async def read_attachment(self, attachment: discord.Attachment | None) -> ImageInput | None:
        """Size-checked before reading; content-checked after (never trusts the name or content type)."""
        if attachment is None:
            return None
        cap = self.engine.settings.images.max_bytes
        if attachment.size > cap:
            raise too_large(attachment.filename, attachment.size, cap)
        try:
            data = await attachment.read()
        except discord.HTTPException:
            raise InputError.said(
                f"{attachment.filename} could not be downloaded from Discord. Attach it again."
            ) from None
        return await read_image(attachment.filename, data, self.engine.settings.images)

    # -- /video ------------------------------------------------------------------------------------------------

    async def video(
        self,
        interaction: discord.Interaction[Any],
        *,
        prompt: str,
        first_frame: discord.Attachment | None,
        last_frame: discord.Attachment | None,
        resolution: str | None,
        duration: int | None,
        variations: int | None,
        prompt_optimizer: bool | None,
    ) -> None:
        who = await self.requester(interaction)
        clean_prompt(prompt)  # a bad prompt is refused before any attachment is downloaded
        opts = VideoOptions(
            prompt=prompt,
            resolution=resolution,
            duration=duration,
            variations=variations,
            prompt_optimizer=prompt_optimizer,
            first_frame=await self.read_attachment(first_frame),
            last_frame=await self.read_attachment(last_frame),
        )
        plan = await self.engine.service.plan(opts, who)
        await self.launch(interaction, plan)

    async def launch(
        self, interaction: discord.Interaction[Any], plan: JobPlan, *, confirmed: bool = False
    ) -> Job | None:
        """Reserve, open the job's thread and status message, submit, and tell the member where to look.

        A job the server wants confirmed (confirm-above) is offered first instead: nothing is reserved until Start.
        """
        if not confirmed and await self.engine.offers.needs_offer(plan):
            await offer_job(self.engine.offers, interaction, plan)
            return None
        service = self.engine.service
        channel = interaction.channel
        in_thread = isinstance(channel, discord.Thread)
        job = await service.reserve(plan, thread_id=channel.id if in_thread and channel is not None else None)
        try:
            status_msg = await self._open_job_place(job, plan, channel, in_thread)
        except Exception:
            # Nothing was sent to Runware yet: give the money back rather than let recovery submit it later.
            await service.abandon(job, Failure(FailureKind.SETUP))
            raise
        job = await self.engine.jobs.get(job.id) or job
        try:
            job = await service.submit(job, plan)
        except JobRejected as exc:
            await send_ephemeral(interaction, f"Job #{job.id} did not start. {error_text(exc)}")
            return job
        if job.state is JobState.CANCELLED:
            await send_ephemeral(interaction, f"Job #{job.id} was cancelled; nothing will be posted for it.")
            return job
        where = f" Follow it here: {status_msg.jump_url}" if status_msg is not None else ""
        dry = (DRY, " (simulated, nothing billed)") if job.dry_run else ("", "")
        await send_ephemeral(
            interaction,
            f"{dry[0]}Job #{job.id} is on its way{dry[1]}: {job.variations} × {job.resolution}, {job.duration} s, "
            f"about {format_usd(job.estimate_micros)} reserved.{where}",
        )
        return job

    async def _open_job_place(self, job: Job, plan: JobPlan, channel: Any, in_thread: bool) -> discord.Message | None:
        """The job's own thread (when the channel asks for one) and its status message there."""
        target: Any = channel
        if plan.channel_rule.threads and not in_thread and isinstance(channel, discord.TextChannel):
            try:
                thread = await channel.create_thread(
                    name=thread_name(plan.prompt), type=discord.ChannelType.public_thread, auto_archive_duration=1440
                )
                await self.engine.jobs.set_thread(job.id, thread.id)
                target = thread
            except discord.HTTPException as exc:
                log.info("job=%s could not open a thread (%s); using the channel", job.id, exc)
        job = await self.engine.jobs.get(job.id) or job
        status_msg: discord.Message | None = None
        if target is not None:
            try:
                status_msg = await self.bot.delivery.status.create(job, target)
            except discord.HTTPException as exc:
                log.info("job=%s could not post a status message: %s", job.id, exc)
        return status_msg

    # -- buttons -----------------------------------------------------------------------------------------------

    async def on_button(self, interaction: discord.Interaction[Any], verb: str, job_id: int) -> None:
        try:
            if verb == "remix":
                job = await self.engine.service.job_for(job_id, interaction.guild_id or 0)
                await interaction.response.send_modal(RemixModal(job.id, job.prompt))
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            who = await self.requester(interaction)
            if verb == "reroll":
                plan = await self.engine.service.plan_followup(job_id, who)
                await self.launch(interaction, plan)
            elif verb == "cancel":
                job = await self.engine.service.cancel(job_id, who)
                await send_ephemeral(
                    interaction,
                    f"Job #{job.id} is cancelled; nothing more will be posted for it. If Runware had already made "
                    f"the clip, it is still charged; otherwise the {format_usd(job.estimate_micros)} reserved is "
                    "released.",
                )
            elif verb == "delete":
                await self.delete(interaction, job_id, who)
        except Exception as exc:
            await report_error(interaction, exc)

    async def on_remix_submit(self, interaction: discord.Interaction[Any], job_id: int, prompt: str) -> None:
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            who = await self.requester(interaction)
            plan = await self.engine.service.plan_followup(job_id, who, prompt=prompt)
            await self.launch(interaction, plan)
        except Exception as exc:
            await report_error(interaction, exc)

    async def on_offer(self, interaction: discord.Interaction[Any], verb: str, offer_id: int) -> None:
        """Start (take the offer once, then launch its plan) or Cancel a costly job that waited for its member."""
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            who = await self.requester(interaction)
            offers = self.engine.offers
            try:
                if verb == "offer-start":
                    plan = await offers.start(offer_id, who)
                else:
                    await offers.cancel(offer_id, who)
            except OfferClosed as exc:
                await answer_closed(offers, interaction, exc)
                return
            if verb == "offer-start":
                await self.launch(interaction, plan, confirmed=True)
            else:
                await send_ephemeral(interaction, OFFER_CANCELLED)
        except Exception as exc:
            await report_error(interaction, exc)

    async def delete(self, interaction: discord.Interaction[Any], job_id: int, who: Requester) -> None:
        job = await self.engine.service.job_for(job_id, who.guild_id)
        if job.user_id != who.user_id and not who.is_moderator:
            raise NotAllowed.said("Only the member who asked for this clip, or a moderator, can delete it.")
        deleted = 0
        seen: set[tuple[int, int]] = set()
        for r in await self.engine.jobs.results(job.id):
            if r.message_id is None or r.channel_id is None or (r.channel_id, r.message_id) in seen:
                continue
            seen.add((r.channel_id, r.message_id))
            try:
                await self.bot.get_partial_messageable(r.channel_id).get_partial_message(r.message_id).delete()
                deleted += 1
            except discord.NotFound:
                pass
            except discord.HTTPException as exc:
                log.info("job=%s delete of message %s failed: %s", job.id, r.message_id, exc)
        await send_ephemeral(interaction, f"Deleted {deleted} message{'s' if deleted != 1 else ''} of job #{job.id}.")
