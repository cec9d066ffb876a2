"""The Discord-agnostic core end to end: service + tracker + store + webhook server against the simulator."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.core.engine import Engine
from bot.core.errors import JobRejected, OverLimit
from bot.core.models import JobState, Payer, ResultState
from bot.core.plans import Requester, VideoOptions
from bot.simulator.server import RunwareSimulator
from tests.helpers import Clock, RecordingSink, free_port, make_settings, metric_value, raises_saying

ALICE = Requester(guild_id=1000, channel_id=2000, user_id=3000, role_ids=(1000,))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def engine(
    sim: RunwareSimulator, db_target: Path | str, clock: Clock
) -> AsyncIterator[tuple[Engine, RecordingSink]]:
    settings = make_settings(db_target, sim.base_url, runware={"max_wait": 600})
    eng = Engine(settings, clock=clock)
    sink = RecordingSink()
    await eng.start(sink)
    yield eng, sink
    await eng.close()


@pytest.fixture
async def hooked(sim: RunwareSimulator, db_target: Path | str) -> AsyncIterator[tuple[Engine, RecordingSink, str]]:
    """An engine whose webhook receiver Runware (the simulator) can reach."""
    port = free_port()
    settings = make_settings(
        db_target,
        sim.base_url,
        public_url=f"http://127.0.0.1:{port}",
        webhook_secret="s3cret-webhook-token",
        webhook={"listen": f"127.0.0.1:{port}"},
    )
    eng = Engine(settings)
    sink = RecordingSink()
    await eng.start(sink)
    yield eng, sink, f"http://127.0.0.1:{port}"
    await eng.close()


async def settle_tasks(eng: Engine) -> None:
    """Let spawned webhook follow-ups finish (no sleeps: wait on the tracker's own task group)."""
    await eng.tracker._tasks.drain(5)


async def test_prompt_only_job_runs_to_one_delivery(
    engine: tuple[Engine, RecordingSink], sim: RunwareSimulator
) -> None:
    eng, sink = engine
    job = await eng.service.create(VideoOptions(prompt="a lighthouse in a storm"), ALICE)
    assert job.state is JobState.SUBMITTED
    [task] = [t for r in sim.requests for t in r.tasks if t.get("taskType") == "videoInference"]
    assert task["deliveryMethod"] == "async" and task["includeCost"] is True
    assert (task["width"], task["height"], task["duration"], task["fps"], task["numberResults"]) == (
        1366,
        768,
        6,
        25,
        1,
    )
    assert "webhookURL" not in task  # no public URL: polling only
    await eng.tracker.sweep_once()
    assert sink.delivered == []  # still processing
    sim.finish(job.task_uuid)
    await eng.tracker.sweep_once()
    await eng.tracker.sweep_once()
    done = await eng.jobs.get(job.id)
    assert done is not None and done.state is JobState.SUCCEEDED
    assert done.cost_micros == 280_000
    assert len(sink.delivered) == 1
    [result] = await eng.jobs.results(job.id)
    assert result.state is ResultState.DELIVERED and result.message_id == 10_000 + result.id
    [standing] = await eng.ledger.standings(
        [
            lim
            for lim in await eng.ledger.limits_for(
                payer=Payer.MEMBER, guild_id=1000, user_id=3000, role_ids=(), channel_id=2000
            )
            if lim.period.value == "day"
        ][:1],
        guild_id=1000,
        now=datetime.now(UTC),
        user_id=3000,
    )
    assert standing.spent_micros == 280_000 and standing.reserved_micros == 0


async def test_bad_input_sends_nothing(engine: tuple[Engine, RecordingSink], sim: RunwareSimulator) -> None:
    eng, _ = engine
    with raises_saying(Exception, "too short"):
        await eng.service.create(VideoOptions(prompt="x"), ALICE)
    with raises_saying(Exception, "1080p clips can't be 10 s"):
        await eng.service.create(VideoOptions(prompt="a cat", resolution="1080p", duration=10), ALICE)
    assert sim.requests == []
    assert await eng.jobs.unfinished() == []


async def test_rejected_submit_releases_the_reservation(
    engine: tuple[Engine, RecordingSink], sim: RunwareSimulator
) -> None:
    eng, sink = engine
    sim.faults.reject_next_submits("insufficientCredits", 1, http_status=402)
    with raises_saying(JobRejected, "credits"):
        await eng.service.create(VideoOptions(prompt="a quiet forest"), ALICE)
    [job] = await eng.jobs.recent_for_member(1000, 3000)
    assert job.state is JobState.FAILED
    assert sink.failed and sink.failed[0][0] == job.id
    assert await eng.ledger.held_job_ids() == []
    report = await eng.ledger.report(1000, __import__("bot.core.models").core.models.Period.DAY, datetime.now(UTC))
    assert report.total_micros == 0


async def test_failed_generation_fails_the_job_and_releases(
    engine: tuple[Engine, RecordingSink], sim: RunwareSimulator
) -> None:
    eng, sink = engine
    sim.faults.fail_next_tasks("timeoutProvider")
    job = await eng.service.create(VideoOptions(prompt="a quiet forest"), ALICE)
    sim.finish(job.task_uuid)
    await eng.tracker.sweep_once()
    done = await eng.jobs.get(job.id)
    assert done is not None and done.state is JobState.FAILED
    assert (sink.failed[0][0] == job.id and "Reroll" in sink.failed[0][1]) or "try" in sink.failed[0][1].lower()
    assert await eng.ledger.held_job_ids() == []


async def test_partial_variations_settle_to_reported_costs(
    engine: tuple[Engine, RecordingSink], sim: RunwareSimulator
) -> None:
    eng, sink = engine
    sim.faults.fail_next_tasks("providerContentPolicyViolation", generations=1)
    job = await eng.service.create(VideoOptions(prompt="two boats", variations=3), ALICE)
    sim.finish(job.task_uuid)
    await eng.tracker.sweep_once()
    done = await eng.jobs.get(job.id)
    assert done is not None and done.state is JobState.SUCCEEDED
    assert done.cost_micros == 2 * 280_000
    assert len(await eng.jobs.results(job.id)) == 2
    assert [len(ids) for _, ids, _ in sink.delivered] == [2]


async def test_expiry_marks_expired_and_releases(
    engine: tuple[Engine, RecordingSink], sim: RunwareSimulator, clock: Clock
) -> None:
    eng, sink = engine
    job = await eng.service.create(VideoOptions(prompt="a slow sunrise"), ALICE)
    clock.now += timedelta(seconds=601)
    await eng.tracker.sweep_once()
    done = await eng.jobs.get(job.id)
    assert done is not None and done.state is JobState.EXPIRED
    assert sink.failed and "did not finish" in sink.failed[0][1]
    assert await eng.ledger.held_job_ids() == []


async def test_cancel_posts_nothing_and_settles_on_reported_cost(
    engine: tuple[Engine, RecordingSink], sim: RunwareSimulator
) -> None:
    eng, sink = engine
    job = await eng.service.create(VideoOptions(prompt="a paper boat"), ALICE)
    await eng.service.cancel(job.id, ALICE)
    assert job.id in sink.cancelled
    assert job.task_uuid in await eng.jobs.tracked_task_uuids()  # still tracked for its cost
    sim.finish(job.task_uuid)
    await eng.tracker.sweep_once()
    assert sink.delivered == []
    assert await eng.ledger.held_job_ids() == []
    assert job.task_uuid not in await eng.jobs.tracked_task_uuids()
    report = await eng.ledger.report(1000, __import__("bot.core.models").core.models.Period.DAY, datetime.now(UTC))
    assert report.settled_micros == 280_000


async def test_delivery_failure_is_retried_as_redelivery(
    engine: tuple[Engine, RecordingSink], sim: RunwareSimulator
) -> None:
    eng, sink = engine
    sink.fail_deliveries = 1
    job = await eng.service.create(VideoOptions(prompt="a neon alley"), ALICE)
    sim.finish(job.task_uuid)
    await eng.tracker.sweep_once()  # first post fails; the sweep's leftover pass tries again
    assert len(sink.delivered) == 1 and sink.delivered[0][2] is True  # the sink was told to look first
    await eng.tracker.sweep_once()
    assert len(sink.delivered) == 1


async def test_over_limit_refused_before_anything_is_sent(
    engine: tuple[Engine, RecordingSink], sim: RunwareSimulator
) -> None:
    eng, _ = engine
    await eng.guilds.set_limit(
        1000,
        1,
        __import__("bot.core.models").core.models.Scope.MEMBER,
        3000,
        __import__("bot.core.models").core.models.Period.DAY,
        300_000,
    )
    await eng.service.create(VideoOptions(prompt="first one fits"), ALICE)
    sent = len(sim.requests)
    with raises_saying(OverLimit, r"left"):
        await eng.service.create(VideoOptions(prompt="second does not"), ALICE)
    assert len(sim.requests) == sent


async def test_poll_sweep_batches_requests(sim: RunwareSimulator, db_target: Path | str) -> None:
    settings = make_settings(
        db_target,
        sim.base_url,
        runware={"poll_batch_size": 3},
        limits={"concurrent_per_member": 50, "member_day_usd": 100, "member_month_usd": 100},
    )
    eng = Engine(settings)
    await eng.start(RecordingSink())
    try:
        for i in range(7):
            await eng.service.create(VideoOptions(prompt=f"clip number {i}"), ALICE)
        before = sim.count("getResponse")
        await eng.tracker.sweep_once()
        assert sim.count("getResponse") - before == 3  # ceil(7 / 3)
    finally:
        await eng.close()


async def test_webhook_delivers_once_and_poll_race_is_harmless(
    hooked: tuple[Engine, RecordingSink, str], sim: RunwareSimulator
) -> None:
    eng, sink, _ = hooked
    sim.faults.duplicate_webhooks = 3
    job = await eng.service.create(VideoOptions(prompt="a glass city", variations=2), ALICE)
    [task] = [t for r in sim.requests for t in r.tasks if t.get("taskType") == "videoInference"]
    assert task["webhookURL"].endswith("/runware/s3cret-webhook-token")
    sim.finish(job.task_uuid)
    await sim.wait_webhooks_idle()
    await settle_tasks(eng)
    await eng.tracker.sweep_once()  # the poll arrives too: no effect
    await settle_tasks(eng)
    assert len(sink.delivered) == 1 and len(sink.delivered[0][1]) == 2
    done = await eng.jobs.get(job.id)
    assert done is not None and done.state is JobState.SUCCEEDED and done.cost_micros == 560_000


async def test_webhook_refuses_bad_requests(hooked: tuple[Engine, RecordingSink, str], sim: RunwareSimulator) -> None:
    eng, sink, base = hooked
    job = await eng.service.create(VideoOptions(prompt="a glass city"), ALICE)
    item = {
        "taskType": "videoInference",
        "taskUUID": job.task_uuid,
        "videoUUID": "v1",
        "videoURL": f"{sim.base_url.removesuffix('/v1')}/video/v1.mp4",
        "seed": 1,
        "cost": 0.28,
    }
    good = f"{base}/runware/s3cret-webhook-token"
    async with aiohttp.ClientSession() as http:

        async def post(url: str, body: bytes) -> int:
            async with http.post(url, data=io.BytesIO(body), headers={"Content-Type": "application/json"}) as resp:
                return resp.status

        assert await post(f"{base}/runware/wrong", json.dumps({"data": [item]}).encode()) == 401
        assert await post(f"{base}/runware/", json.dumps({"data": [item]}).encode()) in (401, 404, 405)
        unknown = dict(item, taskUUID="6f1c2d9e-0000-4000-8000-000000000000")
        assert await post(good, json.dumps({"data": [unknown]}).encode()) == 404
        assert await post(good, b"{not json") == 400
        assert await post(good, b"[" + b" " * 1_100_000 + b"]") == 413
    assert await eng.jobs.results(job.id) == []
    assert sink.delivered == []
    text = await eng.metrics.render()
    assert metric_value(text, "hailuo_webhooks_total", outcome="bad_secret") == 1


async def test_restart_resumes_and_delivers_once(sim: RunwareSimulator, db_target: Path | str) -> None:
    settings = make_settings(db_target, sim.base_url)
    first = Engine(settings)
    sink1 = RecordingSink()
    await first.start(sink1)
    job = await first.service.create(VideoOptions(prompt="survives restarts"), ALICE)
    await first.close()
    sim.finish(job.task_uuid)
    second = Engine(settings)
    sink2 = RecordingSink()
    await second.start(sink2)
    try:
        await second.start_tracking()
        await second.tracker.sweep_once()
        assert len(sink2.delivered) == 1 and sink1.delivered == []
        assert sim.submit_count(job.task_uuid) == 1
    finally:
        await second.close()


async def test_job_written_but_never_acknowledged_is_recovered_without_double_submit(
    sim: RunwareSimulator, db_target: Path | str
) -> None:
    settings = make_settings(db_target, sim.base_url, runware={"request_timeout": 0.3})
    eng = Engine(settings)
    await eng.start(RecordingSink())
    try:
        sim.faults.accept_then_hang_next(5, seconds=2, task_type="videoInference")
        sim.faults.http_error_next(503, 20, task_type="getResponse")
        with raises_saying(Exception, "saved"):
            await eng.service.create(VideoOptions(prompt="lost in the network"), ALICE)
        [job] = await eng.jobs.unfinished()
        assert job.state is JobState.RESERVED
        sim.faults.reset()
        await eng.recovery.recover_reserved(startup=True)
        again = await eng.jobs.get(job.id)
        assert again is not None and again.state is JobState.SUBMITTED
        assert len([t for t in sim.tasks if t == job.task_uuid]) == 1
    finally:
        await eng.close()
        await asyncio.sleep(0)


async def test_delivery_that_keeps_failing_backs_off_then_keeps_the_results_as_undeliverable(
    engine: tuple[Engine, RecordingSink], sim: RunwareSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.core.outbox as outbox_module

    eng, sink = engine
    monkeypatch.setattr(outbox_module, "MAX_DELIVERY_FAILURES", 4)
    sink.fail_deliveries = 100
    job = await eng.service.create(VideoOptions(prompt="a stubborn channel"), ALICE)
    sim.finish(job.task_uuid)
    await eng.tracker.sweep_once()  # first try fails, the retry right after fails too: now backing off
    assert sink.fail_deliveries == 98
    await eng.tracker.sweep_once()
    assert sink.fail_deliveries == 98  # within the backoff: not tried again
    monkeypatch.setattr(outbox_module, "DELIVERY_BACKOFF_BASE", 0.0)
    eng.tracker.outbox._failures[job.id] = (2, 0.0)
    await eng.tracker.sweep_once()
    await eng.tracker.sweep_once()
    [result] = await eng.jobs.results(job.id)
    assert result.state is ResultState.UNDELIVERABLE  # given up; the result (and its URL) is kept
    assert sink.delivered == [] and eng.tracker.outbox._failures == {}


async def test_start_up_closes_holds_a_crash_left_on_finished_jobs(engine: tuple[Engine, RecordingSink]) -> None:
    """A crash between a job's final transition and its settle/release leaves a hold open: the tracker's start-up
    reconciliation settles succeeded jobs at their cost and releases failed and expired ones (running ones stay)."""
    eng, _ = engine
    made = [
        await eng.service.create(VideoOptions(prompt=f"job {n}"), replace(ALICE, user_id=3000 + n)) for n in range(4)
    ]
    ok, failed, expired, running = (job.id for job in made)
    await eng.jobs.transition(ok, JobState.SUCCEEDED, cost_micros=123)
    await eng.jobs.transition(failed, JobState.FAILED)
    await eng.jobs.transition(expired, JobState.EXPIRED)
    assert await eng.ledger.held_job_ids() == [ok, failed, expired, running]
    await eng.tracker.reconcile_ledger()
    assert await eng.ledger.held_job_ids() == [running]
    row = await eng.db.fetchone("SELECT status, charged_micros FROM ledger WHERE job_id = ?", (ok,))
    assert row is not None and tuple(row) == ("settled", 123)
    assert eng.metrics.value("hailuo_spend_micros_total", mode="real") == 123
    await eng.tracker.reconcile_ledger()  # idempotent
    assert eng.metrics.value("hailuo_spend_micros_total", mode="real") == 123
