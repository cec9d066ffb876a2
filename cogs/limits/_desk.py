"""What /limits does: which limit the options name, one store call, then the new state in plain words."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import discord

from bot.core.errors import InputError
from bot.core.models import Micros, Payer, Period, Scope, format_usd, usd_to_micros
from bot.core.policy import Limit, period_window
from bot.ui.chart import render_spend_chart
from bot.ui.checks import guild_of
from bot.ui.groups import Desk
from bot.ui.moderation import price_drift_lines
from bot.ui.texts import (
    PERIOD_NOUNS,
    PERIOD_WORDS,
    fit,
    limit_name,
    limit_subject,
    per_member_limit_line,
    report_text,
    standing_text,
    ts,
)

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


MAX_LIMIT_USD = Decimal(1_000_000)


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
        raise InputError.said(
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
        raise InputError.said(f"{amount!r} is not an amount in USD. Use a number such as 5 or 2.50.") from None
    if not value.is_finite():
        raise InputError.said("The amount must be a number of USD, such as 5 or 2.50.")
    if value < 0:
        raise InputError.said(
            "A limit can't be negative. Use 0 to block spending, or /limits clear to remove the limit."
        )
    if value > MAX_LIMIT_USD:
        raise InputError.said(
            f"That is more than {format_usd(usd_to_micros(str(MAX_LIMIT_USD)))}; use a smaller limit."
        )
    micros = usd_to_micros(str(value))
    if value > 0 and micros == 0:
        raise InputError.said("The smallest limit above zero is $0.000001.")
    return micros


class LimitsDesk(Desk):
    """What /limits does: one store call each, then the new state in plain words."""

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
        """Totals, top lines, the operator apart and prices that drifted; a chart per hour (day) or per day."""
        gid, engine = guild_of(interaction), self.engine
        now = engine.clock()
        p, dry = Period(period or Period.MONTH), engine.settings.dry_run
        report = await engine.ledger.report(gid, p, now, dry_run=dry)
        start, end = report.window_start, report.window_end
        report = replace(report, operator=await engine.spend.operator_spend(start, end, dry_run=dry))
        bars: Sequence[tuple[date, Micros]] = report.daily
        if p is Period.DAY:
            bars = await engine.spend.hourly(gid, start, end, now, dry_run=dry)
        unit = "hour" if p is Period.DAY else "day"
        title = f"Video spend per {unit}, {PERIOD_NOUNS[p]} (UTC)"
        png = await asyncio.to_thread(render_spend_chart, bars, title=title)
        return report_text(report, price_drift_lines(await engine.prices.drifts())), png

    async def _in_force(self, gid: int, target: LimitTarget) -> list[str]:
        """The limits that apply to a target, each with spent, reserved, left and reset time."""
        engine = self.engine
        now = engine.clock()
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
