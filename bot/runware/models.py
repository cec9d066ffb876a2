"""Runware wire models for MiniMax Hailuo 02 (`minimax:3@1`): camelCase on the wire, snake_case in Python.

Requests (here) forbid unknown keys and refuse every value the API refuses (RUNWARE.md §2), so an invalid task cannot
be built; the simulator validates with these same models. Responses (bot/runware/results.py, re-exported here) keep
unknown keys, since Runware adds fields, but every value that reaches money or Discord is checked at the edge.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot.runware.results import (
    MAX_RESULT_COST_USD,
    AccountDetails,
    Balance,
    ImageUploadResult,
    InlineError,
    ResponseEnvelope,
    RunwareErrorItem,
    TaskAck,
    TaskStatus,
    VideoResultItem,
)
from bot.runware.wire import WireRequest, WireResponse, wire_name

__all__ = [
    "MAX_RESULT_COST_USD",
    "AccountDetails",
    "Balance",
    "ImageUploadResult",
    "InlineError",
    "ResponseEnvelope",
    "RunwareErrorItem",
    "TaskAck",
    "TaskStatus",
    "VideoResultItem",
    "WireRequest",
    "WireResponse",
    "wire_name",
]

MODEL_ID = "minimax:3@1"
FPS = 25
OUTPUT_FORMATS = ("MP4", "WEBM", "MOV")
SAFETY_MODES = ("none", "fast", "full")
FRAME_POSITIONS: tuple[str | int, ...] = ("first", "last", 0, -1)
#: (width, height, duration) combinations the model accepts (RUNWARE.md §2.1).
ALLOWED_COMBOS: frozenset[tuple[int, int, int]] = frozenset({(1366, 768, 6), (1366, 768, 10), (1920, 1080, 6)})
ALLOWED_SIZES: tuple[tuple[int, int], ...] = ((1366, 768), (1920, 1080))
DURATIONS = (6, 10)
PROMPT_MIN, PROMPT_MAX = 2, 2000
QUALITY_MIN, QUALITY_MAX = 20, 99
RESULTS_MIN, RESULTS_MAX = 1, 20
TTL_MIN = 60

#: Limits per wire parameter, attached to validation errors as Runware does (`allowedValues`, `min`, `max`).
WIRE_RULES: dict[str, dict[str, Any]] = {
    "taskType": {"allowedValues": ["videoInference"]},
    "model": {"allowedValues": [MODEL_ID]},
    "positivePrompt": {"min": PROMPT_MIN, "max": PROMPT_MAX},
    "width": {"allowedValues": sorted({w for w, _ in ALLOWED_SIZES})},
    "height": {"allowedValues": sorted({h for _, h in ALLOWED_SIZES})},
    "duration": {"allowedValues": list(DURATIONS)},
    "fps": {"allowedValues": [FPS]},
    "outputType": {"allowedValues": ["URL"]},
    "outputFormat": {"allowedValues": list(OUTPUT_FORMATS)},
    "outputQuality": {"min": QUALITY_MIN, "max": QUALITY_MAX},
    "deliveryMethod": {"allowedValues": ["async"]},
    "ttl": {"min": TTL_MIN},
    "numberResults": {"min": RESULTS_MIN, "max": RESULTS_MAX},
    "safety.mode": {"allowedValues": list(SAFETY_MODES)},
    "inputs.frameImages": {"min": 1, "max": 2, "allowedValues": list(FRAME_POSITIONS)},
}

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_AIR_RE = re.compile(r"^[a-z0-9_-]+:\d+@\d+$")
_DATA_URI_RE = re.compile(r"^data:image/(png|jpe?g|webp|bmp|gif);base64,(.+)$", re.IGNORECASE | re.DOTALL)
_BASE64_RE = re.compile(r"^[A-Za-z0-9+/\r\n]+={0,2}$")
_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def new_task_uuid() -> str:
    return str(uuid.uuid4())


def is_uuid(value: str) -> bool:
    return bool(_UUID_RE.match(value))


def _check_uuid4(value: str) -> str:
    if not is_uuid(value) or uuid.UUID(value).version != 4:
        raise ValueError("must be a UUID v4 string, e.g. 5481c77d-0596-4375-918e-5e3fc20504f2")
    return value


def _check_url(value: str) -> str:
    if not value.startswith(("https://", "http://")) or len(value) > 2048 or any(c.isspace() for c in value):
        raise ValueError("must be an http(s) URL")
    return value


def image_ref_kind(value: str) -> Literal["uuid", "url", "data_uri", "base64"] | None:
    """Which of Runware's four image forms a string is, or None when it is none of them."""
    if is_uuid(value):
        return "uuid"
    if value.startswith(("https://", "http://")):
        return None if any(c.isspace() for c in value) else "url"
    if value.startswith("data:"):
        return "data_uri" if _DATA_URI_RE.match(value) else None
    if len(value) >= 8 and _BASE64_RE.match(value):
        return "base64"
    return None


