"""RunwareClient against the loopback simulator over real HTTP: happy paths, batching, every fault, safe submit."""

from __future__ import annotations

import aiohttp
import pytest

from bot.runware.answers import Answer
from bot.runware.client import RunwareClient
from bot.runware.errors import ErrorKind, RunwareError, RunwareUnavailable, classify
from bot.runware.models import (
    FrameImage,
    ResponseEnvelope,
    VideoInferenceTask,
    new_task_uuid,
)
from bot.simulator.server import RunwareSimulator
from bot.ui.texts_errors import runware_text
from tests.fakes.images import png_bytes
from tests.runware_helpers import SIM_KEY, Receiver, video_task

pytest_plugins = ["tests.conftest_runware"]


# ------------------------------------------------------------------------------------------------ happy paths


async def test_submit_then_poll_to_success(sim: RunwareSimulator, client: RunwareClient) -> None:
    task = video_task(number_results=2)
    await client.submit(task)  # returns None once Runware acknowledged the task
    assert sim.requests[-1].tasks == [task.to_wire()]
    assert sim.requests[-1].status == 200

    status = (await client.get_responses([task.task_uuid]))[task.task_uuid]
    assert status.processing_count == 2 and not status.successes and not status.not_found

    sim.finish(task.task_uuid)
    status = (await client.get_responses([task.task_uuid]))[task.task_uuid]
    assert status.processing_count == 0 and status.failed_count == 0
    assert len(status.successes) == 2 and status.is_complete(2)
    assert len({item.video_uuid for item in status.successes}) == 2
    for item in status.successes:
        assert item.cost == pytest.approx(0.28) and item.seed is not None
        assert item.video_url is not None
        async with client.http.get(item.video_url) as response:  # the shared session, lent for downloads
            body = await response.read()
        assert response.status == 200 and body[4:8] == b"ftyp"
    assert client.stats.requests == {"videoInference": 1, "getResponse": 2}
    assert client.stats.request_seconds > 0


async def test_auto_completion_with_zero_processing_time() -> None:
    async with (
        RunwareSimulator(api_key=SIM_KEY, processing_seconds=0.0) as sim,
        RunwareClient(base_url=sim.base_url, api_key=SIM_KEY, backoff=0.01) as client,
    ):
        task = video_task(width=1920, height=1080)
        await client.submit(task)
        status = (await client.get_responses([task.task_uuid]))[task.task_uuid]
        assert [item.cost for item in status.successes] == [pytest.approx(0.49)]


async def test_upload_image_and_use_it_as_first_frame(sim: RunwareSimulator, client: RunwareClient) -> None:
    image_uuid = await client.upload_image(png_bytes(), "image/png")
    assert image_uuid in sim.images
    sent = sim.requests[-1].tasks[0]
    assert sent["taskType"] == "imageUpload" and sent["image"].startswith("data:image/png;base64,iVBORw0KGgo")
    task = video_task(inputs={"frame_images": [FrameImage(image=image_uuid, frame="first")]})
    await client.submit(task)
    assert sim.requests[-1].tasks[0]["inputs"] == {"frameImages": [{"image": image_uuid, "frame": "first"}]}
    assert task.task_uuid in sim.tasks


async def test_upload_of_a_non_image_is_refused_on_parameter_image(client: RunwareClient) -> None:
    with pytest.raises(RunwareError) as info:
        await client.upload_image(b"%PDF-1.7 not an image", "image/png")
    assert info.value.kind is ErrorKind.INVALID_REQUEST
    assert info.value.parameter == "image" and info.value.http_status == 400


async def test_unknown_image_uuid_is_refused(client: RunwareClient) -> None:
    with pytest.raises(RunwareError) as info:
        await client.submit(video_task(inputs={"frame_images": [new_task_uuid()]}))
    assert info.value.parameter == "inputs.frameImages"


