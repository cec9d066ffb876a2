"""Runware response models: acknowledgements, video results (getResponse and webhooks), errors, the envelope.

Lenient about shape (unknown keys kept, Runware adds fields) and strict about values that reach money, the database
or Discord: a cost is a finite number from 0 to MAX_RESULT_COST_USD, progress 0-100, a seed fits 64 bits, a video URL
holds no control characters. An item that breaks these is refused (ValidationError), and the
callers log and skip it, so one bad item never stops the others.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.runware.wire import WireResponse

log = logging.getLogger(__name__)

#: Most USD one result may cost: a clip costs well under $1 (RUNWARE.md §6); anything above is not a real price.
MAX_RESULT_COST_USD = 100.0
_MAX_SEED = 2**63 - 1
_MAX_TEXT = 2048


def _clean(value: str, limit: int) -> str:
    """`value` without control characters, cut to `limit` characters."""
    return "".join(c for c in value[: limit * 2] if ord(c) >= 32 and not 0x7F <= ord(c) < 0xA0)[:limit]


def _printable(value: str, what: str) -> str:
    if len(value) > _MAX_TEXT or any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise ValueError(f"{what} holds control characters or is too long")
    return value


class TaskAck(WireResponse):
    task_type: str
    task_uuid: str


class InlineError(WireResponse):
    code: str = "unknown"
    message: str = ""


class VideoResultItem(WireResponse):
    """One generation's state from getResponse or a webhook. `status` is inferred when absent (seed responses)."""

    task_type: str = "videoInference"
    task_uuid: str
    status: Literal["processing", "success", "error"]
    progress: int | None = Field(None, ge=0, le=100)  # only while processing; fractions are rounded
    video_uuid: str | None = Field(None, max_length=200)
    video_url: str | None = None
    seed: int | None = Field(None, ge=-_MAX_SEED, le=_MAX_SEED)
    cost: float | None = Field(None, ge=0, le=MAX_RESULT_COST_USD, allow_inf_nan=False)
    nsfw_content: bool | None = Field(None, alias="NSFWContent")
    error: InlineError | None = None

    @field_validator("progress", mode="before")
    @classmethod
    def _progress(cls, value: Any) -> Any:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError("progress must be a finite number")
            return round(value)
        return value

    @field_validator("task_uuid", "video_uuid")
    @classmethod
    def _ids(cls, value: str | None) -> str | None:
        return None if value is None else _printable(value, "an id")

    @field_validator("video_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        # Opaque here (RUNWARE.md §4); whether it may be fetched or shown is the delivery's allow-list (clips.py).
        return None if value is None else _printable(value, "videoURL")

    @model_validator(mode="before")
    @classmethod
    def _status(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            data = dict(data)
            status = data.get("status")
            if status == "pending":
                data["status"] = "processing"
            elif status is None:
                if data.get("error"):
                    data["status"] = "error"
                elif data.get("videoURL") or data.get("video_url") or data.get("videoUUID"):
                    data["status"] = "success"
                else:
                    data["status"] = "processing"
        return data


class ImageUploadResult(WireResponse):
    task_type: str = "imageUpload"
    task_uuid: str | None = None
    image_uuid: str
    image_url: str | None = None


class Balance(WireResponse):
    amount: float
    currency: str = "USD"
    free_balance: float | None = None


class AccountDetails(WireResponse):
    task_type: str = "accountManagement"
    task_uuid: str | None = None
    organization_uuid: str | None = None
    organization_name: str | None = None
    balance: float | Balance | None = None

    @property
    def balance_amount(self) -> float | None:
        return self.balance.amount if isinstance(self.balance, Balance) else self.balance

    @property
    def currency(self) -> str:
        return self.balance.currency if isinstance(self.balance, Balance) else "USD"


class RunwareErrorItem(WireResponse):
    """One entry of `errors`: every field optional, since codes and shapes vary by model and provider."""

    code: str = "unknown"
    message: str = ""
    parameter: str | list[str] | None = None
    task_type: str | None = None
    task_uuid: str | None = None
    documentation: str | None = None
    allowed_values: list[Any] | None = None
    min: float | None = None
    max: float | None = None
    status: str | None = None
    response_content: Any = None

    @field_validator("code", mode="before")
    @classmethod
    def _code(cls, value: Any) -> Any:
        return "unknown" if value in (None, "") else value

    @field_validator("message", mode="before")
    @classmethod
    def _message(cls, value: Any) -> Any:
        return "" if value is None else value

    # Parts of an error reach a member's screen (the parameter, its allowed values and limits): cleaned, not refused,
    # so an odd error still counts as the error it is.
    @field_validator("code", "message", "task_type", "task_uuid", "documentation", "status")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return None if value is None else _clean(value, 500)

    @field_validator("parameter")
    @classmethod
    def _parameter(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list):
            return [_clean(part, 100) for part in value[:10]]
        return None if value is None else _clean(value, 100)

    @field_validator("allowed_values")
    @classmethod
    def _allowed(cls, values: list[Any] | None) -> list[Any] | None:
        if values is None:
            return None
        kept = [v for v in values[:20] if isinstance(v, int | str) or (isinstance(v, float) and math.isfinite(v))]
        return [_clean(v, 50) if isinstance(v, str) else v for v in kept]

    @field_validator("min", "max")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        return value if value is None or math.isfinite(value) else None

    @property
    def parameters(self) -> list[str]:
        if self.parameter is None:
            return []
        return [self.parameter] if isinstance(self.parameter, str) else list(self.parameter)

    @property
    def parameter_path(self) -> str | None:
        """The parameter(s) at fault as one dotted string, e.g. `inputs.frameImages`."""
        return ", ".join(self.parameters) or None


class ResponseEnvelope(BaseModel):
    """`{"data":[...], "errors":[...]}`; both keys optional and possibly together. Items stay raw for typing later."""

    model_config = ConfigDict(extra="allow")

    data: list[dict[str, Any]] = Field(default_factory=list)
    errors: list[RunwareErrorItem] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _shapes(cls, body: Any) -> Any:
        if isinstance(body, list):  # a bare list of error objects (older SDK shape)
            return {"errors": body}
        if not isinstance(body, Mapping):
            return body
        body = dict(body)
        if isinstance(body.get("data"), Mapping):  # one old doc example: data as an object
            body["data"] = [body["data"]]
        if body.get("data") is None:
            body.pop("data", None)
        if isinstance(body.get("errors"), Mapping):
            body["errors"] = [body["errors"]]
        if body.get("errors") is None:
            body.pop("errors", None)
        legacy = body.pop("error", None)
        if isinstance(legacy, Mapping):  # {"error":{...},"taskUUID":...,"taskType":...}
            item = {"taskUUID": body.get("taskUUID"), "taskType": body.get("taskType"), **legacy}
            body["errors"] = [*body.get("errors", []), item]
        elif legacy is True:  # the old WebSocket auth failure
            item = {"code": "invalidApiKey", "message": body.get("errorMessage") or "Invalid api key"}
            body["errors"] = [*body.get("errors", []), item]
        return body

    @classmethod
    def parse(cls, body: Any) -> ResponseEnvelope:
        """`model_validate` of a decoded JSON body, with a shortcut for the usual `{"data": [...], "errors": [...]}`
        (only the errors are models; the data items stay as they came, as model_validate keeps them)."""
        if type(body) is dict and body.keys() <= {"data", "errors"}:
            data, errors = body.get("data", []), body.get("errors", [])
            if (
                type(data) is list
                and type(errors) is list
                and all(type(item) is dict for item in data)
                and all(type(error) is dict for error in errors)
            ):
                return cls.model_construct(data=data, errors=[RunwareErrorItem.model_validate(e) for e in errors])
        return cls.model_validate(body)

    @classmethod
    def parse_any(cls, body: Any) -> ResponseEnvelope:
        """Parse any shape a webhook may carry: an envelope, or a bare result item or error object."""
        if isinstance(body, Mapping) and not {"data", "errors", "error"} & body.keys():
            is_error = "code" in body and not body.get("videoUUID") and not body.get("videoURL")
            body = {"errors": [body]} if is_error else {"data": [body]}
        return cls.model_validate(body)

    @property
    def items(self) -> list[VideoResultItem]:
        """The `data` entries that are valid video results; each one that is not is logged and skipped."""
        return [item for item in map(parse_result_item, self.data) if item is not None]

    def items_for(self, task_uuid: str) -> list[dict[str, Any]]:
        return [item for item in self.data if item.get("taskUUID") == task_uuid]

    def errors_for(self, task_uuid: str) -> list[RunwareErrorItem]:
        return [err for err in self.errors if err.task_uuid == task_uuid]


_PLAIN_ITEM_KEYS = frozenset({"taskType", "taskUUID", "status", "progress"})
_PLAIN_STATUSES = ("processing", "pending")


def parse_result_item(raw: Mapping[str, Any]) -> VideoResultItem | None:
    """One result item, or None (logged) when it breaks a rule: a bad item is skipped, never fatal."""
    try:
        return VideoResultItem.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "item"
        task = raw.get("taskUUID")
        task_text = repr(task[:64]) if isinstance(task, str) else "?"
        log.warning("task=%s: skipped a result item from Runware (%s: %s)", task_text, where, first["msg"])
        return None


@dataclass(slots=True)
class TaskStatus:
    """Everything one getResponse said about one task: its generations' outcomes, or that it is unknown.

    Generations still processing are only counted (with the furthest progress reported): a sweep reads thousands of
    them, and nothing else of theirs is used.
    """

    task_uuid: str
    successes: list[VideoResultItem] = field(default_factory=list)  # one per videoUUID
    errors: list[RunwareErrorItem] = field(default_factory=list)
    processing_count: int = 0
    progress: int | None = None  # the furthest progress (0-100) of the generations still processing, if reported
    not_found: bool = False

    @property
    def failed_count(self) -> int:
        return len(self.errors)

    def is_complete(self, expected_results: int) -> bool:
        """True once `expected_results` generations reached a final state (success or failure)."""
        return len(self.successes) + self.failed_count >= expected_results and self.processing_count == 0

    def take_plain(self, raw: Mapping[str, Any]) -> bool:
        """Count a plain "processing" item of this task (the usual answer while it runs: `taskType`, `taskUUID`,
        `status`, `progress`, nothing else) without building a model; False for any other item, which the caller
        parses with `parse_result_item`. The caller matched `taskUUID` to this task."""
        progress = raw.get("progress")
        if not (
            raw.keys() <= _PLAIN_ITEM_KEYS
            and raw.get("status", "processing") in _PLAIN_STATUSES
            and type(raw.get("taskType", "videoInference")) is str
            and (progress is None or (type(progress) is int and 0 <= progress <= 100))
        ):
            return False
        self.processing_count += 1
        if progress is not None and (self.progress is None or progress > self.progress):
            self.progress = progress
        return True

    def add(self, item: VideoResultItem) -> None:
        """Take one parsed item of this task: a success (a repeated videoUUID counts once), one still processing, or
        a failed generation."""
        if item.status == "error":
            inline = item.error
            self.errors.append(
                RunwareErrorItem(
                    code=inline.code if inline else "unknown",
                    message=inline.message if inline else "",
                    task_type=item.task_type,
                    task_uuid=self.task_uuid,
                    status="error",
                )
            )
        elif item.status == "processing":
            self.processing_count += 1
            if item.progress is not None and (self.progress is None or item.progress > self.progress):
                self.progress = item.progress
        elif item.video_uuid is None or all(s.video_uuid != item.video_uuid for s in self.successes):
            self.successes.append(item)
