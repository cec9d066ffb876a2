"""Errors and failures meant for the member, as DATA: a code and the facts behind it.

bot/ui renders every word (`bot.ui.texts.error_text`, `failure_text`); nothing here writes a sentence for a member.
Any other exception is a bug and is shown as a generic line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from bot.core.models import Micros, Period, Scope


class UserFacingError(Exception):
    """An expected refusal: `code` says which, `data` holds the facts the words need (see bot.ui.texts)."""

    def __init__(self, code: str, /, **data: Any) -> None:
        super().__init__(code, data)
        self.code = code
        self.data: dict[str, Any] = data

    @classmethod
    def said(cls, text: str) -> Self:
        """An error already worded by the Discord side (bot/ui or a cog); the core never uses this."""
        return cls("said", text=text)

    def __str__(self) -> str:
        facts = ", ".join(f"{k}={v!r}" for k, v in self.data.items())
        return f"{self.code}({facts})" if facts else self.code


class InputError(UserFacingError):
    """The member can fix this by changing what they typed or attached."""


class NotAllowed(UserFacingError):
    """Channel rules, permissions, or a moderator-only action."""


class ChannelNotAllowed(NotAllowed):
    """/video is restricted to other channels in this server."""

    def __init__(self, allowed_channel_ids: Sequence[int]) -> None:
        super().__init__("channel_not_allowed", allowed_channel_ids=tuple(allowed_channel_ids))
        self.allowed_channel_ids = tuple(allowed_channel_ids)


class Paused(UserFacingError):
    """New jobs are paused in this server (`guild_paused`) or the bot is stopping (`shutting_down`)."""


class ConcurrencyLimited(UserFacingError):
    """Too many unfinished jobs."""

    def __init__(self, *, running: int, cap: int) -> None:
        super().__init__("concurrency", running=running, cap=cap)
        self.running = running
        self.cap = cap


class OverLimit(UserFacingError):
    """A spend limit would be exceeded: which limit (scope, period, default or not), its amount and what is left."""

    def __init__(
        self,
        *,
        scope: Scope,
        period: Period,
        is_default: bool,
        limit_amount: Micros,
        left_micros: Micros,
        needed_micros: Micros,
        resets_at: datetime,
    ) -> None:
        super().__init__("over_limit", scope=scope, period=period, left_micros=left_micros)
        self.scope = scope
        self.period = period
        self.is_default = is_default
        self.limit_amount = limit_amount
        self.left_micros = left_micros
        self.needed_micros = needed_micros
        self.resets_at = resets_at


class NotFound(UserFacingError):
    """The job or result is gone."""


class SubmitPending(UserFacingError):
    """Runware did not answer the submit; the job is kept and goes ahead once it answers."""

    def __init__(self) -> None:
        super().__init__("submit_pending")


# -- why a job failed ------------------------------------------------------------------------------------------------


class FailureKind(StrEnum):
    RUNWARE = "runware"  # Runware refused or failed it: data = RunwareError.to_data()
    NO_CLIPS = "no_clips"  # Runware finished without any clip
    FORGOTTEN = "forgotten"  # Runware answered "not found" several times in a row
    TIMED_OUT = "timed_out"  # not finished within runware.max_wait: data = {"max_wait": seconds}
    UNAVAILABLE = "unavailable"  # Runware did not answer the submit and does not hold the task
    BAD_TASK = "bad_task"  # the stored task no longer validates (a bug)
    RESTARTED = "restarted"  # the bot restarted before the job reached Runware
    STOPPED = "stopped"  # stopped before it reached Runware
    SETUP = "setup"  # the Discord side could not set the job up
    TEXT = "text"  # a reason stored as words by an older version: data = {"text": ...}


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a job failed or expired, as data. Stored in the job's `error` column as JSON (`dump`/`load`)."""

    kind: FailureKind
    data: Mapping[str, Any] = field(default_factory=dict)

    def dump(self) -> str:
        return json.dumps({"failure": self.kind.value, "data": dict(self.data)}, sort_keys=True)

    @classmethod
    def load(cls, stored: str) -> Failure:
        """Read `dump`'s JSON back; anything else is a reason stored as words by an older version."""
        try:
            raw = json.loads(stored)
            data = raw["data"]
            if not isinstance(data, dict):
                raise TypeError("data must be an object")
            return cls(FailureKind(raw["failure"]), data)
        except (ValueError, TypeError, KeyError):
            return cls(FailureKind.TEXT, {"text": stored})

    def __str__(self) -> str:
        return self.dump()


class JobRejected(UserFacingError):
    """The job failed before it ran (Runware refused it, or set-up went wrong); the reservation was released."""

    def __init__(self, failure: Failure) -> None:
        super().__init__("job_rejected", failure=failure)
        self.failure = failure
