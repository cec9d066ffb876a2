"""Words of the moderator features: the audit trail, the blocklist, and prices that drifted from the table.

Every text here is sent ephemerally with no allowed mentions; phrases typed by moderators are shown with their
markdown and mentions escaped, so a listed phrase can never format or ping anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord

from bot.core.models import Period, Scope, format_usd
from bot.core.policy import Limit
from bot.ui.texts import DISCORD_LIMIT, limit_name, ts

if TYPE_CHECKING:
    from bot.core.pricing import PriceDrift
    from bot.store.guilds import AuditRow

# -- phrases -----------------------------------------------------------------------------------------------------


def shown_phrase(phrase: str) -> str:
    """A member- or moderator-typed phrase, inert: no markdown, no mentions."""
    return discord.utils.escape_mentions(discord.utils.escape_markdown(phrase))


def blocked_prompt_text(phrase: str) -> str:
    """SPEC §4a's refusal of a prompt holding a listed phrase (the phrase as the moderators listed it)."""
    return f"This server does not allow “{shown_phrase(phrase)}” in prompts."


# -- the audit trail ---------------------------------------------------------------------------------------------

SETTING_LABELS = {
    "default_resolution": "Default resolution",
    "default_duration": "Default length",
    "variations_cap": "Variations cap",
    "prompt_optimizer": "Prompt optimizer",
    "safety_mode": "Safety checks",
    "concurrent_per_member": "Unfinished jobs per member",
    "moderator_role_id": "Moderator role",
    "paused": "New jobs",
}
CHANNEL_FLAGS = {"allowed": "allowed", "threads": "thread per job", "pool": "team pool"}


def _setting_value(name: str, value: str | None) -> str:
    if value is None:
        return "none" if name == "moderator_role_id" else "the default"
    if name == "prompt_optimizer":
        return "on" if value == "1" else "off"
    if name == "paused":
        return "paused" if value == "1" else "running"
    if name == "default_duration":
        return f"{value} s"
    if name == "moderator_role_id":
        return f"<@&{value}>"
    if name.endswith("_micros"):  # money settings (e.g. a confirmation threshold)
        return _money(value)
    return shown_phrase(value)


def _money(value: str | None) -> str:
    if value is None:
        return "none"
    try:
        return format_usd(int(value))
    except ValueError:
        return value


def _plain(value: str | None) -> str:
    return "none" if value is None else shown_phrase(value)


def audit_change(row: AuditRow) -> str:
    """What one audit row changed, old → new, in the words the commands use."""
    action, target, old, new = row.action, row.target, row.old_value, row.new_value
    if action == "setting":
        label = SETTING_LABELS.get(target, target.removesuffix("_micros").replace("_", " ").capitalize())
        return f"{label}: {_setting_value(target, old)} → {_setting_value(target, new)}"
    if action == "channel":
        channel, _, flag = target.partition(":")
        word = CHANNEL_FLAGS.get(flag, flag.replace("_", " "))
        onoff = {"1": "on", "0": "off"}
        return f"<#{channel}> {word}: {onoff.get(old or '', _plain(old))} → {onoff.get(new or '', _plain(new))}"
    if action in ("limit.set", "limit.clear"):
        try:
            scope, target_id, period = target.split(":")
            name = limit_name(Limit(Scope(scope), int(target_id), Period(period), 0), row.guild_id)
        except ValueError:
            name = f"limit {target}"
        verb = "cleared" if action == "limit.clear" else "set"
        return f"{name[0].upper()}{name[1:]} {verb}: {_money(old)} → {_money(new)}"
    if action == "blocklist.add":
        return f"Blocked phrase added: “{_plain(new)}”"
    if action == "blocklist.remove":
        return f"Blocked phrase removed: “{_plain(old)}”"
    what = f"{action} {target}".replace("_", " ").replace(".", " ").strip()
    return f"{what[0].upper()}{what[1:]}: {_plain(old)} → {_plain(new)}"


