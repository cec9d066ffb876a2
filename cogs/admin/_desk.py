"""What /videoadmin does: one store call each, then the new settings in plain words."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from bot.core.errors import InputError
from bot.core.models import SafetyMode, format_usd, usd_to_micros
from bot.core.policy import MAX_VARIATIONS, check_resolution_duration
from bot.ui.checks import guild_of
from bot.ui.groups import Desk
from bot.ui.moderation import (
    audit_pages,
    blocklist_added_text,
    blocklist_already_text,
    blocklist_missing_text,
    blocklist_removed_text,
    blocklist_text,
)
from bot.ui.texts import (
    SAFETY_NOTES,
    change_text,
    channel_rule_text,
    guild_config_text,
    on_off,
    settings_changed_text,
)

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


MAX_CONCURRENCY = 50  # as the config key limits.concurrent_per_member
MAX_AUDIT_ROWS = 50


class SettingsDesk(Desk):
    """What /videoadmin does: one store call each, then the new settings in plain words."""

    # -- /videoadmin ---------------------------------------------------------------------------------------------

    async def _change(self, interaction: discord.Interaction[Any], changes: dict[str, object], note: str = "") -> str:
        old, new = await self.engine.guilds.update(guild_of(interaction), interaction.user.id, **changes)
        return settings_changed_text(old, new, note)

    async def defaults(
        self,
        interaction: discord.Interaction[Any],
        *,
        resolution: str | None,
        duration: int | None,
        variations_cap: int | None,
        prompt_optimizer: bool | None,
    ) -> str:
        cfg = await self.engine.guilds.get(guild_of(interaction))
        if resolution is None and duration is None and variations_cap is None and prompt_optimizer is None:
            return "Server settings for video jobs:\n" + guild_config_text(cfg)
        if resolution is not None or duration is not None:
            check_resolution_duration(resolution or cfg.default_resolution, duration or cfg.default_duration)
        if variations_cap is not None and not 1 <= variations_cap <= MAX_VARIATIONS:
            raise InputError.said(f"The variations cap must be between 1 and {MAX_VARIATIONS}.")
        changes = {
            "default_resolution": resolution,
            "default_duration": duration,
            "variations_cap": variations_cap,
            "prompt_optimizer": prompt_optimizer,
        }
        return await self._change(interaction, {k: v for k, v in changes.items() if v is not None})

    async def channel(
        self,
        interaction: discord.Interaction[Any],
        *,
        channel: discord.abc.GuildChannel,
        allowed: bool | None,
        threads: bool | None,
        pool: bool | None,
    ) -> str:
        gid = guild_of(interaction)
        guilds = self.engine.guilds
        old, new = await guilds.set_channel(
            gid, channel.id, interaction.user.id, allowed=allowed, threads=threads, pool=pool
        )
        allowed_ids = sorted(await guilds.allowed_channels(gid))
        if old == new:
            head = "Nothing changed." if (allowed, threads, pool) != (None, None, None) else "Current rule:"
            return f"{head}\n{channel_rule_text(new, allowed_ids)}"
        done = [
            change_text(label, on_off(getattr(old, flag)), on_off(getattr(new, flag)))
            for label, flag in (("Allowed", "allowed"), ("Thread per job", "threads"), ("Team pool", "pool"))
            if getattr(old, flag) != getattr(new, flag)
        ]
        lines = [f"✅ Updated <#{channel.id}>: " + "; ".join(done) + ".", channel_rule_text(new, allowed_ids)]
        guild = interaction.guild
        threads_on = new.threads and not old.threads and isinstance(channel, discord.TextChannel)
        if threads_on and guild is not None and not channel.permissions_for(guild.me).create_public_threads:
            lines.append("⚠️ I can't create public threads there yet; grant me Create Public Threads.")
        if new.pool and not old.pool:
            lines.append(f"Give the pool a budget with /limits set channel:<#{channel.id}>.")
        return "\n".join(lines)

    async def safety(self, interaction: discord.Interaction[Any], *, mode: str) -> str:
        return await self._change(interaction, {"safety_mode": SafetyMode(mode)}, SAFETY_NOTES[SafetyMode(mode)])

    async def concurrency(self, interaction: discord.Interaction[Any], *, per_member: int) -> str:
        if not 1 <= per_member <= MAX_CONCURRENCY:
            raise InputError.said(f"Choose between 1 and {MAX_CONCURRENCY} unfinished jobs per member.")
        note = "Jobs already running are not affected."
        return await self._change(interaction, {"concurrent_per_member": per_member}, note)

    async def moderator_role(self, interaction: discord.Interaction[Any], *, role: discord.Role) -> str:
        if role.is_default():  # @everyone can't moderate: choosing it removes the moderator role
            note = "No moderator role now: only members with Manage Server can use /limits and /videoadmin."
            return await self._change(interaction, {"moderator_role_id": None}, note)
        note = f"Members with <@&{role.id}> can use /limits and /videoadmin, except this command."
        return await self._change(interaction, {"moderator_role_id": role.id}, note)

    async def pause(self, interaction: discord.Interaction[Any], *, paused: bool) -> str:
        note = (
            "New /video jobs, rerolls and remixes are refused in this server until /videoadmin resume; "
            "jobs already running finish and post."
            if paused
            else "/video takes new jobs again."
        )
        return await self._change(interaction, {"paused": paused}, note)

    async def confirm_above(self, interaction: discord.Interaction[Any], *, amount: float) -> str:
        micros = usd_to_micros(amount)
        if micros < 0:
            raise InputError.said("The amount can't be negative: use 0 to never ask.")
        note = (
            f"A /video, Reroll, Remix, Extend or Animate image estimated at {format_usd(micros)} or more first shows "
            "its cost and waits for the member's Start; nothing is reserved before."
            if micros
            else "Members are never asked to confirm a job first."
        )
        return await self._change(interaction, {"confirm_above_micros": micros}, note)

    # -- audit and blocklist (SPEC §4a) --------------------------------------------------------------------------

    async def audit(
        self, interaction: discord.Interaction[Any], *, member: discord.Member | discord.User | None, count: int
    ) -> list[str]:
        """The latest audit rows as whole-row messages within Discord's limit (several followups when long)."""
        count = max(1, min(count, MAX_AUDIT_ROWS))
        actor = member.id if member is not None else None
        rows = await self.engine.guilds.audit_rows(guild_of(interaction), count, actor_id=actor)
        return audit_pages(rows, member_id=actor)

    async def blocklist_add(self, interaction: discord.Interaction[Any], *, phrase: str) -> str:
        store = self.engine.blocklists
        change = await store.add(guild_of(interaction), interaction.user.id, phrase)
        if not change.changed:
            return blocklist_already_text(change.phrase)
        return blocklist_added_text(change.phrase, change.count, store.cap)

    async def blocklist_remove(self, interaction: discord.Interaction[Any], *, phrase: str) -> str:
        change = await self.engine.blocklists.remove(guild_of(interaction), interaction.user.id, phrase)
        if not change.changed:
            return blocklist_missing_text(change.phrase)
        return blocklist_removed_text(change.phrase, change.count)

    async def blocklist_list(self, interaction: discord.Interaction[Any]) -> str:
        store = self.engine.blocklists
        return blocklist_text(await store.phrases(guild_of(interaction)), store.cap)
