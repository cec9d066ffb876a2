"""Pure text builders for what members read. Returns str; never pings (allowed_mentions does the rest)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from discord.utils import TimestampStyle, format_dt

from bot.core.models import ClipResult, Job, JobState, Period, SafetyMode, Scope, format_usd

if TYPE_CHECKING:
    from bot.core.policy import Limit
    from bot.store.guilds import ChannelRule, GuildConfig
    from bot.store.ledger import SpendLine, SpendReport, Standing

DISCORD_LIMIT = 2000
DRY = "🧪 DRY RUN · "


def quote(text: str, limit: int = 900) -> str:
    """A block quote of member text, cut to `limit` characters; mentions stay inert via allowed_mentions."""
    text = text.strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return "\n".join("> " + line if line else ">" for line in text.splitlines())


def ts(when: datetime, style: TimestampStyle = "f") -> str:
    """A Discord timestamp, shown in each reader's own time zone."""
    return format_dt(when, style)


def dry_prefix(job: Job) -> str:
    return DRY if job.dry_run else ""


#: Why a clip is posted as its link instead of attached: over the upload limit, or its download failed just now.
LinkWhy = Literal["too_large", "download_failed"]


def clip_line(job: Job, result: ClipResult, n: int, *, link: LinkWhy | None) -> str:
    """A clip's line; `link`: why it is posted as its link (None: it is attached)."""
    seed = f"seed {result.seed}" if result.seed is not None else "seed n/a"
    cost = format_usd(result.cost_micros) if result.cost_micros is not None else "cost not reported"
    if job.dry_run and result.cost_micros is not None:
        cost += " (simulated)"
    head = f"**#{n}** · {job.resolution} · {job.duration} s · {seed} · {cost}"
    if link and not result.video_url:  # the clip's URL is not on Runware's hosts: never shown
        head += "\n(the clip could not be fetched from Runware, so it is not attached; try Reroll)"
    elif link == "download_failed":
        head += f"\n{result.video_url} (could not be attached just now; the link opens it)"
    elif link:
        head += f"\n{result.video_url} (too large to attach here)"
    return head


def result_message(
    job: Job,
    numbered: Sequence[tuple[int, ClipResult, LinkWhy | None]],
    *,
    total: int,
    last: bool = True,
    ttl_expires: datetime | None = None,
) -> str:
    """The post with the clips: requester, quoted prompt, then a line per clip (n, result, why it is a link or None).

    When the clips of a job need several messages, the title says which of the `total` this one holds; the quoted
    prompt shrinks before any clip line (and its link) could be cut.
    """
    clips = "clip is" if job.variations == 1 else "clips are"
    title = f"{dry_prefix(job)}<@{job.user_id}> your {clips} ready"
    numbers = [n for n, _, _ in numbered]
    if numbers and len(numbers) < total:
        if len(numbers) == 1:
            title += f" (clip {numbers[0]} of {total})"
        elif numbers == list(range(numbers[0], numbers[-1] + 1)):
            title += f" (clips {numbers[0]}–{numbers[-1]} of {total})"
        else:
            title += f" (clips {', '.join(map(str, numbers))} of {total})"
    body = [clip_line(job, r, n, link=why) for n, r, why in numbered]
    if ttl_expires is not None and any(why for _, _, why in numbered):
        body.append(f"Links expire {ts(ttl_expires, 'R')}.")
    if job.cost_micros is not None and last and job.variations > 1:
        body.append(f"Total: {format_usd(job.cost_micros)}")
    room = DISCORD_LIMIT - len("\n".join([title, *body])) - 1
    prompt = quote_within(job.prompt, min(600, room))
    return fit("\n".join([title, *([prompt] if prompt else []), *body]))


def quote_within(text: str, budget: int) -> str:
    """A quote of member text in at most `budget` characters, its '> ' marks included ('' if there is no room)."""
    limit = budget
    while limit > 0:
        quoted = quote(text, limit)
        if len(quoted) <= budget:
            return quoted
        limit -= len(quoted) - budget
    return ""


def fit(text: str) -> str:
    return text if len(text) <= DISCORD_LIMIT else text[: DISCORD_LIMIT - 1] + "…"