def decode_image(value: str) -> bytes | None:
    """Decode a data URI or bare base64 image string; None if it is neither or does not decode."""
    match = _DATA_URI_RE.match(value)
    payload = match.group(2) if match else value
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        return None


def sniff_image(data: bytes) -> str | None:
    """PNG/JPEG/WEBP by magic bytes, as the API checks content rather than the declared type."""
    for magic, mime in _IMAGE_MAGIC:
        if data.startswith(magic):
            return mime
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _check_image_ref(value: str) -> str:
    if image_ref_kind(value) is None:
        raise ValueError("image must be a UUID, an http(s) URL, a data URI (data:image/png;base64,...) or base64")
    return value


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):  # True/False would otherwise match the literals 0 and -1's neighbours
        raise PydanticCustomError("literal_error", "Input should be 'first', 'last', 0 or -1")
    return value


TaskUUID = Annotated[str, AfterValidator(_check_uuid4)]
HttpUrl = Annotated[str, AfterValidator(_check_url)]
ImageRef = Annotated[str, AfterValidator(_check_image_ref)]
FramePosition = Annotated[Literal["first", "last", 0, -1], BeforeValidator(_no_bool)]


# ---------------------------------------------------------------------------------------------------- requests


class FrameImage(WireRequest):
    image: ImageRef
    frame: FramePosition | None = None


def _frame_item_tag(value: Any) -> str:
    return "bare" if isinstance(value, str) else "object"


FrameImageItem = Annotated[
    Annotated[ImageRef, Tag("bare")] | Annotated[FrameImage, Tag("object")], Discriminator(_frame_item_tag)
]


class VideoInputs(WireRequest):
    frame_images: list[FrameImageItem] = Field(min_length=1, max_length=2)

    @field_validator("frame_images")
    @classmethod
    def _distinct_positions(cls, items: list[str | FrameImage]) -> list[str | FrameImage]:
        if len(frame_positions(items)) != len(set(frame_positions(items))):
            raise PydanticCustomError(
                "invalidFrameImages",
                "inputs.frameImages: two images target the same frame; give one 'first' and one 'last'",
                {"parameter": "inputs.frameImages", "allowedValues": list(FRAME_POSITIONS)},
            )
        return items


def frame_positions(items: Sequence[str | FrameImage]) -> list[str]:
    """Each image's frame as 'first'/'last', resolving 0/-1 and automatic placement (RUNWARE.md §2.3)."""
    out: list[str] = []
    for index, item in enumerate(items):
        frame = item.frame if isinstance(item, FrameImage) else None
        if frame is None:
            out.append("first" if index == 0 else "last")
        else:
            out.append("first" if frame in ("first", 0) else "last")
    return out


class SafetySettings(WireRequest):
    check_content: bool | None = None
    mode: Literal["none", "fast", "full"] | None = None


class MinimaxSettings(WireRequest):
    prompt_optimizer: bool | None = None


class ProviderSettings(WireRequest):
    minimax: MinimaxSettings | None = None


