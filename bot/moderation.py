"""Moderator commands, Discord side: who is a moderator (checked at run time, whatever Discord's command permissions
say), which limit the options name, and what /limits and /videoadmin do and answer. Cogs call this; SQL stays in the
stores, texts in bot.formatting, the chart in bot.chart.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import discord
from discord import app_commands

from bot.chart import render_spend_chart
from bot.errors import InputError, NotAllowed
from bot.formatting import (
    PERIOD_NOUNS,
    PERIOD_WORDS,
    SAFETY_NOTES,
    change_text,
    channel_rule_text,
    fit,
    guild_config_text,
    limit_name,
    limit_subject,
    on_off,
    per_member_limit_line,
    report_text,
    settings_changed_text,
    standing_text,
    ts,
)
from bot.models import Micros, Payer, Period, SafetyMode, Scope, format_usd, usd_to_micros
from bot.policy import MAX_VARIATIONS, Limit, check_resolution_duration, period_window

if TYPE_CHECKING:
    from bot.engine import Engine
    from bot.store.guilds import GuildConfig

log = logging.getLogger(__name__)

T = TypeVar("T")
Check = Callable[[discord.Interaction[Any]], Coroutine[Any, Any, bool]]

LIMITS_ACTION = "manage video spend limits"
SETTINGS_ACTION = "change the video bot's server settings"
MAX_LIMIT_USD = Decimal(1_000_000)
MAX_CONCURRENCY = 50  # as the config key limits.concurrent_per_member


class EngineHost(Protocol):
    @property
    def engine(self) -> Engine: ...


def engine_of(interaction: discord.Interaction[Any]) -> Engine:
    return cast(EngineHost, interaction.client).engine


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- who may act -------------------------------------------------------------------------------------------------


async def defer(interaction: discord.Interaction[Any]) -> None:
    """Defer ephemerally unless already answered (the first await of every moderator interaction)."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)


def has_manage_server(interaction: discord.Interaction[Any]) -> bool:
    perms = interaction.permissions
    return isinstance(interaction.user, discord.Member) and (perms.manage_guild or perms.administrator)


def _has_role(member: discord.Member, cfg: GuildConfig) -> bool:
    return cfg.moderator_role_id is not None and any(r.id == cfg.moderator_role_id for r in member.roles)


async def is_moderator(interaction: discord.Interaction[Any]) -> bool:
    """Manage Server (or Administrator) in this channel, or the server's moderator role."""
    member = interaction.user
    if interaction.guild_id is None or not isinstance(member, discord.Member):
        return False
    if has_manage_server(interaction):
        return True
    return _has_role(member, await engine_of(interaction).guilds.get(interaction.guild_id))


async def require_moderator(interaction: discord.Interaction[Any], action: str) -> None:
    """Raise NotAllowed, naming what would have been enough, unless the member is a moderator."""
    if interaction.guild_id is None or not isinstance(interaction.user, discord.Member):
        raise NotAllowed("This command works in a server, not in direct messages.")
    if has_manage_server(interaction):
        return
    cfg = await engine_of(interaction).guilds.get(interaction.guild_id)
    if _has_role(interaction.user, cfg):
        return
    role = interaction.guild.get_role(cfg.moderator_role_id) if interaction.guild and cfg.moderator_role_id else None
    if role is not None:
        raise NotAllowed(f"You need Manage Server or the {role.name} role to {action}.")
    raise NotAllowed(f"You need the Manage Server permission to {action}.")


async def require_admin(interaction: discord.Interaction[Any], action: str) -> None:
    """Manage Server itself: the moderator role is not enough (it is what this protects)."""
    if not has_manage_server(interaction):
        raise NotAllowed(f"Only members with the Manage Server permission can {action}; the moderator role can't.")


def _as_check(require: Callable[[discord.Interaction[Any], str], Awaitable[None]], action: str) -> Check:
    async def predicate(interaction: discord.Interaction[Any]) -> bool:
        await defer(interaction)  # before the database read, so the 3-second deadline never bites
        # The tree's error handler sees only AppCommandErrors raised by checks; anything else would be lost.
        try:
            await require(interaction, action)
        except NotAllowed as exc:
            raise app_commands.CheckFailure(exc.message) from exc
        except Exception as exc:  # e.g. the database: logged with an error id, a generic line for the member
            raise app_commands.AppCommandError(f"the moderator check failed: {exc!r}") from exc
        return True

    return predicate


def moderator_check(action: str) -> Check:
    """An app_commands check predicate (also usable as a GroupCog's interaction_check)."""
    return _as_check(require_moderator, action)


def admin_check(action: str) -> Check:
    return _as_check(require_admin, action)


def moderators_only(action: str) -> Callable[[T], T]:
    """Decorator form of moderator_check for single commands."""
    return app_commands.check(moderator_check(action))


def admins_only(action: str) -> Callable[[T], T]:
    """Manage Server at run time, for the commands the moderator role must not reach."""
    return app_commands.check(admin_check(action))


