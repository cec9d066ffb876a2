"""VideoFlow: turns interactions (/video, buttons, the Remix modal) into service calls and answers them.

Cogs and views call this; it holds no state of its own beyond references to the core.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from bot import moderation
from bot.errors import InputError, NotAllowed, UserFacingError
from bot.formatting import DISCORD_LIMIT, DRY, fit, job_line, standing_line
from bot.images import read_image, too_large
from bot.models import ImageInput, Job, JobState, Payer, format_usd
from bot.policy import clean_prompt
from bot.service import JobPlan, JobRejected, Requester, VideoOptions
from bot.tree import report_error, send_ephemeral
from bot.views import RemixModal

if TYPE_CHECKING:
    from bot.app import HailuoBot
    from bot.engine import Engine

log = logging.getLogger(__name__)

THREAD_NAME_MAX = 90


def message_link(guild_id: int, channel_id: int, message_id: int) -> str:
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


def thread_name(prompt: str) -> str:
    name = " ".join(prompt.replace("@", "").replace("#", "").split())
    if len(name) > THREAD_NAME_MAX:
        name = name[: THREAD_NAME_MAX - 1].rstrip() + "…"
    return name or "video job"


class VideoFlow:
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot

    @property
    def engine(self) -> Engine:
        return self.bot.engine

    # -- who is asking -----------------------------------------------------------------------------------------

    async def requester(self, interaction: discord.Interaction[Any]) -> Requester:
        if interaction.guild_id is None or not isinstance(interaction.user, discord.Member):
            raise NotAllowed("Video jobs run in a server channel, not in direct messages.")
        member = interaction.user
        channel = interaction.channel
        parent = None
        if isinstance(channel, discord.Thread):
            parent = channel.parent_id
        return Requester(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id or 0,
            user_id=member.id,
            role_ids=tuple(r.id for r in member.roles),
            parent_channel_id=parent,
            is_moderator=await self.is_moderator(interaction),
        )

    async def is_moderator(self, interaction: discord.Interaction[Any]) -> bool:
        """Manage Server, or the server's moderator role: the one rule, shared with /limits and /videoadmin."""
        return await moderation.is_moderator(interaction)

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
            raise InputError(f"{attachment.filename} could not be downloaded from Discord. Attach it again.") from None
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

    async def launch(self, interaction: discord.Interaction[Any], plan: JobPlan) -> Job:
        """Reserve, open the job's thread and status message, submit, and tell the member where to look."""
        service = self.engine.service
        channel = interaction.channel
        in_thread = isinstance(channel, discord.Thread)
        job = await service.reserve(plan, thread_id=channel.id if in_thread and channel is not None else None)
        try:
            status_msg = await self._open_job_place(job, plan, channel, in_thread)
        except Exception:
            # Nothing was sent to Runware yet: give the money back rather than let recovery submit it later.
            await service.abandon(job, "The job could not be set up in Discord. You were not charged.")
            raise
        job = await self.engine.jobs.get(job.id) or job
        try:
            job = await service.submit(job, plan)
        except JobRejected as exc:
            await send_ephemeral(interaction, f"Job #{job.id} did not start. {exc.message}")
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

    async def delete(self, interaction: discord.Interaction[Any], job_id: int, who: Requester) -> None:
        job = await self.engine.service.job_for(job_id, who.guild_id)
        if job.user_id != who.user_id and not who.is_moderator:
            raise NotAllowed("Only the member who asked for this clip, or a moderator, can delete it.")
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

    # -- /jobs -------------------------------------------------------------------------------------------------

    async def jobs_text(self, interaction: discord.Interaction[Any]) -> str:
        who = await self.requester(interaction)
        jobs: list[Job] = await self.engine.jobs.recent_for_member(who.guild_id, who.user_id, 10)
        if not jobs:
            return "You have no video jobs in this server yet. Start one with /video."
        lines = ["Your recent video jobs:"]
        size = len(lines[0])
        for job in jobs:
            link = None
            results = await self.engine.jobs.results(job.id)
            posted = [r for r in results if r.message_id and r.channel_id]
            if posted:
                link = message_link(job.guild_id, posted[0].channel_id or 0, posted[0].message_id or 0)
            elif job.state is JobState.SUCCEEDED and results:
                link = results[0].video_url
            elif job.status_message_id and job.status_channel_id:
                link = message_link(job.guild_id, job.status_channel_id, job.status_message_id)
            line = job_line(job, link)
            size += len(line) + 1
            if size > DISCORD_LIMIT:  # whole lines only: a cut link would not work
                break
            lines.append(line)
        return "\n".join(lines)

    # -- /usage ------------------------------------------------------------------------------------------------

    async def usage_text(self, interaction: discord.Interaction[Any], member: discord.Member | None) -> str:
        """Spend against each limit that applies here, for the caller, someone else (moderators) or the pool."""
        who = await self.requester(interaction)
        engine = self.engine
        if member is not None and member.id != who.user_id and not who.is_moderator:
            raise NotAllowed("Only moderators can look at someone else's usage. Use /usage without a member.")
        target_id = member.id if member is not None else who.user_id
        role_ids = tuple(r.id for r in member.roles) if member is not None else who.role_ids
        rule = await engine.guilds.channel_rule(who.guild_id, who.budget_channel_id)
        # In a pool channel your own /usage shows the pool; a moderator asking about someone sees their limits.
        own = member is None or member.id == who.user_id
        payer = Payer.POOL if rule.pool and own else Payer.MEMBER
        limits = await engine.ledger.limits_for(
            payer=payer, guild_id=who.guild_id, user_id=target_id, role_ids=role_ids, channel_id=who.budget_channel_id
        )
        standings = await engine.ledger.standings(
            limits,
            guild_id=who.guild_id,
            now=discord.utils.utcnow(),
            dry_run=engine.settings.dry_run,
            user_id=target_id,
        )
        if payer is Payer.POOL:
            head = f"This channel is a team pool: jobs here are paid from <#{who.budget_channel_id}>'s budget."
        elif member is not None and member.id != who.user_id:
            head = f"Usage of <@{target_id}>:"
        else:
            head = "Your usage:"
        if engine.settings.dry_run:
            head = f"{DRY}Simulated spend, kept apart from real spend. {head}"
        lines = [head]
        for st in standings:
            label = st.limit.label()
            if member is not None and member.id != who.user_id:
                label = label.replace("your ", "their ")
            lines.append(
                standing_line(
                    label, st.limit.amount_micros, st.spent_micros, st.reserved_micros, st.left_micros, st.resets_at
                )
            )
        if not standings:
            lines.append("No spend limits apply here.")
        return fit("\n".join(lines))


__all__ = ["UserFacingError", "VideoFlow"]