class VideoInferenceTask(WireRequest):
    """One `videoInference` task for `minimax:3@1`, every option of the seed page, validated as the API does."""

    task_type: Literal["videoInference"] = "videoInference"
    task_uuid: TaskUUID
    model: Literal["minimax:3@1"]
    positive_prompt: str = Field(min_length=PROMPT_MIN, max_length=PROMPT_MAX)
    width: Literal[1366, 1920] | None = None
    height: Literal[768, 1080] | None = None
    duration: float | None = None
    fps: Literal[25] | None = None
    output_type: Literal["URL"] | None = None
    output_format: Literal["MP4", "WEBM", "MOV"] | None = None
    output_quality: int | None = Field(None, ge=QUALITY_MIN, le=QUALITY_MAX)
    webhook_url: HttpUrl | None = None
    delivery_method: Literal["async"] | None = None
    upload_endpoint: HttpUrl | None = None
    safety: SafetySettings | None = None
    ttl: int | None = Field(None, ge=TTL_MIN)
    include_cost: bool | None = None
    number_results: int | None = Field(None, ge=RESULTS_MIN, le=RESULTS_MAX)
    inputs: VideoInputs | None = None
    provider_settings: ProviderSettings | None = None

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: float | None) -> float | None:
        if value is not None and value not in DURATIONS:
            raise PydanticCustomError(
                "unsupportedDuration",
                "duration {value} is not supported; allowed values: 6, 10",
                {"parameter": "duration", "allowedValues": list(DURATIONS), "value": value},
            )
        return value

    @field_serializer("duration")
    def _duration_out(self, value: float | None) -> float | int | None:
        return int(value) if isinstance(value, float) and value.is_integer() else value

    @model_validator(mode="after")
    def _combination(self) -> VideoInferenceTask:
        if (self.width is None) != (self.height is None):
            missing = "height" if self.height is None else "width"
            raise PydanticCustomError(
                "missing" + missing.capitalize(),
                "width and height must be given together; {missing} is missing",
                {"parameter": missing, "missing": missing},
            )
        if self.width is not None and self.height is not None:
            if (self.width, self.height) not in ALLOWED_SIZES:
                raise PydanticCustomError(
                    "invalidHeight",
                    "height {height} does not go with width {width}; allowed sizes: 1366x768, 1920x1080",
                    {"parameter": "height", "width": self.width, "height": self.height},
                )
            duration = 6 if self.duration is None else int(self.duration)
            if (self.width, self.height, duration) not in ALLOWED_COMBOS:
                allowed = sorted(d for w, h, d in ALLOWED_COMBOS if (w, h) == (self.width, self.height))
                raise PydanticCustomError(
                    "unsupportedDuration",
                    "duration {duration} is not supported at {width}x{height}; allowed values: {allowed}",
                    {
                        "parameter": "duration",
                        "allowedValues": allowed,
                        "allowed": ", ".join(map(str, allowed)),
                        "duration": duration,
                        "width": self.width,
                        "height": self.height,
                    },
                )
        return self

    @property
    def results(self) -> int:
        return self.number_results or 1

    @property
    def size_key(self) -> tuple[int, int, int]:
        """(width, height, duration) with the API's defaults filled in (768p, 6 s)."""
        width, height = (self.width, self.height) if self.width and self.height else ALLOWED_SIZES[0]
        return width, height, int(self.duration or 6)


class GetResponseTask(WireRequest):
    task_type: Literal["getResponse"] = "getResponse"
    task_uuid: TaskUUID


_UUID4_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}")


def get_response_wire(task_uuid: str) -> dict[str, Any]:
    """`GetResponseTask(task_uuid=...).to_wire()` without a model per task (a sweep asks about thousands).

    A taskUUID the fast check does not take goes through the model, which raises the same ValidationError.
    """
    if not (isinstance(task_uuid, str) and _UUID4_RE.fullmatch(task_uuid)):
        return GetResponseTask(task_uuid=task_uuid).to_wire()
    return {"taskType": "getResponse", "taskUUID": task_uuid}


def plain_get_response_uuid(raw: Mapping[str, Any]) -> str | None:
    """The taskUUID of a getResponse task shaped exactly as `get_response_wire` builds it (what `GetResponseTask`
    takes unchanged), else None: the caller then validates it with the model. For a reader of thousands of them."""
    task_uuid = raw.get("taskUUID")
    if len(raw) == 2 and raw.get("taskType") == "getResponse" and type(task_uuid) is str:
        return task_uuid if _UUID4_RE.fullmatch(task_uuid) else None
    return None


class ImageUploadTask(WireRequest):
    task_type: Literal["imageUpload"] = "imageUpload"
    task_uuid: TaskUUID
    image: ImageRef


class AccountManagementTask(WireRequest):
    task_type: Literal["accountManagement"] = "accountManagement"
    task_uuid: TaskUUID
    operation: Literal["getDetails"] = "getDetails"
