"""The words for every refusal and failure the core reports as data (bot.core.errors), and for Runware's errors.

`error_text(err)` is the one way a UserFacingError becomes text: the tree's error path, the cogs and the `generate`
CLI all go through it. `failure_text(failure)` words why a job failed (status messages, the CLI).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from discord.utils import format_dt

from bot.core.errors import (
    ConcurrencyLimited,
    Failure,
    FailureKind,
    JobRejected,
    OverLimit,
    UserFacingError,
)
from bot.core.models import Period, Scope, format_usd
from bot.core.policy import ALLOWED_DURATIONS, Limit
from bot.runware.errors import ErrorKind, RunwareError, RunwareUnavailable
from bot.runware.models import RunwareErrorItem
from bot.ui.moderation import blocked_prompt_text
from bot.ui.texts import PERIOD_WORDS, STATE_WORDS

MIB = 1024 * 1024

# -- helpers ---------------------------------------------------------------------------------------------------------


def allowed_pairs_text() -> str:
    """'768p: 6 or 10 s; 1080p: 6 s', in the command's own terms."""
    parts = []
    for res, durs in ALLOWED_DURATIONS.items():
        parts.append(f"{res}: {' or '.join(str(d) for d in durs)} s")
    return "; ".join(parts)


def mib(n: int) -> str:
    """Whole MiB when exact, else one decimal rounded up (so 10 MiB + 1 byte never reads as 10.0 MiB)."""
    if n % MIB == 0:
        return f"{n // MIB} MiB"
    return f"{math.ceil(n * 10 / MIB) / 10:.1f} MiB"


def file_name(filename: str) -> str:
    """The file name as quoted back to the member: one line, not absurdly long."""
    clean = "".join(ch for ch in filename if ch.isprintable()).strip().replace('"', "'")
    if not clean:
        return "The image"
    return f'"{clean}"' if len(clean) <= 80 else f'"{clean[:77]}..."'


def span(seconds: float) -> str:
    """'30 minutes', '45 seconds': a wait as members read it."""
    if seconds < 120:
        n = max(1, round(seconds))
        return f"{n} second{'s' if n != 1 else ''}"
    return f"{round(seconds / 60)} minutes"


def limit_label(scope: Scope, period: Period, *, is_default: bool) -> str:
    """'your daily limit', 'your role's default weekly limit', 'the server's monthly limit' (as the member reads it)."""
    who = {
        Scope.MEMBER: "your",
        Scope.ROLE: "your role's",
        Scope.CHANNEL: "this channel's",
        Scope.SERVER: "the server's",
    }[scope]
    kind = "default " if is_default and scope is not Scope.SERVER else ""
    return f"{who} {kind}{PERIOD_WORDS[period]} limit"


def own_limit_label(limit: Limit) -> str:
    return limit_label(limit.scope, limit.period, is_default=limit.is_default)


_OTHER_KINDS = {
    "gif": "a GIF",
    "bmp": "a BMP image",
    "tiff": "a TIFF image",
    "pdf": "a PDF",
    "icon": "an icon file",
    "heic": "a HEIC/AVIF image",
}


def _size(d: Mapping[str, Any]) -> str:
    return f"{d['width']}×{d['height']} pixels"


def _aspect(d: Mapping[str, Any]) -> str:
    limit = f"{d['max_aspect']:g}"
    shape = "wide as it is tall" if d["width"] > d["height"] else "tall as it is wide"
    return (
        f"{file_name(d['filename'])} is {_size(d)}, {d['ratio']:.2f} times as {shape}; the aspect ratio must be "
        f"between 1:{limit} and {limit}:1. Crop it closer to the clip's shape."
    )


def _not_image(d: Mapping[str, Any]) -> str:
    kind = _OTHER_KINDS.get(d.get("kind") or "", "not an image the bot can read")
    return f"{file_name(d['filename'])} is {kind}. Attach a PNG, JPEG or WEBP image."