@pytest.mark.parametrize("as_object", [False, True])
async def test_account_details_balance_number_or_object(
    sim: RunwareSimulator, client: RunwareClient, as_object: bool
) -> None:
    sim.balance = 12.5
    sim.faults.balance_as_object = as_object
    details = await client.account_details()
    assert details.balance_amount == pytest.approx(12.5)
    assert details.currency == "USD"
    raw = sim.requests[-1].tasks[0]
    assert raw["taskType"] == "accountManagement" and raw["operation"] == "getDetails"


# --------------------------------------------------------------------------------------------------- polling


async def test_get_responses_batches_n_tasks_into_ceil_n_over_batch_posts(sim: RunwareSimulator) -> None:
    async with RunwareClient(base_url=sim.base_url, api_key=SIM_KEY, batch_size=3, backoff=0.01) as client:
        tasks = [video_task() for _ in range(7)]
        for task in tasks:
            await client.submit(task)
        sim.finish(tasks[0].task_uuid)
        before = sim.count("getResponse")
        statuses = await client.get_responses([t.task_uuid for t in tasks] + [tasks[1].task_uuid])
        assert sim.count("getResponse") - before == 3
        assert [len(r.tasks) for r in sim.requests[-3:]] == [3, 3, 1]
        assert set(statuses) == {t.task_uuid for t in tasks}
        assert len(statuses[tasks[0].task_uuid].successes) == 1
        assert all(statuses[t.task_uuid].processing_count == 1 for t in tasks[1:])


async def test_unknown_task_is_not_found_also_in_a_mixed_batch(sim: RunwareSimulator, client: RunwareClient) -> None:
    known = video_task()
    await client.submit(known)
    unknown = new_task_uuid()
    statuses = await client.get_responses([known.task_uuid, unknown])
    assert sim.requests[-1].status == 200  # one task answered: HTTP 200 with both data and errors
    assert statuses[unknown].not_found and not statuses[unknown].errors
    assert not statuses[known.task_uuid].not_found
    alone = await client.get_responses([unknown])
    assert sim.requests[-1].status == 400 and alone[unknown].not_found


def test_results_are_deduplicated_by_video_uuid() -> None:
    client = RunwareClient(base_url="http://127.0.0.1:9/v1", api_key="k")
    t = new_task_uuid()
    item = {"taskType": "videoInference", "taskUUID": t, "status": "success", "videoUUID": "V1", "videoURL": "u"}
    env = ResponseEnvelope.model_validate({"data": [item, item, {**item, "videoUUID": "V2"}]})
    status = client._read_statuses([{"taskType": "getResponse", "taskUUID": t}], Answer(200, env))[t]
    assert [i.video_uuid for i in status.successes] == ["V1", "V2"]


# ------------------------------------------------------------------------------------------ generation faults


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("timeoutProvider", ErrorKind.TIMEOUT),
        ("contentPolicyViolation", ErrorKind.CONTENT_SAFETY),
        ("inferenceError", ErrorKind.PROVIDER_FAILURE),
    ],
)
@pytest.mark.parametrize("inline", [False, True])
async def test_failed_generation(
    sim: RunwareSimulator, client: RunwareClient, code: str, kind: ErrorKind, inline: bool
) -> None:
    sim.faults.inline_generation_errors = inline
    sim.faults.fail_next_tasks(code, message="it went wrong")
    task = video_task()
    await client.submit(task)  # accepted first: the failure comes later
    sim.finish(task.task_uuid)
    status = (await client.get_responses([task.task_uuid]))[task.task_uuid]
    assert not status.successes and status.failed_count == 1 and status.is_complete(1)
    error = status.errors[0]
    assert (error.code, error.message, error.task_uuid, error.status) == (
        code,
        "it went wrong",
        task.task_uuid,
        "error",
    )
    assert classify(error.code, None) is kind


