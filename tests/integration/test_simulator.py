"""The simulator speaks Runware's protocol strictly (RUNWARE.md §11), driven with raw HTTP on loopback."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.runware.models import new_task_uuid
from bot.simulator.server import RunwareSimulator, sample_clip
from tests.fakes.images import png_bytes
from tests.runware_helpers import SIM_KEY, Receiver, video_task

pytest_plugins = ["tests.conftest_runware"]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession, sim: RunwareSimulator, body: Any, *, key: str | None = SIM_KEY
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with http.post(sim.base_url, data=data, headers=headers) as response:
        return response.status, await response.json()


def raw_task(**changes: Any) -> dict[str, Any]:
    task = video_task().to_wire()
    for key, value in changes.items():
        if value is ...:
            task.pop(key, None)
        else:
            task[key] = value
    return task


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


# ----------------------------------------------------------------------------------------- transport and auth


@pytest.mark.parametrize("body", [b"not json", b'{"taskType":"getResponse"}', b"[]", b"[1, 2]"])
async def test_body_must_be_a_json_array_of_tasks(
    http: aiohttp.ClientSession, sim: RunwareSimulator, body: bytes
) -> None:
    status, payload = await call(http, sim, body)
    assert status == 400
    assert payload["errors"][0]["code"] in ("invalidJSON", "invalidRequestBody")


async def test_missing_or_wrong_key_is_401_invalid_api_key(http: aiohttp.ClientSession, sim: RunwareSimulator) -> None:
    for key in (None, "wrong"):
        status, payload = await call(http, sim, [raw_task()], key=key)
        assert status == 401
        error = payload["errors"][0]
        assert (error["code"], error["parameter"], error["taskType"]) == ("invalidApiKey", "apiKey", "authentication")
    assert not sim.tasks


async def test_authentication_task_first_in_the_array(http: aiohttp.ClientSession, sim: RunwareSimulator) -> None:
    task = raw_task()
    status, payload = await call(http, sim, [{"taskType": "authentication", "apiKey": SIM_KEY}, task], key=None)
    assert status == 200 and payload["data"] == [{"taskType": "videoInference", "taskUUID": task["taskUUID"]}]
    status, _ = await call(http, sim, [{"taskType": "authentication", "apiKey": "nope"}, raw_task()], key=None)
    assert status == 401


async def test_no_key_required_in_dry_run(http: aiohttp.ClientSession) -> None:
    async with RunwareSimulator(api_key=None) as sim:
        status, _ = await call(http, sim, [raw_task()], key=None)
        assert status == 200


# ------------------------------------------------------------------------------------------------ validation

REFUSED: list[tuple[str, dict[str, Any], str, str, dict[str, Any]]] = [
    ("unknown key", raw_task(seed=7), "unsupportedParameter", "seed", {}),
    (
        "1080p 10 s",
        raw_task(width=1920, height=1080, duration=10),
        "unsupportedDuration",
        "duration",
        {"allowedValues": [6]},
    ),
    ("duration 8", raw_task(duration=8), "unsupportedDuration", "duration", {"allowedValues": [6, 10]}),
    ("quality", raw_task(outputQuality=100), "invalidOutputQuality", "outputQuality", {"min": 20, "max": 99}),
    ("prompt", raw_task(positivePrompt="x"), "invalidPositivePrompt", "positivePrompt", {"min": 2, "max": 2000}),
    ("no prompt", raw_task(positivePrompt=...), "missingPositivePrompt", "positivePrompt", {}),
    ("width", raw_task(width=1280, height=720), "invalidWidth", "width", {"allowedValues": [1366, 1920]}),
    ("no height", raw_task(height=...), "missingHeight", "height", {}),
    ("fps", raw_task(fps=30), "invalidFps", "fps", {"allowedValues": [25]}),
    (
        "format",
        raw_task(outputFormat="GIF"),
        "invalidOutputFormat",
        "outputFormat",
        {"allowedValues": ["MP4", "WEBM", "MOV"]},
    ),
    ("ttl", raw_task(ttl=10), "invalidTtl", "ttl", {"min": 60}),
    ("results", raw_task(numberResults=21), "invalidNumberResults", "numberResults", {"max": 20}),
    (
        "safety",
        raw_task(safety={"mode": "strict"}),
        "invalidSafetyMode",
        "safety.mode",
        {"allowedValues": ["none", "fast", "full"]},
    ),
    (
        "frame",
        raw_task(inputs={"frameImages": [{"image": "https://x.example/a.png", "frame": "middle"}]}),
        "invalidFrameImages",
        "inputs.frameImages",
        {},
    ),
    (
        "3 frames",
        raw_task(inputs={"frameImages": ["https://x.example/a.png"] * 3}),
        "invalidFrameImages",
        "inputs.frameImages",
        {"max": 2},
    ),
    ("delivery", raw_task(deliveryMethod="sync"), "invalidDeliveryMethod", "deliveryMethod", {}),
    ("output type", raw_task(outputType="dataURI"), "invalidOutputType", "outputType", {}),
    ("uuid", raw_task(taskUUID="1234"), "invalidTaskUUID", "taskUUID", {}),
    ("model", raw_task(model="minimax:1@1"), "invalidModel", "model", {"allowedValues": ["minimax:3@1"]}),
]


@pytest.mark.parametrize(("task", "code", "parameter", "extra"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
async def test_invalid_video_tasks_are_refused_like_the_api(
    http: aiohttp.ClientSession,
    sim: RunwareSimulator,
    task: dict[str, Any],
    code: str,
    parameter: str,
    extra: dict[str, Any],
) -> None:
    status, payload = await call(http, sim, [task])
    assert status == 400 and "data" not in payload
    [error] = payload["errors"]
    assert (error["code"], error["parameter"], error["taskType"]) == (code, parameter, "videoInference")
    assert error["message"] and error["documentation"].startswith("https://")
    if isinstance(task.get("taskUUID"), str):
        assert error["taskUUID"] == task["taskUUID"]
    for key, value in extra.items():
        assert error[key] == value
    assert not sim.tasks


async def test_mixed_array_is_200_with_data_and_errors(http: aiohttp.ClientSession, sim: RunwareSimulator) -> None:
    good, bad = raw_task(), raw_task(fps=24)
    status, payload = await call(http, sim, [good, bad])
    assert status == 200
    assert payload["data"] == [{"taskType": "videoInference", "taskUUID": good["taskUUID"]}]
    assert [e["taskUUID"] for e in payload["errors"]] == [bad["taskUUID"]]


async def test_reused_task_uuid_is_a_conflict(http: aiohttp.ClientSession, sim: RunwareSimulator) -> None:
    task = raw_task()
    assert (await call(http, sim, [task]))[0] == 200
    status, payload = await call(http, sim, [task])
    assert status == 400 and payload["errors"][0]["code"] == "conflictTaskUUID"
    assert sim.submit_count(task["taskUUID"]) == 2 and len(sim.tasks) == 1


async def test_unknown_task_type(http: aiohttp.ClientSession, sim: RunwareSimulator) -> None:
    status, payload = await call(http, sim, [{"taskType": "imageInference", "taskUUID": new_task_uuid()}])
    assert status == 400 and payload["errors"][0]["code"] == "unsupportedTaskType"


async def test_results_cap_is_configurable(http: aiohttp.ClientSession) -> None:
    async with RunwareSimulator(max_results=4) as sim:
        status, payload = await call(http, sim, [raw_task(numberResults=5)])
        assert status == 400
        assert (payload["errors"][0]["code"], payload["errors"][0]["max"]) == ("invalidNumberResults", 4)
        assert (await call(http, sim, [raw_task(numberResults=4)]))[0] == 200


# ------------------------------------------------------------------------------------------------ last frame

LAST_FRAME_FORMS = {
    "last": [
        {"image": "https://x.example/a.png", "frame": "first"},
        {"image": "https://x.example/b.png", "frame": "last"},
    ],
    "-1": [{"image": "https://x.example/b.png", "frame": -1}],
    "auto second": ["https://x.example/a.png", "https://x.example/b.png"],
}


@pytest.mark.parametrize("frames", list(LAST_FRAME_FORMS.values()), ids=list(LAST_FRAME_FORMS))
async def test_last_frame_switch(http: aiohttp.ClientSession, sim: RunwareSimulator, frames: list[Any]) -> None:
    assert (await call(http, sim, [raw_task(inputs={"frameImages": frames})]))[0] == 200
    sim.faults.accept_last_frame = False
    status, payload = await call(http, sim, [raw_task(inputs={"frameImages": frames})])
    assert status == 400
    error = payload["errors"][0]
    assert error["parameter"] == "inputs.frameImages" and "last" in error["message"]
    first_only = [{"image": "https://x.example/a.png", "frame": "first"}]
    assert (await call(http, sim, [raw_task(inputs={"frameImages": first_only})]))[0] == 200


# ------------------------------------------------------------------------------------------------- images


async def test_image_upload_then_use_as_frame(http: aiohttp.ClientSession, sim: RunwareSimulator) -> None:
    png = png_bytes()
    upload = {"taskType": "imageUpload", "taskUUID": new_task_uuid(), "image": data_uri(png)}
    status, payload = await call(http, sim, [upload])
    assert status == 200
    item = payload["data"][0]
    assert item["taskUUID"] == upload["taskUUID"]
    async with http.get(item["imageURL"]) as response:
        assert response.status == 200 and await response.read() == png
    frames = [{"image": item["imageUUID"], "frame": "first"}]
    assert (await call(http, sim, [raw_task(inputs={"frameImages": frames})]))[0] == 200
    raw_b64 = {"taskType": "imageUpload", "taskUUID": new_task_uuid(), "image": base64.b64encode(png).decode()}
    assert (await call(http, sim, [raw_b64]))[0] == 200


@pytest.mark.parametrize(
    "image",
    [data_uri(b"GIF89a not allowed here"), data_uri(b"\x00" * 32), base64.b64encode(b"plain text, no image").decode()],
)
async def test_images_must_decode_as_png_jpeg_or_webp(
    http: aiohttp.ClientSession, sim: RunwareSimulator, image: str
) -> None:
    status, payload = await call(http, sim, [{"taskType": "imageUpload", "taskUUID": new_task_uuid(), "image": image}])
    assert status == 400 and payload["errors"][0]["parameter"] == "image"
    status, payload = await call(http, sim, [raw_task(inputs={"frameImages": [image]})])
    assert status == 400 and payload["errors"][0]["parameter"] == "inputs.frameImages"


async def test_jpeg_and_webp_magic_are_accepted(http: aiohttp.ClientSession, sim: RunwareSimulator) -> None:
    for data, mime in (
        (b"\xff\xd8\xff\xe0" + b"\x00" * 16, "image/jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
    ):
        frames = [data_uri(data, mime)]
        assert (await call(http, sim, [raw_task(inputs={"frameImages": frames})]))[0] == 200


# ------------------------------------------------------------------------------------- getResponse and clips


async def test_get_response_is_cumulative_and_batched(http: aiohttp.ClientSession, sim: RunwareSimulator) -> None:
    a, b = raw_task(numberResults=2), raw_task()
    await call(http, sim, [a, b])
    unknown = new_task_uuid()
    polls = [{"taskType": "getResponse", "taskUUID": u} for u in (a["taskUUID"], b["taskUUID"], unknown)]
    status, payload = await call(http, sim, polls)
    assert status == 200
    assert [(i["taskUUID"], i["status"]) for i in payload["data"]] == [(a["taskUUID"], "processing")] * 2 + [
        (b["taskUUID"], "processing")
    ]
    assert [(e["taskUUID"], e["code"]) for e in payload["errors"]] == [(unknown, "taskFailedOrNotFound")]
    sim.finish(a["taskUUID"])
    for _ in range(2):  # cumulative: the whole state every time
        _, payload = await call(http, sim, polls[:1])
        items = payload["data"]
        assert [i["status"] for i in items] == ["success", "success"]
        assert all(i["taskType"] == "videoInference" and i["cost"] == 0.28 for i in items)
        assert len({i["videoUUID"] for i in items}) == 2 and len({i["seed"] for i in items}) == 2
    status, payload = await call(http, sim, polls[2:])
    assert status == 400 and payload["errors"][0]["taskType"] == "getResponse"


async def test_cost_only_with_include_cost_and_configurable(http: aiohttp.ClientSession) -> None:
    async with RunwareSimulator(costs={(1366, 768, 10): 0.77}) as sim:
        with_cost, without = raw_task(duration=10), raw_task(includeCost=...)
        await call(http, sim, [with_cost, without])
        sim.advance(0)
        _, payload = await call(
            http,
            sim,
            [
                {"taskType": "getResponse", "taskUUID": with_cost["taskUUID"]},
                {"taskType": "getResponse", "taskUUID": without["taskUUID"]},
            ],
        )
        assert payload["data"][0]["cost"] == 0.77 and "cost" not in payload["data"][1]


async def test_processing_time_progress_and_lazy_completion(http: aiohttp.ClientSession) -> None:
    async with RunwareSimulator(processing_seconds=100) as sim:
        task = raw_task()
        await call(http, sim, [task])
        poll = [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}]
        sim.advance(40)
        _, payload = await call(http, sim, poll)
        assert payload["data"][0]["status"] == "processing" and 40 <= payload["data"][0]["progress"] < 50
        sim.advance(60)
        _, payload = await call(http, sim, poll)
        assert payload["data"][0]["status"] == "success"


async def test_clip_is_a_real_mp4_until_ttl(http: aiohttp.ClientSession, sim: RunwareSimulator) -> None:
    clip = sample_clip()
    assert clip[4:8] == b"ftyp" and 1000 < len(clip) < 60_000
    task = raw_task(ttl=60)
    await call(http, sim, [task])
    sim.finish(task["taskUUID"])
    _, payload = await call(http, sim, [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}])
    url = payload["data"][0]["videoURL"]
    assert url.startswith(sim.origin + "/video/") and url.endswith(".mp4")
    async with http.get(url) as response:
        assert response.status == 200 and response.content_type == "video/mp4"
        assert await response.read() == clip
    sim.advance(61)
    async with http.get(url) as response:
        assert response.status == 404
    async with http.get(f"{sim.origin}/video/{new_task_uuid()}.mp4") as response:
        assert response.status == 404


async def test_oversized_clip(http: aiohttp.ClientSession, sim: RunwareSimulator) -> None:
    sim.faults.oversized_clip_bytes = 300_000
    task = raw_task()
    await call(http, sim, [task])
    sim.finish(task["taskUUID"])
    video_uuid = next(iter(sim._videos))
    async with http.get(f"{sim.origin}/video/{video_uuid}.mp4") as response:
        assert response.content_length == len(sample_clip()) + 300_000
        head = await response.content.read(8)
        assert head[4:8] == b"ftyp"
        body = head + await response.read()
    assert len(body) == len(sample_clip()) + 300_000


async def test_account_balance_number_or_object(http: aiohttp.ClientSession, sim: RunwareSimulator) -> None:
    sim.balance = 5.0
    ask = {"taskType": "accountManagement", "taskUUID": new_task_uuid(), "operation": "getDetails"}
    _, payload = await call(http, sim, [ask])
    assert payload["data"][0]["balance"] == 5.0
    sim.faults.balance_as_object = True
    _, payload = await call(http, sim, [{**ask, "taskUUID": new_task_uuid()}])
    assert payload["data"][0]["balance"] == {"amount": 5.0, "currency": "USD"}


# --------------------------------------------------------------------------------------------- POST faults


async def test_http_error_fault_has_no_json_errors(http: aiohttp.ClientSession, sim: RunwareSimulator) -> None:
    sim.faults.http_error_next(502, n=2)
    for _ in range(2):
        async with http.post(sim.base_url, json=[raw_task()], headers={"Authorization": f"Bearer {SIM_KEY}"}) as r:
            assert r.status == 502 and r.content_type == "text/plain"
    assert not sim.tasks and [r.status for r in sim.requests] == [502, 502]
    assert (await call(http, sim, [raw_task()]))[0] == 200


async def test_fault_filtered_by_task_type(http: aiohttp.ClientSession, sim: RunwareSimulator) -> None:
    sim.faults.http_error_next(500, task_type="getResponse")
    task = raw_task()
    assert (await call(http, sim, [task]))[0] == 200
    async with http.post(
        sim.base_url,
        json=[{"taskType": "getResponse", "taskUUID": task["taskUUID"]}],
        headers={"Authorization": f"Bearer {SIM_KEY}"},
    ) as response:
        assert response.status == 500


async def test_drop_and_hang_faults(http: aiohttp.ClientSession, sim: RunwareSimulator) -> None:
    sim.faults.drop_connection_next(1)
    with pytest.raises(aiohttp.ClientError):
        await call(http, sim, [raw_task()])
    assert not sim.tasks
    sim.faults.drop_connection_next(1, accept=True)
    with pytest.raises(aiohttp.ClientError):
        await call(http, sim, [raw_task()])
    assert len(sim.tasks) == 1
    sim.faults.accept_then_hang_next(1, seconds=30)
    task = raw_task()
    with pytest.raises(TimeoutError):
        async with http.post(
            sim.base_url,
            json=[task],
            headers={"Authorization": f"Bearer {SIM_KEY}"},
            timeout=aiohttp.ClientTimeout(total=0.2),
        ):
            pass
    assert task["taskUUID"] in sim.tasks
    sim.faults.hang_next(1, seconds=30)
    task = raw_task()
    with pytest.raises(TimeoutError):
        async with http.post(
            sim.base_url,
            json=[task],
            headers={"Authorization": f"Bearer {SIM_KEY}"},
            timeout=aiohttp.ClientTimeout(total=0.2),
        ):
            pass
    assert task["taskUUID"] not in sim.tasks
    assert [r.method for r in sim.requests] == ["POST"] * 4 and sim.requests[0].path == "/v1"
    assert sim.count("videoInference") == 4


async def test_reject_next_submits(http: aiohttp.ClientSession, sim: RunwareSimulator) -> None:
    sim.faults.reject_next_submits("insufficientCredits", http_status=402)
    task = raw_task()
    status, payload = await call(http, sim, [task])
    assert status == 402 and payload["errors"][0]["code"] == "insufficientCredits"
    assert payload["errors"][0]["taskUUID"] == task["taskUUID"]
    assert (await call(http, sim, [raw_task()]))[0] == 200


async def test_balance_runs_out(http: aiohttp.ClientSession, sim: RunwareSimulator) -> None:
    sim.balance = 0.5
    assert (await call(http, sim, [raw_task()]))[0] == 200
    status, payload = await call(http, sim, [raw_task()])
    assert status == 402 and payload["errors"][0]["code"] == "insufficientCredits"


# ------------------------------------------------------------------------------------------------ webhooks


async def test_one_webhook_per_finished_item(
    sim: RunwareSimulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    task = raw_task(numberResults=2, webhookURL=f"{receiver.url}/runware/secret?token=abc")
    await call(http, sim, [task])
    await sim.wait_webhooks_idle()
    assert receiver.calls == []  # nothing before completion
    sim.finish(task["taskUUID"])
    await sim.wait_webhooks_idle()
    bodies = receiver.json_bodies()
    assert len(bodies) == 2 and all(len(b["data"]) == 1 for b in bodies)
    assert {b["data"][0]["taskUUID"] for b in bodies} == {task["taskUUID"]}
    assert len({b["data"][0]["videoUUID"] for b in bodies}) == 2
    assert all(b["data"][0]["cost"] == 0.28 and "videoURL" in b["data"][0] for b in bodies)
    assert {path for _, path, _ in receiver.calls} == {"/runware/secret?token=abc"}


async def test_failed_generation_webhook_is_an_errors_envelope(
    sim: RunwareSimulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    sim.faults.fail_next_tasks("contentPolicyViolation")
    task = raw_task(webhookURL=f"{receiver.url}/hook")
    await call(http, sim, [task])
    sim.finish(task["taskUUID"])
    await sim.wait_webhooks_idle()
    [body] = receiver.json_bodies()
    assert body["errors"][0]["code"] == "contentPolicyViolation" and body["errors"][0]["taskUUID"] == task["taskUUID"]


async def test_webhook_retries_on_non_2xx(
    sim: RunwareSimulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    receiver.statuses.extend([500, 503])
    task = raw_task(webhookURL=f"{receiver.url}/hook")
    await call(http, sim, [task])
    sim.finish(task["taskUUID"])
    await sim.wait_webhooks_idle()
    assert [a.status for a in sim.webhook_attempts] == [500, 503, 200]
    assert len(receiver.calls) == 3 and len({body for _, _, body in receiver.calls}) == 1


async def test_webhook_gives_up_after_the_retry_schedule(
    sim: RunwareSimulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    receiver.statuses.extend([500] * 10)
    task = raw_task(webhookURL=f"{receiver.url}/hook")
    await call(http, sim, [task])
    sim.finish(task["taskUUID"])
    await sim.wait_webhooks_idle()
    assert len(receiver.calls) == 1 + len(sim.webhook_retry_delays)


async def test_duplicate_dropped_and_reversed_webhooks(
    sim: RunwareSimulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    sim.faults.duplicate_webhooks = 3
    task = raw_task(webhookURL=f"{receiver.url}/hook")
    await call(http, sim, [task])
    sim.finish(task["taskUUID"])
    await sim.wait_webhooks_idle()
    bodies = receiver.json_bodies()
    assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2]

    receiver.calls.clear()
    sim.faults.duplicate_webhooks = 1
    sim.faults.drop_webhooks = True
    task = raw_task(webhookURL=f"{receiver.url}/hook")
    await call(http, sim, [task])
    sim.finish(task["taskUUID"])
    await sim.wait_webhooks_idle()
    assert receiver.calls == []

    sim.faults.drop_webhooks = False
    sim.faults.reverse_webhooks = True
    sim.faults.fail_next_tasks("timeoutProvider", generations=1)
    task = raw_task(numberResults=2, webhookURL=f"{receiver.url}/hook")
    await call(http, sim, [task])
    sim.finish(task["taskUUID"])
    await sim.wait_webhooks_idle()
    assert [list(b) for b in receiver.json_bodies()] == [["errors"], ["data"]]


async def test_late_webhook(sim: RunwareSimulator, http: aiohttp.ClientSession, receiver: Receiver) -> None:
    sim.faults.webhook_delay = 0.05
    task = raw_task(webhookURL=f"{receiver.url}/hook")
    await call(http, sim, [task])
    sim.finish(task["taskUUID"])
    _, payload = await call(http, sim, [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}])
    assert payload["data"][0]["status"] == "success"  # the poll sees the result; the webhook comes later
    await sim.wait_webhooks_idle()
    finished_at = sim.tasks[task["taskUUID"]].finished_at
    assert finished_at is not None
    assert [a.status for a in sim.webhook_attempts] == [200]
    assert sim.webhook_attempts[0].at >= finished_at + 0.05


async def test_upload_endpoint_receives_the_clip_by_put(
    sim: RunwareSimulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    task = raw_task(uploadEndpoint=f"{receiver.url}/bucket/{new_task_uuid()}.mp4?X-Amz-Signature=abc")
    await call(http, sim, [task])
    sim.finish(task["taskUUID"])
    await sim.wait_webhooks_idle()
    [(method, path, body)] = receiver.calls
    assert method == "PUT" and path.startswith("/bucket/") and body == sample_clip()
    assert sim.uploads[0].status == 200
