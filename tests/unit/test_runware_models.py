"""Wire models: the seed page's five examples round-trip, and every value the API refuses cannot be built."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.runware.models import (
    AccountDetails,
    AccountManagementTask,
    FrameImage,
    GetResponseTask,
    ImageUploadResult,
    ImageUploadTask,
    ResponseEnvelope,
    RunwareErrorItem,
    TaskAck,
    TaskStatus,
    VideoInferenceTask,
    VideoResultItem,
    frame_positions,
    get_response_wire,
    new_task_uuid,
)
from bot.runware.results import parse_result_item

SEED_PAGE = Path(__file__).resolve().parents[1] / "seed" / "hailuo-02-runware-api.txt"  # a copy of the seed page


def seed_examples() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The (request, response) JSON pairs printed on the seed page, in page order."""
    text = SEED_PAGE.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    objects: list[dict[str, Any]] = []
    pos = text.find("{")
    while pos != -1:
        obj, end = decoder.raw_decode(text, pos)
        objects.append(obj)
        pos = text.find("{", end)
    return list(zip(objects[::2], objects[1::2], strict=True))


EXAMPLES = seed_examples()


def test_seed_page_has_five_examples() -> None:
    assert len(EXAMPLES) == 5
    assert sum(1 for req, _ in EXAMPLES if "inputs" in req) == 4


@pytest.mark.parametrize("index", range(5))
def test_seed_request_round_trips_key_for_key(index: int) -> None:
    request, _ = EXAMPLES[index]
    task = VideoInferenceTask.model_validate(request)
    wire = task.to_wire()
    assert wire == request
    assert json.loads(json.dumps(wire)) == request  # same JSON, e.g. duration stays 6, not 6.0
    assert json.dumps(wire["duration"]) == "6"
    assert VideoInferenceTask.model_validate(wire) == task


@pytest.mark.parametrize("index", range(5))
def test_seed_response_parses(index: int) -> None:
    request, response = EXAMPLES[index]
    item = VideoResultItem.model_validate(response)
    assert item.status == "success"  # no status on the page: a result with a videoURL is a success
    assert item.task_uuid == request["taskUUID"]
    assert item.video_uuid == response["videoUUID"]
    assert item.video_url is not None and item.video_url.endswith(f"{item.video_uuid}.mp4")
    assert item.seed == response["seed"]
    assert item.cost == pytest.approx(0.49)


def test_seed_last_frame_example_is_modelled_as_documented() -> None:
    request = EXAMPLES[2][0]
    task = VideoInferenceTask.model_validate(request)
    assert task.inputs is not None
    images = task.inputs.frame_images
    assert [i.frame for i in images if isinstance(i, FrameImage)] == ["first", "last"]
    assert frame_positions(images) == ["first", "last"]
    assert task.to_wire()["inputs"]["frameImages"][1] == {
        "image": request["inputs"]["frameImages"][1]["image"],
        "frame": "last",
    }


def _base() -> dict[str, Any]:
    return dict(EXAMPLES[0][0])


def _with(**changes: Any) -> dict[str, Any]:
    data = _base()
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


URL = "https://assets.runware.ai/assets/inputs/e9d9e021-000d-4643-b5ad-e56c19a70316.jpg"

INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("quality 19", _with(outputQuality=19), "outputQuality"),
    ("quality 100", _with(outputQuality=100), "outputQuality"),
    ("quality as text", _with(outputQuality="95"), "outputQuality"),
    ("fps 24", _with(fps=24), "fps"),
    ("duration 7", _with(duration=7), "duration"),
    ("1080p for 10 s", _with(duration=10), "duration"),
    ("768p for 7.5 s", _with(width=1366, height=768, duration=7.5), "duration"),
    ("width without height", _with(height=...), "height"),
    ("height without width", _with(width=...), "width"),
    ("size not offered", _with(width=1280, height=720), "width"),
    ("mixed size", _with(width=1366, height=1080), "height"),
    ("prompt 1 char", _with(positivePrompt="a"), "positivePrompt"),
    ("prompt 2001 chars", _with(positivePrompt="x" * 2001), "positivePrompt"),
    ("prompt missing", _with(positivePrompt=...), "positivePrompt"),
    ("numberResults 0", _with(numberResults=0), "numberResults"),
    ("numberResults 21", _with(numberResults=21), "numberResults"),
    ("ttl 59", _with(ttl=59), "ttl"),
    ("safety mode bogus", _with(safety={"mode": "bogus"}), "safety.mode"),
    ("safety unknown key", _with(safety={"level": "high"}), "safety.level"),
    ("frame middle", _with(inputs={"frameImages": [{"image": URL, "frame": "middle"}]}), "inputs.frameImages"),
    ("frame 5", _with(inputs={"frameImages": [{"image": URL, "frame": 5}]}), "inputs.frameImages"),
    ("frame true", _with(inputs={"frameImages": [{"image": URL, "frame": True}]}), "inputs.frameImages"),
    ("3 frame images", _with(inputs={"frameImages": [URL, URL, URL]}), "inputs.frameImages"),
    ("0 frame images", _with(inputs={"frameImages": []}), "inputs.frameImages"),
    ("two first frames", _with(inputs={"frameImages": [URL, {"image": URL, "frame": 0}]}), "inputs.frameImages"),
    ("image not an image", _with(inputs={"frameImages": [{"image": "not an image!"}]}), "inputs.frameImages"),
    ("flat frameImages", _with(frameImages=[{"inputImage": URL}]), "frameImages"),
    ("outputType base64", _with(outputType="base64Data"), "outputType"),
    ("deliveryMethod sync", _with(deliveryMethod="sync"), "deliveryMethod"),
    ("unknown key seed", _with(seed=42), "seed"),
    ("unknown key negativePrompt", _with(negativePrompt="blurry"), "negativePrompt"),
    ("outputFormat GIF", _with(outputFormat="GIF"), "outputFormat"),
    ("outputFormat lower case", _with(outputFormat="mp4"), "outputFormat"),
    ("other model", _with(model="minimax:4@2"), "model"),
    ("taskType", _with(taskType="imageInference"), "taskType"),
    ("taskUUID not a UUID", _with(taskUUID="task-1"), "taskUUID"),
    ("taskUUID v1", _with(taskUUID="6ba7b810-9dad-11d1-80b4-00c04fd430c8"), "taskUUID"),
    ("webhookURL not a URL", _with(webhookURL="ftp://example.com/x"), "webhookURL"),
    ("uploadEndpoint not a URL", _with(uploadEndpoint="bucket/key"), "uploadEndpoint"),
    ("provider key camel", _with(providerSettings={"miniMax": {"promptOptimizer": True}}), "providerSettings.miniMax"),
    ("promptOptimizer text", _with(providerSettings={"minimax": {"promptOptimizer": "yes"}}), "promptOptimizer"),
    ("includeCost text", _with(includeCost="true"), "includeCost"),
]


@pytest.mark.parametrize(("data", "parameter"), [(d, p) for _, d, p in INVALID], ids=[n for n, _, _ in INVALID])
def test_invalid_task_cannot_be_built_and_the_error_names_the_parameter(data: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ValidationError) as info:
        VideoInferenceTask.model_validate(data)
    assert parameter in str(info.value)


def test_invalid_task_cannot_be_built_from_python_names_either() -> None:
    with pytest.raises(ValidationError, match="outputQuality"):
        VideoInferenceTask(task_uuid=new_task_uuid(), model="minimax:3@1", positive_prompt="ok", output_quality=19)


VALID: list[tuple[str, dict[str, Any]]] = [
    ("768p 10 s", _with(width=1366, height=768, duration=10)),
    ("768p 6 s float", _with(width=1366, height=768, duration=6.0)),
    ("no size", _with(width=..., height=..., duration=10)),
    ("limits low", _with(outputQuality=20, numberResults=1, ttl=60, positivePrompt="ab")),
    ("limits high", _with(outputQuality=99, numberResults=20, positivePrompt="x" * 2000)),
    (
        "every option",
        _with(
            outputType="URL",
            outputFormat="WEBM",
            deliveryMethod="async",
            includeCost=True,
            webhookURL="https://bot.example/runware/s3cret?token=abc",
            uploadEndpoint="https://bucket.example/clips/t.mp4?X-Amz-Signature=abc",
            safety={"checkContent": True, "mode": "full"},
        ),
    ),
    ("MOV", _with(outputFormat="MOV")),
    ("bare image string", _with(inputs={"frameImages": [URL]})),
    ("two bare images", _with(inputs={"frameImages": [URL, URL]})),
    ("frame indices", _with(inputs={"frameImages": [{"image": URL, "frame": 0}, {"image": URL, "frame": -1}]})),
    ("frame auto in object", _with(inputs={"frameImages": [{"image": URL}]})),
    (
        "image UUID",
        _with(inputs={"frameImages": [{"image": "3ff7eb00-c45d-4e63-a88c-dddc89bd6f52", "frame": "first"}]}),
    ),
    ("image data URI", _with(inputs={"frameImages": ["data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="]})),
    ("image base64", _with(inputs={"frameImages": ["iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"]})),
]