PHASES = {
    "queued": "⏳ Queued",
    "generating": "🎬 Generating",
    "delivering": "📤 Posting",
    "done": "✅ Done",
    "failed": "❌ Failed",
    "cancelled": "🛑 Cancelled",
    "expired": "⌛ Expired",
}


def usually_ready(seconds: float) -> str:
    """'Usually ready in about 3 min' (SPEC §4a): the median of recent jobs of the same size, in whole minutes."""
    return f"Usually ready in about {max(1, round(seconds / 60))} min"


def status_message(
    job: Job,
    phase: str,
    *,
    progress: int | None = None,
    detail: str | None = None,
    usual_seconds: float | None = None,
) -> str:
    """The status message a job keeps in its channel and edits as it moves.

    The running time is a Discord relative timestamp, which every reader's client keeps counting between edits.
    While it generates, how long such jobs usually take, when enough of them have finished.
    """
    head = f"{dry_prefix(job)}{PHASES.get(phase, phase)} · job #{job.id} for <@{job.user_id}>"
    what = f"{job.variations} × {job.resolution} · {job.duration} s"
    if job.frame_count:
        what += f" · {job.frame_count} frame image{'s' if job.frame_count > 1 else ''}"
    lines = [head, quote(job.prompt, 300), what]
    if phase == "generating":
        extra = f" · {progress}%" if progress is not None else ""
        lines.append(f"Started {ts(job.submitted_at or job.created_at, 'R')}{extra}")
        if usual_seconds is not None:
            lines.append(usually_ready(usual_seconds))
    if detail:
        lines.append(detail)
    return fit("\n".join(lines))


STATE_ICONS = {
    JobState.RESERVED: "⏳",
    JobState.SUBMITTED: "🎬",
    JobState.SUCCEEDED: "✅",
    JobState.FAILED: "❌",
    JobState.EXPIRED: "⌛",
    JobState.CANCELLED: "🛑",
}
#: A job's state in the words its status message uses (the store's names are not for members).
STATE_WORDS = {
    JobState.RESERVED: "queued",
    JobState.SUBMITTED: "generating",
    JobState.SUCCEEDED: "done",
    JobState.FAILED: "failed",
    JobState.EXPIRED: "expired",
    JobState.CANCELLED: "cancelled",
}


def job_line(job: Job, link: str | None) -> str:
    if job.cost_micros is not None:
        cost = format_usd(job.cost_micros)
    elif job.state in (JobState.FAILED, JobState.EXPIRED):
        cost = "not charged"
    else:
        cost = f"~{format_usd(job.estimate_micros)} reserved"
    prompt = " ".join(job.prompt.split())  # one line per job, whatever the prompt's line breaks
    prompt = prompt if len(prompt) <= 60 else prompt[:59] + "…"
    where = f" · [open]({link})" if link else ""
    dry = " · dry run" if job.dry_run else ""
    state = STATE_WORDS.get(job.state, job.state.value)
    return (
        f"{STATE_ICONS.get(job.state, '')} **#{job.id}** {state} · {ts(job.created_at, 'R')} · "
        f"{job.variations} × {job.resolution} · {job.duration} s · {cost}{dry}{where}\n   “{prompt}”"
    )


def standing_line(limit_label: str, amount: int, spent: int, reserved: int, left: int, resets_at: datetime) -> str:
    label = f"• **{limit_label[0].upper()}{limit_label[1:]}**"
    held = f" + {format_usd(reserved)} reserved" if reserved else ""
    if amount == 0:  # a block: nothing is "left" and nothing "resets" in words that help
        used = f" ({format_usd(spent)} spent{held})" if spent or reserved else ""
        return f"{label}: {format_usd(0)}, so it **blocks new jobs**{used}"
    return (
        f"{label}: {format_usd(spent)} spent{held} of {format_usd(amount)} · "
        f"**{format_usd(left)} left** · resets {ts(resets_at, 'R')}"
    )


# -- moderators: limits, reports, server settings ------------------------------------------------------------------

