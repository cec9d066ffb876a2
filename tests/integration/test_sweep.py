"""The poll sweep on lean rows: same outcomes as before, each job asked once, whole jobs loaded only when needed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from bot.core.engine import Engine
from bot.core.models import Job, JobState
from bot.core.service import Requester, VideoOptions
from bot.simulator.server import RunwareSimulator
from tests.helpers import Clock, RecordingSink, make_settings
from tests.runware_helpers import SIM_KEY

OPERATOR = Requester(guild_id=0, channel_id=0, user_id=0)
MAX_WAIT = 600
PROCESSING_SECONDS = 1000.0  # progress is 0 until the simulator's clock is moved on


@pytest.fixture
async def slow_sim() -> AsyncIterator[RunwareSimulator]:
    """Tasks that report progress and finish only on `finish()`."""
    async with RunwareSimulator(api_key=SIM_KEY, auto_complete=False, processing_seconds=PROCESSING_SECONDS) as s:
        yield s


@pytest.fixture
async def engine(slow_sim: RunwareSimulator, db_path: Path) -> AsyncIterator[tuple[Engine, RecordingSink, Clock]]:
    clock = Clock()
    settings = make_settings(db_path, slow_sim.base_url, runware={"max_wait": MAX_WAIT, "poll_batch_size": 2})
    eng = Engine(settings, clock=clock)
    sink = RecordingSink()
    await eng.start(sink)
    yield eng, sink, clock
    await eng.close()


async def create(eng: Engine, n: int) -> list[Job]:
    return [
        await eng.service.create(VideoOptions(prompt=f"clip number {i}"), OPERATOR, operator=True) for i in range(n)
    ]


def spy_get_many(eng: Engine, monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """Record the ids of every `get_many` (the real one still answers)."""
    calls: list[list[int]] = []
    real = eng.jobs.get_many

    async def get_many(job_ids: Sequence[int]) -> dict[int, Job]:
        calls.append(list(job_ids))
        return await real(job_ids)

    monkeypatch.setattr(eng.jobs, "get_many", get_many)
    return calls


def asked(sim: RunwareSimulator, since: int) -> list[str]:
    return [t["taskUUID"] for r in sim.requests[since:] for t in r.tasks if t.get("taskType") == "getResponse"]


async def test_a_sweep_with_nothing_new_loads_no_job_in_full(
    engine: tuple[Engine, RecordingSink, Clock], slow_sim: RunwareSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng, sink, _ = engine
    jobs = await create(eng, 5)
    loaded = spy_get_many(eng, monkeypatch)
    for _ in range(2):
        since = len(slow_sim.requests)
        await eng.tracker.sweep_once()
        assert sorted(asked(slow_sim, since)) == sorted(j.task_uuid for j in jobs)  # each once, in three batches
    assert loaded == []
    slow_sim.finish(jobs[3].task_uuid)
    await eng.tracker.sweep_once()
    assert loaded == [[jobs[3].id]]
    done = await eng.jobs.get(jobs[3].id)
    assert done is not None and done.state is JobState.SUCCEEDED
    assert [job_id for job_id, _, _ in sink.delivered] == [jobs[3].id]


async def test_progress_reaches_the_sink_once_per_change_and_only_with_a_status_message(
    engine: tuple[Engine, RecordingSink, Clock], slow_sim: RunwareSimulator
) -> None:
    eng, sink, _ = engine
    shown, hidden = await create(eng, 2)
    await eng.jobs.set_status_message(shown.id, channel_id=1, message_id=2)
    await eng.tracker.sweep_once()
    await eng.tracker.sweep_once()
    assert sink.progress == [(shown.id, 0)]  # told once; the job without a status message has nowhere to show it
    slow_sim.advance(PROCESSING_SECONDS / 10)
    await eng.tracker.sweep_once()
    await eng.tracker.sweep_once()
    assert sink.progress == [(shown.id, 0), (shown.id, 10)]
    await eng.jobs.set_status_message(shown.id, channel_id=1, message_id=3)  # a new status message: told again
    await eng.jobs.set_status_message(hidden.id, channel_id=1, message_id=4)
    await eng.tracker.sweep_once()
    assert sorted(sink.progress[2:]) == sorted([(shown.id, 10), (hidden.id, 10)])
    await eng.tracker.check_job(shown.id)  # the webhook path's look goes through the same memory
    assert len(sink.progress) == 4


async def test_lean_sweep_reaches_every_end_as_before(
    engine: tuple[Engine, RecordingSink, Clock], slow_sim: RunwareSimulator
) -> None:
    eng, sink, clock = engine
    running, finished, cancelled_running, cancelled_finished, forgotten = await create(eng, 5)
    slow_sim.faults.fail_next_tasks("timeoutProvider")
    [failed] = await create(eng, 1)
    slow_sim.finish(finished.task_uuid)
    slow_sim.finish(failed.task_uuid)
    assert await eng.service.cancel(cancelled_running.id, OPERATOR)
    assert await eng.service.cancel(cancelled_finished.id, OPERATOR)
    slow_sim.finish(cancelled_finished.task_uuid)
    del slow_sim.tasks[forgotten.task_uuid]

    for _ in range(3):  # Runware's "not found" counts three strikes
        await eng.tracker.sweep_once()

    async def state(job: Job) -> JobState:
        fresh = await eng.jobs.get(job.id)
        assert fresh is not None
        return fresh.state

    assert await state(running) is JobState.SUBMITTED
    assert await state(finished) is JobState.SUCCEEDED
    assert await state(failed) is JobState.FAILED
    assert await state(forgotten) is JobState.FAILED
    assert await state(cancelled_running) is JobState.CANCELLED
    assert [job_id for job_id, _, _ in sink.delivered] == [finished.id]
    assert sorted(job_id for job_id, _ in sink.failed) == sorted([failed.id, forgotten.id])
    assert await eng.ledger.held_job_ids() == [running.id, cancelled_running.id]  # cancelled_finished: billed

    clock.now += timedelta(seconds=MAX_WAIT + 1)
    await eng.tracker.sweep_once()
    assert await state(running) is JobState.EXPIRED
    assert await state(cancelled_running) is JobState.EXPIRED
    assert await eng.ledger.held_job_ids() == []
    assert sorted(job_id for job_id, _ in sink.failed) == sorted([failed.id, forgotten.id, running.id])
    assert dict(eng.tracker._not_found) == {}
    assert len(eng.tracker._progress) == 0
