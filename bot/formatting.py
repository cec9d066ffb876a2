"""Pure text builders for what members read. Returns str; never pings (allowed_mentions does the rest)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.models import ClipResult, Job, JobState, format_usd

DISCORD_LIMIT = 2000
DRY = "🧪 DRY RUN · "


def quote(text: str, limit: int = 900) -> str:
    """A block quote of member text, cut to `limit` characters; mentions stay inert via allowed_mentions."""
    text = text.strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return "\n".join("> " + line if line else ">" for line in text.splitlines())


def ts(when: datetime, style: str = "f") -> str:
    """A Discord timestamp, shown in each reader's own time zone."""
    return f"<t:{int(when.timestamp())}:{style}>"


def dry_prefix(job: Job) -> str:
    return DRY if job.dry_run else ""


def clip_line(job: Job, result: ClipResult, n: int, *, link: bool) -> str:
    seed = f"seed {result.seed}" if result.seed is not None else "seed n/a"
    cost = format_usd(result.cost_micros) if result.cost_micros is not None else "cost not reported"
    if job.dry_run and result.cost_micros is not None:
        cost += " (simulated)"
    head = f"**#{n}** · {job.resolution} · {job.duration} s · {seed} · {cost}"
    if link:
        head += f"\n{result.video_url} (too large to attach here)"
    return head


def result_message(
    job: Job,
    numbered: Sequence[tuple[int, ClipResult, bool]],
    *,
    part: int,
    parts: int,
    ttl_expires: datetime | None = None,
) -> str:
    """The post with the clips: requester, quoted prompt, then a line per clip (n, result, is_link)."""
    clips = "clip is" if job.variations == 1 else "clips are"
    title = f"{dry_prefix(job)}<@{job.user_id}> your {clips} ready"
    if parts > 1:
        title += f" (part {part} of {parts})"
    lines = [title, quote(job.prompt, 600)]
    lines += [clip_line(job, r, n, link=is_link) for n, r, is_link in numbered]
    if ttl_expires is not None and any(is_link for _, _, is_link in numbered):
        lines.append(f"Links expire {ts(ttl_expires, 'R')}.")
    if job.cost_micros is not None and part == parts and job.variations > 1:
        lines.append(f"Total: {format_usd(job.cost_micros)}")
    return fit("\n".join(lines))


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


def status_message(
    job: Job, phase: str, *, elapsed_s: float | None = None, progress: int | None = None, detail: str | None = None
) -> str:
    """The status message a job keeps in its channel and edits as it moves."""
    head = f"{dry_prefix(job)}{PHASES.get(phase, phase)} · job #{job.id} for <@{job.user_id}>"
    what = f"{job.variations} × {job.resolution} · {job.duration} s"
    if job.frame_count:
        what += f" · {job.frame_count} frame image{'s' if job.frame_count > 1 else ''}"
    lines = [head, quote(job.prompt, 300), what]
    if phase == "generating" and elapsed_s is not None:
        extra = f" · {progress}%" if progress is not None else ""
        lines.append(f"Running for {int(elapsed_s // 60)}m {int(elapsed_s % 60):02d}s{extra}")
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


def job_line(job: Job, link: str | None) -> str:
    if job.cost_micros is not None:
        cost = format_usd(job.cost_micros)
    elif job.state in (JobState.FAILED, JobState.EXPIRED):
        cost = "not charged"
    else:
        cost = f"~{format_usd(job.estimate_micros)} reserved"
    prompt = job.prompt if len(job.prompt) <= 60 else job.prompt[:59] + "…"
    where = f" · [open]({link})" if link else ""
    dry = " · dry run" if job.dry_run else ""
    return (
        f"{STATE_ICONS.get(job.state, '')} **#{job.id}** {job.state.value} · {ts(job.created_at, 'R')} · "
        f"{job.variations}×{job.resolution} {job.duration}s · {cost}{dry}{where}\n   “{prompt}”"
    )


def standing_line(limit_label: str, amount: int, spent: int, reserved: int, left: int, resets_at: datetime) -> str:
    return (
        f"• **{limit_label[0].upper()}{limit_label[1:]}**: {format_usd(spent)} spent"
        f"{f' + {format_usd(reserved)} reserved' if reserved else ''} of {format_usd(amount)} · "
        f"**{format_usd(left)} left** · resets {ts(resets_at, 'R')}"
    )
