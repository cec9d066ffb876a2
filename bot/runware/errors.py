"""Runware failures, classified once (RUNWARE.md §7) and phrased for members without leaking keys or bodies."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from bot.runware.models import RunwareErrorItem


class ErrorKind(StrEnum):
    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    RATE_LIMITED = "rate_limited"
    CONTENT_SAFETY = "content_safety"
    PROVIDER_FAILURE = "provider_failure"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    UNKNOWN = "unknown"


TRANSIENT_KINDS = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.SERVER_ERROR})

_SAFETY = {
    "contentpolicyviolation",
    "providercontentpolicyviolation",
    "nsfwcontentdetected",
    "sensitivecontentdetected",
    "unsafecontentdetected",
    "promptblocked",
    "imageblocked",
    "moderationfailed",
}
_AUTH = {"unauthorized", "forbidden", "permissiondenied", "tokenexpired"}
_NOT_FOUND = {"taskcancelled", "taskfailedornotfound"}
_SERVER = {
    "internalservererror",
    "serviceunavailable",
    "serverunavailable",
    "unknownerror",
    "errorretrievingaccountmanagement",
    "servererror",
}
_PROVIDER = {
    "inferenceerror",
    "processingfailed",
    "taskfailed",
    "downloadfailed",
    "uploadfailed",
    "noavailableserver",
    "modelunavailable",
    "modeldisabled",
    "modelnotready",
}
_VALIDATION_PREFIXES = ("invalid", "missing", "unsupported", "conflict", "duplicate", "value", "array", "max")
_VALIDATION = {"unknownparameter", "incompatibleparameters", "validationfailed"}


def _classify_code(code: str) -> ErrorKind | None:
    c = code.lower()
    if any(w in c for w in ("credits", "quota", "balance")) or c in ("quotaexceeded", "paymentrequired"):
        return ErrorKind.INSUFFICIENT_CREDITS
    if "ratelimit" in c:
        return ErrorKind.RATE_LIMITED
    if c in _SAFETY:
        return ErrorKind.CONTENT_SAFETY
    if "apikey" in c or c in _AUTH or (("account" in c or "organi" in c) and c.endswith(("suspended", "disabled"))):
        return ErrorKind.AUTHENTICATION
    if "timeout" in c:
        return ErrorKind.TIMEOUT
    if c in _NOT_FOUND or c.endswith(("notfound", "expired")):
        return ErrorKind.NOT_FOUND
    if c in _SERVER:
        return ErrorKind.SERVER_ERROR
    if c in _PROVIDER or c.startswith("provider"):
        return ErrorKind.PROVIDER_FAILURE
    if c == "conflicttaskuuid":
        return ErrorKind.CONFLICT
    if c.startswith(_VALIDATION_PREFIXES) or c in _VALIDATION:
        return ErrorKind.INVALID_REQUEST
    return None


def _classify_status(status: int) -> ErrorKind:
    if status == 402:
        return ErrorKind.INSUFFICIENT_CREDITS
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status in (401, 403):
        return ErrorKind.AUTHENTICATION
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status == 408 or status >= 500:
        return ErrorKind.SERVER_ERROR
    if status in (400, 409, 413, 422):
        return ErrorKind.INVALID_REQUEST
    return ErrorKind.UNKNOWN


def classify(code: str | None, http_status: int | None) -> ErrorKind:
    """Map a Runware error code (first) or HTTP status (fallback) to a kind, in the SDK's family order."""
    if code and code.lower() != "unknown":
        kind = _classify_code(code)
        if kind is not None:
            return kind
    if http_status is not None and not 200 <= http_status < 300:
        return _classify_status(http_status)
    return ErrorKind.UNKNOWN


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


def _words(values: Sequence[Any]) -> str:
    shown = [str(v) for v in values[:12]]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


