"""The job engine through restarts and long downtime, cancels racing submits, partial expiry and odd webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.core.engine import Engine
from bot.core.errors import JobRejected
from bot.core.models import ImageInput, JobState, ResultState
from bot.core.plans import Requester, VideoOptions
from bot.core.tracker import NOT_FOUND_STRIKES
from bot.runware.models import VideoInferenceTask, VideoResultItem
from bot.settings import Settings
from bot.simulator.server import RunwareSimulator
from tests.fakes.images import png_bytes
from tests.helpers import Clock, RecordingSink, free_port, make_settings

ALICE = Requester(guild_id=1000, channel_id=2000, user_id=3000, role_ids=(1000,))
MAX_WAIT = 600


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(sim: RunwareSimulator, db_target: Path | str) -> Settings:
    return make_settings(db_target, sim.base_url, runware={"max_wait": MAX_WAIT})


@pytest.fixture
async def engine(settings: Settings, clock: Clock) -> AsyncIterator[tuple[Engine, RecordingSink]]:
    eng = Engine(settings, clock=clock)
    sink = RecordingSink()
    await eng.start(sink)
    yield eng, sink
    await eng.close()


def video_submits(sim: RunwareSimulator) -> int:
    return sim.count("videoInference")


# -- expiry never loses what Runware finished --------------------------------------------------------------------


async def test_restart_after_downtime_past_max_wait_polls_before_expiring(
    sim: RunwareSimulator, settings: Settings, clock: Clock
) -> None:
    first = Engine(settings, clock=clock)
    await first.start(RecordingSink())
    job = await first.service.create(VideoOptions(prompt="made while the bot was down"), ALICE)
    await first.close()
    sim.finish(job.task_uuid)  # Runware finished (and billed) the clip meanwhile
    clock.now += timedelta(seconds=MAX_WAIT + 60)  # the bot was down longer than max_wait
    second = Engine(settings, clock=clock)
    sink = RecordingSink()
    await second.start(sink)
    try:
        await second.start_tracking()
        await second.tracker.sweep_once()
        done = await second.jobs.get(job.id)
        assert done is not None and done.state is JobState.SUCCEEDED
        assert len(sink.delivered) == 1 and sink.failed == []
        assert done.cost_micros == 280_000  # settled at Runware's cost, not released
        assert await second.ledger.held_job_ids() == []
    finally:
        await second.close()


async def test_reserved_job_runware_holds_is_tracked_not_expired_after_long_downtime(
    sim: RunwareSimulator, settings: Settings, clock: Clock
) -> None:
    first = Engine(settings, clock=clock)
    await first.start(RecordingSink())
    plan = await first.service.plan(VideoOptions(prompt="acknowledged, then the bot died"), ALICE)
    job = await first.service.reserve(plan)
    task = job.params_dict()["task"]
    assert isinstance(task, dict)
    await first.runware.submit(VideoInferenceTask.model_validate(task))  # crash before SUBMITTED was written
    await first.close()
    sim.finish(job.task_uuid)
    clock.now += timedelta(seconds=MAX_WAIT + 60)
    second = Engine(settings, clock=clock)
    sink = RecordingSink()
    await second.start(sink)
    try:
        await second.start_tracking()
        await second.tracker.sweep_once()
        done = await second.jobs.get(job.id)
        assert done is not None and done.state is JobState.SUCCEEDED
        assert len(sink.delivered) == 1
        assert sim.submit_count(job.task_uuid) == 1
    finally:
        await second.close()


async def test_expiry_posts_and_charges_the_clips_that_did_arrive(
    engine: tuple[Engine, RecordingSink], sim: RunwareSimulator, clock: Clock
) -> None:
    eng, sink = engine
    job = await eng.service.create(VideoOptions(prompt="one of two finishes", variations=2), ALICE)
    item = VideoResultItem.model_validate(
        {
            "taskUUID": job.task_uuid,
            "status": "success",
            "videoUUID": "v-first",
            "videoURL": f"{sim.origin}/video/v-first.mp4",
            "seed": 7,
            "cost": 0.28,
        }
    )
    assert await eng.tracker.record_webhook_success(job, item)  # the first clip came by webhook
    clock.now += timedelta(seconds=MAX_WAIT + 1)  # the second never finishes
    await eng.tracker.sweep_once()
    done = await eng.jobs.get(job.id)
    assert done is not None and done.state is JobState.SUCCEEDED
    assert [len(ids) for _, ids, _ in sink.delivered] == [1]
    assert done.cost_micros == 280_000
    assert await eng.ledger.held_job_ids() == []


# -- nothing reaches Runware once a job has moved on ---------------------------------------------------------------


async def test_cancel_before_submit_sends_nothing_and_releases(
    engine: tuple[Engine, RecordingSink], sim: RunwareSimulator
) -> None:
    eng, _ = engine
    plan = await eng.service.plan(VideoOptions(prompt="cancelled right after the status message"), ALICE)
    job = await eng.service.reserve(plan)
    await eng.service.cancel(job.id, ALICE)  # Cancel is on the status message, posted before the submit
    after = await eng.service.submit(job, plan)
    assert after.state is JobState.CANCELLED
    assert video_submits(sim) == 0
    assert await eng.ledger.held_job_ids() == []
    assert job.task_uuid not in await eng.jobs.tracked_task_uuids()


async def test_job_failed_by_recovery_is_not_submitted_late(
    engine: tuple[Engine, RecordingSink], sim: RunwareSimulator, clock: Clock
) -> None:
    eng, _ = engine
    frame = ImageInput(filename="f.png", data=png_bytes(64, 64), mime="image/png", width=64, height=64)
    plan = await eng.service.plan(VideoOptions(prompt="slow to set up in Discord", first_frame=frame), ALICE)
    job = await eng.service.reserve(plan)
    clock.now += timedelta(seconds=61)  # opening its thread and status message took longer than the grace
    await eng.recovery.recover_reserved()  # no task stored yet: failed and released as never sent
    failed = await eng.jobs.get(job.id)
    assert failed is not None and failed.state is JobState.FAILED
    with pytest.raises(JobRejected):
        await eng.service.submit(job, plan)
    assert video_submits(sim) == 0  # Runware would bill a job whose money was already released


async def test_cancel_during_a_stalled_submit_keeps_the_hold(
    engine: tuple[Engine, RecordingSink], sim: RunwareSimulator
) -> None:
    eng, _ = engine
    sim.faults.hang_next(1, seconds=60, task_type="videoInference")  # the submit is on its way, not yet at Runware
    plan = await eng.service.plan(VideoOptions(prompt="cancelled while the submit hangs"), ALICE)
    job = await eng.service.reserve(plan)
    submitting = asyncio.create_task(eng.service.submit(job, plan))
    while video_submits(sim) == 0:
        await asyncio.sleep(0.01)
    await eng.service.cancel(job.id, ALICE)
    try:
        for _ in range(NOT_FOUND_STRIKES + 1):
            await eng.tracker.sweep_once()  # getResponse: not found, since the submit has not landed
        still = await eng.jobs.get(job.id)
        assert still is not None and still.state is JobState.CANCELLED
        assert await eng.ledger.held_job_ids() == [job.id]  # it may land and be billed any moment
    finally:
        submitting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await submitting


# -- start-up and sweeps survive a Runware that does not answer ---------------------------------------------------


async def test_startup_recovery_survives_runware_refusing_lookups(
    engine: tuple[Engine, RecordingSink], sim: RunwareSimulator
) -> None:
    eng, _ = engine
    plan = await eng.service.plan(VideoOptions(prompt="left reserved by a crash"), ALICE)
    job = await eng.service.reserve(plan)
    sim.faults.http_error_next(401, 1, task_type="getResponse")
    await eng.start_tracking()  # must not abort the bot's start
    still = await eng.jobs.get(job.id)
    assert still is not None and still.state is JobState.RESERVED
    await eng.recovery.recover_reserved(startup=True)
    again = await eng.jobs.get(job.id)
    assert again is not None and again.state is JobState.SUBMITTED
    assert sim.submit_count(job.task_uuid) == 1


# -- per-job memory ----------------------------------------------------------------------------------------------


async def test_tracker_forgets_per_job_state_once_jobs_end(
    engine: tuple[Engine, RecordingSink], sim: RunwareSimulator, clock: Clock
) -> None:
    eng, sink = engine
    done = await eng.service.create(VideoOptions(prompt="runs to the end"), ALICE)
    lost = await eng.service.create(VideoOptions(prompt="forgotten by Runware"), ALICE)
    sim.finish(done.task_uuid)
    del sim.tasks[lost.task_uuid]
    await eng.tracker.sweep_once()  # one clip delivered; one not-found strike
    clock.now += timedelta(seconds=MAX_WAIT + 1)
    await eng.tracker.sweep_once()  # the forgotten one expires
    await eng.tracker.sweep_once()
    assert len(sink.delivered) == 1
    gone = await eng.jobs.get(lost.id)
    assert gone is not None and gone.state is JobState.EXPIRED
    assert dict(eng.tracker._locks) == {}
    assert dict(eng.tracker._not_found) == {}


# -- webhook -------------------------------------------------------------------------------------------------------


async def test_webhook_with_a_stray_entry_still_takes_the_known_result(
    sim: RunwareSimulator, db_target: Path | str
) -> None:
    port = free_port()
    settings = make_settings(
        db_target,
        sim.base_url,
        public_url=f"http://127.0.0.1:{port}",
        webhook_secret="s3cret-webhook-token",
        webhook={"listen": f"127.0.0.1:{port}"},
    )
    eng = Engine(settings)
    await eng.start(RecordingSink())
    try:
        job = await eng.service.create(VideoOptions(prompt="a stray error entry"), ALICE)
        item = {
            "taskType": "videoInference",
            "taskUUID": job.task_uuid,
            "videoUUID": "v1",
            "videoURL": f"{sim.origin}/video/v1.mp4",
            "cost": 0.28,
        }
        body = {"data": [item, dict(item, taskUUID="", videoUUID="v2")], "errors": [{"code": "unknown"}]}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"http://127.0.0.1:{port}/runware/s3cret-webhook-token", data=json.dumps(body)) as resp,
        ):
            assert resp.status == 200  # a 5xx would make Runware send it again and again
        [result] = await eng.jobs.results(job.id)
        assert result.video_uuid == "v1" and result.state in (ResultState.PENDING, ResultState.DELIVERED)
        await eng.tracker._tasks.drain(5)
    finally:
        await eng.close()