#: code -> words, for the errors that carry a code and plain facts
_WORDS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "said": lambda d: str(d["text"]),
    "startup": lambda d: str(d["detail"]),  # the operator's words, written where the start-up failed
    # /video options (bot.core.policy)
    "resolution_not_offered": lambda d: (
        f"Resolution {d['resolution']!r} is not offered. Choose one of: {allowed_pairs_text()}."
    ),
    "duration_not_allowed": lambda d: (
        f"{d['resolution']} clips can't be {d['duration']} s long. Allowed: {allowed_pairs_text()}."
    ),
    "prompt_empty": lambda d: "The prompt is empty. Describe the clip you want, in at least 2 characters.",
    "prompt_control_characters": lambda d: "The prompt holds control characters. Remove them and send it again.",
    "prompt_too_short": lambda d: (
        f"The prompt is too short ({d['length']} character). Use at least {d['minimum']} characters."
    ),
    "prompt_too_long": lambda d: (
        f"The prompt is too long ({d['length']} characters). Shorten it to {d['maximum']} characters or fewer."
    ),
    "variations": lambda d: f"Variations must be between 1 and {d['cap']} in this server (you asked for {d['asked']}).",
    "no_price": lambda d: (
        f"No price is configured for {d['resolution']} at {d['duration']} s, so it can't be requested here. "
        "Choose another resolution or length."
    ),
    "too_many_frames": lambda d: "At most two frame images can be used: a first frame and a last frame.",
    # frame images (bot.core.images)
    "image_too_large": lambda d: (
        f"{file_name(d['filename'])} is {mib(d['size'])}; images can be at most {mib(d['cap'])}. "
        "Attach a smaller PNG, JPEG or WEBP."
    ),
    "image_empty": lambda d: f"{file_name(d['filename'])} is empty. Attach a PNG, JPEG or WEBP image.",
    "image_not_image": _not_image,
    "image_unreadable": lambda d: (
        f"{file_name(d['filename'])} looks like a {d['kind']} but could not be read (damaged or cut short). "
        "Save it again."
    ),
    "image_too_many_pixels": lambda d: (
        f"{file_name(d['filename'])} has too many pixels to open safely. Use a smaller image."
    ),
    "image_too_small": lambda d: (
        f"{file_name(d['filename'])} is {_size(d)}; each side must be at least {d['min_side']} pixels. "
        "Use a larger image."
    ),
    "image_too_big": lambda d: (
        f"{file_name(d['filename'])} is {_size(d)}; each side must be at most {d['max_side']} pixels. Scale it down."
    ),
    "image_aspect": _aspect,
    # where and whether jobs run (bot.core.service)
    "shutting_down": lambda d: "The bot is shutting down and takes no new jobs right now. Try again in a minute.",
    "guild_paused": lambda d: (
        "Video generation is paused in this server by its moderators. Jobs already running still finish; "
        "try again once it is resumed."
    ),
    "channel_not_allowed": lambda d: (
        "/video can't be used in this channel. Try one of these: "
        + ", ".join(f"<#{c}>" for c in sorted(d["allowed_channel_ids"])[:5])
        + "."
    ),
    "submit_pending": lambda d: (
        "Runware is not answering right now. Your job is saved and will go ahead as soon as it answers."
    ),
    "job_gone": lambda d: "That job no longer exists. Start a new one with /video.",
    "cancel_not_yours": lambda d: "Only the member who asked for this job, or a moderator, can cancel it.",
    "already_finished": lambda d: f"This job is already {STATE_WORDS[d['state']]}; there is nothing to cancel.",
    "finished_just_now": lambda d: "This job finished just now; there is nothing to cancel.",
    # the blocklist (bot.core.blocklist): the phrase is moderator-typed text, shown inert
    "blocked_phrase": lambda d: blocked_prompt_text(d["phrase"]),
    "blocklist_full": lambda d: (
        f"This server already blocks {d['cap']} phrases, the most allowed. Remove one with /videoadmin blocklist "
        "remove first."
    ),
    "phrase_length": lambda d: f"A blocked phrase must be {d['min']} to {d['max']} characters. Try a shorter one.",
}


def over_limit_text(err: OverLimit) -> str:
    label = limit_label(err.scope, err.period, is_default=err.is_default)
    if err.limit_amount == 0:
        return (
            f"{label[0].upper()}{label[1:]} is {format_usd(0)}, so no jobs can be charged to it. "
            "Only a moderator can change that."
        )
    return (
        f"This job would go over {label}: {format_usd(err.left_micros)} left of {format_usd(err.limit_amount)}, "
        f"and it needs {format_usd(err.needed_micros)}. The limit resets {format_dt(err.resets_at, 'R')}."
    )


def concurrency_text(running: int, cap: int) -> str:
    return (
        f"You already have {running} unfinished video job{'s' if running != 1 else ''}, and this "
        f"server allows {cap} at a time. Try again when one has finished."
    )


def error_text(err: UserFacingError) -> str:
    """The member's words for an expected error (the one renderer: tree, cogs and CLI)."""
    if isinstance(err, OverLimit):
        return over_limit_text(err)
    if isinstance(err, ConcurrencyLimited):
        return concurrency_text(err.running, err.cap)
    if isinstance(err, JobRejected):
        return failure_text(err.failure)
    words = _WORDS.get(err.code)
    if words is None:  # a code without words is a bug; say something true rather than nothing
        return "The bot could not do that. Please try again."
    return words(err.data)


# -- why a job failed ------------------------------------------------------------------------------------------------

