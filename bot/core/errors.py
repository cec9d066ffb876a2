"""Errors whose text is meant for the member. Anything else is a bug and is shown as a generic line."""

from __future__ import annotations

from datetime import datetime


class UserFacingError(Exception):
    """An error whose message is safe and useful to show to the member as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(UserFacingError):
    """The member can fix this by changing what they typed or attached."""


class NotAllowed(UserFacingError):
    """Channel rules, permissions, or a moderator-only action."""


class Paused(UserFacingError):
    """New jobs are paused in this server."""


class ConcurrencyLimited(UserFacingError):
    """Too many unfinished jobs."""


class OverLimit(UserFacingError):
    """A spend limit would be exceeded."""

    def __init__(self, message: str, *, limit_label: str, left_micros: int, resets_at: datetime) -> None:
        super().__init__(message)
        self.limit_label = limit_label
        self.left_micros = left_micros
        self.resets_at = resets_at


class NotFound(UserFacingError):
    """The job or result is gone."""
