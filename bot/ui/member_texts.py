"""What members read about confirm-above offers and Extend (SPEC §4a). Returns str; never pings."""

from __future__ import annotations

from datetime import datetime

from bot.core.models import format_usd
from bot.ui.texts import ts

# -- members: confirm before costly jobs (SPEC §4a) ------------------------------------------------------------------


def offer_text(
    estimate_micros: int, left_micros: int | None, expires_at: datetime, *, variations: int, size: str
) -> str:
    """The ephemeral question before a costly job: the estimate, what is left, Start or Cancel."""
    clips = f"{variations} clip{'s' if variations != 1 else ''} at {size}"
    if left_micros is None:
        left = "No spend limit applies to you here."
    else:
        left = f"You have {format_usd(left_micros)} left under your tightest spend limit."
    return (
        f"This job costs about **{format_usd(estimate_micros)}** ({clips}). {left}\n"
        f"Press Start to go ahead, or Cancel. Nothing is reserved until you press Start; this offer expires "
        f"{ts(expires_at, 'R')}."
    )


def offer_closed_text(outcome: str, window_minutes: int) -> str:
    """Start or Cancel on an offer that can no longer be taken (outcome: expired, used, missing, not_yours)."""
    if outcome == "expired":
        return (
            f"This offer expired: offers last {window_minutes} minutes. Nothing was reserved; use the command "
            "again for a fresh estimate."
        )
    if outcome == "used":
        return (
            "This offer was already answered, so nothing more was started or reserved. Use the command again for "
            "another job."
        )
    if outcome == "not_yours":
        return "Only the member who asked for this job can start it. Use the command yourself to get your own offer."
    return "This offer no longer exists. Use the command again for a fresh estimate."


OFFER_CANCELLED = "Cancelled: nothing was started, reserved or charged."


# -- members: Extend (SPEC §4a) ---------------------------------------------------------------------------------------

CLIP_GONE = (
    "That clip is no longer available (its link expired, or it was deleted), so it can't be extended. "
    "Start a new job with /video instead."
)


def extension_line(parent_job_id: int, clip: int, *, joined: bool) -> str:
    both = " The attached …-extended.mp4 plays both, one after the other." if joined else ""
    return f"⏩ Continues clip {clip} of job #{parent_job_id} from its last frame.{both}"


def clip_choice_text(count: int) -> str:
    return f"Choose a clip number from 1 to {count}: this message holds {count} clips."
