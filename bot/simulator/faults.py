"""The simulator's state and fault switches, and the API's error shape built from pydantic ValidationErrors."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from bot.runware.models import WIRE_RULES, VideoInferenceTask

DOCUMENTATION = "https://runware.ai/docs/platform/errors"

#: Codes for parameters whose generic "invalid<Name>" would not match what Runware sends.
_PARAMETER_CODES = {"duration": "unsupportedDuration", "safety.mode": "invalidSafetyMode"}


@dataclass(slots=True)
class RecordedRequest:
    path: str
    method: str
    tasks: list[dict[str, Any]]
    status: int = 0
    at: float = 0.0


@dataclass(slots=True)
class WebhookAttempt:
    url: str
    body: dict[str, Any]
    status: int | None  # None: connection failed
    at: float


@dataclass(slots=True)
class UploadAttempt:
    url: str
    size: int
    status: int | None


@dataclass(slots=True)
class FailSpec:
    code: str
    message: str
    generations: int | None  # how many generations fail; None = all


@dataclass(slots=True)
class RejectSpec:
    code: str
    message: str
    http_status: int


@dataclass(slots=True)
class SimGeneration:
    index: int
    video_uuid: str
    seed: int
    status: str = "processing"  # processing | success | error
    error_code: str | None = None
    error_message: str | None = None


@dataclass(slots=True)
class SimTask:
    """One accepted videoInference task and its generations."""

    task: VideoInferenceTask
    submitted_at: float
    generations: list[SimGeneration]
    fail: FailSpec | None = None
    finished_at: float | None = None

    @property
    def task_uuid(self) -> str:
        return self.task.task_uuid

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


@dataclass(slots=True)
class PostFault:
    """A counted fault for one POST, optionally only for POSTs carrying a given taskType."""

    value: Any
    task_type: str | None = None


def take_fault(queue: deque[PostFault], task_types: set[str]) -> PostFault | None:
    """Remove and return the first queued fault that applies to a POST with these task types."""
    for fault in queue:
        if fault.task_type is None or fault.task_type in task_types:
            queue.remove(fault)
            return fault
    return None


@dataclass
class Faults:
    """Fault switches. Counted faults apply to the next N matching requests, then switch themselves off."""

    accept_last_frame: bool = True
    latency: float = 0.0  # seconds added to every API response
    duplicate_webhooks: int = 1  # send each webhook this many times
    drop_webhooks: bool = False
    webhook_delay: float = 0.0  # seconds before the first send of each webhook (late webhooks)
    reverse_webhooks: bool = False  # send a task's items last-first (out of order)
    oversized_clip_bytes: int = 0  # padding served after the clip, so downloads exceed a size cap
    balance_as_object: bool = False  # accountManagement balance as {amount, currency} instead of a number
    inline_generation_errors: bool = False  # failed generations as data items with error:{code,message}
    costs_by_task: dict[str, Any] = field(default_factory=dict)  # task -> `cost` reported (-0.28, nan, inf, 1e30 ...)
    clip_urls: dict[str, str] = field(default_factory=dict)  # task -> `videoURL` reported instead of the simulator's
    slow_clips: dict[str, float] = field(default_factory=dict)  # task -> seconds its clip takes to serve (trickled)
    redirect_clips_to: str | None = None  # every clip GET answers 302 to this URL
    fail_tasks: deque[FailSpec] = field(default_factory=deque)
    reject_submits: deque[RejectSpec] = field(default_factory=deque)
    http_errors: deque[PostFault] = field(default_factory=deque)
    hangs: deque[PostFault] = field(default_factory=deque)
    accept_then_hangs: deque[PostFault] = field(default_factory=deque)
    drops: deque[PostFault] = field(default_factory=deque)

    def fail_next_tasks(
        self, code: str, n: int = 1, message: str | None = None, *, generations: int | None = None
    ) -> None:
        """Accept the next N videoInference tasks, then fail their generations (all, or the first few)."""
        text = message or f"The generation failed ({code})."
        self.fail_tasks.extend(FailSpec(code, text, generations) for _ in range(n))

    def reject_next_submits(self, code: str, n: int = 1, http_status: int = 400, message: str | None = None) -> None:
        """Refuse the next N videoInference submits with this code (e.g. insufficientCredits, 402)."""
        text = message or f"The task was refused ({code})."
        self.reject_submits.extend(RejectSpec(code, text, http_status) for _ in range(n))

    def http_error_next(self, status: int = 503, n: int = 1, *, task_type: str | None = None) -> None:
        """Answer the next N POSTs (of `task_type`, if given) with this status and no JSON, without handling them."""
        self.http_errors.extend(PostFault(status, task_type) for _ in range(n))

    def hang_next(self, n: int = 1, seconds: float = 30.0, *, task_type: str | None = None) -> None:
        """Stall the next N POSTs before handling them (the client should time out first)."""
        self.hangs.extend(PostFault(seconds, task_type) for _ in range(n))

    def accept_then_hang_next(self, n: int = 1, seconds: float = 30.0, *, task_type: str | None = None) -> None:
        """Handle the next N POSTs (tasks are accepted), then stall the answer: the ambiguous submit."""
        self.accept_then_hangs.extend(PostFault(seconds, task_type) for _ in range(n))

    def drop_connection_next(self, n: int = 1, *, accept: bool = False, task_type: str | None = None) -> None:
        """Close the connection on the next N POSTs without an answer; with accept=True after handling them."""
        self.drops.extend(PostFault(accept, task_type) for _ in range(n))

    def reset(self) -> None:
        for queue in (
            self.fail_tasks,
            self.reject_submits,
            self.http_errors,
            self.hangs,
            self.accept_then_hangs,
            self.drops,
        ):
            queue.clear()


def api_error(
    code: str,
    message: str,
    *,
    parameter: str | None = None,
    task_type: str | None = None,
    task_uuid: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    """An error object in Runware's shape (RUNWARE.md §1.1)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if parameter:
        error["parameter"] = parameter
    if task_type:
        error["taskType"] = task_type
    if isinstance(task_uuid, str):
        error["taskUUID"] = task_uuid
    error["documentation"] = DOCUMENTATION
    error.update({key: value for key, value in extra.items() if value is not None})
    return error