_FAILURES: dict[FailureKind, Callable[[Mapping[str, Any]], str]] = {
    FailureKind.RUNWARE: lambda d: runware_text(RunwareError.from_data(d)),
    FailureKind.NO_CLIPS: lambda d: "Runware finished the job without any clip. You were not charged; try again.",
    FailureKind.FORGOTTEN: lambda d: "Runware no longer knows this job, so it can't be finished. You were not charged.",
    FailureKind.TIMED_OUT: lambda d: (
        f"The job did not finish within {span(float(d['max_wait']))}, so it was given up. "
        "You were not charged; try again with /video."
    ),
    FailureKind.UNAVAILABLE: lambda d: (
        "Runware is not answering right now. You were not charged; try again in a few minutes."
    ),
    FailureKind.BAD_TASK: lambda d: "The job could not be built correctly. You were not charged.",
    FailureKind.RESTARTED: lambda d: (
        "The bot restarted before your job reached Runware. You were not charged; please try again."
    ),
    FailureKind.STOPPED: lambda d: "This job was stopped before it reached Runware. You were not charged.",
    FailureKind.SETUP: lambda d: "The job could not be set up in Discord. You were not charged.",
    FailureKind.TEXT: lambda d: str(d.get("text", "")),
}


def failure_text(failure: Failure) -> str:
    """Why a job failed or expired, in the member's words."""
    return _FAILURES[failure.kind](failure.data)


# -- Runware's errors ------------------------------------------------------------------------------------------------

#: wire parameter -> what the member chose
_FRIENDLY = {
    "positivePrompt": "the prompt",
    "inputs.frameImages": "the frame images",
    "image": "the image",
    "width": "the resolution",
    "height": "the resolution",
    "duration": "the duration",
    "numberResults": "the number of variations",
    "providerSettings.minimax.promptOptimizer": "the prompt optimizer setting",
}

_RUNWARE_KINDS: dict[ErrorKind, str] = {
    ErrorKind.INSUFFICIENT_CREDITS: (
        "The bot's Runware account is out of credits; whoever runs the bot has to top it up, so let a "
        "moderator know. You were not charged."
    ),
    ErrorKind.AUTHENTICATION: (
        "The bot could not sign in to Runware (its API key was refused); whoever runs the bot has to fix "
        "the key, so let a moderator know. You were not charged."
    ),
    ErrorKind.CONTENT_SAFETY: (
        "Runware's content checks refused this request or its result. Change the prompt or images and try again."
    ),
    ErrorKind.TIMEOUT: "The video provider did not finish this clip in time and ended it. Try again with /video.",
    ErrorKind.RATE_LIMITED: "Runware is busy right now. Try again in a minute.",
    ErrorKind.SERVER_ERROR: "Runware is having trouble right now. Try again in a few minutes.",
    ErrorKind.NOT_FOUND: "Runware no longer knows this job (it failed or expired). Try again with /video.",
    ErrorKind.CONFLICT: "Runware already has this job; the bot will keep following it.",
}


def _words(values: Sequence[Any]) -> str:
    shown = [str(v) for v in values[:12]]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def runware_text(err: RunwareError) -> str:
    """One plain sentence or two for the member: what happened and what to do. No keys, no raw bodies."""
    if isinstance(err, RunwareUnavailable):
        return "Runware did not answer in time. Try again in a few minutes."
    if err.refused_last_frame:
        return "This model refused the last frame image; try again without last_frame."
    if err.kind is ErrorKind.INVALID_REQUEST:
        return _invalid_text(err)
    if err.kind is ErrorKind.PROVIDER_FAILURE:
        if err.parameter and "frameimages" in err.parameter.lower():
            return "Runware could not use one of the frame images. Try a different image, or none."
        return "The video provider failed to make this clip. Try again with /video."
    return _RUNWARE_KINDS.get(err.kind, "Runware could not make this clip for an unexpected reason. Try again later.")


def _invalid_text(err: RunwareError) -> str:
    # Runware's own message is logged, never shown: it names wire fields a member can do nothing about.
    if err.code.lower() in ("unsupportedparameter", "unknownparameter"):
        return (
            "The bot sent Runware a setting it does not accept. That is a bot bug, not a problem with your "
            "request: it has been logged, and you were not charged."
        )
    if not err.parameter:
        return "Runware refused this request as invalid. Check the prompt, images and options, and try again."
    rule = ""
    if err.allowed_values:
        rule = f"allowed: {_words(err.allowed_values)}"
    elif err.min_value is not None and err.max_value is not None:
        rule = f"it must be between {err.min_value:g} and {err.max_value:g}"
    elif err.min_value is not None:
        rule = f"it must be at least {err.min_value:g}"
    elif err.max_value is not None:
        rule = f"it must be at most {err.max_value:g}"
    friendly = _FRIENDLY.get(err.parameter)
    if friendly is None:  # not something the member chose: the bot's configuration
        return (
            f"Runware refused the bot's `{err.parameter}` setting{f' ({rule})' if rule else ''}. That is the "
            "bot's configuration, not your request: let a moderator know. You were not charged."
        )
    return f"Runware refused {friendly}{f' ({rule})' if rule else ''}. Change it and try again."


def runware_item_text(item: RunwareErrorItem) -> str:
    """The words for one `errors` entry of a Runware answer (a RunwareErrorItem)."""
    return runware_text(RunwareError.from_item(item))