async def test_partial_failure_of_variations(sim: RunwareSimulator, client: RunwareClient) -> None:
    sim.faults.fail_next_tasks("timeoutProvider", generations=1)
    task = video_task(number_results=3)
    await client.submit(task)
    sim.finish(task.task_uuid)
    status = (await client.get_responses([task.task_uuid]))[task.task_uuid]
    assert len(status.successes) == 2 and status.failed_count == 1 and status.is_complete(3)


# -------------------------------------------------------------------------------------------- refused submits


async def test_insufficient_credits_is_final_and_not_retried(sim: RunwareSimulator, client: RunwareClient) -> None:
    sim.faults.reject_next_submits("insufficientCredits", http_status=402)
    task = video_task()
    with pytest.raises(RunwareError) as info:
        await client.submit(task)
    exc = info.value
    assert (exc.kind, exc.http_status, exc.transient) == (ErrorKind.INSUFFICIENT_CREDITS, 402, False)
    assert "out of credits" in runware_text(exc)
    assert sim.submit_count(task.task_uuid) == 1 and not sim.tasks
    assert client.stats.errors == {"insufficient_credits": 1}


async def test_exhausted_balance_answers_insufficient_credits(sim: RunwareSimulator, client: RunwareClient) -> None:
    sim.balance = 0.60
    await client.submit(video_task())  # 0.28
    await client.submit(video_task())  # 0.28
    with pytest.raises(RunwareError) as info:
        await client.submit(video_task())
    assert info.value.kind is ErrorKind.INSUFFICIENT_CREDITS and info.value.http_status == 402
    assert sim.balance == pytest.approx(0.04) and len(sim.tasks) == 2


async def test_validation_error_from_the_api_names_parameter_and_allowed_values(
    sim: RunwareSimulator, client: RunwareClient
) -> None:
    # model_construct skips our own validation, to prove the simulator refuses what Runware refuses
    bad = VideoInferenceTask.model_construct(
        task_uuid=new_task_uuid(), model="minimax:3@1", positive_prompt="ok ok", width=1920, height=1080, duration=10
    )
    with pytest.raises(RunwareError) as info:
        await client.submit(bad)
    exc = info.value
    assert (exc.kind, exc.code, exc.parameter, exc.allowed_values) == (
        ErrorKind.INVALID_REQUEST,
        "unsupportedDuration",
        "duration",
        [6],
    )
    assert "duration" in runware_text(exc) and "6" in runware_text(exc)
    assert sim.submit_count() == 1 and not sim.tasks


async def test_wrong_key_is_authentication(sim: RunwareSimulator) -> None:
    async with RunwareClient(base_url=sim.base_url, api_key="wrong", backoff=0.01) as client:
        with pytest.raises(RunwareError) as info:
            await client.submit(video_task())
    assert (info.value.kind, info.value.http_status, info.value.parameter) == (ErrorKind.AUTHENTICATION, 401, "apiKey")
    assert sim.submit_count() == 1 and sim.count("getResponse") == 0
    assert "wrong" not in runware_text(info.value)


async def test_401_without_a_json_body_is_authentication(sim: RunwareSimulator, client: RunwareClient) -> None:
    sim.faults.http_error_next(401)
    with pytest.raises(RunwareError) as info:
        await client.account_details()
    assert info.value.kind is ErrorKind.AUTHENTICATION and not isinstance(info.value, RunwareUnavailable)


# -------------------------------------------------------------------------------- ambiguous submits (§3.5)


async def test_timeout_after_acceptance_checks_get_response_and_never_resubmits(sim: RunwareSimulator) -> None:
    sim.faults.accept_then_hang_next(1, seconds=30)
    async with RunwareClient(base_url=sim.base_url, api_key=SIM_KEY, timeout=0.3, backoff=0.01) as client:
        task = video_task()
        await client.submit(task)  # no error
    assert sim.submit_count(task.task_uuid) == 1
    assert list(sim.tasks) == [task.task_uuid]
    assert sim.count("getResponse") == 1