PERIOD_WORDS = {Period.DAY: "daily", Period.WEEK: "weekly", Period.MONTH: "monthly"}
PERIOD_NOUNS = {Period.DAY: "today", Period.WEEK: "this week", Period.MONTH: "this month"}


def limit_subject(scope: Scope, target_id: int, guild_id: int) -> str:
    """Who or what a limit is about, as Discord renders it (mentions stay inert: ephemeral, no allowed mentions)."""
    if scope is Scope.MEMBER:
        return f"<@{target_id}>"
    if scope is Scope.ROLE:
        return "@everyone" if target_id == guild_id else f"<@&{target_id}>"
    if scope is Scope.CHANNEL:
        return f"<#{target_id}>"
    return "the server"


def limit_name(limit: Limit, guild_id: int) -> str:
    """'<@1>'s daily limit', 'the weekly limit of each member with <@&2>', 'the server's monthly limit'."""
    word = PERIOD_WORDS[limit.period]
    subject = limit_subject(limit.scope, limit.target_id, guild_id)
    if limit.scope is Scope.SERVER:
        name = f"the server's {word} limit"
    elif limit.scope is Scope.ROLE:
        name = f"the {word} limit of each member with {subject}"
    else:
        name = f"{subject}'s {word} limit"
    return name + (" (config default)" if limit.is_default else "")


def standing_text(standing: Standing, guild_id: int) -> str:
    """One limit in force: spent, reserved, left and when it resets."""
    st = standing
    name = limit_name(st.limit, guild_id)
    return standing_line(
        name, st.limit.amount_micros, st.spent_micros, st.reserved_micros, st.left_micros, st.resets_at
    )


def per_member_limit_line(limit: Limit, guild_id: int, resets_at: datetime) -> str:
    """A role limit shown without a member: it is counted for each member separately."""
    name = limit_name(limit, guild_id)
    blocked = " (blocks every job)" if limit.amount_micros == 0 else ""
    return (
        f"• **{name[0].upper()}{name[1:]}**: {format_usd(limit.amount_micros)}{blocked}, counted for each member "
        f"separately · resets {ts(resets_at, 'R')}"
    )


def change_text(what: str, old: object, new: object) -> str:
    """'Safety checks: none → full' (or 'unchanged')."""
    return f"{what}: {old} → {new}" if old != new else f"{what}: {new} (unchanged)"


def on_off(flag: bool) -> str:
    return "on" if flag else "off"


SAFETY_NOTES = {
    SafetyMode.NONE: "Generated clips are not content-checked.",
    SafetyMode.FAST: "Runware runs its fast content check on every new clip.",
    SafetyMode.FULL: "Runware runs its full content check on every new clip.",
}


def settings_changed_text(old: GuildConfig, new: GuildConfig, note: str = "") -> str:
    """A /videoadmin confirmation: each setting that moved (old → new), a note, then every setting as it is now."""

    def role(role_id: int | None) -> str:
        return "none" if role_id is None else f"<@&{role_id}>"

    pairs: list[tuple[str, object, object]] = [
        ("Default resolution", old.default_resolution, new.default_resolution),
        ("Default length", f"{old.default_duration} s", f"{new.default_duration} s"),
        ("Variations cap", old.variations_cap, new.variations_cap),
        ("Prompt optimizer", on_off(old.prompt_optimizer), on_off(new.prompt_optimizer)),
        ("Safety checks", old.safety_mode.value, new.safety_mode.value),
        ("Unfinished jobs per member", old.concurrent_per_member, new.concurrent_per_member),
        ("Moderator role", role(old.moderator_role_id), role(new.moderator_role_id)),
        ("New jobs", "paused" if old.paused else "running", "paused" if new.paused else "running"),
        ("Confirm jobs costing at least", _confirm_words(old), _confirm_words(new)),
    ]
    moved = [f"{label}: {a} → {b}" for label, a, b in pairs if a != b]
    head = "✅ " + "; ".join(moved) + "." if moved else "Nothing changed: that is already the setting."
    return "\n".join([head, *([note] if note else []), "", "Server settings now:", guild_config_text(new)])


