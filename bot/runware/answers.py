"""One HTTP answer from Runware, and the one path from an answer to an exception (RUNWARE.md §1.2, §7)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from pydantic import ValidationError

from bot.runware.errors import TRANSIENT_KINDS, ErrorKind, RunwareError, RunwareUnavailable, classify
from bot.runware.models import ResponseEnvelope, RunwareErrorItem

#: A Retry-After longer than this is not waited out in-line: the call fails now and is tried again later.
MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer: its status, the parsed envelope, and the wait Retry-After asked for (seconds), if any."""

    status: int
    env: ResponseEnvelope
    retry_after: float | None = None


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def answer_error(
    status: int | None,
    item: RunwareErrorItem | None = None,
    *,
    code: str = "",
    message: str = "",
    parameter: str | None = None,
    retry_after: float | None = None,
    transient: bool | None = None,
) -> RunwareError:
    """The one path from an answer to an exception: an `errors` entry (classified by its code first) or, with no
    usable body, the HTTP status; transient kinds become RunwareUnavailable (with Retry-After when given)."""
    if item is not None:
        error = RunwareError.from_item(item, status)
    else:
        kind = classify(None, status)
        error = RunwareError(kind, code or f"http{status}", message, parameter=parameter, http_status=status)
    if error.transient if transient is None else transient:
        kind = error.kind if error.kind in TRANSIENT_KINDS else ErrorKind.SERVER_ERROR
        return RunwareUnavailable(
            error.message, kind=kind, code=error.code, http_status=status, retry_after=retry_after
        )
    return error


def transient_status(status: int) -> bool:
    return status in (408, 429) or status >= 500


def envelope(raw: bytes) -> ResponseEnvelope | None:
    if not raw.strip():
        return None
    try:
        return ResponseEnvelope.model_validate(json.loads(raw))
    except (ValueError, RecursionError, ValidationError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