async def test_5xx_before_acceptance_then_not_found_resubmits_same_uuid(
    sim: RunwareSimulator, client: RunwareClient
) -> None:
    sim.faults.http_error_next(503)
    task = video_task()
    await client.submit(task)
    kinds = [r.tasks[0]["taskType"] for r in sim.requests]
    assert kinds == ["videoInference", "getResponse", "videoInference"]
    assert [r.tasks[0]["taskUUID"] for r in sim.requests] == [task.task_uuid] * 3
    assert [r.status for r in sim.requests] == [503, 400, 200]
    assert sim.submit_count(task.task_uuid) == 2 and list(sim.tasks) == [task.task_uuid]


@pytest.mark.parametrize("status", [429, 500, 502, 408])
async def test_transient_statuses_take_the_lookup_path(
    sim: RunwareSimulator, client: RunwareClient, status: int
) -> None:
    sim.faults.http_error_next(status)
    task = video_task()
    await client.submit(task)
    assert sim.count("getResponse") == 1 and len(sim.tasks) == 1


async def test_dropped_connection_before_acceptance(sim: RunwareSimulator, client: RunwareClient) -> None:
    sim.faults.drop_connection_next(1)
    task = video_task()
    await client.submit(task)
    assert sim.submit_count(task.task_uuid) == 2 and len(sim.tasks) == 1


async def test_dropped_connection_after_acceptance(sim: RunwareSimulator, client: RunwareClient) -> None:
    sim.faults.drop_connection_next(1, accept=True)
    task = video_task()
    await client.submit(task)
    assert sim.submit_count(task.task_uuid) == 1 and len(sim.tasks) == 1


async def test_stalled_submit_is_looked_up_then_resubmitted(sim: RunwareSimulator) -> None:
    sim.faults.hang_next(1, seconds=30)  # stalls before handling: the task never arrived
    async with RunwareClient(base_url=sim.base_url, api_key=SIM_KEY, timeout=0.3, backoff=0.01) as client:
        task = video_task()
        await client.submit(task)
    assert sim.submit_count(task.task_uuid) == 2 and list(sim.tasks) == [task.task_uuid]


async def test_lookup_failing_transiently_is_retried(sim: RunwareSimulator, client: RunwareClient) -> None:
    sim.faults.http_error_next(503, n=2)  # the submit and the first lookup
    task = video_task()
    await client.submit(task)
    assert [r.status for r in sim.requests] == [503, 503, 400, 200]
    assert len(sim.tasks) == 1


async def test_conflict_on_resubmit_means_accepted(sim: RunwareSimulator, client: RunwareClient) -> None:
    task = video_task()
    await client.submit(task)
    await client.submit(task)  # e.g. after a restart: Runware answers conflictTaskUUID
    assert sim.requests[-1].status == 400
    assert sim.submit_count(task.task_uuid) == 2 and len(sim.tasks) == 1


async def test_gives_up_after_max_attempts_with_unavailable(sim: RunwareSimulator, client: RunwareClient) -> None:
    sim.faults.http_error_next(503, n=100)
    task = video_task()
    with pytest.raises(RunwareUnavailable) as info:
        await client.submit(task)
    assert info.value.transient and info.value.task_uuid == task.task_uuid
    assert info.value.maybe_accepted  # the lookups never answered: the caller must look again later
    assert sim.submit_count(task.task_uuid) == 1  # and no second submit without a lookup
    assert not sim.tasks
    assert client.stats.errors == {"server_error": 1}


async def test_gives_up_after_max_attempts_of_submit_and_lookup(sim: RunwareSimulator) -> None:
    async with RunwareClient(base_url=sim.base_url, api_key=SIM_KEY, max_attempts=2, backoff=0.01) as client:
        sim.faults.drop_connection_next(2, task_type="videoInference")
        task = video_task()
        with pytest.raises(RunwareUnavailable) as info:
            await client.submit(task)
    assert not info.value.maybe_accepted  # getResponse confirmed that Runware does not hold it
    assert [r.tasks[0]["taskType"] for r in sim.requests] == ["videoInference", "getResponse"] * 2
    assert sim.submit_count(task.task_uuid) == 2 and not sim.tasks