@pytest.mark.parametrize("data", [d for _, d in VALID], ids=[n for n, _ in VALID])
def test_valid_tasks_build_and_round_trip(data: dict[str, Any]) -> None:
    task = VideoInferenceTask.model_validate(data)
    assert VideoInferenceTask.model_validate(task.to_wire()).to_wire() == task.to_wire()
    assert task.to_wire() == data


def test_to_wire_uses_aliases_and_leaves_out_unset_fields() -> None:
    uuid = new_task_uuid()
    task = VideoInferenceTask(
        task_uuid=uuid,
        model="minimax:3@1",
        positive_prompt="a lighthouse in a storm",
        width=1366,
        height=768,
        duration=10,
        webhook_url="https://bot.example/runware/abc",
        provider_settings={"minimax": {"prompt_optimizer": False}},  # type: ignore[arg-type]
    )
    assert task.to_wire() == {
        "taskType": "videoInference",
        "taskUUID": uuid,
        "model": "minimax:3@1",
        "positivePrompt": "a lighthouse in a storm",
        "width": 1366,
        "height": 768,
        "duration": 10,
        "webhookURL": "https://bot.example/runware/abc",
        "providerSettings": {"minimax": {"promptOptimizer": False}},
    }
    assert task.size_key == (1366, 768, 10)
    assert task.results == 1


def test_other_request_models() -> None:
    uuid = new_task_uuid()
    assert GetResponseTask(task_uuid=uuid).to_wire() == {"taskType": "getResponse", "taskUUID": uuid}
    assert AccountManagementTask(task_uuid=uuid).to_wire() == {
        "taskType": "accountManagement",
        "taskUUID": uuid,
        "operation": "getDetails",
    }
    upload = ImageUploadTask(task_uuid=uuid, image="data:image/png;base64,iVBORw0KGgo=")
    assert upload.to_wire()["image"].startswith("data:image/png")
    with pytest.raises(ValidationError, match="image"):
        ImageUploadTask(task_uuid=uuid, image="hello world")
    with pytest.raises(ValidationError, match="operation"):
        AccountManagementTask.model_validate({"taskType": "accountManagement", "taskUUID": uuid, "operation": "x"})
    with pytest.raises(ValidationError, match="taskUUID"):
        GetResponseTask.model_validate({"taskType": "getResponse", "taskUUID": "nope"})


@pytest.mark.parametrize(
    "value",
    [
        "not a uuid",
        "",
        "5481c77d-0596-1375-918e-5e3fc20504f2",  # version 1
        "5481c77d-0596-4375-718e-5e3fc20504f2",  # not the RFC 4122 variant
        "5481c77d-0596-4375-918e-5e3fc20504f2\n",
        "{5481c77d-0596-4375-918e-5e3fc20504f2}",
    ],
)
def test_fast_get_response_wire_refuses_what_the_model_refuses(value: str) -> None:
    with pytest.raises(ValidationError, match="taskUUID"):
        GetResponseTask(task_uuid=value)
    with pytest.raises(ValidationError, match="taskUUID"):
        get_response_wire(value)


def test_fast_get_response_wire_is_the_models_wire() -> None:
    for uuid in [new_task_uuid() for _ in range(50)] + [new_task_uuid().upper()]:
        assert get_response_wire(uuid) == GetResponseTask(task_uuid=uuid).to_wire()


# ------------------------------------------------------------------------------------------------- responses

T1 = "5481c77d-0596-4375-918e-5e3fc20504f2"
ITEMS: list[dict[str, Any]] = [
    {"taskType": "videoInference", "taskUUID": T1, "status": "processing", "progress": 40},
    {"taskType": "videoInference", "taskUUID": T1, "status": "processing"},
    {"taskUUID": T1},
    {"taskUUID": T1, "status": "pending", "progress": None},
    {"taskUUID": T1, "status": "processing", "progress": 39.6},  # rounded by the model
    {"taskUUID": T1, "status": "processing", "progress": "40"},
    {"taskUUID": T1, "status": "processing", "progress": True},
    {"taskUUID": T1, "status": "processing", "eta": 12},  # an unknown key is kept
    {"taskUUID": T1, "status": "success", "videoUUID": "V1", "videoURL": "https://x/v.mp4", "cost": 0.49},
    {"taskUUID": T1, "videoURL": "https://x/v.mp4"},
    {"taskUUID": T1, "status": "error", "error": {"code": "timeoutProvider", "message": "slow"}},
]


