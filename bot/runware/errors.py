"""Runware failures, classified once (RUNWARE.md §7), as data; bot/ui phrases them without leaking keys or bodies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


class RunwareError(Exception):
    """A Runware failure with its classification; bot/ui words it for members (`to_data` carries it)."""

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

    def to_data(self) -> dict[str, Any]:
        """The facts of this error as plain JSON-able data (stored with a failed job; bot/ui words it)."""
        data: dict[str, Any] = {"kind": self.kind.value, "code": self.code, "message": self.message}
        extra = {
            "parameter": self.parameter,
            "allowed_values": self.allowed_values,
            "min_value": self.min_value,
            "max_value": self.max_value,
        }
        data.update({k: v for k, v in extra.items() if v is not None})
        if isinstance(self, RunwareUnavailable):
            data["unavailable"] = True
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> RunwareError:
        """Rebuild an error from `to_data` (an unknown kind reads as UNKNOWN)."""
        try:
            kind = ErrorKind(str(data.get("kind")))
        except ValueError:
            kind = ErrorKind.UNKNOWN
        if data.get("unavailable"):
            return RunwareUnavailable(
                str(data.get("message", "")), kind=kind, code=str(data.get("code", "unavailable"))
            )
        return cls(
            kind,
            str(data.get("code", "")),
            str(data.get("message", "")),
            parameter=data.get("parameter"),
            allowed_values=data.get("allowed_values"),
            min_value=data.get("min_value"),
            max_value=data.get("max_value"),
        )


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
        retry_after: float | None = None,
    ) -> None:
        super().__init__(kind, code, message, http_status=http_status, task_uuid=task_uuid)
        #: Seconds the answer's Retry-After asked the client to wait before asking again (None: not given).
        self.retry_after = retry_after
        #: From `submit`: False only when getResponse confirmed Runware does not hold the task. When True, the
        #: task may be running: keep the job and look it up later instead of failing it.
        self.maybe_accepted = maybe_accepted

    @property
    def transient(self) -> bool:
        return True