def audit_line(row: AuditRow) -> str:
    """One row: when (a Discord timestamp), who, what, old → new."""
    return f"• {ts(row.at, 'f')} · <@{row.actor_id}> · {audit_change(row)}"


def audit_pages(rows: Sequence[AuditRow], *, member_id: int | None, limit: int = DISCORD_LIMIT) -> list[str]:
    """The audit answer as messages of whole rows, each within Discord's limit; the first has the heading."""
    by = f" by <@{member_id}>" if member_id is not None else ""
    if not rows:
        return [f"No changes{by} are recorded in this server yet."]
    count = f"{len(rows)} change{'s' if len(rows) != 1 else ''}"
    head = f"**Latest {count}{by}**, newest first (times in your time zone):"
    lines = [audit_line(row) for row in rows]
    pages: list[list[str]] = [[]]
    room = limit - len(head) - 40  # the heading and a "(part n of m)" tag
    used = 0
    for line in lines:
        line = line if len(line) <= room else line[: room - 1] + "…"
        if pages[-1] and used + len(line) + 1 > room:
            pages.append([])
            used = 0
        pages[-1].append(line)
        used += len(line) + 1
    total = len(pages)
    out = []
    for n, page in enumerate(pages, start=1):
        tag = f" (part {n} of {total})" if total > 1 else ""
        first = head + tag if n == 1 else f"**Audit, continued**{tag}:"
        out.append("\n".join([first, *page]))
    return out


# -- the blocklist -----------------------------------------------------------------------------------------------


def blocklist_text(phrases: Sequence[str], cap: int) -> str:
    """/videoadmin blocklist list: every phrase, within one message (the longest list is cut with a count)."""
    if not phrases:
        return "No phrases are blocked in this server. Add one with /videoadmin blocklist add."
    head = f"**Blocked phrases** ({len(phrases)} of {cap}); prompts holding any of them are refused:"
    lines = [head]
    used = len(head)
    for n, phrase in enumerate(phrases):
        line = f"• “{shown_phrase(phrase)}”"
        rest = len(phrases) - n
        if used + len(line) + 1 > DISCORD_LIMIT - 40:
            lines.append(f"…and {rest} more.")
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


def blocklist_added_text(phrase: str, count: int, cap: int) -> str:
    return (
        f"✅ Blocked “{shown_phrase(phrase)}”: prompts holding it as a word or phrase, in any case or width, are "
        f"refused from now on ({count} of {cap} phrases)."
    )


def blocklist_already_text(phrase: str) -> str:
    return f"“{shown_phrase(phrase)}” is already blocked, so nothing changed."


def blocklist_removed_text(phrase: str, count: int) -> str:
    left = f"{count} phrase{'s' if count != 1 else ''} still blocked" if count else "no phrases are blocked now"
    return f"✅ Removed “{shown_phrase(phrase)}” from the blocklist ({left})."


def blocklist_missing_text(phrase: str) -> str:
    return (
        f"“{shown_phrase(phrase)}” is not on this server's blocklist, so nothing changed. "
        "See /videoadmin blocklist list."
    )


# -- prices ------------------------------------------------------------------------------------------------------


def size_words(size: str) -> str:
    """'768p-6' as '768p 6 s'."""
    resolution, _, seconds = size.partition("-")
    return f"{resolution} {seconds} s" if seconds else size


def price_drift_lines(drifts: Sequence[PriceDrift]) -> list[str]:
    """Sizes whose reported cost is more than 5 % off the configured price, with both figures."""
    if not drifts:
        return []
    lines = ["**Prices that differ from what Runware charged** (reservations use the larger figure):"]
    for d in drifts:
        lines.append(
            f"• {size_words(d.size)}: configured {format_usd(d.configured_micros)} a clip, Runware charged "
            f"{format_usd(d.reported_micros)} (median of the last {d.samples}, {d.percent:+.0f} %)"
        )
    return lines