class RunwareError(Exception):
    """A Runware failure with its classification; `user_message()` is the only text meant for members."""

    def __init__(
        self,
        kind: ErrorKind,
        code: str,
        message: str = "",
        *,
        parameter: str | None = None,
        allowed_values: Sequence[Any] | None = None,
        http_status: int | None = None,
        task_uuid: str | None = None,
        min_value: float | None = None,
        max_value: float | None = None,
    ) -> None:
        self.kind = kind
        self.code = code
        self.message = message[:500]
        self.parameter = parameter
        self.allowed_values = list(allowed_values) if allowed_values is not None else None
        self.http_status = http_status
        self.task_uuid = task_uuid
        self.min_value = min_value
        self.max_value = max_value
        where = f" ({parameter})" if parameter else ""
        status = f" [HTTP {http_status}]" if http_status else ""
        super().__init__(f"{kind}: {code}{where}: {self.message}{status}")

    @classmethod
    def from_item(cls, item: RunwareErrorItem, http_status: int | None = None) -> RunwareError:
        """Build from one entry of an `errors` array, classified by its code first."""
        return cls(
            classify(item.code, http_status),
            item.code,
            item.message,
            parameter=", ".join(item.parameters) or None,
            allowed_values=item.allowed_values,
            http_status=http_status,
            task_uuid=item.task_uuid,
            min_value=item.min,
            max_value=item.max,
        )

    @property
    def transient(self) -> bool:
        """Worth asking again (after backoff): rate limits and server errors. Everything else is final."""
        return self.kind in TRANSIENT_KINDS

    @property
    def refused_last_frame(self) -> bool:
        return (
            self.kind in (ErrorKind.INVALID_REQUEST, ErrorKind.PROVIDER_FAILURE)
            and self.parameter is not None
            and "frameimages" in self.parameter.lower()
            and "last" in self.message.lower()
        )

    def user_message(self) -> str:
        """One plain sentence or two for the member: what happened and what to do. No keys, no raw bodies."""
        if self.refused_last_frame:
            return "This model refused the last frame image; try again without last_frame."
        kind = self.kind
        if kind is ErrorKind.INSUFFICIENT_CREDITS:
            return (
                "The bot's Runware account is out of credits; whoever runs the bot has to top it up, so let a "
                "moderator know. You were not charged."
            )
        if kind is ErrorKind.AUTHENTICATION:
            return (
                "The bot could not sign in to Runware (its API key was refused); whoever runs the bot has to fix "
                "the key, so let a moderator know. You were not charged."
            )
        if kind is ErrorKind.CONTENT_SAFETY:
            return (
                "Runware's content checks refused this request or its result. "
                "Change the prompt or images and try again."
            )
        if kind is ErrorKind.INVALID_REQUEST:
            return self._invalid_message()
        if kind is ErrorKind.TIMEOUT:
            return "The video provider did not finish this clip in time and ended it. Try again with /video."
        if kind is ErrorKind.PROVIDER_FAILURE:
            if self.parameter and "frameimages" in self.parameter.lower():
                return "Runware could not use one of the frame images. Try a different image, or none."
            return "The video provider failed to make this clip. Try again with /video."
        if kind is ErrorKind.RATE_LIMITED:
            return "Runware is busy right now. Try again in a minute."
        if kind is ErrorKind.SERVER_ERROR:
            return "Runware is having trouble right now. Try again in a few minutes."
        if kind is ErrorKind.NOT_FOUND:
            return "Runware no longer knows this job (it failed or expired). Try again with /video."
        if kind is ErrorKind.CONFLICT:
            return "Runware already has this job; the bot will keep following it."
        return "Runware could not make this clip for an unexpected reason. Try again later."

    def _invalid_message(self) -> str:
        # Runware's own message is logged, never shown: it names wire fields a member can do nothing about.
        if self.code.lower() in ("unsupportedparameter", "unknownparameter"):
            return (
                "The bot sent Runware a setting it does not accept. That is a bot bug, not a problem with your "
                "request: it has been logged, and you were not charged."
            )
        if not self.parameter:
            return "Runware refused this request as invalid. Check the prompt, images and options, and try again."
        rule = ""
        if self.allowed_values:
            rule = f"allowed: {_words(self.allowed_values)}"
        elif self.min_value is not None and self.max_value is not None:
            rule = f"it must be between {self.min_value:g} and {self.max_value:g}"
        elif self.min_value is not None:
            rule = f"it must be at least {self.min_value:g}"
        elif self.max_value is not None:
            rule = f"it must be at most {self.max_value:g}"
        friendly = _FRIENDLY.get(self.parameter)
        if friendly is None:  # not something the member chose: the bot's configuration
            return (
                f"Runware refused the bot's `{self.parameter}` setting{f' ({rule})' if rule else ''}. That is the "
                "bot's configuration, not your request: let a moderator know. You were not charged."
            )
        return f"Runware refused {friendly}{f' ({rule})' if rule else ''}. Change it and try again."


class RunwareUnavailable(RunwareError):
    """No clear answer: timeout, reset, no/truncated JSON, or 408/429/5xx without per-task errors. Transient."""

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind = ErrorKind.SERVER_ERROR,
        code: str = "unavailable",
        http_status: int | None = None,
        task_uuid: str | None = None,
        maybe_accepted: bool = True,
    ) -> None:
        super().__init__(kind, code, message, http_status=http_status, task_uuid=task_uuid)
        #: From `submit`: False only when getResponse confirmed Runware does not hold the task. When True, the
        #: task may be running: keep the job and look it up later instead of failing it.
        self.maybe_accepted = maybe_accepted

    @property
    def transient(self) -> bool:
        return True

    def user_message(self) -> str:
        return "Runware did not answer in time. Try again in a few minutes."


def user_message_for(error: RunwareError | RunwareErrorItem) -> str:
    """The member-facing sentence for a raised error or for one `errors` entry (e.g. a failed generation)."""
    if isinstance(error, RunwareErrorItem):
        error = RunwareError.from_item(error)
    return error.user_message()