# ----------------------------------------------------------------------------------------- safe-to-retry calls


async def test_get_responses_retries_5xx_and_stalls(sim: RunwareSimulator) -> None:
    async with RunwareClient(base_url=sim.base_url, api_key=SIM_KEY, timeout=0.3, backoff=0.01) as client:
        task = video_task()
        await client.submit(task)
        sim.faults.http_error_next(429)
        sim.faults.hang_next(1, seconds=30)
        status = await client.get_responses([task.task_uuid])
    assert status[task.task_uuid].processing_count == 1
    assert sim.count("getResponse") == 3


async def test_get_responses_gives_up_with_unavailable(sim: RunwareSimulator, client: RunwareClient) -> None:
    sim.faults.http_error_next(502, n=3)
    with pytest.raises(RunwareUnavailable) as info:
        await client.get_responses([new_task_uuid()])
    assert info.value.http_status == 502 and sim.count("getResponse") == 3


async def test_latency_knob_still_answers(sim: RunwareSimulator, client: RunwareClient) -> None:
    sim.faults.latency = 0.05
    await client.submit(video_task())
    assert len(sim.tasks) == 1


# ----------------------------------------------------------------------------------------------- last frame


def _first_last(first: str, last: str) -> VideoInferenceTask:
    return video_task(
        inputs={"frame_images": [FrameImage(image=first, frame="first"), FrameImage(image=last, frame="last")]}
    )


async def test_last_frame_is_sent_as_documented_and_accepted(sim: RunwareSimulator, client: RunwareClient) -> None:
    first = await client.upload_image(png_bytes(color=(255, 0, 0)), "image/png")
    last = await client.upload_image(png_bytes(color=(0, 0, 255)), "image/png")
    task = _first_last(first, last)
    await client.submit(task)
    frames = sim.requests[-1].tasks[0]["inputs"]["frameImages"]
    assert frames == [{"image": first, "frame": "first"}, {"image": last, "frame": "last"}]
    assert task.task_uuid in sim.tasks


async def test_refused_last_frame_tells_the_member_to_retry_without_it(
    sim: RunwareSimulator, client: RunwareClient
) -> None:
    sim.faults.accept_last_frame = False
    first = await client.upload_image(png_bytes(), "image/png")
    last = await client.upload_image(png_bytes(), "image/png")
    with pytest.raises(RunwareError) as info:
        await client.submit(_first_last(first, last))
    exc = info.value
    assert exc.kind is ErrorKind.INVALID_REQUEST and exc.parameter == "inputs.frameImages" and not exc.transient
    assert runware_text(exc) == "This model refused the last frame image; try again without last_frame."
    await client.submit(video_task(inputs={"frame_images": [FrameImage(image=first, frame="first")]}))
    assert len(sim.tasks) == 1


# ------------------------------------------------------------------------------------------------- ownership


async def test_injected_session_is_not_closed(sim: RunwareSimulator, receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as session:
        client = RunwareClient(base_url=sim.base_url, api_key=SIM_KEY, session=session)
        await client.start()
        assert client.http is session
        await client.account_details()
        await client.close()
        assert not session.closed
        async with session.get(receiver.url) as response:  # still usable by its owner
            assert response.status == 200


async def test_http_is_unavailable_before_start_and_after_close(sim: RunwareSimulator) -> None:
    client = RunwareClient(base_url=sim.base_url, api_key=SIM_KEY)
    with pytest.raises(RuntimeError):
        _ = client.http
    await client.start()
    session = client.http
    await client.close()
    assert session.closed
    assert "sim-key" not in repr(client)