@pytest.mark.parametrize("raw", ITEMS)
def test_result_item_shortcut_parses_like_the_model(raw: dict[str, Any]) -> None:
    fast, slow = parse_result_item(raw), VideoResultItem.model_validate(raw)
    assert fast is not None and fast == slow and repr(fast) == repr(slow)
    assert fast.model_fields_set == slow.model_fields_set


@pytest.mark.parametrize(
    "raw",
    [
        {"status": "processing"},
        {"taskUUID": 5, "status": "processing"},
        {"taskUUID": T1, "status": "done"},
        {"taskUUID": T1, "taskType": 7, "status": "processing"},
        {"taskUUID": T1, "status": "processing", "progress": 101},
        {"taskUUID": T1, "status": "processing", "progress": -1},
        {"taskUUID": T1 + "\x07", "status": "processing"},
    ],
)
def test_result_item_shortcut_refuses_what_the_model_refuses(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        VideoResultItem.model_validate(raw)
    assert parse_result_item(raw) is None


@pytest.mark.parametrize(
    "body",
    [
        {"data": ITEMS},
        {"data": ITEMS[:2], "errors": [{"code": "taskFailedOrNotFound", "taskUUID": T1, "status": "error"}]},
        {"errors": [{"code": None, "message": None}]},
        {},
        {"data": None},
        {"data": {"taskUUID": T1}},
        {"errors": {"code": "x"}},
        {"data": [], "extra": 1},
        {"error": {"code": "invalidApiKey"}, "taskUUID": T1, "taskType": "authentication"},
        [{"code": "invalidApiKey"}],
    ],
)
def test_envelope_shortcut_parses_like_the_model(body: Any) -> None:
    fast, slow = ResponseEnvelope.parse(body), ResponseEnvelope.model_validate(body)
    assert fast.data == slow.data and fast.errors == slow.errors
    assert fast.model_extra == slow.model_extra


@pytest.mark.parametrize("body", ["text", 5, {"data": [1]}, {"errors": ["x"]}, {"data": "x"}])
def test_envelope_shortcut_refuses_what_the_model_refuses(body: Any) -> None:
    with pytest.raises(ValidationError):
        ResponseEnvelope.model_validate(body)
    with pytest.raises(ValidationError):
        ResponseEnvelope.parse(body)


def test_video_result_statuses() -> None:
    t = new_task_uuid()
    assert VideoResultItem.model_validate({"taskUUID": t, "status": "pending"}).status == "processing"
    processing = VideoResultItem.model_validate(
        {"taskType": "videoInference", "taskUUID": t, "status": "processing", "progress": 40}
    )
    assert processing.progress == 40 and processing.video_url is None
    assert VideoResultItem.model_validate({"taskUUID": t, "status": "processing", "progress": 39.6}).progress == 40
    inline = VideoResultItem.model_validate(
        {"taskUUID": t, "status": "error", "error": {"code": "timeoutProvider", "message": "slow"}}
    )
    assert inline.status == "error" and inline.error is not None and inline.error.code == "timeoutProvider"
    assert VideoResultItem.model_validate({"taskUUID": t, "error": {"code": "x"}}).status == "error"
    nsfw = VideoResultItem.model_validate(
        {"taskUUID": t, "videoUUID": "v", "videoURL": "u", "NSFWContent": True, "videoBase64Data": None, "newField": 1}
    )
    assert nsfw.nsfw_content is True and nsfw.status == "success"
    assert nsfw.model_extra == {"videoBase64Data": None, "newField": 1}
    with pytest.raises(ValidationError):
        VideoResultItem.model_validate({"taskUUID": t, "status": "exploded"})


def test_error_item_every_field_optional_and_extras_kept() -> None:
    bare = RunwareErrorItem.model_validate({})
    assert bare.code == "unknown" and bare.message == "" and bare.parameters == []
    assert RunwareErrorItem.model_validate({"code": None, "message": None}).code == "unknown"
    full = RunwareErrorItem.model_validate(
        {
            "code": "unsupportedDuration",
            "message": "Invalid duration",
            "parameter": ["duration", "width"],
            "taskType": "videoInference",
            "taskUUID": "T",
            "documentation": "https://runware.ai/docs",
            "allowedValues": [6],
            "min": 1,
            "max": 2,
            "multiplier": 8,
            "type": "float",
            "status": "error",
            "responseContent": {"detail": "x"},
        }
    )
    assert full.parameters == ["duration", "width"]
    assert full.parameter_path == "duration, width"
    assert full.allowed_values == [6] and full.min == 1 and full.max == 2
    assert full.response_content == {"detail": "x"}
    assert full.model_extra == {"multiplier": 8, "type": "float"}


def test_envelope_shapes() -> None:
    both = ResponseEnvelope.model_validate(
        {"data": [{"taskType": "videoInference", "taskUUID": "A"}], "errors": [{"code": "x", "taskUUID": "B"}]}
    )
    assert both.items_for("A") and both.errors_for("B") and not both.errors_for("A")
    assert ResponseEnvelope.model_validate({}).data == []
    assert ResponseEnvelope.model_validate({"data": None, "errors": None}).errors == []
    single = ResponseEnvelope.model_validate({"data": {"taskType": "imageUpload", "imageUUID": "I"}})
    assert single.data == [{"taskType": "imageUpload", "imageUUID": "I"}]
    legacy = ResponseEnvelope.model_validate(
        {"error": {"code": "invalidWidth", "message": "m"}, "taskUUID": "T", "taskType": "videoInference"}
    )
    assert legacy.errors[0].code == "invalidWidth" and legacy.errors[0].task_uuid == "T"
    bare_list = ResponseEnvelope.model_validate([{"code": "invalidApiKey"}])
    assert bare_list.errors[0].code == "invalidApiKey"
    old_ws = ResponseEnvelope.model_validate({"error": True, "errorMessage": "Invalid api key"})
    assert old_ws.errors[0].code == "invalidApiKey"
    assert ResponseEnvelope.model_validate({"data": [], "extra": 1}).model_extra == {"extra": 1}


def test_envelope_parse_any_accepts_bare_webhook_bodies() -> None:
    item = {"taskType": "videoInference", "taskUUID": "T", "videoUUID": "V", "videoURL": "https://x/V.mp4"}
    assert ResponseEnvelope.parse_any(item).items[0].video_uuid == "V"
    assert ResponseEnvelope.parse_any({"data": [item]}).items[0].status == "success"
    error = {"code": "timeoutProvider", "taskUUID": "T", "status": "error"}
    assert ResponseEnvelope.parse_any(error).errors[0].code == "timeoutProvider"
    assert ResponseEnvelope.parse_any({"errors": [error]}).errors[0].task_uuid == "T"


def test_account_image_and_ack_responses() -> None:
    assert AccountDetails.model_validate({"balance": 12.5}).balance_amount == 12.5
    obj = AccountDetails.model_validate({"balance": {"amount": 3.25, "currency": "EUR", "freeBalance": 1}, "team": []})
    assert obj.balance_amount == 3.25 and obj.currency == "EUR"
    assert AccountDetails.model_validate({}).balance_amount is None
    up = ImageUploadResult.model_validate(
        {"taskType": "imageUpload", "taskUUID": "T", "imageUUID": "I", "imageURL": "https://im/I.png"}
    )
    assert up.image_uuid == "I" and up.image_url == "https://im/I.png"
    ack = TaskAck.model_validate({"taskType": "videoInference", "taskUUID": "T"})
    assert ack.task_uuid == "T"


def test_task_status_counts() -> None:
    t = new_task_uuid()
    status = TaskStatus(task_uuid=t)
    assert status.take_plain({"taskType": "videoInference", "taskUUID": t, "status": "processing", "progress": 40})
    assert status.take_plain({"taskUUID": t, "status": "pending"})
    assert not status.take_plain({"taskUUID": t, "status": "processing", "progress": 101})  # parsed, then refused
    assert not status.take_plain({"taskUUID": t, "status": "processing", "cost": 0.1})  # anything more: the model
    status.add(VideoResultItem.model_validate({"taskUUID": t, "status": "processing", "progress": 70, "cost": 0.1}))
    success = {"taskUUID": t, "status": "success", "videoUUID": "V", "videoURL": "u"}
    status.add(VideoResultItem.model_validate(success))
    status.add(VideoResultItem.model_validate(success))  # the same generation twice counts once
    status.add(VideoResultItem.model_validate({"taskUUID": t, "status": "error", "error": {"code": "timeoutProvider"}}))
    assert [i.video_uuid for i in status.successes] == ["V"]
    assert status.failed_count == 1 and status.errors[0].code == "timeoutProvider"
    assert status.processing_count == 3 and status.progress == 70
    assert not status.is_complete(2)
    assert TaskStatus(task_uuid=t, successes=status.successes, errors=status.errors).is_complete(2)