def _confirm_words(cfg: GuildConfig) -> str:
    return format_usd(cfg.confirm_above_micros) if cfg.confirm_above_micros else "off"


def guild_config_text(cfg: GuildConfig) -> str:
    """Every server setting a moderator can change, as they read it."""
    role = f"<@&{cfg.moderator_role_id}>" if cfg.moderator_role_id else "none (Manage Server only)"
    return "\n".join(
        [
            f"• /video defaults: **{cfg.default_resolution}**, **{cfg.default_duration} s**, up to "
            f"**{cfg.variations_cap}** variation{'s' if cfg.variations_cap != 1 else ''}, prompt optimizer "
            f"**{on_off(cfg.prompt_optimizer)}**",
            f"• Safety checks of generated clips: **{cfg.safety_mode.value}**",
            f"• Unfinished jobs per member: at most **{cfg.concurrent_per_member}**",
            f"• Moderator role: {role}",
            f"• New jobs: **{'paused' if cfg.paused else 'running'}**",
            f"• Members confirm jobs costing at least: **{_confirm_words(cfg)}** first",
        ]
    )


def channel_rule_text(rule: ChannelRule, allowed_elsewhere: Sequence[int] = ()) -> str:
    """A channel's rule in plain words: may /video run there, a thread per job, a team pool."""
    channel = f"<#{rule.channel_id}>"
    if rule.allowed:
        where = f"/video is **allowed** in {channel} (only allowed channels can use it)."
    elif allowed_elsewhere:
        where = f"/video is **not allowed** in {channel}: only {', '.join(f'<#{c}>' for c in allowed_elsewhere[:5])}."
    else:
        where = f"/video works in {channel} (no channel is restricted yet, so it works everywhere)."
    threads = "each job gets **its own thread**" if rule.threads else "jobs post **in the channel**"
    pool = (
        "it is a **team pool**: jobs there are paid from the channel's budget, not the member's"
        if rule.pool
        else "members pay from **their own** budgets"
    )
    return f"{where} In {channel}, {threads}; {pool}."


def _spend_rows(title: str, lines: Sequence[SpendLine], mention: str) -> list[str]:
    if not lines:
        return []
    out = [f"**{title}**"]
    for n, line in enumerate(lines, start=1):
        reserved = f" ({format_usd(line.reserved_micros)} reserved)" if line.reserved_micros else ""
        out.append(
            f"{n}. {mention.format(line.id)} {format_usd(line.total_micros)}{reserved} · "
            f"{line.jobs} job{'s' if line.jobs != 1 else ''}"
        )
    return out


def report_text(report: SpendReport, extra: Sequence[str] = ()) -> str:
    """The /limits report message: totals, top members, channels and pools, the operator's spend apart, `extra`."""
    r = report
    first_day, last_day = r.window_start.date(), (r.window_end - timedelta(days=1)).date()
    span = f"{first_day.isoformat()}{f' to {last_day.isoformat()}' if last_day != first_day else ''}, UTC"
    head = f"{DRY if r.dry_run else ''}📊 **Video spend {PERIOD_NOUNS[r.period]}** ({span})"
    lines = [
        head,
        f"**Total: {format_usd(r.total_micros)}** — {format_usd(r.settled_micros)} settled + "
        f"{format_usd(r.reserved_micros)} reserved · {r.jobs} job{'s' if r.jobs != 1 else ''}",
    ]
    lines += _spend_rows("Top members (own budgets)", r.top_members, "<@{}>")
    lines += _spend_rows("Top channels (member-paid)", r.top_channels, "<#{}>")
    lines += _spend_rows("Team pools", r.pools, "<#{}>")
    if not r.jobs:
        lines.append("No video jobs were charged in this period.")
    if r.operator.jobs:
        lines.append(
            f"Operator jobs (`hailuo-bot generate`), not in the totals: {format_usd(r.operator.total_micros)} · "
            f"{r.operator.jobs} job{'s' if r.operator.jobs != 1 else ''}"
        )
    lines += extra
    lines.append(f"Spend per {'hour' if r.period is Period.DAY else 'day'} is in the attached chart.")
    return fit("\n".join(lines))