def parameter_of(loc: tuple[int | str, ...]) -> str:
    """('inputs','frameImages',0,'object','frame') → 'inputs.frameImages': the documented dotted path."""
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            break
        parts.append(part)
    return ".".join(parts)


def validation_error(exc: ValidationError, raw: dict[str, Any], task_type: str) -> dict[str, Any]:
    """The first pydantic error of a task as Runware reports it: code, parameter, limits, message."""
    first = exc.errors(include_url=False)[0]
    ctx = first.get("ctx") or {}
    kind = first["type"]
    parameter = str(ctx.get("parameter") or parameter_of(first["loc"]) or "taskType")
    name = parameter.rsplit(".", 1)[-1]
    if kind == "extra_forbidden":
        code = "unsupportedParameter"
        message = f"Unsupported parameter '{parameter}' for this model."
    elif kind == "missing":
        code = "missing" + name[:1].upper() + name[1:]
        message = f"Missing required parameter '{parameter}'."
    else:
        custom = "parameter" in ctx
        code = kind if custom else _PARAMETER_CODES.get(parameter, "invalid" + name[:1].upper() + name[1:])
        message = f"Invalid value for '{parameter}': {first['msg']}"
    rules = WIRE_RULES.get(parameter, {}) if kind != "extra_forbidden" else {}
    allowed = ctx.get("allowedValues", rules.get("allowedValues"))
    return api_error(
        code,
        message,
        parameter=parameter,
        task_type=task_type,
        task_uuid=raw.get("taskUUID"),
        allowedValues=allowed,
        min=rules.get("min") if "allowedValues" not in ctx else None,
        max=rules.get("max") if "allowedValues" not in ctx else None,
    )