# -- options -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitTarget:
    """What a /limits command is about: a member (with their roles), a role, a channel, or the whole server."""

    scope: Scope
    target_id: int
    role_ids: tuple[int, ...] = ()


def limit_target(
    guild_id: int,
    member: discord.Member | discord.User | None,
    role: discord.Role | None,
    channel: discord.abc.GuildChannel | discord.Thread | None,
) -> LimitTarget:
    given = [name for name, value in (("member", member), ("role", role), ("channel", channel)) if value is not None]
    if len(given) > 1:
        raise InputError(
            f"Choose at most one of member, role or channel (you gave {' and '.join(given)}). "
            "Leave all three out for the server-wide limit."
        )
    if member is not None:
        roles = tuple(r.id for r in member.roles) if isinstance(member, discord.Member) else ()
        return LimitTarget(Scope.MEMBER, member.id, roles)
    if role is not None:
        return LimitTarget(Scope.ROLE, role.id)
    if channel is not None:
        return LimitTarget(Scope.CHANNEL, channel.id)
    return LimitTarget(Scope.SERVER, guild_id)


def parse_amount(amount: float | str) -> Micros:
    """USD as typed (a Discord number) to micro-dollars, exactly via Decimal; 0 blocks, negatives are refused."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise InputError(f"{amount!r} is not an amount in USD. Use a number such as 5 or 2.50.") from None
    if not value.is_finite():
        raise InputError("The amount must be a number of USD, such as 5 or 2.50.")
    if value < 0:
        raise InputError("A limit can't be negative. Use 0 to block spending, or /limits clear to remove the limit.")
    if value > MAX_LIMIT_USD:
        raise InputError(f"That is more than {format_usd(usd_to_micros(str(MAX_LIMIT_USD)))}; use a smaller limit.")
    micros = usd_to_micros(str(value))
    if value > 0 and micros == 0:
        raise InputError("The smallest limit above zero is $0.000001.")
    return micros


def guild_of(interaction: discord.Interaction[Any]) -> int:
    if interaction.guild_id is None:
        raise NotAllowed("This command works in a server, not in direct messages.")
    return interaction.guild_id


async def send_with_file(interaction: discord.Interaction[Any], text: str, data: bytes, filename: str) -> None:
    """Answer ephemerally with one attached file (after a deferral)."""
    file = discord.File(io.BytesIO(data), filename=filename)
    await interaction.followup.send(text, file=file, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())


# -- the desk ----------------------------------------------------------------------------------------------------


class ModerationDesk:
    """What /limits and /videoadmin do: one store call each, then the new state in plain words."""

    def __init__(self, host: EngineHost) -> None:
        self._host = host

    @property
    def engine(self) -> Engine:
        return self._host.engine

    # -- /limits -------------------------------------------------------------------------------------------------

    async def limits_set(
        self,
        interaction: discord.Interaction[Any],
        *,
        period: str,
        amount: float,
        member: discord.Member | discord.User | None,
        role: discord.Role | None,
        channel: discord.abc.GuildChannel | discord.Thread | None,
    ) -> str:
        gid = guild_of(interaction)
        target = limit_target(gid, member, role, channel)
        micros = parse_amount(amount)
        old, new = await self.engine.guilds.set_limit(
            gid, interaction.user.id, target.scope, target.target_id, Period(period), micros
        )
        was = f"was {format_usd(old.amount_micros)}" if old is not None else "there was none before"
        blocks = ": this **blocks** every job charged to it" if micros == 0 else ""
        head = f"✅ Set {limit_name(new, gid)} to **{format_usd(micros)}** ({was}){blocks}."
        return fit("\n".join([head, *await self._in_force(gid, target)]))

    async def limits_clear(
        self,
        interaction: discord.Interaction[Any],
        *,
        period: str,
        member: discord.Member | discord.User | None,
        role: discord.Role | None,
        channel: discord.abc.GuildChannel | discord.Thread | None,
    ) -> str:
        gid = guild_of(interaction)
        target = limit_target(gid, member, role, channel)
        p = Period(period)
        removed = await self.engine.guilds.clear_limit(gid, interaction.user.id, target.scope, target.target_id, p)
        if removed is None:
            subject = limit_subject(target.scope, target.target_id, gid)
            head = f"There is no {PERIOD_WORDS[p]} limit set for {subject}, so nothing changed."
        else:
            head = f"✅ Cleared {limit_name(removed, gid)} (it was {format_usd(removed.amount_micros)})."
        return fit("\n".join([head, *await self._in_force(gid, target)]))

    async def limits_show(
        self,
        interaction: discord.Interaction[Any],
        *,
        member: discord.Member | discord.User | None,
        role: discord.Role | None,
        channel: discord.abc.GuildChannel | discord.Thread | None,
    ) -> str:
        gid = guild_of(interaction)
        return fit("\n".join(await self._in_force(gid, limit_target(gid, member, role, channel))))

    async def limits_report(self, interaction: discord.Interaction[Any], *, period: str | None) -> tuple[str, bytes]:
        gid = guild_of(interaction)
        p = Period(period or Period.MONTH)
        report = await self.engine.ledger.report(gid, p, utcnow(), dry_run=self.engine.settings.dry_run)
        title = f"Video spend per day, {PERIOD_NOUNS[p]} (UTC)"
        png = await asyncio.to_thread(render_spend_chart, report.daily, title=title)
        return report_text(report), png

    async def _in_force(self, gid: int, target: LimitTarget) -> list[str]:
        """The limits that apply to a target, each with spent, reserved, left and reset time."""
        engine, now = self.engine, utcnow()
        dry = engine.settings.dry_run
        ledger, guilds = engine.ledger, engine.guilds
        subject = limit_subject(target.scope, target.target_id, gid)
        if target.scope is Scope.MEMBER:
            limits = await ledger.limits_for(
                payer=Payer.MEMBER, guild_id=gid, user_id=target.target_id, role_ids=target.role_ids, channel_id=0
            )
            standings = await ledger.standings(limits, guild_id=gid, now=now, dry_run=dry, user_id=target.target_id)
            return [
                f"Limits in force for {subject} (their own jobs; channel limits add to these where they post, "
                "and in a team pool the pool pays instead):",
                *(standing_text(st, gid) for st in standings),
            ]
        configured = await guilds.limits(gid)
        if target.scope is Scope.ROLE:
            mine = [lim for lim in configured if lim.scope is Scope.ROLE and lim.target_id == target.target_id]
            if not mine:
                return [f"No limits are set for {subject}."]
            return [
                f"Limits set for {subject} (a member limit beats them; with several roles the most generous applies):",
                *(per_member_limit_line(lim, gid, period_window(lim.period, now)[1]) for lim in mine),
            ]
        if target.scope is Scope.CHANNEL:
            rule = await guilds.channel_rule(gid, target.target_id)
            mine = [lim for lim in configured if lim.scope is Scope.CHANNEL and lim.target_id == target.target_id]
            pool = " It is a team pool: jobs there are paid from these, and the server's." if rule.pool else ""
            lines = [f"Limits in force for {subject}:{pool}"]
            lines += [standing_text(st, gid) for st in await ledger.standings(mine, guild_id=gid, now=now, dry_run=dry)]
            if not mine:
                others = "only the server's limits cap it" if rule.pool else "member and server limits still apply"
                lines.append(f"{subject} has no limits of its own; {others}.")
            return lines
        return await self._server_view(gid, configured, now, dry)

    async def _server_view(self, gid: int, configured: list[Limit], now: datetime, dry: bool) -> list[str]:
        ledger = self.engine.ledger
        server = await ledger.limits_for(payer=Payer.POOL, guild_id=gid, user_id=0, role_ids=(), channel_id=0)
        member_tier = await ledger.limits_for(payer=Payer.MEMBER, guild_id=gid, user_id=0, role_ids=(), channel_id=0)
        lines = ["**The server**"]
        lines += [standing_text(st, gid) for st in await ledger.standings(server, guild_id=gid, now=now, dry_run=dry)]
        if not server:
            lines.append("No server-wide limit.")
        lines.append("**Each member, unless a member or role limit says otherwise**")
        defaults = [lim for lim in member_tier if lim.scope in (Scope.MEMBER, Scope.ROLE)]
        for lim in defaults:
            name = "the config default" if lim.is_default else "@everyone's limit"
            resets = period_window(lim.period, now)[1]
            lines.append(
                f"• {PERIOD_WORDS[lim.period].capitalize()}: {format_usd(lim.amount_micros)} per member ({name}) · "
                f"resets {ts(resets, 'R')}"
            )
        if not defaults:
            lines.append("No default member limit.")
        members = [lim for lim in configured if lim.scope is Scope.MEMBER]
        if members:
            lines.append("**Members**")
            lines += [
                standing_text(st, gid) for st in await ledger.standings(members, guild_id=gid, now=now, dry_run=dry)
            ]
        roles = [lim for lim in configured if lim.scope is Scope.ROLE]
        if roles:
            lines.append("**Roles** (the most generous of a member's roles applies)")
            lines += [per_member_limit_line(lim, gid, period_window(lim.period, now)[1]) for lim in roles]
        channels = [lim for lim in configured if lim.scope is Scope.CHANNEL]
        pools = sorted(await self.engine.guilds.pool_channels(gid))
        if channels or pools:
            lines.append("**Channels and team pools**")
            lines += [
                standing_text(st, gid) for st in await ledger.standings(channels, guild_id=gid, now=now, dry_run=dry)
            ]
            limited = {lim.target_id for lim in channels}
            lines += [
                f"• <#{c}> is a team pool with no limit of its own: only the server's limits cap it."
                for c in pools
                if c not in limited
            ]
        return lines

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
            raise InputError(f"The variations cap must be between 1 and {MAX_VARIATIONS}.")
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
            raise InputError(f"Choose between 1 and {MAX_CONCURRENCY} unfinished jobs per member.")
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
